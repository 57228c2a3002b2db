"""Session files' bytes into one record per line, without a copy per line in Python.

polars' ``str.split`` searches for the separator with a general substring searcher and
copies every line: on the 1 GB bench archive it cost 0.9 CPU-seconds, the largest single
step of reading. Here numpy finds the line ends (one vectorized comparison over the
bytes), and the lines go to polars as one Arrow binary array over the file's own bytes;
polars validates the UTF-8 as it casts them to text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

NEWLINE = ord("\n")


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


def line_offsets(data: bytes) -> np.ndarray:
    """Where each line of ``data`` starts, then where the last one ends: line ``k`` is
    ``data[offsets[k]:offsets[k + 1]]``, its ``\\n`` included. A final line without a
    ``\\n`` counts; nothing after the last ``\\n`` is not a line."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE) + 1
    tail = [len(data)] if len(data) > (ends[-1] if len(ends) else 0) else []
    return np.concatenate(([0], ends, tail)).astype(np.int64)


def raw_lines(contents: Sequence[Content]) -> pl.DataFrame:
    """``file_index``, ``file``, ``line`` and ``raw`` (the line's bytes, ``\\n`` included),
    one row per line of every content, in order."""
    chunks, counts = [], []
    for content in contents:
        offsets = line_offsets(content.data)
        count = len(offsets) - 1
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(content.data)]
        chunks.append(pa.LargeBinaryArray.from_buffers(pa.large_binary(), count, buffers))
        counts.append(count)
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
    raw = pl.Series("raw", pa.chunked_array(chunks, type=pa.large_binary()), dtype=pl.Binary)
    return lines.filter(pl.col("line").is_not_null()).with_columns(raw)
