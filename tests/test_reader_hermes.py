"""The Hermes Agent readers: session log, gateway transcript, state database, export."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bench.shapes import STATE_DB_SCHEMA
from jobs.discover import batches, detect
from jobs.pairs_job import PairRules, run
from jobs.read_batch import read_batch, read_files
from tests.conftest import FOUND, REALDATA
from transforms.readers import hermes

SESSION_SAMPLE = REALDATA / "other_agent" / "agent-sessions__hermes_large.json"

COLUMNS = [
    "conversation",
    "session_id",
    "model",
    "turn",
    "role",
    "typed",
    "text",
    "has_tool_calls",
    "tool_name",
]
SCHEMA = {
    "conversation": pl.Int64,
    "session_id": pl.String,
    "model": pl.String,
    "turn": pl.Int32,
    "role": pl.String,
    "typed": pl.Boolean,
    "text": pl.String,
    "has_tool_calls": pl.Boolean,
    "tool_name": pl.String,
}

#: What Hermes writes into a conversation itself (see ``agent/context_compressor.py``).
SUMMARY = (
    "[CONTEXT COMPACTION — REFERENCE ONLY] Earlier turns were compacted into the summary below.\n"
    "## Historical Task Snapshot\nThe user asked for a report."
)
END_OF_SUMMARY = "--- END OF CONTEXT SUMMARY — respond to the message below, not the summary above ---"
REVIEW = "Review the conversation above and consider saving to memory anything worth keeping."


def pairs_of(path: Path) -> list[tuple[str, str]]:
    _, pairs = run([path], PairRules(min_ratio=0, min_words=1, responses="each"), None, sample_size=10_000)
    return [(pair["terse"], pair["rich"]) for pair in pairs]


def read(path: Path) -> pl.DataFrame:
    batch = read_files([path])
    assert batch.quarantine.is_empty(), batch.quarantine
    return batch.messages


def frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def write_lines(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


# --- hermes_session ---------------------------------------------------------------


def test_session_log_sample() -> None:
    found = detect(SESSION_SAMPLE)
    assert found.reader is not None
    assert found.reader.format == "hermes_session"
    messages = read(SESSION_SAMPLE)
    # the trailing {"role": "session_meta"} is not a message; reasoning is never text
    assert_frame_equal(
        messages.select(COLUMNS),
        frame(
            [
                (
                    0,
                    "20260429_hermes_large",
                    "gpt-5.2",
                    0,
                    "user",
                    True,
                    "Check the current directory.",
                    False,
                    None,
                ),
                (
                    0,
                    "20260429_hermes_large",
                    "gpt-5.2",
                    1,
                    "assistant",
                    False,
                    "I will inspect the directory.",
                    True,
                    "shell",
                ),
                (
                    0,
                    "20260429_hermes_large",
                    "gpt-5.2",
                    2,
                    "tool",
                    False,
                    "/Users/alexm/Repository/Codex-History",
                    False,
                    "shell",
                ),
                (
                    0,
                    "20260429_hermes_large",
                    "gpt-5.2",
                    3,
                    "assistant",
                    False,
                    "The current directory is /Users/alexm/Repository/Codex-History.",
                    False,
                    None,
                ),
            ]
        ),
    )
    assert messages["format"].unique().to_list() == ["hermes_session"]
    assert pairs_of(SESSION_SAMPLE) == [
        ("Check the current directory.", "I will inspect the directory."),
        ("Check the current directory.", "The current directory is /Users/alexm/Repository/Codex-History."),
    ]


def test_session_log_without_id_is_named_after_its_file(tmp_path: Path) -> None:
    path = tmp_path / "session_20260221_101500_a1b2c3.json"
    path.write_text(
        json.dumps(
            {
                "platform": "cli",
                "session_start": "2026-02-21T10:15:00",
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            },
            indent=2,
        )
    )
    assert read(path)["session_id"].unique().to_list() == ["20260221_101500_a1b2c3"]


# --- hermes_gateway ---------------------------------------------------------------

GATEWAY_MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "Summarise the logs", "timestamp": "2026-02-21T10:15:01"},
    {
        "role": "assistant",
        "content": None,
        "reasoning": "I should read them first.",
        "tool_calls": [
            {
                "id": "call_1",
                "call_id": "call_1",
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path": "app.log"}'},
            }
        ],
        "timestamp": "2026-02-21T10:15:02",
    },
    {
        "role": "tool",
        "tool_call_id": "call_1",
        "tool_name": "read_file",
        "content": "ERROR disk full",
        "timestamp": "2026-02-21T10:15:03",
    },
    {
        "role": "assistant",
        "content": "The logs show one error: the disk is full.",
        "finish_reason": "stop",
        "timestamp": "2026-02-21T10:15:04Z",
    },
]
GATEWAY_EXPECTED = [
    (0, "20260221_101500_a1b2c3", 0, "user", True, "Summarise the logs", False, None),
    (0, "20260221_101500_a1b2c3", 1, "assistant", False, None, True, "read_file"),
    (0, "20260221_101500_a1b2c3", 2, "tool", False, "ERROR disk full", False, "read_file"),
    (
        0,
        "20260221_101500_a1b2c3",
        3,
        "assistant",
        False,
        "The logs show one error: the disk is full.",
        False,
        None,
    ),
]


@pytest.mark.parametrize("with_meta", [True, False])
def test_gateway_transcript(tmp_path: Path, *, with_meta: bool) -> None:
    meta = {
        "role": "session_meta",
        "tools": [],
        "model": "hermes-4",
        "platform": "telegram",
        "timestamp": "x",
    }
    path = write_lines(
        tmp_path / "20260221_101500_a1b2c3.jsonl", ([meta] if with_meta else []) + GATEWAY_MESSAGES
    )
    found = detect(path)
    assert found.reader is not None
    assert found.reader.format == "hermes_gateway"
    messages = read(path)
    model = "hermes-4" if with_meta else None
    expected = frame([(*row[:2], model, *row[2:]) for row in GATEWAY_EXPECTED])
    assert_frame_equal(messages.select(COLUMNS), expected)
    first_line = 2 if with_meta else 1
    assert messages["line"].to_list() == list(range(first_line, first_line + 4))
    assert messages["timestamp"][3] == datetime(2026, 2, 21, 10, 15, 4, tzinfo=UTC)
    assert pairs_of(path) == [("Summarise the logs", "The logs show one error: the disk is full.")]


def test_gateway_record_broken_across_lines_is_quarantined(tmp_path: Path) -> None:
    """Real gateway files hold records with raw newlines; only those lines are lost."""
    lines = [json.dumps(record) for record in GATEWAY_MESSAGES]
    lines[2:3] = ['{"role": "tool", "tool_call_id": "call_1", "content": "ERROR', 'disk full"}']
    path = tmp_path / "20260221_101500_a1b2c3.jsonl"
    path.write_text("\n".join(lines) + "\n")
    batch = read_files([path])
    assert batch.quarantine["line"].to_list() == [3, 4]
    assert batch.messages.select("line", "turn", "role").rows() == [
        (1, 0, "user"),
        (2, 1, "assistant"),
        (5, 2, "assistant"),
    ]
    assert pairs_of(path) == [("Summarise the logs", "The logs show one error: the disk is full.")]


def test_compaction_summaries_and_harness_prompts_are_not_prompts(tmp_path: Path) -> None:
    records = [
        {"role": "user", "content": SUMMARY},
        {"role": "assistant", "content": "Understood."},
        {"role": "user", "content": f"{SUMMARY}\n\n{END_OF_SUMMARY}\n\nNow add a chart."},
        {"role": "assistant", "content": "Added the chart."},
        {"role": "user", "content": REVIEW},
        {"role": "assistant", "content": "Saved two notes."},
    ]
    path = write_lines(tmp_path / "s1.jsonl", records)
    assert read(path).select("role", "typed", "text").rows() == [
        ("system", False, SUMMARY),
        ("assistant", False, "Understood."),
        ("user", True, "Now add a chart."),
        ("assistant", False, "Added the chart."),
        ("user", False, REVIEW),
        ("assistant", False, "Saved two notes."),
    ]
    # the reply to the summary attaches to no prompt; the one to the review has no typed prompt
    assert pairs_of(path) == [("Now add a chart.", "Added the chart.")]


@pytest.mark.parametrize(
    "injected",
    [
        '[IMPORTANT: The user has invoked the "plan" skill, indicating they want you to follow its '
        "instructions. The full skill content is loaded below.]\n\n---\nname: plan\n---\nWrite a plan.",
        '[SYSTEM: The user has invoked the "mybot" skill, indicating they want you to follow its '
        "instructions.]",
        "[IMPORTANT: You are running as a scheduled cron job]\nCheck the inbox.",
        "[IMPORTANT: Background process 4211 finished with exit code 0]",
        "[ASYNC DELEGATION RESULT] The sub-agent finished: 3 files changed.",
        "[Your active task list was preserved across context compression]\n- ship the fix",
    ],
)
def test_what_the_harness_writes_as_a_user_is_not_a_prompt(tmp_path: Path, injected: str) -> None:
    records = [
        {"role": "user", "content": "Which port does the API use?"},
        {"role": "assistant", "content": "8080, set in config/api.yaml."},
        {"role": "user", "content": injected},
        {"role": "assistant", "content": "Following the instructions now: " + "step " * 30},
    ]
    path = write_lines(tmp_path / "20260511_135011_68a93747.jsonl", records)
    assert read(path)["typed"].to_list() == [True, False, False, False]
    # the reply to the injection is not paired with it (nor with the earlier question:
    # a prompt is the nearest user message, and this one nobody typed)
    assert pairs_of(path) == [("Which port does the API use?", "8080, set in config/api.yaml.")]


def test_a_real_gateway_transcript() -> None:
    """A Feishu chat in Chinese on deepseek-v3: short questions, long answers, a skill
    loaded as a user message, terminal calls to a robot-arm API (tests/data/found)."""
    path = FOUND / "hermes_gateway" / "20260511_135011_68a93747.jsonl"
    found = detect(path)
    assert found.reader is not None
    assert found.reader.format == "hermes_gateway"
    messages = read(path)
    assert messages.height == 27  # the session_meta line holds the tool schemas, no message
    assert messages["session_id"].unique().to_list() == ["20260511_135011_68a93747"]
    assert messages["model"].unique().to_list() == ["deepseek-v3"]
    prompts = messages.filter(pl.col("typed"))["text"].to_list()
    assert prompts[:2] == ["你是谁", "你都有什么技能"]
    assert not any(prompt.startswith("[SYSTEM:") for prompt in prompts)
    calls = messages.filter(pl.col("has_tool_calls"))
    assert calls["tool_name"].to_list() == ["terminal", "terminal"]
    assert messages.filter(pl.col("role") == "tool").height == 3
    stats, pairs = run([path], PairRules(), None, sample_size=100)
    assert stats.unique_pairs == 9
    assert pairs[0]["terse"] == "你都有什么技能"
    assert pairs[0]["rich"].startswith("我具备广泛的技能")


# --- hermes_db --------------------------------------------------------------------


def make_state_db(path: Path) -> Path:
    calls = json.dumps(
        [
            {
                "id": "c1",
                "call_id": "c1",
                "type": "function",
                "function": {"name": "terminal", "arguments": "{}"},
            }
        ]
    )
    sessions = [
        ("20260302_090000_bbbbbb", "telegram", "claude-sonnet-4", "You are Hermes.", 1772442000.0, "Later"),
        ("20260301_080000_aaaaaa", "cli", "hermes-4-405b", "You are Hermes.", 1772352000.0, "Disk"),
    ]
    # inserted out of session order: the query orders them
    messages = [
        ("20260302_090000_bbbbbb", "user", "What is 2+2?", None, None, None, 1772442001.0, None, None),
        (
            "20260301_080000_aaaaaa",
            "user",
            "How full is the disk?",
            None,
            None,
            None,
            1772352001.0,
            None,
            None,
        ),
        (
            "20260301_080000_aaaaaa",
            "assistant",
            None,
            None,
            calls,
            None,
            1772352002.0,
            "tool_calls",
            "Run df.",
        ),
        ("20260301_080000_aaaaaa", "tool", "/dev/sda1 91%", "c1", None, "terminal", 1772352003.0, None, None),
        ("20260302_090000_bbbbbb", "assistant", "4.", None, None, None, 1772442002.0, "stop", "Easy sum."),
        (
            "20260301_080000_aaaaaa",
            "assistant",
            "The disk is 91% full.",
            None,
            None,
            None,
            1772352004.0,
            "stop",
            None,
        ),
        ("20260301_080000_aaaaaa", "user", REVIEW, None, None, None, 1772352005.0, None, None),
        (
            "20260301_080000_aaaaaa",
            "assistant",
            "Noted the disk usage.",
            None,
            "[]",
            None,
            1772352006.0,
            "stop",
            None,
        ),
    ]
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript(STATE_DB_SCHEMA)
        connection.execute("INSERT INTO schema_version VALUES (6)")
        connection.executemany(
            "INSERT INTO sessions (id, source, model, system_prompt, started_at, title)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            sessions,
        )
        connection.executemany(
            "INSERT INTO messages (session_id, role, content, tool_call_id, tool_calls, tool_name, timestamp,"
            " finish_reason, reasoning) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            messages,
        )
        connection.commit()
    return path


def test_state_database(tmp_path: Path) -> None:
    path = make_state_db(tmp_path / "state.db")
    found = detect(path)
    assert found.reader is not None
    assert found.reader.format == "hermes_db"
    messages = read(path)
    a, b = "20260301_080000_aaaaaa", "20260302_090000_bbbbbb"
    assert_frame_equal(
        messages.select(COLUMNS),
        frame(
            [
                (0, a, "hermes-4-405b", 0, "user", True, "How full is the disk?", False, None),
                (0, a, "hermes-4-405b", 1, "assistant", False, None, True, "terminal"),
                (0, a, "hermes-4-405b", 2, "tool", False, "/dev/sda1 91%", False, "terminal"),
                (0, a, "hermes-4-405b", 3, "assistant", False, "The disk is 91% full.", False, None),
                (0, a, "hermes-4-405b", 4, "user", False, REVIEW, False, None),
                (0, a, "hermes-4-405b", 5, "assistant", False, "Noted the disk usage.", False, None),
                (1, b, "claude-sonnet-4", 0, "user", True, "What is 2+2?", False, None),
                (1, b, "claude-sonnet-4", 1, "assistant", False, "4.", False, None),
            ]
        ),
    )
    assert messages["line"].null_count() == messages.height
    assert messages["timestamp"][0] == datetime.fromtimestamp(1772352001.0, tz=UTC)
    assert messages["format"].unique().to_list() == ["hermes_db"]
    assert pairs_of(path) == [("How full is the disk?", "The disk is 91% full."), ("What is 2+2?", "4.")]


def test_a_database_is_read_in_ranges_of_whole_sessions(tmp_path: Path) -> None:
    """Batches of a few bytes cut the database into ranges of one session each: the same
    messages, conversations numbered across ranges, no session split; and a larger
    database with sessions on both sides of each boundary gives the same as one range."""
    path = make_state_db(tmp_path / "state.db")
    with closing(sqlite3.connect(path)) as connection:
        connection.executemany(
            "INSERT INTO sessions (id, source, model, started_at) VALUES (?, 'cli', 'hermes-4', 0)",
            [(f"20260401_{index:06d}_cccccc",) for index in range(40)],
        )
        connection.executemany(
            "INSERT INTO messages (session_id, role, content, timestamp) VALUES (?, ?, ?, 0)",
            [
                (f"20260401_{index:06d}_cccccc", role, f"{role} {index} {turn}")
                for turn in range(3)  # interleaved: the query puts each session together
                for index in range(40)
                for role in ("user", "assistant")
            ],
        )
        connection.commit()
    found = detect(path)
    whole = [piece for batch in batches([found], 1 << 62) for piece in batch]
    ranges = [piece for batch in batches([found], 1) for piece in batch]
    assert len(whole) == 1
    assert len(ranges) == 42  # a session a range: each holds more than a byte's worth
    assert [piece.sessions[2] for piece in ranges if piece.sessions] == list(range(42))
    assert [piece.ends_file for piece in ranges] == [False] * 41 + [True]
    in_ranges = read_batch(ranges).messages
    assert_frame_equal(in_ranges, read_batch(whole).messages)
    assert in_ranges["conversation"].unique().sort().to_list() == list(range(42))
    middle = in_ranges.filter(pl.col("session_id") == "20260401_000007_cccccc")
    assert middle["conversation"].unique().to_list() == [9]
    assert middle["text"].to_list() == [
        f"{role} 7 {turn}" for turn in range(3) for role in ("user", "assistant")
    ]
    # ranges of about 2 KB hold a few sessions each, cut between sessions
    some = [piece for batch in batches([found], 2048) for piece in batch]
    assert 1 < len(some) < 42
    assert_frame_equal(read_batch(some).messages, in_ranges)


@pytest.mark.parametrize("batch_bytes", [1, 1 << 30], ids=["a range a session", "one range"])
def test_sessions_keyed_by_blobs_are_read_apart_from_the_others(tmp_path: Path, batch_bytes: int) -> None:
    """A session id stored as a BLOB (SQLite types values, not columns) is a key like any
    other (``X'00ff'`` in its range's query). One that is no UTF-8 reads as that literal:
    two such sessions stay two conversations, each with its own messages."""
    path = make_state_db(tmp_path / "state.db")
    with closing(sqlite3.connect(path)) as connection:
        connection.executemany(
            "INSERT INTO messages (session_id, role, content, timestamp) VALUES (?, ?, ?, 0)",
            [
                (b"\x00\xff", "user", "hi from ff"),
                (b"\x00\xfe", "user", "hi from fe"),
                (b"\x00\xff", "assistant", "answer to ff"),
            ],
        )
        connection.commit()
    pieces = [piece for batch in batches([detect(path)], batch_bytes) for piece in batch]
    read = read_batch(pieces)
    by_session = (
        read.messages.filter(pl.col("session_id").str.starts_with("X'"))
        .group_by("session_id", "conversation")
        .agg("text")
        .sort("conversation")
    )
    assert by_session.rows() == [
        ("X'00fe'", 2, ["hi from fe"]),
        ("X'00ff'", 3, ["hi from ff", "answer to ff"]),
    ]
    assert read.quarantine.is_empty()


def test_malformed_tool_calls_in_the_database_do_not_fail_the_read(tmp_path: Path) -> None:
    path = make_state_db(tmp_path / "state.db")
    with closing(sqlite3.connect(path)) as connection:
        connection.execute(
            'UPDATE messages SET tool_calls = \'[{"function": {"na\' WHERE tool_calls IS NOT NULL'
        )
        connection.commit()
    messages = read(path)
    assert messages.height == 8
    # the call-only turn cannot be told apart from an empty message any more: still no response
    assert messages.filter(pl.col("turn") == 1)["text"].to_list() == [None, "4."]
    assert pairs_of(path) == [("How full is the disk?", "The disk is 91% full."), ("What is 2+2?", "4.")]


def test_empty_state_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript(STATE_DB_SCHEMA)
    assert read(path).is_empty()


def test_corrupt_state_database_is_damaged_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    found = detect(path)
    assert found.reader is None
    assert found.damaged is not None
    stats, pairs = run([path], PairRules(min_ratio=0, min_words=1), None)
    assert stats.damaged_files == 1
    assert pairs == []


# --- hermes_export ----------------------------------------------------------------


def test_export_lines(tmp_path: Path) -> None:
    row = {
        "source": "cli",
        "model": "hermes-4",
        "started_at": 1772352000.0,
        "title": None,
        "end_reason": None,
    }
    call = {"id": "c1", "type": "function", "function": {"name": "web_search", "arguments": "{}"}}
    first = {
        **row,
        "id": "20260301_080000_aaaaaa",
        "messages": [
            {"id": 1, "session_id": "20260301_080000_aaaaaa", "role": "user", "content": "Find the docs",
             "tool_calls": None, "timestamp": 1772352001.0},
            {"id": 2, "session_id": "20260301_080000_aaaaaa", "role": "assistant", "content": None,
             "tool_calls": json.dumps([call]), "reasoning": "search", "timestamp": 1772352002.0},
            {"id": 3, "session_id": "20260301_080000_aaaaaa", "role": "tool", "content": "https://docs",
             "tool_call_id": "c1", "tool_name": "web_search", "timestamp": 1772352003.0},
            {"id": 4, "session_id": "20260301_080000_aaaaaa", "role": "assistant",
             "content": "The docs are at https://docs.", "timestamp": 1772352004.0},
        ],
    }  # fmt: skip
    second = {
        **row,
        "id": "20260302_090000_bbbbbb",
        "model": None,
        "messages": [
            {"role": "user", "content": "Again", "timestamp": 1772442001.0},
            {"role": "assistant", "content": None, "tool_calls": [call], "timestamp": 1772442002.0},
            {"role": "assistant", "content": "Done again.", "timestamp": 1772442003.0},
        ],
    }
    path = write_lines(tmp_path / "out.jsonl", [first, second])
    found = detect(path)
    assert found.reader is not None
    assert found.reader.format == "hermes_export"
    assert found.reader.line_per_conversation
    a, b = "20260301_080000_aaaaaa", "20260302_090000_bbbbbb"
    assert_frame_equal(
        read(path).select(COLUMNS),
        frame(
            [
                (1, a, "hermes-4", 0, "user", True, "Find the docs", False, None),
                (1, a, "hermes-4", 1, "assistant", False, None, True, "web_search"),
                (1, a, "hermes-4", 2, "tool", False, "https://docs", False, "web_search"),
                (1, a, "hermes-4", 3, "assistant", False, "The docs are at https://docs.", False, None),
                (2, b, None, 0, "user", True, "Again", False, None),
                (2, b, None, 1, "assistant", False, None, True, "web_search"),
                (2, b, None, 2, "assistant", False, "Done again.", False, None),
            ]
        ),
    )
    assert pairs_of(path) == [("Find the docs", "The docs are at https://docs."), ("Again", "Done again.")]


# --- sniffing ---------------------------------------------------------------------


def test_sniffing() -> None:
    message = {"role": "user", "content": "q"}
    assert hermes.sniff_session({"session_id": "s", "messages": [message]})
    assert not hermes.sniff_session({"messages": [message]})  # plain OpenAI messages
    assert not hermes.sniff_session({"sessionId": "s", "messages": [{"type": "user", "content": "q"}]})
    assert hermes.sniff_export([{"id": "s", "source": "cli", "started_at": 1.0, "messages": [message]}])
    assert not hermes.sniff_export([{"id": "s", "messages": [message]}])
    assert hermes.sniff_gateway([{"role": "session_meta", "model": "m"}, message])
    assert not hermes.sniff_gateway([{"role": "session_meta", "model": "m"}])
    assert not hermes.sniff_gateway([{"messages": [message]}])
    assert not hermes.sniff_gateway([{"type": "user", "message": message}])  # Claude Code
    assert hermes.sniff_db({"sessions", "messages", "messages_fts", "schema_version"})
    assert not hermes.sniff_db({"sessions", "messages"})


def test_a_state_database_with_values_of_odd_types_is_read_whole(tmp_path: Path) -> None:
    """SQLite keeps a value of any type in any column: a message's content as a BLOB (UTF-8
    or not), a timestamp written as text. Such cells do not cost the database its other
    messages: the same messages as the clean database, a BLOB of text read as its text,
    one that is not text as no text, a timestamp that is not one as null."""
    clean = read(make_state_db(tmp_path / "clean.db"))
    odd = make_state_db(tmp_path / "odd.db")
    with closing(sqlite3.connect(odd)) as connection:
        connection.execute(
            "UPDATE messages SET content = CAST(content AS BLOB) WHERE content = 'The disk is 91% full.'"
        )
        connection.execute("UPDATE messages SET timestamp = 'yesterday' WHERE content = 'What is 2+2?'")
        connection.execute("UPDATE messages SET content = X'FF00FE' WHERE content = '/dev/sda1 91%'")
        connection.commit()
    messages = read(odd)
    tool_result = pl.col("role") == "tool"
    assert_frame_equal(
        messages.filter(~tool_result).drop("timestamp", "file"),
        clean.filter(~tool_result).drop("timestamp", "file"),
    )
    assert messages.filter(tool_result)["text"].to_list() == [None]
    stamps = dict(zip(messages["text"], messages["timestamp"], strict=True))
    assert stamps["What is 2+2?"] is None
    assert (
        stamps["The disk is 91% full."]
        == dict(zip(clean["text"], clean["timestamp"], strict=True))["The disk is 91% full."]
    )
