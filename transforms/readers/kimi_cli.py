"""Reader for Kimi Code CLI's wire journal (``kimi_cli``).

Kimi Code CLI writes ``~/.kimi-code/sessions/<wd>/<session>/agents/<agent>/wire.jsonl``:
``{type, ..., time}`` ops (epoch milliseconds). Typed prompts and injected reminders are
``context.append_message`` (``origin.kind`` tells them apart); what the model produced is
``context.append_loop_event``: ``content.part`` (``text`` or ``think``), ``tool.call`` and
``tool.result``, grouped into LLM steps by ``stepUuid``. One step is one assistant message.

Each file is one session (``conversation`` 0); the session id is the ``<session>`` folder of
the path (the journal names none), else the file name without its extension. Fields whose
JSON type varies are renamed before decoding (see ``transforms.readers.agent_common``).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from transforms.readers import Reader
from transforms.readers.agent_common import (
    dicts,
    finish,
    joined,
    objects_apart,
    one_of,
    said,
    session_from_path,
    strings_apart,
)
from transforms.schema import ASSISTANT, MAX_EPOCH_MICROS, SYSTEM, TOOL, USER

KIMI = "kimi_cli"
KIMI_OPS = {
    "turn.prompt",
    "context.append_message",
    "context.append_loop_event",
    "tools.set_active_tools",
    "llm.request",
    "llm.tools_snapshot",
}
KIMI_PART = pl.Struct({"type": pl.String, "text": pl.String})
KIMI_DTYPE = pl.Struct(
    {
        "type": pl.String,
        "time": pl.String,
        "model": pl.String,
        "modelAlias": pl.String,
        "systemPrompt_str": pl.String,
        "contextSummary_str": pl.String,
        "summary_str": pl.String,
        "message": pl.Struct(
            {
                "role": pl.String,
                "content_str": pl.String,
                "content": pl.List(KIMI_PART),
                "origin": pl.Struct({"kind": pl.String}),
                "toolCalls": pl.List(
                    pl.Struct({"name": pl.String, "function": pl.Struct({"name": pl.String})})
                ),
            }
        ),
        "event": pl.Struct(
            {
                "type": pl.String,
                "uuid": pl.String,
                "stepUuid": pl.String,
                "toolCallId": pl.String,
                "name": pl.String,
                "part": KIMI_PART,
                "result_obj": pl.Struct({"output_str": pl.String}),
                "result_str": pl.String,
            }
        ),
    }
)


def _epoch_ms(value: pl.Expr) -> pl.Expr:
    """Epoch milliseconds (a number, or its text) as UTC; null where out of range."""
    number = value.cast(pl.String).cast(pl.Float64, strict=False)
    in_range = number.is_finite() & (number.abs() < MAX_EPOCH_MICROS // 1000)
    millis = pl.when(in_range).then(number).cast(pl.Int64)
    return pl.from_epoch(millis, time_unit="ms").dt.cast_time_unit("us").dt.replace_time_zone("UTC")


def sniff_kimi(head: Any) -> bool:
    """A wire journal: the ``metadata`` envelope with a ``protocol_version``, or Kimi's ops."""
    values = dicts(head)
    return any(value.get("type") == "metadata" and "protocol_version" in value for value in values) or any(
        one_of(value.get("type"), KIMI_OPS) and "data" not in value and "payload" not in value
        for value in values
    )


def read_kimi(records: pl.LazyFrame) -> pl.LazyFrame:
    decoded = objects_apart(
        strings_apart(
            pl.col("text"), "content", "systemPrompt", "contextSummary", "summary", "result", "output"
        ),
        "result",
    ).str.json_decode(KIMI_DTYPE)
    op = pl.col("type")
    message = pl.col("message")
    event = pl.col("event")
    role_said = message.struct.field("role")
    alias = pl.col("modelAlias").str.extract(r"([^/]+)$", 1)
    ops = (
        records.sort("file_index", "line")
        .with_columns(decoded.alias("op"))
        .unnest("op")
        .with_columns(
            session_from_path(pl.col("file")).alias("session_id"),
            pl.lit(0, pl.Int64).alias("conversation"),
            _epoch_ms(pl.col("time")).alias("timestamp"),
            # the model a request went to (``usage.record`` names the alias the user chose)
            pl.when(op.is_in(["llm.request", "config.update"]))
            .then(pl.coalesce(pl.col("model"), alias))
            .forward_fill()
            .over("file_index")
            .alias("model"),
            event.struct.field("type").alias("event_type"),
            # a journal that writes assistant messages into the context needs not its loop events
            ((op == "context.append_message") & role_said.is_in(["assistant", "tool"]))
            .any()
            .over("file_index")
            .alias("messages_in_context"),
        )
        .with_columns(
            pl.when(pl.col("event_type") == "tool.call")
            .then(event.struct.field("name"))
            .drop_nulls()
            .first()
            .over("file_index", event.struct.field("toolCallId"))
            .alias("called_tool"),
        )
    )
    loop = ~pl.col("messages_in_context") & (op == "context.append_loop_event")

    # one assistant message per LLM step: its text parts (never ``think``) and its tool calls
    part = event.struct.field("part")
    in_step = loop & pl.col("event_type").is_in(["content.part", "tool.call"])
    is_call = pl.col("event_type") == "tool.call"
    steps = (
        ops.filter(in_step)
        .with_columns(
            pl.coalesce(event.struct.field("stepUuid"), event.struct.field("uuid")).alias("step"),
            pl.when(part.struct.field("type") == "text").then(part.struct.field("text")).alias("said"),
        )
        .group_by("file_index", "file", "step")
        .agg(
            pl.col("line").min(),
            pl.col("conversation").first(),
            pl.col("session_id").first(),
            pl.col("model").first(),
            pl.col("timestamp").first(),
            said(pl.col("said").drop_nulls().str.join("\n")).alias("text"),
            is_call.any().alias("has_tool_calls"),
            pl.col("called_tool").filter(is_call).first().alias("tool_name"),
        )
        .filter(pl.col("text").is_not_null() | pl.col("has_tool_calls"))
        .with_columns(
            pl.lit(ASSISTANT).alias("role"),
            pl.lit("assistant").alias("role_raw"),
            pl.lit(False).alias("typed"),
        )
        .drop("step")
    )

    origin = message.struct.field("origin").struct.field("kind")
    content = pl.coalesce(
        said(message.struct.field("content_str")),
        joined(message.struct.field("content"), pl.element().struct.field("type") == "text"),
    )
    context_calls = message.struct.field("toolCalls")
    result = event.struct.field("result_obj").struct.field("output_str")
    typed = (role_said == "user") & (origin.is_null() | (origin == "user"))
    others = (
        ops.with_columns(
            pl.when(op == "context.append_message")
            .then(
                pl.when(typed)
                .then(pl.lit(USER))
                .when(role_said.is_in(["user", "system"]))
                .then(pl.lit(SYSTEM))
                .when(role_said == "assistant")
                .then(pl.lit(ASSISTANT))
                .when(role_said == "tool")
                .then(pl.lit(TOOL))
            )
            .when(loop & (pl.col("event_type") == "tool.result"))
            .then(pl.lit(TOOL))
            .when(pl.col("systemPrompt_str").is_not_null() | (op == "context.apply_compaction"))
            .then(pl.lit(SYSTEM))
            .alias("role"),
            pl.when(op == "context.append_message")
            .then(pl.coalesce(origin, role_said))
            .otherwise(pl.coalesce(pl.col("event_type"), op))
            .alias("role_raw"),
            typed.fill_null(False).alias("typed"),
            pl.when(op == "context.append_message")
            .then(content)
            .when(pl.col("event_type") == "tool.result")
            .then(pl.coalesce(result, event.struct.field("result_str")))
            .otherwise(
                pl.coalesce(pl.col("systemPrompt_str"), pl.col("contextSummary_str"), pl.col("summary_str"))
            )
            .alias("text"),
            (context_calls.list.len().fill_null(0) > 0).alias("has_tool_calls"),
            pl.when(pl.col("event_type") == "tool.result")
            .then(pl.col("called_tool"))
            .otherwise(
                pl.coalesce(
                    context_calls.list.first().struct.field("name"),
                    context_calls.list.first().struct.field("function").struct.field("name"),
                )
            )
            .alias("tool_name"),
        )
        .filter(pl.col("role").is_not_null())
        .filter(~((pl.col("role") == ASSISTANT) & pl.col("text").is_null() & ~pl.col("has_tool_calls")))
    )
    columns = steps.collect_schema().names()
    return finish(pl.concat([steps, others.select(columns)], how="vertical_relaxed"), KIMI, ["line"])


READERS: tuple[Reader, ...] = (Reader(KIMI, "lines", sniff_kimi, read_kimi, agent=True),)
