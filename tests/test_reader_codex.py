"""The Codex CLI rollout reader: what becomes a prompt, a response, a tool turn or context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from jobs.discover import detect
from jobs.pairs_job import PairRules, run
from jobs.read_batch import read_files
from tests.conftest import FOUND, REALDATA
from transforms.readers.codex import read, sniff

SAMPLES = REALDATA / "codex_rollout"
SMALL = SAMPLES / "agent-sessions__codex_small.jsonl"
LARGE = SAMPLES / "agent-sessions__codex_large.jsonl"
ROLES = ["turn", "role", "role_raw", "typed", "text", "has_tool_calls", "tool_name"]


def _messages(path: Path) -> pl.DataFrame:
    batch = read_files([path])
    assert batch.quarantine.is_empty()
    return batch.messages


def _pairs(path: Path) -> list[tuple[str, str]]:
    _, pairs = run([path], PairRules(min_ratio=0, min_words=1, responses="each"), None, sample_size=10_000)
    return [(pair["terse"], pair["rich"]) for pair in pairs]


def _prompts(messages: pl.DataFrame) -> list[str]:
    return messages.filter(pl.col("typed"))["text"].to_list()


def _records(*files: list[dict[str, Any]]) -> pl.LazyFrame:
    rows = [
        (index, f"/sessions/rollout-{index}.jsonl", number, json.dumps(record))
        for index, records in enumerate(files)
        for number, record in enumerate(records, start=1)
    ]
    schema = {"file_index": pl.Int32, "file": pl.String, "line": pl.Int64, "text": pl.String}
    return pl.LazyFrame(rows, schema=schema, orient="row")


def _envelope(kind: str, payload: dict[str, Any], second: int = 0) -> dict[str, Any]:
    return {"timestamp": f"2025-06-01T10:00:{second:02d}.000Z", "type": kind, "payload": payload}


def _message(role: str, text: str, second: int) -> dict[str, Any]:
    block = "output_text" if role == "assistant" else "input_text"
    payload = {"type": "message", "role": role, "content": [{"type": block, "text": text}]}
    return _envelope("response_item", payload, second)


def test_samples_are_detected_as_codex() -> None:
    assert detect(SMALL).reader is not None
    assert detect(SMALL).reader.format == "codex"  # type: ignore[union-attr]
    assert detect(LARGE).reader.format == "codex"  # type: ignore[union-attr]


def test_small_sample_prompt_and_pair() -> None:
    messages = _messages(SMALL)
    assert _prompts(messages) == ["List the files"]
    # the prompt and reply are written twice (item and event): each counts once
    assert _pairs(SMALL) == [("List the files", "Found 2 files.")]
    assert messages["session_id"].unique().to_list() == ["019fc8be-3658-7ca3-9e29-000000000000"]
    assert messages["format"].unique().to_list() == ["codex"]
    assert messages["conversation"].unique().to_list() == [0]
    assert messages["turn"].to_list() == list(range(messages.height))
    first = messages.row(0, named=True)
    assert (first["model"], first["line"], first["role"]) == ("gpt-5.6-luna", 6, "user")


def test_small_sample_tool_turns() -> None:
    head = _messages(SMALL).filter(pl.col("line") <= 23).select(ROLES)
    expected = pl.DataFrame(
        [
            (0, "user", "user", True, "List the files", False, None),
            (1, "assistant", "custom_tool_call", False, None, True, "shell"),
            (2, "assistant", "function_call", False, None, True, "shell"),
            (3, "tool", "function_call_output", False, "a.txt\n", False, "shell"),
            (4, "assistant", "tool_search_call", False, None, True, "tool_search"),
            (5, "tool", "tool_search_output", False, None, False, "tool_search"),
            (6, "assistant", "web_search_call", False, None, True, "web_search"),
            (7, "tool", "custom_tool_call_output", False, "a.txt\nb.txt\n", False, "shell"),
            (8, "assistant", "assistant", False, "Found 2 files.", False, None),
        ],
        schema=head.schema,
        orient="row",
    )
    assert_frame_equal(head, expected)


def test_small_sample_context_is_not_a_prompt() -> None:
    messages = _messages(SMALL)
    # the developer message, inter-agent messages and compaction summaries are context
    by_raw = messages.group_by("role_raw").agg(pl.col("role").unique())
    roles = dict(zip(by_raw["role_raw"], by_raw["role"].to_list(), strict=True))
    assert roles["developer"] == ["system"]
    assert roles["agent_message"] == ["system"]
    assert roles["compacted"] == ["system"]
    # reasoning never shows up, neither as a row nor as text
    assert "reasoning" not in roles
    assert not messages["text"].str.contains("summary_text").any()


def test_large_sample_prompts_and_pairs() -> None:
    messages = _messages(LARGE)
    assert _prompts(messages) == ["Start", "Step 1", "Step 2", "Step 3", "Step 4", "Step 5"]
    context = messages.filter(pl.col("text").str.starts_with("<environment_context>"))
    assert context.select("role", "typed").rows() == [("system", False)]
    assert _pairs(LARGE) == [
        ("Start", "Acknowledged."),
        ("Start", "Captured multiline output."),
        ("Step 1", "Ok"),
        ("Step 2", "Ok"),
        ("Step 3", "Ok"),
        ("Step 4", "Ok"),
        ("Step 5", "Ok"),
    ]
    assert messages["model"].unique().to_list() == ["gpt-5.2"]
    tool_call = messages.filter(pl.col("role_raw") == "tool_call").select(ROLES[1:]).row(0)
    assert tool_call == ("assistant", "tool_call", False, None, True, "run_shell_command")


def test_no_pair_is_doubled_or_injected_or_a_tool_call() -> None:
    for path in (SMALL, LARGE):
        pairs = _pairs(path)
        assert len(pairs) == len(set(pairs))
        for prompt, response in pairs:
            assert not prompt.startswith(("<environment_context>", "<user_instructions>", "# AGENTS.md"))
            assert response
        messages = _messages(path)
        calls = messages.filter(pl.col("has_tool_calls"))
        assert calls["text"].null_count() == calls.height
        assert (calls["role"] == "assistant").all()
        assert not messages.filter(pl.col("role") == "tool")["typed"].any()


def test_events_count_only_in_a_file_without_message_items() -> None:
    events_only = [
        _envelope("session_meta", {"id": "S-1", "cwd": "/repo"}),
        _envelope("turn_context", {"model": "gpt-5"}, 1),
        _envelope(
            "event_msg",
            {
                "type": "user_message",
                "message": "<environment_context>x</environment_context>",
                "kind": "plain",
            },
            2,
        ),
        _envelope("event_msg", {"type": "user_message", "message": "rename the module"}, 3),
        _envelope("event_msg", {"type": "agent_reasoning", "text": "thinking it over"}, 4),
        _envelope("event_msg", {"type": "agent_message", "message": "Renamed it."}, 5),
    ]
    both = [
        _envelope("session_meta", {"id": "S-2"}),
        _envelope("event_msg", {"type": "user_message", "message": "hi"}, 1),
        _message("user", "hi", 2),
        _envelope(
            "response_item", {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]}, 3
        ),
        _message("assistant", "hello", 4),
        _envelope("event_msg", {"type": "agent_message", "message": "hello"}, 5),
    ]
    got = read(_records(events_only, both)).collect()
    expected = pl.DataFrame(
        [
            (
                0,
                3,
                "S-1",
                "gpt-5",
                0,
                "system",
                "user_message",
                False,
                "<environment_context>x</environment_context>",
            ),
            (0, 4, "S-1", "gpt-5", 1, "user", "user_message", True, "rename the module"),
            (0, 6, "S-1", "gpt-5", 2, "assistant", "agent_message", False, "Renamed it."),
            (1, 3, "S-2", None, 0, "user", "user", True, "hi"),
            (1, 5, "S-2", None, 1, "assistant", "assistant", False, "hello"),
        ],
        schema=["file_index", "line", "session_id", "model", "turn", "role", "role_raw", "typed", "text"],
        orient="row",
    )
    columns = expected.columns
    assert_frame_equal(got.select(columns), expected, check_dtypes=False)
    assert got["timestamp"][0] == pl.Series(["2025-06-01T10:00:02Z"]).str.to_datetime(time_zone="UTC")[0]


def test_legacy_rollout_without_envelope() -> None:
    legacy: list[dict[str, Any]] = [
        {"id": "legacy-1", "timestamp": "2025-04-20T09:00:00.000Z", "instructions": None},
        {"record_type": "state"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "<user_instructions>\nbe brief\n</user_instructions>"}
            ],
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "fix the failing test"}],
        },
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "look at it"}]},
        {
            "type": "local_shell_call",
            "call_id": "c1",
            "status": "completed",
            "action": {"type": "exec", "command": ["pytest"]},
        },
        {"type": "function_call_output", "call_id": "c1", "output": '{"output":"1 failed","metadata":{}}'},
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Fixed."},
                {"type": "output_text", "text": "All green."},
            ],
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "<user_shell_command><command>ls</command></user_shell_command>",
                }
            ],
        },
    ]
    assert sniff(legacy[:10])
    got = read(_records(legacy)).collect()
    expected = pl.DataFrame(
        [
            (0, "system", "user", False, "<user_instructions>\nbe brief\n</user_instructions>", False, None),
            (1, "user", "user", True, "fix the failing test", False, None),
            (2, "assistant", "local_shell_call", False, None, True, "local_shell"),
            (
                3,
                "tool",
                "function_call_output",
                False,
                '{"output":"1 failed","metadata":{}}',
                False,
                "local_shell",
            ),
            (4, "assistant", "assistant", False, "Fixed.\nAll green.", False, None),
            (
                5,
                "user",
                "user",
                False,
                "<user_shell_command><command>ls</command></user_shell_command>",
                False,
                None,
            ),
        ],
        schema=got.select(ROLES).schema,
        orient="row",
    )
    assert_frame_equal(got.select(ROLES), expected)
    assert got["session_id"].unique().to_list() == ["legacy-1"]


def test_sniff() -> None:
    head = [json.loads(line) for line in SMALL.read_text().splitlines()[:10]]
    assert sniff(head)
    # an OpenAI Responses-style message alone, or another agent's events, are not Codex
    assert not sniff([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}])
    assert not sniff([{"type": "user", "message": {"role": "user", "content": "hi"}, "sessionId": "x"}])
    assert not sniff([{"type": "session.start", "data": {"sessionId": "x"}}])
    assert not sniff([])


def test_ide_context_is_cut_from_the_prompt() -> None:
    typed = "\n\n".join(
        (
            "# Context from my IDE setup:",
            "## Active file: app.py",
            "## My request for Codex:\nwhy does it hang?\n",
        )
    )
    rollout = [
        _envelope("session_meta", {"id": "S-3"}),
        _message("user", typed, 1),
        _message("assistant", "A lock.", 2),
    ]
    got = read(_records(rollout)).collect()
    assert got.select("role", "typed", "text").rows() == [
        ("user", True, "why does it hang?"),
        ("assistant", False, "A lock."),
    ]


def test_a_real_rollout_in_the_older_layout() -> None:
    """A forked CLI's run with a web-search tool (tests/data/found): injected instructions
    and environment are context, the question is the one prompt, searches are tool turns,
    reasoning is no text, and the long answer at the end is the pair."""
    path = FOUND / "codex" / "rollout-2025-08-31T12-14-27-18a59085-ee11-4ef3-b460-f942642861b3.jsonl"
    messages = _messages(path)
    assert messages["session_id"].unique().to_list() == ["18a59085-ee11-4ef3-b460-f942642861b3"]
    assert messages.filter(pl.col("role") == "system")["text"].str.slice(0, 20).to_list() == [
        "<user_instructions>\n",
        "<environment_context",
    ]
    assert _prompts(messages) == ["what is the state of USA today economically and politically?"]
    calls = messages.filter(pl.col("has_tool_calls"))
    assert calls["tool_name"].to_list() == ["search__search.query", "shell", "search__search.query"]
    assert calls["text"].is_null().all()
    assert messages.filter(pl.col("role") == "tool").height == 3
    assert not messages["text"].drop_nulls().str.contains("They want up-to-date info").any()  # reasoning
    stats, pairs = run([path], PairRules(), None, sample_size=10)
    assert stats.unique_pairs == 1
    assert pairs[0]["terse"] == "what is the state of USA today economically and politically?"
    assert pairs[0]["rich"].startswith("**Current State of the United States (Economic & Political)**")
    assert pairs[0]["response_words"] == 323
