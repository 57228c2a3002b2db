"""The command line as a user meets it: outputs, bad input, bad arguments, atomic commit."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from jobs import read_batch
from jobs.outputs import ABANDONED_AFTER_S, SCRATCH_PREFIX, Outputs, _exchange
from tests.conftest import EXAMPLE_ARCHIVE, compound, run_ours

GOLDEN = Path(__file__).parent / "golden"


def test_example_archive_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(tmp_path)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "candidates.parquet",
        "pairs.jsonl",
        "pairs.parquet",
        "quarantine.jsonl",
        "stats.json",
    ]
    stats = json.loads((tmp_path / "stats.json").read_text())
    for entry in stats["files_without_pairs"]:
        entry["file"] = Path(entry["file"]).relative_to(EXAMPLE_ARCHIVE).as_posix()
    assert stats == json.loads((GOLDEN / "example_stats.json").read_text())
    # the demo's point: agents' real answers, not only ShareGPT, give pairs
    agent_layouts = {
        name for name, figures in stats["formats"].items() if figures["pairs"] and name != "sharegpt"
    }
    assert agent_layouts == {"claude_code", "codex", "hermes_gateway", "kimi_cli", "openhands"}
    rejected = {reason: count for reason, count in stats["rejected"].items() if reason != "not_final"}
    assert all(count > 0 for count in rejected.values()), "every filter rejects something"

    records = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().split("\n") if line]
    assert all(list(record) == ["terse", "rich", "source", "model"] for record in records)
    assert len(records) == stats["unique_pairs"]

    parquet = pl.read_parquet(tmp_path / "pairs.parquet")
    assert parquet.columns == [
        "pair_id", "terse", "rich", "source", "model", "format", "prompt_words", "response_words", "ratio",
        "file", "line", "conversation", "turn", "timestamp",
    ]  # fmt: skip
    assert parquet.select("terse", "rich", "source", "model").to_dicts() == records
    assert parquet["pair_id"].is_unique().all()
    assert pq.ParquetFile(tmp_path / "pairs.parquet").metadata.row_group(0).column(0).compression == "ZSTD"
    golden_pairs = pl.read_ndjson(GOLDEN / "example_pairs_head.jsonl")
    assert (
        parquet.head(golden_pairs.height).select(golden_pairs.columns).to_dicts() == golden_pairs.to_dicts()
    )


def test_the_example_archive_is_small_and_every_transcript_names_its_source() -> None:
    files = [path for path in EXAMPLE_ARCHIVE.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < 1_000_000
    agents = EXAMPLE_ARCHIVE / "agents"
    provenance = (agents / "PROVENANCE.md").read_text()
    for path in files:
        if agents in path.parents and path.name != "PROVENANCE.md":
            assert f"`{path.relative_to(agents).as_posix()}` is `" in provenance, path
    assert provenance.count("- source repo: https://github.com/") == provenance.count("` is `")


def test_bad_lines_are_quarantined_and_good_pairs_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE / "edge-cases"), "--out", str(tmp_path)) == 0
    quarantine = pl.read_ndjson(tmp_path / "quarantine.jsonl")
    edge = str(EXAMPLE_ARCHIVE / "edge-cases" / "edge.jsonl")
    assert quarantine.select("file", "line").rows() == [(edge, 17), (edge, 18), (edge, 19)]
    assert quarantine["error"].to_list() == [
        "invalid JSON: Unterminated string starting at: line 1 column 71 (char 70)",
        "a JSON array, not a session object",
        "conversations is a JSON null, not a list",
    ]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["malformed_lines"] == 3
    assert stats["skipped_messages"] == 2  # the message 7 and the value 42
    pairs = pl.read_parquet(tmp_path / "pairs.parquet")
    # the session with bad messages still gives its good pair
    survivor = pairs.filter(pl.col("source") == "edge-bad-messages")
    assert survivor.select("terse", "line", "turn").rows() == [("Which message survives?", 20, 3)]
    # a session without an id (null or missing) is named after its place; a null model
    # stays null (a missing one is "unknown", as in the reference)
    null_id = pairs.filter(pl.col("terse") == "Null id and model?")
    assert null_id.select("source", "model").rows() == [(f"{edge}:{null_id['line'][0]}", None)]
    no_id = pairs.filter(pl.col("terse") == "Who am I without an id?")
    assert no_id.select("source", "model").rows() == [(f"{edge}:{no_id['line'][0]}", "hermes-4-70b")]


def test_a_line_that_is_not_utf8_is_quarantined_and_the_lines_around_it_kept(tmp_path: Path) -> None:
    answer = " ".join(["word"] * 40)
    sessions = [
        {
            "id": f"s{i}",
            "conversations": [{"from": "human", "value": f"Why {i}?"}, {"from": "gpt", "value": answer}],
        }
        for i in range(2)
    ]
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "mixed.jsonl").write_bytes(
        json.dumps(sessions[0]).encode() + b"\n\xff\xfe not text\n" + json.dumps(sessions[1]).encode() + b"\n"
    )
    stats, records = run_ours(archive, tmp_path / "out")
    assert [record["terse"] for record in records] == ["Why 0?", "Why 1?"]
    quarantine = pl.read_ndjson(tmp_path / "out" / "quarantine.jsonl")
    assert quarantine.select("line", "error").rows() == [(2, "invalid UTF-8: invalid start byte")]
    assert stats["malformed_lines"] == 1


def test_dry_run_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(out), "--dry-run") == 0
    assert not out.exists()
    printed = capsys.readouterr().out
    assert printed.count("--- Source: ") == 3
    assert json.loads(printed[: printed.index("\n}") + 2])["unique_pairs"] > 0


def _half_written(root: Path) -> Path:
    """A run's scratch folder as a killed run leaves it: the ledger without its footer."""
    done = root / "done"
    run_ours(EXAMPLE_ARCHIVE, done)
    half = root / f"{SCRATCH_PREFIX}dead"
    half.mkdir()
    ledger = (done / "candidates.parquet").read_bytes()
    (half / "candidates.parquet").write_bytes(ledger[: len(ledger) // 2])
    return half


def _not_sessions(root: Path) -> Path:
    """Files named like sessions that are none: another program's JSON, text, a broken .gz."""
    folder = root / "not-sessions"
    folder.mkdir()
    (folder / "package.json").write_text('{"name": "x", "version": "1.0.0"}')
    (folder / "notes.jsonl").write_text("just some text\n")
    (folder / "old.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    return folder


#: A user's mistakes: (arguments, what the one line says). ``{tmp}`` is a scratch folder
#: holding ``a_file`` and an ``empty`` folder, and the other inputs named there.
MISTAKES = [
    (["pairs", "no/such/path", "--out", "{tmp}/out"], "no such file or directory: no/such/path"),
    (["pairs", "{tmp}/empty", "--out", "{tmp}/out"], "no session files"),
    (["pairs", "{archive}", "--min-ratio", "-1", "--out", "{tmp}/out"], "--min-ratio"),
    (
        ["pairs", "{archive}", "--min-ratio", "nan", "--out", "{tmp}/out"],
        "'--min-ratio': a finite number, not nan",
    ),
    (
        ["pairs", "{archive}", "--min-ratio", "inf", "--out", "{tmp}/out"],
        "'--min-ratio': a finite number, not inf",
    ),
    (["pairs", "{archive}", "--out", ""], "'--out': an empty path"),
    (["pairs", "{archive}", "--min-words", "abc", "--out", "{tmp}/out"], "--min-words"),
    (["pairs", "{archive}", "--parquet-compression", "gzip", "--out", "{tmp}/out"], "--parquet-compression"),
    (["pairs", "{archive}", "--scrub", "secrets,emails", "--out", "{tmp}/out"], "--scrub"),
    (["pairs", "{archive}", "--responses", "last", "--out", "{tmp}/out"], "--responses"),
    (["pairs", "--out", "{tmp}/out"], "Missing argument"),
    (["pears", "--out", "{tmp}/out"], "pears"),
    (["pairs", "{archive}", "--out", "{tmp}/a_file"], "'--out': {tmp}/a_file exists and is not a directory"),
    (["pairs", "{archive}", "--out", "{tmp}/a_file/out"], "'--out': cannot write into {tmp}/a_file/out"),
    (["pairs", "/dev/null", "--out", "{tmp}/out"], "not a regular file or a directory: /dev/null"),
    (["pairs", "{not_sessions}", "--out", "{tmp}/out"], "nothing to read: none of the 3 files"),
    (["pairs", "{not_sessions}", "--dry-run"], "(2 of no known layout, 1 damaged)"),
    (
        ["pairs", "{archive}/agents/claude_code", "--format", "codex", "--out", "{tmp}/out"],
        "'--format': codex does not fit the input: {archive}/agents/claude_code/",
    ),
    (["stats", "{half_written}"], "cannot be read (parquet: File out of specification"),
    (["stats", "{tmp}", "--ratios", "1,nan"], "'--ratios': expected non-negative numbers, got '1,nan'"),
    (["stats", "{tmp}"], "no candidates.parquet (or candidates/ directory) in {tmp}"),
]


@pytest.mark.parametrize(("args", "message"), MISTAKES)
def test_mistakes_get_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "a_file").write_text("keep me")
    (tmp_path / "empty").mkdir()
    places = {
        "tmp": tmp_path,
        "archive": EXAMPLE_ARCHIVE,
        "not_sessions": _not_sessions(tmp_path) if "{not_sessions}" in args else None,
        "half_written": _half_written(tmp_path) if "{half_written}" in args else None,
    }
    capsys.readouterr()
    assert compound(monkeypatch, *(a.format(**places) for a in args)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert message.format(**places) in err
    assert (tmp_path / "a_file").read_text() == "keep me"
    assert not (tmp_path / "out").exists()


def test_inputs_that_are_no_sessions_leave_the_previous_outputs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Pointed at the wrong folder, a nightly run must not replace good outputs with empty ones."""
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(out)) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    assert compound(monkeypatch, "pairs", str(_not_sessions(tmp_path)), "--out", str(out)) == 2
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_files_a_forced_format_does_not_fit_are_listed_not_read_as_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--format`` on a folder of several layouts: the files of that layout are read, the
    others are listed as unrecognized with the reason (read as it, they would give nothing)."""
    agents = EXAMPLE_ARCHIVE / "agents"
    assert compound(monkeypatch, "pairs", str(agents), "--format", "openai", "--out", str(tmp_path)) == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert list(stats["formats"]) == ["openai"]
    reasons = {Path(entry["file"]).parent.name: entry["reason"] for entry in stats["unrecognized_files"]}
    assert reasons["claude_code"].startswith("--format openai does not fit: JSON lines with keys")
    assert reasons["claude_code"].endswith(" is claude_code")
    assert reasons["openhands"].endswith(" is openhands")


@pytest.mark.parametrize(
    ("codec", "written"), [("snappy", "SNAPPY"), ("lz4", "LZ4"), ("none", "UNCOMPRESSED")]
)
def test_parquet_compression_changes_the_codec_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, codec: str, written: str
) -> None:
    default, chosen = tmp_path / "default", tmp_path / codec
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(default)) == 0
    assert (
        compound(
            monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(chosen), "--parquet-compression", codec
        )
        == 0
    )
    for name in ("pairs.parquet", "candidates.parquet"):
        metadata = pq.ParquetFile(chosen / name).metadata
        codecs = {
            metadata.row_group(group).column(column).compression
            for group in range(metadata.num_row_groups)
            for column in range(metadata.num_columns)
        }
        assert codecs == {written}, name
        assert_frame_equal(pl.read_parquet(chosen / name), pl.read_parquet(default / name))
    for name in ("pairs.jsonl", "quarantine.jsonl"):
        assert (chosen / name).read_bytes() == (default / name).read_bytes()


def test_the_installed_command_prints_its_summary_and_exits_0(tmp_path: Path) -> None:
    """``compound`` leaves without the interpreter's teardown: what it printed to a pipe
    must still arrive, and the outputs must be whole."""
    command = Path(sys.executable).parent / "compound"
    done = subprocess.run(
        [command, "pairs", EXAMPLE_ARCHIVE, "--out", tmp_path / "out"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert f"{stats['unique_pairs']:,}" in done.stdout
    assert done.stdout.rstrip().endswith("┘")  # the summary table, to its last line
    assert pl.read_parquet(tmp_path / "out" / "pairs.parquet").height == stats["unique_pairs"]
    failed = subprocess.run(
        [command, "pairs", tmp_path / "nothing"], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1


def test_a_run_that_dies_leaves_the_previous_outputs_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(EXAMPLE_ARCHIVE, archive)
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(archive), "--out", str(out)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def dies_after_writing_pairs(self: Outputs, rows: pl.DataFrame) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    # the first batch's pairs are already in the scratch files when the run dies
    monkeypatch.setattr(Outputs, "write_quarantine", dies_after_writing_pairs)
    assert compound(monkeypatch, "pairs", str(archive), "--out", str(out)) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no scratch left behind either


def test_a_rerun_puts_its_outputs_in_place_of_the_previous_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    one_file = tmp_path / "one"
    one_file.mkdir()
    shutil.copy(EXAMPLE_ARCHIVE / "2026-01" / "sessions_0000.jsonl", one_file)
    fresh, rerun = tmp_path / "fresh", tmp_path / "rerun"
    assert compound(monkeypatch, "pairs", str(one_file), "--out", str(fresh)) == 0
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(rerun)) == 0
    assert compound(monkeypatch, "pairs", str(one_file), "--out", str(rerun)) == 0
    assert sorted(p.name for p in rerun.iterdir()) == sorted(p.name for p in fresh.iterdir())  # no scratch
    for name in ("pairs.jsonl", "quarantine.jsonl"):
        assert (rerun / name).read_bytes() == (fresh / name).read_bytes()
    for name in ("pairs.parquet", "candidates.parquet"):
        assert_frame_equal(pl.read_parquet(rerun / name), pl.read_parquet(fresh / name))


@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux's")
def test_an_output_is_swapped_with_the_previous_one_in_one_step(tmp_path: Path) -> None:
    new, previous = tmp_path / "new", tmp_path / "previous"
    new.write_text("this run")
    previous.write_text("the run before")
    assert _exchange(new, previous)
    assert (previous.read_text(), new.read_text()) == ("this run", "the run before")
    assert not _exchange(new, tmp_path / "missing")  # then the commit renames instead
    assert new.read_text() == "the run before"


def test_records_decoded_in_small_chunks_give_the_same_outputs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Records are decoded a chunk at a time; bad lines (edge-cases) are still found
    among them, and nothing else changes."""
    whole, chunked = tmp_path / "whole", tmp_path / "chunked"
    run_ours(EXAMPLE_ARCHIVE, whole)
    monkeypatch.setattr(read_batch, "DECODE_CHUNK_BYTES", 500)  # a few records per chunk
    run_ours(EXAMPLE_ARCHIVE, chunked)
    for name in ("pairs.jsonl", "quarantine.jsonl", "stats.json"):
        assert (chunked / name).read_bytes() == (whole / name).read_bytes(), name
    for name in ("pairs.parquet", "candidates.parquet"):
        assert_frame_equal(pl.read_parquet(chunked / name), pl.read_parquet(whole / name))
    assert json.loads((chunked / "stats.json").read_text())["malformed_lines"] > 0


def test_small_batches_cut_files_into_pieces_without_changing_anything(tmp_path: Path) -> None:
    """Files are read in pieces of whole lines; line numbers and outputs stay the same."""
    whole, pieces = tmp_path / "whole", tmp_path / "pieces"
    run_ours(EXAMPLE_ARCHIVE, whole)
    run_ours(EXAMPLE_ARCHIVE, pieces, batch_bytes=4096)
    for name in ("pairs.jsonl", "quarantine.jsonl", "stats.json"):
        assert (pieces / name).read_bytes() == (whole / name).read_bytes(), name
    assert_frame_equal(pl.read_parquet(pieces / "pairs.parquet"), pl.read_parquet(whole / "pairs.parquet"))


def test_scratch_left_by_a_run_that_died_is_removed_by_the_next_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    abandoned, live, fresh = (out / f"{SCRATCH_PREFIX}{name}" for name in ("dead", "live", "new"))
    for folder in (abandoned, live, fresh):
        folder.mkdir(parents=True)
        (folder / "pairs.jsonl").write_text("partial\n")
    long_ago = time.time() - 2 * ABANDONED_AFTER_S
    for folder in (abandoned, live):
        os.utime(folder, (long_ago, long_ago))
    held = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a run still going holds
        assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(out)) == 0
    finally:
        os.close(held)
    assert not abandoned.exists()
    assert (live / "pairs.jsonl").exists()  # another run's, still going
    assert (fresh / "pairs.jsonl").exists()  # too new to tell
    assert f"removed {abandoned}: " in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "candidates.parquet", "pairs.jsonl", "pairs.parquet", "quarantine.jsonl", "stats.json",
    ]  # fmt: skip


def test_a_record_of_another_tool_with_a_list_for_its_type_is_not_a_crash(tmp_path: Path) -> None:
    """Detection looks at every file's first records: a ``type`` that is a list or an
    object (no reader's) is not a layout, and the file's sessions are read."""
    answer = " ".join(["word"] * 40)
    session = {"conversations": [{"from": "human", "value": "Why?"}, {"from": "gpt", "value": answer}]}
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "a.jsonl").write_text(json.dumps(session) + "\n" + json.dumps({"type": ["x"]}) + "\n")
    (archive / "b.jsonl").write_text(
        json.dumps({"type": {}, "payload": {}, "loglines": [{"type": {}}]}) + "\n"
    )
    stats, records = run_ours(archive, tmp_path / "out")
    assert [record["terse"] for record in records] == ["Why?"]
    assert (
        stats["malformed_lines"] == 0
    )  # a.jsonl's second line holds no conversation, as the reference reads it
    assert [entry["file"] for entry in stats["unrecognized_files"]] == [str(archive / "b.jsonl")]


def test_a_timestamp_out_of_range_is_null_not_a_crash(tmp_path: Path) -> None:
    answer = " ".join(["word"] * 40)
    archive = tmp_path / "archive"
    archive.mkdir()
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"Why {index}?"},
                {"role": "assistant", "content": answer, "timestamp": stamp},  # the pair's
            ]
        }
        for index, stamp in enumerate([1735000000000000000000, "NaN", -1e300, 1735000000123])
    ]
    (archive / "t.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    stats, records = run_ours(archive, tmp_path / "out")
    assert len(records) == 4
    assert stats["malformed_lines"] == 0
    pairs = pl.read_parquet(tmp_path / "out" / "pairs.parquet")
    assert pairs["timestamp"].dt.to_string("%Y-%m-%d %H:%M:%S%.3f").to_list() == [
        None,
        None,
        None,
        "2024-12-24 00:26:40.123",  # milliseconds, as JavaScript writes them
    ]


@pytest.mark.parametrize("incremental", [False, True])
def test_a_session_file_where_the_outputs_go_is_not_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], incremental: bool
) -> None:
    """An input named as an output in ``--out`` (``pairs.jsonl``), or lying in an
    incremental dataset's folders, would be replaced or removed by the run: a usage error,
    and the file is left as it was."""
    answer = " ".join(["word"] * 40)
    session = json.dumps(
        {"conversations": [{"from": "human", "value": "Why?"}, {"from": "gpt", "value": answer}]}
    )
    out = tmp_path / "out"
    session_file = out / ("pairs/session.jsonl" if incremental else "pairs.jsonl")
    session_file.parent.mkdir(parents=True)
    session_file.write_text(session + "\n")
    flags = ["--incremental"] if incremental else []
    for target in (out, session_file):
        assert compound(monkeypatch, "pairs", str(target), "--out", str(out), *flags) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1
        assert "is a session file where this run writes its outputs" in error
        assert session_file.read_text() == session + "\n"
    # an earlier run's outputs under an archive are not sessions: the run goes on
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "s.jsonl").write_text(session + "\n")
    for _ in range(2):
        assert compound(monkeypatch, "pairs", str(archive), "--out", str(archive / "out"), *flags) == 0


def test_ctrl_c_before_the_command_runs_is_one_line_and_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while typer builds the command from its options (before click turns a Ctrl-C
    into an abort) is an interrupted run as well, not a traceback and a death by SIGINT:
    a loaded machine put the signal of the test below there once."""
    import typer.main  # noqa: PLC0415

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(typer.main, "get_command", interrupted)
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(tmp_path / "out")) == 130
    assert capsys.readouterr().err == "compound: interrupted; previous outputs left as they were\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("after_s", [0.15, 0.3])
def test_ctrl_c_while_the_command_starts_is_one_line_and_exit_130(tmp_path: Path, after_s: float) -> None:
    """Ctrl-C during the half second the command spends importing its modules is an
    interrupted run (one line, exit 130), not an import's traceback."""
    started = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "compound"),
            "pairs",
            str(EXAMPLE_ARCHIVE),
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(after_s)
    started.send_signal(signal.SIGINT)
    _, error = started.communicate(timeout=60)
    assert started.returncode == 130
    assert error.decode() == "compound: interrupted; previous outputs left as they were\n"


@pytest.mark.parametrize("incremental", [False, True])
def test_a_link_to_nothing_and_a_pipe_in_an_archive_are_reported_not_passed_over(
    tmp_path: Path, incremental: bool
) -> None:
    """Session names that are not files to read (a link whose target is gone, a named
    pipe, which no one writes into) are damaged files in the quarantine, each with the
    reason; the run neither waits on the pipe nor leaves them out without a word."""
    answer = " ".join(["word"] * 40)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "good.jsonl").write_text(
        json.dumps({"conversations": [{"from": "human", "value": "Why?"}, {"from": "gpt", "value": answer}]})
        + "\n"
    )
    (archive / "gone.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    os.mkfifo(archive / "pipe.jsonl")
    (archive / "folder").mkdir()
    (archive / "folder.jsonl").symlink_to(archive / "folder")  # a link to a folder: not followed, as rglob
    out = tmp_path / "out"
    flags = ["--incremental"] if incremental else []
    finished = subprocess.run(
        [str(Path(sys.executable).parent / "compound"), "pairs", str(archive), "--out", str(out), *flags],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    quarantine = pl.concat(
        [pl.read_ndjson(path) for path in sorted(out.rglob("*.jsonl")) if "quarantine" in str(path)]
    )
    assert sorted(quarantine.select("file", "error").rows()) == [
        (str(archive / "gone.jsonl"), "cannot read the file: No such file or directory"),
        (str(archive / "pipe.jsonl"), "cannot read the file: not a regular file"),
    ]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["damaged_files"] == 2
    assert stats["unique_pairs"] == 1


def test_a_full_disk_is_one_line_exit_1_and_leaves_no_scratch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the disk fills, writing fails and so does closing the files (their buffers
    cannot be flushed either): the run says so in one line, exits 1, and removes its
    scratch folder, which would otherwise keep the disk full for the next run."""
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(out)) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def no_space(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    from jobs import outputs  # noqa: PLC0415

    monkeypatch.setattr(outputs.Outputs, "write_jsonl", no_space)
    monkeypatch.setattr(outputs._ParquetSink, "close", no_space)
    capsys.readouterr()
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(out)) == 1
    error = capsys.readouterr().err
    assert (
        error == "compound: error: [Errno 28] No space left on device; previous outputs left as they were\n"
    )
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # no scratch folder
