"""Reader for Gemini CLI's chat file (``gemini_cli``).

Gemini CLI writes ``~/.gemini/tmp/<project>/chats/session-*.json``, one JSON object
``{sessionId, projectHash, startTime, messages: [{id, timestamp, type, content, ...}]}``.
``type`` is ``user``, ``gemini`` (or ``model`` with ``parts``), ``info``, ``error``,
``warning``. A ``gemini`` message carries its ``toolCalls`` with their results inline; each
result becomes a tool row after the message. ``thoughts`` are never text.

Each file is one session (``conversation`` 0); the session id is ``sessionId``, else the file
name without its extension. Fields whose JSON type varies are renamed before decoding (see
``transforms.readers.agent_common``).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from transforms.readers import Reader, elements_with_header, split_document_records
from transforms.readers.agent_common import (
    dicts,
    finish,
    is_dict,
    joined,
    objects_apart,
    one_of,
    said,
    session_from_path,
    strings_apart,
)
from transforms.schema import ASSISTANT, SYSTEM, TOOL, USER, parse_timestamp

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
    if not is_dict(document) or not ({"sessionId", "projectHash"} & document.keys()):
        return False
    messages = document.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    head = dicts(messages[:20])
    return (
        len(head) == len(messages[:20])
        and all("role" not in message and one_of(message.get("type"), GEMINI_TYPES) for message in head)
        and any(one_of(message.get("type"), {"user", "gemini"}) for message in head)
    )


def _gemini_part_text(parts: pl.Expr) -> pl.Expr:
    """The text of Gemini parts, thought parts left out (parts are pieces of one text)."""
    return joined(parts, ~pl.element().struct.field("thought").fill_null(False), separator="")


def _gemini_response_text(parts: pl.Expr) -> pl.Expr:
    response = pl.element().struct.field("functionResponse").struct.field("response")
    outputs = parts.list.eval(
        pl.coalesce(response.struct.field("output_str"), response.struct.field("error_str")).drop_nulls()
    )
    return said(outputs.list.join("\n"))


def _renamed(text: pl.Expr) -> pl.Expr:
    """The JSON text with the fields whose type varies renamed by their type."""
    return objects_apart(
        strings_apart(text, "content", "displayContent", "result", "resultDisplay", "output", "error"),
        "content",
        "result",
    )


def read_gemini(records: pl.LazyFrame) -> pl.LazyFrame:
    """Whole chat files, one JSON document a record (``Reader.read_whole``: a small chat; a
    larger one is decoded a piece at a time, ``decode_gemini``)."""
    decoded = _renamed(pl.col("text")).str.json_decode(GEMINI_DOCUMENT)
    return _read_messages(
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
    )


def decode_gemini(records: pl.LazyFrame) -> pl.LazyFrame:
    """A chat file's records (``Reader.decode``): each element of ``messages`` into a
    ``message``, its ``position`` its index; the header into its ``session_id``."""
    session = _renamed(pl.col("text")).str.json_decode(pl.Struct({"sessionId": pl.String}))
    return split_document_records(
        records,
        header=[session.struct.field("sessionId").alias("session_id")],
        element=[_renamed(pl.col("text")).str.json_decode(GEMINI_MESSAGE).alias("message")],
    )


def read_decoded_gemini(decoded: pl.LazyFrame) -> pl.LazyFrame:
    """Chat files decoded a piece at a time (``decode_gemini``): one file, one session."""
    return _read_messages(
        elements_with_header(decoded, ["session_id"], ["message"]).select(
            "file_index",
            "file",
            pl.coalesce("session_id", session_from_path(pl.col("file"))).alias("session_id"),
            "message",
            pl.col("line").alias("position"),
        )
    )


def _read_messages(rows: pl.LazyFrame) -> pl.LazyFrame:
    """A chat's messages (``file_index``, ``file``, ``session_id``, a ``message`` struct and
    its ``position``) into the canonical table."""
    messages = (
        rows.filter(pl.col("message").is_not_null())
        .unnest("message")
        .with_columns(
            pl.col("model").forward_fill().over("file_index", order_by="position"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.lit(None, pl.Int64).alias("line"),
        )
    )
    content = pl.coalesce(
        said(pl.col("content_str")),
        _gemini_part_text(pl.col("content")),
        _gemini_part_text(pl.concat_list(pl.col("content_obj"))),
    )
    function_responses = pl.col("content").list.eval(
        pl.element().filter(pl.element().struct.field("functionResponse").is_not_null())
    )
    answers_tools = (function_responses.list.len() > 0).fill_null(False)
    kind = pl.col("type")
    typed_text = pl.coalesce(
        said(pl.col("displayContent_str")), _gemini_part_text(pl.col("displayContent")), content
    )
    calls = pl.col("toolCalls").list.len().fill_null(0) > 0
    said_rows = (
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
                said(call.struct.field("result_str")),
                said(call.struct.field("resultDisplay_str")),
            ).alias("text"),
            pl.lit(False).alias("has_tool_calls"),
            call.struct.field("name").alias("tool_name"),
            parse_timestamp(call.struct.field("timestamp")).alias("timestamp"),
        )
    )
    columns = [*results.collect_schema().names()]
    columns.remove("call")
    return finish(
        pl.concat([said_rows.select(columns), results.select(columns)], how="vertical_relaxed"),
        GEMINI,
        ["position", "part"],
    )


READERS: tuple[Reader, ...] = (
    Reader(
        GEMINI,
        "document",
        sniff_gemini,
        read_decoded_gemini,
        agent=True,
        decode=decode_gemini,
        lists=("messages",),
        read_whole=read_gemini,
    ),
)
