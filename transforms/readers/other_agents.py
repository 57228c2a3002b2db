"""Readers for the other coding agents: Gemini CLI, GitHub Copilot CLI, Kimi Code CLI, OpenClaw and pi.

Each file is one session (``conversation`` 0), except Copilot sub-agent side chains, which
get their own conversation numbers. The session id is the file's own id field when it has
one, else taken from the path (``.../<session>/events.jsonl``, ``.../<session>/agents/<agent>/
wire.jsonl``, or the file name without its extension).

Layouts:

- ``gemini_cli``: Gemini CLI's chat file ``~/.gemini/tmp/<project>/chats/session-*.json``, one
  JSON object ``{sessionId, projectHash, startTime, messages: [{id, timestamp, type, content,
  ...}]}``. ``type`` is ``user``, ``gemini`` (or ``model`` with ``parts``), ``info``, ``error``,
  ``warning``. A ``gemini`` message carries its ``toolCalls`` with their results inline; each
  result becomes a tool row after the message. ``thoughts`` are never text.
- ``copilot_cli``: GitHub Copilot CLI's event log ``~/.copilot/session-state/<id>/events.jsonl``,
  one ``{type, data, id, timestamp, parentId}`` event per line (``session.start``,
  ``user.message``, ``assistant.message``, ``tool.execution_complete``, ...). Events with
  ``data.parentToolCallId`` belong to a sub-agent.
- ``kimi_cli``: Kimi Code CLI's wire journal ``~/.kimi-code/sessions/<wd>/<session>/agents/
  <agent>/wire.jsonl``: ``{type, ..., time}`` ops (epoch milliseconds). Typed prompts and
  injected reminders are ``context.append_message`` (``origin.kind`` tells them apart); what
  the model produced is ``context.append_loop_event``: ``content.part`` (``text`` or
  ``think``), ``tool.call`` and ``tool.result``, grouped into LLM steps by ``stepUuid``. One
  step is one assistant message.
- ``pi`` and ``openclaw``: pi coding-agent's session file (OpenClaw writes the same layout
  through pi's session manager): a ``{type: "session", version, id, cwd}`` header, then
  entries ``{type, id, parentId, timestamp, ...}``; ``message`` entries hold ``{role: user |
  assistant | toolResult | bashExecution | custom | ..., content}``. The entries form a tree
  (``parentId``), but the file is append-only, so file order is the chronological order and a
  branch starts with the user message that opened it: messages are read in file order. Which of
  the two a file is comes from OpenClaw's marks in its first records (see ``_openclaw_marks``).

Fields whose JSON type varies (``content`` is a string or a list of blocks) are renamed
textually before decoding when they hold a string (``content`` -> ``content_str``), or an
object (``result`` -> ``result_obj``); only the variants named in a dtype are decoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import polars as pl

from transforms.readers import Reader
from transforms.schema import ASSISTANT, SYSTEM, TOOL, USER, conform, parse_timestamp

# ------------------------------------------------------------------------------------------ shared


def _rename_keys(text: pl.Expr, keys: Iterable[str], opener: str, suffix: str) -> pl.Expr:
    """Rename each of ``keys`` to ``<key><suffix>`` where its value starts with ``opener``.

    Safe on raw JSON: inside a JSON string every ``"`` is escaped, so ``{`` or ``,`` then a
    bare ``"key"`` can only be structural.
    """
    pattern = r'([{,]\s*)"(' + "|".join(keys) + r')"(\s*:\s*)' + opener
    return text.str.replace_all(pattern, '${1}"${2}' + suffix + '"${3}' + opener.replace("\\", ""))


def _strings_apart(text: pl.Expr, *keys: str) -> pl.Expr:
    """String values of ``keys`` under ``<key>_str``."""
    return _rename_keys(text, keys, '"', "_str")


def _objects_apart(text: pl.Expr, *keys: str) -> pl.Expr:
    """Object values of ``keys`` under ``<key>_obj``."""
    return _rename_keys(text, keys, r"\{", "_obj")


def session_from_path(file: pl.Expr) -> pl.Expr:
    """The session id a path names: the session folder of ``<session>/agents/<agent>/wire.jsonl``
    (Kimi) or ``<session>/events.jsonl`` (Copilot), else the file name without extension."""
    kimi = file.str.extract(r"([^/\\]+)[/\\]agents[/\\][^/\\]+[/\\]wire\.jsonl$", 1)
    events = file.str.extract(r"([^/\\]+)[/\\]events\.jsonl$", 1)
    stem = file.str.extract(r"([^/\\]+?)(?:\.(?:jsonl|json|ndjson))?(?:\.(?:gz|zst|bz2|xz))?$", 1)
    return pl.coalesce(kimi, events, stem)


def _said(text: pl.Expr) -> pl.Expr:
    """The text, or null when it is blank."""
    return pl.when(text.str.strip_chars() != "").then(text)


def _joined(blocks: pl.Expr, keep: pl.Expr, field: str = "text", separator: str = "\n") -> pl.Expr:
    """The ``field`` of the list elements that ``keep`` (an expression on ``pl.element()``)
    selects, joined; null when there is nothing."""
    texts = blocks.list.eval(pl.element().filter(keep).struct.field(field).drop_nulls())
    return _said(texts.list.join(separator))


def _first_block(blocks: pl.Expr, keep: pl.Expr, field: str) -> pl.Expr:
    return blocks.list.eval(pl.element().filter(keep).struct.field(field).drop_nulls()).list.first()


def _epoch_ms(value: pl.Expr) -> pl.Expr:
    """Epoch milliseconds (a number, or its text) as UTC."""
    millis = value.cast(pl.String).cast(pl.Float64, strict=False).cast(pl.Int64)
    return pl.from_epoch(millis, time_unit="ms").dt.cast_time_unit("us").dt.replace_time_zone("UTC")


def _first_in_file(value: pl.Expr) -> pl.Expr:
    return value.drop_nulls().first().over("file_index")


def _finish(rows: pl.LazyFrame, format_name: str, order: list[str]) -> pl.LazyFrame:
    """Number the turns of each conversation in ``order`` and conform to the message table."""
    return conform(
        rows.sort(["file_index", "conversation", *order])
        .with_columns(
            pl.int_range(pl.len(), dtype=pl.Int32).over("file_index", "conversation").alias("turn"),
            pl.lit(format_name).alias("format"),
        )
        .with_columns(pl.col("typed").fill_null(False))
    )


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def _dicts(head: Any) -> list[dict[str, Any]]:
    return [value for value in head if isinstance(value, dict)] if isinstance(head, list) else []


# -------------------------------------------------------------------------------------- Gemini CLI

GEMINI = "gemini_cli"
GEMINI_TYPES = {"user", "gemini", "model", "info", "error", "warning"}
GEMINI_RESPONSE = pl.Struct({"output_str": pl.String, "error_str": pl.String})
GEMINI_PART = pl.Struct(
    {
        "text": pl.String,
        "thought": pl.Boolean,
        "functionResponse": pl.Struct({"name": pl.String, "response": GEMINI_RESPONSE}),
    }
)
GEMINI_TOOL_CALL = pl.Struct(
    {
        "id": pl.String,
        "name": pl.String,
        "timestamp": pl.String,
        "result": pl.List(GEMINI_PART),
        "result_obj": GEMINI_PART,
        "result_str": pl.String,
        "resultDisplay_str": pl.String,
    }
)
GEMINI_MESSAGE = pl.Struct(
    {
        "id": pl.String,
        "timestamp": pl.String,
        "type": pl.String,
        "model": pl.String,
        "content_str": pl.String,
        "content": pl.List(GEMINI_PART),
        "content_obj": GEMINI_PART,
        "displayContent_str": pl.String,
        "displayContent": pl.List(GEMINI_PART),
        "parts": pl.List(GEMINI_PART),
        "toolCalls": pl.List(GEMINI_TOOL_CALL),
    }
)
GEMINI_DOCUMENT = pl.Struct({"sessionId": pl.String, "messages": pl.List(GEMINI_MESSAGE)})
#: What Gemini CLI records when the user cancels a request: an interruption, not a message.
GEMINI_CANCELLED = "Request cancelled"


def sniff_gemini(document: Any) -> bool:
    """A chat object: ``messages`` typed ``user``/``gemini``, never ``role``, beside ``sessionId``
    or ``projectHash``."""
    if not _is_dict(document) or not ({"sessionId", "projectHash"} & document.keys()):
        return False
    messages = document.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    head = _dicts(messages[:20])
    return (
        len(head) == len(messages[:20])
        and all("role" not in message and message.get("type") in GEMINI_TYPES for message in head)
        and any(message.get("type") in {"user", "gemini"} for message in head)
    )


def _gemini_part_text(parts: pl.Expr) -> pl.Expr:
    """The text of Gemini parts, thought parts left out (parts are pieces of one text)."""
    return _joined(parts, ~pl.element().struct.field("thought").fill_null(False), separator="")


def _gemini_response_text(parts: pl.Expr) -> pl.Expr:
    response = pl.element().struct.field("functionResponse").struct.field("response")
    outputs = parts.list.eval(
        pl.coalesce(response.struct.field("output_str"), response.struct.field("error_str")).drop_nulls()
    )
    return _said(outputs.list.join("\n"))


def read_gemini(records: pl.LazyFrame) -> pl.LazyFrame:
    decoded = _objects_apart(
        _strings_apart(
            pl.col("text"), "content", "displayContent", "result", "resultDisplay", "output", "error"
        ),
        "content",
        "result",
    ).str.json_decode(GEMINI_DOCUMENT)
    messages = (
        records.with_columns(decoded.alias("document"))
        .select(
            "file_index",
            "file",
            pl.coalesce(
                pl.col("document").struct.field("sessionId"), session_from_path(pl.col("file"))
            ).alias("session_id"),
            pl.col("document").struct.field("messages").alias("message"),
            pl.int_ranges(pl.col("document").struct.field("messages").list.len()).alias("position"),
        )
        .explode("message", "position")
        .filter(pl.col("message").is_not_null())
        .unnest("message")
        .with_columns(
            pl.col("model").forward_fill().over("file_index", order_by="position"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.lit(None, pl.Int64).alias("line"),
        )
    )
    content = pl.coalesce(
        _said(pl.col("content_str")),
        _gemini_part_text(pl.col("content")),
        _gemini_part_text(pl.concat_list(pl.col("content_obj"))),
    )
    function_responses = pl.col("content").list.eval(
        pl.element().filter(pl.element().struct.field("functionResponse").is_not_null())
    )
    answers_tools = (function_responses.list.len() > 0).fill_null(False)
    kind = pl.col("type")
    typed_text = pl.coalesce(
        _said(pl.col("displayContent_str")), _gemini_part_text(pl.col("displayContent")), content
    )
    calls = pl.col("toolCalls").list.len().fill_null(0) > 0
    said = (
        messages.with_columns(
            pl.when(kind == "user")
            .then(pl.when(answers_tools).then(pl.lit(TOOL)).otherwise(pl.lit(USER)))
            .when(kind.is_in(["gemini", "model"]))
            .then(pl.lit(ASSISTANT))
            .when((kind == "info") & content.str.starts_with(GEMINI_CANCELLED))
            .then(pl.lit(USER))
            .when(kind.is_in(["info", "error", "warning"]))
            .then(pl.lit(SYSTEM))
            .alias("role"),
            ((kind == "user") & ~answers_tools).alias("typed"),
            pl.when(kind == "user")
            .then(
                pl.when(answers_tools).then(_gemini_response_text(function_responses)).otherwise(typed_text)
            )
            .when(kind.is_in(["gemini", "model"]))
            .then(pl.coalesce(content, _gemini_part_text(pl.col("parts"))))
            .otherwise(content)
            .alias("text"),
            calls.alias("has_tool_calls"),
            pl.when(answers_tools)
            .then(function_responses.list.first().struct.field("functionResponse").struct.field("name"))
            .otherwise(pl.col("toolCalls").list.first().struct.field("name"))
            .alias("tool_name"),
            kind.alias("role_raw"),
            parse_timestamp(pl.col("timestamp")).alias("timestamp"),
            pl.lit(0).alias("part"),
        )
        # a model turn that neither says anything nor calls a tool is no message
        .filter(~((pl.col("role") == ASSISTANT) & pl.col("text").is_null() & ~pl.col("has_tool_calls")))
    )
    call = pl.col("call")
    results = (
        messages.filter(calls)
        .select(
            "file_index",
            "file",
            "line",
            "conversation",
            "session_id",
            "model",
            "position",
            pl.col("toolCalls").alias("call"),
            pl.int_ranges(1, pl.col("toolCalls").list.len() + 1).alias("part"),
        )
        .explode("call", "part")
        .with_columns(
            pl.lit(TOOL).alias("role"),
            pl.lit("tool_result").alias("role_raw"),
            pl.lit(False).alias("typed"),
            pl.coalesce(
                _gemini_response_text(call.struct.field("result")),
                _gemini_response_text(pl.concat_list(call.struct.field("result_obj"))),
                _said(call.struct.field("result_str")),
                _said(call.struct.field("resultDisplay_str")),
            ).alias("text"),
            pl.lit(False).alias("has_tool_calls"),
            call.struct.field("name").alias("tool_name"),
            parse_timestamp(call.struct.field("timestamp")).alias("timestamp"),
        )
    )
    columns = [*results.collect_schema().names()]
    columns.remove("call")
    return _finish(
        pl.concat([said.select(columns), results.select(columns)], how="vertical_relaxed"),
        GEMINI,
        ["position", "part"],
    )


# -------------------------------------------------------------------------------- GitHub Copilot CLI

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
        value.get("type") in COPILOT_EVENTS and _is_dict(value.get("data")) and "payload" not in value
        for value in _dicts(head)
    )


def read_copilot(records: pl.LazyFrame) -> pl.LazyFrame:
    decoded = _objects_apart(_strings_apart(pl.col("text"), "content", "reason"), "result").str.json_decode(
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
                _first_in_file(data.struct.field("sessionId")), session_from_path(pl.col("file"))
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
            .otherwise(_said(pl.col("content")))
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
    return _finish(numbered, COPILOT, ["line"])


# --------------------------------------------------------------------------------- Kimi Code CLI

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


def sniff_kimi(head: Any) -> bool:
    """A wire journal: the ``metadata`` envelope with a ``protocol_version``, or Kimi's ops."""
    values = _dicts(head)
    return any(value.get("type") == "metadata" and "protocol_version" in value for value in values) or any(
        value.get("type") in KIMI_OPS and "data" not in value and "payload" not in value for value in values
    )


def read_kimi(records: pl.LazyFrame) -> pl.LazyFrame:
    decoded = _objects_apart(
        _strings_apart(
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
            _said(pl.col("said").drop_nulls().str.join("\n")).alias("text"),
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
        _said(message.struct.field("content_str")),
        _joined(message.struct.field("content"), pl.element().struct.field("type") == "text"),
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
    return _finish(pl.concat([steps, others.select(columns)], how="vertical_relaxed"), KIMI, ["line"])


# ------------------------------------------------------------------------------------ pi, OpenClaw

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
        kind in PI_ENTRIES
        and "parentId" in value
        and (kind != "message" or (isinstance(message, dict) and "role" in message))
    )


def sniff_pi(head: Any) -> bool:
    """A session header ``{type: "session", id, cwd}`` or tree entries ``{type: "message",
    parentId, message: {role}}``."""
    values = _dicts(head)
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
    return sniff_pi(head) and _openclaw_marks(_dicts(head))


def _read_tree(records: pl.LazyFrame, format_name: str) -> pl.LazyFrame:
    decoded = _objects_apart(
        _strings_apart(pl.col("text"), "content", "summary", "output"), "provenance"
    ).str.json_decode(PI_DTYPE)
    entry = pl.col("type")
    message = pl.col("message")
    role_said = message.struct.field("role")
    blocks = message.struct.field("content")
    block_type = pl.element().struct.field("type")
    content = pl.coalesce(_said(message.struct.field("content_str")), _joined(blocks, block_type == "text"))
    entry_content = pl.coalesce(
        _said(pl.col("content_str")), _joined(pl.col("content"), block_type == "text")
    )
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
                _first_in_file(pl.when(entry == "session").then(pl.col("id"))),
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
                .then(_said(message.struct.field("output_str")))
                .otherwise(pl.coalesce(content, _said(message.struct.field("summary_str"))))
            )
            .otherwise(pl.coalesce(entry_content, _said(pl.col("summary_str"))))
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
    return _finish(rows, format_name, ["line"])


def read_pi(records: pl.LazyFrame) -> pl.LazyFrame:
    return _read_tree(records, PI)


def read_openclaw(records: pl.LazyFrame) -> pl.LazyFrame:
    return _read_tree(records, OPENCLAW)


READERS: tuple[Reader, ...] = (
    Reader(GEMINI, "document", sniff_gemini, read_gemini),
    Reader(COPILOT, "lines", sniff_copilot, read_copilot),
    Reader(KIMI, "lines", sniff_kimi, read_kimi),
    # OpenClaw first: its files are pi's layout with OpenClaw's marks
    Reader(OPENCLAW, "lines", sniff_openclaw, read_openclaw),
    Reader(PI, "lines", sniff_pi, read_pi),
)
