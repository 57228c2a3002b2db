"""Runs a harness drove with no person in the loop: only the task is a prompt, and
``--responses final`` (or ``auto``, the default) gives one pair per task: the task and
the agent's closing answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from jobs.discover import detect
from jobs.pairs_job import PairRules, run
from jobs.read_batch import read_files
from tests.conftest import REALDATA

SWE_AGENT_CLASSIC = REALDATA / "other_agent" / "swe-agent__gpt4_klieret-test-repo-i1.traj"
SWE_AGENT_CALLS = REALDATA / "openai_messages" / "swe-agent__marshmallow-1867_function_calling_replace.traj"
MINI_SWE_AGENT = REALDATA / "openai_messages" / "mini-swe-agent__github_issue.traj.json"
TOOLBENCH = REALDATA / "openai_messages" / "toolbench__G1_answer_57_ChatGPT_DFS_woFilter_w2.json"
RESOLVER = REALDATA / "other_agent" / "openhands__resolver_mock_output.jsonl"
RUNS = [SWE_AGENT_CLASSIC, SWE_AGENT_CALLS, MINI_SWE_AGENT, TOOLBENCH, RESOLVER]


def _pairs(path: Path, responses: str) -> list[dict[str, Any]]:
    rules = PairRules(min_ratio=0, min_words=1, responses=responses)
    _, pairs = run([path], rules, None, sample_size=10_000)
    return pairs


def _tasks(path: Path) -> set[str]:
    """Each run's task statement, as the file records it."""
    if path == RESOLVER:
        return {json.loads(line)["instruction"].strip() for line in path.read_text().splitlines()}
    document = json.loads(path.read_text())
    if path == TOOLBENCH:
        messages = document["answer_generation"]["train_messages"][-1]
    else:
        messages = document["history"] if isinstance(document, dict) else document
    first = next(m for m in messages if m["role"] == "user" and str(m.get("is_demo", "")).lower() != "true")
    return {first["content"].strip()}


@pytest.mark.parametrize("responses", ["each", "final", "auto"])
@pytest.mark.parametrize("path", RUNS, ids=lambda path: path.name)
def test_only_the_task_is_a_prompt(path: Path, responses: str) -> None:
    """No kept prompt is command output, a file view, a traceback, a linter's complaint
    or a retry injection: whatever the mode, every prompt is the run's task."""
    pairs = _pairs(path, responses)
    assert pairs
    assert {pair["terse"] for pair in pairs} == _tasks(path)


@pytest.mark.parametrize("path", RUNS, ids=lambda path: path.name)
def test_final_gives_one_pair_per_task_with_the_closing_answer(path: Path) -> None:
    pairs = _pairs(path, "final")
    assert len(pairs) == len(_tasks(path))
    assert _pairs(path, "auto") == pairs  # agent runs default to final
    messages = read_files([path]).messages
    assert messages["agent_run"].all()
    closing = (
        messages.filter(
            (pl.col("role") == "assistant") & pl.col("text").is_not_null() & (pl.col("text") != "")
        )
        .group_by("session_id", maintain_order=True)
        .agg(pl.col("text").last())
    )
    assert sorted(pair["rich"] for pair in pairs) == sorted(text.strip() for text in closing["text"])


def test_environment_and_harness_speak_as_tool_and_system() -> None:
    """SWE-agent without function calling: each observation follows the agent's action,
    the demonstration is marked ``is_demo`` (as the text "True"), nothing after the task
    is typed."""
    messages = read_files([SWE_AGENT_CLASSIC]).messages
    assert messages.select("role", "typed").rows() == [
        ("system", False),
        ("system", False),  # the demonstration
        ("user", True),  # the task
        *[("assistant", False), ("tool", False)] * 4,
        ("assistant", False),
    ]
    observation = messages.filter(pl.col("role") == "tool")["text"][0]
    assert observation.startswith('Found 1 matches for "missing_colon.py"')


def test_toolbench_retry_injections_are_the_harness() -> None:
    messages = read_files([TOOLBENCH]).messages
    injections = messages.filter(
        pl.col("text").str.starts_with("This is not the first time you try this task")
    )
    assert injections.height >= 1
    assert injections.select("role", "typed").unique().rows() == [("system", False)]
    (pair,) = _pairs(TOOLBENCH, "final")
    assert pair["rich"].startswith("I found a phone case for the latest iPhone 14")  # Finish's final answer


def test_a_chat_stays_each_under_auto(tmp_path: Path) -> None:
    """A person's follow-ups are prompts; in a chat every reply answers its prompt."""
    chat = {
        "messages": [
            {"role": "user", "content": "What is a monad?"},
            {"role": "assistant", "content": "A monad is a way to chain computations that carry context."},
            {"role": "assistant", "content": "For example, Maybe chains steps that may fail."},
            {"role": "user", "content": "And a functor?"},
            {"role": "assistant", "content": "A functor is something you can map a function over."},
        ]
    }
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(chat))
    assert not read_files([path]).messages["agent_run"].any()
    assert len(_pairs(path, "auto")) == 3
    assert len(_pairs(path, "final")) == 2


def test_evaluation_output_in_the_event_stream_shape(tmp_path: Path) -> None:
    """The current OpenHands benchmarks' ``output.jsonl``: events with ``source``; the
    benchmark's stand-in user after the task is not a person."""
    task = "Fix the failing test in utils.py."
    history = [
        {"id": 0, "source": "agent", "action": "system", "args": {"content": "You are OpenHands agent."}},
        {"id": 1, "source": "user", "action": "message", "args": {"content": task}},
        {
            "id": 2,
            "source": "agent",
            "action": "run",
            "args": {"command": "pytest", "thought": "Run the tests."},
        },
        {"id": 3, "source": "environment", "observation": "run", "content": "1 failed"},
        {
            "id": 4,
            "source": "agent",
            "action": "message",
            "args": {"content": "Should I also update the docs?"},
        },
        {
            "id": 5,
            "source": "user",
            "action": "message",
            "args": {
                "content": "Please continue working on the task on whatever approach you think is suitable."
            },
        },
        {
            "id": 6,
            "source": "agent",
            "action": "finish",
            "args": {"final_thought": "The test passes now: utils.py had an off-by-one error."},
            "tool_call_metadata": {"model_response": {"model": "claude-sonnet-4"}},
        },
    ]
    record = {"instance_id": "astropy__astropy-12907", "instruction": task, "history": history, "metrics": {}}
    path = tmp_path / "output.jsonl"
    path.write_text(
        json.dumps(record) + "\n" + json.dumps(record | {"instance_id": "django__django-1"}) + "\n"
    )
    found = detect(path)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == ("openhands", "lines")
    messages = read_files([path]).messages
    assert messages["session_id"].unique(maintain_order=True).to_list() == [
        "astropy__astropy-12907",
        "django__django-1",
    ]
    assert messages.filter(pl.col("typed"))["text"].to_list() == [task, task]
    assert messages["model"].unique().to_list() == ["claude-sonnet-4"]
    pairs = _pairs(path, "final")
    assert [(pair["terse"], pair["rich"]) for pair in pairs] == [
        (task, "The test passes now: utils.py had an off-by-one error.")
    ]  # the second instance is the same pair: a duplicate


def test_resolver_output_in_the_older_flattened_shape() -> None:
    messages = read_files([RESOLVER]).messages
    assert messages["session_id"].unique(maintain_order=True).to_list() == [
        "neubig/pr-viewer#5",
        "neubig/pr-viewer#1",
    ]
    first = messages.filter(pl.col("session_id") == "neubig/pr-viewer#5")
    assert first.select("role", "role_raw", "tool_name").head(4).rows() == [
        ("user", "user", None),
        ("assistant", "agent", "run"),
        ("tool", "environment", "run"),
        ("assistant", "agent", "run_ipython"),
    ]
    assert first["text"][1].startswith("Certainly! I'll add the MIT license")  # the action's thought
    pairs = _pairs(RESOLVER, "final")
    assert [pair["source"] for pair in pairs] == ["neubig/pr-viewer#5", "neubig/pr-viewer#1"]


def test_auto_reads_agent_layouts_as_final_and_chats_as_each() -> None:
    claude = sorted((REALDATA / "claude_code").glob("*.jsonl"))
    sharegpt = [REALDATA / "sharegpt" / "fastchat__dummy_conversation.json"]

    def pairs(files: list[Path], responses: str) -> list[tuple[str, str]]:
        _, found = run(
            files, PairRules(min_ratio=0, min_words=1, responses=responses), None, sample_size=10**6
        )
        return [(pair["terse"], pair["rich"]) for pair in found]

    assert pairs(claude, "auto") == pairs(claude, "final") != pairs(claude, "each")
    assert pairs(sharegpt, "auto") == pairs(sharegpt, "each")
    stats, _ = run([*claude, *sharegpt], PairRules(), None)
    formats = stats.as_dict()["formats"]
    assert formats["claude_code"]["responses"] == {"each": 0, "final": formats["claude_code"]["sessions"]}
    assert formats["sharegpt"]["responses"] == {"each": formats["sharegpt"]["sessions"], "final": 0}


def test_json_lines_wrapping_chat_messages_under_their_own_key_are_read(tmp_path: Path) -> None:
    record = {
        "id": "d1",
        "dialog": [
            {"role": "user", "content": "What is a monad?"},
            {"role": "assistant", "content": "A monad is a way to chain computations that carry context."},
        ],
    }
    path = tmp_path / "dialogs.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(record | {"id": "d2"}) + "\n")
    found = detect(path)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == ("openai", "lines")
    messages = read_files([path]).messages
    assert messages.select("session_id", "role").rows() == [
        ("d1", "user"),
        ("d1", "assistant"),
        ("d2", "user"),
        ("d2", "assistant"),
    ]
    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps({"id": 1, "steps": [{"kind": "think"}]}) + "\n" + json.dumps({"id": 2}) + "\n"
    )
    assert detect(other).unrecognized == "JSON lines with keys id, steps: no reader knows this layout"


def test_json_lines_wrapping_openhands_events_under_their_own_key_are_read(tmp_path: Path) -> None:
    events = [
        {"action": "message", "content": "Add a LICENSE file."},
        {"action": "run", "command": "touch LICENSE", "thought": "I will create the file."},
        {"observation": "run", "content": "", "command": "touch LICENSE"},
        {"action": "finish", "thought": "The LICENSE file is in place, with the MIT text in it."},
    ]
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps({"instance_id": "repo-1", "trajectory": events}) + "\n")
    found = detect(path)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == ("openhands", "lines")
    (pair,) = _pairs(path, "auto")
    assert (pair["terse"], pair["rich"], pair["source"]) == (
        "Add a LICENSE file.",
        "The LICENSE file is in place, with the MIT text in it.",
        "repo-1",
    )
