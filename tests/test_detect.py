"""Finding files, detecting their layout from content, compressed and damaged inputs."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import zstandard

from jobs import pairs_job
from jobs.discover import SNIFF_BYTES, Detected, batches, detect, find_session_files, is_session_file
from jobs.pairs_job import PairRules, run
from jobs.read_batch import read_batch, read_files
from tests.conftest import REALDATA, run_ours

LONG = " ".join(["word"] * 40)
SESSION = {
    "id": "s1",
    "model": "m",
    "conversations": [{"from": "human", "value": "Why?"}, {"from": "gpt", "value": LONG}],
}


def jsonl(*records: object) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def test_directories_pick_up_every_session_suffix_and_its_compressed_forms(tmp_path: Path) -> None:
    names = [
        "a.jsonl",
        "b.json",
        "c.jsonl.gz",
        "d.json.zst",
        "e.db",
        "f.sqlite",
        "g.traj",
        "notes.txt",
        "h.csv",
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    found = [path.name for path in find_session_files([tmp_path])]
    assert found == ["a.jsonl", "b.json", "c.jsonl.gz", "d.json.zst", "e.db", "f.sqlite", "g.traj"]


def test_a_folder_is_listed_in_the_order_of_sorted_rglob(tmp_path: Path) -> None:
    """The listing walks the folder itself (``os.scandir``): the files come in the
    reference's order (``sorted(rglob)``: by path parts, so that a folder's files sort
    where its name does, before a longer name it begins), links to files are files, links
    to folders are not walked, hidden names are listed. A link to nothing is listed, as
    ``rglob`` lists it, so that the run reports it (it cannot be read)."""
    for relative in [
        "b/2.jsonl",
        "b/10.jsonl",
        "b.jsonl",
        "b-c/1.jsonl",
        "B/1.jsonl",
        "a b/x.json",
        ".hidden/y.jsonl",
        "deep/er/and/deeper/z.jsonl",
        "deep/er.jsonl",
        "b/notes.txt",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"{}\n")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "b.jsonl")
    (tmp_path / "linked-folder").symlink_to(tmp_path / "deep", target_is_directory=True)
    (tmp_path / "broken.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (tmp_path / "folder.jsonl").mkdir()

    rglob_order = sorted(path for path in tmp_path.rglob("*") if is_session_file(path) and not path.is_dir())
    listed = find_session_files([tmp_path])
    assert list(listed) == rglob_order
    assert [str(path).removeprefix(f"{tmp_path}/") for path in listed] == [
        ".hidden/y.jsonl",
        "B/1.jsonl",
        "a b/x.json",
        "b/10.jsonl",
        "b/2.jsonl",
        "b-c/1.jsonl",
        "b.jsonl",
        "broken.jsonl",
        "deep/er/and/deeper/z.jsonl",
        "deep/er.jsonl",
        "link.jsonl",
    ]


OTHER = SESSION | {
    "id": "s2",
    "conversations": [{"from": "human", "value": "How?"}, {"from": "gpt", "value": LONG}],
}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("lines.jsonl", jsonl(SESSION, OTHER)),
        ("array.json", json.dumps([SESSION, OTHER]).encode()),
        ("pretty.json", json.dumps([SESSION, OTHER], indent=2).encode()),
        # the name does not decide: JSON lines in a .json file, an array in a .jsonl file
        ("lines.json", jsonl(SESSION, OTHER)),
        ("array.jsonl", json.dumps([SESSION, OTHER]).encode()),
        ("bom.jsonl", b"\xef\xbb\xbf" + jsonl(SESSION, OTHER)),
        ("crlf.jsonl", jsonl(SESSION, OTHER).replace(b"\n", b"\r\n")),
    ],
)
def test_sharegpt_in_every_shape_gives_the_same_pairs(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    _, pairs = run([path], PairRules(), None, sample_size=10)
    assert [(pair["source"], pair["terse"], pair["format"]) for pair in pairs] == [
        ("s1", "Why?", "sharegpt"),
        ("s2", "How?", "sharegpt"),
    ]


def test_a_single_session_object_in_a_file(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(SESSION, indent=2))
    messages = read_files([path]).messages
    assert messages.select("session_id", "conversation", "line", "role").rows() == [
        ("s1", 0, None, "user"),
        ("s1", 0, None, "assistant"),
    ]


def test_sessions_without_an_id_are_named_after_their_place(tmp_path: Path) -> None:
    """Hermes trajectory files carry no id: a session is ``file:line`` (``file[i]`` in an array)."""
    trajectory = {
        "conversations": SESSION["conversations"],
        "timestamp": "2026-01-01T00:00:00",
        "completed": True,
    }
    lines, array = tmp_path / "trajectory_samples.jsonl", tmp_path / "batch.json"
    lines.write_bytes(jsonl(trajectory, trajectory))
    array.write_text(json.dumps([trajectory, trajectory]))
    ids = read_files([lines, array]).messages.unique("session_id", maintain_order=True)["session_id"]
    assert ids.to_list() == [f"{lines}:1", f"{lines}:2", f"{array}[0]", f"{array}[1]"]


@pytest.mark.parametrize("compress", [gzip.compress, lambda data: zstandard.ZstdCompressor().compress(data)])
def test_compressed_files_read_as_their_content(tmp_path: Path, compress: Callable[[bytes], bytes]) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(
        jsonl(
            SESSION,
            SESSION
            | {
                "id": "s2",
                "conversations": [
                    {"from": "human", "value": "How?"},
                    {"from": "gpt", "value": LONG + " more"},
                ],
            },
        )
    )
    packed = tmp_path / "packed.jsonl.x"  # the first bytes tell the compression, not the name
    packed.write_bytes(compress(plain.read_bytes()))
    expected = read_files([plain]).messages.drop("file")
    assert read_files([packed]).messages.drop("file").equals(expected)
    # and in pieces smaller than the file
    _, pairs = run([packed], PairRules(), None, batch_bytes=64, sample_size=10)
    assert [pair["terse"] for pair in pairs] == ["Why?", "How?"]


@pytest.mark.parametrize("max_bytes", [1 << 20, 700, 64])
@pytest.mark.parametrize("members", [1, 3])
def test_a_gzip_file_reads_as_its_whole_content_in_one_piece_or_many(
    tmp_path: Path, max_bytes: int, members: int
) -> None:
    """Inflated whole by the thread that reads its batch when it fits a batch (one of
    several members read there as a stream), as a stream as batches are made otherwise
    (more content than a batch holds): the same bytes either way."""
    content = jsonl(*[SESSION | {"id": f"s{i}"} for i in range(6)])
    third = len(content) // 3
    parts = [content] if members == 1 else [content[:third], content[third : 2 * third], content[2 * third :]]
    path = tmp_path / "sessions.jsonl.gz"
    path.write_bytes(b"".join(gzip.compress(part) for part in parts))
    made = [piece for batch in batches([detect(path)], max_bytes) for piece in batch]
    if max_bytes == 1 << 20:  # no content waits with the batch
        assert [(piece.deferred, piece.data, piece.length) for piece in made] == [(True, b"", len(parts[-1]))]
    pieces = [loaded for piece in made for loaded in piece.loaded()]
    assert b"".join(piece.data for piece in pieces) == content
    assert [piece.ends_file for piece in pieces][-1]
    if max_bytes >= len(content) and members == 1:
        assert len(pieces) == 1
    lines_before = 0
    for piece in pieces:
        assert piece.first_line == lines_before + 1
        lines_before += piece.data.count(b"\n")


def test_a_small_gzip_file_cut_in_its_trailer_keeps_every_line(tmp_path: Path) -> None:
    """A gzip file whose last bytes are not its trailer (here, the size read from them is
    0) is inflated whole by the thread that reads its batch, fails to, and is read as a
    stream there: every line, and the break after them quarantined."""
    sessions = [SESSION | {"id": f"s{i}"} for i in range(50)]
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl(*sessions))[:-8] + bytes(4))
    (made,) = [piece for batch in batches([detect(path)], 1 << 20) for piece in batch]
    assert made.deferred
    stats, pairs = run([path], PairRules(), None, sample_size=100)
    assert [pair["source"] for pair in pairs] == ["s0"]  # the same pair 50 times: one kept
    assert stats.as_dict()["raw_pairs"] == 50
    (where,) = read_files([path]).quarantine.select("line", "error").rows()
    assert where[0] == 51
    assert where[1].startswith("cannot decompress past this line")


def test_a_zstd_file_cut_at_a_line_end_is_found_cut(tmp_path: Path) -> None:
    """Cut between two blocks of a frame, where a line ends: python-zstandard's stream
    reader ended there quietly, and the file read as whole."""
    packed = io.BytesIO()
    writer = zstandard.ZstdCompressor().stream_writer(packed, closefd=False)
    ends = []
    for i in range(20):
        writer.write(jsonl(SESSION | {"id": f"s{i}"}))
        writer.flush(zstandard.FLUSH_BLOCK)
        ends.append(packed.tell())
    writer.flush(zstandard.FLUSH_FRAME)
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(packed.getvalue()[: ends[9]])
    stats, _ = run([path], PairRules(), None)
    assert stats.as_dict()["raw_pairs"] == 10
    (where,) = read_files([path]).quarantine.select("line", "error").rows()
    assert where == (
        11,
        "cannot decompress past this line: the file ends inside a zstd frame: it is cut short",
    )


def _content_before_the_cut(packed: bytes, compression: str) -> bytes:
    """What a compressed file cut short holds before the cut, inflated in one call."""
    if compression == "gzip":
        return zlib.decompressobj(wbits=zlib.MAX_WBITS | 16).decompress(packed)
    return zstandard.ZstdDecompressor().decompressobj().decompress(packed)


COMPRESSIONS = {"gzip": gzip.compress, "zstd": lambda data: zstandard.ZstdCompressor().compress(data)}


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
@pytest.mark.parametrize("batch_bytes", [4096, 100_000, 40 * 1024 * 1024])
def test_a_truncated_archive_is_quarantined_and_what_came_before_is_kept(
    tmp_path: Path, compression: str, batch_bytes: int
) -> None:
    """Every line whole before the cut is read, whatever the batch size (a read that met
    the cut lost what it had inflated: with 40 MB batches, the whole file); the line the
    cut goes through is quarantined with its number, and why."""
    sessions = [
        SESSION
        | {
            "id": f"s{i}",
            "conversations": [
                {"from": "human", "value": f"Question {i}?"},
                {"from": "gpt", "value": f"{LONG} {i}"},
            ],
        }
        for i in range(2000)
    ]
    packed = COMPRESSIONS[compression](jsonl(*sessions))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    whole_lines = _content_before_the_cut(packed[: len(packed) // 2], compression).count(b"\n")
    assert 0 < whole_lines < 2000
    stats, pairs = run([path], PairRules(), None, batch_bytes=batch_bytes, sample_size=5000)
    assert [pair["source"] for pair in pairs] == [f"s{i}" for i in range(whole_lines)]
    assert stats.malformed_lines == 1
    read = read_files([path])
    (where,) = read.quarantine.select("line", "error").rows()
    assert where[0] == whole_lines + 1
    assert where[1].startswith("cannot decompress past this line")


@pytest.mark.parametrize("batch_bytes", [4096, 40 * 1024 * 1024])
def test_a_truncated_array_keeps_every_element_before_the_cut(tmp_path: Path, batch_bytes: int) -> None:
    sessions = [SESSION | {"id": f"s{i}", "conversations": [*SESSION["conversations"]]} for i in range(3000)]
    for i, session in enumerate(sessions):
        session["conversations"] = [
            {"from": "human", "value": f"Question {i}?"},
            {"from": "gpt", "value": LONG},
        ]
    packed = gzip.compress(json.dumps(sessions, indent=2).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(packed[: len(packed) // 2])
    content = _content_before_the_cut(packed[: len(packed) // 2], "gzip")
    whole_elements = content.count(b"\n  }")  # each element's closing brace, indented
    assert 0 < whole_elements < 3000
    stats, pairs = run([path], PairRules(), None, batch_bytes=batch_bytes, sample_size=5000)
    assert [pair["source"] for pair in pairs] == [f"s{i}" for i in range(whole_elements)]
    assert stats.malformed_lines == 1


def test_a_file_cut_before_its_first_line_ends_is_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(json.dumps([SESSION] * 50).encode())[:60])
    found = detect(path)
    assert found.reader is None
    assert found.damaged is not None
    assert found.damaged.startswith("cannot decompress")


def test_unrecognized_files_are_all_counted_and_the_first_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of other JSON files (an agent's settings or todo lists, by the hundred
    thousand) does not make stats.json as long: the first ones are listed with the reason
    (1,000; 2 here), and all are counted."""
    monkeypatch.setattr(pairs_job, "LISTED_UNRECOGNIZED_FILES", 2)
    for index in range(5):
        (tmp_path / f"todo-{index}.json").write_text(json.dumps([{"content": "a todo", "status": "done"}]))
    (tmp_path / "zz-good.jsonl").write_bytes(jsonl(SESSION))
    stats, _ = run(find_session_files([tmp_path]), PairRules(), None)
    figures = stats.as_dict()
    assert figures["unrecognized_files_count"] == 5
    listed = [Path(entry["file"]).name for entry in figures["unrecognized_files"]]
    assert listed == ["todo-0.json", "todo-1.json"]
    assert figures["files_scanned"] == 6


def test_unrecognized_files_are_reported_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text(json.dumps({"k1": {"session_id": "x", "created_at": 1}}))
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "text.jsonl").write_text("hello\n")
    (tmp_path / "good.jsonl").write_bytes(jsonl(SESSION))
    stats, _ = run(find_session_files([tmp_path]), PairRules(), None)
    figures = stats.as_dict()
    reasons = {Path(entry["file"]).name: entry["reason"] for entry in figures["unrecognized_files"]}
    assert reasons == {
        "empty.jsonl": "empty file",
        "index.json": "a JSON document, keys k1: no reader knows this layout",
        "text.jsonl": "not JSON: it starts with neither { nor [",
    }
    assert figures["formats"] == {
        "sharegpt": {
            "files": 1,
            "sessions": 1,
            "messages": 2,
            "pairs": 1,
            "responses": {"each": 1, "final": 0},
        }
    }


def test_format_option_reads_what_detection_would_not(tmp_path: Path) -> None:
    path = tmp_path / "late.jsonl"
    path.write_bytes(jsonl(*[{"id": f"empty{i}"} for i in range(10)], SESSION))  # no conversations up front
    assert detect(path).unrecognized == "JSON lines with keys id: no reader knows this layout"
    _, pairs = run([path], PairRules(), None, forced_format="sharegpt", sample_size=5)
    assert [pair["source"] for pair in pairs] == ["s1"]


def test_strip_think_removes_inline_thinking(tmp_path: Path) -> None:
    path = tmp_path / "think.jsonl"
    answer = "<think>\nLet me reason about it at length first.\n</think>\n" + LONG
    path.write_bytes(
        jsonl(
            {
                "id": "t",
                "conversations": [{"from": "human", "value": "Why?"}, {"from": "gpt", "value": answer}],
            }
        )
    )
    _, kept = run([path], PairRules(), None, sample_size=5)
    assert kept[0]["rich"] == answer  # off by default: ShareGPT as the reference reads it
    _, stripped = run([path], PairRules(strip_think=True), None, sample_size=5)
    assert stripped[0]["rich"] == LONG


def test_real_sharegpt_documents() -> None:
    glaive = REALDATA / "sharegpt/llamafactory__glaive_toolcall_en_demo.json"
    messages = read_files([glaive]).messages
    calls = messages.filter(pl.col("role_raw") == "function_call")
    assert calls.height > 0
    assert calls["has_tool_calls"].all()
    assert calls["text"].is_null().all()  # a call is not something the assistant said
    assert messages.filter(pl.col("role_raw") == "observation")["role"].unique().to_list() == ["tool"]


def test_a_file_gone_before_its_batch_is_read_is_quarantined(tmp_path: Path) -> None:
    """A whole file larger than detection reads is read when its batch is, not when
    batches are made (it does not wait in memory for a thread)."""
    gone, kept = tmp_path / "gone.jsonl", tmp_path / "kept.jsonl"
    session = {
        "id": "s",
        "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yes " * 20_000}],
    }
    for path in (gone, kept):
        path.write_text(json.dumps(session) + "\n")
        assert path.stat().st_size > SNIFF_BYTES
    (batch,) = batches([detect(gone), detect(kept)], 1 << 20)
    gone.unlink()
    read = read_batch(batch)
    assert read.quarantine.rows() == [(str(gone), 1, "cannot read the file: No such file or directory", "")]
    assert read.messages["file"].unique().to_list() == [str(kept)]


def test_a_small_file_is_read_once_by_detection(tmp_path: Path) -> None:
    """A file shorter than what detection reads is not opened again: its piece is the bytes
    detection read (a folder of thousands of small session files costs one open each)."""
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps(SESSION) + "\n" + json.dumps(OTHER) + "\n")
    found = detect(small)
    assert found.content == small.read_bytes()
    (batch,) = batches([found], 1 << 20)
    small.unlink()  # read already: nothing is quarantined
    read = read_batch(batch)
    assert read.quarantine.is_empty()
    assert read.messages["session_id"].unique(maintain_order=True).to_list() == ["s1", "s2"]


def test_a_file_that_cannot_be_opened_is_quarantined_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No permission (root reads anything, so the denial is simulated): the file is a
    damaged file with the reason, and the run goes on with the others."""
    archive = tmp_path / "archive"
    archive.mkdir()
    locked, readable = archive / "locked.jsonl", archive / "readable.jsonl"
    answer = " ".join(["The token rotates every night, and the deploy picks up the new one."] * 3)
    for path in (locked, readable):
        session = {
            "id": path.stem,
            "conversations": [
                {"from": "human", "value": "How is it rotated?"},
                {"from": "gpt", "value": answer},
            ],
        }
        path.write_text(json.dumps(session) + "\n")
    real_open, real_os_open = Path.open, os.open

    def deny_locked(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    def deny_locked_descriptor(path: Any, *args: Any, **kwargs: Any) -> int:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_os_open(path, *args, **kwargs)

    # a small file is opened as a descriptor (``detect``), a larger one as a Path
    monkeypatch.setattr(Path, "open", deny_locked)
    monkeypatch.setattr(os, "open", deny_locked_descriptor)
    stats, records = run_ours(archive, tmp_path / "out")
    assert [record["source"] for record in records] == ["readable"]
    assert stats["damaged_files"] == 1
    quarantine = pl.read_ndjson(tmp_path / "out" / "quarantine.jsonl")
    assert quarantine.select("file", "error").rows() == [
        (str(locked), "cannot read the file: Permission denied")
    ]


# --- archive shapes: long first lines, large arrays --------------------------------


def _session(number: int, answer: str = LONG) -> dict[str, object]:
    return {
        "id": f"s{number}",
        "model": "m",
        "conversations": [
            {"from": "human", "value": f"Question {number}?"},
            {"from": "gpt", "value": answer},
        ],
    }


def test_a_first_line_of_64_mb_is_read_whole(tmp_path: Path) -> None:
    """A session with a huge answer first in its file was taken for a broken document,
    and every session in the file was lost."""
    huge = " ".join(["word"] * (16 << 20))  # 64 MB
    path = tmp_path / "sessions.jsonl"
    path.write_bytes(jsonl(_session(1, huge), _session(2)))
    found = detect(path)
    assert found.reader is not None
    assert (found.reader.format, found.reader.layout) == ("sharegpt", "lines")
    stats, records = run_ours(tmp_path, tmp_path / "out")
    assert [record["source"] for record in records] == ["s1", "s2"]
    assert len(records[0]["rich"]) == len(huge)
    assert stats["malformed_lines"] == 0
    assert stats["damaged_files"] == 0


def _pairs_by_session(out: Path) -> list[tuple[str, str]]:
    pairs = pl.read_parquet(out / "pairs.parquet")
    return list(zip(pairs["terse"], pairs["rich"], strict=True))


@pytest.mark.parametrize("indent", [None, 2])
def test_an_array_split_across_batches_gives_what_the_same_sessions_give_as_lines(
    tmp_path: Path, indent: int | None
) -> None:
    escapes = 'quote " and \\ backslash, ] } [ { '  # what the scan must see through
    sessions = [_session(number, f"{LONG} {number} {escapes * (number % 3)}") for number in range(200)]
    (tmp_path / "array").mkdir()
    array = tmp_path / "array" / "sessions.json"
    array.write_text(json.dumps(sessions, indent=indent))
    (tmp_path / "lines").mkdir()
    (tmp_path / "lines" / "sessions.jsonl").write_bytes(jsonl(*sessions))
    found = detect(array)
    assert found.reader is not None
    assert found.reader.layout == "array"
    pieces = [piece for batch in batches([found], 4096) for piece in batch]
    assert len(pieces) > 10  # a few elements a piece
    assert sum(piece.ends_file for piece in pieces) == 1
    stats, records = run_ours(tmp_path / "array", tmp_path / "out-array", batch_bytes=4096)
    _, whole = run_ours(tmp_path / "array", tmp_path / "out-whole")
    assert records == whole
    assert [record["source"] for record in records[:2]] == ["s0", "s1"]
    run_ours(tmp_path / "lines", tmp_path / "out-lines")
    assert _pairs_by_session(tmp_path / "out-array") == _pairs_by_session(tmp_path / "out-lines")
    ledger = pl.read_parquet(tmp_path / "out-array" / "candidates.parquet")
    assert ledger["conversation"].to_list() == list(range(200))
    assert ledger["line"].null_count() == 200
    assert stats["sessions"] == 200


def test_a_broken_element_is_quarantined_with_its_position_and_the_rest_read(tmp_path: Path) -> None:
    good = [json.dumps(_session(number)) for number in range(3)]
    broken = '{"id": "bad", "conversations": [{"from": "human" "value": "missing colon"}]}'
    path = tmp_path / "sessions.json"
    path.write_text("[\n" + ",\n".join([good[0], broken, good[1], good[2]]) + "\n]\n")
    stats, records = run_ours(tmp_path, tmp_path / "out", batch_bytes=64)
    assert [record["source"] for record in records] == ["s0", "s1", "s2"]
    quarantine = pl.read_ndjson(tmp_path / "out" / "quarantine.jsonl")
    assert quarantine["line"].to_list() == [None]
    assert quarantine["error"][0].startswith("array element 1: invalid JSON")
    assert quarantine["raw"].to_list() == [broken]
    assert stats["malformed_lines"] == 1


@pytest.mark.parametrize("batch_bytes", [None, 256])
def test_an_array_cut_short_keeps_the_elements_before_the_cut(
    tmp_path: Path, batch_bytes: int | None
) -> None:
    """Read whole, or in pieces re-read from the file: the last piece is read from where
    it is, not from the file's start."""
    whole = json.dumps([_session(number) for number in range(30)])
    path = tmp_path / "sessions.json"
    path.write_text(whole[: whole.rindex('"conversations"')])  # cut inside the last session
    _, records = run_ours(tmp_path, tmp_path / "out", batch_bytes=batch_bytes)
    assert [record["source"] for record in records] == [f"s{number}" for number in range(29)]
    quarantine = pl.read_ndjson(tmp_path / "out" / "quarantine.jsonl")
    assert quarantine.select("line", "error").rows() == [
        (None, "array element 29: the array ends before its closing ]")
    ]


def test_an_empty_array_is_listed_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("[ ]\n")
    (tmp_path / "one.json").write_text(json.dumps([SESSION]))
    stats, records = run_ours(tmp_path, tmp_path / "out")
    assert [record["source"] for record in records] == ["s1"]
    assert stats["unrecognized_files"] == [
        {"file": str(tmp_path / "empty.json"), "reason": "an empty JSON array"}
    ]


def _trajectory(turns: int) -> list[dict[str, Any]]:
    """An OpenHands trajectory: a task, then per turn a command, its output and a reply."""
    events: list[dict[str, Any]] = [
        {"id": 0, "source": "user", "action": "message", "args": {"content": "Fix the failing test, please."}}
    ]
    for turn in range(turns):
        events += [
            {"source": "agent", "action": "run", "args": {"command": "pytest", "thought": f"Run {turn}."}},
            {"source": "environment", "observation": "run", "content": f"output ] }} {turn} " * 20},
            {"source": "agent", "action": "message", "args": {"content": f"{LONG} turn {turn}"}},
            {"source": "user", "action": "message", "args": {"content": f"And now step {turn}?"}},
        ]
    return events


@pytest.mark.parametrize("shape", ["openhands", "openai"])
def test_a_conversation_array_is_read_a_piece_at_a_time_and_paired_whole(tmp_path: Path, shape: str) -> None:
    """An array of one conversation's events or messages is read in pieces of elements,
    which stay in one batch, so that it gives what it gives read whole, and the files
    around it are batched as before."""
    if shape == "openhands":
        events: list[Any] = _trajectory(60)
    else:
        events = [{"role": "user", "content": "Fix the failing test, please."}]
        for turn in range(60):
            events += [
                {"role": "assistant", "content": f"{LONG} turn {turn}"},
                {"role": "user", "content": f"And now step {turn}?"},
            ]
    path = tmp_path / "trajectory.json"
    path.write_text(json.dumps(events, indent=1))
    before, after = tmp_path / "a.jsonl", tmp_path / "z.jsonl"
    before.write_bytes(jsonl(_session(1)))
    after.write_bytes(jsonl(_session(2)))
    found = [detect(before), detect(path), detect(after)]
    assert found[1].reader is not None
    assert (found[1].reader.format, found[1].reader.layout) == (shape, "events")
    split = list(batches(found, 2048))
    in_pieces = [len([piece for piece in batch if piece.path == path]) for batch in split]
    assert max(in_pieces) > 10  # many pieces ...
    assert sum(count > 0 for count in in_pieces) == 1  # ... in one batch
    whole = read_files([before, path, after]).messages
    assert pl.concat([read_batch(batch).messages for batch in split]).equals(whole)
    assert whole.filter(pl.col("file") == str(path))["turn"].to_list() == list(
        range(whole.height - 4)
    )  # 2 a session around it
    _, records = run_ours(tmp_path, tmp_path / "out", batch_bytes=2048)
    assert [record["terse"] for record in records][1:4] == [
        "Fix the failing test, please.",
        "And now step 0?",
        "And now step 1?",
    ]


def test_a_broken_event_is_quarantined_with_its_position_and_the_rest_paired(tmp_path: Path) -> None:
    events = [json.dumps(event) for event in _trajectory(3)]
    broken = '{"source": "agent" "action": "message"}'
    path = tmp_path / "trajectory.json"
    path.write_text("[\n" + ",\n".join([*events[:4], broken, *events[4:]]) + "\n]\n")
    stats, records = run_ours(tmp_path, tmp_path / "out", batch_bytes=512)
    assert [record["terse"] for record in records] == [
        "Fix the failing test, please.",
        "And now step 0?",
        "And now step 1?",
    ]
    quarantine = pl.read_ndjson(tmp_path / "out" / "quarantine.jsonl")
    assert quarantine.select("line", "raw").rows() == [(None, broken)]
    assert quarantine["error"][0].startswith("array element 4: invalid JSON")
    assert stats["malformed_lines"] == 1


@pytest.mark.parametrize("first_line", ["cut short", "an array", "a string"])
@pytest.mark.parametrize(
    "source",
    [
        "claude_code/claude-code-viewer__5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl",
        "codex_rollout/agent-sessions__codex_large.jsonl",
        "sharegpt",
    ],
)
def test_a_file_whose_first_line_is_broken_is_read_but_that_line(
    source: str, first_line: str, tmp_path: Path
) -> None:
    """A JSON lines file whose first line was cut short (a copy interrupted, a line
    written half), or is a JSON value of another kind (``[1, 2]``, a string), is read as
    JSON lines from its next lines, which decide its layout; the first line is
    quarantined: the same pairs as the file without it."""
    if source == "sharegpt":
        content = jsonl(*({**SESSION, "id": f"s{index}"} for index in range(3)))
    else:
        content = (REALDATA / source).read_bytes()
    first, rest = content.split(b"\n", 1)
    stray = {"cut short": first[: len(first) // 2], "an array": b"[1, 2]", "a string": b'"a note"'}[
        first_line
    ]
    damaged, without_it = tmp_path / "damaged", tmp_path / "without"
    damaged.mkdir()
    without_it.mkdir()
    (damaged / "session.jsonl").write_bytes(stray + b"\n" + rest)
    (without_it / "session.jsonl").write_bytes(rest)
    stats, records = run_ours(damaged, tmp_path / "out-damaged", min_ratio=0, min_words=1)
    _, expected = run_ours(without_it, tmp_path / "out-without", min_ratio=0, min_words=1)
    assert records == expected
    assert expected
    assert stats["malformed_lines"] == 1
    assert stats["unrecognized_files"] == []
    quarantine = pl.read_ndjson(tmp_path / "out-damaged" / "quarantine.jsonl")
    assert quarantine["line"].to_list() == [1]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("first_line", ["cut short", "an array", "a string"])
def test_a_broken_first_line_before_a_line_longer_than_the_head_loses_nothing_else(
    first_line: str, compress: bool, tmp_path: Path
) -> None:
    """When the head holds the stray first line and only part of the next one (a session
    with a long answer), detection reads on to that line's end and decides from it: the
    file is read as JSON lines, only its first line quarantined."""
    long_answer = " ".join(["word"] * (SNIFF_BYTES // 2))
    sessions = [
        {
            **SESSION,
            "id": f"s{index}",
            "conversations": [
                {"from": "human", "value": f"Question {index}?"},
                {"from": "gpt", "value": long_answer if index == 0 else " ".join(["word"] * 40)},
            ],
        }
        for index in range(3)
    ]
    stray = {"cut short": b'{"id": "s", "conversations": [{"from": "hum', "an array": b"[1, 2]"}.get(
        first_line, b'"a note"'
    )
    content = stray + b"\n" + jsonl(*sessions)
    assert content.find(b"\n", len(stray) + 1) > SNIFF_BYTES
    (tmp_path / "in").mkdir()
    name = "sessions.jsonl.gz" if compress else "sessions.jsonl"
    (tmp_path / "in" / name).write_bytes(gzip.compress(content) if compress else content)
    stats, records = run_ours(tmp_path / "in", tmp_path / "out")
    assert [record["terse"] for record in records] == ["Question 0?", "Question 1?", "Question 2?"]
    assert stats["malformed_lines"] == 1
    assert stats["damaged_files"] == 0
    assert pl.read_ndjson(tmp_path / "out" / "quarantine.jsonl")["line"].to_list() == [1]


def test_a_pretty_printed_document_is_not_taken_for_lines_after_a_broken_first_one(tmp_path: Path) -> None:
    """The first line of a pretty-printed document (``{``) is not a whole record either:
    its next lines (``"messages": [``, ``],``) are not objects, so it stays a document."""
    answer = " ".join(["word"] * 40)
    document = {
        "messages": [{"role": "user", "content": "Pretty?"}, {"role": "assistant", "content": answer}]
    }
    text = json.dumps(document, indent=2).replace('{\n      "role"', '{"role"')
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "doc.json").write_text(text)
    stats, records = run_ours(tmp_path / "in", tmp_path / "out")
    assert [record["terse"] for record in records] == ["Pretty?"]
    assert stats["malformed_lines"] == 0


def test_an_array_of_an_element_a_line_stays_an_array(tmp_path: Path) -> None:
    """Elements of a top-level array each on a line of their own end with commas: those
    lines are not objects, so the file is read as the array it is, not as JSON lines
    after a stray first line."""
    answer = " ".join(["word"] * 40)
    sessions = [
        {
            **SESSION,
            "id": f"s{index}",
            "conversations": [
                {"from": "human", "value": f"Question {index}?"},
                {"from": "gpt", "value": answer},
            ],
        }
        for index in range(3)
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "sessions.json").write_text(
        "[\n" + ",\n".join(json.dumps(s) for s in sessions) + "\n]\n"
    )
    stats, records = run_ours(tmp_path / "in", tmp_path / "out")
    assert [record["terse"] for record in records] == ["Question 0?", "Question 1?", "Question 2?"]
    assert stats["malformed_lines"] == 0


def test_with_content_keeps_every_other_field() -> None:
    """``Detected.with_content`` is ``dataclasses.replace`` written out (it is on the path of
    every small file): a field added to ``Detected`` must be added there too."""
    values: dict[str, Any] = {field.name: object() for field in dataclasses.fields(Detected)}
    found = Detected(**values)
    assert found.with_content(b"{}") == dataclasses.replace(found, content=b"{}")
