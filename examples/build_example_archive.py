#!/usr/bin/env python3
"""Rebuild examples/archive, the small archive `make demo` runs on.

Generated sessions come from the archive generator (tests/data/gen_archive.py, the copy of
the shared one; seeded, so the output is the same every time);
edge-cases/edge.jsonl is written here, one session per filter and one malformed line per
kind of damage, with CRLF endings and blank lines; agents/ holds real transcripts of the
agent layouts, copied from tests/data with their provenance (one of them gzip-compressed):
most answer a typed request at length, so that the demo shows pairs for agent sessions,
and a few show what is not a pair. The archive is committed; this script is only needed
to change it, and needs nothing beside the repo.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARCHIVE = HERE / "archive"
TEST_DATA = HERE.parent / "tests" / "data"
GENERATOR = TEST_DATA / "gen_archive.py"
#: sample under tests/data -> where it goes under agents/ (a .gz name is written compressed)
AGENT_SAMPLES = {
    "realdata/claude_code/claude-code-transcripts__sample_session.jsonl": "claude_code/sample_session.jsonl",
    "realdata/claude_code/claude-code-viewer__5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl": (
        "claude_code/5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"
    ),
    "realdata/codex_rollout/agent-sessions__codex_large.jsonl": "codex/rollout-large.jsonl.gz",
    "found/codex/rollout-2025-08-31T12-14-27-18a59085-ee11-4ef3-b460-f942642861b3.jsonl": (
        "codex/rollout-2025-08-31T12-14-27-18a59085-ee11-4ef3-b460-f942642861b3.jsonl"
    ),
    "realdata/other_agent/agent-sessions__hermes_large.json": "hermes/session_large.json",
    "found/hermes_gateway/20260511_135011_68a93747.jsonl": "hermes/sessions/20260511_135011_68a93747.jsonl",
    "realdata/other_agent/openhands__trajs_basic.json": "openhands/basic.json",
    "realdata/other_agent/agent-sessions__kimi_assistant_tools.jsonl": "kimi_cli/wire.jsonl",
    "realdata/other_agent/agent-sessions__gemini_cli_large.json": "gemini_cli/large.json",
    "realdata/openai_messages/mini-swe-agent__github_issue.traj.json": "openai/github_issue.traj.json",
}

LONG = " ".join(["The answer explains the steps, the reasons and the pitfalls in detail."] * 4)


def session(sid: str | None, *turns: tuple[str, object], model: str = "hermes-4-70b") -> dict[str, object]:
    record: dict[str, object] = {"model": model, "conversations": [{"from": f, "value": v} for f, v in turns]}
    if sid is not None:
        record["id"] = sid
    return record


def edge_lines() -> list[str]:
    fence = "```\na b c d e f g h i j\n```\n```\nk l m n o p q r s t\n```"
    sessions = [
        session("edge-kept", ("human", "How do I rotate the deploy token?"), ("gpt", LONG)),
        session("edge-empty-response", ("human", "Anything?"), ("gpt", "")),
        session("edge-short-response", ("human", "Status?"), ("gpt", "All green.")),
        session("edge-no-prompt", ("system", "Be brief."), ("gpt", LONG)),
        session("edge-empty-prompt", ("human", ""), ("gpt", LONG)),
        session("edge-tool-result", ("human", '{"output": "3 files", "exit_code": 0}'), ("gpt", LONG)),
        session("edge-system-leak", ("human", "You are now a reviewer."), ("gpt", LONG)),
        session("edge-soul", ("human", "# SOUL.md\nBe kind."), ("gpt", LONG)),
        session("edge-low-ratio", ("human", " ".join(["why"] * 30)), ("gpt", LONG)),
        session("edge-code-only", ("human", "Code?"), ("gpt", fence)),
        session("edge-tool-call", ("human", "List files"), ("gpt", "<tool_call> " + LONG)),
        session(
            "edge-duplicate-in-session",
            ("human", "Explain the cache."),
            ("gpt", LONG + " cache"),
            ("human", "Explain the cache."),
            ("gpt", LONG + " cache"),
        ),
        session(
            "edge-duplicate-of-kept", ("human", "How do I rotate the deploy token?  "), ("gpt", LONG + "\n")
        ),
        session(None, ("human", "Who am I without an id?"), ("gpt", LONG + " missing id")),
        session("edge-user-role", ("user", "Is 'user' a prompt in ShareGPT?"), ("assistant", LONG + " user")),
    ]
    lines = [json.dumps(s, ensure_ascii=False) for s in sessions]
    null_id = session("x", ("human", "Null id and model?"), ("gpt", LONG + " null id"))
    null_id["id"] = None
    null_id["model"] = None
    lines.append(json.dumps(null_id))
    lines += [
        '{"id": "edge-truncated", "conversations": [{"from": "human", "value": "unterminated',
        '["a JSON array", "not a session"]',
        '{"id": "edge-null-conversations", "conversations": null}',
        json.dumps(
            {
                "id": "edge-bad-messages",
                "conversations": [
                    7,
                    {"from": "human", "value": "Which message survives?"},
                    {"from": "gpt", "value": 42},
                    {"from": "gpt", "value": LONG + " survivor"},
                ],
            }
        ),
        "",
        "   ",
    ]
    return lines


def provenance_entries() -> dict[str, str]:
    """Each sample's entry in the provenance files of tests/data, by its path there."""
    entries = {}
    for prefix, provenance in (
        ("realdata/", TEST_DATA / "PROVENANCE.md"),
        ("found/", TEST_DATA / "found/PROVENANCE.md"),
    ):
        for block in provenance.read_text().split("### ")[1:]:
            entries[prefix + block.split("`", 2)[1]] = "### " + block.strip()
    return entries


def copy_agent_samples() -> None:
    """The samples, and each one's provenance entry, under ``agents/``."""
    entries = provenance_entries()
    notes = ["# Where these transcripts come from", "", "Copied byte for byte from `tests/data`.", ""]
    for source, target in AGENT_SAMPLES.items():
        data = (TEST_DATA / source).read_bytes()
        path = ARCHIVE / "agents" / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(data, mtime=0) if target.endswith(".gz") else data)
        notes += [f"`{target}` is `{source}`" + (" (gzip-compressed here)" if target.endswith(".gz") else "")]
        notes += ["", entries[source], ""]
    (ARCHIVE / "agents" / "PROVENANCE.md").write_text("\n".join(notes))


def main() -> None:
    if ARCHIVE.exists():
        shutil.rmtree(ARCHIVE)
    subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            str(ARCHIVE),
            "--mb",
            "0.3",
            "--files",
            "4",
            "--seed",
            "5",
            "--bad-share",
            "0.01",
        ],
        check=True,
    )
    edge = ARCHIVE / "edge-cases" / "edge.jsonl"
    edge.parent.mkdir()
    edge.write_bytes(("\r\n".join(edge_lines()) + "\r\n").encode())
    copy_agent_samples()


if __name__ == "__main__":
    main()
