"""Output files, written under temporary names and swapped into place at the end.

Parquet outputs are zstd-compressed unless told otherwise (``PARQUET_COMPRESSIONS``),
with row groups of at most ``ROW_GROUP_ROWS`` rows (fewer only at the end of a file):
batches are buffered until a row group is full, or until ``ROW_GROUP_BYTES`` of data
wait, so memory stays bounded. With ``partition_by``
each Parquet output is a directory in Hive layout (``pairs/model=<value>/part-0.parquet``),
one file per value, each written as its rows arrive.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.parquet_concat import ParquetConcat

if TYPE_CHECKING:
    from jobs.incremental import State

PAIRS_JSONL = "pairs.jsonl"
STATS_JSON = "stats.json"
QUARANTINE_JSONL = "quarantine.jsonl"
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
ROW_GROUP_ROWS = 128 * 1024
ROW_GROUP_BYTES = 32 * 1024 * 1024
#: Parquet codecs a run may write with; the first is the default. zstd is what the
#: dataset promises (the analytics handoff asked for it): on the 1 GB bench archive it
#: makes pairs.parquet 104 MB and candidates.parquet 54 MB, against 138 and 72 MB with
#: snappy, which writes them about 0.6 CPU-seconds faster. Its negative levels save
#: little (0.98 -> 0.92 CPU-s for pairs.parquet at -3, 116 MB), so level 1 stays.
PARQUET_COMPRESSIONS = ("zstd", "snappy", "lz4", "none")
#: Columns written with neither a dictionary nor min/max statistics: free text (long,
#: hardly ever repeated, sorting by it means nothing) and ids that are unique per row,
#: whose dictionary is built and then dropped (candidates.parquet: 0.6 -> 0.56 CPU-s,
#: 54.2 -> 52.6 MB on the 1 GB bench archive) and whose min/max prune nothing.
PLAIN_COLUMNS = frozenset({"terse", "rich", "text", "prompt_head", "response_head", "pair_id", "dedup_key"})

#: The fields of a training pair, in the reference's order.
JSONL_FIELDS = ("terse", "rich", "source", "model")

PAIRS_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("terse", pa.large_string()),
        ("rich", pa.large_string()),
        ("source", pa.string()),
        ("model", pa.string()),
        ("format", pa.string()),
        ("prompt_words", pa.int64()),
        ("response_words", pa.int64()),
        ("ratio", pa.float64()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("conversation", pa.int64()),
        ("turn", pa.int32()),
        ("timestamp", pa.timestamp("us", "UTC")),
    ]
)

CANDIDATES_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("kept", pa.bool_()),
        ("reject_reason", pa.string()),
        ("failed", pa.list_(pa.string())),
        ("format", pa.string()),
        ("session_id", pa.string()),
        ("model", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("conversation", pa.int64()),
        ("turn", pa.int32()),
        ("prompt_turn", pa.int32()),
        ("role", pa.string()),
        ("role_raw", pa.string()),
        ("timestamp", pa.timestamp("us", "UTC")),
        ("has_tool_calls", pa.bool_()),
        ("agent_run", pa.bool_()),
        ("prompt_words", pa.int64()),
        ("response_words", pa.int64()),
        ("prompt_chars", pa.int64()),
        ("response_chars", pa.int64()),
        ("ratio", pa.float64()),
        ("code_fences", pa.int64()),
        ("redactions", pa.int32()),
        ("dedup_key", pa.uint64()),
        ("prompt_head", pa.string()),
        ("response_head", pa.string()),
    ]
)

MESSAGES_SCHEMA = pa.schema(
    [
        ("file_index", pa.int32()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("conversation", pa.int64()),
        ("format", pa.string()),
        ("session_id", pa.string()),
        ("model", pa.string()),
        ("turn", pa.int32()),
        ("role", pa.string()),
        ("role_raw", pa.string()),
        ("typed", pa.bool_()),
        ("text", pa.large_string()),
        ("has_tool_calls", pa.bool_()),
        ("tool_name", pa.string()),
        ("agent_run", pa.bool_()),
        ("timestamp", pa.timestamp("us", "UTC")),
    ]
)

#: Parquet outputs: name -> schema. ``messages`` only with ``--emit-messages``.
PARQUET_OUTPUTS = {"pairs": PAIRS_SCHEMA, "candidates": CANDIDATES_SCHEMA, "messages": MESSAGES_SCHEMA}


SCRATCH_PREFIX = ".compound-"
#: A scratch folder younger than this is never taken for abandoned: its run may be
#: between creating it and locking it.
ABANDONED_AFTER_S = 60.0


def _lock(folder: Path) -> int | None:
    """An exclusive lock on ``folder``, held until the returned descriptor is closed (or
    the process ends, however it ends); None if another process holds it, or where
    there are no such locks."""
    try:
        import fcntl  # noqa: PLC0415  (not on Windows)
    except ImportError:
        return None
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def remove_abandoned_scratch(out_dir: Path) -> list[Path]:
    """Remove the scratch folders of runs into ``out_dir`` that died without cleaning up
    (killed, out of memory, a power cut); return them.

    A live run holds a lock on its scratch folder, which the kernel drops when the run's
    process ends: a folder whose lock can be taken, and which is not brand new, is
    abandoned. Left alone, a nightly job that keeps dying would fill the disk with
    partial outputs.
    """
    removed = []
    for folder in sorted(out_dir.glob(f"{SCRATCH_PREFIX}*")):
        try:
            if not folder.is_dir() or time.time() - folder.stat().st_mtime < ABANDONED_AFTER_S:
                continue
            descriptor = _lock(folder)
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if descriptor is None:
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(descriptor)
        removed.append(folder)
    return removed


_AT_FDCWD = -100  # renameat2's "relative to the working directory", from fcntl.h
_RENAME_EXCHANGE = 2  # from linux/fs.h


@cache
def _renameat2() -> Any:
    """The C library's ``renameat2``, or None where it has none (not Linux, old glibc)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _exchange(source: Path, target: Path) -> bool:
    """Swap ``source`` and ``target`` in one atomic step; False where that cannot be done
    (either is missing, or the system or file system has no exchange).

    Replacing a file with ``rename`` makes ext4 (and btrfs) allocate and start writing
    the new file's blocks before the rename returns, a guard for programs that never
    fsync: on the 1 GB bench archive the run waited 0.26 s for its 610 MB of outputs
    (0.85 s for 2.4 GB at 4 GB), with a core idle. An exchange has no such step; the
    kernel writes the outputs back as it does any other file. Either way the target
    holds the old output or the new one, never neither.
    """
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_EXCHANGE)
    return bool(done == 0)


def _parquet_writer(
    target: str | Path | pa.NativeFile, schema: pa.Schema, compression: str
) -> pq.ParquetWriter:
    """A writer of this project's Parquet outputs: free text and per-row ids
    (``PLAIN_COLUMNS``) without dictionary or statistics."""
    encoded_columns = [name for name in schema.names if name not in PLAIN_COLUMNS]
    return pq.ParquetWriter(
        target,
        schema,
        compression=compression,
        use_dictionary=encoded_columns,
        write_statistics=encoded_columns,
    )


def _partitions(
    frame: pl.DataFrame, schema: pa.Schema, partition_by: str | None
) -> Iterator[tuple[str | None, pa.Table]]:
    """``frame`` as tables of ``schema``, one per value of ``partition_by`` (in order of
    first appearance, the partition column dropped), or one with the value None."""
    if partition_by is None:
        yield None, frame.select(schema.names).to_arrow().cast(schema)
        return
    for (value,), part in (
        frame.select(schema.names).partition_by(partition_by, as_dict=True, maintain_order=True).items()
    ):
        yield None if value is None else str(value), part.to_arrow().cast(schema).drop_columns([partition_by])


def encode_parquet(
    frame: pl.DataFrame, schema: pa.Schema, partition_by: str | None, compression: str
) -> list[tuple[str | None, bytes]]:
    """``frame`` as Parquet files in memory, one per partition value, written as the
    run's outputs are (``_ParquetSink.append`` joins them into those)."""
    if frame.is_empty():
        return []
    files = []
    for value, table in _partitions(frame, schema, partition_by):
        sink = pa.BufferOutputStream()
        with _parquet_writer(sink, table.schema, compression) as writer:
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        files.append((value, sink.getvalue().to_pybytes()))
    return files


class _ParquetSink:
    """One Parquet output (a file, or a Hive directory of files per value of
    ``partition_by``): frames written (``write``), buffered into full row groups, or
    Parquet files encoded elsewhere appended as they are (``append``)."""

    def __init__(self, path: Path, schema: pa.Schema, partition_by: str | None, compression: str) -> None:
        self.path = path
        self.schema = schema
        self.partition_by = partition_by
        self.compression = compression
        self._file_schema = schema.remove(schema.get_field_index(partition_by)) if partition_by else schema
        self._writers: dict[str | None, pq.ParquetWriter] = {}
        self._joined: dict[str | None, tuple[IO[bytes], ParquetConcat]] = {}
        self._pending: dict[str | None, list[pa.Table]] = {}

    def _target(self, value: str | None) -> Path:
        if self.partition_by is None:
            return self.path
        target = self.path / partition_folder(self.partition_by, value) / "part-0.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _writer(self, value: str | None) -> pq.ParquetWriter:
        if value not in self._writers:
            if value in self._joined:
                raise RuntimeError(f"{self.path}: frames written after Parquet files were appended")
            self._writers[value] = _parquet_writer(self._target(value), self._file_schema, self.compression)
        return self._writers[value]

    def write(self, frame: pl.DataFrame) -> None:
        if frame.is_empty():
            return
        for value, table in _partitions(frame, self.schema, self.partition_by):
            self._add(value, table)

    def append(self, value: str | None, data: bytes) -> None:
        """A Parquet file of this output's file schema (``encode_parquet``), its rows
        after the ones before in the file of ``value``."""
        if value not in self._joined:
            if value in self._writers:
                raise RuntimeError(f"{self.path}: Parquet files appended after frames were written")
            handle = self._target(value).open("wb")
            self._joined[value] = (handle, ParquetConcat(handle))
        self._joined[value][1].append(data)

    def _add(self, value: str | None, table: pa.Table) -> None:
        pending = self._pending.setdefault(value, [])
        pending.append(table)
        rows = sum(t.num_rows for t in pending)
        if rows >= ROW_GROUP_ROWS or sum(t.nbytes for t in pending) >= ROW_GROUP_BYTES:
            self._flush(value)

    def _flush(self, value: str | None) -> None:
        pending = self._pending.pop(value, [])
        if pending:
            table = pa.concat_tables(pending)
            self._writer(value).write_table(table, row_group_size=ROW_GROUP_ROWS)

    def close(self) -> None:
        for value in list(self._pending):
            self._flush(value)
        if not self._writers and not self._joined:  # a run without rows still leaves its output
            if self.partition_by is None:
                self._writer(None)  # a file of no rows
            else:
                self.path.mkdir(parents=True, exist_ok=True)  # a dataset of no files
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        for handle, joined in self._joined.values():
            with handle:
                joined.close()
        self._joined.clear()


@dataclass(frozen=True)
class WriteOptions:
    """How a run writes its outputs: what ``encode_batch`` needs to encode a batch as the
    run's writers would."""

    emit_messages: bool
    partition_by: str | None
    compression: str


@dataclass(frozen=True)
class EncodedBatch:
    """A batch's outputs as bytes, encoded where the batch was finished (``encode_batch``),
    appended in input order by ``Outputs.write_encoded``."""

    jsonl: bytes
    quarantine: bytes
    #: per Parquet output, a Parquet file per partition value (one, with None, unpartitioned)
    parquet: dict[str, list[tuple[str | None, bytes]]]


def _ndjson(frame: pl.DataFrame) -> bytes:
    if frame.is_empty():
        return b""
    buffer = io.BytesIO()
    frame.write_ndjson(buffer)
    return buffer.getvalue()


def encode_batch(
    options: WriteOptions,
    *,
    pairs: pl.DataFrame,
    candidates: pl.DataFrame,
    quarantine: pl.DataFrame,
    messages: pl.DataFrame | None,
) -> EncodedBatch:
    """A batch's outputs encoded as ``Outputs`` writes them: its pairs' lines of
    pairs.jsonl, its quarantine lines, and each Parquet output's rows as a Parquet file."""
    tables = {"pairs": pairs, "candidates": candidates}
    if options.emit_messages and messages is not None:
        tables["messages"] = messages
    return EncodedBatch(
        jsonl=_ndjson(pairs.select(JSONL_FIELDS)),
        quarantine=_ndjson(quarantine),
        parquet={
            name: encode_parquet(frame, PARQUET_OUTPUTS[name], options.partition_by, options.compression)
            for name, frame in tables.items()
        },
    )


class OutputDirError(Exception):
    """An output directory a run cannot write into; the message is shown to the user as is."""


class Outputs:
    """Writes one run's outputs into a scratch folder inside ``out_dir``; ``commit`` puts
    each in place of the previous output (``commit`` says how). Leaving the context
    without a commit removes the scratch folder and leaves the previous outputs as they
    were."""

    def __init__(
        self,
        out_dir: Path,
        *,
        emit_messages: bool = False,
        partition_by: str | None = None,
        compression: str = PARQUET_COMPRESSIONS[0],
    ) -> None:
        if compression not in PARQUET_COMPRESSIONS:
            raise ValueError(f"compression must be one of {PARQUET_COMPRESSIONS}, not {compression!r}")
        self.out_dir = out_dir
        self.emit_messages = emit_messages
        self.partition_by = partition_by
        self.compression = compression
        self._scratch: Path | None = None
        self._created_out_dir = False
        self._scratch_lock: int | None = None
        self.abandoned_removed: list[Path] = []  # scratch folders of dead runs, removed on entry
        self._jsonl: IO[bytes] | None = None
        self._quarantine: IO[bytes] | None = None
        self._quarantine_lock = threading.Lock()
        self._sinks: dict[str, _ParquetSink] = {}

    def scratch_folder(self, name: str) -> Path:
        """A folder in the run's scratch folder, for its working files; removed with it."""
        assert self._scratch is not None
        folder = self._scratch / name
        folder.mkdir(exist_ok=True)
        return folder

    def parquet_name(self, name: str) -> str:
        """``pairs.parquet``, or the directory ``pairs`` when partitioned."""
        return name if self.partition_by else f"{name}.parquet"

    def __enter__(self) -> Outputs:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise OutputDirError(f"{self.out_dir} exists and is not a directory")
        self._created_out_dir = not self.out_dir.exists()
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.abandoned_removed = remove_abandoned_scratch(self.out_dir)
            self._scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=self.out_dir))
        except OSError as error:
            raise OutputDirError(f"cannot write into {self.out_dir}: {error.strerror or error}") from None
        self._scratch_lock = _lock(self._scratch)
        self._jsonl = (self._scratch / PAIRS_JSONL).open("wb")
        self._quarantine = (self._scratch / QUARANTINE_JSONL).open("wb")
        for name, schema in PARQUET_OUTPUTS.items():
            if name != "messages" or self.emit_messages:
                path = self._scratch / self.parquet_name(name)
                self._sinks[name] = _ParquetSink(path, schema, self.partition_by, self.compression)
        return self

    def write_pairs(self, pairs: pl.DataFrame) -> None:
        """pairs.parquet; ``write_jsonl`` writes the same pairs to pairs.jsonl."""
        self._sinks["pairs"].write(pairs)

    def write_jsonl(self, pairs: pl.DataFrame) -> None:
        assert self._jsonl is not None
        if not pairs.is_empty():
            pairs.select(JSONL_FIELDS).write_ndjson(self._jsonl)

    def write_candidates(self, candidates: pl.DataFrame) -> None:
        self._sinks["candidates"].write(candidates)

    def write_messages(self, messages: pl.DataFrame) -> None:
        if "messages" in self._sinks:
            self._sinks["messages"].write(messages)

    @property
    def write_options(self) -> WriteOptions:
        return WriteOptions(self.emit_messages, self.partition_by, self.compression)

    def write_encoded(self, encoded: EncodedBatch) -> None:
        """A batch's outputs encoded elsewhere (``encode_batch`` with ``write_options``),
        after the batches before: a run writes either these or frames."""
        assert self._jsonl is not None
        assert self._quarantine is not None
        self._jsonl.write(encoded.jsonl)
        if encoded.quarantine:
            with self._quarantine_lock:
                self._quarantine.write(encoded.quarantine)
        for name, files in encoded.parquet.items():
            for value, data in files:
                self._sinks[name].append(value, data)

    def write_quarantine(self, rows: pl.DataFrame) -> None:
        """Thread-safe: damaged files are reported as they are found, batches as they are written."""
        assert self._quarantine is not None
        if not rows.is_empty():
            with self._quarantine_lock:
                rows.write_ndjson(self._quarantine)

    def commit(self, stats: dict[str, Any]) -> None:
        """Close every file and put it in place of the previous output, which is left in
        the scratch folder and removed with it.

        Each output is swapped with the previous one in one step where the system can
        (``_exchange``), else renamed over it. A partitioned output is a directory, which
        a rename cannot replace: without an exchange the previous one is renamed aside
        first.
        """
        assert self._scratch is not None
        self._close()
        (self._scratch / STATS_JSON).write_text(json.dumps(stats, indent=2) + "\n")
        names = [
            PAIRS_JSONL,
            QUARANTINE_JSONL,
            *(self.parquet_name(name) for name in self._sinks),
            STATS_JSON,
        ]
        for name in names:
            source, target = self._scratch / name, self.out_dir / name
            if _exchange(source, target):
                continue
            if source.is_dir() and target.exists():
                target.rename(self._scratch / f"{name}.previous")
            source.replace(target)
        # outputs of an earlier run this one did not write (the other layout, or messages
        # without --emit-messages) would read as this run's
        for name in PARQUET_OUTPUTS:
            for stale in (self.out_dir / name, self.out_dir / f"{name}.parquet"):
                if stale.name not in names and stale.exists():
                    if stale.is_dir():
                        shutil.rmtree(stale)
                    else:
                        stale.unlink()

    def commit_parts(self, stats: dict[str, Any], part: str, *, first: bool) -> dict[str, list[str]]:
        """Move this run's outputs into the dataset's folders as parts named ``part``
        (``pairs/<part>.parquet``, ``pairs/<part>.jsonl``, ``candidates/<part>.parquet``,
        ``quarantine/<part>.jsonl``, ``messages/<part>.parquet``, ``runs/<part>.json``) and
        return them, per folder, relative to it. An empty output is left out, except in
        the dataset's ``first`` run, so that every folder reads from the start. These are
        not committed until the caller's state names them; ``stats.json`` is put in place
        by ``commit_stats`` once it has.
        """
        assert self._scratch is not None
        self._close()
        (self._scratch / STATS_JSON).write_text(json.dumps(stats, indent=2) + "\n")
        moves: list[tuple[Path, str, str]] = [
            (self._scratch / PAIRS_JSONL, "pairs", f"{part}.jsonl"),
            (self._scratch / QUARANTINE_JSONL, "quarantine", f"{part}.jsonl"),
            (self._scratch / STATS_JSON, "runs", f"{part}.json"),
        ]
        for name in self._sinks:
            written = self._scratch / self.parquet_name(name)
            if self.partition_by is None:
                moves.append((written, name, f"{part}.parquet"))
                continue
            moves.extend(
                (file, name, f"{file.parent.relative_to(written).as_posix()}/{part}.parquet")
                for file in sorted(written.rglob("*.parquet"))
            )
        parts: dict[str, list[str]] = {}
        for source, folder, name in moves:
            empty = source.suffix == ".jsonl" and source.stat().st_size == 0
            if source.suffix == ".parquet":
                empty = pq.ParquetFile(source).metadata.num_rows == 0
            if empty and not first and folder != "runs":
                continue
            target = self.out_dir / folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)
            parts.setdefault(folder, []).append(name)
        return parts

    def commit_stats(self, stats: dict[str, Any]) -> None:
        """``stats.json``: the last committed run's figures, replaced in one rename."""
        target = self.out_dir / STATS_JSON
        temporary = target.with_name(f"{STATS_JSON}.new")
        temporary.write_text(json.dumps(stats, indent=2) + "\n")
        temporary.replace(target)

    def remove_single_outputs(self) -> None:
        """The outputs of a run that was not incremental, which a dataset replaces."""
        for name in (PAIRS_JSONL, QUARANTINE_JSONL, *(f"{name}.parquet" for name in PARQUET_OUTPUTS)):
            with contextlib.suppress(FileNotFoundError):
                (self.out_dir / name).unlink()

    def _close(self) -> None:
        for handle in (self._jsonl, self._quarantine):
            if handle is not None:
                handle.close()
        # each sink writes its last row groups; pyarrow releases the GIL while it does
        with ThreadPoolExecutor(max(1, len(self._sinks)), "compound-close") as closing:
            for closed in [closing.submit(sink.close) for sink in self._sinks.values()]:
                closed.result()
        self._jsonl = self._quarantine = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            # on a full disk, closing fails as the run did: the scratch folder goes anyway
            # (else it would hold the disk full for the next run)
            with contextlib.suppress(OSError) if exc_type is not None else contextlib.nullcontext():
                self._close()
        finally:
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
            if self._scratch_lock is not None:
                os.close(self._scratch_lock)
                self._scratch_lock = None
            if self._created_out_dir and exc_type is not None:
                with contextlib.suppress(OSError):  # a run that made it and failed leaves no empty folder
                    self.out_dir.rmdir()


#: The longest name of a partition's folder: most filesystems take 255 bytes.
PARTITION_NAME_BYTES = 255


def partition_folder(column: str, value: str | None) -> str:
    """A partition's folder, Hive-style: ``column=<value URL-encoded>``, a null as
    ``__HIVE_DEFAULT_PARTITION__``. A value too long for a folder's name (a model name of
    hundreds of characters) is cut, and ends with ``~`` and 12 hex digits of its hash so
    that two such values stay apart; the whole value is in pairs.jsonl."""
    if value is None:
        return f"{column}={HIVE_NULL}"
    name = f"{column}={quote(value, safe='')}"
    if len(name) <= PARTITION_NAME_BYTES:
        return name
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    room = PARTITION_NAME_BYTES - len(f"{column}=~{digest}")
    kept = value
    while len(quote(kept, safe="")) > room:
        kept = kept[: max(0, min(len(kept) - 1, room))]
    return f"{column}={quote(kept, safe='')}~{digest}"


def committed_parts(out_dir: Path, state: State, name: str) -> list[Path]:
    """The Parquet parts of an incremental dataset's output ``name`` that its committed
    state names (a run that died may have left others beside them)."""
    return [out_dir / name / part for part in state.parts.get(name, []) if part.endswith(".parquet")]


def scan_parts(files: list[Path], *, partitioned: bool) -> pl.LazyFrame:
    """Parquet files of one output as one frame. Hive-partitioned ones get the partition
    column from their folders' names, as text (a model named ``123`` stays a string),
    URL-decoded, ``__HIVE_DEFAULT_PARTITION__`` as null."""
    if not partitioned:
        return pl.scan_parquet(files)
    return pl.scan_parquet(files, hive_partitioning=True, hive_schema={"model": pl.String})


def scan_output(out_dir: Path, name: str) -> pl.LazyFrame:
    """A Parquet output of a run (``pairs``, ``candidates`` or ``messages``), partitioned or
    not; of an incremental dataset, the parts its committed state names (a run that died
    before its commit may have left others beside them, until the next run removes them)."""
    from jobs.discover import InputError  # noqa: PLC0415  (discover imports the readers)
    from jobs.incremental import STATE_DIR, STATE_JSON, State, StateError  # noqa: PLC0415 (the same)

    if (out_dir / STATE_DIR / STATE_JSON).is_file():
        try:
            state = State.load(out_dir)
        except StateError as error:
            raise InputError(str(error)) from None
        parts = committed_parts(out_dir, state, name)
        if not parts:
            raise InputError(f"the dataset in {out_dir} has no {name} parts")
        return scan_parts(parts, partitioned=(state.rules or {}).get("partition_by") is not None)
    single, directory = out_dir / f"{name}.parquet", out_dir / name
    if single.is_file():
        return pl.scan_parquet(single)
    if directory.is_dir():
        files = sorted(directory.rglob("*.parquet"))
        if not files:  # a run whose sessions gave no row
            empty = pl.from_arrow(PARQUET_OUTPUTS[name].empty_table())
            assert isinstance(empty, pl.DataFrame)
            return empty.lazy()
        return scan_parts(files, partitioned=True)
    raise InputError(
        f"no {name}.parquet (or {name}/ directory) in {out_dir}: run `compound pairs --out {out_dir}` first"
    )
