"""Differential tests: our job against the reference harvester, run in this process.

On every input the reference handles without crashing, pairs.jsonl must parse to the
reference's records in the same order, and stats.json must hold its seven figures. The
hypothesis tests need the reference itself (``../shared/reference``); the golden cases
keep a parity check in a bare clone.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLE_ARCHIVE, REALDATA, REFERENCE_STATS, run_ours, run_reference

# Words that hit every rule: prefixes the filters look for, Python-only whitespace
# (U+001C..U+001F), Unicode whitespace, a zero-width space (not whitespace), code fences.
WORDS = [
    "the", "deploy", "token", "why", "how", "café", "数据", "🚀", "output", "tool_call",
    "function_call", "```", "{", "}", "You", "are", "You are", "# SOUL.md", "{\"output\":",
    "a\x1cb", "\x1f", "\x85", "\u3000", "\u200b", "\t", "\n", " ", "\xa0", "x" * 30,
]  # fmt: skip
ROLES = ["human", "gpt", "assistant", "system", "tool", "user", "function_call", "GPT"]


@st.composite
def texts(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), min_size=0, max_size=60))
    separator = draw(st.sampled_from([" ", "  ", "\n", " \x1c ", "\u2028"]))
    text = separator.join(words)
    if draw(st.booleans()):
        text = (
            draw(st.sampled_from(["", " ", "\t\n", "\x1e"]))
            + text
            + draw(st.sampled_from(["", " \n", "\x85"]))
        )
    if draw(st.integers(0, 9)) == 0:
        text += draw(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=20))
    return text


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {}
    if draw(st.integers(0, 15)):
        message["from"] = draw(st.sampled_from(ROLES))
    kind = draw(st.integers(0, 15))
    if kind == 0:
        message["value"] = None
    elif kind == 1:
        message["value"] = ""
    elif kind > 2:  # kind 2: no value at all
        message["value"] = draw(texts())
    return message


@st.composite
def sessions(draw: st.DrawFn) -> dict[str, Any]:
    session: dict[str, Any] = {}
    for key in ("id", "model"):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            session[key] = None
        elif choice > 1:  # choice 1: key missing
            session[key] = draw(st.sampled_from(["s1", "s2", "ünïcode", "", "model-x"]))
    if draw(st.integers(0, 19)):
        conversation = draw(st.lists(messages(), max_size=10))
        repeat_last_exchange = draw(st.booleans())
        if conversation and repeat_last_exchange:  # the same exchange twice in one session
            conversation = conversation + conversation[-2:]
        session["conversations"] = conversation
    return session


@st.composite
def archives(draw: st.DrawFn) -> dict[str, str]:
    """File name -> content; sessions repeat inside and across files."""
    pool = draw(st.lists(sessions(), min_size=1, max_size=8))
    names = draw(
        st.lists(
            st.sampled_from(["a.jsonl", "a-b.jsonl", "a/b.jsonl", "a/a.jsonl", "B.jsonl", "z/y/x.jsonl"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    files = {}
    for name in names:
        records = draw(st.lists(st.sampled_from(pool), min_size=0, max_size=6))
        lines = [json.dumps(r, ensure_ascii=draw(st.booleans())) for r in records]
        lines += draw(st.lists(st.sampled_from(["", "   ", "\t"]), max_size=2))
        lines = draw(st.permutations(lines))
        newline = draw(st.sampled_from(["\n", "\r\n"]))
        files[name] = newline.join(lines) + draw(st.sampled_from(["", newline]))
    return files


def write_archive(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode())


def _as_reference_reads_it(line: str, place: str) -> str:
    """One line, rewritten so that the reference reads it as we do (our two deviations)."""
    try:
        session = json.loads(line)
    except ValueError:
        return line
    if not isinstance(session, dict):
        return line
    if session.get("id") is None:  # a session without an id is named after its place
        session["id"] = place
    conversations = session.get("conversations")
    if isinstance(conversations, list):
        for message in conversations:  # `user` is a prompt as `human` is
            if isinstance(message, dict) and message.get("from") == "user":
                message["from"] = "human"
    return json.dumps(session)


def reference_view(target: Path, copy: Path) -> Path:
    """A copy of ``target`` for the reference, holding our documented deviations from it:
    a ShareGPT ``user`` message is a prompt, and a session without an id gets
    ``file:line`` as its id."""
    files = sorted(target.rglob("*.jsonl")) if target.is_dir() else [target]
    for path in files:
        relative = path.relative_to(target) if target.is_dir() else Path(path.name)
        text = path.read_bytes().decode().replace("\r\n", "\n").replace("\r", "\n")
        lines = [
            _as_reference_reads_it(line, f"{path}:{number}")
            for number, line in enumerate(text.split("\n"), 1)
        ]
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_text("\n".join(lines))
    return copy if target.is_dir() else copy / target.name


def assert_parity(
    reference: ModuleType,
    target: Path,
    work: Path,
    *,
    min_ratio: float,
    min_words: int,
    batch_bytes: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ref_target = reference_view(target, work / "reference-view")
    ref_stats, ref_records = run_reference(
        reference, ref_target, work / "ref.jsonl", min_ratio=min_ratio, min_words=min_words
    )
    stats, records = run_ours(
        target, work / "out", min_ratio=min_ratio, min_words=min_words, batch_bytes=batch_bytes
    )
    assert records == ref_records
    assert {key: stats[key] for key in REFERENCE_STATS} == ref_stats
    return stats, records


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=archives(),
    min_ratio=st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0]),
    min_words=st.integers(0, 6),
    tiny_batches=st.booleans(),
)
def test_generated_archives_match_reference(
    reference: ModuleType, files: dict[str, str], min_ratio: float, min_words: int, tiny_batches: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_archive(root / "archive", files)
        # one file per batch exercises the dedup keys carried across batches
        assert_parity(
            reference,
            root / "archive",
            root,
            min_ratio=min_ratio,
            min_words=min_words,
            batch_bytes=1 if tiny_batches else None,
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=sessions(), min_words=st.integers(0, 3))
def test_single_file_matches_reference(
    reference: ModuleType, session: dict[str, Any], min_words: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one.jsonl"
        path.write_text(json.dumps(session) + "\n" + json.dumps(session) + "\n")
        assert_parity(reference, path, Path(tmp), min_ratio=0.0, min_words=min_words)


# --- golden cases: the reference's output, kept in the repo ---------------------------
# Each case is an input with the thresholds it runs at; tests/golden/reference/ holds what
# the reference wrote for it (pairs and its seven figures). Our job is held to the golden
# files everywhere, a bare clone included; wherever the reference is beside the repo (always
# under CI) the golden files are held to the reference, so they cannot go stale.

GOLDEN_REFERENCE = Path(__file__).parent / "golden" / "reference"
#: case -> (min_ratio, min_words)
GOLDEN_CASES = {
    "example-archive": (1.5, 20),
    "fastchat-default": (1.5, 20),
    "fastchat-loose": (0.0, 1),
}


def golden_case_archive(case: str, root: Path) -> Path:
    """The input of a golden case, written under ``root``."""
    archive = root / "archive"
    if case == "example-archive":
        # the bundled archive's ShareGPT files (``agents/`` holds layouts the reference
        # cannot read), less the lines on which the reference crashes
        crashing = ('"a JSON array"', '"edge-null-conversations"', '"edge-bad-messages"')
        for path in sorted(EXAMPLE_ARCHIVE.rglob("*.jsonl")):
            if "agents" in path.relative_to(EXAMPLE_ARCHIVE).parts:
                continue
            target = archive / path.relative_to(EXAMPLE_ARCHIVE)
            target.parent.mkdir(parents=True, exist_ok=True)
            lines = path.read_bytes().split(b"\n")
            target.write_bytes(
                b"\n".join(line for line in lines if not any(c.encode() in line for c in crashing))
            )
    else:  # FastChat's ShareGPT sample (a JSON array), one session a line
        sessions = json.loads((REALDATA / "sharegpt/fastchat__dummy_conversation.json").read_text())
        archive.mkdir(parents=True)
        (archive / "fastchat.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sessions))
    return archive


def read_golden(case: str, archive: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The golden stats and records, with the archive's place (in the ids of sessions
    named after their place) put back where the golden file says ``{ARCHIVE}``."""
    stats = json.loads((GOLDEN_REFERENCE / f"{case}.stats.json").read_text())
    text = (GOLDEN_REFERENCE / f"{case}.jsonl").read_text().replace("{ARCHIVE}", str(archive))
    return stats, [json.loads(line) for line in text.split("\n") if line]


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_cases_match_the_reference_output(case: str, tmp_path: Path) -> None:
    """Parity without the reference: our pairs and figures are the reference's, as recorded."""
    min_ratio, min_words = GOLDEN_CASES[case]
    archive = golden_case_archive(case, tmp_path)
    stats, records = run_ours(archive, tmp_path / "out", min_ratio=min_ratio, min_words=min_words)
    golden_stats, golden_records = read_golden(case, archive)
    assert records == golden_records
    assert {key: stats[key] for key in REFERENCE_STATS} == golden_stats
    assert len(records) > 30


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_files_are_what_the_reference_writes(reference: ModuleType, case: str, tmp_path: Path) -> None:
    """``UPDATE_GOLDEN=1`` rewrites them from the reference instead."""
    min_ratio, min_words = GOLDEN_CASES[case]
    archive = golden_case_archive(case, tmp_path)
    view = reference_view(archive, tmp_path / "reference-view")
    stats, records = run_reference(
        reference, view, tmp_path / "ref.jsonl", min_ratio=min_ratio, min_words=min_words
    )
    if os.environ.get("UPDATE_GOLDEN") == "1":
        written = (tmp_path / "ref.jsonl").read_text().replace(str(archive), "{ARCHIVE}")
        GOLDEN_REFERENCE.mkdir(parents=True, exist_ok=True)
        (GOLDEN_REFERENCE / f"{case}.jsonl").write_text(written)
        (GOLDEN_REFERENCE / f"{case}.stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    assert read_golden(case, archive) == (stats, records), "UPDATE_GOLDEN=1 rewrites the golden files"
