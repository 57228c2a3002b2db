"""The canonical message table: every reader produces exactly these columns."""

from __future__ import annotations

import polars as pl

#: Canonical roles. A reader maps what its layout writes onto these; what a person did not
#: type (tool results, injected context) never gets ``user`` with ``typed`` set.
SYSTEM, USER, ASSISTANT, TOOL = "system", "user", "assistant", "tool"

#: One row per message, in conversation order (``file_index``, ``conversation``, ``turn``).
MESSAGE_SCHEMA = pl.Schema(
    {  # type: ignore[arg-type]  # mypy widens the mixed dtypes to object
        "file_index": pl.Int32,  # position of the file in the run's input order
        "file": pl.String,
        "line": pl.Int64,  # 1-based line of the record holding the message; null inside a JSON document
        "conversation": pl.Int64,  # which conversation of the file (a ShareGPT line, an array position, ...)
        "format": pl.String,  # the layout the file was read as, e.g. "sharegpt", "claude_code"
        "session_id": pl.String,
        "model": pl.String,
        "turn": pl.Int32,  # 0-based position of the message in its conversation
        "role": pl.String,  # canonical: system, user, assistant, tool; null when unknown
        "role_raw": pl.String,  # the role as the file spells it
        "typed": pl.Boolean,  # a user message a person typed (not a command wrapper or interruption)
        "text": pl.String,  # what was said, without thinking/reasoning; null when nothing
        "has_tool_calls": pl.Boolean,  # an assistant message that calls tools
        "tool_name": pl.String,  # the (first) tool called, or the tool a result came from
        # an agent's run (it works with tools, or a harness drove it), not a chat: under
        # ``--responses auto`` only its final answers are responses; null: the reader's default
        "agent_run": pl.Boolean,
        "timestamp": pl.Datetime("us", "UTC"),
    }
)

#: Canonical roles of the ShareGPT ``from`` field. ``human`` and ``user`` are prompts;
#: ``gpt`` and ``assistant`` are responses.
SHAREGPT_ROLES = {
    "human": USER,
    "user": USER,
    "gpt": ASSISTANT,
    "assistant": ASSISTANT,
    "chatgpt": ASSISTANT,
    "bing": ASSISTANT,
    "bard": ASSISTANT,
    "system": SYSTEM,
    "tool": TOOL,
    "observation": TOOL,
    "function_response": TOOL,
    # an assistant turn that is only a call
    "function_call": ASSISTANT,
}

#: Defaults for columns a layout has no notion of.
_DEFAULTS: dict[str, pl.Expr] = {
    "line": pl.lit(None, pl.Int64),
    "model": pl.lit(None, pl.String),
    "role_raw": pl.lit(None, pl.String),
    "has_tool_calls": pl.lit(False),
    "tool_name": pl.lit(None, pl.String),
    "agent_run": pl.lit(None, pl.Boolean),
    "timestamp": pl.lit(None, pl.Datetime("us", "UTC")),
}


def conform(messages: pl.LazyFrame) -> pl.LazyFrame:
    """Select the canonical columns in order and with their types.

    Columns a layout cannot fill (``line``, ``model``, ``role_raw``, ``has_tool_calls``,
    ``tool_name``, ``agent_run``, ``timestamp``) may be left out; ``typed`` defaults to "a user message".
    """
    present = set(messages.collect_schema().names())
    columns = []
    for name, dtype in MESSAGE_SCHEMA.items():
        if name in present:
            columns.append(pl.col(name).cast(dtype))
        elif name == "typed":
            columns.append((pl.col("role") == USER).fill_null(False).alias(name))
        elif name in _DEFAULTS:
            columns.append(_DEFAULTS[name].cast(dtype).alias(name))
        else:
            raise KeyError(f"a reader must produce the {name!r} column")
    return messages.select(columns)


#: Epoch numbers at least this large are not seconds but milliseconds (1e11 seconds is
#: the year 5138; 1e11 milliseconds is 1973), then microseconds, then nanoseconds.
EPOCH_MILLIS_FROM = 1e11
EPOCH_MICROS_FROM = 1e14
EPOCH_NANOS_FROM = 1e17
#: The latest instant a timestamp may be (the year 9999 and a bit, in microseconds):
#: Python's datetime, which notebooks convert to, goes no further.
MAX_EPOCH_MICROS = 253_402_300_800_000_000


def parse_timestamp(value: pl.Expr) -> pl.Expr:
    """An ISO 8601 string (``Z`` or an offset, any fraction) or an epoch number, as UTC;
    null where it is neither, or out of range.

    An epoch number is in seconds, or, where it is too large for seconds (past the year
    5138), in milliseconds, microseconds or nanoseconds by its size: JavaScript's tools
    write milliseconds. A value none of these fit (``1e300``, ``NaN``) is null, not an
    error that would stop the batch."""
    as_text = value.cast(pl.String)
    epoch = as_text.cast(pl.Float64, strict=False)
    size = epoch.abs()
    epoch_micros = (
        pl.when(size < EPOCH_MILLIS_FROM)
        .then(epoch * 1_000_000)
        .when(size < EPOCH_MICROS_FROM)
        .then(epoch * 1_000)
        .when(size < EPOCH_NANOS_FROM)
        .then(epoch)
        .otherwise(epoch / 1_000)
    )
    in_range = epoch_micros.is_finite() & (epoch_micros.abs() < MAX_EPOCH_MICROS)
    from_epoch = pl.when(in_range).then(epoch_micros).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    # text only where it is no number, and naive only where it is no ISO with an offset:
    # each parse costs every value it is given, and most columns hold one kind
    as_text = pl.when(epoch.is_null()).then(as_text)
    from_iso = (
        as_text.str.replace(r"Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False)
        .dt.cast_time_unit("us")
    )
    naive_iso = (
        pl.when(from_iso.is_null())
        .then(as_text)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
        .dt.replace_time_zone("UTC")
    )
    return pl.coalesce(from_epoch, from_iso, naive_iso.dt.cast_time_unit("us"))
