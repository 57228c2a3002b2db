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


_EVENT_FIELDS = ("source", "action", "observation", "message", "content_str")


def _event_columns(events: pl.LazyFrame) -> pl.LazyFrame:
    """Rows with an ``event`` struct into the columns ``read_events`` takes."""
    event = pl.col("event")
    args = event.struct.field("args")
    model = event.struct.field("tool_call_metadata").struct.field("model_response").struct.field("model")
    return events.filter(event.is_not_null()).select(
        "file_index",
        "file",
        "line",
        *(event.struct.field(name) for name in _EVENT_FIELDS),
        *(
            args.struct.field(name).alias(f"args_{name}")
            for name in ("content_str", "thought", "final_thought")
        ),
        model.alias("model"),
        parse_timestamp(event.struct.field("timestamp")).alias("timestamp"),
    )


def _decoded(text: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return text.str.replace_all(STRING_CONTENT, '${1}"content_str"${2}').str.json_decode(dtype).alias("event")


def decode_events(records: pl.LazyFrame) -> pl.LazyFrame:
    """One event per record (an element of the trajectory's array) into its columns."""
    return _event_columns(records.select("file_index", "file", "line", _decoded(pl.col("text"), EVENT)))


def read_events(events: pl.LazyFrame) -> pl.LazyFrame:
    """Every event of whole trajectories (``decode_events``' columns) into messages."""
    action, observation, source = pl.col("action"), pl.col("observation"), pl.col("source")
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
        .then(pl.coalesce(_said(pl.col("args_final_thought")), _said(pl.col("args_thought")), "message"))
        .when(is_tool_call & action.is_in(THINKING_ACTIONS))
        .then(None)
        .when(is_tool_call)
        .then(pl.col("args_thought"))
        .when(is_observation)
        .then(pl.col("content_str"))
        .when(is_user_message | is_system | (is_agent_action & (action == "message")))
        .then(pl.col("args_content_str"))
    )
    file_stem = pl.col("file").str.extract(r"([^/\\]+?)(?:\.json|\.traj)?(?:\.gz|\.zst)?$")
    messages = (
        events.with_columns(pl.col("model").forward_fill().backward_fill().over("file_index"))
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
            pl.lit(None, pl.Int64).alias("line"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.lit(FORMAT).alias("format"),
            pl.int_range(pl.len(), dtype=pl.Int32).over("file_index").alias("turn"),
        )
    )
    return conform(messages)


def read(records: pl.LazyFrame) -> pl.LazyFrame:
    """Whole trajectories, one JSON document a record (for tests and notebooks; the job
    reads a trajectory's events a piece at a time)."""
    documents = records.select("file_index", "file", "line", _decoded(pl.col("text"), pl.List(EVENT)))
    return read_events(_event_columns(documents.explode("event")))


READERS = (Reader(FORMAT, "events", sniff, read_events, decode=decode_events),)
