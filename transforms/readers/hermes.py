"""Hermes Agent sessions into the canonical message table.

Hermes Agent (NousResearch) keeps OpenAI-shaped messages in four places:

- ``hermes_session``: ``~/.hermes/sessions/session_<id>.json``, one session per file
  (``session_id``, ``model``, ``platform``, ``session_start``, ``messages``).
- ``hermes_gateway``: ``~/.hermes/sessions/<session_id>.jsonl``, one MESSAGE per line,
  usually after a ``{"role": "session_meta", "model": ...}`` line that is no message.
  The session id is the file name.
- ``hermes_db``: ``~/.hermes/state.db``, tables ``sessions`` and ``messages``; a
  conversation per session.
- ``hermes_export``: ``hermes sessions export out.jsonl``, a session row with its
  ``messages`` rows per line.

Messages are read by ``transforms.readers.openai.normalise``; on top of it, what Hermes
itself writes into a conversation is not a person's prompt: a context-compaction summary
is injected context (the prompt a person typed after it, in the same message, stays one),
and the background-review and compaction-continuation prompts are harness commands.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from transforms.readers import Reader, elements_with_header, split_document_records
from transforms.readers.openai import (
    MESSAGE_DTYPE,
    MESSAGE_FIELDS,
    MESSAGES,
    is_message_list,
    message_struct,
    normalise,
    one_object_per_line,
    rename_string_keys,
)
from transforms.schema import SYSTEM, USER, conform

SESSION, GATEWAY, DB, EXPORT = "hermes_session", "hermes_gateway", "hermes_db", "hermes_export"

SESSION_DTYPE = pl.Struct(
    {"session_id": pl.String, "id": pl.String, "model": pl.String, "messages": MESSAGES}
)
GATEWAY_DTYPE = pl.Struct({**MESSAGE_FIELDS, "model": pl.String})

#: Session log keys (``hermes_session``) and session-row keys (``hermes_export``).
SESSION_KEYS = frozenset({"session_id", "session_start", "platform"})
EXPORT_KEYS = frozenset({"started_at", "source"})
#: Tables only a Hermes state database has besides ``sessions`` and ``messages``
#: (other agents' stores have those two as well).
DB_MARKER_TABLES = frozenset({"messages_fts", "state_meta", "system_prompts", "session_model_usage"})

#: Messages in the order Hermes wrote them, one conversation per session. Only columns
#: every schema version has (reasoning is never read: it is not text).
#: The messages of the sessions whose ids lie between ``:first`` and ``:last``: a keyed
#: range, which the index on ``messages(session_id, ...)`` finds directly. ``read_db``
#: puts them in order (an ORDER BY here doubled the query's time, for a sort on disk).
QUERY = """
SELECT m.session_id AS session_id, s.model AS model, m.rowid AS message_order, m.role AS role,
       m.content AS content, m.tool_call_id AS tool_call_id, m.tool_calls AS tool_calls,
       m.tool_name AS tool_name, m.timestamp AS timestamp
FROM messages AS m LEFT JOIN sessions AS s ON s.id = m.session_id
WHERE m.session_id BETWEEN :first AND :last
"""
#: Every session id with its message count, in id order (read from the index alone).
SESSIONS_QUERY = (
    "SELECT session_id AS key, COUNT(*) AS messages, MAX(rowid) AS last_message FROM messages"
    " GROUP BY session_id ORDER BY session_id"
)

#: A context-compaction summary (current and legacy prefixes, and the form merged into
#: the following message); what a person typed may follow its end marker.
COMPACTION_PATTERN = r"^\s*\[(?:CONTEXT COMPACTION|CONTEXT SUMMARY\]|PRIOR CONTEXT)"
AFTER_COMPACTION = r"(?s)--- END OF CONTEXT SUMMARY[^\n]*?---\s*(.*)$"
#: User messages the Hermes harness writes: background-review and continuation prompts,
#: a skill or command loaded on a slash command (``[IMPORTANT: ...]`` now, ``[SYSTEM: ...]``
#: in older releases), cron-job, background-process and delegation notices, and the task
#: list carried over a compaction.
HARNESS_PATTERN = (
    r"^\s*(?:Review the conversation above and (?:update the skill library|consider saving to memory)"
    r"|Continue from the compressed conversation context above\."
    r'|\[(?:IMPORTANT|SYSTEM): The user has invoked the "'
    r"|\[IMPORTANT: (?:You are running as a scheduled cron job|Background process)"
    r"|\[ASYNC DELEGATION"
    r"|\[Your active task list was preserved across context compression\])"
)


def _hermes_roles(messages: pl.LazyFrame) -> pl.LazyFrame:
    """Compaction summaries become system messages (or the prompt typed after them);
    harness prompts are not typed."""
    text = pl.col("text")
    summary = text.str.contains(COMPACTION_PATTERN).fill_null(False)
    # only a summary's text is searched for its end (a search of every message's was half
    # of this reader's time)
    typed_after = pl.when(summary).then(text).str.extract(AFTER_COMPACTION, 1).str.strip_chars()
    keeps_prompt = summary & (pl.col("role") == USER) & (typed_after != "").fill_null(False)
    return messages.with_columns(
        pl.when(keeps_prompt).then(typed_after).otherwise(text).alias("text"),
        pl.when(summary & ~keeps_prompt).then(pl.lit(SYSTEM)).otherwise(pl.col("role")).alias("role"),
        (
            pl.col("typed")
            & ~(summary & ~keeps_prompt)
            & ~text.str.contains(HARNESS_PATTERN).fill_null(False)
        ).alias("typed"),
    )


def _finish(rows: pl.LazyFrame, format_name: str) -> pl.LazyFrame:
    """Rows with a ``message`` struct, in conversation order, into the canonical table."""
    normalised = normalise(
        rows.with_columns(pl.lit(format_name).alias("format")), ["file_index", "conversation"]
    )
    return conform(_hermes_roles(normalised))


def _file_stem(prefix: str = "") -> pl.Expr:
    """The file's name without folder, ``.json``/``.jsonl`` and ``.gz``/``.zst``."""
    name = pl.col("file").str.extract(r"([^/\\]+?)(?:\.jsonl?)?(?:\.gz|\.zst)?$", 1)
    return name.str.strip_prefix(prefix) if prefix else name


def read_session(records: pl.LazyFrame) -> pl.LazyFrame:
    """Whole session logs, one JSON document a record: one conversation per file
    (``Reader.read_whole``: a small log; a larger one is decoded a piece at a time,
    ``decode_session``)."""
    session = pl.col("session")
    return _finish(
        records.select(
            "file_index",
            "file",
            "line",
            rename_string_keys(pl.col("text")).str.json_decode(SESSION_DTYPE).alias("session"),
        )
        .select(
            "file_index",
            "file",
            "line",
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.coalesce(
                session.struct.field("session_id"), session.struct.field("id"), _file_stem("session_")
            ).alias("session_id"),
            session.struct.field("model").alias("model"),
            session.struct.field("messages").alias("message"),
        )
        .explode("message"),
        SESSION,
    )


def decode_session(records: pl.LazyFrame) -> pl.LazyFrame:
    """A session log's records (``Reader.decode``): each element of ``messages`` into a
    ``message``, the header into its ``session_id`` and ``model``."""
    session = rename_string_keys(pl.col("text")).str.json_decode(SESSION_DTYPE)
    return split_document_records(
        records,
        header=[
            pl.coalesce(
                session.struct.field("session_id"), session.struct.field("id"), _file_stem("session_")
            ).alias("session_id"),
            session.struct.field("model").alias("model"),
        ],
        element=[rename_string_keys(pl.col("text")).str.json_decode(MESSAGE_DTYPE).alias("message")],
    )


def read_decoded_sessions(decoded: pl.LazyFrame) -> pl.LazyFrame:
    """Session logs decoded a piece at a time (``decode_session``): one conversation per file."""
    return _finish(
        elements_with_header(decoded, ["session_id", "model"], ["message"]).select(
            "file_index",
            "file",
            pl.lit(None, pl.Int64).alias("line"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.coalesce("session_id", _file_stem("session_")).alias("session_id"),
            "model",
            "message",
        ),
        SESSION,
    )


def read_gateway(records: pl.LazyFrame) -> pl.LazyFrame:
    """A gateway transcript: one message per line, one conversation per file."""
    decoded = records.with_columns(
        rename_string_keys(one_object_per_line(pl.col("text")))
        .str.json_decode(GATEWAY_DTYPE)
        .alias("message")
    ).sort("file_index", "line")
    return _finish(
        decoded.select(
            "file_index",
            "file",
            "line",
            pl.lit(0, pl.Int64).alias("conversation"),
            _file_stem().alias("session_id"),
            pl.col("message").struct.field("model").drop_nulls().first().over("file_index").alias("model"),
            "message",
        ),
        GATEWAY,
    )


def read_export(records: pl.LazyFrame) -> pl.LazyFrame:
    """An export: one session row with its messages per line; the conversation is its line."""
    session = pl.col("session")
    return _finish(
        records.select(
            "file_index",
            "file",
            "line",
            rename_string_keys(one_object_per_line(pl.col("text")))
            .str.json_decode(SESSION_DTYPE)
            .alias("session"),
        )
        .select(
            "file_index",
            "file",
            "line",
            pl.col("line").alias("conversation"),
            pl.coalesce(
                session.struct.field("id"),
                session.struct.field("session_id"),
                pl.format("{}:{}", "file", "line"),
            ).alias("session_id"),
            session.struct.field("model").alias("model"),
            session.struct.field("messages").alias("message"),
        )
        .explode("message"),
        EXPORT,
    )


def read_db(rows: pl.LazyFrame) -> pl.LazyFrame:
    """The rows of ``QUERY`` for a range of sessions, with ``first_conversation`` (the
    number of the range's first session): one conversation per session, numbered in
    session id order.

    Nothing here may fail on a row's content (the job has no bisection for a database):
    ``tool_calls`` JSON text is looked into, never decoded.
    """
    text = pl.String
    rows = rows.with_columns(
        pl.col("session_id", "model", "role", "content", "tool_call_id", "tool_calls", "tool_name").cast(
            text
        ),
        pl.col("message_order").cast(pl.Int64),
        pl.col("timestamp").cast(text),
    )
    return _finish(
        rows.with_columns(
            (
                pl.col("first_conversation").cast(pl.Int64)
                + pl.col("session_id").rank("dense").over("file_index", "first_conversation").cast(pl.Int64)
                - 1
            ).alias("conversation")
        )
        .sort("file_index", "conversation", "message_order")
        .select(
            "file_index",
            "file",
            pl.lit(None, pl.Int64).alias("line"),
            "conversation",
            "session_id",
            "model",
            message_struct(
                role=pl.col("role"),
                content_str=pl.col("content"),
                tool_call_id=pl.col("tool_call_id"),
                tool_calls_str=pl.col("tool_calls"),
                tool_name=pl.col("tool_name"),
                timestamp=pl.col("timestamp"),
            ),
        ),
        DB,
    )


# --- sniffing ---------------------------------------------------------------------


def _holds_messages(value: dict[str, Any]) -> bool:
    messages = value.get("messages")
    return isinstance(messages, list) and (not messages or is_message_list(messages))


def sniff_session(document: Any) -> bool:
    return isinstance(document, dict) and _holds_messages(document) and bool(SESSION_KEYS & document.keys())


def _is_export_line(value: Any) -> bool:
    if not isinstance(value, dict) or not _holds_messages(value):
        return False
    return value.keys() >= EXPORT_KEYS or bool(SESSION_KEYS & value.keys())


def sniff_export(head: list[Any]) -> bool:
    return any(_is_export_line(value) for value in head)


def sniff_gateway(head: list[Any]) -> bool:
    """Every record a message (or the session_meta line), some with content or calls."""
    if not head or not all(
        isinstance(value, dict) and "role" in value and not {"messages", "conversations"} & value.keys()
        for value in head
    ):
        return False
    return any("content" in value or "tool_calls" in value for value in head)


def sniff_db(tables: Any) -> bool:
    return {"sessions", "messages"} <= set(tables) and bool(DB_MARKER_TABLES & set(tables))


READERS = (
    Reader(
        SESSION,
        "document",
        sniff_session,
        read_decoded_sessions,
        agent=True,
        decode=decode_session,
        lists=("messages",),
        read_whole=read_session,
    ),
    Reader(EXPORT, "lines", sniff_export, read_export, agent=True, line_per_conversation=True),
    Reader(GATEWAY, "lines", sniff_gateway, read_gateway, agent=True),
    Reader(DB, "sqlite", sniff_db, read_db, agent=True, query=QUERY, sessions_query=SESSIONS_QUERY),
)
