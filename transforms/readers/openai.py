"""OpenAI chat messages into the canonical message table.

A message is ``{"role": ..., "content": ...}``: ``content`` is a string, null (an
assistant turn that only calls tools) or a list of parts ``{"type": "text", "text": ...}``
(LLaMA-Factory writes ``value`` instead of ``text``, with part types ``reasoning`` and
``tool_call`` as well). Calls are ``tool_calls: [{id, type, function: {name, arguments}}]``,
or the legacy ``function_call: {name, arguments}`` answered by role ``function``.

Where the list lives: ``messages`` (chat datasets, one record per JSON line or a JSON
array of records), ``history`` (SWE-agent ``.traj``), ``answer_generation.train_messages``
(ToolBench; there a list of growing prefixes of one run, of which the last and longest
is read) or a bare array of messages (mini-swe-agent).

``normalise`` (the message struct into role, text and the rest) is shared with the
Hermes Agent readers, whose messages are OpenAI-shaped.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import polars as pl

from transforms.readers import Reader
from transforms.schema import ASSISTANT, SYSTEM, TOOL, USER, conform, parse_timestamp

FORMAT = "openai"

PART_DTYPE = pl.Struct({"type": pl.String, "text": pl.String, "value": pl.String})
FUNCTION_DTYPE = pl.Struct({"name": pl.String})
CALL_DTYPE = pl.Struct({"function": FUNCTION_DTYPE, "name": pl.String, "tool_name": pl.String})

#: Every field of a message that ``normalise`` reads. A field a file spells as either a
#: string or something else is decoded twice: the string under ``<name>_str`` (see
#: ``rename_string_keys``), the rest under its own name.
MESSAGE_FIELDS: dict[str, pl.DataType] = {
    "role": pl.String(),
    "content_str": pl.String(),
    "content": pl.List(PART_DTYPE),
    "name": pl.String(),
    "tool_name": pl.String(),  # Hermes writes it instead of ``name``
    "tool_calls": pl.List(CALL_DTYPE),
    "tool_calls_str": pl.String(),  # JSON text, as a Hermes database row holds it (never decoded)
    "function_call": FUNCTION_DTYPE,
    "function_call_str": pl.String(),  # ToolBench: a Python repr of the call
    "tool_call_id": pl.String(),
    "tool_call_ids": pl.List(pl.String()),  # SWE-agent
    "message_type": pl.String(),  # SWE-agent: system_prompt, observation, action, demonstration
    "is_demo": pl.Boolean(),  # SWE-agent demonstrations
    "is_demo_str": pl.String(),  # the same, written as text ("True") by older SWE-agent versions
    "action": pl.String(),  # SWE-agent: the command an assistant turn ran
    "thought": pl.String(),  # SWE-agent: the assistant turn's text, once more
    "timestamp": pl.String(),  # ISO text or epoch seconds (a number decodes as its text)
}
MESSAGE_DTYPE = pl.Struct(MESSAGE_FIELDS)
MESSAGES = pl.List(MESSAGE_DTYPE)

#: A record holding a list of messages, under any of the keys the list is found under.
RECORD_FIELDS: dict[str, pl.DataType] = {
    "id": pl.String(),
    "session_id": pl.String(),
    "model": pl.String(),
    "messages": MESSAGES,
    "history": MESSAGES,
    "answer_generation": pl.Struct(
        {"train_messages": MESSAGES, "train_nested": pl.List(MESSAGES), "final_answer": pl.String()}
    ),
}
RECORD_DTYPE = pl.Struct(RECORD_FIELDS)
#: An element of a JSON array: a record, or (in a bare array) a message.
ELEMENT_DTYPE = pl.Struct({**MESSAGE_FIELDS, **RECORD_FIELDS})

ROLES = {
    "system": SYSTEM,
    "developer": SYSTEM,
    "user": USER,
    "human": USER,
    "assistant": ASSISTANT,
    "model": ASSISTANT,
    "gpt": ASSISTANT,
    "tool": TOOL,
    "function": TOOL,
    "ipython": TOOL,
    "observation": TOOL,
}
#: Part types whose ``text``/``value`` is what was said; reasoning and calls never are.
TEXT_PARTS = ("text", "input_text", "output_text")
CALL_PARTS = ("tool_call", "tool_use", "function_call")
RESULT_PARTS = ("tool_result", "function_call_output")
#: Records that are not messages (a Hermes gateway file's first line, which a session
#: log sometimes repeats at its end).
NOT_MESSAGES = ("session_meta",)

#: User messages that are a tool's output in disguise: mini-swe-agent writes each
#: command's result as a user message starting so.
OBSERVATION_PATTERN = r"^\s*<(?:returncode|exception)>"
#: User messages an agent harness wrote, not a person: mini-swe-agent's format error.
HARNESS_PATTERN = r"^\s*Please always provide EXACTLY ONE action"

# A string-valued key, renamed textually to ``<key>_str`` before decoding: inside a JSON
# string every quote is escaped, so ``{`` or ``,`` then a bare quoted key is structural.
_STRING_KEYS = r'([{,]\s*)"(content|tool_calls|function_call|is_demo)"(\s*:\s*")'
_NESTED_TRAIN = r'([{,]\s*)"train_messages"(\s*:\s*\[\s*\[)'


def rename_string_keys(text: pl.Expr) -> pl.Expr:
    """The JSON text with string-valued ``content``/``tool_calls``/``function_call``/``is_demo``
    keys renamed ``<key>_str``, and ToolBench's list of message lists renamed ``train_nested``."""
    return text.str.replace_all(_STRING_KEYS, '${1}"${2}_str"${3}').str.replace_all(
        _NESTED_TRAIN, '${1}"train_nested"${2}'
    )


def one_object_per_line(text: pl.Expr) -> pl.Expr:
    """Each line's JSON text, or ``]`` where the line is not a whole object.

    ``str.json_decode`` parses its rows as one stream, so a record broken across lines
    (an unterminated string, as Hermes gateway files hold) would join the next line and
    shift every value after it (a ShapeError the job cannot narrow down). ``]`` joins
    nothing: the batch fails to decode, and the job finds and quarantines those lines.
    """
    whole = text.str.starts_with("{") & text.str.ends_with("}")
    return pl.when(whole).then(text).otherwise(pl.lit("]"))


def message_struct(**fields: pl.Expr) -> pl.Expr:
    """A ``MESSAGE_DTYPE`` struct from the given fields; the others are null."""
    unknown = set(fields) - set(MESSAGE_FIELDS)
    if unknown:
        raise KeyError(f"not message fields: {sorted(unknown)}")
    return pl.struct(
        [
            (fields[name] if name in fields else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in MESSAGE_FIELDS.items()
        ]
    ).alias("message")


def _parts_where(parts: pl.Expr, types: tuple[str, ...], *, or_untyped: bool = False) -> pl.Expr:
    """The ``text`` (else ``value``) of the parts of the given types, as a list."""
    part_type = pl.element().struct.field("type")
    wanted = part_type.is_in(types)
    if or_untyped:
        wanted = wanted | part_type.is_null()
    said = pl.coalesce(pl.element().struct.field("text"), pl.element().struct.field("value"))
    return parts.list.eval(pl.when(wanted).then(said)).list.drop_nulls()


def _has_part(parts: pl.Expr, types: tuple[str, ...]) -> pl.Expr:
    return parts.list.eval(pl.element().struct.field("type").is_in(types)).list.any().fill_null(False)


def normalise(
    messages: pl.LazyFrame, conversation: list[str], harness: pl.Expr | None = None
) -> pl.LazyFrame:
    """Rows holding a ``message`` struct (with the ``MESSAGE_FIELDS``), in conversation
    order, into ``role``, ``role_raw``, ``text``, ``has_tool_calls``, ``tool_name``,
    ``typed``, ``timestamp`` and ``turn``; other columns are kept, ``message`` is dropped.

    ``conversation`` names the columns that tell conversations apart. Records that are
    not messages (``session_meta``) are dropped before turns are counted.

    With ``harness`` (true where the record says a harness drove the run: a SWE-agent
    ``history``, a ToolBench answer), runs are told from chats, and ``agent_run`` is set:
    a conversation is a harness's run when ``harness`` says so or its messages show it
    (an ``action`` or ``message_type`` on a message, a demonstration, a user message that
    is command output or a harness's format error). In such a run nobody types after the
    task: its first user message (not a demonstration) is the one prompt, and every
    later one is the environment answering the agent's turn (role tool) or the harness
    talking (role system, as ToolBench's "This is not the first time you try this task").
    """
    message = pl.col("message")

    def field(name: str) -> pl.Expr:
        return message.struct.field(name)

    parts = field("content")
    calls = field("tool_calls")
    first_call = calls.list.first()
    # JSON text is looked into, not decoded: a malformed one reads as no call instead of failing
    calls_text = field("tool_calls_str")
    call_part = _parts_where(parts, CALL_PARTS).list.first()
    function_call = field("function_call")
    function_call_str = field("function_call_str")

    said = pl.coalesce(field("content_str"), _parts_where(parts, TEXT_PARTS, or_untyped=True).list.join("\n"))
    has_tool_calls = (
        (calls.list.len() > 0).fill_null(False)
        | calls_text.str.json_path_match("$[0]").is_not_null()
        | function_call.is_not_null()
        | function_call_str.is_not_null()
        | _has_part(parts, CALL_PARTS)
    )
    called = pl.coalesce(
        first_call.struct.field("function").struct.field("name"),
        first_call.struct.field("name"),
        first_call.struct.field("tool_name"),
        calls_text.str.json_path_match("$[0].function.name"),
        calls_text.str.json_path_match("$[0].name"),
        calls_text.str.json_path_match("$[0].tool_name"),
        function_call.struct.field("name"),
        function_call_str.str.extract(r"""['"]name['"]\s*:\s*['"]([^'"]+)['"]"""),
        call_part.str.json_path_match("$.name"),
    )
    role = pl.col("role_raw").replace_strict(ROLES, default=None)
    is_user = (role == USER).fill_null(False)
    observation = (field("message_type") == "observation").fill_null(False)
    seen_before = observation.cast(pl.Int32).cum_sum().over(conversation) - observation.cast(pl.Int32)
    tool_result = (
        field("tool_call_id").is_not_null()
        | (field("tool_call_ids").list.len() > 0).fill_null(False)
        | _has_part(parts, RESULT_PARTS)
        | pl.col("text").str.contains(OBSERVATION_PATTERN).fill_null(False)
        # SWE-agent: the task is the first observation, later ones are command output
        | (observation & (seen_before > 0))
    )
    injected = (
        (field("message_type") == "demonstration").fill_null(False)
        | field("is_demo").fill_null(False)
        | (field("is_demo_str").str.to_lowercase() == "true").fill_null(False)
    )
    role_after_runs = (
        pl.when(is_user & injected).then(pl.lit(SYSTEM)).when(is_user & tool_result).then(pl.lit(TOOL))
    )
    if harness is not None:
        speaks = is_user & ~injected & ~tool_result
        task = speaks & (speaks.cast(pl.Int32).cum_sum().over(conversation) == 1)
        shows_a_run = (
            field("action").is_not_null()
            | field("message_type").is_not_null()
            | injected
            | (
                is_user
                & pl.col("text").str.contains(f"{OBSERVATION_PATTERN}|{HARNESS_PATTERN}").fill_null(False)
            )
        )
        is_run = (harness.fill_null(False) | shows_a_run).any().over(conversation)
        after_the_agent = (
            pl.col("role_raw").shift(1).over(conversation).replace_strict(ROLES, default=None) == ASSISTANT
        ).fill_null(False)
        role_after_runs = role_after_runs.when(is_run & speaks & ~task).then(
            pl.when(after_the_agent).then(pl.lit(TOOL)).otherwise(pl.lit(SYSTEM))
        )
        agent_run = (is_run | has_tool_calls | (role == TOOL)).any().over(conversation)

    return (
        messages.filter(message.is_not_null() & ~field("role").is_in(NOT_MESSAGES).fill_null(False))
        .with_columns(
            field("role").alias("role_raw"),
            pl.when(said != "").then(said).alias("text"),
            has_tool_calls.alias("has_tool_calls"),
            parse_timestamp(field("timestamp")).alias("timestamp"),
            pl.int_range(pl.len(), dtype=pl.Int32).over(conversation).alias("turn"),
        )
        .with_columns(
            # ToolBench writes the content of a call-only turn as the string "None"
            pl.when(pl.col("has_tool_calls") & (pl.col("text") == "None"))
            .then(None)
            .otherwise(pl.col("text"))
            .alias("text"),
            pl.when(role == TOOL)
            .then(pl.coalesce(field("name"), field("tool_name")))
            .otherwise(called)
            .alias("tool_name"),
            role_after_runs.otherwise(role).alias("role"),
            *([] if harness is None else [agent_run.alias("agent_run")]),
        )
        .with_columns(
            ((pl.col("role") == USER) & ~pl.col("text").str.contains(HARNESS_PATTERN).fill_null(False))
            .fill_null(False)
            .alias("typed")
        )
        .drop("message")
    )


def _messages_of(record: pl.Expr) -> pl.Expr:
    """The message list of a record, wherever it keeps it."""
    train = record.struct.field("answer_generation")
    return pl.coalesce(
        record.struct.field("messages"),
        record.struct.field("history"),
        train.struct.field("train_messages"),
        train.struct.field("train_nested").list.last(),
    )


def _explode(records: pl.LazyFrame) -> pl.LazyFrame:
    """Rows with ``file_index``, ``file``, ``line``, ``conversation``, ``place``,
    ``session_id``, ``model`` and ``messages`` (a message list) into the canonical table."""
    return _explode_rows(
        records.filter(pl.col("messages").list.len() > 0).explode("messages").rename({"messages": "message"})
    )


def _explode_rows(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Rows of one ``message`` each, with the columns ``_explode`` takes, into the table.

    ``harness`` (when the rows have it) says the record is a harness's run; ToolBench's
    ``final_answer``, when there is one, is the text of its ``Finish`` call."""
    names = rows.collect_schema().names()
    rows = rows.with_columns(
        pl.col("session_id").fill_null(pl.col("place")),
        pl.lit(FORMAT).alias("format"),
        *([] if "harness" in names else [pl.lit(value=False).alias("harness")]),
        *([] if "final_answer" in names else [pl.lit(None, pl.String).alias("final_answer")]),
    )
    messages = normalise(rows, ["file_index", "conversation"], harness=pl.col("harness"))
    finish = (pl.col("tool_name") == "Finish") & pl.col("text").is_null()
    return conform(
        messages.with_columns(pl.when(finish).then("final_answer").otherwise("text").alias("text"))
    )


def _read_records(
    records: pl.LazyFrame, line: pl.Expr, place: pl.Expr, under: str | None = None
) -> pl.LazyFrame:
    """One record with a message list per row; the conversation is the row's ``line``.
    ``under``: the key of the list, when it is none of the usual ones."""
    record = pl.col("record")
    dtype = RECORD_DTYPE if under is None else pl.Struct({**RECORD_FIELDS, under: MESSAGES})
    messages = _messages_of(record) if under is None else record.struct.field(under)
    return _explode(
        records.select(
            "file_index",
            "file",
            line.alias("line"),
            pl.col("line").alias("conversation"),
            place.alias("place"),
            rename_string_keys(one_object_per_line(pl.col("text"))).str.json_decode(dtype).alias("record"),
        ).select(
            pl.exclude("record"),
            pl.coalesce(record.struct.field("id"), record.struct.field("session_id")).alias("session_id"),
            record.struct.field("model").alias("model"),
            messages.alias("messages"),
            *_run_marks(record),
        )
    )


def _run_marks(record: pl.Expr) -> list[pl.Expr]:
    """``harness``: the record is a harness's run (a SWE-agent ``history``, a ToolBench
    answer); ``final_answer``: ToolBench's final answer, the text of its ``Finish`` call."""
    answer = record.struct.field("answer_generation")
    return [
        (record.struct.field("history").is_not_null() | answer.is_not_null()).alias("harness"),
        answer.struct.field("final_answer").str.json_path_match("$.final_answer").alias("final_answer"),
    ]


def read_lines(records: pl.LazyFrame) -> pl.LazyFrame:
    """One record with a message list per line; the conversation is its line."""
    return _read_records(records, pl.col("line"), pl.format("{}:{}", "file", "line"))


def read_elements(records: pl.LazyFrame) -> pl.LazyFrame:
    """One record per element of a JSON array; the conversation is its position (``line``)."""
    return _read_records(records, pl.lit(None, pl.Int64), pl.format("{}[{}]", "file", "line"))


def decode_messages(records: pl.LazyFrame) -> pl.LazyFrame:
    """One message per record (an element of a bare array of messages) into a ``message``."""
    return records.select(
        "file_index",
        "file",
        rename_string_keys(pl.col("text")).str.json_decode(MESSAGE_DTYPE).alias("message"),
    )


def read_messages(messages: pl.LazyFrame) -> pl.LazyFrame:
    """Every message of whole bare arrays (``decode_messages``' rows): a file, a conversation."""
    return _explode_rows(
        messages.with_columns(
            pl.lit(None, pl.Int64).alias("line"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.format("{}[0]", "file").alias("place"),
            pl.lit(None, pl.String).alias("session_id"),
            pl.lit(None, pl.String).alias("model"),
        )
    )


def read_document(records: pl.LazyFrame) -> pl.LazyFrame:
    """A JSON array of records (the conversation is the position), one record, or a bare
    array of messages (one conversation), one JSON document a record (``Reader.read_whole``:
    a small record document; a larger one is decoded a piece at a time, ``decode_document``)."""
    as_array = (
        pl.when(pl.col("text").str.starts_with("["))
        .then(pl.col("text"))
        .otherwise(pl.concat_str(pl.lit("["), pl.col("text"), pl.lit("]")))
    )
    element = pl.col("element")
    elements = (
        records.select(
            "file_index",
            "file",
            rename_string_keys(as_array).str.json_decode(pl.List(ELEMENT_DTYPE)).alias("element"),
        )
        .with_columns(pl.int_ranges(pl.col("element").list.len(), dtype=pl.Int64).alias("conversation"))
        .explode("element", "conversation")
        .filter(element.is_not_null())
        .with_columns(_messages_of(element).alias("messages"))
    )
    holds_records = pl.col("messages").is_not_null().any().over("file_index")
    from_records = elements.filter(holds_records).select(
        "file_index",
        "file",
        "conversation",
        pl.coalesce(element.struct.field("id"), element.struct.field("session_id")).alias("session_id"),
        element.struct.field("model").alias("model"),
        "messages",
        *_run_marks(element),
    )
    bare_array = (
        elements.filter(~holds_records)
        .group_by("file_index", "file", maintain_order=True)
        .agg(
            message_struct(**{name: element.struct.field(name) for name in MESSAGE_FIELDS})
            .sort_by("conversation")
            .alias("messages")
        )
        .select(
            "file_index",
            "file",
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.lit(None, pl.String).alias("session_id"),
            pl.lit(None, pl.String).alias("model"),
            "messages",
            pl.lit(value=False).alias("harness"),
            pl.lit(None, pl.String).alias("final_answer"),
        )
    )
    return _explode(
        pl.concat([from_records, bare_array]).with_columns(
            pl.lit(None, pl.Int64).alias("line"),
            pl.format("{}[{}]", "file", "conversation").alias("place"),
        )
    )


#: Where a document keeps its messages (``Reader.lists``), in the order ``_messages_of``
#: takes them: the first that the document has is read.
DOCUMENT_LISTS = ("messages", "history", "answer_generation.train_messages")


def decode_document(records: pl.LazyFrame) -> pl.LazyFrame:
    """A record document's records (``Reader.decode``): an element of one of its lists into a
    ``message`` (or, an element of ToolBench's list of growing prefixes, into a ``prefix``,
    a list of messages); the header, the record without its lists, into what ``read_document``
    takes of the record: ``session_id``, ``model``, the run's marks, ``source`` (the list it
    reads: the first of ``DOCUMENT_LISTS`` the record has) and the record itself as a
    ``message`` (read when it has no list)."""
    header, prefix = pl.col("line").is_null(), pl.col("text").str.starts_with("[")
    record = pl.col("record")
    train = record.struct.field("answer_generation")
    present = [  # whether the record has each list
        record.struct.field("messages").is_not_null(),
        record.struct.field("history").is_not_null(),
        train.struct.field("train_messages").is_not_null() | train.struct.field("train_nested").is_not_null(),
    ]
    source = pl.lit(None, pl.String)
    for key, has in reversed(list(zip(DOCUMENT_LISTS, present, strict=True))):
        source = pl.when(has).then(pl.lit(key)).otherwise(source)
    headers = (
        records.filter(header)
        .select(
            "file_index",
            "file",
            "line",
            "list",
            rename_string_keys(pl.col("text")).str.json_decode(ELEMENT_DTYPE).alias("record"),
        )
        .select(
            pl.exclude("record"),
            pl.coalesce(record.struct.field("id"), record.struct.field("session_id")).alias("session_id"),
            record.struct.field("model").alias("model"),
            *_run_marks(record),
            source.alias("source"),
            message_struct(**{name: record.struct.field(name) for name in MESSAGE_FIELDS}),
        )
    )
    element = rename_string_keys(pl.col("text"))
    messages = records.filter(~header & ~prefix).select(
        "file_index", "file", "line", "list", element.str.json_decode(MESSAGE_DTYPE).alias("message")
    )
    prefixes = records.filter(~header & prefix).select(
        "file_index", "file", "line", "list", element.str.json_decode(MESSAGES).alias("prefix")
    )
    return pl.concat([headers, messages, prefixes], how="diagonal")


def read_decoded_documents(decoded: pl.LazyFrame) -> pl.LazyFrame:
    """Record documents decoded a piece at a time (``decode_document``), as ``read_document``
    reads them whole: the messages of the first list the record has (of a list of growing
    prefixes, the last), or, when it has none, the record itself as one message."""
    header = pl.col("line").is_null()
    marks = ["session_id", "model", "harness", "final_answer"]
    headers = decoded.filter(header).select("file_index", *marks, "source", "message")
    rank = pl.col("list").replace_strict({key: rank for rank, key in enumerate(DOCUMENT_LISTS)}, default=None)
    chosen = pl.coalesce("source", pl.col("list").sort_by(rank).first().over("file_index"))
    last_prefix = pl.col("line") == pl.col("line").filter(pl.col("prefix").is_not_null()).max().over(
        "file_index"
    )
    elements = (
        decoded.filter(~header)
        .select("file_index", "file", "line", "list", "message", "prefix")
        .join(
            headers.select("file_index", *marks, "source"), on="file_index", how="left", maintain_order="left"
        )
        .filter((pl.col("list") == chosen) & (pl.col("prefix").is_null() | last_prefix))
        .sort("file_index", "line", maintain_order=True)
        .with_columns(pl.coalesce("prefix", pl.concat_list("message")).alias("message"))
        .drop("prefix", "list", "source")
        .explode("message")
    )
    bare = (
        headers.filter(pl.col("source").is_null())
        .join(decoded.filter(header).select("file_index", "file"), on="file_index", maintain_order="left")
        .select(
            "file_index",
            "file",
            pl.lit(None, pl.Int64).alias("line"),
            pl.lit(None, pl.String).alias("session_id"),
            pl.lit(None, pl.String).alias("model"),
            pl.lit(value=False).alias("harness"),
            pl.lit(None, pl.String).alias("final_answer"),
            "message",
        )
    )
    return _explode_rows(
        pl.concat([elements.select(bare.collect_schema().names()), bare])
        .filter(pl.col("message").is_not_null())
        .sort("file_index", maintain_order=True)
        .with_columns(
            pl.lit(None, pl.Int64).alias("line"),
            pl.lit(0, pl.Int64).alias("conversation"),
            pl.format("{}[0]", "file").alias("place"),
        )
    )


# --- sniffing ---------------------------------------------------------------------


def is_message_list(value: Any) -> bool:
    """A non-empty list whose first element is a dict with a ``role``."""
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def _train_messages(value: dict[str, Any]) -> Any:
    train = value.get("answer_generation")
    if not isinstance(train, dict):
        return None
    found = train.get("train_messages")
    if isinstance(found, list) and found and isinstance(found[-1], list):
        return found[-1]  # ToolBench's list of prefixes
    return found


def looks_hermes(value: dict[str, Any]) -> bool:
    """A Hermes Agent session log or export line (their readers claim these)."""
    keys = value.keys()
    return bool({"session_id", "session_start", "platform"} & keys) or {"started_at", "source"} <= keys


def is_record(value: Any) -> bool:
    """An object with a list of OpenAI messages (not ShareGPT, not a Hermes session)."""
    if not isinstance(value, dict) or "conversations" in value or looks_hermes(value):
        return False
    return any(
        is_message_list(found)
        for found in (value.get("messages"), value.get("history"), _train_messages(value))
    )


def sniff_lines(head: list[Any]) -> bool:
    return any(is_record(value) for value in head)


def sniff_elements(elements: list[Any]) -> bool:
    return bool(elements) and is_record(elements[0])


def list_key(value: Any) -> str | None:
    """The key under which an object that is no known record keeps a list of messages."""
    if not isinstance(value, dict) or is_record(value) or "conversations" in value or looks_hermes(value):
        return None
    return next((key for key, found in value.items() if is_message_list(found)), None)


@cache
def reader_under(key: str) -> Reader:
    """The reader of JSON lines whose records wrap their messages under ``key``, a key
    of the dataset's own (``{"id": ..., "dialog": [{"role": ..., "content": ...}]}``)."""

    def sniff(head: list[Any]) -> bool:
        return any(list_key(value) == key for value in head)

    def read(records: pl.LazyFrame) -> pl.LazyFrame:
        return _read_records(records, pl.col("line"), pl.format("{}:{}", "file", "line"), under=key)

    return Reader(FORMAT, "lines", sniff, read, agent=None, line_per_conversation=True)


def sniff_messages(elements: list[Any]) -> bool:
    return is_message_list(elements)


def sniff_document(document: Any) -> bool:
    if isinstance(document, list):
        return bool(document) and (is_record(document[0]) or is_message_list(document))
    return is_record(document)


READERS = (
    Reader(FORMAT, "lines", sniff_lines, read_lines, agent=None, line_per_conversation=True),
    Reader(FORMAT, "array", sniff_elements, read_elements, agent=None),
    Reader(FORMAT, "events", sniff_messages, read_messages, agent=None, decode=decode_messages),
    Reader(
        FORMAT,
        "document",
        sniff_document,
        read_decoded_documents,
        agent=None,
        decode=decode_document,
        lists=DOCUMENT_LISTS,
        read_whole=read_document,
    ),
)
