"""Session files' bytes into one record per line, without a copy per line in Python.

polars' ``str.split`` searches for the separator with a general substring searcher and
copies every line: on the 1 GB bench archive it cost 0.9 CPU-seconds, the largest single
step of reading. Here numpy finds the line ends (one vectorized comparison over the
bytes), and the lines go to polars as Arrow binary views into the file's own bytes,
their newlines left out; polars validates the UTF-8 as it casts them to text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

NEWLINE = ord("\n")
SPACE = ord(" ")
NON_ASCII = 0x80


def universal_newlines(data: bytes) -> bytes:
    """``\\r\\n`` and a lone ``\\r`` as ``\\n``, as Python's text mode reads them (the
    reference's ``read_text()``). A search for ``\\r`` first: most files have none, and
    then nothing is copied."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


@dataclass(frozen=True)
class Content:
    """Consecutive whole lines of one file, with universal newlines applied."""

    file_index: int
    file: str
    first_line: int  # 1-based number of the first line in ``data``
    data: bytes


#: A view (Arrow's binary view layout) holds up to this many bytes in itself.
INLINE_BYTES = 12
#: Views point into their buffer with 32-bit offsets.
MAX_VIEW_BUFFER = (1 << 31) - 1


#: While lines average at least this many bytes, the next ``\\n`` is searched for from
#: the last one (memchr); past that, numpy compares every byte that is left.
LONG_LINE_BYTES = 4096


def _long_line_ends(data: bytes) -> tuple[list[int], int]:
    """The first ``\\n`` positions of ``data``, searched for one by one while lines are
    long, and where the search stopped (-1: at the end, every one found).

    A session per line makes lines of tens of KB: one ``find`` per line then costs a
    quarter of comparing every byte with numpy (0.008 against 0.029 s for 200 MB of the
    bench archive). Short lines (a message per line) would cost a Python call each, so
    the searches stop after one per ``LONG_LINE_BYTES`` and numpy takes the rest.
    """
    ends: list[int] = []
    budget = len(data) // LONG_LINE_BYTES + 1
    at = data.find(b"\n")
    while at >= 0 and len(ends) < budget:
        ends.append(at)
        at = data.find(b"\n", at + 1)
    return ends, at


def _line_ends(data: bytes) -> npt.NDArray[np.int64]:
    """The position of every ``\\n`` in ``data``."""
    ends, at = _long_line_ends(data)
    found = np.array(ends, dtype=np.int64)
    if at < 0:
        return found
    rest = np.flatnonzero(np.frombuffer(data, dtype=np.uint8, offset=at) == NEWLINE) + at
    return np.concatenate((found, rest))


#: numpy compares this many bytes at a time when it counts, so that its temporary stays small.
COUNT_CHUNK_BYTES = 1 << 20


def count_line_ends(data: bytes) -> int:
    """``data.count(b"\\n")``, which CPython does a byte at a time while holding the GIL:
    4.9 ms for a 20 MB bench file, against 0.45 ms here (1.9 ms for 100-byte lines)."""
    ends, at = _long_line_ends(data)
    if at < 0:
        return len(ends)
    values = np.frombuffer(data, dtype=np.uint8)
    rest = sum(
        int(np.count_nonzero(values[start : start + COUNT_CHUNK_BYTES] == NEWLINE))
        for start in range(at, len(values), COUNT_CHUNK_BYTES)
    )
    return len(ends) + rest


def _line_bounds(data: bytes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Where each line of ``data`` starts and ends, its ``\\n`` left out. A final line
    without a ``\\n`` counts; nothing after the last ``\\n`` is not a line."""
    breaks = _line_ends(data)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.append(breaks, len(data))
    if len(data) == 0 or data.endswith(b"\n"):
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def _binary_views(data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> pa.Array:
    """The lines as an Arrow binary view array over ``data`` itself: no line is copied
    (one of at most 12 bytes is held in its view, as the layout says)."""
    count = len(starts)
    lengths = (ends - starts).astype(np.uint32)
    values = np.frombuffer(data, dtype=np.uint8)
    views = np.zeros((count, 16), dtype=np.uint8)
    views[:, 0:4] = lengths.view(np.uint8).reshape(count, 4)
    head = np.arange(INLINE_BYTES)
    # a line's first 12 bytes, zero past its end (no data means no lines, so no lookups)
    first_bytes = values[np.minimum(starts[:, None] + head, len(values) - 1)] * (head < lengths[:, None])
    inline = lengths <= INLINE_BYTES
    views[inline, 4:16] = first_bytes[inline]
    views[~inline, 4:8] = first_bytes[~inline, 0:4]  # the prefix; buffer index 0
    views[~inline, 12:16] = starts[~inline].astype(np.uint32).view(np.uint8).reshape(-1, 4)
    return pa.Array.from_buffers(pa.binary_view(), count, [None, pa.py_buffer(views), pa.py_buffer(data)])


def _large_binary(data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> pa.Array:
    """The lines of data too large for views, each with the byte after it (its ``\\n``)."""
    offsets = np.append(starts, ends[-1] if len(ends) else 0).astype(np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(starts), buffers).cast(pa.binary_view())


def binary_spans(data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]) -> pa.Array:
    """``data[starts[i]:ends[i]]`` for each i, as Arrow binary views into ``data`` (copied
    past what 32-bit view offsets reach)."""
    if len(data) <= MAX_VIEW_BUFFER:
        return _binary_views(data, starts, ends)
    return pa.array([data[start:end] for start, end in zip(starts, ends, strict=True)], type=pa.binary_view())


def _may_be_padded(
    data: bytes, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Lines whose first or last byte may belong to whitespace (ASCII up to the space,
    or any byte of a multi-byte character): only these can need a strip."""
    values = np.frombuffer(data, dtype=np.uint8)
    nonempty = ends > starts
    first, last = values[starts[nonempty]], values[ends[nonempty] - 1]
    padded = np.zeros(len(starts), dtype=np.bool_)
    padded[nonempty] = (first <= SPACE) | (first >= NON_ASCII) | (last <= SPACE) | (last >= NON_ASCII)
    return padded


#: Contents up to this size are joined, a run of consecutive ones at a time, and their
#: lines found in one pass: a content's lines cost a few numpy calls whatever their
#: number, which a folder of thousands of small session files paid thousands of times
#: (and its lines came as thousands of Arrow chunks). A larger content is not copied.
JOIN_BYTES = 64 * 1024


def _joined(run: Sequence[Content]) -> tuple[bytes, npt.NDArray[np.int64]]:
    """The run's contents one after the other, each ended with a ``\\n`` (one that has
    none gets one: its last line stays its own), and where each starts."""
    parts, starts, at = [], [], 0
    for content in run:
        starts.append(at)
        parts.append(content.data)
        at += len(content.data)
        if content.data and not content.data.endswith(b"\n"):
            parts.append(b"\n")
            at += 1
    starts.append(at)
    return b"".join(parts), np.array(starts, dtype=np.int64)


def _runs(contents: Sequence[Content]) -> Iterator[Sequence[Content]]:
    """Consecutive small contents (``JOIN_BYTES``) together, each larger one alone."""
    run: list[Content] = []
    for content in contents:
        if len(content.data) <= JOIN_BYTES:
            run.append(content)
            continue
        if run:
            yield run
            run = []
        yield [content]
    if run:
        yield run


def raw_lines(contents: Sequence[Content]) -> pl.DataFrame:
    """``file_index``, ``file``, ``line``, ``raw`` (the line's bytes without its ``\\n``)
    and ``padded`` (the line may start or end with whitespace), one row per line of
    every content, in order. The lines are views into the contents' own bytes (small
    contents: into one copy of them all, ``JOIN_BYTES``)."""
    chunks, counts, padded = [], [], []
    for run in _runs(contents):
        data, content_starts = _joined(run) if len(run) > 1 else (run[0].data, None)
        starts, ends = _line_bounds(data)
        if len(data) <= MAX_VIEW_BUFFER:
            chunks.append(_binary_views(data, starts, ends))
            padded.append(_may_be_padded(data, starts, ends))
        else:
            chunks.append(_large_binary(data, starts, ends))
            padded.append(np.ones(len(starts), dtype=np.bool_))
        if content_starts is None:
            counts.append(len(starts))
        else:  # a content's lines are those that start within it
            counts.extend(np.diff(np.searchsorted(starts, content_starts)).tolist())
    places = pl.DataFrame(
        {
            "file_index": pl.Series([content.file_index for content in contents], dtype=pl.Int32),
            "file": pl.Series([content.file for content in contents], dtype=pl.String),
            "first_line": pl.Series([content.first_line for content in contents], dtype=pl.Int64),
            "count": pl.Series(counts, dtype=pl.Int64),
        }
    )
    lines = places.select(
        "file_index",
        "file",
        pl.int_ranges("first_line", pl.col("first_line") + pl.col("count"), dtype=pl.Int64).alias("line"),
    ).explode("line")
    raw = pl.Series("raw", pa.chunked_array(chunks, type=pa.binary_view()), dtype=pl.Binary)
    may_be_padded = pl.Series("padded", np.concatenate(padded) if padded else [], dtype=pl.Boolean)
    return lines.filter(pl.col("line").is_not_null()).with_columns(raw, may_be_padded)
