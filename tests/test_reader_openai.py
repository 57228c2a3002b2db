"""The OpenAI-messages reader: real samples end to end, and the message shapes one by one."""

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
from transforms.readers import openai

SAMPLES = REALDATA / "openai_messages"
MINI_SWE = SAMPLES / "mini-swe-agent__github_issue.traj.json"
SWE_AGENT = SAMPLES / "swe-agent__marshmallow-1867_function_calling_replace.traj"
TOOLBENCH = SAMPLES / "toolbench__G1_answer_10_ChatGPT_DFS_woFilter_w2.json"
REASON_TOOL_USE = SAMPLES / "llamafactory__reason_tool_use_demo_50.jsonl"
KTO = SAMPLES / "llamafactory__kto_en_demo.json"

ROWS = [
    "conversation",
    "session_id",
    "turn",
    "role",
    "role_raw",
    "typed",
    "text",
    "has_tool_calls",
    "tool_name",
]


def pairs_of(path: Path) -> list[dict[str, Any]]:
    _, pairs = run([path], PairRules(min_ratio=0, min_words=1, responses="each"), None, sample_size=10_000)
    return pairs


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def rows(path: Path) -> pl.DataFrame:
    batch = read_files([path])
    assert batch.quarantine.is_empty(), batch.quarantine
    return batch.messages.select(ROWS)


def expected(rows_: list[tuple[Any, ...]]) -> pl.DataFrame:
    schema = {
        "conversation": pl.Int64,
        "session_id": pl.String,
        "turn": pl.Int32,
        "role": pl.String,
        "role_raw": pl.String,
        "typed": pl.Boolean,
        "text": pl.String,
        "has_tool_calls": pl.Boolean,
        "tool_name": pl.String,
    }
    return pl.DataFrame(rows_, schema=schema, orient="row")


# --- real samples -----------------------------------------------------------------


@pytest.mark.parametrize("path", [MINI_SWE, SWE_AGENT, TOOLBENCH, REASON_TOOL_USE, KTO])
def test_samples_are_detected_as_openai(path: Path) -> None:
    found = detect(path)
    assert found.reader is not None
    assert found.reader.format == "openai"


def test_reasoning_parts_never_reach_text_and_call_turns_are_not_responses() -> None:
    pairs = pairs_of(REASON_TOOL_USE)
    assert [(p["terse"], p["rich"][:40]) for p in pairs[:3]] == [
        (
            "What are the schools near latitude 40 and longitude -75?",
            "I'm sorry, but the available tools don't",
        ),
        ('Can you tell me about the movie "Inception"?', "Here are the key details about the movie"),
        ('What about "The Dark Knight"?', "Here are the key details about the movie"),
    ]
    assert pairs[2]["rich"].startswith('Here are the key details about the movie "The Dark Knight":')
    assert all(p["source"].endswith(f"{REASON_TOOL_USE.name}:{p['line']}") for p in pairs)
    messages = read_files([REASON_TOOL_USE]).messages
    # the reasoning part of the first answer is not in any text
    assert not messages.filter(pl.col("text").str.contains("Okay, the user is asking for schools")).height
    calls = messages.filter(pl.col("has_tool_calls"))
    raw = [json.loads(line) for line in REASON_TOOL_USE.read_text().splitlines()]
    calling = [
        m for r in raw for m in r["messages"] if any(part["type"] == "tool_call" for part in m["content"])
    ]
    assert calls.height == len(calling) == 53
    assert calls["text"].null_count() == calls.height  # reasoning + call: nothing said
    assert calls.filter(pl.col("line") == 2)["tool_name"].to_list() == ["get_movie_details"] * 2
    # a tool's output is never a prompt
    assert messages.filter(pl.col("role_raw") == "tool")["role"].unique().to_list() == ["tool"]
    assert not any(p["terse"].startswith("[{") for p in pairs)


def test_mini_swe_agent_observations_are_tool_results() -> None:
    messages = read_files([MINI_SWE]).messages
    assert messages.height == 22
    assert messages["conversation"].unique().to_list() == [0]
    assert messages["session_id"].unique().to_list() == [f"{MINI_SWE}[0]"]
    observations = messages.filter(pl.col("text").str.starts_with("<returncode>"))
    assert observations.height == 9
    assert observations["role"].unique().to_list() == ["tool"]
    assert not observations["typed"].any()
    pairs = pairs_of(MINI_SWE)
    assert len(pairs) == 10
    assert all(
        p["terse"].startswith("Please solve this issue: GitHub Issue: SyntaxError: invalid syntax\n")
        for p in pairs
    )
    assert pairs[0]["rich"].startswith("I'll help you solve this issue. Let me first examine")


def test_swe_agent_history_with_tool_calls() -> None:
    messages = read_files([SWE_AGENT]).messages
    assert messages["role"].value_counts(sort=True).rows() == [
        ("assistant", 11),
        ("tool", 11),
        ("system", 1),
        ("user", 1),
    ]
    assistants = messages.filter(pl.col("role") == "assistant")
    assert assistants["has_tool_calls"].all()
    assert assistants["tool_name"].to_list()[:4] == ["create", "insert", "bash", "bash"]
    pairs = pairs_of(SWE_AGENT)
    assert len(pairs) == 11  # each step says something besides its call
    assert all(
        p["terse"].startswith("We're currently solving the following issue within our repository.")
        for p in pairs
    )
    assert pairs[-1]["rich"] == "Calling `submit` to submit."


def test_toolbench_legacy_function_calls() -> None:
    assert_frame_equal(
        rows(TOOLBENCH).slice(2).drop("text"),
        expected(
            [
                (
                    0,
                    f"{TOOLBENCH}[0]",
                    2,
                    "assistant",
                    "assistant",
                    False,
                    None,
                    True,
                    "transitaires_for_transitaires",
                ),
                (
                    0,
                    f"{TOOLBENCH}[0]",
                    3,
                    "tool",
                    "function",
                    False,
                    None,
                    False,
                    "transitaires_for_transitaires",
                ),
                (
                    0,
                    f"{TOOLBENCH}[0]",
                    4,
                    "assistant",
                    "assistant",
                    False,
                    None,
                    True,
                    "transitaire_for_transitaires",
                ),
                (
                    0,
                    f"{TOOLBENCH}[0]",
                    5,
                    "tool",
                    "function",
                    False,
                    None,
                    False,
                    "transitaire_for_transitaires",
                ),
                (0, f"{TOOLBENCH}[0]", 6, "assistant", "assistant", False, None, True, "Finish"),
            ]
        ).drop("text"),
    )
    messages = read_files([TOOLBENCH]).messages
    assert messages.height == 7  # the last and longest of the three train_messages prefixes
    assert messages["text"][1] == (
        "\nCan you retrieve the contact details of the 'Gondrand' customs agency in New Caledonia? "
        "I'm particularly interested in their postal code, email, name, and phone number. "
        "Also, please provide a list of all available transitaires.\nBegin!\n"
    )
    # every assistant turn only calls a function; the Finish call's final answer is said
    (pair,) = pairs_of(TOOLBENCH)
    assert pair["terse"].startswith("Can you retrieve the contact details of the 'Gondrand' customs agency")
    assert pair["rich"].startswith(
        "The contact details of the 'Gondrand' customs agency in New Caledonia are"
    )
    assert (
        messages["text"][6]
        == json.loads(json.loads(TOOLBENCH.read_text())["answer_generation"]["final_answer"])["final_answer"]
    )


def test_kto_array_of_records() -> None:
    pairs = pairs_of(KTO)
    assert pairs[0]["terse"].startswith(
        "The Federal Trade Commission is going after spyware, bits of computer code"
    )
    assert pairs[0]["rich"].startswith("Ooh ooh ah ah! *giggle* Let me think...")
    assert pairs[0]["source"] == f"{KTO}[0]"
    assert pairs[1]["terse"].startswith("Compare and contrast the roles of the hippocampus")
    assert pairs[1]["source"] == f"{KTO}[1]"


# --- message shapes ---------------------------------------------------------------


def test_content_shapes_roles_and_calls(tmp_path: Path) -> None:
    record = {
        "id": "chat-1",
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {}}],
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "think",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "name": "ls", "content": "a.txt"},
            {"role": "assistant", "content": "There is a.txt.", "reasoning": "secret thought"},
            {"role": "user", "content": "And legacy?"},
            {"role": "assistant", "content": None, "function_call": {"name": "calc", "arguments": "{}"}},
            {"role": "function", "name": "calc", "content": "42"},
            {
                "role": "assistant",
                "content": [{"type": "reasoning", "value": "hmm"}, {"type": "text", "value": "It is 42."}],
            },
        ],
    }
    path = write_lines(tmp_path / "chat.jsonl", [record])
    assert_frame_equal(
        rows(path),
        expected(
            [
                (1, "chat-1", 0, "system", "developer", False, "Be brief.", False, None),
                (1, "chat-1", 1, "user", "user", True, "Hi", False, None),
                (1, "chat-1", 2, "assistant", "assistant", False, None, True, "ls"),
                (1, "chat-1", 3, "tool", "tool", False, "a.txt", False, "ls"),
                (1, "chat-1", 4, "assistant", "assistant", False, "There is a.txt.", False, None),
                (1, "chat-1", 5, "user", "user", True, "And legacy?", False, None),
                (1, "chat-1", 6, "assistant", "assistant", False, None, True, "calc"),
                (1, "chat-1", 7, "tool", "function", False, "42", False, "calc"),
                (1, "chat-1", 8, "assistant", "assistant", False, "It is 42.", False, None),
            ]
        ),
    )
    assert read_files([path]).messages["model"].unique().to_list() == ["gpt-4o"]
    pairs = pairs_of(path)
    assert [(p["terse"], p["rich"]) for p in pairs] == [
        ("Hi", "There is a.txt."),
        ("And legacy?", "It is 42."),
    ]


def test_line_and_document_session_ids(tmp_path: Path) -> None:
    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    lines = write_lines(tmp_path / "a.jsonl", [chat, {**chat, "session_id": "s-2"}])
    assert rows(lines).select("conversation", "session_id").unique(maintain_order=True).rows() == [
        (1, f"{lines}:1"),
        (2, "s-2"),
    ]
    array = tmp_path / "b.json"
    array.write_text(json.dumps([chat, {**chat, "id": 7}]))
    assert rows(array).select("conversation", "session_id").unique(maintain_order=True).rows() == [
        (0, f"{array}[0]"),
        (1, "7"),
    ]
    single = tmp_path / "c.traj"
    single.write_text(json.dumps({"history": chat["messages"], "info": {}}, indent=2))
    assert rows(single).select("conversation", "session_id", "text").rows() == [
        (0, f"{single}[0]", "q"),
        (0, f"{single}[0]", "a"),
    ]
    bare = tmp_path / "d.json"
    bare.write_text(json.dumps(chat["messages"], indent=2))
    assert rows(bare).select("conversation", "turn", "role").rows() == [(0, 0, "user"), (0, 1, "assistant")]


def test_swe_agent_observations_and_demonstrations_as_user_messages(tmp_path: Path) -> None:
    """Without function calling, SWE-agent writes command output as user observations."""
    history = [
        {"role": "system", "content": "You are an agent.", "message_type": "system_prompt"},
        {"role": "user", "content": "Demo run", "message_type": "demonstration", "is_demo": True},
        {"role": "user", "content": "Fix the bug in foo.py", "message_type": "observation"},
        {"role": "assistant", "content": "Let me look.\n```\nls\n```", "message_type": "action"},
        {"role": "user", "content": "foo.py", "message_type": "observation"},
        {"role": "assistant", "content": "Found it.", "message_type": "action"},
    ]
    path = tmp_path / "run.traj"
    path.write_text(json.dumps({"history": history}))
    assert rows(path).select("role", "typed").rows() == [
        ("system", False),
        ("system", False),
        ("user", True),
        ("assistant", False),
        ("tool", False),
        ("assistant", False),
    ]
    assert [(p["terse"], p["rich"]) for p in pairs_of(path)] == [
        ("Fix the bug in foo.py", "Let me look.\n```\nls\n```"),
        ("Fix the bug in foo.py", "Found it."),
    ]


def test_a_record_that_does_not_decode_is_quarantined_alone(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    bad = {"messages": [{"role": "user", "content": {"unexpected": "object"}}]}
    path = write_lines(tmp_path / "mixed.jsonl", [good, bad, good])
    batch = read_files([path])
    assert batch.quarantine["line"].to_list() == [2]
    assert batch.messages["line"].unique().sort().to_list() == [1, 3]


# --- sniffing ---------------------------------------------------------------------


def test_sniff_leaves_sharegpt_hermes_and_other_messages_alone() -> None:
    chat = {"messages": [{"role": "user", "content": "q"}]}
    assert openai.sniff_lines([chat])
    assert openai.sniff_document([chat])
    assert openai.sniff_document(chat["messages"])
    assert openai.sniff_document({"answer_generation": {"train_messages": [chat["messages"]]}})
    sharegpt = {"conversations": [{"from": "human", "value": "q"}], "messages": chat["messages"]}
    assert not openai.sniff_lines([sharegpt])
    assert not openai.sniff_document([sharegpt])
    hermes_export = {"id": "s", "source": "cli", "started_at": 1.0, **chat}
    assert not openai.sniff_lines([hermes_export])
    hermes_session = {"session_id": "s", "platform": "cli", **chat}
    assert not openai.sniff_document(hermes_session)
    gemini = {"sessionId": "s", "messages": [{"type": "user", "content": "q"}]}
    assert not openai.sniff_document(gemini)
