"""A set of 64-bit dedup keys that outlives a run: sorted segments on disk, the run's new keys in memory.

A segment is two files in the index's directory: ``<name>.keys``, the keys as raw
little-endian uint64, sorted ascending and unique, and ``<name>.fence``, every
``FENCE_STEP``-th key (the first key of each 4 KiB page of ``.keys``). Opening a
segment reads only its fence into memory (3 MB for 200 million keys) and maps its keys
read-only. A lookup finds each needle's page in the fence, then bisects inside that
one page (9 vectorized gathers), so it reads one page of the keys file per needle.

Segments are kept newest last, each less than half the size of the one before it
(``KeyIndex._merge_tail``), so that a lookup searches O(log n) segments and each key
is rewritten O(log n) times. Merges stream both inputs in chunks of ``MERGE_CHUNK``
keys: memory does not grow with the segments.

Mapped pages count in the process's RSS, and the kernel maps a whole page-cache folio
on a fault: a file just written sits in 2 MB folios, so one needle maps 2 MB, and a
batch of 30,000 random needles maps the whole file (+380 MB on a 50 M-key segment,
+1.5 GB on 200 M) before any ``MADV_DONTNEED`` at the end of the batch could drop it.
So the needles (sorted) are looked up a ``PROBE_WINDOW`` of the keys file at a time,
and each window's pages are dropped from the resident set before the next (they stay
in the page cache): the extra RSS is the window. The cost is numpy's per-call overhead
for each window, and the faults again at every batch. Measured on this machine (2
CPUs, kernel 6.18, ext4), ``KeyIndex.contains`` on one segment, 30 batches of 30,000
needles (half present, half random) in a fresh process after one warm-up lookup;
growth of ``ru_maxrss`` over the 30 batches; segment written just before (2 MB folios):

==================  ================  ==============  ===============
segment             ``PROBE_WINDOW``  time per batch  peak RSS growth
==================  ================  ==============  ===============
50 M keys, 400 MB   no madvise        11 ms           +380 MB
50 M keys           2 MiB             19-24 ms        +1.9 MB
50 M keys           4 MiB             15-19 ms        +3.9 MB
50 M keys           8 MiB             12-13 ms        +7.9 MB
50 M keys           16 MiB            11-18 ms        +16 MB
200 M keys, 1.6 GB  no madvise        13.5 ms         +1,525 MB
200 M keys          2 MiB             55-58 ms        +2.0 MB
200 M keys          4 MiB             28-38 ms        +4.0 MB
200 M keys          8 MiB             24-28 ms        +7.9 MB
200 M keys          16 MiB            19 ms           +16 MB
==================  ================  ==============  ===============

Hence 8 MiB. Where the page cache was refilled after the file had been evicted, it
holds small folios: each fault maps 64 KB around the needle, every needle faults at
every batch, and a batch on 200 M keys takes 90-105 ms (70 ms of it in the kernel),
for the same RSS. From a cold cache the first batch takes 1.8 s on 200 M keys (the
faults' readahead brings in most of the file; with ``MADV_RANDOM`` every batch took
1.3 s instead, so the mapping keeps the default advice), the next ones ~100 ms.
"""

from __future__ import annotations

import itertools
import math
import mmap
import secrets
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
import polars as pl

from jobs.durable import fsync_path
from jobs.seen_keys import SeenKeys

#: Keys per fence entry: 512 keys of 8 bytes are one 4 KiB page of the keys file.
FENCE_STEP = 512
#: Bisection steps inside a page: offsets 256 + 128 + ... + 1 reach every one of its 512 keys.
_PAGE_STEPS = tuple(1 << bit for bit in reversed(range(FENCE_STEP.bit_length() - 1)))
KEYS_SUFFIX = ".keys"
FENCE_SUFFIX = ".fence"
#: On-disk key type: raw little-endian uint64.
KEY_DTYPE = np.dtype("<u8")
_KEY_BYTES = KEY_DTYPE.itemsize
#: In-memory keys that are spilled to a new segment once reached: 1 M keys, 8 MB. A
#: ``SeenKeys`` merge holds up to three times its keys at once, and a spill two (the runs
#: and their concatenation): ~25 MB at most. (Measured over 100 batches of 30,000 keys
#: on a 200 M-key segment: peak RSS +47 MB with 1 M, +64 MB with 2 M, of which ~20 MB is
#: the first lookup's own warm-up in numpy and polars.)
SPILL_KEYS = 1 << 20
#: Keys read from each input of a merge, and written, at a time: 512 K keys (4 MB), so
#: that a merge holds some 25 MB whatever the size of its segments (merging 50 M keys
#: with 25 M: 1.3 s, peak RSS +28 MB).
MERGE_CHUNK = 1 << 19
#: Bytes of a keys file whose needles are looked up between two ``MADV_DONTNEED``: the
#: pages of a segment mapped at once (see the table in the module's docstring).
PROBE_WINDOW = 8 << 20
_PAGE_BYTES = FENCE_STEP * _KEY_BYTES


def _new_name() -> str:
    return f"seg-{secrets.token_hex(8)}"


def _keys_path(directory: Path, name: str) -> Path:
    return directory / f"{name}{KEYS_SUFFIX}"


def _fence_path(directory: Path, name: str) -> Path:
    return directory / f"{name}{FENCE_SUFFIX}"


class _SegmentWriter:
    """Writes a segment from ascending chunks of keys, checking that they are sorted and unique.

    Used as a context manager: the segment is complete when the block ends, and its
    files are deleted if the block raises.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.name = _new_name()
        self._keys = _keys_path(directory, self.name).open("xb")
        self._fence: list[npt.NDArray[np.uint64]] = []
        self._written = 0
        self._last: np.uint64 | None = None

    def __enter__(self) -> _SegmentWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._keys.close()
        if kind is None:
            fence = np.concatenate(self._fence) if self._fence else np.empty(0, KEY_DTYPE)
            fence.tofile(_fence_path(self.directory, self.name))
        else:
            _keys_path(self.directory, self.name).unlink(missing_ok=True)
            _fence_path(self.directory, self.name).unlink(missing_ok=True)

    def write(self, chunk: npt.NDArray[np.uint64]) -> None:
        if not len(chunk):
            return
        chunk = chunk.astype(KEY_DTYPE, copy=False)
        if np.any(chunk[1:] <= chunk[:-1]) or (self._last is not None and chunk[0] <= self._last):
            msg = "segment keys must be sorted ascending and unique"
            raise ValueError(msg)
        # the keys whose index in the whole segment is a multiple of FENCE_STEP
        self._fence.append(chunk[-self._written % FENCE_STEP :: FENCE_STEP].copy())
        chunk.tofile(self._keys)
        self._written += len(chunk)
        self._last = chunk[-1]


def write_segment(directory: Path, keys: npt.NDArray[np.uint64]) -> str:
    """Write sorted, unique uint64 ``keys`` as a new segment in ``directory``; return its name.

    ``keys`` is written a ``MERGE_CHUNK`` at a time, never copied whole. It may be an
    ``np.memmap`` (or a view of one) opened ``"r"``, ``"r+"`` or ``"w+"``: its pages are
    read once, in order, and dropped from the process's resident set behind the
    writing, so that preloading a 1.6 GB file does not map 1.6 GB (a ``"c"`` memmap's
    pages are left mapped: dropping them would lose its changes). The files are on
    disk (fsync) when this returns, so the name can be committed at once.
    """
    if keys.dtype != np.uint64 or keys.ndim != 1:
        msg = f"segment keys must be a 1-d uint64 array, not {keys.ndim}-d {keys.dtype}"
        raise ValueError(msg)
    mapped = _shared_mapping(keys)
    with _SegmentWriter(directory) as writer:
        for start in range(0, len(keys), MERGE_CHUNK):
            stop = min(start + MERGE_CHUNK, len(keys))
            writer.write(keys[start:stop])
            if mapped is not None:
                mapping, offset = mapped
                # up to the page holding the next chunk's first key; at the end, to the end
                begin = (offset + start * _KEY_BYTES) // mmap.PAGESIZE * mmap.PAGESIZE
                end = offset + stop * _KEY_BYTES
                end = end if stop == len(keys) else end // mmap.PAGESIZE * mmap.PAGESIZE
                if end > begin:
                    mapping.madvise(mmap.MADV_DONTNEED, begin, end - begin)
    _sync_segments(directory, [writer.name])
    return writer.name


def _shared_mapping(keys: npt.NDArray[np.uint64]) -> tuple[mmap.mmap, int] | None:
    """The file mapping of an ``np.memmap`` that ``keys`` views, and the offset of ``keys`` in it.

    None unless that mapping is shared or read-only (every mode of ``np.memmap`` but
    ``"c"``, copy on write), so that dropping its pages loses nothing, and ``keys``
    contiguous in it.
    """
    if keys.strides != (_KEY_BYTES,) or not len(keys):
        return None
    modes = set()
    view: object = keys
    while isinstance(view, np.ndarray):
        if isinstance(view, np.memmap):
            modes.add(view.mode)
        view = view.base
    if not isinstance(view, mmap.mmap) or view.closed or not modes or "c" in modes:
        return None
    offset = keys.ctypes.data - np.frombuffer(view, dtype=np.uint8).ctypes.data
    return view, offset


def _sync_segments(directory: Path, names: Sequence[str]) -> None:
    """Flush segments' files, and the directory entries naming them, to disk."""
    for name in names:
        fsync_path(_keys_path(directory, name))
        fsync_path(_fence_path(directory, name))
    fsync_path(directory)


class _Segment:
    """An open segment: its fence in memory, its keys mapped read-only."""

    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self.path = _keys_path(directory, name)
        size = self.path.stat().st_size
        if size % _KEY_BYTES:
            msg = f"{self.path}: {size} bytes is not a whole number of uint64 keys"
            raise ValueError(msg)
        self.length = size // _KEY_BYTES
        self.fence = np.fromfile(_fence_path(directory, name), dtype=KEY_DTYPE)
        if len(self.fence) != math.ceil(self.length / FENCE_STEP):
            msg = f"{name}: {len(self.fence)} fence keys for {self.length} keys"
            raise ValueError(msg)
        self._map: mmap.mmap | None = None
        self.keys: npt.NDArray[np.uint64] = np.empty(0, KEY_DTYPE)
        if self.length:
            with self.path.open("rb") as file:
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            self.keys = np.frombuffer(self._map, dtype=KEY_DTYPE)

    def contains_sorted(self, needles: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        """For ascending ``needles``, whether each is a key of the segment."""
        if not self.length or not len(needles):
            return np.zeros(len(needles), dtype=np.bool_)
        # the page whose first key is the last one <= the needle; -1 below the first key
        page = np.searchsorted(self.fence, needles, side="right") - 1
        inside = page >= 0
        np.maximum(page, 0, out=page)
        # the needles of each window of the keys file, looked up a window at a time
        window = page // (PROBE_WINDOW // _PAGE_BYTES)
        starts = np.flatnonzero(window[1:] != window[:-1]) + 1
        at = page * FENCE_STEP
        found = np.empty(len(needles), dtype=np.bool_)
        for first, stop in itertools.pairwise([0, *starts.tolist(), len(needles)]):
            found[first:stop] = self._bisect(at[first:stop], needles[first:stop])
            self._release(int(window[first]))
        found &= inside
        return found

    def _bisect(self, at: npt.NDArray[np.int64], needles: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        """Whether each needle is a key, bisecting from ``at``, the start of its page.

        ``at`` moves to the last key <= the needle in 9 vectorized steps for 512 keys;
        ``keys[at] <= needle`` holds throughout, with indices past the end (in the last
        page) standing for the last key, which is how ``take`` clips them. Every step
        writes into the same arrays: a window holds tens to hundreds of needles, where
        numpy's cost is per call (38 calls, 45-50 us a window, against 65-85 us with a
        new array for each result).
        """
        probe = np.empty_like(at)
        probed = np.empty_like(needles)
        ahead = np.empty(len(at), dtype=np.bool_)
        for step in _PAGE_STEPS:
            np.add(at, step, out=probe)
            self.keys.take(probe, mode="clip", out=probed)
            np.less_equal(probed, needles, out=ahead)
            np.copyto(at, probe, where=ahead)
        self.keys.take(at, mode="clip", out=probed)
        found: npt.NDArray[np.bool_] = probed == needles
        return found

    def _release(self, window: int) -> None:
        """Drop a window's mapped pages from the process's resident set (not from the page cache)."""
        assert self._map is not None
        start = window * PROBE_WINDOW
        self._map.madvise(mmap.MADV_DONTNEED, start, min(PROBE_WINDOW, len(self._map) - start))

    def close(self) -> None:
        self.keys = np.empty(0, KEY_DTYPE)  # the only view of the map: let it go before closing
        if self._map is not None:
            self._map.close()
            self._map = None


class _Chunks:
    """A segment's keys read in order, ``MERGE_CHUNK`` at a time, without mapping them."""

    def __init__(self, segment: _Segment) -> None:
        self.path = segment.path
        self.length = segment.length
        self.read = 0
        self.buffer: npt.NDArray[np.uint64] = np.empty(0, KEY_DTYPE)

    def fill(self) -> None:
        """Read the next chunk if the buffer is empty and keys are left."""
        if not len(self.buffer) and self.read < self.length:
            count = min(MERGE_CHUNK, self.length - self.read)
            self.buffer = np.fromfile(self.path, dtype=KEY_DTYPE, count=count, offset=self.read * _KEY_BYTES)
            self.read += count

    @property
    def ends(self) -> bool:
        """Whether the buffer holds the segment's last key (or nothing is left)."""
        return self.read == self.length

    def take_through(self, bound: np.uint64 | None) -> npt.NDArray[np.uint64]:
        """Take from the buffer the keys <= ``bound`` (all of them for None)."""
        cut = len(self.buffer) if bound is None else int(np.searchsorted(self.buffer, bound, side="right"))
        taken, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return taken


def _merge(directory: Path, older: _Segment, newer: _Segment) -> str:
    """Write the union of two segments as a new one, a chunk of each at a time."""
    inputs = (_Chunks(older), _Chunks(newer))
    with _SegmentWriter(directory) as writer:
        while True:
            for chunks in inputs:
                chunks.fill()
            if not any(len(chunks.buffer) for chunks in inputs):
                break
            # Every key <= the smallest last key of a buffer that does not end its segment
            # is in the buffers: those keys can be written. One buffer at least empties.
            open_ends = [chunks.buffer[-1] for chunks in inputs if len(chunks.buffer) and not chunks.ends]
            bound = min(open_ends) if open_ends else None
            merged = np.concatenate([chunks.take_through(bound) for chunks in inputs])
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            writer.write(_unique_sorted(merged))
    return writer.name


def _unique_sorted(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    if len(keys) < 2:
        return keys
    distinct = np.empty(len(keys), dtype=np.bool_)
    distinct[0] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    return keys if distinct.all() else keys[distinct]


class _RunKeys(SeenKeys):
    """The run's keys not yet spilled: a ``SeenKeys`` that can be looked up pre-sorted, and drained."""

    def contains_sorted(self, needles: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        found = np.zeros(len(needles), dtype=np.bool_)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, needles), len(run) - 1)
            found |= run[at] == needles
        return found

    def drain(self) -> npt.NDArray[np.uint64]:
        """Take every key out, sorted and unique."""
        if not self._runs:
            return np.empty(0, np.uint64)
        keys = self._runs[0] if len(self._runs) == 1 else np.concatenate(self._runs)
        self._runs.clear()
        keys.sort()
        return _unique_sorted(keys)


class KeyIndex:
    """A persistent set of uint64 keys: committed segments, segments written since, the run's keys.

    ``segments`` (newest last, as ``flush`` lists them) are opened read-only and are
    never modified or deleted here. Segments this object writes and merges away before
    the next ``flush`` are deleted at once; after a ``flush`` every listed segment is
    the caller's, and left alone like the committed ones. The caller deletes the files
    of segments no longer listed, once it has committed the new list, and any
    ``seg-*`` files it finds unlisted after a crash.
    """

    def __init__(
        self, directory: Path, segments: Sequence[str] = (), *, spill_keys: int = SPILL_KEYS
    ) -> None:
        if spill_keys < 1:
            msg = f"spill_keys must be positive, not {spill_keys}"
            raise ValueError(msg)
        self.directory = directory
        self.spill_keys = spill_keys
        self._segments: list[_Segment] = []
        try:
            for name in segments:
                self._segments.append(_Segment(directory, name))
        except BaseException:
            self.close()
            raise
        #: segments nobody else knows of: written, and not yet listed by ``flush``
        self._unlisted: set[str] = set()
        self._memory = _RunKeys()

    def __len__(self) -> int:
        return sum(segment.length for segment in self._segments) + len(self._memory)

    @property
    def segment_names(self) -> list[str]:
        """The segments that make up the index, oldest first (without the keys still in memory)."""
        return [segment.name for segment in self._segments]

    def contains(self, keys: pl.Series) -> pl.Series:
        """For each key, whether it was added before, in this run or a committed one (false for null)."""
        wanted = keys.fill_null(0).to_numpy().astype(np.uint64, copy=False)
        order = np.argsort(wanted)
        ascending = wanted[order]
        found_ascending = self._memory.contains_sorted(ascending)
        for segment in reversed(self._segments):  # newest, smallest first
            todo = ~found_ascending
            if todo.all():
                found_ascending |= segment.contains_sorted(ascending)
            elif todo.any():
                found_ascending[todo] = segment.contains_sorted(ascending[todo])
        found = np.empty_like(found_ascending)
        found[order] = found_ascending
        return pl.Series(keys.name, found) & keys.is_not_null()

    def add(self, keys: pl.Series) -> None:
        """Add the keys (nulls ignored); spill the run's keys to a segment once there are ``spill_keys``."""
        self._memory.add(keys)
        if len(self._memory) >= self.spill_keys:
            self._spill()

    def flush(self) -> list[str]:
        """Write the keys in memory as a segment, merge, and list the segments that now make up the index.

        The new segments are on disk (fsync) when this returns. Files of segments no
        longer listed are left for the caller to delete.
        """
        self._spill()
        if self._unlisted:
            _sync_segments(self.directory, sorted(self._unlisted))
        self._unlisted.clear()
        return self.segment_names

    def close(self) -> None:
        """Unmap the segments. The object is not to be used afterwards."""
        for segment in self._segments:
            segment.close()

    def _spill(self) -> None:
        keys = self._memory.drain()
        if not len(keys):
            return
        with _SegmentWriter(self.directory) as writer:
            writer.write(keys)
        del keys
        self._open(writer.name)
        self._merge_tail()

    def _open(self, name: str) -> None:
        self._unlisted.add(name)
        self._segments.append(_Segment(self.directory, name))

    def _merge_tail(self) -> None:
        """Merge the two newest segments while the newest has at least half the keys of the other."""
        while len(self._segments) >= 2 and 2 * self._segments[-1].length >= self._segments[-2].length:
            older, newer = self._segments[-2:]
            merged = _merge(self.directory, older, newer)
            del self._segments[-2:]
            self._open(merged)
            for segment in (older, newer):
                segment.close()
                if segment.name in self._unlisted:
                    self._unlisted.discard(segment.name)
                    _keys_path(self.directory, segment.name).unlink()
                    _fence_path(self.directory, segment.name).unlink()
