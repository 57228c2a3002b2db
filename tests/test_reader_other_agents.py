"""Readers of Gemini CLI, Copilot CLI, Kimi Code CLI, OpenClaw and pi sessions.

Real samples (``shared/realdata/other_agent``) pin what a user relies on: detection, the
exact typed prompts, that pairs come out, and that no prompt is a tool result and no
response holds reasoning. Small inline records pin each layout's rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs.discover import detect
from jobs.pairs_job import PairRules, run
from jobs.read_batch import read_files
from tests.conftest import REALDATA
from tests.document_records import read_streamed
from transforms.readers import Reader, copilot_cli, gemini_cli, kimi_cli, pi
from transforms.readers.agent_common import session_from_path
from transforms.schema import MESSAGE_SCHEMA

SAMPLES = REALDATA / "other_agent"
GEMINI = SAMPLES / "agent-sessions__gemini_cli_large.json"
COPILOT = SAMPLES / "agent-sessions__copilot_cli_small.jsonl"
KIMI = SAMPLES / "agent-sessions__kimi_assistant_tools.jsonl"
OPENCLAW = SAMPLES / "agent-sessions__openclaw_large.jsonl"
PI = SAMPLES / "agent-sessions__pi_small.jsonl"

TYPED_PROMPTS = {
    GEMINI: ["Run a command", "Step 1"],
    COPILOT: ["List the files", "[trimmed for fixture]"],
    KIMI: [
        "hi",
        "hi",
        "hi",
        "run ls command",
        "cat /nonexistent-file-xyz",
        "run subagent to count swift files in this repo",
        "plan counting all html files in this repo",
        'read README.md then grep for "Kimi"',
    ],
    OPENCLAW: ["Open /tmp/large and run status"],
    PI: [
        "Read hello.py and summarize what it prints without editing files.",
        "Add one concise follow-up sentence.",
    ],
}
FORMATS = {GEMINI: "gemini_cli", COPILOT: "copilot_cli", KIMI: "kimi_cli", OPENCLAW: "openclaw", PI: "pi"}
SESSION_IDS = {
    GEMINI: "session-2025-12-16T23-47-b4f17607",
    COPILOT: "copilot_stage0_small",
    KIMI: "agent-sessions__kimi_assistant_tools",  # the journal names no session; its path does
    OPENCLAW: "openclaw-stage0-large",
    PI: "019e19b4-eb48-746a-aa6b-8dfcfa37954b",
}

READERS = (*gemini_cli.READERS, *copilot_cli.READERS, *kimi_cli.READERS, *pi.READERS)


def _reader(format_name: str) -> Reader:
    return next(reader for reader in READERS if reader.format == format_name)


def _read_lines(format_name: str, values: list[dict[str, Any]], file: str = "s.jsonl") -> pl.DataFrame:
    records = pl.LazyFrame(
        {
            "file_index": pl.Series([0] * len(values), dtype=pl.Int32),
            "file": [file] * len(values),
            "line": pl.Series(range(1, len(values) + 1), dtype=pl.Int64),
            "text": [json.dumps(value) for value in values],
        }
    )
    return _reader(format_name).read(records).collect()


def _read_document(format_name: str, document: dict[str, Any], file: str = "s.json") -> pl.DataFrame:
    """The document read whole, which it must give decoded a record at a time as well."""
    records = pl.LazyFrame(
        {
            "file_index": pl.Series([0], dtype=pl.Int32),
            "file": [file],
            "line": pl.Series([None], dtype=pl.Int64),
            "text": [json.dumps(document)],
        }
    )
    assert format_name == gemini_cli.GEMINI
    whole = gemini_cli.read_gemini(records).collect()
    assert_frame_equal(read_streamed(_reader(format_name), document, file), whole)
    return whole


def _rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select("conversation", "turn", "role", "typed", "text", "has_tool_calls", "tool_name")


def _expected(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "conversation": pl.Int64,
            "turn": pl.Int32,
            "role": pl.String,
            "typed": pl.Boolean,
            "text": pl.String,
            "has_tool_calls": pl.Boolean,
            "tool_name": pl.String,
        },
        orient="row",
    )


def _pairs(path: Path) -> list[dict[str, Any]]:
    _, pairs = run([path], PairRules(min_ratio=0, min_words=1, responses="each"), None, sample_size=10_000)
    return pairs


# ------------------------------------------------------------------------------- real samples


@pytest.mark.parametrize("path", list(FORMATS), ids=lambda path: FORMATS[path])
def test_sample_is_detected_and_read_whole(path: Path) -> None:
    detected = detect(path)
    assert detected.reader is not None
    assert detected.reader.format == FORMATS[path]
    batch = read_files([path])
    assert batch.quarantine.height == 0
    assert batch.messages.schema == MESSAGE_SCHEMA
    assert batch.messages["format"].unique().to_list() == [FORMATS[path]]
    assert batch.messages["session_id"].unique().to_list() == [SESSION_IDS[path]]


@pytest.mark.parametrize("path", list(FORMATS), ids=lambda path: FORMATS[path])
def test_sample_typed_prompts_are_exactly_what_was_typed(path: Path) -> None:
    messages = read_files([path]).messages
    typed = messages.filter(pl.col("typed"))
    assert typed["text"].to_list() == TYPED_PROMPTS[path]
    assert typed["role"].unique().to_list() == ["user"]


@pytest.mark.parametrize("path", list(FORMATS), ids=lambda path: FORMATS[path])
def test_sample_pairs_prompt_typed_text_and_never_a_tool_result(path: Path) -> None:
    messages = read_files([path]).messages
    tool_texts = set(messages.filter(pl.col("role") == "tool")["text"].drop_nulls())
    pairs = _pairs(path)
    assert len(pairs) >= 1
    for pair in pairs:
        assert pair["format"] == FORMATS[path]
        assert pair["terse"] in TYPED_PROMPTS[path]
        assert pair["terse"] not in tool_texts or pair["terse"] == "[trimmed for fixture]"
        assert pair["rich"]


def test_gemini_sample_roles_tools_and_no_thoughts() -> None:
    messages = read_files([GEMINI]).messages
    assert messages["role"].to_list() == [
        "user",
        "assistant",  # run_shell_command, says nothing
        "tool",
        "assistant",  # run_shell_command again
        "tool",
        "user",  # "Request cancelled.": an interruption, not typed
        "assistant",
        "user",
        "assistant",
    ]
    calls = messages.filter(pl.col("role") == "assistant", pl.col("has_tool_calls"))
    assert calls["text"].to_list() == [None, None]
    assert calls["tool_name"].to_list() == ["run_shell_command"] * 2
    assert messages.filter(pl.col("role") == "tool")["text"][0].startswith("Command: printf")
    assert not messages["text"].drop_nulls().str.contains("Placeholder thoughts").any()
    assert messages.filter(pl.col("role") == "assistant")["model"].to_list() == ["gemini-3-flash-preview"] * 4
    assert [(pair["terse"], pair["rich"]) for pair in _pairs(GEMINI)] == [("Step 1", "Ok")]


def test_copilot_sample_pairs_and_side_chain() -> None:
    messages = read_files([COPILOT]).messages
    pairs = _pairs(COPILOT)
    assert [(pair["terse"], pair["rich"]) for pair in pairs[:2]] == [
        ("List the files", "Listing the files."),
        ("List the files", "Done"),
    ]
    assert pairs[0]["model"] == "gpt-5-mini"
    tool = messages.filter(pl.col("line") == 11).row(0, named=True)
    assert (tool["role"], tool["text"], tool["tool_name"]) == ("tool", "a.txt\nb.txt\n", "shell")
    # the sub-agent's events (data.parentToolCallId) are a conversation of their own
    assert messages.filter(pl.col("conversation") == 1)["line"].to_list() == [19, 21]
    abort = messages.filter(pl.col("role_raw") == "abort").row(0, named=True)
    assert (abort["role"], abort["typed"]) == ("user", False)


def _kimi_thoughts() -> list[str]:
    thoughts = []
    for line in KIMI.read_text().splitlines():
        value = json.loads(line)
        part = value.get("event", {}).get("part", {})
        if part.get("type") == "think":
            thoughts.append(part["think"])
    return thoughts


def test_kimi_sample_steps_reminders_and_no_thinking() -> None:
    messages = read_files([KIMI]).messages
    pairs = _pairs(KIMI)
    assert [pair["terse"] for pair in pairs] == [
        "hi",
        "run ls command",
        "cat /nonexistent-file-xyz",
        "run subagent to count swift files in this repo",
        "plan counting all html files in this repo",
        'read README.md then grep for "Kimi"',
    ]
    assert pairs[0]["rich"] == "Hi there! How can I help you today?"
    assert pairs[0]["model"] == "kimi-k2.7-code"
    assert pairs[2]["rich"].startswith("The file `/nonexistent-file-xyz` does not exist:")
    thoughts = _kimi_thoughts()
    assert len(thoughts) == 22
    for text in messages["text"].drop_nulls():
        assert not any(thought[:60] in text for thought in thoughts)
    # <system-reminder> injections are context, not prompts
    reminders = messages.filter(pl.col("text").str.starts_with("<system-reminder>"))
    assert reminders.height == 5
    assert reminders["role"].unique().to_list() == ["system"]
    # each tool-calling LLM step is one assistant message that says nothing
    steps = messages.filter(pl.col("role") == "assistant")
    assert steps.filter(pl.col("has_tool_calls"))["text"].null_count() == steps["has_tool_calls"].sum()
    tools = messages.filter(pl.col("role") == "tool")
    assert tools.height == 19
    assert tools["tool_name"].null_count() == 0


def test_openclaw_sample_tool_loop() -> None:
    messages = read_files([OPENCLAW]).messages
    assert messages["role"].to_list() == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "assistant",
        "tool",
    ]
    assert messages.filter(pl.col("role") == "tool")["tool_name"].to_list() == ["run_terminal", "edit_file"]
    assert [(pair["terse"], pair["rich"]) for pair in _pairs(OPENCLAW)] == [
        ("Open /tmp/large and run status", "Gathering files and git status."),
        ("Open /tmp/large and run status", "Done\n[media attached: screenshot-1]"),
    ]


def test_pi_sample_compaction_is_context() -> None:
    messages = read_files([PI]).messages
    assert messages["role"].to_list() == ["user", "assistant", "system", "user", "assistant", "system"]
    assert messages["model"].unique().to_list() == ["pi-fixture-model"]
    assert [pair["terse"] for pair in _pairs(PI)] == TYPED_PROMPTS[PI]


# ---------------------------------------------------------------------------- layout rules


def test_gemini_parts_thoughts_and_function_responses() -> None:
    frame = _read_document(
        "gemini_cli",
        {
            "sessionId": "s1",
            "projectHash": "h",
            "messages": [
                {
                    "id": "a",
                    "timestamp": "2025-01-01T00:00:00Z",
                    "type": "user",
                    "content": [{"text": "fix it"}],
                },
                {
                    "id": "b",
                    "type": "gemini",
                    "model": "gemini-2.5-pro",
                    "content": [{"text": "secret plan", "thought": True}, {"text": "Fix"}, {"text": "ed."}],
                    "thoughts": [{"subject": "s", "description": "hidden"}],
                    "toolCalls": [
                        {
                            "id": "c1",
                            "name": "edit",
                            "args": {"content": "x"},
                            "resultDisplay": {"fileDiff": "d"},
                        },
                        {"id": "c2", "name": "read", "args": {}, "result": "plain result"},
                    ],
                },
                {
                    "id": "c",
                    "type": "user",
                    "content": [{"functionResponse": {"name": "read", "response": {"output": "file text"}}}],
                },
                {"id": "d", "type": "error", "content": "quota exceeded"},
            ],
        },
    )
    assert_frame_equal(
        _rows(frame),
        _expected(
            [
                (0, 0, "user", True, "fix it", False, None),
                (0, 1, "assistant", False, "Fixed.", True, "edit"),
                (0, 2, "tool", False, None, False, "edit"),
                (0, 3, "tool", False, "plain result", False, "read"),
                (0, 4, "tool", False, "file text", False, "read"),
                (0, 5, "system", False, "quota exceeded", False, None),
            ]
        ),
    )
    assert frame["session_id"].unique().to_list() == ["s1"]
    assert frame["model"].to_list() == [None, *["gemini-2.5-pro"] * 5]


def test_copilot_reasoning_side_chains_and_tool_names() -> None:
    def event(kind: str, **data: Any) -> dict[str, Any]:
        return {"type": kind, "data": data, "id": kind, "timestamp": "2025-01-01T00:00:00Z", "parentId": None}

    frame = _read_lines(
        "copilot_cli",
        [
            event("session.start", sessionId="cp1", selectedModel="gpt-5"),
            event("user.message", content="count files", transformedContent="<ctx/>count files"),
            event("assistant.reasoning", reasoningId="r", content="thinking hard"),
            event(
                "assistant.message",
                content="",
                reasoningText="more thinking",
                toolRequests=[{"toolCallId": "t1", "name": "task", "arguments": "{}"}],
            ),
            event("tool.execution_start", toolCallId="t1", toolName="task", arguments={}),
            event("assistant.message", content="sub says", toolRequests=[], parentToolCallId="t1"),
            event("tool.execution_complete", toolCallId="t1", success=True, result={"content": "3 files"}),
            event("assistant.message", content="There are 3.", toolRequests=[], reasoningText="hmm"),
        ],
    )
    assert_frame_equal(
        _rows(frame),
        _expected(
            [
                (0, 0, "user", True, "count files", False, None),
                (0, 1, "assistant", False, None, True, "task"),
                (0, 2, "tool", False, "3 files", False, "task"),
                (0, 3, "assistant", False, "There are 3.", False, None),
                (1, 0, "assistant", False, "sub says", False, None),
            ]
        ),
    )
    assert frame["session_id"].unique().to_list() == ["cp1"]
    assert frame.filter(pl.col("conversation") == 0)["model"].to_list() == ["gpt-5"] * 4


def test_kimi_steps_injections_and_context_messages() -> None:
    def loop(event: dict[str, Any]) -> dict[str, Any]:
        return {"type": "context.append_loop_event", "event": event, "time": 1_700_000_000_000}

    def part(step: str, kind: str, text: str) -> dict[str, Any]:
        key = "think" if kind == "think" else "text"
        return loop({"type": "content.part", "stepUuid": step, "part": {"type": kind, key: text}})

    frame = _read_lines(
        "kimi_cli",
        [
            {"type": "metadata", "protocol_version": "1.4", "created_at": 1},
            {"type": "turn.prompt", "input": [{"type": "text", "text": "go"}], "origin": {"kind": "user"}},
            {
                "type": "context.append_message",
                "message": {
                    "role": "user",
                    "content": [{"type": "text", "text": "go"}],
                    "origin": {"kind": "user"},
                },
            },
            {
                "type": "context.append_message",
                "message": {"role": "user", "content": "<system-reminder>x", "origin": {"kind": "injection"}},
            },
            {"type": "llm.request", "model": "kimi-k2", "modelAlias": "moonshot/kimi-k2"},
            part("s1", "think", "private"),
            part("s1", "text", "Running."),
            loop({"type": "tool.call", "stepUuid": "s1", "toolCallId": "B_0", "name": "Bash", "args": {}}),
            loop({"type": "tool.result", "toolCallId": "B_0", "result": {"output": "ok"}}),
            part("s2", "think", "private again"),
            part("s2", "text", "All good."),
        ],
        file="/h/.kimi-code/sessions/wd_x/sess-42/agents/main/wire.jsonl",
    )
    assert_frame_equal(
        _rows(frame),
        _expected(
            [
                (0, 0, "user", True, "go", False, None),
                (0, 1, "system", False, "<system-reminder>x", False, None),
                (0, 2, "assistant", False, "Running.", True, "Bash"),
                (0, 3, "tool", False, "ok", False, "Bash"),
                (0, 4, "assistant", False, "All good.", False, None),
            ]
        ),
    )
    assert frame["session_id"].unique().to_list() == ["sess-42"]
    assert frame.filter(pl.col("role") == "assistant")["model"].to_list() == ["kimi-k2", "kimi-k2"]
    # ``time`` is epoch milliseconds
    assert str(frame["timestamp"][2]) == "2023-11-14 22:13:20+00:00"


def test_kimi_journal_with_assistant_messages_in_context_reads_them_once() -> None:
    frame = _read_lines(
        "kimi_cli",
        [
            {"type": "context.append_message", "message": {"role": "user", "content": "q"}},
            {
                "type": "context.append_loop_event",
                "event": {"type": "content.part", "stepUuid": "s", "part": {"type": "text", "text": "a"}},
            },
            {
                "type": "context.append_message",
                "message": {"role": "assistant", "content": "a", "toolCalls": []},
            },
        ],
    )
    assert_frame_equal(
        _rows(frame),
        _expected([(0, 0, "user", True, "q", False, None), (0, 1, "assistant", False, "a", False, None)]),
    )


def test_pi_tree_entries() -> None:
    def entry(message: dict[str, Any], number: int) -> dict[str, Any]:
        return {"type": "message", "id": f"e{number}", "parentId": f"e{number - 1}", "message": message}

    frame = _read_lines(
        "pi",
        [
            {"type": "session", "version": 3, "id": "pi-1", "timestamp": "2026-01-01T00:00:00Z", "cwd": "/w"},
            {"type": "model_change", "id": "m", "parentId": None, "provider": "p", "modelId": "claude-x"},
            entry({"role": "user", "content": "list files"}, 1),
            entry(
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm"},
                        {"type": "toolCall", "id": "t", "name": "bash", "arguments": {"command": "ls"}},
                    ],
                },
                2,
            ),
            entry(
                {
                    "role": "toolResult",
                    "toolCallId": "t",
                    "toolName": "bash",
                    "content": [{"type": "text", "text": "a"}],
                },
                3,
            ),
            entry(
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "One file."}],
                    "model": "claude-y",
                },
                4,
            ),
            entry({"role": "bashExecution", "command": "pwd", "output": "/w", "exitCode": 0}, 5),
            entry(
                {"role": "user", "content": "Read HEARTBEAT.md if it exists. Consider outstanding tasks."}, 6
            ),
            entry({"role": "user", "content": "hidden", "display": False}, 7),
            entry({"role": "user", "content": "from a peer", "provenance": {"kind": "inter_session"}}, 8),
            {"type": "custom_message", "id": "c", "parentId": "e8", "customType": "ext", "content": "ctx"},
        ],
    )
    assert_frame_equal(
        _rows(frame),
        _expected(
            [
                (0, 0, "user", True, "list files", False, None),
                (0, 1, "assistant", False, None, True, "bash"),
                (0, 2, "tool", False, "a", False, "bash"),
                (0, 3, "assistant", False, "One file.", False, None),
                (0, 4, "tool", False, "/w", False, None),
                (
                    0,
                    5,
                    "user",
                    False,
                    "Read HEARTBEAT.md if it exists. Consider outstanding tasks.",
                    False,
                    None,
                ),
                (0, 6, "user", False, "hidden", False, None),
                (0, 7, "user", False, "from a peer", False, None),
                (0, 8, "system", False, "ctx", False, None),
            ]
        ),
    )
    assert frame["session_id"].unique().to_list() == ["pi-1"]
    assert frame.filter(pl.col("role") == "assistant")["model"].to_list() == ["claude-x", "claude-y"]


@pytest.mark.parametrize(
    ("path", "session"),
    [
        ("/h/.copilot/session-state/abc-123/events.jsonl", "abc-123"),
        ("/h/.copilot/session-state/abc-123.jsonl", "abc-123"),
        ("/h/.kimi-code/sessions/wd_p_1/s-9/agents/main/wire.jsonl", "s-9"),
        (
            "/h/.gemini/tmp/x/chats/session-2025-01-01T00-00-1234abcd.json",
            "session-2025-01-01T00-00-1234abcd",
        ),
        ("/archive/pi/2026-01-01_uuid.jsonl.gz", "2026-01-01_uuid"),
    ],
)
def test_session_id_from_path(path: str, session: str) -> None:
    assert pl.select(session_from_path(pl.lit(path))).item() == session


# ------------------------------------------------------------------------------ sniffing


OTHER_LAYOUTS_LINES: list[list[dict[str, Any]]] = [
    [{"type": "user", "sessionId": "s", "uuid": "u", "message": {"role": "user", "content": "hi"}}],
    [{"type": "session_meta", "payload": {"id": "x"}, "timestamp": "t"}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    [{"conversations": [{"from": "human", "value": "hi"}]}],
    [{"messages": [{"role": "user", "content": "hi"}]}],
]


@pytest.mark.parametrize("head", OTHER_LAYOUTS_LINES)
def test_line_sniffers_leave_other_layouts(head: list[dict[str, Any]]) -> None:
    assert not [reader.format for reader in READERS if reader.layout == "lines" and reader.sniff(head)]


@pytest.mark.parametrize(
    "document",
    [
        {"session_id": "s", "model": "m", "messages": [{"role": "user", "content": "hi"}]},
        {"messages": [{"type": "user", "content": "hi"}]},  # no session fields
        [{"conversations": []}],
        {"sessionId": "s", "messages": [{"type": "user", "role": "user", "content": "hi"}]},
    ],
)
def test_gemini_sniffer_leaves_other_documents(document: Any) -> None:
    assert not gemini_cli.sniff_gemini(document)


def test_openclaw_needs_its_marks_and_pi_takes_the_rest() -> None:
    header = {"type": "session", "version": 3, "id": "x", "timestamp": "t", "cwd": "/src/openclaw"}
    assert pi.sniff_pi([header])
    assert not pi.sniff_openclaw([header])  # a pi session in a folder named openclaw
    assert pi.sniff_openclaw([{**header, "cwd": "/home/me/.openclaw/workspace"}])
    custom = {"type": "custom_message", "id": "c", "parentId": "x", "customType": "openclaw.runtime-context"}
    assert pi.sniff_openclaw([header, custom])
