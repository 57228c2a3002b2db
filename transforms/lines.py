"""Raw file contents into one row per line."""

from __future__ import annotations

import polars as pl

from transforms.text import py_strip


def split_lines(contents: pl.LazyFrame) -> pl.LazyFrame:
    """One row per non-blank line (``file_index``, ``file``, ``line``, ``text``) of each ``content``.

    ``first_line`` is the line number of the content's first line (contents may be
    consecutive pieces of one file). Other columns of ``contents`` are kept.

    Lines end at ``\\n``: contents come with universal newlines already applied
    (``universal_newlines``), and lines are trimmed with Python's ``strip()``; blank lines
    are dropped.
    """
    return (
        contents.with_columns(pl.col("content").str.split("\n"))
        .with_columns(
            pl.int_ranges(
                pl.col("first_line"), pl.col("first_line") + pl.col("content").list.len(), dtype=pl.Int64
            ).alias("line")
        )
        .explode("content", "line")
        .with_columns(py_strip(pl.col("content")).alias("text"))
        .filter(pl.col("text") != "")
        .drop("content", "first_line")
    )


def universal_newlines(data: bytes) -> bytes:
    """``\\r\\n`` and a lone ``\\r`` as ``\\n``, as Python's text mode reads them (the
    reference's ``read_text()``). A search for ``\\r`` first: most files have none, and
    then nothing is copied."""
    if b"\r" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
