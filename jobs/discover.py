"""Find session files, detect each one's layout from its content, and cut them into pieces."""

from __future__ import annotations

import errno
import io
import json
import os
import sqlite3
import stat
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import IO, Any, Literal, cast, overload

import numpy as np
import orjson
import zstandard
from zlib_ng import gzip_ng, zlib_ng

from jobs import json_array
from jobs.lines import count_line_ends
from jobs.uris import SessionPath, describe_error, files_under, is_remote, local_copy
from transforms.readers import Layout, Reader, registry, wrapping_reader

#: What a directory is searched for; each also in its ``.gz`` and ``.zst`` forms.
SESSION_SUFFIXES = (".jsonl", ".json", ".traj", ".db", ".sqlite", ".sqlite3")
COMPRESSION_SUFFIXES = (".gz", ".zst")
SQLITE_MAGIC = b"SQLite format 3\x00"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
UTF8_BOM = b"\xef\xbb\xbf"
#: Records a layout is sniffed from (at most), and how much of a file is read for them
#: (besides the first record, read whole).
SNIFF_RECORDS = 10
SNIFF_BYTES = 64 * 1024
#: How much of the records after the first is parsed, at most.
SNIFF_FOLLOWING_BYTES = 16 * 1024
#: A first line up to this long is parsed whole to tell JSON lines from a document; a
#: longer one (a record with a huge answer, a compact document of hundreds of MB) is told
#: from its outline.
FIRST_LINE_BYTES = 16 * 1024 * 1024
READ_CHUNK_BYTES = 8 * 1024 * 1024
#: Errors a damaged compressed stream raises while it is read.
#: zlib-ng's error class (its stub declares it as an instance)
ZLIB_NG_ERROR = cast(type[Exception], zlib_ng.error)
DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, ZLIB_NG_ERROR, zstandard.ZstdError)


class InputError(Exception):
    """An input the job cannot start on; the message is shown to the user as is."""


def is_session_file(path: SessionPath) -> bool:
    return _is_session_name(path.name)


def _is_session_name(name: str) -> bool:
    name = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    return name.endswith(SESSION_SUFFIXES)


class SessionFiles(Sequence[SessionPath]):
    """The session files of a run, in input order, each listed one kept as its name and
    its folder, and made a ``Path`` (the folder's, joined with the name) when it is taken:
    the run lists its files whole before it reads any, and an archive of millions of
    session files would hold as many ``Path`` objects (some 350 bytes each with their
    parts and, once asked for, their text: 200,000 files took 70 MB) where the names take
    a fifth of that. Files named on the command line and a URI's files are kept as they are."""

    def __init__(self) -> None:
        #: per file: its name, or the path itself where ``_folder_of`` is -1
        self._names: list[str | SessionPath] = []
        self._folder_of = array("i")  # per file: its folder in ``_folders``, or -1
        self._folders: list[Path] = []

    def add(self, path: SessionPath) -> None:
        self._names.append(path)
        self._folder_of.append(-1)

    def add_folder(self, folder: Path, names: list[str]) -> None:
        """The files ``names`` in ``folder``, in this order."""
        self._folder_of.extend([len(self._folders)] * len(names))
        self._folders.append(folder)
        self._names.extend(names)

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> SessionPath: ...

    @overload
    def __getitem__(self, index: slice) -> list[SessionPath]: ...

    def __getitem__(self, index: int | slice) -> SessionPath | list[SessionPath]:
        if isinstance(index, slice):
            return [self[position] for position in range(len(self))[index]]
        return self._path(self._names[index], self._folder_of[index])

    def _path(self, name: str | SessionPath, folder: int) -> SessionPath:
        if folder < 0:
            assert not isinstance(name, str)
            return name
        return _child_path(self._folders[folder], cast(str, name))

    def __iter__(self) -> Iterator[SessionPath]:
        return map(self._path, self._names, self._folder_of)

    def local_texts(self) -> Iterator[str]:
        """The local files' paths as text (``str(path)``), without a ``Path`` made for each."""
        for path in self._texts_or_paths():
            if isinstance(path, str | Path):
                yield str(path)

    def total_size(self) -> int:
        """The files' sizes added up (``size_on_disk``), for progress."""
        return sum(map(size_on_disk, self._texts_or_paths()))

    def _texts_or_paths(self) -> Iterator[SessionPath | str]:
        """Each listed file's path as text, each other file as it was given."""
        texts = [str(folder) for folder in self._folders]
        for name, folder in zip(self._names, self._folder_of, strict=True):
            yield _child(texts[folder], cast(str, name)) if folder >= 0 else name


def find_session_files(inputs: Sequence[SessionPath]) -> SessionFiles:
    """Every session file under the inputs, in the given order.

    A directory is searched recursively and its files sorted as ``sorted(Path.rglob())``
    sorts them (by path parts, not by string), as the reference does. A file named on
    the command line is read whatever its name. A URI's folder (an object store's
    prefix) is listed through its filesystem, in the same order.
    """
    found = SessionFiles()
    for path in inputs:
        if is_remote(path):
            for remote in _find_remote(path):
                found.add(remote)
            continue
        assert isinstance(path, Path)  # a URI was listed above
        if path.is_dir():
            before = len(found)
            for folder, names in _session_files_under(path):
                found.add_folder(folder, names)
            if len(found) == before:
                suffixes = ", ".join(f"*{suffix}" for suffix in SESSION_SUFFIXES)
                raise InputError(f"no session files ({suffixes}, also .gz/.zst) under {path}")
        elif path.is_file():
            found.add(path)
        elif path.exists():
            raise InputError(f"not a regular file or a directory: {path}")
        else:
            raise InputError(f"no such file or directory: {path}")
    return found


def _session_files_under(directory: Path) -> Iterator[tuple[Path, list[str]]]:
    """The session files under ``directory`` in the order of ``sorted(directory.rglob("*"))``
    (by path parts: each directory's entries by name, a folder's files where its name
    sorts), as runs of names in one folder, read with ``os.scandir``: its entries know
    whether they are files without a ``stat`` each, and no ``Path`` is made for a file
    (``SessionFiles``). As ``rglob`` does, links to directories are not followed (links
    to files are) and a directory that cannot be read is passed over. 200,000 files:
    1.4 s, against 5.3 s for ``rglob``, a ``stat`` and a sort of ``Path`` objects."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:  # no permission, or gone since its folder was listed
        return
    names: list[str] = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if names:
                    yield directory, names
                    names = []
                yield from _session_files_under(directory / entry.name)
            elif _is_session_name(entry.name) and not entry.is_dir():
                # a file, or what detection reports as one it cannot read (a link to
                # nothing, a pipe): not left out without a word
                names.append(entry.name)
        except OSError:
            continue  # gone meanwhile
    if names:
        yield directory, names


def _child_path(folder: Path, name: str) -> Path:
    """``folder / name`` for a name straight from a listing (no separator, not ``..``),
    through the constructor ``Path.iterdir`` uses where the interpreter has it: it does not
    parse the name again (0.3 against 1.5 microseconds). The thread that detects files
    makes one for each file, and on a folder of small session files that thread is what
    the run waits for."""
    make_child = getattr(folder, "_make_child_relpath", None)
    return cast(Path, make_child(name)) if make_child is not None else folder / name


def _child(folder: str, name: str) -> str:
    """``str(Path(folder) / name)``, for a ``folder`` that is ``str`` of a ``Path``."""
    return name if folder == "." else os.path.join(folder, name)  # noqa: PTH118 (no Path made)


def _find_remote(path: SessionPath) -> list[SessionPath]:
    """``find_session_files`` for one URI; what the filesystem raises (no such bucket, no
    credentials, a refused connection) is an InputError of one line."""
    assert not isinstance(path, Path)
    try:
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise InputError(f"no such file or directory: {path}")
        files: list[SessionPath] = [p for p in files_under(path) if is_session_file(p)]
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"cannot list {path}: {describe_error(error)}") from None
    if not files:
        suffixes = ", ".join(f"*{suffix}" for suffix in SESSION_SUFFIXES)
        raise InputError(f"no session files ({suffixes}, also .gz/.zst) under {path}")
    return files


def size_on_disk(path: SessionPath | str) -> int:
    """The file's size, for progress; 0 for a file gone since it was listed (reported as damaged)."""
    try:
        return os.stat(path).st_size if isinstance(path, str) else path.stat().st_size  # noqa: PTH116
    except OSError:
        return 0


Compression = Literal["gzip", "zstd"]


def _compression(magic: bytes) -> Compression | None:
    """What a file's first bytes say it is compressed with."""
    if magic.startswith(GZIP_MAGIC):
        return "gzip"
    if magic.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def open_decompressed(path: SessionPath, compression: Compression | None) -> IO[bytes]:
    """The file's bytes, gunzipped or unzstd-ed as ``compression`` says."""
    if compression == "gzip" and is_remote(path):
        return cast(IO[bytes], gzip_ng.GzipNGFile(fileobj=path.open("rb"), mode="rb"))  # type: ignore[no-untyped-call]
    if compression == "gzip":
        # zlib-ng inflates 3.7x faster than the standard library's zlib (17 ms against
        # 63 ms for a 20 MB bench file)
        return cast(IO[bytes], gzip_ng.open(path, "rb"))  # type: ignore[no-untyped-call]
    if compression == "zstd":
        return cast(IO[bytes], _ZstdFrames(path.open("rb")))
    return path.open("rb")


#: ``_ZstdFrames`` feeds the compressed bytes this many at a time
ZSTD_INPUT_BYTES = 1024 * 1024


class _ZstdFrames:
    """A zstd file's content, frame after frame, that raises where the file ends inside a
    frame: python-zstandard's ``stream_reader`` ends there quietly, as if the file were
    whole, so that a truncated ``.zst`` read as complete (its cut line quarantined as
    invalid JSON, or, cut at a line end, nothing said at all).

    A read returns at most what one chunk of ``ZSTD_INPUT_BYTES`` inflates to (callers
    read on until they have what they asked for), so that content is not copied here."""

    def __init__(self, packed: IO[bytes]) -> None:
        self._packed = packed
        self._inflating = _Inflating("zstd")
        self._pending = b""  # inflated, not yet read

    def __enter__(self) -> _ZstdFrames:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._packed.close()

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            return b"".join(iter(partial(self.read, ZSTD_INPUT_BYTES), b""))
        while not self._pending:
            chunk = self._packed.read(ZSTD_INPUT_BYTES)
            if not chunk:
                if self._inflating.in_member:
                    raise zstandard.ZstdError("the file ends inside a zstd frame: it is cut short")
                return b""
            self._pending = self._inflating.feed(chunk)
        data = self._pending
        if len(data) <= size:
            self._pending = b""
            return data
        self._pending = data[size:]
        return data[:size]


class _Inflating:
    """A gzip or zstd file's bytes inflated as they are fed, chunk by chunk, member after
    member (gzip) or frame after frame (zstd)."""

    def __init__(self, compression: Compression, inflate: Any = None) -> None:
        self._compression = compression
        self._inflate = _inflater(compression) if inflate is None else inflate
        self.in_member = False  # bytes fed since the last member or frame ended

    def feed(self, chunk: bytes) -> bytes:
        content = []
        while chunk:
            content.append(self._inflate.decompress(chunk))
            self.in_member = True
            if self._inflate.eof:  # the next member or frame begins in what is left
                chunk, self._inflate = self._inflate.unused_data, _inflater(self._compression)
                self.in_member = False
            else:
                chunk = b""
        return b"".join(content)  # one member's: no copy

    def copy(self) -> _Inflating | None:
        """The state so far, to feed again from (None: zstd's decompressor has no copy)."""
        if self._compression != "gzip":
            return None
        copied = _Inflating(self._compression, self._inflate.copy())
        copied.in_member = self.in_member
        return copied


def _inflater(compression: Compression) -> Any:
    """A decompressor of one gzip member or zstd frame."""
    if compression == "gzip":
        return zlib_ng.decompressobj(wbits=zlib_ng.MAX_WBITS | 16)
    return zstandard.ZstdDecompressor().decompressobj()


@dataclass(frozen=True)
class Detected:
    """A file's layout, or why it has none: ``unrecognized`` (no reader knows it) or
    ``damaged`` (a truncated archive, a corrupt database: quarantined)."""

    path: SessionPath
    reader: Reader | None = None
    compression: Compression | None = None
    unrecognized: str | None = None
    damaged: str | None = None
    #: what an incremental run reads of a file it has read before (None: all of it)
    resume: Resume | None = None
    #: of a document in a file that is not compressed: where its large values lie
    passed_over: PassedOver | None = None
    #: the whole file, when detection read all of it (an uncompressed file shorter than
    #: ``SNIFF_BYTES``): its piece is these bytes, and the file is not opened again
    content: bytes | None = None

    def with_content(self, content: bytes) -> Detected:
        """This with ``content``: ``dataclasses.replace`` spelled out, which took 1.3 of the
        30 microseconds a small file's detection costs (a folder of thousands of them)."""
        return Detected(
            self.path,
            self.reader,
            self.compression,
            self.unrecognized,
            self.damaged,
            self.resume,
            self.passed_over,
            content,
        )


@dataclass(frozen=True)
class PassedOver:
    """Where a document's large top-level values (lists and strings) start and end in its
    file, as detection found them walking it: reading the document passes over those it
    prunes with a seek, without reading them again, if the file is still the one detection
    walked (its size and modification time)."""

    size: int
    mtime_ns: int
    spans: tuple[tuple[int, int], ...]

    def still_in(self, handle: IO[bytes]) -> bool:
        """Whether the file open in ``handle`` is the one detection walked."""
        return _identity(handle) == (self.size, self.mtime_ns)


def _identity(handle: IO[bytes]) -> tuple[int, int] | None:
    """The size and modification time of the local file open in ``handle``; None for a
    file read through fsspec (a URI), which has no descriptor."""
    try:
        stat = os.fstat(handle.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True)
class Resume:
    """The part of a file an incremental run reads: the lines from ``offset`` (line
    ``first_line``) to ``stop`` of a file of one conversation per line, or some of a
    database's sessions."""

    offset: int = 0
    first_line: int = 1
    #: the file's size when the run planned it (a live session may grow while it is read)
    stop: int | None = None
    #: for a database: the ranges of sessions to read (first key, last key, number of
    #: the first session, share of the file's bytes); empty: none changed
    sessions: tuple[tuple[Any, Any, int, int], ...] | None = None


@cache
def _readers(layouts: tuple[Layout, ...], forced_format: str | None) -> list[Reader]:
    """The readers of these layouts (in this order), or of the forced format only."""
    return [
        reader
        for layout in layouts
        for reader in registry()
        if reader.layout == layout and (forced_format is None or reader.format == forced_format)
    ]


#: How the reason of a file that ``--format`` does not fit begins.
FORMAT_DOES_NOT_FIT = "does not fit"


def _pick(
    path: SessionPath,
    layouts: tuple[Layout, ...],
    sample: Any,
    forced_format: str | None,
    describe: Callable[[], str],
) -> Detected:
    """The first reader of these layouts that knows ``sample``; with ``forced_format``,
    that format's reader, unless the sample is plainly another layout's (read by it, the
    file would give nothing, silently) or the format has no reader of this kind of file."""
    native = next((reader for reader in _readers(layouts, None) if reader.sniff(sample)), None)
    if forced_format is None:
        if native is not None:
            return Detected(path, reader=native)
        return Detected(path, unrecognized=f"{describe()}: no reader knows this layout")
    forced = _readers(layouts, forced_format)
    if not forced:
        return Detected(path, unrecognized=f"--format {forced_format} has no reader for {describe()}")
    fitting = next((reader for reader in forced if reader.sniff(sample)), None)
    if native is not None and native.format != forced_format and fitting is None:
        return Detected(
            path,
            unrecognized=f"--format {forced_format} {FORMAT_DOES_NOT_FIT}: {describe()} is {native.format}",
        )
    return Detected(path, reader=fitting or forced[0])


def _keys(value: Any) -> str:
    if isinstance(value, dict):
        return "keys " + ", ".join(sorted(value)[:8])
    if isinstance(value, list):
        return f"an array of {len(value)} " + (
            f"values, the first with {_keys(value[0])}" if value else "values"
        )
    return f"a JSON {type(value).__name__}"


def _detect_sqlite(path: SessionPath, forced_format: str | None) -> Detected:
    try:
        with (
            local_copy(path) as local,
            closing(sqlite3.connect(f"file:{local}?mode=ro", uri=True)) as connection,
        ):
            tables = {
                row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as error:
        return Detected(path, damaged=f"corrupt SQLite database: {error}")
    return _pick(
        path, ("sqlite",), tables, forced_format, lambda: f"a SQLite database with tables {sorted(tables)}"
    )


def detect(path: SessionPath, forced_format: str | None = None) -> Detected:
    """The layout of one file, and its compression, from its content (its name decides nothing).

    A file that cannot be read (gone since it was listed, no permission) is damaged, with the reason.
    """
    try:
        small = _small_file(path)
    except OSError as error:
        return Detected(path, damaged=f"cannot read the file: {error.strerror or error}")
    if small is not None and _compression(small) is None and not small.startswith(SQLITE_MAGIC):
        found = _detect_json(path, small, io.BytesIO(), forced_format)
        if found.passed_over is None:  # else where they lie is told of the file as it is
            return found if found.reader is None else found.with_content(small)
    return _detect_opened(path, forced_format)


def _detect_opened(path: SessionPath, forced_format: str | None) -> Detected:
    """``detect`` for a file read as a stream: a larger one, a compressed one, a database."""
    try:
        with path.open("rb") as handle:
            head = _read_up_to(handle, SNIFF_BYTES)
            compression = _compression(head)
            if compression is None and not head.startswith(SQLITE_MAGIC):
                found = _detect_json(path, head, handle, forced_format)
                if len(head) < SNIFF_BYTES and found.reader is not None:
                    # the whole file (a URI's, or one whose size changed as it was read):
                    # not read again
                    found = replace(found, content=head)
                if found.passed_over is not None:  # where it lies in this file as it is
                    identity = _identity(handle)
                    passed_over = None
                    if identity is not None:
                        size, mtime_ns = identity
                        passed_over = replace(found.passed_over, size=size, mtime_ns=mtime_ns)
                    found = replace(found, passed_over=passed_over)
                return found
    except OSError as error:
        return Detected(path, damaged=f"cannot read the file: {error.strerror or error}")
    if compression is None:
        return _detect_sqlite(path, forced_format)
    try:
        with open_decompressed(path, compression) as opened:
            # a break ends the stream: what came before it decides
            stream = _until_broken(opened, path, compression)
            found = _detect_json(path, _read_up_to(stream, SNIFF_BYTES), stream, forced_format)
    except DECOMPRESSION_ERRORS as error:
        return Detected(path, damaged=f"cannot decompress: {error}")
    return replace(found, compression=compression, passed_over=None)


def _small_file(path: SessionPath) -> bytes | None:
    """A local file's bytes if it is shorter than ``SNIFF_BYTES``, in one read (with the
    open, its size and the close, four system calls: a folder of thousands of small
    session files pays them once a file); None for a larger file or a URI's."""
    if not isinstance(path, Path):
        return None
    # without waiting for a writer, where it is a pipe (a regular file ignores the flag)
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        size = status.st_size
        if size >= SNIFF_BYTES:
            return None
        data = os.read(descriptor, SNIFF_BYTES)
    finally:
        os.close(descriptor)
    # a read short of the size (a file that shrank, a filesystem that returns less) or
    # past it (one that grew): read as a stream, to its end
    return data if len(data) == size else None


#: How many files ``check_format_fits`` looks at (the first ones).
FORMAT_CHECK_FILES = 20


def check_format_fits(files: Sequence[SessionPath], forced_format: str) -> None:
    """Raise an InputError when ``--format`` fits none of the first files: each is
    plainly another layout's, so that the run would read nothing from them.

    A run over files that only some of them misfit goes ahead, and lists those files as
    unrecognized with the reason.
    """
    checked = [detect(path, forced_format) for path in files[:FORMAT_CHECK_FILES]]
    reasons = [found.unrecognized or "" for found in checked]
    if not checked or not all(FORMAT_DOES_NOT_FIT in reason for reason in reasons):
        return
    layouts = sorted({reason.rsplit(" is ", 1)[-1] for reason in reasons})
    raise InputError(
        f"{forced_format} does not fit the input: {checked[0].path} is {reasons[0].rsplit(' is ', 1)[-1]}"
        + (f" (the {len(checked)} files checked are {', '.join(layouts)})" if len(checked) > 1 else "")
        + "; leave --format out to detect each file's layout"
    )


def _loads(data: bytes) -> Any:
    """A JSON value; orjson, 2.5 times as fast here, and the standard library for what orjson
    refuses (NaN, integers past 64 bits). Raises ValueError."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class _UntilBroken:
    """A decompressed stream that ends where it breaks, keeping the error: a document walked
    from it ends there, as a document cut short, and keeps what came before (and detection
    decides from what came before).

    A read that meets the break raises and loses what it had inflated (a truncated file
    read 8 MB at a time lost all of its last 8 MB); with ``salvage`` (``_salvaged``), the
    content from where that read began up to the break is read again, and returned."""

    def __init__(self, stream: json_array.Readable, salvage: Callable[[int], bytes] | None = None) -> None:
        self._stream = stream
        self._salvage = salvage
        self.error: Exception | None = None
        self._position = 0  # of the content, where the next read begins
        self._rest = b""  # salvaged, not yet read

    @classmethod
    def of(cls, stream: json_array.Readable) -> _UntilBroken:
        """``stream`` itself if it is one (made by ``_until_broken``, which salvages), else
        ``stream`` wrapped."""
        return stream if isinstance(stream, _UntilBroken) else cls(stream)

    def seek(self, offset: int, whence: int = 0, /) -> int:
        self._position = cast(json_array.Seekable, self._stream).seek(offset, whence)
        return self._position

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:  # in chunks: one read that met the break would lose all of it
            return b"".join(iter(partial(self.read, READ_CHUNK_BYTES), b""))
        if self.error is None:
            try:
                data = self._stream.read(size)
            except DECOMPRESSION_ERRORS as error:
                self.error = error
                self._rest = self._salvage(self._position) if self._salvage is not None else b""
            else:
                self._position += len(data)
                return data
        data, self._rest = self._rest[:size], self._rest[size:]
        return data


#: ``_salvaged`` feeds the compressed bytes this many at a time: a corrupt chunk loses what
#: it would have inflated to
SALVAGE_CHUNK_BYTES = 64 * 1024


def _salvaged(path: SessionPath, compression: Compression, start: int) -> bytes:
    """The content of a compressed file that breaks, from ``start`` up to the break: inflated
    again from the file's start (a member or frame at a time), only after a stream's read
    met the break, and kept only from ``start``, which that read had reached. The chunk of
    a gzip file that breaks is fed again a byte at a time, from a copy of the state before
    it, so that its content up to the break is kept too."""
    kept: list[bytes] = []
    done = 0  # bytes of content inflated

    def keep(content: bytes) -> None:
        nonlocal done
        if done + len(content) > start:
            kept.append(content[max(0, start - done) :])
        done += len(content)

    inflating = _Inflating(compression)
    with path.open("rb") as packed:
        while chunk := packed.read(SALVAGE_CHUNK_BYTES):
            before = inflating.copy()
            try:
                keep(inflating.feed(chunk))
            except DECOMPRESSION_ERRORS:
                if before is not None:
                    _keep_up_to_the_break(before, chunk, keep)
                return b"".join(kept)
    return b"".join(kept)


def _keep_up_to_the_break(inflating: _Inflating, chunk: bytes, keep: Callable[[bytes], None]) -> None:
    """What ``chunk`` inflates to before the byte where it breaks, fed a byte at a time."""
    for at in range(len(chunk)):
        try:
            keep(inflating.feed(chunk[at : at + 1]))
        except DECOMPRESSION_ERRORS:
            return


def _until_broken(
    handle: IO[bytes], path: SessionPath, compression: Compression | None
) -> json_array.Seekable:
    """``handle``, a file's content, as an ``_UntilBroken`` stream that salvages what comes
    before a break, where the file is compressed."""
    if compression is None:
        return handle
    return _UntilBroken(handle, partial(_salvaged, path, compression))


def _first_line(text: bytes, stream: json_array.Readable) -> tuple[bytes, int]:
    """``text`` read on to the end of its first line, as far as ``FIRST_LINE_BYTES``, and
    where that line ends in it (-1: no line end yet, or the first line is the whole file)."""
    newline = text.find(b"\n")
    while newline < 0 and len(text) <= FIRST_LINE_BYTES:
        chunk = stream.read(READ_CHUNK_BYTES)
        if not chunk:
            break
        found = chunk.find(b"\n")
        newline = -1 if found < 0 else len(text) + found
        text += chunk
    return text, newline


def _detect_json(
    path: SessionPath, head: bytes, stream: json_array.Readable, forced_format: str | None
) -> Detected:
    """JSON lines (the first line is a whole object), a JSON array, or one JSON document.

    Lines are told from the first record, parsed whatever its length up to
    ``FIRST_LINE_BYTES``, and the records after it that the first ``SNIFF_BYTES`` hold whole
    (up to ``SNIFF_RECORDS`` of them, and ``SNIFF_FOLLOWING_BYTES``): a file costs one small
    read and one parse, not the parse of a long head. A document, or a first record longer
    than that, is told from its outline (``_detect_document``).
    """
    # a compressed stream that breaks ends there: what came before decides
    until_broken = _UntilBroken.of(stream)
    found = _detect_json_text(path, head, until_broken, forced_format)
    if found.reader is None and until_broken.error is not None:
        return Detected(path, damaged=f"cannot decompress: {until_broken.error}")
    return found


def _detect_json_text(
    path: SessionPath, head: bytes, stream: _UntilBroken, forced_format: str | None
) -> Detected:
    text = head.removeprefix(UTF8_BOM).lstrip()
    skip = len(head) - len(text)  # a byte order mark, whitespace
    if not text:
        return Detected(path, unrecognized="empty file")
    if not text.startswith(b"{"):
        text = _to_the_second_lines_end(text, text.find(b"\n"), stream)
        after_a_stray_line = _lines_after_a_stray_first_line(path, text, forced_format)
        if after_a_stray_line is not None:
            return after_a_stray_line
    if text.startswith(b"["):
        return _detect_array(path, stream, text, forced_format)
    if not text.startswith(b"{"):
        return Detected(path, unrecognized="not JSON: it starts with neither { nor [")
    text, newline = _first_line(text, stream)
    found = None
    if newline >= 0 or len(text) <= FIRST_LINE_BYTES:  # the first line is whole
        found = _detect_lines(path, stream, text, newline, forced_format)
        if found is None:  # a first line that is no object: the next one decides, whole
            longer = _to_the_second_lines_end(text, newline, stream)
            if longer is not text:
                text = longer
                found = _detect_lines(path, stream, text, newline, forced_format)
    if found is None:
        found = _detect_document(path, stream, text, forced_format)
        if found.passed_over is not None:  # offsets in the stream, from where ``text`` starts in it
            spans = tuple((start + skip, end + skip) for start, end in found.passed_over.spans)
            found = replace(found, passed_over=replace(found.passed_over, spans=spans))
    return found


def _to_the_second_lines_end(text: bytes, newline: int, stream: json_array.Readable) -> bytes:
    """``text`` read on to the end of its second line (as far as ``FIRST_LINE_BYTES`` past the
    first), where it holds the first line whole (``newline``: where it ends) and no line
    after it: when the first line is no record, the next one decides, whatever its length
    (a file is not lost because its first line broke and its second is long)."""
    if newline < 0 or text.find(b"\n", newline + 1) >= 0:
        return text
    rest, _ = _first_line(text[newline + 1 :], stream)
    return text[: newline + 1] + rest


def _lines_after_a_stray_first_line(
    path: SessionPath, text: bytes, forced_format: str | None
) -> Detected | None:
    """JSON lines whose first line is something else than an object (a stray ``[1, 2]``,
    a string, a line cut short) while every whole line after it in the head (``text``,
    the stream is not read) is an object that a ``lines`` reader knows: read as JSON
    lines, the first line quarantined, instead of as a document that ends after its first
    line. None otherwise: a pretty-printed document's next lines (``{``, ``"key": 1,``)
    are not objects, nor are a JSON array's elements each on a line of their own
    (they end with commas)."""
    newline = text.find(b"\n")
    if newline < 0:
        return None
    records = _objects_on_every_line(text[newline + 1 : text.rfind(b"\n") + 1])
    if not records:
        return None
    found = _pick(
        path,
        ("lines",),
        records,
        forced_format,
        lambda: "JSON lines after a first line that is not an object",
    )
    return found if found.reader is not None else None


def _parses(data: bytes) -> bool:
    try:
        _loads(data)
    except (ValueError, RecursionError):
        return False
    return True


#: How a document is told from its outline (``jobs.json_array.document``): its values of
#: up to ``SNIFF_VALUE_BYTES`` whole, a larger list by its first ``SNIFF_ELEMENTS`` elements
#: (as many as ``SNIFF_BYTES`` hold, the first whatever its size), a larger object member
#: by member, a larger string as ``""``; a value that does not parse is taken apart the
#: same way, so that a broken element leaves out that element, not the file (reading it
#: quarantines it). Every reader decides from a document's keys and its lists' first
#: elements, so that it decides the same from the outline as from the whole; and a
#: document of any size is told in the memory of a buffer.
SNIFF_ELEMENTS = 20
SNIFF_VALUE_BYTES = 256 * 1024
SNIFF_RULES = json_array.WalkRules(
    buffer_bytes=READ_CHUNK_BYTES,
    value_bytes=SNIFF_VALUE_BYTES,
    outline_bytes=4 * 1024 * 1024,
    sample=SNIFF_ELEMENTS,
    sample_bytes=SNIFF_BYTES,
    keep_value=_parses,
)


def _detect_document(
    path: SessionPath, stream: _UntilBroken, text: bytes, forced_format: str | None
) -> Detected:
    """One JSON document (or JSON lines whose first record is longer than
    ``FIRST_LINE_BYTES``), told from its outline, read a buffer at a time: a document
    larger than ``SNIFF_VALUE_BYTES`` is never parsed whole (a smaller one is: its outline
    would be itself). ``text``: the bytes read so far, from the ``{`` on.

    A document cut short, or followed by more, is told from what came before: reading it
    quarantines the rest, as it does for an array.
    """
    if len(text) <= SNIFF_VALUE_BYTES:
        text += _read_up_to(stream, SNIFF_VALUE_BYTES + 1 - len(text))
        if len(text) <= SNIFF_VALUE_BYTES:  # the whole document
            try:
                document = _loads(text)
            except (ValueError, RecursionError):
                pass  # its outline tells what is wrong, and what is not
            else:
                return _told(path, document, one_line=b"\n" not in text.rstrip(), forced_format=forced_format)
    *_, outline = json_array.document(stream, SNIFF_RULES, head=text)
    assert isinstance(outline, json_array.Outline)
    try:
        document = _loads(outline.text)
    except (ValueError, RecursionError) as error:
        return Detected(path, damaged=f"invalid JSON document: {error}")
    following = []
    if outline.one_line:
        rest = outline.rest if outline.rest_is_all else outline.rest[: outline.rest.rfind(b"\n") + 1]
        following = _following_records(rest.split(b"\n", 1)[1] if b"\n" in rest else b"")
    found = _told(
        path,
        document,
        one_line=outline.one_line,
        more=outline.more,
        following=following,
        forced_format=forced_format,
    )
    if outline.damaged is not None and not outline.more and found.reader is None:
        return Detected(path, damaged=f"invalid JSON document: {outline.damaged}")
    if found.reader is not None and found.reader.layout == "document" and outline.passed:
        return replace(found, passed_over=PassedOver(0, 0, outline.passed))  # the file's figures: detect's
    return found


def _told(
    path: SessionPath,
    document: Any,
    *,
    one_line: bool,
    forced_format: str | None,
    more: bool = False,
    following: list[Any] | None = None,
) -> Detected:
    """A document's reader; one on a line of its own (``one_line``) is a JSON lines record
    (``more``: more follow it, ``following``: the next ones parsed) or one object on one line."""
    if one_line:
        return _lines_or_one_object(
            path,
            [document, *(following or [])],
            one_object=not more,
            forced_format=forced_format,
            document_first=True,
        )
    return _pick(path, ("document",), document, forced_format, lambda: f"a JSON document, {_keys(document)}")


def _detect_lines(
    path: SessionPath, stream: json_array.Readable, text: bytes, newline: int, forced_format: str | None
) -> Detected | None:
    """JSON lines when the first line (``text[:newline]``) is an object, or when it is broken
    and every whole line after it in the head is one (a file whose first line was cut or
    damaged is still read, its first line quarantined); None when it is not."""
    try:
        first = _loads(text if newline < 0 else text[:newline])
    except (ValueError, RecursionError):
        first = None
    if not isinstance(first, dict):
        if newline < 0:
            return None
        # the lines the head holds whole after it; the stream is not read (a document
        # is walked from where the head ends)
        after_a_broken_line = _objects_on_every_line(text[newline + 1 : text.rfind(b"\n") + 1])
        if not after_a_broken_line:
            return None  # a pretty-printed document, or not JSON lines
        found = _pick(
            path,
            ("lines",),
            after_a_broken_line,
            forced_format,
            lambda: "JSON lines after a broken first line",
        )
        return found if found.reader is not None else None
    # the lines after it that the head holds whole (a line cut short would fail to parse)
    more = stream.read(1)
    ends_at = text.rfind(b"\n") + 1 if more else len(text)  # at the end of the file, the last line is whole
    whole = text[newline + 1 : ends_at] if newline >= 0 else b""
    values = [first, *_following_records(whole)]
    whole_file_is_one_object = len(values) == 1 and not more and not whole.strip()
    return _lines_or_one_object(
        path, values, one_object=whole_file_is_one_object, forced_format=forced_format
    )


#: A line of the head that does not parse (``_line_values``).
_BROKEN = object()


def _line_values(whole: bytes, lines: int, *, first_whatever_its_length: bool) -> Iterator[Any]:
    """The values of the first ``lines`` lines ``whole`` holds, blank ones left out, one
    that does not parse as ``_BROKEN``, as far as ``SNIFF_FOLLOWING_BYTES`` go (past them,
    with ``first_whatever_its_length``, the first non-blank line still)."""
    budget = SNIFF_FOLLOWING_BYTES
    given = False
    for line in whole.split(b"\n", lines)[:lines]:
        budget -= len(line)
        if budget < 0 and (given or not first_whatever_its_length):
            return
        if not line.strip():
            continue
        given = True
        try:
            yield _loads(line)
        except (ValueError, RecursionError):
            yield _BROKEN


def _following_records(whole: bytes) -> list[Any]:
    """The records of the whole lines ``whole`` holds after a first one, as far as
    ``SNIFF_RECORDS`` and ``SNIFF_FOLLOWING_BYTES`` go: a conversation per line is told by its
    first line, and parsing its next ones would double the cost."""
    values = _line_values(whole, SNIFF_RECORDS - 1, first_whatever_its_length=False)
    return [value for value in values if value is not _BROKEN]


def _objects_on_every_line(whole: bytes) -> list[Any]:
    """The records of the whole lines ``whole`` holds (as far as ``SNIFF_RECORDS`` and
    ``SNIFF_FOLLOWING_BYTES`` go, the first whatever its length), if every one of them is a
    JSON object; else none. A pretty-printed document has lines that are not (``],``,
    ``"key": 1,``)."""
    values = []
    for value in _line_values(whole, SNIFF_RECORDS, first_whatever_its_length=True):
        if not isinstance(value, dict):
            return []  # the first line that is not: the next ones are not parsed
        values.append(value)
    return values


def _lines_or_one_object(
    path: SessionPath,
    values: list[Any],
    *,
    one_object: bool,
    forced_format: str | None,
    document_first: bool = False,
) -> Detected:
    """JSON lines whose first records are ``values``; when the file is one object on one
    line, a document if no ``lines`` reader knows it, or (``document_first``: a line longer
    than ``FIRST_LINE_BYTES``, which a ``lines`` reader would hold whole) if a ``document``
    reader does."""
    first = values[0]
    if one_object and document_first:
        as_document = _pick(
            path, ("document",), first, forced_format, lambda: f"a JSON document, {_keys(first)}"
        )
        if as_document.reader is not None:
            return as_document
    as_lines = _pick(path, ("lines",), values, forced_format, lambda: f"JSON lines with {_keys(first)}")
    wrapping = wrapping_reader(values) if as_lines.reader is None else None
    if wrapping is not None and forced_format in (None, wrapping.format):
        return Detected(path, reader=wrapping)
    if as_lines.reader is not None or not one_object:
        return as_lines
    # one object on one line may as well be a document (a session file written compactly)
    return _pick(path, ("document",), first, forced_format, lambda: f"a JSON document, {_keys(first)}")


def _detect_array(
    path: SessionPath, stream: json_array.Readable, text: bytes, forced_format: str | None
) -> Detected:
    """A top-level array, from its first elements (read whole, whatever their size): an
    ``array`` reader's when its elements are conversations, an ``events`` reader's when they
    are the messages of one, else a ``document`` reader's."""
    first = next(json_array.elements(stream, SNIFF_BYTES, head=text))
    if not len(first.starts):
        if first.damaged is not None:
            return Detected(path, damaged=f"invalid JSON array: {first.damaged}")
        return Detected(path, unrecognized="an empty JSON array")
    values = []
    for start, end in zip(first.starts[:SNIFF_RECORDS], first.ends[:SNIFF_RECORDS], strict=True):
        try:
            values.append(_loads(first.data[start:end]))
        except (ValueError, RecursionError):
            continue
    return _pick(
        path,
        ("array", "events", "document"),
        values,
        forced_format,
        lambda: f"a JSON array, the first element {_keys(values[0]) if values else 'not JSON'}",
    )


@dataclass(frozen=True)
class Piece:
    """Whole lines of one file, whole elements of its array, or the whole file: what one
    reader reads at once."""

    file_index: int  # position of the file in the run's order
    path: SessionPath
    reader: Reader
    #: 1-based line number of the first line in ``data``; for array elements, the first
    #: element's 0-based position in the array
    first_line: int
    data: bytes  # empty until ``loaded`` when ``deferred``
    ends_file: bool
    size: int  # bytes of the file this piece stands for (on disk), for progress
    #: the rest of the file could not be read (a truncated archive); quarantined
    damaged: str | None = None
    #: a whole uncompressed file, read by the thread that reads its batch: read when
    #: the batch was made, it sat in memory while the batch waited for a thread
    deferred: bool = False
    #: for array elements: where each element starts and ends in ``data``
    spans: tuple[json_array.Int64Array, json_array.Int64Array] | None = None
    #: with ``deferred``: the bytes of the file that ``data`` is (offset, length); None:
    #: the whole file
    stored_at: tuple[int, int] | None = None
    #: for a database: the keys of the first and last session to read, and the number of
    #: the first (None: the database holds no session)
    sessions: tuple[Any, Any, int] | None = None
    #: for a document's elements: the list they are elements of (``Reader.lists``)
    member: str | None = None
    #: on a document's last piece: its header (``jobs.json_array.Outline``)
    header: bytes | None = None
    #: with ``deferred``: a whole gzip file, inflated by the thread that reads its batch;
    #: its content's size, as its trailer says
    gunzipped_size: int | None = None

    @property
    def length(self) -> int:
        """Bytes of content, read or not."""
        if self.stored_at is not None:
            return self.stored_at[1]
        if self.gunzipped_size is not None:
            return self.gunzipped_size
        return self.size if self.deferred or self.sessions is not None else len(self.data)

    def loaded(self) -> list[Piece]:
        """This piece with its bytes; a file gone or unreadable by then is a damaged piece.
        A gzip file is inflated (``gunzipped_size``), in the pieces ``_gunzipped`` gives."""
        if not self.deferred:
            return [self]
        try:
            return self._gunzipped() if self.gunzipped_size is not None else [self._read()]
        except OSError as error:
            damaged = f"cannot read the file: {error.strerror or error}"
            return [replace(self, deferred=False, gunzipped_size=None, damaged=damaged)]

    def _read(self) -> Piece:
        if self.stored_at is None:
            return replace(self, data=self.path.read_bytes(), deferred=False)
        offset, length = self.stored_at
        with self.path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(length)
        if len(data) != length:
            return replace(self, deferred=False, damaged="the file shrank while it was read")
        return replace(self, data=data, deferred=False)

    def _gunzipped(self) -> list[Piece]:
        """The gzip file's content, in one inflate; one that does not inflate so to the
        size its trailer gave (several members, a break) read as a stream, in the pieces
        that gives (the content up to a break, the line it breaks in)."""
        assert self.gunzipped_size is not None
        content = _gunzip_one_member(self.path.read_bytes(), self.gunzipped_size)
        if content is None:
            found = Detected(self.path, self.reader, compression="gzip")
            return list(_line_pieces(self.file_index, found, self.reader, sys.maxsize, None))
        return [replace(self, data=content, deferred=False, gunzipped_size=None)]


def line_breaks(data: bytes) -> int:
    """Lines ended in ``data`` under universal newlines (``\\n``, ``\\r\\n``, a lone ``\\r``).

    Each piece of a file cut into several is counted, on the thread that hands out the
    batches: three ``bytes.count`` calls made a file one byte over the batch size cost
    15 ms per 20 MB there, and the 1 GB bench archive cut at 16 MB took 6.3 s instead of
    4.3 s. Most files have no ``\\r``, which a memchr finds out.
    """
    breaks = count_line_ends(data)
    if b"\r" in data:
        breaks += data.count(b"\r") - data.count(b"\r\n")
    return breaks


def _read_up_to(handle: json_array.Readable, max_bytes: int) -> bytes:
    """Up to ``max_bytes`` from a stream, read in bounded chunks (``-1``: all of it)."""
    if max_bytes < 0:
        return handle.read()
    chunks, size = [], 0
    while size < max_bytes:
        chunk = handle.read(min(max_bytes - size, READ_CHUNK_BYTES))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


#: An array is scanned, and cut, into pieces of a quarter of a batch: the scan's
#: temporaries (positions, depths) run to a few times the bytes it looks at.
ARRAY_PIECES_PER_BATCH = 4

#: A gzip file ends with its content's size (modulo 4 GiB) in 4 little-endian bytes.
GZIP_SIZE_BYTES = 4


#: A gzip file up to this share of a batch, whose content fits a batch, is inflated by the
#: thread that reads its batch, as a plain file is read there: a batch waiting for a thread
#: holds no content (the 1 GB bench archive as gzip peaked at 1,132 MiB when its files
#: were inflated as batches were made, at 857 MiB since). Should it not inflate in
#: one go, that thread reads it as a stream, whose content is then bounded only by what
#: this size inflates to: a larger file is inflated as its batch is made.
GUNZIP_LATER_SHARE = 4


def _gzip_content_size(path: SessionPath, size: int, max_bytes: int) -> int | None:
    """The content's size a gzip file's trailer gives (modulo 4 GiB; the last member's, in
    a file of several), if it is at most ``max_bytes``; None for a file over twice that,
    whose content cannot fit a batch, or whose trailer says more."""
    if size > 2 * max_bytes:
        return None
    with path.open("rb") as handle:
        handle.seek(max(0, size - GZIP_SIZE_BYTES))
        content_size = int.from_bytes(handle.read(), "little")
    return content_size if content_size <= max_bytes else None


def _gunzip_one_member(packed: bytes, content_size: int) -> bytes | None:
    """A gzip file's content in one inflate, if it is one member of ``content_size`` bytes;
    None for any other (several members, cut short, damaged), which is read as a stream.

    One call inflates the 1 GB bench archive's gzip files in 0.8 CPU-seconds; the stream,
    which inflates a small block at a time, takes 1.7."""
    inflate = zlib_ng.decompressobj(wbits=zlib_ng.MAX_WBITS | 16)  # a gzip member
    try:
        content = inflate.decompress(packed, content_size + 1)
    except DECOMPRESSION_ERRORS:
        return None
    whole = inflate.eof and not inflate.unused_data and len(content) == content_size
    return content if whole else None


def _array_pieces(file_index: int, found: Detected, reader: Reader, max_bytes: int) -> Iterator[Piece]:
    """The array's elements, about ``max_bytes`` of them a piece; what follows an array
    cut short (or its closing ``]``), or where its compressed stream breaks, is a damaged
    piece of its own, placed at the element it starts.

    The bytes are scanned here, and, in a file that is not compressed, read again by the
    thread that reads the piece's batch (from the page cache): a piece waiting for a
    thread holds only its elements' bounds, as a whole file waits unread.
    """
    path, size = found.path, found.path.stat().st_size
    first = 0
    try:
        with open_decompressed(path, found.compression) as opened:
            # a compressed stream that breaks ends there, as an array cut short
            handle = _until_broken(opened, path, found.compression)
            head = _read_up_to(handle, max_bytes // ARRAY_PIECES_PER_BATCH)
            bom = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
            for part in json_array.elements(handle, max_bytes // ARRAY_PIECES_PER_BATCH, head=head[bom:]):
                last = part.last and part.damaged is None
                spans = (part.starts, part.ends)
                piece = Piece(
                    file_index, path, reader, part.first, part.data, last, size if last else 0, spans=spans
                )
                if found.compression is None:
                    stored_at = (bom + part.offset, part.size)
                    piece = replace(piece, data=b"", deferred=True, stored_at=stored_at)
                yield piece
                first = part.first + len(part.starts)
                if part.damaged is not None:
                    tail = part.data[int(part.ends[-1]) + 1 :] if len(part.ends) else part.data
                    damaged = part.damaged
                    if isinstance(handle, _UntilBroken) and handle.error is not None:
                        damaged = f"cannot decompress: {handle.error} ({damaged})"
                    yield Piece(file_index, path, reader, first, tail, True, size, damaged=damaged)
    except DECOMPRESSION_ERRORS as error:
        yield Piece(file_index, path, reader, first, b"", True, size, damaged=f"cannot decompress: {error}")


#: What a document's header keeps whole: values of up to ``HEADER_VALUE_BYTES`` (a larger one
#: is walked if it is an object, else left empty), ``HEADER_BYTES`` of them in all. A
#: reader takes a session's id, its model, a final answer from there: short texts.
HEADER_VALUE_BYTES = 1024 * 1024
HEADER_BYTES = 8 * 1024 * 1024


#: A document up to this size, in a file that is not compressed, is one piece, read whole
#: and decoded whole with the batch's other small documents (``Reader.read_whole``), as a
#: whole file is: walking it costs half a millisecond a file, whatever its size, which a
#: folder of thousands of session logs would pay thousands of times. One that does not
#: decode whole is walked then (``walk_document``), and its parts read as a larger
#: document's are.
WHOLE_DOCUMENT_BYTES = 1024 * 1024


def _document_pieces(file_index: int, found: Detected, reader: Reader, max_bytes: int) -> Iterator[Piece]:
    """A JSON document as the pieces ``_walked`` cuts it into; a small one in a file that
    is not compressed, whole (``WHOLE_DOCUMENT_BYTES``)."""
    path, content = found.path, found.content  # content: read whole by detection
    size = len(content) if content is not None else path.stat().st_size
    if found.compression is None and size <= WHOLE_DOCUMENT_BYTES and reader.read_whole is not None:
        data, deferred = (b"", True) if content is None else (content, False)
        yield Piece(file_index, path, reader, 0, data, ends_file=True, size=size, deferred=deferred)
        return
    with open_decompressed(path, found.compression) as handle:
        keep_data = found.compression is not None
        passed_over = found.passed_over
        known = passed_over.spans if passed_over is not None and passed_over.still_in(handle) else ()
        stream = _until_broken(handle, path, found.compression)
        yield from _walked(
            file_index, path, reader, stream, size=size, max_bytes=max_bytes, keep_data=keep_data, known=known
        )


def walk_document(piece: Piece, max_bytes: int) -> Iterator[Piece]:
    """A document read whole (a piece of a small document, with its bytes) in the pieces
    ``_walked`` cuts it into: for one that does not decode whole."""
    stream = io.BytesIO(piece.data)
    yield from _walked(
        piece.file_index,
        piece.path,
        piece.reader,
        stream,
        size=piece.size,
        max_bytes=max_bytes,
        keep_data=True,
    )


def _walked(
    file_index: int,
    path: SessionPath,
    reader: Reader,
    stream: json_array.Readable,
    *,
    size: int,
    max_bytes: int,
    keep_data: bool,
    known: tuple[tuple[int, int], ...] = (),
) -> Iterator[Piece]:
    """A JSON document's lists (``Reader.lists``) in pieces of whole elements, about a
    quarter of a batch each; the last piece carries the document's header (the document
    without those lists, its large values pruned: ``jobs.json_array.Outline``). Where the
    document breaks off (cut short, not JSON, more after its ``}``, a compressed stream that
    breaks), a damaged piece says so, and what came before is read.

    As an array's pieces, pieces that do not ``keep_data`` (a file not compressed) hold
    only their elements' bounds, and are read again by the thread that reads their batch.
    ``known``: where detection found the document's large values in the stream (it must
    seek: ``PassedOver``). A compressed stream comes as ``_until_broken`` makes it, so that
    what comes before a break is read.
    """
    quarter = max(1, max_bytes // ARRAY_PIECES_PER_BATCH)
    until_broken = _UntilBroken.of(stream)
    head = _read_up_to(until_broken, quarter)
    bom = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
    rules = json_array.WalkRules(
        lists=frozenset(reader.lists),
        piece_bytes=quarter,
        buffer_bytes=quarter,
        value_bytes=HEADER_VALUE_BYTES,
        outline_bytes=HEADER_BYTES,
        keep_data=keep_data,
        known=tuple((start - bom, end - bom) for start, end in known),
    )
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    last = Piece(file_index, path, reader, 0, b"", False, 0, spans=empty)  # until a list's piece
    outline = None
    try:
        for part in json_array.document(until_broken, rules, head=head[bom:]):
            if isinstance(part, json_array.Outline):
                outline = part
                continue
            if last.member is not None:
                yield last
            spans, data = (part.starts, part.ends), part.data or b""
            last = Piece(file_index, path, reader, part.first, data, False, 0, spans=spans, member=part.path)
            if part.data is None:
                last = replace(last, deferred=True, stored_at=(bom + part.offset, part.length))
    except json_array.NotAnObjectError as error:
        yield Piece(file_index, path, reader, 0, b"", True, size, damaged=str(error))
        return
    assert outline is not None
    damaged = outline.damaged
    if until_broken.error is not None:
        damaged = f"cannot decompress: {until_broken.error} ({damaged})"
    if damaged is not None:
        yield Piece(file_index, path, reader, 0, outline.rest[:2000], False, 0, damaged=damaged)
    yield replace(last, ends_file=True, size=size, header=outline.text)


def _session_ranges(path: SessionPath, reader: Reader, max_bytes: int) -> Iterator[tuple[Any, Any, int, int]]:
    """Ranges of whole sessions in key order, of about ``max_bytes`` each (the database's
    size per message times their messages), as they are listed: the first and last key,
    the number of the first session, and the range's share of the file's bytes."""
    assert reader.sessions_query is not None
    size = path.stat().st_size
    with (
        local_copy(path) as local,
        closing(sqlite3.connect(f"file:{local}?mode=ro", uri=True)) as connection,
    ):
        total_query = f"SELECT SUM(messages) FROM ({reader.sessions_query})"  # noqa: S608 (our own SQL)
        total = connection.execute(total_query).fetchone()[0] or 0
        per_range = max(1, max_bytes * total // max(size, 1))
        first_key, messages, sessions, conversation = None, 0, 0, 0
        for key, count, *_ in connection.execute(reader.sessions_query):
            first_key = key if first_key is None else first_key
            messages, sessions = messages + count, sessions + 1
            if messages >= per_range:
                yield first_key, key, conversation, size * messages // total
                first_key, messages, conversation, sessions = None, 0, conversation + sessions, 0
        if first_key is not None:
            yield first_key, key, conversation, size * messages // total


def _sqlite_pieces(file_index: int, found: Detected, reader: Reader, max_bytes: int) -> Iterator[Piece]:
    """A piece per range of sessions (``_session_ranges``), each one keyed query when it is
    read; its ``size`` is its share of the file, which is what batches are filled by."""
    path, size = found.path, found.path.stat().st_size
    pending: Piece | None = None
    done = 0
    try:
        for first, last, conversation, share in _session_ranges(path, reader, max_bytes):
            if pending is not None:
                yield pending
                done += pending.size
            pending = Piece(
                file_index, path, reader, 1, b"", False, share, sessions=(first, last, conversation)
            )
    except sqlite3.DatabaseError as error:
        if pending is not None:
            yield pending
            done += pending.size
        yield Piece(
            file_index, path, reader, 1, b"", True, size - done, damaged=f"cannot read the database: {error}"
        )
        return
    if pending is None:  # no session
        yield Piece(file_index, path, reader, 1, b"", True, size)
        return
    yield replace(pending, ends_file=True, size=size - done)


def _resumed_sessions(file_index: int, found: Detected, reader: Reader) -> Iterator[Piece]:
    """The ranges of sessions an incremental run reads of a database (``Resume.sessions``)."""
    assert found.resume is not None
    ranges = found.resume.sessions
    assert ranges is not None
    if not ranges:
        yield Piece(file_index, found.path, reader, 1, b"", True, 0)
        return
    for number, (first, last, conversation, share) in enumerate(ranges, 1):
        yield Piece(
            file_index,
            found.path,
            reader,
            1,
            b"",
            number == len(ranges),
            share,
            sessions=(first, last, conversation),
        )


def _pieces_of(file_index: int, found: Detected, reader: Reader, max_bytes: int) -> Iterator[Piece]:
    resume = found.resume
    if reader.layout == "sqlite":
        if resume is not None and resume.sessions is not None:
            yield from _resumed_sessions(file_index, found, reader)
        else:
            yield from _sqlite_pieces(file_index, found, reader, max_bytes)
    elif reader.layout in ("array", "events"):
        yield from _array_pieces(file_index, found, reader, max_bytes)
    elif reader.layout == "document":
        yield from _document_pieces(file_index, found, reader, max_bytes)
    elif resume is not None and reader.line_per_conversation and found.compression is None:
        yield from _line_pieces(file_index, found, reader, max_bytes, resume)
    else:
        yield from _lines_pieces(file_index, found, reader, max_bytes)


def _lines_pieces(file_index: int, found: Detected, reader: Reader, max_bytes: int) -> Iterator[Piece]:
    """A file of the lines layout, read whole: as detection read it (a small file), in one
    read by the thread that reads its batch (the common case: no copies), inflated in one
    go by that thread or as the batch is made (a gzip file: ``GUNZIP_LATER_SHARE``), else
    as a stream cut into pieces (``_line_pieces``)."""
    path, content = found.path, found.content
    size = len(content) if content is not None else path.stat().st_size
    if size <= max_bytes and found.compression is None:
        data, deferred = (b"", True) if content is None else (content, False)
        yield Piece(file_index, path, reader, 1, data, ends_file=True, size=size, deferred=deferred)
        return
    content_size = _gzip_content_size(path, size, max_bytes) if found.compression == "gzip" else None
    if content_size is not None and size <= max_bytes // GUNZIP_LATER_SHARE:
        yield Piece(file_index, path, reader, 1, b"", True, size, deferred=True, gunzipped_size=content_size)
        return
    if (
        content_size is not None
        and (content := _gunzip_one_member(path.read_bytes(), content_size)) is not None
    ):
        yield Piece(file_index, path, reader, 1, content, ends_file=True, size=size)
        return
    yield from _line_pieces(file_index, found, reader, max_bytes, None)


def _line_pieces(
    file_index: int, found: Detected, reader: Reader, max_bytes: int, resume: Resume | None
) -> Iterator[Piece]:
    """A file read as a stream: cut at line ends into pieces of ``max_bytes`` when it holds
    a conversation per line, else one piece. ``resume``: only its lines from ``offset``
    to ``stop`` (an uncompressed file of a conversation per line)."""
    path, size = found.path, found.path.stat().st_size
    split = reader.line_per_conversation
    first_line, start, left = 1, 0, -1
    if resume is not None and resume.stop is not None:
        first_line, start, left = resume.first_line, resume.offset, resume.stop - resume.offset
        if left <= max_bytes:  # read by the batch's thread, as a whole small file is
            stored_at = (start, left)
            yield Piece(
                file_index, path, reader, first_line, b"", True, left, deferred=True, stored_at=stored_at
            )
            return
    carry = b""
    with open_decompressed(path, found.compression) as opened:
        # a compressed stream that breaks ends there: the lines before the break are read
        handle = _until_broken(opened, path, found.compression)
        if start:
            handle.seek(start)
        while True:
            wanted = max_bytes if split else -1
            if left >= 0:  # up to ``stop``
                wanted = min(left, max_bytes)
            chunk = _read_up_to(handle, wanted) if left != 0 else b""
            left = left - len(chunk) if left >= 0 else -1
            broken = handle.error if isinstance(handle, _UntilBroken) else None
            if broken is not None:
                data = carry + chunk + handle.read()  # the rest of what came before the break
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield Piece(file_index, path, reader, first_line, data[:cut], ends_file=False, size=0)
                    first_line += line_breaks(data[:cut])
                damaged = f"cannot decompress past this line: {broken}"
                yield Piece(file_index, path, reader, first_line, data[cut:], True, size, damaged=damaged)
                return
            if not chunk or not split:
                data = carry + chunk
                yield Piece(file_index, path, reader, first_line, data, ends_file=True, size=size)
                return
            data = carry + chunk if carry else chunk  # no copy for a file read in one go
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # no line end yet: read on
                carry = data
                continue
            piece, carry = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
            yield Piece(file_index, path, reader, first_line, piece, ends_file=False, size=0)
            first_line += line_breaks(piece)


#: What a piece counts for at least in a batch's size: a piece carries a few kilobytes of
#: bookkeeping whatever its bytes (its path, its objects, its rows in the batch's figures),
#: so that a batch of 40 MB of files of 500 bytes held 80,000 of them, and a run over
#: 200,000 such files peaked at 1.1 GB.
MIN_PIECE_BYTES = 16 * 1024


def batches(detected: Iterable[Detected], max_bytes: int) -> Iterator[list[Piece]]:
    """Consecutive pieces of the readable files, grouped into batches of about ``max_bytes``.

    A file whose conversations span lines (most layouts) is one piece, whatever its size;
    a file of one conversation per line is cut at line ends into pieces of ``max_bytes``,
    an array into pieces of whole elements, a document into pieces of its lists' elements.
    The pieces of one conversation's file (an array of events, a document) stay in one
    batch, which reads them a piece at a time.
    """
    batch: list[Piece] = []
    size = 0
    for file_index, found in enumerate(detected):
        if found.reader is None:
            continue
        for piece in _pieces_of(file_index, found, found.reader, max_bytes):
            # the pieces of one conversation's file: one batch
            goes_on = piece.reader.layout in ("events", "document") and bool(batch)
            goes_on = goes_on and batch[-1].file_index == file_index
            cost = max(piece.length, MIN_PIECE_BYTES)
            if batch and size + cost > max_bytes and not goes_on:
                yield batch
                batch, size = [], 0
            batch.append(piece)
            size += cost
    if batch:
        yield batch
