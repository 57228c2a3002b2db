"""Inputs and outputs named by a filesystem URI (``s3://``, ``gs://``, ``file://``, any
protocol fsspec knows), beside plain local paths.

A plain path stays a ``pathlib.Path`` and takes the code paths it always took (whole-file
reads, seeks, ``fstat``): nothing here runs for it. A URI becomes a ``upath.UPath``
(universal_pathlib: the pathlib API over fsspec), which the readers use as they use a
``Path``: ``open("rb")`` (a seekable fsspec file), ``stat().st_size``, ``read_bytes``,
``name``, and ``str()`` gives the URI back, which is what the outputs' ``file`` columns
hold. Credentials and endpoints come from the environment, as fsspec and its filesystem
packages read them (for ``s3://``, botocore's ``AWS_*`` variables, ``AWS_ENDPOINT_URL``
included; ``FSSPEC_S3_*`` for any other s3fs option).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from upath import UPath

#: A local file, or a file named by a URI. (fsspec and upath are imported only when a
#: URI is given: together they add some 0.15 s to every run's start.)
SessionPath: TypeAlias = "Path | UPath"
#: Loggers of the filesystem packages: what they log while they retry (gcsfs logs each
#: failed try with its traceback) would reach the terminal through Python's last-resort
#: handler; what they finally raise is reported in one line instead.
FILESYSTEM_LOGGERS = ("fsspec", "s3fs", "gcsfs", "aiobotocore", "botocore", "google", "urllib3")

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Read at a time while a remote file is copied to a local one.
COPY_CHUNK_BYTES = 8 * 1024 * 1024


class UriError(Exception):
    """A URI the job cannot use (an unknown protocol, its filesystem package missing);
    the message is shown to the user as is."""


def is_uri(text: str) -> bool:
    """Whether ``text`` names a file by a URI (``scheme://...``) rather than a local path."""
    return _URI.match(text) is not None


def as_path(text: str) -> SessionPath:
    """A command-line input or output: a ``Path`` for a plain path (exactly as before), a
    ``UPath`` for a URI, whose filesystem is checked to be known and installed."""
    if not is_uri(text):
        return Path(text)
    import fsspec  # noqa: PLC0415 (only for a URI: see SessionPath)
    from upath import UPath  # noqa: PLC0415

    for name in FILESYSTEM_LOGGERS:
        logging.getLogger(name).addHandler(logging.NullHandler())
    protocol = text.split("://", 1)[0].lower()
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise UriError(f"{text}: no filesystem knows the protocol {protocol}://") from None
    except ImportError as error:
        raise UriError(
            f"{text}: the {protocol}:// filesystem is not installed ({_first_line(error)}; "
            "s3fs and gcsfs come with the cloud extra: uv sync --extra cloud)"
        ) from None
    try:
        return UPath(text)
    except (ValueError, TypeError) as error:
        raise UriError(f"{text}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def describe_error(error: BaseException) -> str:
    """An error of a remote filesystem (botocore's missing credentials, a refused
    connection, an access denied) as one line."""
    return f"{type(error).__name__}: {_first_line(error)}"


def is_remote(path: SessionPath) -> bool:
    """Whether ``path`` is read through fsspec (a URI), not the local file system directly."""
    return not isinstance(path, Path)


def files_under(root: UPath) -> list[UPath]:
    """Every file under ``root``, sorted as ``sorted(Path.rglob())`` sorts a local folder's
    files: by their parts below ``root``, one level at a time. Each is ``root`` joined with
    its parts, so it reads as the URI the user gave, extended."""
    base = root.path.rstrip("/")
    found = []
    for name in root.fs.find(root.path):
        relative = name[len(base) :].lstrip("/") if name.startswith(base) else name
        if relative:
            found.append(tuple(relative.split("/")))
    return [root.joinpath(*parts) for parts in sorted(found)]


@contextmanager
def local_copy(path: SessionPath) -> Iterator[Path]:
    """``path`` as a local file: itself when it is one; else a copy in a temporary folder
    (``TMPDIR``), removed on exit. For what only reads local files: SQLite and connectorx
    open a database by its name."""
    if isinstance(path, Path):
        yield path
        return
    folder = tempfile.mkdtemp(prefix="compound-remote-")
    try:
        copy = Path(folder) / (path.name or "database")
        with path.open("rb") as source, copy.open("wb") as target:
            shutil.copyfileobj(source, target, COPY_CHUNK_BYTES)
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def upload_folder(local: Path, out: SessionPath, marker: str, owned: Collection[str]) -> None:
    """Every file under ``local`` to the same place under ``out``, ``marker`` (a file at the
    top) as the commit: an object store has no rename, but makes each object visible only
    once its upload has completed. So the old ``marker`` is removed first, the other files
    are uploaded, then what an earlier run left under the names this run owns (``owned``:
    top-level names, e.g. a partition this run did not write) is removed, and ``marker`` is
    uploaded last. While ``marker`` is there, every output beside it is the run's it
    describes; a run that fails on the way leaves no ``marker``."""
    assert not isinstance(out, Path)
    fs = out.fs
    base = out.path.rstrip("/")
    files = {file.relative_to(local).as_posix(): file for file in local.rglob("*") if file.is_file()}
    if fs.exists(f"{base}/{marker}"):
        fs.rm_file(f"{base}/{marker}")
    for name in sorted(files):
        if name != marker:
            _upload(fs, files[name], f"{base}/{name}")
    for name in owned:
        target = f"{base}/{name}"
        if not fs.exists(target):
            continue
        listed = fs.find(target) if fs.isdir(target) else [target]
        stale = [key for key in listed if key.removeprefix(base).lstrip("/") not in files]
        if stale:
            fs.rm(stale)
    fs.invalidate_cache()
    _upload(fs, files[marker], f"{base}/{marker}")


def _upload(fs: Any, source: Path, target: str) -> None:
    fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)  # a local or mounted filesystem needs it
    fs.put_file(os.fspath(source), target)
