"""Raw file contents into one row per line."""

from __future__ import annotations

import polars as pl

from transforms.text import py_strip


def split_lines(contents: pl.LazyFrame) -> pl.LazyFrame:
    """One row per non-blank line (``file_index``, ``file``, ``line``, ``text``) of each ``content``.

    ``first_line`` is the line number of the content's first line (contents may be
    consecutive pieces of one file). Other columns of ``contents`` are kept.

    Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (the reference reads files with
    universal newlines) and are trimmed with Python's ``strip()``; blank lines are dropped.
    """
    universal_newlines = (
        pl.col("content")
        .str.replace_all("\r\n", "\n", literal=True)
        .str.replace_all("\r", "\n", literal=True)
    )
    return (
        contents.with_columns(universal_newlines.str.split("\n"))
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
