"""OpenHands trajectories (a JSON array of events) into the message table.

An event is ``{id, timestamp, source: user|agent|environment, message, action|observation,
args, content, extras, tool_call_metadata}``. One file is one session (conversation 0),
named after the file.

- ``source: user, action: message``: a prompt (``args.content``). Anything else a person
  did (a command run in the GUI's terminal) is role user but not typed: no prompt.
- ``source: agent, action: message``: a reply (``args.content``).
- Any other agent action (``run``, ``edit``, ``read``, ``browse``, ``delegate``, ...): an
  assistant turn that calls the tool the action names. Its text is ``args.thought``, the
  text the model wrote next to the call (the ``content`` of its chat message; OpenHands
  keeps reasoning apart, in ``reasoning_content``). Only the first action of a model
  response carries it. The ``message`` field of an action is OpenHands' own caption
  ("Running command: ..."), not the model's words. ``think`` is the think tool: its
  thought is reasoning, never text.
- ``finish``: the final answer: ``args.final_thought`` (``args.thought`` before it was
  renamed), else the event's ``message``. It is a call of the finish tool that says
  something, so it is a response.
- ``system``: the system prompt (``args.content``), role system.
- Observations: tool results, role tool (text: ``content``). ``recall`` observations
  (microagent knowledge) are injected context, role system. ``null`` ("No observation")
  and ``agent_state_changed`` observations, and the state-change and recall actions, say
  nothing and are dropped.

The model is ``tool_call_metadata.model_response.model`` of the nearest event that has one.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from transforms.readers import Reader
from transforms.schema import ASSISTANT, SYSTEM, TOOL, USER, conform, parse_timestamp

FORMAT = "openhands"
SNIFF_EVENTS = 5

#: ``content`` is a string in an event or its ``args``, but a list in other nested shapes
#: (a model response's message, MCP results): a string one is decoded as ``content_str``.
STRING_CONTENT = r'([{,]\s*)"content"(\s*:\s*")'
EVENT = pl.Struct(
    {
        "timestamp": pl.String(),
        "source": pl.String(),
        "message": pl.String(),
        "action": pl.String(),
        "observation": pl.String(),
        "content_str": pl.String(),
        "args": pl.Struct({"content_str": pl.String(), "thought": pl.String(), "final_thought": pl.String()}),
        "tool_call_metadata": pl.Struct({"model_response": pl.Struct({"model": pl.String()})}),
    }
)

#: Events that are no message at all.
SILENT_ACTIONS = ("change_agent_state", "recall", "null")
SILENT_OBSERVATIONS = ("null", "agent_state_changed")
#: Actions whose ``thought`` is reasoning, not something said.
THINKING_ACTIONS = ("think",)


def _is_event(value: Any) -> bool:
    return isinstance(value, dict) and "source" in value and ("action" in value or "observation" in value)


def sniff(document: Any) -> bool:
    return (
        isinstance(document, list)
        and bool(document)
        and all(_is_event(value) for value in document[:SNIFF_EVENTS])
    )


def _said(text: pl.Expr) -> pl.Expr:
    """The text, or null when it is empty."""
    return pl.when(text != "").then(text)


def read(records: pl.LazyFrame) -> pl.LazyFrame:
    event = pl.col("event")
    action, observation, source = pl.col("action"), pl.col("observation"), pl.col("source")
    args = event.struct.field("args")
    is_action = action.is_not_null()
    is_user_message = is_action & (source == "user") & (action == "message")
    is_agent_action = is_action & (source == "agent")
    is_finish = is_agent_action & (action == "finish")
    is_tool_call = (
        is_agent_action & ~action.is_in(("message", "finish", "system", *SILENT_ACTIONS))
    ) | is_finish
    is_system = is_action & (action == "system")
    is_observation = ~is_action & observation.is_not_null()
    is_tool_result = is_observation & (observation != "recall")  # recall: microagent knowledge
    keep = (is_action & ~action.is_in(SILENT_ACTIONS) & ((source != "environment") | is_system)) | (
        is_observation & ~observation.is_in(SILENT_OBSERVATIONS)
    )
    role = (
        pl.when(is_action & (source == "user"))
        .then(pl.lit(USER))
        .when(is_tool_result)
        .then(pl.lit(TOOL))
        .when(is_system | is_observation)
        .then(pl.lit(SYSTEM))
        .when(is_agent_action)
        .then(pl.lit(ASSISTANT))
    )
    text = (
        pl.when(is_finish)
        .then(
            pl.coalesce(
                _said(args.struct.field("final_thought")), _said(args.struct.field("thought")), "message"
            )
        )
        .when(is_tool_call & action.is_in(THINKING_ACTIONS))
        .then(None)
        .when(is_tool_call)
        .then(args.struct.field("thought"))
        .when(is_observation)
        .then(pl.col("content_str"))
        .when(is_user_message | is_system | (is_agent_action & (action == "message")))
        .then(args.struct.field("content_str"))
    )
    model = event.struct.field("tool_call_metadata").struct.field("model_response").struct.field("model")
    file_stem = pl.col("file").str.extract(r"([^/\\]+?)(?:\.json|\.traj)?(?:\.gz|\.zst)?$")
    events = (
        records.with_columns(
            pl.col("text")
            .str.replace_all(STRING_CONTENT, '${1}"content_str"${2}')
            .str.json_decode(pl.List(EVENT))
            .alias("event")
        )
        .select("file_index", "file", "line", "event")
        .explode("event")
        .filter(pl.col("event").is_not_null())
        .with_columns(
            *(
                event.struct.field(name)
                for name in ("source", "action", "observation", "message", "content_str")
            ),
            parse_timestamp(event.struct.field("timestamp")).alias("timestamp"),
        )
    )
    messages = (
        events.with_columns(model.forward_fill().backward_fill().over("file_index").alias("model"))
        .filter(keep)
        .with_columns(
            role.alias("role"),
            source.alias("role_raw"),
            text.alias("text"),
            is_tool_call.alias("has_tool_calls"),
            is_user_message.alias("typed"),
            pl.when(is_tool_call | is_tool_result | (is_action & ~is_user_message & (source == "user")))
            .then(pl.coalesce(action, observation))
            .alias("tool_name"),
        )
        .with_columns(
            pl.when(pl.col("text") != "").then(pl.col("text")).alias("text"),
            file_stem.alias("session_id"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.lit(FORMAT).alias("format"),
            pl.int_range(pl.len(), dtype=pl.Int32).over("file_index").alias("turn"),
        )
    )
    return conform(messages)


READERS = (Reader(FORMAT, "document", sniff, read),)
