"""OpenHands runs into the message table: trajectories (a JSON array of events, one
session a file, named after it, conversation 0) and evaluation or resolver outputs
(``output.jsonl``: one task instance a line, ``{instance_id | issue, instruction, history,
metrics, test_result | success, ...}``, its ``history`` the run's events; the session is
the ``instance_id``, or ``owner/repo#number`` of the resolver's ``issue``).

An event is ``{id, timestamp, source: user|agent|environment, message, action|observation,
args, content, extras, tool_call_metadata}``. Older runs (the resolver's output among
them) flatten it: no ``source``, and ``content``, ``thought``, ``command``, ``code``,
``outputs`` beside ``action``/``observation`` instead of under ``args``. There an
observation is the environment's, the first ``message`` action is the user's (the task),
and any other action is the agent's.

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
- In an evaluation or resolver run no person is in the loop: the first user message is
  the task, the one prompt; a later one is the harness (the benchmark's stand-in user:
  "Please continue working on the task..."), role system.

The model is ``tool_call_metadata.model_response.model`` of the nearest event that has
one, else the run's ``metadata`` (``llm_config.model``, ``model_name``).
"""

from __future__ import annotations

from functools import cache, partial
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
        # the older, flattened shape
        "thought": pl.String(),
        "final_thought": pl.String(),
    }
)
#: A line of an evaluation or resolver output.
ISSUE = pl.Struct({"owner": pl.String(), "repo": pl.String(), "number": pl.Int64()})
INSTANCE = pl.Struct(
    {
        "instance_id": pl.String(),
        "issue": ISSUE,
        "history": pl.List(EVENT),
        "metadata": pl.Struct({"model_name": pl.String(), "llm_config": pl.Struct({"model": pl.String()})}),
    }
)
#: Keys of an evaluation or resolver output line, besides ``history``: any one will do.
INSTANCE_KEYS = ("instance_id", "issue", "instruction", "test_result", "success")

#: Events that are no message at all.
SILENT_ACTIONS = ("change_agent_state", "recall", "null")
SILENT_OBSERVATIONS = ("null", "agent_state_changed")
#: Actions whose ``thought`` is reasoning, not something said.
THINKING_ACTIONS = ("think",)


def _is_event(value: Any) -> bool:
    return isinstance(value, dict) and "source" in value and ("action" in value or "observation" in value)


def _is_flat_event(value: Any) -> bool:
    """An event of either shape: the older one has no ``source``."""
    return isinstance(value, dict) and ("action" in value or "observation" in value) and "role" not in value


def sniff(document: Any) -> bool:
    return (
        isinstance(document, list)
        and bool(document)
        and all(_is_event(value) for value in document[:SNIFF_EVENTS])
    )


def _is_instance(value: Any) -> bool:
    history = value.get("history") if isinstance(value, dict) else None
    return (
        isinstance(history, list)
        and any(key in value for key in INSTANCE_KEYS)
        and all(_is_flat_event(event) for event in history[:SNIFF_EVENTS])
    )


def sniff_instances(head: list[Any]) -> bool:
    return bool(head) and all(_is_instance(value) for value in head)


def _said(text: pl.Expr) -> pl.Expr:
    """The text, or null when it is empty."""
    return pl.when(text != "").then(text)


_EVENT_FIELDS = ("source", "action", "observation", "message", "content_str")


def _event_columns(events: pl.LazyFrame) -> pl.LazyFrame:
    """Rows with an ``event`` struct (either shape) into the columns ``read_events`` takes."""
    event = pl.col("event")
    args = event.struct.field("args")
    model = event.struct.field("tool_call_metadata").struct.field("model_response").struct.field("model")
    return events.filter(event.is_not_null()).select(
        pl.exclude("event"),
        *(event.struct.field(name) for name in _EVENT_FIELDS),
        args.struct.field("content_str").alias("args_content_str"),
        *(
            pl.coalesce(args.struct.field(name), event.struct.field(name)).alias(f"args_{name}")
            for name in ("thought", "final_thought")
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
    """Every event of whole trajectories (``decode_events``' columns): one file, one session."""
    file_stem = pl.col("file").str.extract(r"([^/\\]+?)(?:\.json|\.traj)?(?:\.gz|\.zst)?$")
    return _messages(
        events.with_columns(
            pl.lit(0, pl.Int64).alias("conversation"),
            file_stem.alias("session_id"),
            pl.lit(None, pl.String).alias("run_model"),
            pl.lit(value=False).alias("harness"),
        )
    )


def read(records: pl.LazyFrame) -> pl.LazyFrame:
    """Whole trajectories, one JSON document a record (for tests and notebooks; the job
    reads a trajectory's events a piece at a time)."""
    documents = records.select("file_index", "file", "line", _decoded(pl.col("text"), pl.List(EVENT)))
    return read_events(_event_columns(documents.explode("event")))


def read_instances(records: pl.LazyFrame, under: str = "history") -> pl.LazyFrame:
    """Evaluation or resolver outputs: a task instance a line, its run a conversation
    (its events under ``under``)."""
    instance = pl.col("instance")
    dtype = INSTANCE if under == "history" else pl.Struct({**INSTANCE.to_schema(), under: pl.List(EVENT)})
    issue = instance.struct.field("issue")
    metadata = instance.struct.field("metadata")
    runs = records.select(
        "file_index",
        "file",
        "line",
        pl.col("line").alias("conversation"),
        _decoded(pl.col("text"), dtype).alias("instance"),
    ).select(
        pl.exclude("instance"),
        pl.coalesce(
            instance.struct.field("instance_id"),
            pl.format(
                "{}/{}#{}",
                issue.struct.field("owner"),
                issue.struct.field("repo"),
                issue.struct.field("number"),
            ),
            pl.format("{}:{}", "file", "line"),
        ).alias("session_id"),
        pl.coalesce(
            metadata.struct.field("llm_config").struct.field("model"), metadata.struct.field("model_name")
        ).alias("run_model"),
        pl.lit(value=True).alias("harness"),
        instance.struct.field(under).alias("event"),
    )
    return _messages(_event_columns(runs.explode("event")))


def _messages(events: pl.LazyFrame) -> pl.LazyFrame:
    """Events in order, with ``conversation``, ``session_id``, ``run_model`` (the model when
    no event names one) and ``harness`` (nobody types after the task), into messages."""
    conversation = ["file_index", "conversation"]
    action, observation = pl.col("action"), pl.col("observation")
    is_message = action == "message"
    first_message = is_message & (is_message.cast(pl.Int32).cum_sum().over(conversation) == 1)
    source = pl.coalesce(
        pl.col("source"),
        pl.when(observation.is_not_null())
        .then(pl.lit("environment"))
        .when(first_message)
        .then(pl.lit("user"))
        .otherwise(pl.lit("agent")),
    )
    events = events.with_columns(source.alias("source"))
    source = pl.col("source")
    is_action = action.is_not_null()
    is_user_message = is_action & (source == "user") & is_message
    task = is_user_message & (is_user_message.cast(pl.Int32).cum_sum().over(conversation) == 1)
    is_harness = is_user_message & pl.col("harness") & ~task
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
        pl.when(is_harness)
        .then(pl.lit(SYSTEM))
        .when(is_action & (source == "user"))
        .then(pl.lit(USER))
        .when(is_tool_result)
        .then(pl.lit(TOOL))
        .when(is_system | is_observation)
        .then(pl.lit(SYSTEM))
        .when(is_agent_action)
        .then(pl.lit(ASSISTANT))
    )
    said = pl.coalesce(pl.col("args_content_str"), pl.col("content_str"))
    text = (
        pl.when(is_finish)
        .then(pl.coalesce(_said(pl.col("args_final_thought")), _said(pl.col("args_thought")), "message"))
        .when(is_tool_call & action.is_in(THINKING_ACTIONS))
        .then(None)
        .when(is_tool_call)
        .then(pl.col("args_thought"))
        .when(is_observation)
        .then(pl.col("content_str"))
        .when(is_user_message | is_system | (is_agent_action & is_message))
        .then(said)
    )
    messages = (
        events.with_columns(
            pl.coalesce(pl.col("model").forward_fill().backward_fill().over(conversation), "run_model").alias(
                "model"
            )
        )
        .filter(keep)
        .with_columns(
            role.alias("role"),
            source.alias("role_raw"),
            text.alias("text"),
            is_tool_call.alias("has_tool_calls"),
            (is_user_message & ~is_harness).alias("typed"),
            pl.when(is_tool_call | is_tool_result | (is_action & ~is_user_message & (source == "user")))
            .then(pl.coalesce(action, observation))
            .alias("tool_name"),
        )
        .with_columns(
            pl.when(pl.col("text") != "").then(pl.col("text")).alias("text"),
            pl.lit(None, pl.Int64).alias("line"),
            pl.lit(FORMAT).alias("format"),
            pl.int_range(pl.len(), dtype=pl.Int32).over(conversation).alias("turn"),
        )
    )
    return conform(messages)


def list_key(value: Any) -> str | None:
    """The key under which an object keeps a list of OpenHands events, if any."""
    if not isinstance(value, dict):
        return None
    return next(
        (
            key
            for key, found in value.items()
            if isinstance(found, list)
            and found
            and all(_is_flat_event(event) for event in found[:SNIFF_EVENTS])
        ),
        None,
    )


@cache
def reader_under(key: str) -> Reader:
    """The reader of JSON lines whose records keep a run's events under ``key``: each line
    one run nobody typed into, as the evaluation outputs."""

    def sniff(head: list[Any]) -> bool:
        return any(list_key(value) == key for value in head)

    return Reader(
        FORMAT, "lines", sniff, partial(read_instances, under=key), line_per_conversation=True, agent=True
    )


READERS = (
    Reader(FORMAT, "events", sniff, read_events, agent=True, decode=decode_events),
    Reader(FORMAT, "lines", sniff_instances, read_instances, line_per_conversation=True, agent=True),
)
