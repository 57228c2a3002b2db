"""Incremental runs: what changed in the archive since the committed state, and that state.

The state folder (``DIR/.incremental/``) holds:

- ``state.json``: the committed state, replaced in one rename at the end of a run (the
  commit point): the run's number, its rules, the parts of every output, the manifest's
  file name and the dedup index's segments;
- ``manifest-<run>.parquet``: every file the archive held at that run (``MANIFEST_SCHEMA``):
  its size, mtime and fingerprints, and for a file of one conversation per line the bytes
  of whole lines read and their number, for a database its sessions' message counts;
- ``keys/``: the dedup index (``jobs.key_index``);
- ``lock``: held by the run writing into ``DIR``.

A file is unchanged when its size and mtime are the manifest's; it grew when it is at
least as large and the fingerprints of its old content (the first and the last
``FINGERPRINT_BYTES`` of the old size) still match; any other difference is a change.
Anything in the output folders or the state folder that ``state.json`` does not name
belongs to a run that died before its commit, and is removed by the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISREG
from typing import Any, Literal

import numpy as np
import polars as pl

from jobs.discover import Detected, Resume, detect, line_breaks
from jobs.durable import fsync_path

STATE_DIR = ".incremental"
STATE_JSON = "state.json"
LOCK = "lock"
KEYS_DIR = "keys"
FORMAT_VERSION = 1
#: Bytes hashed at each end of a file's old content to tell growth from a rewrite.
FINGERPRINT_BYTES = 64 * 1024
#: Output folders whose parts the state lists.
DATASETS = ("pairs", "candidates", "quarantine", "messages", "runs")
#: The rules a run's pairs depend on: an incremental run must use the state's.
RULE_OPTIONS = {
    "min_ratio": "--min-ratio",
    "min_words": "--min-words",
    "responses": "--responses",
    "strip_think": "--strip-think",
    "scrub": "--scrub",
    "format": "--format",
    "partition_by": "--partition-by",
    "emit_messages": "--emit-messages",
}
#: How many deleted files the stats list by name (all are counted).
LISTED_DELETED = 1000

MANIFEST_SCHEMA = {
    "path": pl.String,
    "size": pl.Int64,
    "mtime_ns": pl.Int64,
    "head": pl.String,
    "tail": pl.String,
    "consumed": pl.Int64,  # a file of one conversation per line: bytes of whole lines read
    "lines": pl.Int64,  # and how many lines those are
    "sessions": pl.String,  # a database: its sessions query's rows as JSON, in key order
}

Change = Literal["new", "grown", "changed", "unchanged"]


class StateError(Exception):
    """An incremental run that cannot go on; the message is shown to the user as is."""


def fingerprints(path: Path, size: int) -> tuple[str, str]:
    """Hashes of the first and of the last ``FINGERPRINT_BYTES`` of the file's first ``size`` bytes."""
    with path.open("rb") as handle:
        head = handle.read(min(size, FINGERPRINT_BYTES))
        handle.seek(max(0, size - FINGERPRINT_BYTES))
        tail = handle.read(size - max(0, size - FINGERPRINT_BYTES))
    return hashlib.blake2b(head, digest_size=16).hexdigest(), hashlib.blake2b(
        tail, digest_size=16
    ).hexdigest()


#: ``_whole_lines`` reads this much at a time.
COUNT_CHUNK_BYTES = 8 << 20


def _whole_lines(path: Path, start: int, stop: int) -> tuple[int, int]:
    """Where the last whole line in ``[start, stop)`` ends, and how many lines end up to
    there (universal newlines, as the readers count them), read a chunk at a time."""
    end, breaks, at = start, 0, start
    pending = 0  # line breaks after the last \n so far (a lone \r)
    carry = b""  # a chunk's last \r, which may begin a \r\n
    with path.open("rb") as handle:
        handle.seek(start)
        while at < stop:
            chunk = handle.read(min(COUNT_CHUNK_BYTES, stop - at))
            if not chunk:
                break
            at += len(chunk)
            data = carry + chunk
            carry = b"\r" if data.endswith(b"\r") and at < stop else b""
            data = data[: len(data) - len(carry)]
            last = data.rfind(b"\n")
            if last < 0:
                pending += line_breaks(data)
                continue
            breaks += pending + line_breaks(data[: last + 1])
            pending = line_breaks(data[last + 1 :])
            end = at - len(carry) - (len(data) - last - 1)
    return end, breaks


def _session_counts(path: Path, found: Detected) -> list[list[Any]]:
    query = found.reader.sessions_query if found.reader is not None else None
    assert query is not None
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return [list(row) for row in connection.execute(query)]


def _changed_ranges(
    sessions: list[list[Any]], before: list[list[Any]], size: int
) -> tuple[tuple[Any, Any, int, int], ...]:
    """Ranges of consecutive sessions (in key order) that are new or whose row (message
    count, last message) differs from the last run's."""
    known = {json.dumps(key): rest for key, *rest in before}
    total = sum(count for _, count, *_ in sessions) or 1
    ranges: list[tuple[Any, Any, int, int]] = []
    start: int | None = None
    for number, (key, *rest) in enumerate([*sessions, [None]]):
        changed = key is not None and known.get(json.dumps(key)) != rest
        if changed and start is None:
            start = number
        elif not changed and start is not None:
            chosen = sessions[start:number]
            share = size * sum(messages for _, messages, *_ in chosen) // total
            ranges.append((chosen[0][0], chosen[-1][0], start, share))
            start = None
    return tuple(ranges)


class Manifest:
    """The files of the last run's manifest, looked up by path. The rows stay in their
    frame: an archive of millions of files is a dict of row numbers, not of rows."""

    def __init__(self, frame: pl.DataFrame | None = None) -> None:
        self.frame = pl.DataFrame(schema=MANIFEST_SCHEMA) if frame is None else frame
        self._rows = {path: row for row, path in enumerate(self.frame["path"].to_list())}
        self.seen = np.zeros(self.frame.height, dtype=np.bool_)

    def look_up(self, path: str) -> tuple[int, dict[str, Any]] | None:
        """The file's row number and row, marked as seen; None for a file it does not list."""
        row = self._rows.get(path)
        if row is None:
            return None
        self.seen[row] = True
        return row, self.frame.row(row, named=True)

    def unseen(self) -> pl.Series:
        """The paths no ``look_up`` asked for: files the archive no longer holds."""
        return self.frame["path"].filter(pl.Series(~self.seen))


@dataclass
class Plan:
    """What an incremental run reads, decided file by file as the run lists them."""

    previous: Manifest
    forced_format: str | None = None
    #: when the previous run began listing files: a file modified since may have changed
    #: again within the same mtime tick, and is never taken for unchanged ("racy")
    racy_after_ns: int = 0
    started_ns: int = field(default_factory=time.time_ns)
    records: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, int] = field(
        default_factory=lambda: {"new": 0, "grown": 0, "changed": 0, "unchanged": 0, "deleted": 0}
    )
    bytes_planned: int = 0
    bytes_in_archive: int = 0
    #: rows of the previous manifest that carry over (files unchanged)
    unchanged_rows: list[int] = field(default_factory=list)

    def _change(self, path: Path, size: int, mtime_ns: int) -> tuple[Change, dict[str, Any] | None]:
        found = self.previous.look_up(str(path))
        if found is None:
            return "new", None
        row, before = found
        if before["size"] == size and before["mtime_ns"] == mtime_ns and mtime_ns < self.racy_after_ns:
            self.unchanged_rows.append(row)
            return "unchanged", before
        # the same size with another mtime is a rewrite (or a touch): read again
        if size > before["size"] and fingerprints(path, before["size"]) == (before["head"], before["tail"]):
            return "grown", before
        return "changed", before

    def plan(self, path: Path) -> Detected | None:
        """The file as the run reads it, or None when it is unchanged (not read at all)."""
        key = str(path)
        try:
            stat = path.stat()
        except OSError:
            return detect(path, self.forced_format)  # gone meanwhile: detect says so
        if not S_ISREG(stat.st_mode):
            return detect(path, self.forced_format)  # a pipe, a device: detect says so, without reading it
        self.bytes_in_archive += stat.st_size
        change, before = self._change(path, stat.st_size, stat.st_mtime_ns)
        self.changes[change] += 1
        if change == "unchanged":
            return None
        found = detect(path, self.forced_format)
        head, tail = fingerprints(path, stat.st_size)
        record: dict[str, Any] = {
            "path": key,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "head": head,
            "tail": tail,
            "consumed": None,
            "lines": None,
            "sessions": None,
        }
        reader = found.reader
        resume: Resume | None = None
        planned = stat.st_size
        if reader is not None and reader.line_per_conversation and found.compression is None:
            offset, first_line = 0, 1
            if change == "grown" and before is not None and before["consumed"] is not None:
                offset, first_line = before["consumed"], before["lines"] + 1
            consumed, lines = _whole_lines(path, offset, stat.st_size)
            record |= {"consumed": consumed, "lines": first_line - 1 + lines}
            resume = Resume(offset=offset, first_line=first_line, stop=stat.st_size)
            planned = stat.st_size - offset
        elif reader is not None and reader.layout == "sqlite":
            try:
                sessions = _session_counts(path, found)
            except sqlite3.DatabaseError:
                sessions = None
            if sessions is not None:
                record["sessions"] = json.dumps(sessions)
                if change != "new" and before is not None and before["sessions"] is not None:
                    ranges = _changed_ranges(sessions, json.loads(before["sessions"]), stat.st_size)
                    resume = Resume(sessions=ranges)
                    planned = sum(share for *_, share in ranges)
        self.bytes_planned += planned
        self.records.append(record)
        # ``replace`` keeps what detection found beside the layout (a document's large
        # values, which the read then seeks past)
        return replace(found, resume=resume)

    def manifest(self) -> pl.DataFrame:
        """This run's manifest: the unchanged files' rows, and those of the files it read."""
        kept = self.previous.frame[self.unchanged_rows]
        return pl.concat([kept, pl.DataFrame(self.records, schema=MANIFEST_SCHEMA, orient="row")])

    def figures(self) -> dict[str, Any]:
        deleted = self.previous.unseen()
        return {
            "files": {**self.changes, "deleted": deleted.len()},
            "deleted_files": deleted.head(LISTED_DELETED).to_list(),
            "bytes_read": self.bytes_planned,
            "bytes_in_archive": self.bytes_in_archive,
        }


@dataclass
class State:
    """The committed state of an incremental output folder."""

    out_dir: Path
    run: int = 0
    rules: dict[str, Any] | None = None
    parts: dict[str, list[str]] = field(default_factory=dict)
    manifest: str | None = None
    segments: list[str] = field(default_factory=list)
    #: when the committed run began (``Plan.racy_after_ns`` of the next)
    started_ns: int = 0

    @property
    def folder(self) -> Path:
        return self.out_dir / STATE_DIR

    @property
    def keys_folder(self) -> Path:
        return self.folder / KEYS_DIR

    @classmethod
    def load(cls, out_dir: Path) -> State:
        path = out_dir / STATE_DIR / STATE_JSON
        if not path.is_file():
            return cls(out_dir)
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise StateError(f"cannot read {path}: {error}; --rebuild starts the dataset over") from None
        if saved.get("format_version") != FORMAT_VERSION:
            raise StateError(f"{path} was written by another version of compound; --rebuild starts over")
        return cls(
            out_dir,
            run=saved["run"],
            rules=saved["rules"],
            parts=saved["parts"],
            manifest=saved["manifest"],
            segments=saved["segments"],
            started_ns=saved["started_ns"],
        )

    def committed_run(self) -> int | None:
        """The number of the run the state on disk commits (None when it cannot be read)."""
        try:
            return int(json.loads((self.folder / STATE_JSON).read_text())["run"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def differing_rules(self, rules: dict[str, Any]) -> list[str]:
        """The options whose value differs from the state's."""
        if self.rules is None:
            return []
        return [option for name, option in RULE_OPTIONS.items() if self.rules.get(name) != rules.get(name)]

    def previous_files(self) -> Manifest:
        if self.manifest is None:
            return Manifest()
        return Manifest(pl.read_parquet(self.folder / self.manifest))

    def save(self, rules: dict[str, Any]) -> None:
        """Commit: ``state.json`` replaced in one rename, made durable."""
        self.rules = rules
        saved = {
            "format_version": FORMAT_VERSION,
            "run": self.run,
            "rules": rules,
            "parts": self.parts,
            "manifest": self.manifest,
            "segments": self.segments,
            "started_ns": self.started_ns,
        }
        temporary = self.folder / f"{STATE_JSON}.new"
        with temporary.open("w") as handle:
            json.dump(saved, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.folder / STATE_JSON)
        with contextlib.suppress(OSError):
            fsync_path(self.folder)

    def unreferenced(self) -> Iterator[Path]:
        """Files the state does not name: left by a run that died, or replaced by this one.
        In the dataset's folders only parts are (``PART_FILE``): a file of the user's
        that happens to lie there is not the dataset's to remove."""
        named = {(name, part) for name, parts in self.parts.items() for part in parts}
        for name in DATASETS:
            folder = self.out_dir / name
            if folder.is_dir():
                for path in folder.rglob("*"):
                    relative = path.relative_to(folder).as_posix()
                    if path.is_file() and PART_FILE.fullmatch(path.name) and (name, relative) not in named:
                        yield path
        keep = {STATE_JSON, LOCK, self.manifest}
        for path in self.folder.glob("*"):
            if path.is_file() and path.name not in keep:
                yield path
        segments = set(self.segments)
        if self.keys_folder.is_dir():
            for path in self.keys_folder.iterdir():
                if path.stem not in segments:
                    yield path

    def remove_unreferenced(self) -> None:
        for path in list(self.unreferenced()):
            with contextlib.suppress(OSError):
                path.unlink()
        for name in DATASETS:  # partition folders left empty
            folder = self.out_dir / name
            if folder.is_dir():
                for sub in sorted(folder.rglob("*"), reverse=True):
                    if sub.is_dir():
                        with contextlib.suppress(OSError):
                            sub.rmdir()


def make_durable(files: list[Path]) -> None:
    """Flush the files, and the folders that name them, to disk: what ``state.json`` will
    name must survive a power cut once it does (a kill needs nothing of the kind)."""
    for path in [*files, *sorted({path.parent for path in files})]:
        with contextlib.suppress(OSError):
            fsync_path(path)


def lock_state(out_dir: Path) -> int:
    """An exclusive lock on the output folder's state, held until the process ends."""
    folder = out_dir / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl  # noqa: PLC0415  (not on Windows)
    except ImportError:
        return descriptor
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise StateError(f"another run is writing into {out_dir}; wait for it to end") from None
    return descriptor


#: The name of a part that a run or ``compound compact`` writes (``part-000003.jsonl``,
#: ``part-000001-000007.parquet``).
PART_FILE = re.compile(r"part-\d{6,}(?:-\d{6,})?\.(?:parquet|jsonl|json)")


def part_name(run: int) -> str:
    return f"part-{run:06d}"


@dataclass
class Dataset:
    """An incremental output folder opened by a run: its committed state, locked."""

    state: State
    lock: int
    rebuild: bool = False

    @classmethod
    def open(cls, out_dir: Path, rules: dict[str, Any], *, rebuild: bool = False) -> Dataset:
        """Lock the folder's state and read it. Raises StateError when another run holds
        it, or when its rules are not ``rules`` (unless ``rebuild``: then the run starts
        the dataset over, and what was committed stays until this run commits)."""
        if out_dir.exists() and not out_dir.is_dir():
            raise StateError(f"{out_dir} exists and is not a directory")
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = lock_state(out_dir)
        try:
            try:
                state = State.load(out_dir)
            except StateError:
                if not rebuild:
                    raise
                state = State(out_dir)
            if rebuild:
                return cls(State(out_dir, run=state.run), lock, rebuild=True)
            differing = state.differing_rules(rules)
            if differing:
                assert state.rules is not None
                details = ", ".join(
                    f"{RULE_OPTIONS[name]} {state.rules.get(name)!r} there, {rules.get(name)!r} now"
                    for name in RULE_OPTIONS
                    if RULE_OPTIONS[name] in differing
                )
                raise StateError(
                    f"{out_dir} was made with other rules ({details}); run with the same options, "
                    "or add --rebuild to start it over"
                )
            if state.run:
                state.remove_unreferenced()  # what a run that died before its commit left
        except BaseException:
            os.close(lock)
            raise
        return cls(state, lock)
