"""Readers for pi coding-agent's session file (``pi``) and OpenClaw's (``openclaw``).

OpenClaw writes the same layout through pi's session manager, so OpenClaw's file is pi's
session tree: a ``{type: "session", version, id, cwd}`` header, then entries ``{type, id,
parentId, timestamp, ...}``; ``message`` entries hold ``{role: user | assistant | toolResult |
bashExecution | custom | ..., content}``. The entries form a tree (``parentId``), but the file
is append-only, so file order is the chronological order and a branch starts with the user
message that opened it: messages are read in file order. Which of the two a file is comes from
OpenClaw's marks in its first records (see ``_openclaw_marks``).

Each file is one session (``conversation`` 0); the session id is the header's ``id``, else the
file name without its extension. Fields whose JSON type varies are renamed before decoding
(see ``transforms.readers.agent_common``).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from transforms.readers import Reader
from transforms.readers.agent_common import (
    dicts,
    finish,
    first_in_file,
    joined,
    objects_apart,
    one_of,
    said,
    session_from_path,
    strings_apart,
)
from transforms.schema import ASSISTANT, SYSTEM, TOOL, USER, parse_timestamp

PI = "pi"
OPENCLAW = "openclaw"
PI_BLOCK = pl.Struct({"type": pl.String, "text": pl.String, "name": pl.String})
PI_DTYPE = pl.Struct(
    {
        "type": pl.String,
        "id": pl.String,
        "timestamp": pl.String,
        "modelId": pl.String,
        "summary_str": pl.String,
        "content_str": pl.String,
        "content": pl.List(PI_BLOCK),
        "message": pl.Struct(
            {
                "role": pl.String,
                "content_str": pl.String,
                "content": pl.List(PI_BLOCK),
                "model": pl.String,
                "toolName": pl.String,
                "output_str": pl.String,
                "summary_str": pl.String,
                "display": pl.Boolean,
                "provenance_obj": pl.Struct({"kind": pl.String}),
            }
        ),
    }
)
PI_ENTRIES = {"message", "model_change", "thinking_level_change", "compaction", "custom", "custom_message"}
PI_CALLS = ["toolCall", "tool_call"]
#: User messages OpenClaw writes itself: heartbeat polls, ``/new`` scaffolds, cron jobs.
OPENCLAW_HOUSEKEEPING = (
    r"(?is)read heartbeat\.md"
    r"|heartbeat\.md.*consider outstanding tasks|consider outstanding tasks.*heartbeat\.md"
    r"|a new session was started via /new|via /new or /reset|^\[cron[: ]"
)


def _is_pi_record(value: dict[str, Any]) -> bool:
    kind = value.get("type")
    if kind == "session":
        return "id" in value and ("cwd" in value or "version" in value)
    message = value.get("message")
    return (
        one_of(kind, PI_ENTRIES)
        and "parentId" in value
        and (kind != "message" or (isinstance(message, dict) and "role" in message))
    )


def sniff_pi(head: Any) -> bool:
    """A session header ``{type: "session", id, cwd}`` or tree entries ``{type: "message",
    parentId, message: {role}}``."""
    values = dicts(head)
    return any(_is_pi_record(value) for value in values) and not any(
        "payload" in value or "sessionId" in value for value in values
    )


def _openclaw_marks(values: list[dict[str, Any]]) -> bool:
    """OpenClaw's marks: its name anywhere but a working folder (``openclaw.*`` custom types,
    ``__openclaw`` fields, its providers), or its own workspace ``~/.openclaw``."""
    for value in values:
        cwd = value.get("cwd")
        if isinstance(cwd, str) and ("/.openclaw" in cwd or "/.clawdbot" in cwd):
            return True
        rest = json.dumps({key: item for key, item in value.items() if key != "cwd"}).lower()
        if "openclaw" in rest or "clawdbot" in rest:
            return True
    return False


def sniff_openclaw(head: Any) -> bool:
    return sniff_pi(head) and _openclaw_marks(dicts(head))


def _first_block(blocks: pl.Expr, keep: pl.Expr, field: str) -> pl.Expr:
    return blocks.list.eval(pl.element().filter(keep).struct.field(field).drop_nulls()).list.first()


def _read_tree(records: pl.LazyFrame, format_name: str) -> pl.LazyFrame:
    decoded = objects_apart(
        strings_apart(pl.col("text"), "content", "summary", "output"), "provenance"
    ).str.json_decode(PI_DTYPE)
    entry = pl.col("type")
    message = pl.col("message")
    role_said = message.struct.field("role")
    blocks = message.struct.field("content")
    block_type = pl.element().struct.field("type")
    content = pl.coalesce(said(message.struct.field("content_str")), joined(blocks, block_type == "text"))
    entry_content = pl.coalesce(said(pl.col("content_str")), joined(pl.col("content"), block_type == "text"))
    # hidden messages, messages another session sent (``provenance``) and housekeeping were not typed
    by_person = (
        message.struct.field("display").fill_null(True)
        & message.struct.field("provenance_obj").struct.field("kind").is_null()
        & ~content.str.contains(OPENCLAW_HOUSEKEEPING).fill_null(False)
    )
    calls = blocks.list.eval(block_type.is_in(PI_CALLS)).list.any().fill_null(False)
    is_message = entry == "message"
    rows = (
        records.sort("file_index", "line")
        .with_columns(decoded.alias("entry"))
        .unnest("entry")
        .with_columns(
            pl.coalesce(
                first_in_file(pl.when(entry == "session").then(pl.col("id"))),
                session_from_path(pl.col("file")),
            ).alias("session_id"),
            pl.coalesce(message.struct.field("model"), pl.col("modelId"))
            .forward_fill()
            .over("file_index")
            .alias("model"),
            pl.lit(0, pl.Int64).alias("conversation"),
        )
        .with_columns(
            pl.when(is_message)
            .then(
                pl.when(role_said == "user")
                .then(pl.lit(USER))
                .when(role_said == "assistant")
                .then(pl.lit(ASSISTANT))
                .when(role_said.is_in(["toolResult", "bashExecution"]))
                .then(pl.lit(TOOL))
                .when(role_said.is_in(["custom", "branchSummary", "compactionSummary", "system"]))
                .then(pl.lit(SYSTEM))
            )
            .when(entry.is_in(["custom_message", "compaction", "branch_summary"]))
            .then(pl.lit(SYSTEM))
            .alias("role"),
            pl.when(is_message).then(role_said).otherwise(entry).alias("role_raw"),
            (is_message & (role_said == "user") & by_person).fill_null(False).alias("typed"),
            pl.when(is_message)
            .then(
                pl.when(role_said == "bashExecution")
                .then(said(message.struct.field("output_str")))
                .otherwise(pl.coalesce(content, said(message.struct.field("summary_str"))))
            )
            .otherwise(pl.coalesce(entry_content, said(pl.col("summary_str"))))
            .alias("text"),
            (is_message & (role_said == "assistant") & calls).alias("has_tool_calls"),
            pl.when(role_said == "assistant")
            .then(_first_block(blocks, block_type.is_in(PI_CALLS), "name"))
            .when(role_said == "toolResult")
            .then(message.struct.field("toolName"))
            .alias("tool_name"),
            parse_timestamp(pl.col("timestamp")).alias("timestamp"),
        )
        .filter(pl.col("role").is_not_null())
        .filter(~((pl.col("role") == ASSISTANT) & pl.col("text").is_null() & ~pl.col("has_tool_calls")))
    )
    return finish(rows, format_name, ["line"])


def read_pi(records: pl.LazyFrame) -> pl.LazyFrame:
    return _read_tree(records, PI)


def read_openclaw(records: pl.LazyFrame) -> pl.LazyFrame:
    return _read_tree(records, OPENCLAW)


READERS: tuple[Reader, ...] = (
    # OpenClaw first: its files are pi's layout with OpenClaw's marks
    Reader(OPENCLAW, "lines", sniff_openclaw, read_openclaw, agent=True),
    Reader(PI, "lines", sniff_pi, read_pi, agent=True),
)
