"""ShareGPT sessions into the canonical message table.

Layout: ``{"id": ..., "model": ..., "conversations": [{"from": ..., "value": ...}]}``, one
session per line (the reference's input), or a JSON array of sessions, or one session
per file. Hermes Agent's trajectory and batch-runner files are this layout without an
``id``: a session without one is named after its place, ``file:line`` (``file[index]``
inside a JSON document). A missing ``model`` reads as ``"unknown"``, as in the
reference; a ``null`` one stays null.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from transforms.readers import Reader, elements_with_header, split_document_records
from transforms.schema import SHAREGPT_ROLES, conform

FORMAT = "sharegpt"
MESSAGE_DTYPE = pl.Struct({"from": pl.String, "value": pl.String})
SESSION_DTYPE = pl.Struct({"id": pl.String, "model": pl.String, "conversations": pl.List(MESSAGE_DTYPE)})

#: A record the typed decoder could read wrongly: a key of ours holding something other
#: than a string (the decoder turns numbers into strings and ``null`` into "missing"),
#: or ``conversations`` holding something other than a list. Such records take the exact
#: (slower) path. Nested keys of the same name only cost speed, never correctness.
NEEDS_EXACT_PATH = r'"(?:id|model|from|value)"\s*:\s*[^"\s]|"conversations"\s*:\s*[^\[\s]'

MISSING = "unknown"


def needs_exact(text: pl.Expr) -> pl.Expr:
    """Records the typed decoder cannot read exactly."""
    object_like = text.str.starts_with("{") & text.str.ends_with("}")
    return ~object_like | text.str.contains(NEEDS_EXACT_PATH)


def needs_exact_document(text: pl.Expr) -> pl.Expr:
    return text.str.contains(NEEDS_EXACT_PATH)


def _is_session(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("conversations"), list)


def sniff_lines(head: list[Any]) -> bool:
    return any(_is_session(value) for value in head)


def sniff_document(document: Any) -> bool:
    if isinstance(document, list):
        return bool(document) and _is_session(document[0])
    return _is_session(document)


def messages(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Message rows of the ShareGPT shape into the canonical table.

    ``rows`` has ``file_index``, ``file``, ``line``, ``conversation``, ``place`` (what a
    session without an id is called), ``session_id`` (null when the session has none),
    ``model``, ``turn``, ``role_raw`` (``from``) and ``text`` (``value``).
    """
    is_call = pl.col("role_raw") == "function_call"
    return conform(
        rows.with_columns(
            pl.col("session_id").fill_null(pl.col("place")),
            pl.col("role_raw").replace_strict(SHAREGPT_ROLES, default=None).alias("role"),
            pl.lit(FORMAT).alias("format"),
            (is_call | pl.col("text").str.contains("<tool_call>", literal=True))
            .fill_null(False)
            .alias("has_tool_calls"),
            pl.when(is_call).then(None).otherwise(pl.col("text")).alias("text"),
        )
    )


def _explode_sessions(sessions: pl.LazyFrame) -> pl.LazyFrame:
    """``file_index``, ``file``, ``line``, ``conversation``, ``place`` and a ``session``
    struct (``SESSION_DTYPE``) into message rows."""
    conversations = pl.col("session").struct.field("conversations")
    return messages(
        sessions.filter(conversations.list.len() > 0)
        .select(
            "file_index",
            "file",
            "line",
            "conversation",
            "place",
            pl.col("session").struct.field("id").alias("session_id"),
            pl.col("session").struct.field("model").fill_null(MISSING).alias("model"),
            conversations.alias("message"),
            pl.int_ranges(conversations.list.len(), dtype=pl.Int32).alias("turn"),
        )
        .explode("message", "turn")
        .with_columns(
            pl.col("message").struct.field("from").alias("role_raw"),
            pl.col("message").struct.field("value").alias("text"),
        )
        .drop("message")
    )


def _read_records(records: pl.LazyFrame, place: pl.Expr, line: pl.Expr) -> pl.LazyFrame:
    """A session per record; the conversation is the record's ``line``."""
    return _explode_sessions(
        records.with_columns(
            pl.col("text").str.json_decode(SESSION_DTYPE).alias("session"),
            pl.col("line").alias("conversation"),
            place.alias("place"),
            line.alias("line"),
        ).drop("text")
    )


def read_lines(records: pl.LazyFrame) -> pl.LazyFrame:
    """One session per line; the conversation is its line."""
    return _read_records(records, pl.format("{}:{}", "file", "line"), pl.col("line"))


def read_elements(records: pl.LazyFrame) -> pl.LazyFrame:
    """A session per element of a JSON array; the conversation is its position (``line``)."""
    return _read_records(records, pl.format("{}[{}]", "file", "line"), pl.lit(None, pl.Int64))


def sniff_elements(elements: list[Any]) -> bool:
    return bool(elements) and _is_session(elements[0])


#: What ``decode_document`` makes of a session document's records: a row per message of
#: ``conversations`` (``line``: its position; ``role_raw`` and ``text``: ``from`` and
#: ``value``) and one for the session (``line`` null; its ``session_id`` and ``model``).
#: ``jobs.sharegpt_exact`` decodes the records the typed decoder cannot read exactly into
#: the same rows.
DECODED_SCHEMA = pl.Schema(
    {
        "file_index": pl.Int32(),
        "file": pl.String(),
        "line": pl.Int64(),
        "session_id": pl.String(),
        "model": pl.String(),
        "role_raw": pl.String(),
        "text": pl.String(),
    }
)


def decode_document(records: pl.LazyFrame) -> pl.LazyFrame:
    """A session document's records (``Reader.decode``) into ``DECODED_SCHEMA``."""
    session = pl.col("text").str.json_decode(pl.Struct({"id": pl.String, "model": pl.String}))
    message = pl.col("text").str.json_decode(MESSAGE_DTYPE)
    return split_document_records(
        records,
        header=[
            session.struct.field("id").alias("session_id"),
            session.struct.field("model").fill_null(MISSING).alias("model"),
        ],
        element=[message.struct.field("from").alias("role_raw"), message.struct.field("value").alias("text")],
    ).select(pl.col(name).cast(dtype) for name, dtype in DECODED_SCHEMA.items())


def read_decoded_documents(decoded: pl.LazyFrame) -> pl.LazyFrame:
    """Session documents decoded a piece at a time (``DECODED_SCHEMA``); the conversation
    is the session's position, 0, as in ``read_document``."""
    return messages(
        elements_with_header(decoded, ["session_id", "model"], ["role_raw", "text"]).select(
            "file_index",
            "file",
            pl.lit(None, pl.Int64).alias("line"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.format("{}[0]", "file").alias("place"),
            "session_id",
            "model",
            pl.col("line").cast(pl.Int32).alias("turn"),
            "role_raw",
            "text",
        )
    )


def read_document(records: pl.LazyFrame) -> pl.LazyFrame:
    """A JSON array of sessions, or one session, one JSON document a record; the
    conversation is its position (``Reader.read_whole``: a small session document; a
    larger one is decoded a piece at a time, ``decode_document``)."""
    as_array = (
        pl.when(pl.col("text").str.starts_with("["))
        .then(pl.col("text"))
        .otherwise(pl.concat_str(pl.lit("["), pl.col("text"), pl.lit("]")))
    )
    sessions = (
        records.with_columns(as_array.str.json_decode(pl.List(SESSION_DTYPE)).alias("session"))
        .drop("text")
        .with_columns(pl.int_ranges(pl.col("session").list.len(), dtype=pl.Int64).alias("conversation"))
        .explode("session", "conversation")
        .filter(pl.col("session").is_not_null())
        .with_columns(
            pl.lit(None, pl.Int64).alias("line"),
            pl.format("{}[{}]", "file", "conversation").alias("place"),
        )
    )
    return _explode_sessions(sessions)


READERS = (
    Reader(
        FORMAT,
        "lines",
        sniff_lines,
        read_lines,
        line_per_conversation=True,
        needs_exact=needs_exact,
    ),
    Reader(FORMAT, "array", sniff_elements, read_elements, needs_exact=needs_exact),
    Reader(
        FORMAT,
        "document",
        sniff_document,
        read_decoded_documents,
        needs_exact=needs_exact_document,
        decode=decode_document,
        lists=("conversations",),
        read_whole=read_document,
    ),
)
