"""The OpenHands trajectory reader: prompts, replies, tool actions and observations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from jobs.discover import detect
from jobs.pairs_job import PairRules, run
from jobs.read_batch import read_files
from tests.conftest import REALDATA
from transforms.readers.openhands import read, sniff

SAMPLES = REALDATA / "other_agent"
BASIC = SAMPLES / "openhands__trajs_basic.json"
GUI = SAMPLES / "openhands__trajs_basic_gui_mode.json"
MODEL = "claude-3-5-sonnet-20241022"
ROLES = ["turn", "role", "role_raw", "typed", "text", "has_tool_calls", "tool_name"]

BASIC_PROMPT = " ".join(
    (
        "Please create a simple 2048 game.",
        "No need to run it.",
        "Please finish the interaction after your finish coding.",
    )
)
GUI_PROMPT = (
    "I want to create a VueJS app that allows me to:\n"
    "* See all the items on my todo list\n"
    "* add a new item to the list\n"
    "* mark an item as done\n"
    "* totally remove an item from the list\n"
    "* change the text of an item\n"
    "* set a due date on the item\n"
    "\n"
    "This should be a client-only app with no backend. The list should persist in localStorage."
)


def _messages(path: Path) -> pl.DataFrame:
    batch = read_files([path])
    assert batch.quarantine.is_empty()
    return batch.messages


def _pairs(path: Path) -> list[tuple[str, str]]:
    _, pairs = run([path], PairRules(min_ratio=0, min_words=1, responses="each"), None, sample_size=10_000)
    return [(pair["terse"], pair["rich"]) for pair in pairs]


def _document(events: list[dict[str, Any]], name: str = "/trajs/run-7.json") -> pl.LazyFrame:
    return pl.LazyFrame(
        {"file_index": [0], "file": [name], "line": [None], "text": [json.dumps(events, indent=2)]},
        schema={"file_index": pl.Int32, "file": pl.String, "line": pl.Int64, "text": pl.String},
    )


def test_samples_are_detected_as_openhands() -> None:
    for path in (BASIC, GUI):
        found = detect(path).reader
        assert found is not None
        assert found.format == "openhands"


def test_basic_sample() -> None:
    messages = _messages(BASIC)
    assert messages.filter(pl.col("typed"))["text"].to_list() == [BASIC_PROMPT]
    rows = messages.select(ROLES).with_columns(pl.col("text").str.slice(0, 40))
    expected = pl.DataFrame(
        [
            (0, "user", "user", True, BASIC_PROMPT[:40], False, None),
            (1, "assistant", "agent", False, "I'll help you create a simple 2048 game ", True, "edit"),
            (2, "tool", "agent", False, "--- /workspace/game_2048.py\n+++ /workspa", False, "edit"),
            (3, "assistant", "agent", False, "I've created a simple implementation of ", True, "finish"),
        ],
        schema=rows.schema,
        orient="row",
    )
    assert_frame_equal(rows, expected)
    assert messages["session_id"].unique().to_list() == ["openhands__trajs_basic"]
    assert messages["model"].unique().to_list() == [MODEL]
    assert messages["line"].null_count() == messages.height


def test_basic_sample_pairs() -> None:
    pairs = _pairs(BASIC)
    assert [prompt for prompt, _ in pairs] == [BASIC_PROMPT, BASIC_PROMPT]
    # the text said next to the edit call, then the finish action's final message
    assert pairs[0][1] == (
        "I'll help you create a simple 2048 game in Python. "
        "I'll use the str_replace_editor to create the file."
    )
    assert pairs[1][1].startswith("I've created a simple implementation of the 2048 game with the following")
    assert pairs[1][1].endswith("The game ends when no more moves are possible.")


def test_gui_sample() -> None:
    messages = _messages(GUI)
    assert messages.filter(pl.col("typed"))["text"].to_list() == [GUI_PROMPT]
    # environment events and "No observation" placeholders are gone
    assert messages["role_raw"].unique().sort().to_list() == ["agent", "user"]
    assert messages["tool_name"].to_list() == [
        None,
        *["run", "run", "edit", "edit", "edit", "edit"],
        "run",
        "run",
        None,
    ]
    assert messages["role"].to_list() == ["user", *["assistant", "tool"] * 4, "assistant"]
    last = messages.row(-1, named=True)
    assert last["text"].startswith("I've created a complete Vue.js todo application with all the requested")
    assert not last["has_tool_calls"]
    # the final reply has no tool_call_metadata: its model is the session's
    assert last["model"] == MODEL


def test_gui_sample_pairs() -> None:
    pairs = _pairs(GUI)
    assert [prompt for prompt, _ in pairs] == [GUI_PROMPT] * 5
    assert [response[:40] for _, response in pairs] == [
        "I'll help you create a Vue.js applicatio",
        "Let's create the main HTML file:",
        "Now, let's create the JavaScript file wi",
        "Let's serve this application using a sim",
        "I've created a complete Vue.js todo appl",
    ]


def test_observations_are_never_prompts() -> None:
    for path in (BASIC, GUI):
        messages = _messages(path)
        observations = messages.filter(pl.col("role") == "tool")
        assert observations.height > 0
        assert not observations["typed"].any()
        assert not observations["has_tool_calls"].any()
        observed = set(observations["text"].drop_nulls().to_list())
        prompts = {prompt for prompt, _ in _pairs(path)}
        assert not prompts & observed
        # a tool call's response text is never the caption OpenHands writes ("Running command: ...")
        assert not any(response.startswith("Running command") for _, response in _pairs(path))


def test_actions_and_observations_of_every_kind() -> None:
    events = [
        {
            "id": 0,
            "timestamp": "2025-03-01T10:00:00",
            "source": "agent",
            "message": "System prompt",
            "action": "system",
            "args": {"content": "You are OpenHands agent.", "tools": []},
        },
        {
            "id": 1,
            "timestamp": "2025-03-01T10:00:01",
            "source": "environment",
            "message": "",
            "observation": "agent_state_changed",
            "content": "",
            "extras": {"agent_state": "loading"},
        },
        {
            "id": 2,
            "timestamp": "2025-03-01T10:00:02",
            "source": "user",
            "message": "fix it",
            "action": "message",
            "args": {"content": "fix it", "image_urls": None},
        },
        {
            "id": 3,
            "timestamp": "2025-03-01T10:00:03",
            "source": "user",
            "message": "Retrieving content for: fix it",
            "action": "recall",
            "args": {"query": "fix it"},
        },
        {
            "id": 4,
            "timestamp": "2025-03-01T10:00:04",
            "source": "environment",
            "message": "Added workspace context",
            "observation": "recall",
            "content": "Repository notes",
            "extras": {},
        },
        {
            "id": 5,
            "timestamp": "2025-03-01T10:00:05",
            "source": "agent",
            "message": "I am thinking...",
            "action": "think",
            "args": {"thought": "maybe the import"},
        },
        {
            "id": 6,
            "timestamp": "2025-03-01T10:00:06",
            "source": "agent",
            "message": "Running command: pytest",
            "action": "run",
            "args": {"command": "pytest", "thought": ""},
            "tool_call_metadata": {
                "function_name": "execute_bash",
                "model_response": {
                    "model": "gpt-4o",
                    "choices": [{"message": {"content": [{"type": "text", "text": "x"}]}}],
                },
            },
        },
        {
            "id": 7,
            "timestamp": "2025-03-01T10:00:07",
            "source": "agent",
            "message": "Command `pytest` executed with exit code 0.",
            "cause": 6,
            "observation": "run",
            "content": "1 passed",
            "extras": {"metadata": {"exit_code": 0}},
        },
        {
            "id": 8,
            "timestamp": "2025-03-01T10:00:08",
            "source": "user",
            "message": "Running command: ls",
            "action": "run",
            "args": {"command": "ls", "thought": ""},
        },
        {
            "id": 9,
            "timestamp": "2025-03-01T10:00:09",
            "source": "agent",
            "message": "All done.",
            "action": "finish",
            "args": {"final_thought": "Fixed the import.", "outputs": {"ok": True}, "thought": ""},
        },
    ]
    assert sniff(events)
    got = read(_document(events)).collect()
    expected = pl.DataFrame(
        [
            (0, "system", "agent", False, "You are OpenHands agent.", False, None),
            (1, "user", "user", True, "fix it", False, None),
            (2, "system", "environment", False, "Repository notes", False, None),
            (3, "assistant", "agent", False, None, True, "think"),
            (4, "assistant", "agent", False, None, True, "run"),
            (5, "tool", "agent", False, "1 passed", False, "run"),
            (6, "user", "user", False, None, False, "run"),
            (7, "assistant", "agent", False, "Fixed the import.", True, "finish"),
        ],
        schema=got.select(ROLES).schema,
        orient="row",
    )
    assert_frame_equal(got.select(ROLES), expected)
    assert got["session_id"].unique().to_list() == ["run-7"]
    assert got["model"].unique().to_list() == ["gpt-4o"]
    assert got["format"].unique().to_list() == ["openhands"]
    assert got["timestamp"][1] == pl.Series(["2025-03-01T10:00:02Z"]).str.to_datetime(time_zone="UTC")[0]


def test_finish_without_final_thought_says_its_message() -> None:
    events = [
        {"id": 0, "source": "user", "action": "message", "args": {"content": "go"}},
        {
            "id": 1,
            "source": "agent",
            "message": "Task complete.",
            "action": "finish",
            "args": {"outputs": {}, "thought": ""},
        },
    ]
    got = read(_document(events)).collect()
    assert got["text"].to_list() == ["go", "Task complete."]


def test_sniff() -> None:
    assert sniff(json.loads(GUI.read_text()))
    assert not sniff([])
    assert not sniff({"source": "user", "action": "message"})
    assert not sniff([{"role": "user", "content": "hi"}])
    assert not sniff([{"source": "user", "text": "hi"}])
