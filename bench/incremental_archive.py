"""The material of the incremental targets, built from ``gen_archive.py`` output.

``compound pairs --incremental`` reads only what changed since its last run into the
same output folder. The bench holds it to an archive that grew by about 1% (new files,
and whole lines appended to existing ones), to an archive that did not change, and to a
dedup index preloaded with the keys of a much larger archive. This module builds those:

- a working copy of a generated archive (:func:`sync_working_copy`), which the growth
  mutates and which is put back as it was before each round (the grown files are cut
  back to their generated size, the new files deleted), so that the generated archive
  itself stays as the generator wrote it;
- the growth (:func:`plan_growth`, :func:`apply_growth`): the files of a small second
  generated archive, half copied in as new files (named as the generator would have
  named the next ones), half appended, whole, to existing files: whole lines only,
  each ending with a newline, the same bytes every time;
- :func:`stat_files`: the time to list the archive and ``os.stat`` every file, the
  part of an incremental run with nothing new that grows with the archive;
- :func:`write_random_segment`: a dedup-index segment (``jobs.key_index``) of random
  sorted unique keys, made a chunk at a time, and :func:`preload_segment`, which makes
  an incremental dataset's state list it (as if its earlier runs had kept those keys);
- :func:`pair_ids`: the ``pair_id`` column of Parquet pair files, for the parity of an
  incremental dataset's parts with a full run's ``pairs.parquet``.

Like ``bench/shapes.py``, it imports nothing from the bench; the job's modules (and
numpy, polars) only inside the functions that need them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

#: The session files of a generated archive.
JSONL_GLOB = "*.jsonl"
#: Keys generated and written at a time: 4 M keys, 32 MB.
KEY_CHUNK = 1 << 22
#: The generated keys spread over this share of the uint64 range: the random gaps
#: between them average ``KEY_SPAN * 2**64 / count``, and their sum stays below 2**64
#: with thousands of standard deviations to spare.
KEY_SPAN = 0.99


def session_files(folder: Path) -> list[Path]:
    """The archive's ``*.jsonl`` files, relative to ``folder``, in reading order."""
    return sorted(path.relative_to(folder) for path in folder.rglob(JSONL_GLOB))


# --- the working copy -------------------------------------------------------------------


def sync_working_copy(source: Path, copy: Path, files: Sequence[Path], grown: Sequence[Path]) -> int:
    """Make ``copy`` hold ``files`` (relative paths) as ``source`` holds them, and nothing
    else; return how many files were copied.

    A file of ``grown`` that is larger than the source's is cut back to the source's size
    (only whole lines are ever appended to it); any other file whose size differs is
    copied again (``shutil.copy2``, so the copy keeps the source's mtime). Files that
    ``source`` does not hold (the new files of the growth) are deleted.
    """
    wanted = set(files)
    for path in sorted(copy.rglob("*")) if copy.is_dir() else []:
        if path.is_file() and path.relative_to(copy) not in wanted:
            path.unlink()
    cut_back = set(grown)
    copied = 0
    for relative in files:
        original, target = source / relative, copy / relative
        size = original.stat().st_size
        try:
            current: int | None = target.stat().st_size
        except FileNotFoundError:
            current = None
        if current == size:
            continue
        if current is not None and current > size and relative in cut_back:
            os.truncate(target, size)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(original, target)
        copied += 1
    return copied


def wait_until_settled(folder: Path, margin_s: float) -> float:
    """Sleep until every file in ``folder`` was last modified at least ``margin_s`` ago
    (an incremental run reads a file modified shortly before its predecessor began again,
    as possibly changed); return the seconds slept."""
    newest = max((path.stat().st_mtime for path in folder.rglob("*") if path.is_file()), default=0.0)
    wait = newest + margin_s - time.time()
    if wait > 0:
        time.sleep(wait)
    return max(0.0, wait)


# --- the growth -------------------------------------------------------------------------


@dataclass(frozen=True)
class Growth:
    """What an archive grows by: files copied in, and files appended to existing ones."""

    #: (growth file, path relative to the archive): copied in as a new file
    new_files: tuple[tuple[Path, Path], ...]
    #: (growth file, existing file relative to the archive): appended to it
    appends: tuple[tuple[Path, Path], ...]

    @property
    def grown(self) -> list[Path]:
        return sorted({target for _, target in self.appends})

    def bytes(self) -> int:
        return sum(source.stat().st_size for source, _ in (*self.new_files, *self.appends))

    def as_dict(self) -> dict[str, Any]:
        return {
            "new_files": [str(target) for _, target in self.new_files],
            "grown_files": [str(target) for target in self.grown],
            "bytes": self.bytes(),
        }


def generated_name(number: int) -> Path:
    """Where ``gen_archive.py`` writes its file number ``number`` (month folders in turn)."""
    return Path(f"2026-{1 + number % 12:02d}") / f"sessions_{number:04d}.jsonl"


def plan_growth(
    files: Sequence[Path], growth_files: Sequence[Path], *, grown_files: int, first_number: int
) -> Growth:
    """The growth of an archive of ``files`` (relative, in reading order) by ``growth_files``
    (paths of another generated archive, in reading order).

    Every other growth file (the first, the third, ...) is copied in as a new file, named
    as the generator names its files from ``first_number`` on; the others are appended to
    ``grown_files`` of the archive's files, spread evenly over the reading order (one
    each, in turn).
    """
    if not files or not growth_files:
        msg = "an archive and its growth need files"
        raise ValueError(msg)
    count = min(grown_files, len(files))
    targets = [files[index * len(files) // count] for index in range(count)]
    existing = set(files)
    new_files = []
    for number, source in enumerate(growth_files[0::2], start=first_number):
        name = generated_name(number)
        if name in existing:
            msg = f"the growth's new file {name} is already in the archive"
            raise ValueError(msg)
        new_files.append((source, name))
    appends = [(source, targets[index % count]) for index, source in enumerate(growth_files[1::2])]
    return Growth(tuple(new_files), tuple(appends))


def apply_growth(archive: Path, growth: Growth) -> None:
    """Copy the new files in and append the others' bytes to their files."""
    for source, name in growth.new_files:
        target = archive / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for source, name in growth.appends:
        data = source.read_bytes()
        if not data.endswith(b"\n"):
            msg = f"{source} does not end with a newline: appended, it would merge two lines"
            raise ValueError(msg)
        with (archive / name).open("ab") as handle:
            handle.write(data)


# --- the stat of an archive -------------------------------------------------------------


def stat_files(folder: Path) -> tuple[float, int]:
    """Seconds to walk ``folder`` (``os.scandir``, recursively) and stat every file found
    (``DirEntry.stat``, one ``stat`` call each), in this process; and the number of files."""
    started = time.perf_counter()
    pending, count = [os.fspath(folder)], 0
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    entry.stat()  # a stat call: scandir gives only the entry's type on Linux
                    count += 1
    return time.perf_counter() - started, count


# --- a preloaded dedup index ------------------------------------------------------------


def write_random_segment(directory: Path, count: int, seed: int) -> str:
    """Write ``count`` random, sorted, unique uint64 keys as a segment of a dedup index in
    ``directory`` (``jobs.key_index.write_segment``); return its name.

    The keys are the running sums of random gaps (uniform in ``[1, 2g)``, ``g`` such that
    they end near ``KEY_SPAN`` of the uint64 range): sorted and unique by construction,
    made ``KEY_CHUNK`` keys at a time into a scratch file beside the segment, which is
    then mapped read-only and written as the segment (the index's own writer, checking
    the order), and deleted. Memory stays at a chunk, whatever ``count``.
    """
    import numpy as np  # noqa: PLC0415 - the bench's other parts do without numpy

    from jobs.key_index import write_segment  # noqa: PLC0415 - imports polars

    if count < 1:
        msg = f"count must be positive, not {count}"
        raise ValueError(msg)
    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory / "keys.scratch"
    rng = np.random.default_rng(seed)
    gap = int(KEY_SPAN * 2**64 / count)
    last = 0
    try:
        with scratch.open("wb") as handle:
            for start in range(0, count, KEY_CHUNK):
                size = min(KEY_CHUNK, count - start)
                gaps = rng.integers(1, min(2 * gap, 2**63), size=size, dtype=np.uint64)
                if last + float(gaps.sum(dtype=np.float64)) >= 2**64 * (1 - 1e-9):
                    msg = "the random keys ran past 2**64"
                    raise ValueError(msg)
                keys = np.cumsum(gaps, dtype=np.uint64)
                keys += np.uint64(last)
                last = int(keys[-1])
                keys.tofile(handle)
        mapped = np.memmap(scratch, dtype=np.uint64, mode="r")
        try:
            return write_segment(directory, mapped)
        finally:
            del mapped
    finally:
        scratch.unlink(missing_ok=True)


def preload_segment(dataset: Path, segments: Path, name: str) -> None:
    """Make the incremental dataset in ``dataset`` hold the segment ``name`` of the folder
    ``segments`` as its oldest: its files hard-linked (or, across file systems,
    symlinked) into the dataset's index, and the name put first in ``state.json``'s
    segments (the index keeps its segments oldest and largest first)."""
    from jobs.incremental import KEYS_DIR, STATE_DIR, STATE_JSON  # noqa: PLC0415 - imports polars
    from jobs.key_index import FENCE_SUFFIX, KEYS_SUFFIX  # noqa: PLC0415

    state_folder = dataset / STATE_DIR
    keys = state_folder / KEYS_DIR
    keys.mkdir(parents=True, exist_ok=True)
    for suffix in (KEYS_SUFFIX, FENCE_SUFFIX):
        source, target = segments / f"{name}{suffix}", keys / f"{name}{suffix}"
        try:
            target.hardlink_to(source)
        except OSError:
            target.symlink_to(source)
    state_file = state_folder / STATE_JSON
    state = json.loads(state_file.read_text())
    state["segments"] = [name, *(segment for segment in state["segments"] if segment != name)]
    temporary = state_file.with_name(f"{STATE_JSON}.bench")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(state_file)


# --- pairs ------------------------------------------------------------------------------


def parquet_files(path: Path) -> list[Path]:
    """``path`` if it is a file, else the ``*.parquet`` files under it (partitioned outputs)."""
    return [path] if path.is_file() else sorted(path.rglob("*.parquet"))


def pair_ids(files: Sequence[Path]) -> pl.Series:
    """The ``pair_id`` column of the Parquet pair files, concatenated, sorted."""
    import polars as pl  # noqa: PLC0415

    if not files:
        return pl.Series("pair_id", [], dtype=pl.String)
    frame = pl.scan_parquet(list(files)).select("pair_id").collect()
    return frame["pair_id"].sort()
