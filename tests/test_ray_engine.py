"""``--engine ray``: the same outputs as the local engine, on every input, and after a worker dies.

One local Ray instance (2 CPUs) serves the whole module: starting one takes some 10 s,
and a driver's first Ray Data job some 6 s more while its workers import what the tasks
need. Each run here compares the Ray engine's outputs with the local engine's on the
same input: ``pairs.jsonl``, ``stats.json`` and the quarantine byte for byte, and
``pairs.parquet`` and ``candidates.parquet`` row for row.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs import ray_engine
from jobs.discover import batches as batches_of
from jobs.discover import detect, find_session_files
from jobs.outputs import Outputs
from jobs.pairs_job import PairRules, run
from jobs.ray_engine import (
    FINISH_ON_ENV,
    HOLD_FIRST_TASK_ENV,
    HOLD_STAGE_ENV,
    MAX_BATCHES_PER_TASK,
    RayEngine,
    Recut,
    _Describer,
    _finishing_where,
    _task_count,
)
from tests.conftest import (
    ARCHIVE_GENERATOR,
    CORRUPT_DATABASE,
    EXAMPLE_ARCHIVE,
    FOUND,
    REALDATA,
    compound,
    local_ray_instance,
    write_compressed_copies,
)
from tests.test_reader_hermes import make_state_db

# Ray Data copies its context's deprecated fields each time a dataset starts
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

#: Rules that keep short answers too: more pairs, and more duplicates across batches.
LOOSE = ("--min-words", "1", "--min-ratio", "0")
LOOSE_RULES = PairRules(min_words=1, min_ratio=0)
#: Single-file outputs compared byte for byte.
FILES = ("pairs.jsonl", "stats.json", "quarantine.jsonl")


@pytest.fixture(scope="module", autouse=True)
def ray_instance() -> Iterator[None]:
    with local_ray_instance():
        yield


@pytest.fixture(params=["driver", "tasks"])
def finish_on(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both places the engine finishes batches: the driver (a small cluster's, as this
    2-CPU instance's) and the tasks (from ``FINISH_ON_TASKS_FROM_CPUS``)."""
    where = str(request.param)
    monkeypatch.setenv(FINISH_ON_ENV, where)
    return where


def run_engine(
    inputs: list[Path],
    out: Path,
    engine: RayEngine | None,
    *,
    rules: PairRules = LOOSE_RULES,
    batch_bytes: int,
) -> None:
    files = find_session_files(inputs)
    with Outputs(out, emit_messages=True) as outputs:
        stats, _ = run(files, rules, outputs, batch_bytes=batch_bytes, engine=engine)
        outputs.commit(stats.as_dict())


def assert_same_outputs(
    local: Path, on_ray: Path, *, messages: bool = True, damaged_files: bool = False
) -> None:
    """The same outputs. With ``damaged_files``, the quarantine's lines in any order: the
    local engine writes a damaged file's line as its detection thread finds the file, and
    a batch's lines as its writer writes the batch, so that their order depends on the
    threads (the Ray engine detects every file first, and writes those lines first)."""
    for name in FILES:
        if damaged_files and name == "quarantine.jsonl":
            lines = sorted((on_ray / name).read_bytes().splitlines())
            assert lines == sorted((local / name).read_bytes().splitlines())
            continue
        assert (on_ray / name).read_bytes() == (local / name).read_bytes(), name
    for name in ("pairs", "candidates", *(("messages",) if messages else ())):
        assert_frame_equal(
            pl.read_parquet(on_ray / f"{name}.parquet"), pl.read_parquet(local / f"{name}.parquet")
        )


def both_engines(tmp_path: Path, inputs: list[Path], *, batch_bytes: int) -> tuple[Path, Path]:
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    run_engine(inputs, local, None, batch_bytes=batch_bytes)
    engine = RayEngine()
    run_engine(inputs, on_ray, engine, batch_bytes=batch_bytes)
    figures = engine.figures
    assert figures.finished_by == os.environ.get(FINISH_ON_ENV, "driver")
    finished_by_tasks = sum(figures.finished_per_node.values())
    assert finished_by_tasks == (figures.batches if figures.finished_by == "tasks" else 0)
    return local, on_ray


@pytest.mark.usefixtures("finish_on")
def test_the_example_archive_through_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(local)) == 0
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(on_ray), "--engine", "ray") == 0
    assert_same_outputs(local, on_ray, messages=False)


@pytest.mark.usefixtures("finish_on")
def test_partitioned_outputs_and_a_dry_run(tmp_path: Path) -> None:
    """``--partition-by model`` (a Parquet file per model, appended to batch after batch
    when tasks finish the batches) and a dry run (figures and sample pairs, nothing
    written) give the local engine's, in 8 KB batches."""
    files = find_session_files([EXAMPLE_ARCHIVE])
    for name, engine in (("local", None), ("ray", RayEngine())):
        with Outputs(tmp_path / name, partition_by="model") as outputs:
            stats, _ = run(files, LOOSE_RULES, outputs, batch_bytes=8192, engine=engine)
            outputs.commit(stats.as_dict())
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    parts = sorted(path.relative_to(local) for path in local.rglob("*.parquet"))
    assert len(parts) > 2  # pairs and candidates, more than one model
    assert parts == sorted(path.relative_to(on_ray) for path in on_ray.rglob("*.parquet"))
    for part in parts:
        assert_frame_equal(pl.read_parquet(on_ray / part), pl.read_parquet(local / part))
    for name in FILES:
        assert (on_ray / name).read_bytes() == (local / name).read_bytes(), name
    dry = [
        run(files, LOOSE_RULES, None, batch_bytes=8192, engine=engine, sample_size=5)
        for engine in (None, RayEngine())
    ]
    (local_stats, local_samples), (ray_stats, ray_samples) = dry
    assert ray_stats.as_dict() == local_stats.as_dict()
    assert len(local_samples) == 5
    assert ray_samples == local_samples


@pytest.mark.usefixtures("finish_on")
def test_the_example_archive_in_many_batches(tmp_path: Path) -> None:
    """4 KB batches: dozens of tasks, and pairs repeated across them."""
    local, on_ray = both_engines(tmp_path, [EXAMPLE_ARCHIVE], batch_bytes=4096)
    stats = json.loads((local / "stats.json").read_text())
    assert stats["duplicates_removed"] > 0
    assert_same_outputs(local, on_ray)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive generator's ShareGPT files (2 MB, a third of them gzip, bad lines, sessions
    saved twice), with one file of them repeated whole: duplicates across files."""
    root = tmp_path_factory.mktemp("generated")
    options = ["--mb", "2", "--files", "6", "--seed", "17", "--bad-share", "0.1", "--gzip-share", "0.34"]
    subprocess.run([sys.executable, str(ARCHIVE_GENERATOR), str(root), *options], check=True)
    (root / "GENERATED.json").unlink(missing_ok=True)
    first = sorted(root.rglob("*.jsonl"))[0]
    shutil.copy(first, root / "zz-repeated.jsonl")
    return root


def test_the_describer_forgets_each_file_after_its_last_piece(generated: Path) -> None:
    """The driver describes the batches of every file of the run: what it keeps of a file
    (how it was detected, its pieces so far, its next offset) goes with the file's last
    piece, so that it does not grow with an archive of millions of files."""
    describer = _Describer()
    found = (detect(path) for path in find_session_files([generated, EXAMPLE_ARCHIVE]))
    described = [
        describer.describe(seq, batch)
        for seq, batch in enumerate(batches_of(describer.detected(found), 64 * 1024))
    ]
    assert len(described) > 1
    assert any(isinstance(piece, Recut) for task in described for piece in task.pieces)
    assert describer.found == {}
    assert not describer._pieces
    assert not describer._next_offset


@pytest.mark.usefixtures("finish_on")
def test_a_generated_archive_cut_into_pieces(tmp_path: Path, generated: Path) -> None:
    """Batches of 64 KB: files of whole lines cut into pieces (read by the task from their
    offsets), gzip files cut after decompression (cut again by the task)."""
    local, on_ray = both_engines(tmp_path, [generated], batch_bytes=64 * 1024)
    stats = json.loads((local / "stats.json").read_text())
    assert stats["malformed_lines"] > 0
    assert stats["duplicates_removed"] > 0
    assert_same_outputs(local, on_ray)


@pytest.fixture(scope="module")
def every_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every layout of tests/data, compressed copies, a Hermes state.db, a corrupt one and a
    gzip file cut short."""
    root = tmp_path_factory.mktemp("layouts")
    shutil.copytree(REALDATA, root / "realdata")
    shutil.copytree(FOUND, root / "found")
    hermes = root / "hermes"
    hermes.mkdir()
    make_state_db(hermes / "state.db")
    (hermes / "broken.db").write_bytes(CORRUPT_DATABASE)
    packed = root / "packed"
    write_compressed_copies(packed)
    lines = REALDATA / "openai_messages" / "llamafactory__reason_tool_use_demo_50.jsonl"
    whole = gzip.compress(lines.read_bytes())
    (packed / "cut-short.jsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])
    return root


@pytest.mark.usefixtures("finish_on")
@pytest.mark.parametrize("batch_bytes", [40 << 20, 32 * 1024])
def test_every_layout(tmp_path: Path, every_layout: Path, batch_bytes: int) -> None:
    """The real transcripts of every layout, in one batch and in batches of 32 KB (arrays and
    documents cut into pieces of elements, a database into ranges of sessions)."""
    local, on_ray = both_engines(tmp_path, [every_layout], batch_bytes=batch_bytes)
    stats = json.loads((local / "stats.json").read_text())
    assert stats["damaged_files"] > 0
    assert len(stats["formats"]) >= 8
    assert_same_outputs(local, on_ray, damaged_files=True)


def grow(archive: Path) -> None:
    """New lines at the end of a file, a new file, another file rewritten, all dated in the
    past (a file modified just before a run would be read again whatever the engine)."""
    files = sorted(archive.rglob("*.jsonl"))
    lines = files[1].read_bytes().splitlines(keepends=True)
    with files[0].open("ab") as grown:
        grown.writelines(lines[:5])  # pairs seen before: duplicates of the earlier run's
    (archive / "new.jsonl").write_bytes(
        b"".join(lines[5:20]) + files[2].read_bytes()[:4000].rsplit(b"\n", 1)[0]
    )
    files[3].write_bytes(files[3].read_bytes()[::-1].split(b"\n", 1)[1][::-1])  # its last line gone
    for path in archive.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))


def dataset_files(out: Path) -> dict[str, bytes]:
    """Every file of an incremental dataset but the state (which names files by random ids)."""
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and ".incremental" not in path.parts and path.suffix != ".parquet"
    }


@pytest.mark.usefixtures("finish_on")
def test_incremental_runs_switching_engines(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, generated: Path
) -> None:
    """Two incremental runs over a growing archive: local then ray, and ray then local, write
    the dataset that local then local writes; the second run reads the first's state."""
    archive = tmp_path / "archive"
    shutil.copytree(generated, archive)
    for path in archive.rglob("*"):
        os.utime(path, (1_600_000_000, 1_600_000_000))
    sequences = {
        "local-local": ("local", "local"),
        "local-ray": ("local", "ray"),
        "ray-local": ("ray", "local"),
    }

    def pairs(out: Path, engine: str) -> int:
        return compound(
            monkeypatch, "pairs", str(archive), "--out", str(out), "--incremental", *LOOSE, "--engine", engine
        )

    for name, (first, _) in sequences.items():
        assert pairs(tmp_path / name, first) == 0
    grow(archive)
    for name, (_, second) in sequences.items():
        assert pairs(tmp_path / name, second) == 0
    reference = tmp_path / "local-local"
    second_run = json.loads((reference / "runs" / "part-000002.json").read_text())
    assert second_run["incremental"]["files"]["grown"] == 1
    assert second_run["duplicates_removed"] > 0  # the grown lines' pairs were written by run 1
    for name in ("local-ray", "ray-local"):
        assert dataset_files(tmp_path / name) == dataset_files(reference), name
        for folder in ("pairs", "candidates"):
            for part in sorted((reference / folder).glob("*.parquet")):
                assert_frame_equal(
                    pl.read_parquet(tmp_path / name / folder / part.name), pl.read_parquet(part)
                )


@pytest.mark.parametrize(
    ("finish_on", "stage"), [("driver", "prepare"), ("tasks", "prepare"), ("tasks", "finish")]
)
def test_a_worker_killed_mid_task(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, generated: Path, finish_on: str, stage: str
) -> None:
    """SIGKILL to the worker running the first batch's task (preparing it, or finishing
    it): Ray runs the task again, on another worker, and the outputs are the local
    engine's."""
    hold = tmp_path / "hold"
    hold.mkdir()
    monkeypatch.setenv(HOLD_FIRST_TASK_ENV, str(hold))
    monkeypatch.setenv(HOLD_STAGE_ENV, stage)
    monkeypatch.setenv(FINISH_ON_ENV, finish_on)
    engine = RayEngine()
    failures: list[BaseException] = []

    def run_on_ray() -> None:
        try:
            run_engine([generated], tmp_path / "ray", engine, batch_bytes=256 * 1024)
        except BaseException as error:  # re-raised by the test's thread
            failures.append(error)

    job = threading.Thread(target=run_on_ray)
    job.start()
    marker = hold / "first-task.pid"
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the pid is written whole
    pid = int(marker.read_text())
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    job.join(timeout=300)
    assert not job.is_alive()
    assert not failures, failures
    run_engine([generated], tmp_path / "local", None, batch_bytes=256 * 1024)
    assert_same_outputs(tmp_path / "local", tmp_path / "ray")
    assert not (hold / "release").exists()  # the task did not go on: it was killed


def test_small_clusters_finish_on_the_driver_larger_ones_on_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FINISH_ON_ENV, raising=False)
    assert [_finishing_where(cpus) for cpus in (1, 2, 3, 4, 64)] == ["driver"] * 3 + ["tasks"] * 2
    monkeypatch.setenv(FINISH_ON_ENV, "driver")
    assert _finishing_where(64) == "driver"


def test_batches_are_shared_out_a_run_a_cpu_and_at_most_the_cap_a_run() -> None:
    """A task per CPU, so that each goes from batch to batch without Ray Data's round trip;
    more where a run would exceed the cap (a cluster that grows gets work); never more
    tasks than batches."""
    assert _task_count(25, 2) == 2  # the 1 GB bench archive on this machine
    assert _task_count(3, 8) == 3
    assert _task_count(1, 1) == 1
    for batches, cpus in [(1000, 4), (25_000, 64), (40, 1), (17, 1)]:
        tasks = _task_count(batches, cpus)
        assert tasks >= min(batches, cpus)
        assert -(-batches // tasks) <= MAX_BATCHES_PER_TASK  # the longest run
    assert _task_count(25_000, 64) == 1563


def test_without_ray_installed_the_engine_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ray_engine, "ray_installed", lambda: False)
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(out), "--engine", "ray") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "uv sync --extra ray" in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--engine", "spark"), "must be one of local, ray"),
        (("--ray-address", "127.0.0.1:6379"), "only with --engine ray"),
    ],
)
def test_bad_engine_options_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    message: str,
) -> None:
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(tmp_path / "out"), *options) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert message in error


def test_an_address_nobody_answers_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """In a process of its own: the module's instance is this process's Ray, which the
    engine would use whatever the address."""
    command = [
        sys.executable,
        "-m",
        "jobs.cli",
        "pairs",
        str(EXAMPLE_ARCHIVE),
        "--out",
        str(tmp_path / "out"),
        "--engine",
        "ray",
        "--ray-address",
        "127.0.0.1:9",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in done.stderr
