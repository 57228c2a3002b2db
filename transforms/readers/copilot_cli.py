"""Reader for GitHub Copilot CLI's event log (``copilot_cli``).

Copilot CLI writes ``~/.copilot/session-state/<id>/events.jsonl``, one ``{type, data, id,
timestamp, parentId}`` event per line (``session.start``, ``user.message``,
``assistant.message``, ``tool.execution_complete``, ...). Events with
``data.parentToolCallId`` belong to a sub-agent.

The main chain is ``conversation`` 0; each sub-agent side chain gets its own conversation
number. The session id is the events' ``data.sessionId``, else the folder of
``.../<session>/events.jsonl``. Fields whose JSON type varies are renamed before decoding (see
``transforms.readers.agent_common``).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from transforms.readers import Reader
from transforms.readers.agent_common import (
    dicts,
    finish,
    first_in_file,
    is_dict,
    objects_apart,
    one_of,
    said,
    session_from_path,
    strings_apart,
)
from transforms.schema import ASSISTANT, SYSTEM, TOOL, USER, parse_timestamp

COPILOT = "copilot_cli"
COPILOT_EVENTS = {
    "session.start",
    "session.resume",
    "session.model_change",
    "session.info",
    "user.message",
    "assistant.message",
    "assistant.turn_start",
    "tool.execution_start",
    "tool.execution_complete",
}
COPILOT_MODEL_EVENTS = [
    "session.start",
    "session.resume",
    "session.model_change",
    "assistant.turn_start",
    "assistant.message",
]
COPILOT_DTYPE = pl.Struct(
    {
        "type": pl.String,
        "timestamp": pl.String,
        "data": pl.Struct(
            {
                "sessionId": pl.String,
                "selectedModel": pl.String,
                "newModel": pl.String,
                "model": pl.String,
                "content_str": pl.String,
                "reason_str": pl.String,
                "toolRequests": pl.List(pl.Struct({"name": pl.String})),
                "toolCallId": pl.String,
                "toolName": pl.String,
                "parentToolCallId": pl.String,
                "result_obj": pl.Struct({"content_str": pl.String}),
            }
        ),
    }
)


def sniff_copilot(head: Any) -> bool:
    """Event envelopes ``{type: "user.message" | "session.start" | ..., data: {...}}``."""
    return any(
        one_of(value.get("type"), COPILOT_EVENTS) and is_dict(value.get("data")) and "payload" not in value
        for value in dicts(head)
    )


def read_copilot(records: pl.LazyFrame) -> pl.LazyFrame:
    decoded = objects_apart(strings_apart(pl.col("text"), "content", "reason"), "result").str.json_decode(
        COPILOT_DTYPE
    )
    data = pl.col("data")
    kind = pl.col("type")
    events = (
        records.sort("file_index", "line")
        .with_columns(decoded.alias("event"))
        .unnest("event")
        .with_columns(
            data.struct.field("toolCallId").alias("call_id"),
            data.struct.field("parentToolCallId").alias("side_chain"),
            data.struct.field("content_str").alias("content"),
        )
        .with_columns(
            pl.coalesce(
                first_in_file(data.struct.field("sessionId")), session_from_path(pl.col("file"))
            ).alias("session_id"),
            # the model named by the session's own events, within the main chain or one sub-agent
            pl.when(kind.is_in(COPILOT_MODEL_EVENTS))
            .then(
                pl.coalesce(
                    data.struct.field("model"),
                    data.struct.field("newModel"),
                    data.struct.field("selectedModel"),
                )
            )
            .forward_fill()
            .over("file_index", "side_chain")
            .alias("model"),
            pl.when(pl.col("call_id").is_not_null())
            .then(
                pl.when(kind == "tool.execution_start")
                .then(data.struct.field("toolName"))
                .drop_nulls()
                .first()
                .over("file_index", "call_id")
            )
            .alias("started_tool"),
        )
    )
    requests = data.struct.field("toolRequests")
    calls = requests.list.len().fill_null(0) > 0
    rows = (
        events.with_columns(
            pl.when(kind == "user.message")
            .then(pl.lit(USER))
            .when(kind == "assistant.message")
            .then(pl.lit(ASSISTANT))
            .when(kind == "tool.execution_complete")
            .then(pl.lit(TOOL))
            .when(kind.is_in(["system.message", "system.notification"]))
            .then(pl.lit(SYSTEM))
            .when(kind == "abort")
            .then(pl.lit(USER))
            .alias("role"),
            (kind == "user.message").alias("typed"),
            pl.when(kind == "tool.execution_complete")
            .then(data.struct.field("result_obj").struct.field("content_str"))
            .when(kind == "abort")
            .then(data.struct.field("reason_str"))
            .otherwise(said(pl.col("content")))
            .alias("text"),
            (calls & (kind == "assistant.message")).alias("has_tool_calls"),
            pl.when(kind == "assistant.message")
            .then(requests.list.first().struct.field("name"))
            .when(kind == "tool.execution_complete")
            .then(pl.col("started_tool"))
            .alias("tool_name"),
            kind.alias("role_raw"),
            parse_timestamp(pl.col("timestamp")).alias("timestamp"),
        )
        .filter(pl.col("role").is_not_null())
        .filter(~((pl.col("role") == ASSISTANT) & pl.col("text").is_null() & ~pl.col("has_tool_calls")))
    )
    # each sub-agent (the tool call that started it) is its own conversation, numbered by first event
    first_line = pl.col("line").min().over("file_index", "side_chain")
    numbered = rows.with_columns(
        pl.when(pl.col("side_chain").is_not_null())
        .then(first_line)
        .rank("dense")
        .over("file_index")
        .cast(pl.Int64)
        .fill_null(0)
        .alias("conversation")
    )
    return finish(numbered, COPILOT, ["line"])


READERS: tuple[Reader, ...] = (Reader(COPILOT, "lines", sniff_copilot, read_copilot, agent=True),)
