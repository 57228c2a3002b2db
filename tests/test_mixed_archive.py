"""The whole CLI on one directory holding every layout, compressed files, a SQLite store,
a file nobody can read and a corrupt one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from jobs.outputs import scan_output
from tests.conftest import CORRUPT_DATABASE, REALDATA, compound, write_compressed_copies
from tests.test_reader_hermes import GATEWAY_MESSAGES, make_state_db, write_lines
from transforms.readers import format_names

#: Samples that hold no pair on purpose: the /init run has no typed prompt.
NO_PAIR_EXPECTED = {"claude-code-viewer__1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl"}
#: Text a person did not type: none of it may start a prompt.
NOT_TYPED = (
    "<command-name>",
    "<command-message>",
    "<local-command-stdout>",
    "[Request interrupted by user",
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions",
    "Caveat: The messages below were generated",
    '{"output"',
    "<tool_response>",
    "<returncode>",
    # what the environment or the harness says in a run nobody typed into
    "This is not the first time you try this task",
    "Found 1 matches for",
    "[File: ",
    "Your proposed edit has introduced",
    "Traceback",
    "Please continue working on the task",
)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed")
    shutil.copytree(REALDATA, root / "realdata")
    hermes = root / "hermes"
    hermes.mkdir()
    make_state_db(hermes / "state.db")
    (hermes / "sessions").mkdir()
    write_lines(hermes / "sessions" / "20260221_101500_a1b2c3.jsonl", GATEWAY_MESSAGES)
    export = {
        "id": "20260305_070000_cccccc",
        "source": "cli",
        "model": "hermes-4",
        "started_at": 1772694000.0,
    }
    export["messages"] = [
        {"role": "user", "content": "Which port does the API use?", "timestamp": 1772694001.0},
        {
            "role": "assistant",
            "content": "It listens on 8080, set in config/api.yaml.",
            "timestamp": 1772694002.0,
        },
    ]
    (hermes / "export.jsonl").write_text(json.dumps(export) + "\n")
    (hermes / "sessions" / "sessions.json").write_text(json.dumps({"agent:main": {"session_id": "x"}}))
    (hermes / "broken.db").write_bytes(CORRUPT_DATABASE)
    write_compressed_copies(root / "packed")
    return root


@pytest.fixture(scope="module")
def outputs(mixed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    monkeypatch = pytest.MonkeyPatch()
    args = ["pairs", str(mixed), "--out", str(out), "--min-words", "1", "--min-ratio", "0", "--emit-messages"]
    try:
        assert compound(monkeypatch, *args) == 0
    finally:
        monkeypatch.undo()
    return out


def test_every_layout_is_read(outputs: Path) -> None:
    stats = json.loads((outputs / "stats.json").read_text())
    assert sorted(stats["formats"]) == format_names()
    for name, figures in stats["formats"].items():
        assert figures["files"] > 0, name
        assert figures["sessions"] > 0, name
        assert figures["messages"] > 0, name
    unrecognized = [Path(entry["file"]).name for entry in stats["unrecognized_files"]]
    assert unrecognized == ["sessions.json"]
    read = sum(figures["files"] for figures in stats["formats"].values())
    assert read == stats["files_scanned"] - len(unrecognized) - stats["damaged_files"]
    assert stats["damaged_files"] == 1
    quarantine = pl.read_ndjson(outputs / "quarantine.jsonl")
    broken = quarantine.filter(pl.col("file").str.ends_with("broken.db"))
    assert broken["error"].str.starts_with("corrupt SQLite database").to_list() == [True]


def test_every_sample_with_a_typed_prompt_and_an_answer_yields_pairs(outputs: Path) -> None:
    ledger = scan_output(outputs, "candidates").collect()
    # a pair counts even when an earlier file already gave the same one (a duplicate)
    yields = ledger.group_by("file").agg(
        (pl.col("kept") | (pl.col("reject_reason") == "duplicate")).any().alias("yields")
    )
    files = {Path(file).name: flag for file, flag in yields.iter_rows()}
    sessions = {Path(f).name for f in scan_output(outputs, "messages").collect()["file"].unique()}
    assert {name for name in sessions if not files.get(name, False)} == NO_PAIR_EXPECTED


def test_no_prompt_is_a_tool_result_or_injected_and_no_response_is_a_call_stub(outputs: Path) -> None:
    pairs = scan_output(outputs, "pairs").collect()
    assert pairs.height > 1000
    for marker in NOT_TYPED:
        assert pairs.filter(pl.col("terse").str.starts_with(marker)).is_empty(), marker
    assert pairs.filter(pl.col("rich") == "").is_empty()
    messages = scan_output(outputs, "messages").collect()
    ledger = scan_output(outputs, "candidates").collect().filter(pl.col("kept"))
    prompts = ledger.select("file", "conversation", "prompt_turn").join(
        messages.select(
            "file",
            "conversation",
            pl.col("turn").alias("prompt_turn"),
            pl.col("role").alias("prompt_role"),
            "typed",
        ),
        on=["file", "conversation", "prompt_turn"],
    )
    assert prompts.height == ledger.height  # every kept pair's prompt is a message of its conversation
    assert (prompts["prompt_role"] == "user").all()
    assert prompts["typed"].all()
    responses = ledger.select("file", "conversation", "turn").join(
        messages.select("file", "conversation", "turn", "role", "text"), on=["file", "conversation", "turn"]
    )
    assert responses.height == ledger.height
    assert (responses["role"] == "assistant").all()
    assert (responses["text"].str.strip_chars().str.len_chars() > 0).all()  # never a bare tool call
