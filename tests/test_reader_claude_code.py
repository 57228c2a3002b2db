"""The Claude Code reader: project JSONL logs and the ``{"loglines": [...]}`` export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.discover import detect
from jobs.pairs_job import PairRules, run
from jobs.read_batch import read_files
from tests.conftest import REALDATA
from transforms.readers.claude_code import read_lines, sniff_document, sniff_lines
from transforms.schema import MESSAGE_SCHEMA

SAMPLES = REALDATA / "claude_code"
SESSION = SAMPLES / "claude-code-transcripts__sample_session.jsonl"
LOGLINES = SAMPLES / "claude-code-transcripts__sample_session.loglines.json"
INIT = SAMPLES / "claude-code-viewer__1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl"
ORCHESTRATOR = SAMPLES / "claude-code-viewer__5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"
AGENT_FILE = SAMPLES / "claude-code-viewer__agent-test-hash-123.jsonl"
EDGE_CASES = SAMPLES / "claude-code-log__edge_cases.jsonl"
ALL_SAMPLES = sorted(SAMPLES.iterdir())
THINKING_SAMPLES = {"agent-sessions__claude_small.jsonl", LOGLINES.name}

#: Per sample: messages read, and the lines quarantined (records that are not events).
EXPECTED_COUNTS = {
    "agent-sessions__claude_small.jsonl": (17, []),
    "claude-code-log__edge_cases.jsonl": (11, [11, 13, 15, 16, 18]),
    "claude-code-log__representative_messages.jsonl": (11, []),
    "claude-code-log__session_b.jsonl": (3, []),
    "claude-code-log__todowrite_examples.jsonl": (11, []),
    "claude-code-transcripts__sample_session.jsonl": (7, []),
    "claude-code-transcripts__sample_session.loglines.json": (33, []),
    "claude-code-viewer__1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl": (21, []),
    "claude-code-viewer__5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl": (45, []),
    "claude-code-viewer__agent-test-hash-123.jsonl": (2, []),
}


def read(path: Path) -> pl.DataFrame:
    batch = read_files([path])
    return batch.messages


def pairs_of(path: Path) -> list[tuple[str, str]]:
    _, pairs = run([path], PairRules(min_ratio=0, min_words=1, responses="each"), None, sample_size=10_000)
    return [(pair["terse"], pair["rich"]) for pair in pairs]


def read_inline(*events: dict[str, Any]) -> pl.DataFrame:
    """Events as the lines of one file, read by the lines reader."""
    texts = [json.dumps(event) for event in events]
    records = pl.LazyFrame(
        {
            "file_index": pl.Series([0] * len(texts), dtype=pl.Int32),
            "file": ["inline.jsonl"] * len(texts),
            "line": pl.Series(range(1, len(texts) + 1), dtype=pl.Int64),
            "text": texts,
        }
    )
    return read_lines(records).collect()


def user(text: Any, **fields: Any) -> dict[str, Any]:
    return {"type": "user", "sessionId": "s", "message": {"role": "user", "content": text}, **fields}


def assistant(blocks: list[dict[str, Any]], message_id: str | None = None, **fields: Any) -> dict[str, Any]:
    message = {"role": "assistant", "model": "claude-x", "content": blocks}
    if message_id is not None:
        message["id"] = message_id
    return {"type": "assistant", "sessionId": "s", "message": message, **fields}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, call_id: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": {"content": "x"}}


def tool_result(call_id: str, content: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": False}


def json_values(path: Path) -> list[Any]:
    """Every event of a sample (the loglines of the export), parsed with ``json``."""
    if path.suffix == ".json":
        return list(json.loads(path.read_text())["loglines"])
    values: list[Any] = []
    for line in path.read_text().splitlines():
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError:
            values.append(None)
    return values


def blocks_of(value: Any) -> list[dict[str, Any]]:
    message = value.get("message") if isinstance(value, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


# --- detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda path: path.name)
def test_every_sample_is_detected_as_claude_code(path: Path) -> None:
    found = detect(path)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == (
        "claude_code",
        "document" if path.suffix == ".json" else "lines",
    )


@pytest.mark.parametrize(
    "head",
    [
        # Codex rollout
        [
            {"timestamp": "t", "type": "session_meta", "payload": {"id": "x", "cwd": "/"}},
            {
                "timestamp": "t",
                "type": "response_item",
                "payload": {"type": "message", "role": "user", "content": []},
            },
            {"timestamp": "t", "type": "event_msg", "payload": {"type": "user_message", "message": "hi"}},
        ],
        # Hermes gateway transcript
        [
            {"role": "session_meta", "tools": [], "model": "m", "timestamp": "t"},
            {"role": "user", "content": "hi", "timestamp": "t"},
            {"role": "assistant", "content": "hello", "timestamp": "t"},
        ],
        # pi / OpenClaw: a "message" event with a message inside
        [
            {"type": "session", "id": "x", "timestamp": "t"},
            {"type": "message", "id": "a", "parentId": "x", "message": {"role": "user", "content": "hi"}},
        ],
        # a user/assistant type without any Claude Code field
        [{"type": "user", "message": "hi"}, {"type": "assistant", "text": "hello"}],
        [{"conversations": [{"from": "human", "value": "hi"}]}],
    ],
    ids=["codex", "hermes_gateway", "pi", "bare_types", "sharegpt"],
)
def test_other_layouts_are_not_sniffed(head: list[Any]) -> None:
    assert not sniff_lines(head)


@pytest.mark.parametrize("path", sorted((REALDATA / "codex_rollout").glob("*.jsonl")))
def test_real_codex_rollouts_are_not_sniffed(path: Path) -> None:
    assert not sniff_lines(json_values(path)[:10])


def test_sniff_accepts_a_log_starting_with_bookkeeping() -> None:
    snapshot = {"type": "file-history-snapshot", "messageId": "m", "snapshot": {}, "isSnapshotUpdate": False}
    assert sniff_lines([snapshot] * 10)
    assert sniff_lines([{"type": "summary", "summary": "s", "leafUuid": "u"}])
    assert sniff_document({"loglines": [user("hi")]})
    assert not sniff_document({"loglines": [{"role": "user", "content": "hi"}]})
    assert not sniff_document([user("hi")])


# --- whole samples --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda path: path.name)
def test_every_sample_yields_its_messages(path: Path) -> None:
    batch = read_files([path])
    count, quarantined = EXPECTED_COUNTS[path.name]
    assert batch.messages.height == count
    assert batch.quarantine["line"].to_list() == quarantined
    assert set(batch.messages["format"]) == {"claude_code"}
    assert batch.messages["session_id"].null_count() == 0
    assert batch.messages["role"].null_count() == 0


def test_sample_session_messages() -> None:
    def at(second: int) -> datetime:
        return datetime(2025, 12, 24, 10, second // 60, second % 60, tzinfo=UTC)

    expected = pl.DataFrame(
        {
            "file_index": [0] * 7,
            "file": [str(SESSION)] * 7,
            "line": [2, 3, 4, 5, 6, 7, 8],
            "conversation": [0] * 7,
            "format": ["claude_code"] * 7,
            "session_id": ["test-session-id"] * 7,
            "model": [None] * 7,
            "turn": list(range(7)),
            "role": ["user", "assistant", "tool", "assistant", "tool", "user", "assistant"],
            "role_raw": ["user", "assistant", "user", "assistant", "user", "user", "assistant"],
            "typed": [True, False, False, False, False, True, False],
            "text": [
                "Create a hello world function",
                "I'll create that function for you.",
                "File written successfully",
                None,
                "[main abc1234] Add hello function\n 1 file changed",
                "Now add a goodbye function",
                "Done! The hello function is ready.",
            ],
            "has_tool_calls": [False, True, False, True, False, False, False],
            "tool_name": [None, "Write", "Write", "Bash", "Bash", None, None],
            "agent_run": [True] * 7,
            "timestamp": [at(0), at(5), at(10), at(15), at(20), at(60), at(65)],
        },
        schema=MESSAGE_SCHEMA,
    )
    assert_frame_equal(read(SESSION), expected)


def test_sample_session_pairs() -> None:
    assert pairs_of(SESSION) == [
        ("Create a hello world function", "I'll create that function for you."),
        ("Now add a goodbye function", "Done! The hello function is ready."),
    ]


def test_loglines_export() -> None:
    messages = read(LOGLINES)
    assert messages["line"].null_count() == messages.height
    assert messages["turn"].to_list() == list(range(messages.height))
    prompts = messages.filter(pl.col("typed"))["text"].to_list()
    assert prompts == [
        "Create a simple Python function to add two numbers",
        "Now edit the file to add a subtract function",
        "Run the tests again",
        "Fix the issue and commit",
        "Add a multiply function too",
    ]
    summary = messages.filter(pl.col("text").str.starts_with("This is a session continuation summary"))
    assert summary["role"].to_list() == ["system"]
    # no session id in the export: the file names the session
    assert set(messages["session_id"]) == {str(LOGLINES)}
    pairs = pairs_of(LOGLINES)
    assert pairs[0] == (
        "Create a simple Python function to add two numbers",
        "I'll create a simple Python function for you. Let me write it now.",
    )
    assert pairs[-1] == ("Add a multiply function too", "Added multiply function!")
    assert len(pairs) == 8


# --- message semantics ----------------------------------------------------------------------------


def test_one_reply_split_over_lines_is_one_message() -> None:
    messages = read_inline(
        user("Explain the repo", timestamp="2025-01-01T00:00:00Z"),
        assistant(
            [{"type": "thinking", "thinking": "secret plan"}], "msg_1", timestamp="2025-01-01T00:00:01Z"
        ),
        assistant([text("First part.")], "msg_1", timestamp="2025-01-01T00:00:02Z"),
        assistant([tool_use("Glob", "t1")], "msg_1", timestamp="2025-01-01T00:00:03Z"),
        assistant([tool_use("Read", "t2")], "msg_1"),
        user([tool_result("t1", "a.py"), tool_result("t2", [text("line 1"), text("line 2")])]),
        assistant([text("Second part.")], "msg_1"),
        assistant([text("A new reply.")], "msg_2"),
    )
    assert messages.select("line", "turn", "role", "text", "has_tool_calls", "tool_name").rows() == [
        (1, 0, "user", "Explain the repo", False, None),
        (2, 1, "assistant", "First part.\n\nSecond part.", True, "Glob"),
        (6, 2, "tool", "a.py\n\nline 1\n\nline 2", False, "Glob"),
        (8, 3, "assistant", "A new reply.", False, None),
    ]
    assert messages["timestamp"][1] == datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert messages["model"][1] == "claude-x"


def test_same_message_id_after_a_new_prompt_is_a_new_message() -> None:
    messages = read_inline(
        user("one"),
        assistant([text("reply one")], "same"),
        user("two"),
        assistant([text("reply two")], "same"),
    )
    assert messages["text"].to_list() == ["one", "reply one", "two", "reply two"]


def test_split_reply_in_a_real_log() -> None:
    messages = read(INIT)
    first = messages.filter(pl.col("line") == 3).row(0, named=True)
    assert first["text"].startswith("I'll analyze the codebase and create a CLAUDE.md file")
    assert (first["has_tool_calls"], first["tool_name"]) == (True, "TodoWrite")
    calls = messages.filter(pl.col("line") == 6).row(0, named=True)
    assert (calls["text"], calls["has_tool_calls"], calls["tool_name"]) == (None, True, "Bash")
    # lines 4 and 7-10 are parts of the replies at lines 3 and 6
    assert not set(messages["line"]) & {4, 7, 8, 9, 10}


def test_tool_results_are_never_prompts() -> None:
    for path in ALL_SAMPLES:
        messages = read(path)
        result_lines = {
            number
            for number, value in enumerate(json_values(path), start=1)
            if any(block.get("type") == "tool_result" for block in blocks_of(value))
        }
        if path.suffix == ".jsonl":
            at_results = messages.filter(pl.col("line").is_in(result_lines))
            assert set(at_results["role"]) <= {"tool"}, path.name
            assert at_results.height == len(result_lines), path.name
        assert messages.filter(pl.col("typed") & (pl.col("role") != "user")).is_empty()
        tool_texts = set(messages.filter(pl.col("role") == "tool")["text"].drop_nulls())
        prompts = {terse for terse, _ in pairs_of(path)}
        assert not prompts & tool_texts, path.name


def test_tool_name_of_a_result_comes_from_its_call() -> None:
    messages = read(ORCHESTRATOR)
    results = messages.filter(pl.col("role") == "tool")
    assert results["tool_name"].null_count() == 0
    assert results.filter(pl.col("line") == 23)["tool_name"].to_list() == ["Task"]


def test_meta_and_command_wrappers_are_not_prompts() -> None:
    messages = read(INIT)
    assert messages.filter(pl.col("line") == 1).select("role", "typed").row(0) == ("user", False)
    assert messages.filter(pl.col("line") == 2).select("role", "typed").row(0) == ("system", False)
    assert messages.filter(pl.col("typed")).is_empty()
    assert pairs_of(INIT) == []

    edge = read(EDGE_CASES).sort("line")
    roles = {line: (role, typed) for line, role, typed in edge.select("line", "role", "typed").iter_rows()}
    assert roles[6] == ("system", False)  # the local-command caveat
    assert roles[7] == ("user", False)  # <command-name>
    assert roles[8] == ("user", False)  # <local-command-stdout>


@pytest.mark.parametrize(
    "wrapper",
    [
        "<command-name>/clear</command-name>\n<command-message>clear</command-message>\n<command-args></command-args>",
        "<local-command-stdout></local-command-stdout>",
        "<local-command-stderr>Error: nope</local-command-stderr>",
        "<bash-input>ls</bash-input>",
        "[Request interrupted by user]",
        "[Request interrupted by user for tool use]",
    ],
)
def test_wrappers_end_a_prompt_and_are_not_typed(wrapper: str) -> None:
    messages = read_inline(
        user("Write a poem"),
        assistant([text("Roses are red.")]),
        user([text(wrapper)]),
        assistant([text("Anything else?")]),
    )
    assert messages.select("role", "typed").rows() == [
        ("user", True),
        ("assistant", False),
        ("user", False),
        ("assistant", False),
    ]


def test_injected_context_is_system() -> None:
    messages = read_inline(
        user("<local-command-caveat>Caveat: ...</local-command-caveat>", isMeta=True),
        user("expanded skill prompt", isMeta=True),
        user("Summary of the conversation so far", isCompactSummary=True),
        user("Caveat: The messages below were generated by the user while running local commands. DO NOT"),
        {"type": "system", "sessionId": "s", "content": "hook ran", "subtype": "info"},
        {"type": "attachment", "sessionId": "s", "attachment": {"type": "file", "content": "x"}},
        {"type": "summary", "summary": "a title", "leafUuid": "u"},
        user("the real question"),
    )
    assert messages.select("role", "typed").rows() == [
        ("system", False),
        ("system", False),
        ("system", False),
        ("system", False),
        ("user", True),
    ]


def test_assistant_lines_the_cli_wrote_are_not_responses() -> None:
    messages = read_inline(
        user("hi"),
        assistant([text("API Error: 529 overloaded")], isApiErrorMessage=True),
        {
            "type": "assistant",
            "sessionId": "s",
            "message": {
                "role": "assistant",
                "model": "<synthetic>",
                "content": [text("No response requested.")],
            },
        },
    )
    assert messages["role"].to_list() == ["user", "system", "system"]


def test_side_chains_are_their_own_conversations() -> None:
    messages = read(ORCHESTRATOR)
    side_lines = {
        number for number, value in enumerate(json_values(ORCHESTRATOR), start=1) if value.get("isSidechain")
    }
    by_conversation = messages.group_by("conversation").agg(pl.col("line")).sort("conversation")
    lines = dict(by_conversation.iter_rows())
    assert sorted(lines) == [0, 1, 2]
    assert not set(lines[0]) & side_lines
    assert set(lines[1]) | set(lines[2]) <= side_lines
    assert (min(lines[1]), max(lines[1])) == (16, 22)
    assert (min(lines[2]), max(lines[2])) == (26, 40)
    for number in (1, 2):
        conversation = messages.filter(pl.col("conversation") == number)
        assert conversation["turn"].to_list() == list(range(conversation.height))
        assert conversation.row(0, named=True)["typed"]
    pairs = pairs_of(ORCHESTRATOR)
    assert [terse.split()[0] for terse, _ in pairs] == ["Examine", "Examine", "Analyze", "Analyze"]


def test_side_chains_are_split_by_agent_id() -> None:
    messages = read_inline(
        user("main question"),
        user("task A", isSidechain=True, agentId="a"),
        user("task B", isSidechain=True, agentId="b"),
        assistant([text("answer A")], isSidechain=True, agentId="a"),
        assistant([text("answer B")], isSidechain=True, agentId="b"),
        assistant([text("main answer")]),
    )
    assert messages.select("conversation", "turn", "text").rows() == [
        (0, 0, "main question"),
        (0, 1, "main answer"),
        (1, 0, "task A"),
        (1, 1, "answer A"),
        (2, 0, "task B"),
        (2, 1, "answer B"),
    ]


def test_a_file_of_only_side_chain_lines_still_counts() -> None:
    messages = read(AGENT_FILE)
    assert messages.select("conversation", "role", "text").rows() == [
        (1, "user", "Run the test suite"),
        (1, "assistant", "I'll run the test suite for you."),
    ]
    assert pairs_of(AGENT_FILE) == [("Run the test suite", "I'll run the test suite for you.")]


def test_thinking_is_never_text() -> None:
    for path in ALL_SAMPLES:
        blocks = [block for value in json_values(path) for block in blocks_of(value)]
        said_too = {block.get("text") for block in blocks if block.get("type") == "text"}
        # (a fixture trims both kinds to the same placeholder: such a thought proves nothing)
        thoughts = [
            block["thinking"]
            for block in blocks
            if block.get("type") == "thinking" and block.get("thinking") and block["thinking"] not in said_too
        ]
        assert path.name not in THINKING_SAMPLES or thoughts
        texts = read(path)["text"].drop_nulls().to_list()
        for thought in thoughts:
            assert not any(thought in said for said in texts), path.name
    messages = read(LOGLINES)
    assert not messages["text"].str.contains("The user wants a simple addition function").any()


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=lambda path: path.name)
def test_a_typed_prompt_with_an_answer_gives_a_pair(path: Path) -> None:
    messages = read(path).sort("file_index", "conversation", "turn")
    answered = messages.with_columns(
        pl.col("typed").cum_max().over("conversation").alias("after_prompt")
    ).filter(pl.col("after_prompt") & (pl.col("role") == "assistant") & pl.col("text").is_not_null())
    if path == INIT:
        assert answered.is_empty()  # a /init session: nothing typed
    else:
        assert not answered.is_empty()
        assert len(pairs_of(path)) >= 1


def test_records_that_are_not_events_fail_to_decode() -> None:
    for bad in ('{"type":"user","message":"error"}', '"massive error"', "[1]"):
        records = pl.LazyFrame(
            {"file_index": pl.Series([0], dtype=pl.Int32), "file": ["f"], "line": [1], "text": [bad]}
        )
        with pytest.raises(pl.exceptions.ComputeError):
            read_lines(records).collect()


def test_no_records_no_messages() -> None:
    records = pl.LazyFrame(
        schema={"file_index": pl.Int32, "file": pl.String, "line": pl.Int64, "text": pl.String}
    )
    assert_frame_equal(read_lines(records).collect(), pl.DataFrame(schema=MESSAGE_SCHEMA))


def _edge_case_records(lines: set[int] | None) -> pl.LazyFrame:
    numbered = list(enumerate(EDGE_CASES.read_text().splitlines(), start=1))
    kept = [(number, line) for number, line in numbered if lines is None or number in lines]
    return pl.LazyFrame(
        {
            "file_index": pl.Series([0] * len(kept), dtype=pl.Int32),
            "file": [str(EDGE_CASES)] * len(kept),
            "line": pl.Series([number for number, _ in kept], dtype=pl.Int64),
            "text": [line for _, line in kept],
        }
    )


def test_good_lines_of_a_damaged_log_keep_their_order() -> None:
    quarantined = set(EXPECTED_COUNTS[EDGE_CASES.name][1])
    good = set(range(1, 20)) - quarantined
    messages = read_lines(_edge_case_records(good)).collect()
    assert messages["line"].to_list() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 17]
    assert messages["turn"].to_list() == list(range(11))


def test_quarantine_does_not_reorder_a_conversation() -> None:
    messages = read(EDGE_CASES)
    assert messages["line"].to_list() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 17]
    assert pairs_of(EDGE_CASES)[0][0].startswith("Here's a message with some **markdown** formatting")
