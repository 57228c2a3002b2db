"""OpenAI Codex CLI rollouts (``~/.codex/sessions/.../rollout-*.jsonl``) into the message table.

One file is one session (conversation 0). Each line is ``{"timestamp", "type", "payload"}``:

- ``session_meta``: ``payload.id`` names the session (the file's first one: a fork or a
  sub-agent copies its parent's meta in after its own);
- ``turn_context``: ``payload.model`` is the model of the turns that follow;
- ``response_item``: what the model saw and said: ``message`` (user, assistant, developer,
  system), ``reasoning`` (never text), tool calls (``function_call``, ``custom_tool_call``,
  ``local_shell_call``, ``web_search_call``, ...) and their outputs;
- ``event_msg``: UI events. ``user_message`` and ``agent_message`` repeat the prompts and
  replies the ``message`` items hold, so they count only in a file that has no ``message``
  item at all (a rollout that recorded events only);
- ``compacted``: a summary that replaced the history, injected context.

Rollouts written before the envelope (CLI < 0.32) start with a bare
``{"id", "timestamp", "instructions"}`` line followed by bare items
(``{"type": "message", "role": ...}``); they read the same way.

Codex writes context it injects as ``user`` messages (AGENTS.md, the environment, skills,
notifications): those are role system. A shell command the user ran with ``!`` and the
marker of an aborted turn are role user but not typed: they end the previous prompt's
reach without being prompts.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from transforms.readers import Reader
from transforms.readers.agent_common import one_of
from transforms.schema import ASSISTANT, SYSTEM, TOOL, USER, conform, parse_timestamp

FORMAT = "codex"
ENVELOPE_TYPES = frozenset({"session_meta", "response_item", "event_msg", "turn_context", "compacted"})

#: Keys whose value is sometimes not a string (``content`` is a list of blocks, ``output``
#: a string, a block or a list of blocks). A string value is renamed ``<key>_str`` before
#: decoding, so each name has one JSON type. Inside a JSON string every ``"`` is escaped,
#: so ``{`` or ``,`` then a bare ``"key":`` can only be structural.
STRING_KEYS = r'([{,]\s*)"(content|output|message|model|name|role|kind)"(\s*:\s*")'
OBJECT_OUTPUT = r'([{,]\s*)"output"(\s*:\s*\{)'

BLOCK = pl.Struct({"type": pl.String, "text": pl.String})
ITEM_FIELDS: dict[str, pl.DataType] = {
    "type": pl.String(),
    "id": pl.String(),
    "call_id": pl.String(),
    "role_str": pl.String(),
    "name_str": pl.String(),
    "model_str": pl.String(),
    "message_str": pl.String(),
    "kind_str": pl.String(),
    "content_str": pl.String(),
    "content": pl.List(BLOCK),
    "output_str": pl.String(),
    "output_obj": pl.Struct({"text": pl.String()}),
    "output": pl.List(BLOCK),
    "function": pl.Struct({"name_str": pl.String()}),
}
#: The envelope, or (older rollouts) a bare item: the item's keys are decoded at both levels.
RECORD = pl.Struct({"timestamp": pl.String(), "payload": pl.Struct(ITEM_FIELDS), **ITEM_FIELDS})

TEXT_BLOCKS = ("input_text", "output_text", "text")
#: Response items that call a tool; the name of the nameless ones is their type less ``_call``.
TOOL_CALLS = (
    "function_call",
    "custom_tool_call",
    "local_shell_call",
    "web_search_call",
    "tool_search_call",
    "image_generation_call",
    "tool_call",
)
TOOL_OUTPUTS = (
    "function_call_output",
    "custom_tool_call_output",
    "local_shell_call_output",
    "tool_search_output",
    "tool_result",
)
#: Fragments Codex injects as ``user`` messages (codex-rs ``contextual_user_message.rs`` and
#: the legacy warnings): context, not prompts.
INJECTED = (
    r"(?i)^\s*(?:# AGENTS\.md instructions|<user_instructions>|<environment_context>|<INSTRUCTIONS>"
    r"|<apps_instructions>|<agent_message_board_notification>|<skill>|<subagent_notification>"
    r"|<codex_internal_context|<goal_context>|<recommended_plugins>|<hook_prompt[\s>]|<user_action>"
    r"|<external_[a-z0-9_]+>)"
    r"|^\s*Warning: (?:The maximum number of unified exec processes|apply_patch was requested via "
    r"|Your account was flagged)"
)
#: The IDE extensions and the desktop app put the open files ahead of what the person typed,
#: which follows this heading (codex-rs ``USER_MESSAGE_BEGIN``).
REQUEST_HEADING = r"(?s)^.*?## My request for Codex:(.*)$"
#: A person did this, but it is no prompt for the model: a ``!`` shell command, an interruption.
UNTYPED = r"^\s*<(?:user_shell_command|turn_aborted)>"


#: Canonical roles of a message item's ``role`` and of the message events' ``type``.
ROLES = {
    "user": USER,
    "assistant": ASSISTANT,
    "developer": SYSTEM,
    "system": SYSTEM,
    "user_message": USER,
    "agent_message": ASSISTANT,
}


def _is_rollout_record(value: Any) -> bool:
    return isinstance(value, dict) and "payload" in value and one_of(value.get("type"), ENVELOPE_TYPES)


def _is_legacy_header(value: Any) -> bool:
    """The first line of a pre-envelope rollout: the session's id, time and instructions."""
    return (
        isinstance(value, dict)
        and {"id", "timestamp"} <= value.keys()
        and "instructions" in value
        and "type" not in value
        and "role" not in value
    )


def sniff(head: list[Any]) -> bool:
    return any(_is_rollout_record(value) for value in head) or (bool(head) and _is_legacy_header(head[0]))


def _texts(blocks: pl.Expr) -> pl.Expr:
    """The texts of a list of content blocks (images and ciphertext left out)."""
    return blocks.list.eval(
        pl.when(pl.element().struct.field("type").is_in(TEXT_BLOCKS)).then(pl.element().struct.field("text"))
    ).list.drop_nulls()


def _joined(texts: pl.Expr) -> pl.Expr:
    return texts.list.join("\n")


def _any_matches(texts: pl.Expr, pattern: str) -> pl.Expr:
    return texts.list.eval(pl.element().str.contains(pattern)).list.any()


def _decode(records: pl.LazyFrame) -> pl.LazyFrame:
    """Each record's kind (the envelope's ``type``) and its item's fields as columns."""
    renamed = (
        pl.col("text")
        .str.replace_all(STRING_KEYS, '${1}"${2}_str"${3}')
        .str.replace_all(OBJECT_OUTPUT, '${1}"output_obj"${2}')
    )
    record = pl.col("record")
    payload = record.struct.field("payload")
    has_envelope = payload.is_not_null()
    top_type = record.struct.field("type")
    kind = (
        pl.when(has_envelope)
        .then(top_type)
        .when(top_type.is_not_null())
        .then(pl.lit("response_item"))
        .when(record.struct.field("id").is_not_null())
        .then(pl.lit("session_meta"))
    )
    fields = [
        pl.when(has_envelope)
        .then(payload.struct.field(name))
        .otherwise(record.struct.field(name))
        .alias(name)
        for name in ITEM_FIELDS
    ]
    return (
        records.with_columns(renamed.str.json_decode(RECORD).alias("record"))
        .select(
            "file_index",
            "file",
            "line",
            kind.alias("kind"),
            parse_timestamp(record.struct.field("timestamp")).alias("timestamp"),
            *fields,
        )
        .rename({"type": "item_type"})
    )


def read(records: pl.LazyFrame) -> pl.LazyFrame:
    file = ("file_index",)
    kind, item = pl.col("kind"), pl.col("item_type")
    block_texts = _texts(pl.col("content"))
    is_item = kind == "response_item"
    is_message = is_item & (item == "message")
    is_event_message = (kind == "event_msg") & item.is_in(("user_message", "agent_message"))
    is_call = is_item & item.is_in(TOOL_CALLS)
    is_output = is_item & item.is_in(TOOL_OUTPUTS)
    is_agent_message = is_item & (item == "agent_message")  # between agents: the harness delivered it
    is_compacted = kind == "compacted"
    # The events repeat the message items: they count only in a file that has none.
    uses_events = ~is_message.any().over(file)
    keep = (
        is_message
        | (is_event_message & uses_events)
        | is_call
        | is_output
        | is_agent_message
        | (is_compacted & (pl.col("message_str") != ""))
    )

    # Every text of a message, for telling injected context from a prompt.
    user_texts = (
        pl.when(pl.col("content").is_not_null())
        .then(block_texts)
        .otherwise(pl.concat_list(pl.coalesce("content_str", "message_str")).list.drop_nulls())
    )
    raw_role = (
        pl.when(is_message)
        .then(pl.col("role_str"))
        .when(is_compacted)
        .then(pl.lit("compacted"))
        .otherwise(item)
    )
    said_by_user = raw_role.is_in(("user", "user_message"))
    injected = _any_matches(user_texts, INJECTED) | (
        is_event_message & pl.col("kind_str").is_not_null() & (pl.col("kind_str") != "plain")
    )
    role = (
        pl.when(is_call)
        .then(pl.lit(ASSISTANT))
        .when(is_output)
        .then(pl.lit(TOOL))
        .when(is_agent_message | is_compacted)
        .then(pl.lit(SYSTEM))
        .when(said_by_user & injected)
        .then(pl.lit(SYSTEM))
        .otherwise(raw_role.replace_strict(ROLES, default=None))
    )
    output_text = pl.coalesce(
        pl.col("output_str"),
        pl.col("output_obj").struct.field("text"),
        pl.when(pl.col("output").list.len() > 0).then(_joined(_texts(pl.col("output")))),
    )
    text = (
        pl.when(is_message | is_agent_message)
        .then(pl.coalesce(_joined(block_texts), pl.col("content_str")))
        .when(is_output)
        .then(output_text)
        .when(is_call)
        .then(None)
        .otherwise(pl.col("message_str"))
    )
    call_name = pl.coalesce(
        pl.col("name_str"), pl.col("function").struct.field("name_str"), item.str.strip_suffix("_call")
    )
    called = pl.when(is_call).then(call_name)
    # An output names no tool: it is the one its ``call_id`` called.
    tool_name = (
        pl.when(is_call)
        .then(call_name)
        .when(is_output)
        .then(
            pl.coalesce(
                pl.col("name_str"),
                pl.when(pl.col("call_id").is_not_null()).then(
                    called.drop_nulls().first().over("file_index", "call_id")
                ),
            )
        )
    )
    session_meta = pl.col("id").filter(kind == "session_meta").first().over(file)
    model = (
        pl.when(kind.is_in(("turn_context", "session_meta")))
        .then(pl.col("model_str"))
        .forward_fill()
        .backward_fill()
        .over(file)
    )
    file_stem = pl.col("file").str.extract(r"([^/\\]+?)(?:\.jsonl)?(?:\.gz|\.zst)?$")
    messages = (
        _decode(records)
        .sort("file_index", "line")
        .with_columns(
            keep.alias("keep"),
            pl.coalesce(session_meta, file_stem).alias("session_id"),
            model.alias("model"),
            tool_name.alias("tool_name"),
        )
        .filter(pl.col("keep"))
        .with_columns(
            role.alias("role"),
            raw_role.alias("role_raw"),
            pl.when(said_by_user & ~injected)
            .then(pl.coalesce(text.str.extract(REQUEST_HEADING).str.strip_chars(), text))
            .otherwise(text)
            .alias("text"),
            is_call.alias("has_tool_calls"),
            (said_by_user & ~injected & ~_any_matches(user_texts, UNTYPED)).alias("typed"),
        )
        .with_columns(
            pl.when(pl.col("text") != "").then(pl.col("text")).alias("text"),
            (pl.col("typed") & (pl.col("role") == USER)).alias("typed"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.lit(FORMAT).alias("format"),
            pl.int_range(pl.len(), dtype=pl.Int32).over(file).alias("turn"),
        )
    )
    return conform(messages)


READERS = (Reader(FORMAT, "lines", sniff, read, agent=True),)
