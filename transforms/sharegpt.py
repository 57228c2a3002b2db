"""ShareGPT session records (one JSON object per line) into the canonical message table.

Layout: ``{"id": ..., "model": ..., "conversations": [{"from": ..., "value": ...}]}``.
A missing ``id`` or ``model`` reads as ``"unknown"``, as in the reference; a ``null`` one
stays null.
"""

from __future__ import annotations

import polars as pl

from transforms.schema import MESSAGE_SCHEMA, SHAREGPT_ROLES
from transforms.text import py_strip

MESSAGE_DTYPE = pl.Struct({"from": pl.String, "value": pl.String})
SESSION_DTYPE = pl.Struct({"id": pl.String, "model": pl.String, "conversations": pl.List(MESSAGE_DTYPE)})

#: A record the typed decoder could read wrongly: a key of ours holding something other
#: than a string (the decoder turns numbers into strings and ``null`` into "missing"),
#: or ``conversations`` holding something other than a list. Such lines take the exact
#: (slower) path. Nested keys of the same name only cost speed, never correctness.
NEEDS_EXACT_PATH = r'"(?:id|model|from|value)"\s*:\s*[^"\s]|"conversations"\s*:\s*[^\[\s]'

MISSING = "unknown"


def split_lines(files: pl.LazyFrame) -> pl.LazyFrame:
    """One row per line (``file_index``, ``file``, ``line``, ``record``) of each ``content``.

    ``first_line`` is the line number of the content's first line (contents may be
    consecutive pieces of one file).

    Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (the reference reads files with
    universal newlines) and are trimmed with Python's ``strip()``; blank lines are dropped.
    """
    universal_newlines = (
        pl.col("content")
        .str.replace_all("\r\n", "\n", literal=True)
        .str.replace_all("\r", "\n", literal=True)
    )
    return (
        files.with_columns(universal_newlines.str.split("\n"))
        .with_columns(
            pl.int_ranges(
                pl.col("first_line"), pl.col("first_line") + pl.col("content").list.len(), dtype=pl.Int64
            ).alias("line")
        )
        .explode("content", "line")
        .with_columns(py_strip(pl.col("content")).alias("record"))
        .filter(pl.col("record") != "")
        .select("file_index", "file", "line", "record")
    )


def route_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``fast``: the record is an object the typed decoder reads exactly."""
    record = pl.col("record")
    object_like = record.str.starts_with("{") & record.str.ends_with("}")
    return lines.with_columns((object_like & ~record.str.contains(NEEDS_EXACT_PATH)).alias("fast"))


def messages_from_sessions(sessions: pl.LazyFrame) -> pl.LazyFrame:
    """Explode decoded sessions (``file_index``, ``file``, ``line``, ``session``) into messages.

    ``session`` is a ``SESSION_DTYPE`` struct whose null ``id``/``model`` mean "missing"
    and whose ``value`` is null only where the message had no string value.
    """
    conversations = pl.col("session").struct.field("conversations")
    return (
        sessions.filter(conversations.list.len() > 0)
        .select(
            "file_index",
            "file",
            "line",
            pl.col("session").struct.field("id").fill_null(MISSING).alias("session_id"),
            pl.col("session").struct.field("model").fill_null(MISSING).alias("model"),
            conversations.alias("message"),
            pl.int_ranges(conversations.list.len(), dtype=pl.Int32).alias("turn"),
        )
        .explode("message", "turn")
        .select(
            "file_index",
            "file",
            "line",
            "session_id",
            "model",
            "turn",
            pl.col("message").struct.field("from").replace_strict(SHAREGPT_ROLES, default=None).alias("role"),
            pl.col("message").struct.field("from").alias("role_raw"),
            pl.col("message").struct.field("value").alias("text"),
        )
        .cast(dict(MESSAGE_SCHEMA))  # type: ignore[arg-type]
    )
