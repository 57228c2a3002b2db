"""One-session JSON documents (a SWE-agent ``.traj``, a ToolBench answer, a Hermes or Gemini
session, a Claude Code ``loglines`` export, a ShareGPT session) are read a piece of their
list at a time: the same message table as the reader makes of the whole document, a broken
element quarantined with its place, a document cut short read as far as it goes."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import zstandard
from polars.testing import assert_frame_equal

from jobs import discover, json_array
from jobs.discover import batches, detect
from jobs.read_batch import Batch, read_batch
from tests.conftest import REALDATA, SHARED, require_shared, run_ours
from tests.document_records import read_streamed
from transforms.readers import Reader, claude_code, gemini_cli, hermes, openai, sharegpt

#: Each document reader's reader of whole documents, one a record (tests and notebooks).
WHOLE = {
    "openai": openai.read_document,
    "claude_code": claude_code.read_document,
    "gemini_cli": gemini_cli.read_gemini,
    "hermes_session": hermes.read_session,
    "sharegpt": sharegpt.read_document,
}
DOCUMENT_READERS = {reader.format: reader for reader in (*openai.READERS, *claude_code.READERS,
    *gemini_cli.READERS, *hermes.READERS, *sharegpt.READERS) if reader.layout == "document"}  # fmt: skip
LONG = " ".join(["word"] * 40)


@pytest.fixture(autouse=True)
def walked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every document walked and read in pieces, however small (a small one is read whole
    unless it does not decode whole: ``test_a_small_document_...``)."""
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", 0)


def _whole(reader: Reader, text: str, file: str) -> pl.DataFrame:
    """What the reader makes of the whole document, as a batch holds it."""
    records = pl.LazyFrame(
        {
            "file_index": pl.Series([0], dtype=pl.Int32),
            "file": [file],
            "line": pl.Series([None], dtype=pl.Int64),
            "text": [text],
        }
    )
    return (
        WHOLE[reader.format](records)
        .collect()
        .with_columns(pl.col("agent_run").fill_null(bool(reader.agent)))
        .sort("file_index", "conversation", "turn", maintain_order=True)
    )


def _streamed(path: Path, batch_bytes: int) -> Batch:
    (batch,) = batches([detect(path)], batch_bytes)  # a document's pieces: one batch
    return read_batch(batch)


def _documents(root: Path) -> list[Path]:
    return [
        path
        for path in sorted(root.rglob("*"))
        if path.suffix in (".json", ".traj")
        and (found := detect(path)).reader
        and found.reader.layout == "document"
    ]


@pytest.mark.parametrize("path", _documents(REALDATA), ids=lambda path: path.name)
@pytest.mark.parametrize("batch_bytes", [1 << 30, 4096, 64])
def test_a_real_document_read_in_pieces_gives_what_it_gives_whole(path: Path, batch_bytes: int) -> None:
    found = detect(path)
    assert found.reader is not None
    pieces = next(batches([found], batch_bytes))
    assert [piece.header is not None for piece in pieces] == [False] * (len(pieces) - 1) + [True]
    if batch_bytes == 64:  # an element a piece
        assert len(pieces) >= 3
    read = read_batch(pieces)
    assert read.quarantine.is_empty()
    assert_frame_equal(read.messages, _whole(found.reader, path.read_text(), str(path)))


def test_the_shared_real_documents_too() -> None:
    root = SHARED / "realdata"
    require_shared(root, "reading every real document")
    for path in _documents(root):
        found = detect(path)
        assert found.reader is not None
        streamed = _streamed(path, 256)
        assert streamed.quarantine.is_empty()
        assert_frame_equal(streamed.messages, _whole(found.reader, path.read_text(), str(path)))


def _message(role: str, content: Any, **more: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **more}


CHAT = [_message("user", "Why is the sky blue?"), _message("assistant", LONG)]
RUN = [
    _message("system", "You are an agent.", message_type="system_prompt"),
    _message("user", "Fix the bug.", message_type="observation"),
    _message("assistant", "Looking.", action="ls", message_type="action"),
    _message("user", "a.py b.py", message_type="observation"),
    _message("assistant", LONG, action="submit", message_type="action"),
]

#: Documents whose decoded records must give what the whole document gives.
INLINE: dict[str, tuple[str, dict[str, Any]]] = {
    "openai messages": ("openai", {"id": "c1", "model": "m", "messages": CHAT}),
    "openai history beside a trajectory": (
        "openai",
        {"environment": "main", "trajectory": [{"observation": "x"}] * 3, "history": RUN, "info": {}},
    ),
    "openai messages before history": ("openai", {"messages": CHAT, "history": RUN}),
    "openai empty messages before history": ("openai", {"messages": [], "history": RUN}),
    "openai null messages before history": ("openai", {"messages": None, "history": RUN}),
    "openai toolbench prefixes": (
        "openai",
        {
            "answer_generation": {
                "final_answer": json.dumps({"return_type": "give_answer", "final_answer": LONG}),
                "train_messages": [CHAT[:1], CHAT, [*CHAT, _message("function", "r", name="Finish")]],
            }
        },
    ),
    "openai toolbench flat": ("openai", {"answer_generation": {"train_messages": CHAT}}),
    "openai toolbench empty last prefix": ("openai", {"answer_generation": {"train_messages": [CHAT, []]}}),
    "openai no list: one message": ("openai", {"role": "user", "content": "Just this."}),
    "openai null element": ("openai", {"session_id": "s", "messages": [None, *CHAT]}),
    "hermes": ("hermes_session", {"session_id": "h1", "model": "m", "platform": "cli", "messages": CHAT}),
    "hermes id, null element": ("hermes_session", {"id": "h2", "platform": "cli", "messages": [*CHAT, None]}),
    "hermes no id": ("hermes_session", {"platform": "cli", "session_start": "x", "messages": CHAT}),
    "hermes empty": ("hermes_session", {"session_id": "h3", "platform": "cli", "messages": []}),
    "gemini": (
        "gemini_cli",
        {
            "sessionId": "g1",
            "messages": [
                {"type": "user", "content": "Why?"},
                {"type": "gemini", "content": LONG, "model": "gemini-2.5"},
                None,
            ],
        },
    ),
    "claude loglines": (
        "claude_code",
        {
            "loglines": [
                {
                    "type": "user",
                    "sessionId": "c",
                    "uuid": "1",
                    "message": {"role": "user", "content": "Hi?"},
                },
                None,
                {
                    "type": "assistant",
                    "sessionId": "c",
                    "uuid": "2",
                    "message": {"id": "m", "role": "assistant", "content": [{"type": "text", "text": LONG}]},
                },
            ]
        },
    ),
    "sharegpt": ("sharegpt", {"id": "s1", "model": "m", "conversations": [{"from": "human", "value": "Q?"}]}),
    "sharegpt no id, no model": ("sharegpt", {"conversations": [{"from": "human", "value": "Q?"}, None]}),
}


@pytest.mark.parametrize("case", INLINE)
def test_a_document_decoded_a_record_at_a_time_gives_what_it_gives_whole(case: str) -> None:
    format_name, document = INLINE[case]
    reader = DOCUMENT_READERS[format_name]
    streamed = read_streamed(reader, document, "/logs/session_x.json")
    whole = WHOLE[format_name](
        pl.LazyFrame(
            {
                "file_index": pl.Series([0], dtype=pl.Int32),
                "file": ["/logs/session_x.json"],
                "line": pl.Series([None], dtype=pl.Int64),
                "text": [json.dumps(document)],
            }
        )
    ).collect()
    assert_frame_equal(streamed, whole)


def _write(path: Path, document: dict[str, Any], *, indent: int | None = 2) -> Path:
    path.write_text(json.dumps(document, indent=indent))
    return path


def _run(turns: int) -> dict[str, Any]:
    """A SWE-agent run: its history among other members."""
    history = [*RUN[:2]]
    for turn in range(turns):
        history += [
            _message("assistant", f"Step {turn}: looking at the code.", action=f"open {turn}.py"),
            _message("user", f'[File {turn}.py] ] }} \\ " ,', message_type="observation"),
        ]
    history.append(_message("assistant", LONG, action="submit"))
    return {
        "environment": "main",
        "trajectory": [{"observation": "big " * 50}] * 5,
        "history": history,
        "info": {},
    }


@pytest.mark.parametrize("whole_bytes", [0, 1 << 20])
def test_a_broken_element_is_quarantined_with_its_place_and_the_rest_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", whole_bytes)
    good = _write(tmp_path / "good.traj", _run(6))
    text = good.read_text()
    broken = '{"role": "user" "content": "no colon"}'
    history = json.loads(text)["history"]
    marker = json.dumps(history[5], indent=2).replace("\n", "\n    ")
    assert marker in text
    bad = tmp_path / "bad.traj"
    bad.write_text(text.replace(marker, broken, 1))
    for batch_bytes in (1 << 30, 512):
        read = _streamed(bad, batch_bytes)
        assert read.quarantine.select("line", "raw").rows() == [(None, broken)]
        assert read.quarantine["error"][0].startswith("history[5]: invalid JSON")
        expected = _streamed(good, 1 << 30).messages
        assert read.messages.height == expected.height - 1
    stats, _ = run_ours(tmp_path / "bad.traj", tmp_path / "out", batch_bytes=512)
    assert stats["malformed_lines"] == 1


@pytest.mark.parametrize("whole_bytes", [0, 1 << 20])
def test_an_element_that_is_no_message_is_quarantined_with_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", whole_bytes)
    path = _write(
        tmp_path / "session_s.json",
        {"session_id": "s", "platform": "cli", "messages": [*CHAT, {"role": "user", "content": {"a": 1}}]},
    )
    read = _streamed(path, 256)
    assert read.quarantine["error"].to_list()[0].startswith("messages[2]: a JSON object that is not a hermes")
    assert read.messages["text"].to_list() == [CHAT[0]["content"], LONG]


@pytest.mark.parametrize("batch_bytes", [1 << 30, 256])
@pytest.mark.parametrize("whole_bytes", [0, 1 << 20])
def test_a_document_cut_in_its_list_keeps_the_elements_before_the_cut(
    tmp_path: Path, batch_bytes: int, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", whole_bytes)
    whole = json.dumps(_run(6), indent=2)
    path = tmp_path / "cut.traj"
    path.write_text(whole[: whole.index("Step 4")])  # inside the history's 10th element
    found = detect(path)
    assert found.reader is not None
    assert found.reader.format == "openai"
    read = _streamed(path, batch_bytes)
    assert read.quarantine.select("line", "error").rows() == [
        (None, "history[10]: the document ends before the list's closing ]")
    ]
    assert read.messages.height == 10
    assert read.messages["session_id"].unique().to_list() == [f"{path}[0]"]


@pytest.mark.parametrize("whole_bytes", [0, 1 << 20])
def test_a_document_cut_after_its_list_reads_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", whole_bytes)
    whole = json.dumps({**_run(3), "info": {"exit_status": "submitted", "submission": "diff"}}, indent=2)
    path = tmp_path / "cut.traj"
    path.write_text(whole[: whole.index("submission")])
    read = _streamed(path, 256)
    assert read.quarantine["error"].to_list() == ["the document ends before its closing }"]
    assert read.messages.height == len(_run(3)["history"])


@pytest.mark.parametrize("whole_bytes", [0, 1 << 20])
def test_more_after_the_document_is_quarantined_and_the_document_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", whole_bytes)
    path = tmp_path / "two.json"
    document = {"session_id": "s", "platform": "cli", "messages": CHAT}
    path.write_text(json.dumps(document, indent=2) + "\n" + json.dumps(document, indent=2))
    read = _streamed(path, 1 << 30)
    assert read.quarantine["error"].to_list() == ["more after the document's closing }"]
    assert read.messages.height == 2


@pytest.mark.parametrize("whole_bytes", [0, 1 << 20])
def test_an_empty_list_reads_as_no_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", whole_bytes)
    path = _write(tmp_path / "session_e.json", {"session_id": "e", "platform": "cli", "messages": []})
    found = detect(path)
    assert found.reader is not None
    assert found.reader.format == "hermes_session"
    read = _streamed(path, 1 << 30)
    assert read.messages.is_empty()
    assert read.quarantine.is_empty()


def test_a_document_split_across_batch_boundaries_stays_in_one_batch(tmp_path: Path) -> None:
    """Its pieces are read a piece at a time in one batch: the conversation is paired whole;
    the files around it are batched as before."""
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"id": "a", "conversations": [{"from": "human", "value": "Q"}]})
    )
    path = _write(tmp_path / "run.traj", _run(40))
    (tmp_path / "z.jsonl").write_text(
        json.dumps({"id": "z", "conversations": [{"from": "human", "value": "Q"}]})
    )
    found = [detect(tmp_path / name) for name in ("a.jsonl", "run.traj", "z.jsonl")]
    split = list(batches(found, 1024))
    in_pieces = [len([piece for piece in batch if piece.path == path]) for batch in split]
    assert max(in_pieces) > 20  # many pieces ...
    assert sum(count > 0 for count in in_pieces) == 1  # ... in one batch
    whole = pl.concat([read_batch(batch).messages for batch in batches(found, 1 << 30)])
    assert_frame_equal(pl.concat([read_batch(batch).messages for batch in split]), whole)
    _, small = run_ours(tmp_path, tmp_path / "out-small", batch_bytes=1024)
    _, large = run_ours(tmp_path, tmp_path / "out-large")
    assert small == large
    assert [record["terse"] for record in small if record["source"] == f"{path}[0]"] == ["Fix the bug."]


@pytest.mark.parametrize("compress", [gzip.compress, lambda data: zstandard.ZstdCompressor().compress(data)])
def test_a_compressed_document_reads_as_its_content(
    tmp_path: Path, compress: Callable[[bytes], bytes]
) -> None:
    plain = _write(tmp_path / "run.traj", _run(20))
    packed = tmp_path / "packed.traj"
    packed.write_bytes(compress(plain.read_bytes()))
    found = detect(packed)
    assert found.compression is not None
    expected = _streamed(plain, 1 << 30).messages.drop("file", "session_id")
    for batch_bytes in (1 << 30, 512):
        read = _streamed(packed, batch_bytes)
        assert read.quarantine.is_empty()
        assert_frame_equal(read.messages.drop("file", "session_id"), expected)


def test_a_compressed_document_that_breaks_keeps_what_came_before(tmp_path: Path) -> None:
    packed = tmp_path / "run.traj.gz"
    data = gzip.compress(json.dumps(_run(4000), indent=2).encode())
    packed.write_bytes(data[: len(data) * 2 // 3])
    read = _streamed(packed, 4096)
    (error,) = read.quarantine["error"].to_list()
    assert error.startswith("cannot decompress: ")
    assert "history[" in error
    assert 0 < read.messages.height < len(_run(4000)["history"])


def test_a_compact_document_on_one_line_is_read_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document written on one line is a JSON line too: read as one when it is short, as a
    document, in pieces, when a line of it would be held whole."""
    path = _write(tmp_path / "run.traj", _run(30), indent=None)
    found = detect(path)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == ("openai", "lines")
    monkeypatch.setattr(discover, "FIRST_LINE_BYTES", 1000)
    found = detect(path)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == ("openai", "document")
    assert len(next(batches([found], 1024))) > 10
    assert_frame_equal(_streamed(path, 1024).messages, _whole(found.reader, path.read_text(), str(path)))


def test_a_document_sniffed_from_its_outline_is_what_it_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is told the same when every value over 100 bytes is walked, pruned or
    sampled, as a document of hundreds of MB is."""
    files = [path for path in sorted(REALDATA.rglob("*")) if path.suffix in (".json", ".traj", ".jsonl")]
    before = {path: detect(path) for path in files}
    monkeypatch.setattr(
        discover, "SNIFF_RULES", discover.SNIFF_RULES.__class__(value_bytes=100, sample=20, sample_bytes=100)
    )
    monkeypatch.setattr(discover, "FIRST_LINE_BYTES", 0)  # every first line told from its outline
    for path in files:
        found = detect(path)
        assert (found.reader, found.unrecognized, found.damaged) == (
            before[path].reader,
            before[path].unrecognized,
            before[path].damaged,
        ), path


def test_a_first_record_longer_than_a_line_is_parsed_is_told_from_its_outline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(discover, "FIRST_LINE_BYTES", 1000)
    huge = {
        "id": "s1",
        "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": LONG * 100}],
    }
    lines = tmp_path / "sessions.jsonl"
    lines.write_text(json.dumps(huge) + "\n" + json.dumps(huge | {"id": "s2"}) + "\n")
    found = detect(lines)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == ("sharegpt", "lines")
    one = tmp_path / "one.json"
    one.write_text(
        json.dumps({"session_id": "h", "platform": "cli", "messages": [_message("user", LONG * 100)]})
    )
    found = detect(one)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == ("hermes_session", "document")


def test_a_sharegpt_session_document_takes_the_exact_path_where_the_typed_decoder_cannot(
    tmp_path: Path,
) -> None:
    """What the reference's parser reads: a number as id is its JSON text, a null model stays
    null, a message whose ``from`` is no string has no role, one whose ``value`` is no string
    no text, and one that is no object is skipped; each counted as the whole document was."""
    document = {
        "id": 7,
        "model": None,
        "conversations": [
            {"from": "human", "value": "Q?"},
            {"from": 3, "value": "A"},
            {"from": "gpt", "value": 5},
            "not a message",
            {"from": "gpt", "value": LONG},
        ],
    }
    path = _write(tmp_path / "session.json", document)
    for batch_bytes in (1 << 30, 64):
        read = _streamed(path, batch_bytes)
        assert read.quarantine.is_empty()
        assert read.skipped_messages == 2
        assert read.messages.select("session_id", "model", "turn", "role_raw", "text").rows() == [
            ("7", None, 0, "human", "Q?"),
            ("7", None, 1, None, "A"),
            ("7", None, 2, "gpt", None),
            ("7", None, 4, "gpt", LONG),
        ]


@pytest.mark.parametrize("whole_bytes", [0, 1 << 20])
def test_a_small_document_is_read_whole_and_walked_only_where_it_does_not_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    """Read whole (with the other small documents of its batch) or walked, a document gives
    the same; one that does not decode whole is walked, and what breaks it quarantined
    alone."""
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", whole_bytes)
    good = _write(tmp_path / "good.traj", _run(6))
    text = good.read_text()
    marker = json.dumps(_run(6)["history"][5], indent=2).replace("\n", "\n    ")
    bad = tmp_path / "bad.traj"
    bad.write_text(text.replace(marker, '{"role": "user" "content": "no colon"}', 1))
    hermes_log = _write(tmp_path / "session_h.json", INLINE["hermes"][1])
    found = [detect(path) for path in (good, bad, hermes_log)]
    (batch,) = batches(found, 1 << 30)
    assert [piece.spans is None for piece in batch] == [bool(whole_bytes)] * 3  # read whole, or walked
    read = read_batch(batch)
    assert [error.split(":")[0] for error in read.quarantine["error"]] == ["history[5]"]
    by_file = read.messages.partition_by("file", as_dict=True)
    assert by_file[(str(bad),)].height == by_file[(str(good),)].height - 1
    assert found[0].reader is not None
    assert_frame_equal(by_file[(str(good),)], _whole(found[0].reader, text, str(good)))


@pytest.mark.parametrize("whole_bytes", [0, 1 << 20])
def test_an_element_that_is_not_utf8_is_quarantined_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_bytes: int
) -> None:
    monkeypatch.setattr(discover, "WHOLE_DOCUMENT_BYTES", whole_bytes)
    document = {"session_id": "u", "platform": "cli", "messages": [*CHAT, _message("user", "caf\u00e9?")]}
    path = tmp_path / "session_u.json"
    path.write_bytes(
        json.dumps(document, indent=2, ensure_ascii=False).encode().replace("caf\u00e9".encode(), b"caf\xe9")
    )
    read = _streamed(path, 1 << 30)
    assert read.quarantine["error"].to_list() == ["messages[2]: invalid UTF-8: invalid continuation byte"]
    assert read.messages["text"].to_list() == [CHAT[0]["content"], LONG]


def test_an_array_element_that_is_not_utf8_is_quarantined_once(tmp_path: Path) -> None:
    """It was quarantined twice: as not UTF-8, then, left blank, as not JSON."""
    path = tmp_path / "sessions.json"
    good = json.dumps({"id": "b", "conversations": [{"from": "human", "value": "Q?"}]}).encode()
    path.write_bytes(
        b'[{"id": "a", "conversations": [{"from": "human", "value": "caf\xe9"}]}, ' + good + b"]"
    )
    read = read_batch(next(batches([detect(path)], 1 << 30)))
    assert read.quarantine["error"].to_list() == ["array element 0: invalid UTF-8: invalid continuation byte"]
    assert read.messages["session_id"].to_list() == ["b"]


def test_the_read_passes_over_what_detection_found_large_unless_the_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detection walks past a large value to see what follows it; the read then seeks past
    it, if the file is still the one detection walked, and reads through it if not."""
    monkeypatch.setattr(discover, "SNIFF_RULES", dataclasses.replace(discover.SNIFF_RULES, value_bytes=1000))
    monkeypatch.setattr(discover, "SNIFF_VALUE_BYTES", 1000)  # walked, not parsed whole
    monkeypatch.setattr(discover, "HEADER_VALUE_BYTES", 1000)
    document = _run(8) | {"trajectory": [{"observation": 'output ] } \\ " , ' * 300}] * 4}
    path = _write(tmp_path / "run.traj", document)
    found = detect(path)
    assert found.passed_over is not None
    text = path.read_bytes()
    for start, end in found.passed_over.spans:  # the trajectory, and the history (sampled)
        assert (text[start : start + 1], text[end - 1 : end]) == (b"[", b"]")
    keys = [text[:start].rstrip().rsplit(b"\n", 1)[-1].strip() for start, _ in found.passed_over.spans]
    assert keys == [b'"trajectory":', b'"history":']
    assert found.reader is not None
    jumps: list[int] = []
    jump = json_array._Window.jump

    def counted(window: json_array._Window, to: int, depth: int) -> None:
        jumps.append(to)
        jump(window, to, depth)

    monkeypatch.setattr(json_array._Window, "jump", counted)
    read = read_batch(next(batches([found], 4096)))
    assert jumps == [found.passed_over.spans[0][1]]  # past the trajectory (the history is read)
    assert_frame_equal(read.messages, _whole(found.reader, text.decode(), str(path)))
    changed = document | {"trajectory": [{"observation": "x"}]}  # what was there is elsewhere now
    _write(path, changed)
    os.utime(path, ns=(0, 0))
    read = read_batch(next(batches([found], 4096)))  # with what detection found before
    assert jumps == [found.passed_over.spans[0][1]]  # none more
    assert read.quarantine.is_empty()
    assert_frame_equal(read.messages, _whole(found.reader, path.read_text(), str(path)))
