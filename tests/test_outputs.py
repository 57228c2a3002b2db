"""The analytics handoff: the candidate ledger, the Parquet dataset, `compound stats`, the notebook."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import duckdb
import nbformat
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient
from polars.testing import assert_frame_equal

from jobs.outputs import (
    CANDIDATES_SCHEMA,
    HIVE_NULL,
    MESSAGES_SCHEMA,
    PAIRS_SCHEMA,
    ROW_GROUP_ROWS,
    Outputs,
    scan_output,
)
from tests.conftest import ARCHIVE_GENERATOR, EXAMPLE_ARCHIVE, REPO, compound, run_ours
from transforms.analytics import threshold_sweep
from transforms.pairs import FILTER_ORDER

NOTEBOOK = REPO / "notebooks" / "ratio_distributions.ipynb"
read_notebook = cast(Callable[..., Any], nbformat.read)  # nbformat has no type hints
PAIR_COLUMNS = [
    "pair_id",
    "format",
    "model",
    "prompt_words",
    "response_words",
    "ratio",
    "file",
    "line",
    "turn",
]


@pytest.fixture(scope="module")
def generated_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 50 MB archive from the benchmark generator, malformed lines and duplicates included."""
    root = tmp_path_factory.mktemp("generated")
    subprocess.run(
        [sys.executable, str(ARCHIVE_GENERATOR), str(root), "--mb", "50", "--files", "6", "--seed", "3"],
        check=True,
    )
    return root


def duck(query: str, path: Path) -> list[tuple[Any, ...]]:
    """A DuckDB query over the Parquet file(s) at ``path``, given as its one parameter."""
    return duckdb.connect().execute(query, [str(path)]).fetchall()


def reconcile(out: Path) -> dict[str, Any]:
    """The ledger agrees with stats.json and pairs.parquet; returns stats.json."""
    stats: dict[str, Any] = json.loads((out / "stats.json").read_text())
    ledger = scan_output(out, "candidates").collect()
    pairs = scan_output(out, "pairs").collect()
    counts = dict(ledger["reject_reason"].drop_nulls().value_counts().iter_rows())
    assert {reason: counts.get(reason, 0) for reason in FILTER_ORDER} == stats["rejected"]
    kept = ledger.filter(pl.col("kept"))
    assert kept.height == stats["unique_pairs"] == pairs.height
    assert_frame_equal(kept.select(PAIR_COLUMNS), pairs.select(PAIR_COLUMNS))
    assert kept["failed"].list.len().max() == 0
    rejected = ledger.filter(~pl.col("kept"))
    assert (rejected["failed"].list.first() == rejected["reject_reason"]).all()
    assert ledger["pair_id"].is_null().sum() == rejected.height
    return stats


@pytest.mark.parametrize("archive", ["example", "generated"])
def test_the_ledger_reconciles_with_stats_and_pairs(
    archive: str, generated_archive: Path, tmp_path: Path
) -> None:
    target = EXAMPLE_ARCHIVE if archive == "example" else generated_archive
    stats, _ = run_ours(target, tmp_path)
    assert reconcile(tmp_path) == stats
    assert stats["unique_pairs"] > 100


@pytest.mark.parametrize(("min_ratio", "min_words"), [(1.5, 20), (0.0, 0), (0.5, 5), (3.0, 50), (10.0, 200)])
def test_the_sweep_counts_what_a_rerun_keeps(
    generated_archive: Path, tmp_path: Path, min_ratio: float, min_words: int
) -> None:
    run_ours(generated_archive, tmp_path / "default")
    sweep = threshold_sweep(scan_output(tmp_path / "default", "candidates"), (min_ratio,), (min_words,))
    rerun, _ = run_ours(generated_archive, tmp_path / "rerun", min_ratio=min_ratio, min_words=min_words)
    assert sweep["pairs"].to_list() == [rerun["unique_pairs"]]


def test_every_output_reads_back_with_pyarrow_and_duckdb(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert (
        compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(tmp_path), "--emit-messages") == 0
    )
    stats = json.loads((tmp_path / "stats.json").read_text())
    expected_rows = {
        "pairs": stats["unique_pairs"],
        "candidates": stats["unique_pairs"] + sum(stats["rejected"].values()),
        "messages": stats["messages"],
    }
    for name, schema in (
        ("pairs", PAIRS_SCHEMA),
        ("candidates", CANDIDATES_SCHEMA),
        ("messages", MESSAGES_SCHEMA),
    ):
        path = tmp_path / f"{name}.parquet"
        file = pq.ParquetFile(path)
        assert file.schema_arrow == schema, name
        assert file.metadata.num_rows == expected_rows[name]
        assert file.metadata.row_group(0).column(0).compression == "ZSTD"
        # min/max for the columns a reader filters on, and none for free text and ids
        columns = {
            column.path_in_schema: column
            for column in map(file.metadata.row_group(0).column, range(len(schema)))
        }
        assert columns["model"].is_stats_set, name
        for plain in ("pair_id", "terse", "rich", "text", "prompt_head", "dedup_key"):
            assert plain not in columns or not columns[plain].is_stats_set, (name, plain)
        described = duck("DESCRIBE SELECT * FROM read_parquet(?)", path)
        assert [column[0] for column in described] == schema.names
        assert duck("SELECT count(*) FROM read_parquet(?)", path) == [(expected_rows[name],)]
    described = duck("DESCRIBE SELECT * FROM read_parquet(?)", tmp_path / "candidates.parquet")
    types = {column[0]: column[1] for column in described}
    assert types["failed"] == "VARCHAR[]"
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    assert types["dedup_key"] == "UBIGINT"


def test_partition_by_model_writes_hive_directories(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plain, hive = tmp_path / "plain", tmp_path / "hive"
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(plain)) == 0
    args = ["pairs", str(EXAMPLE_ARCHIVE), "--out", str(hive), "--partition-by", "model", "--emit-messages"]
    assert compound(monkeypatch, *args) == 0
    assert sorted(p.name for p in hive.iterdir()) == [
        "candidates", "messages", "pairs", "pairs.jsonl", "quarantine.jsonl", "stats.json",
    ]  # fmt: skip
    models = sorted(p.name for p in (hive / "pairs").iterdir())
    flat_models = pl.read_parquet(plain / "pairs.parquet")["model"].unique().to_list()
    assert None in flat_models  # the edge cases hold a session whose model is null
    assert models == sorted(f"model={HIVE_NULL if m is None else quote(m, safe='')}" for m in flat_models)
    for name in ("pairs", "candidates"):
        flat = pl.read_parquet(plain / f"{name}.parquet")
        by_arrow = ds.dataset(hive / name, format="parquet", partitioning="hive").to_table()
        assert by_arrow.num_rows == flat.height
        query = "SELECT model, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL"
        by_duckdb = dict(duck(query, hive / name / "**" / "*.parquet"))
        assert by_duckdb == dict(flat.group_by("model").len().iter_rows())
    # a later unpartitioned run replaces the directories, it does not sit beside them
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(hive)) == 0
    assert sorted(p.name for p in hive.iterdir()) == [
        "candidates.parquet", "pairs.jsonl", "pairs.parquet", "quarantine.jsonl", "stats.json",
    ]  # fmt: skip


def test_small_batches_still_write_full_row_groups(tmp_path: Path) -> None:
    run_ours(EXAMPLE_ARCHIVE, tmp_path, batch_bytes=4096)  # dozens of batches
    for name in ("pairs", "candidates"):
        metadata = pq.ParquetFile(tmp_path / f"{name}.parquet").metadata
        assert metadata.num_row_groups == 1, name  # fewer rows than ROW_GROUP_ROWS: one group
        assert metadata.num_rows < ROW_GROUP_ROWS


def test_stats_command_prints_the_sweep_from_the_outputs_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "archive"
    run_ours(EXAMPLE_ARCHIVE, tmp_path / "out")
    capsys.readouterr()
    assert not archive.exists()  # nothing but the outputs is read
    args = ["stats", str(tmp_path / "out"), "--ratios", "1.5,3", "--words", "20,50", "--json"]
    assert compound(monkeypatch, *args) == 0
    report = json.loads(capsys.readouterr().out)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    sweep = {(row["min_ratio"], row["min_words"]): row["pairs"] for row in report["sweep"]}
    assert sweep[(1.5, 20)] == stats["unique_pairs"]
    assert sorted(sweep) == [(1.5, 20), (1.5, 50), (3.0, 20), (3.0, 50)]
    assert {row["outcome"]: row["candidates"] for row in report["reasons"]}["kept"] == stats["unique_pairs"]
    ratio = next(
        row for row in report["quantiles"] if row["population"] == "kept" and row["metric"] == "ratio"
    )
    assert ratio["p50"] > 1.5
    assert compound(monkeypatch, "stats", str(tmp_path / "out")) == 0
    assert "min_ratio" in capsys.readouterr().out
    assert compound(monkeypatch, "stats", str(tmp_path / "nothing")) == 2


def test_the_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It runs the job itself when the output directory is missing, then draws every figure."""
    monkeypatch.setenv("COMPOUND_OUT", str(tmp_path / "out"))
    notebook = read_notebook(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "committed with outputs"
    )
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    figures = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(figures) == 6
    assert (tmp_path / "out" / "candidates.parquet").exists()


def test_a_partitioned_rerun_leaves_only_its_own_partitions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The previous run's directories are replaced whole: a model it had and this run
    has not leaves no partition behind."""
    args = ["--out", str(tmp_path), "--partition-by", "model"]
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), *args) == 0
    before = {p.name for p in (tmp_path / "pairs").iterdir()}
    assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE / "2026-01"), *args) == 0
    after = {p.name for p in (tmp_path / "pairs").iterdir()}
    assert after < before
    rows = scan_output(tmp_path, "pairs").select(pl.len()).collect().item()
    assert rows == json.loads((tmp_path / "stats.json").read_text())["unique_pairs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "candidates", "pairs", "pairs.jsonl", "quarantine.jsonl", "stats.json",
    ]  # fmt: skip


def test_a_model_name_too_long_for_a_folder_is_cut_not_a_stop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--partition-by model`` with a model name longer than a folder's name may be
    (hundreds of characters): its folder holds the name cut, ``~`` and a hash, so that two
    such names stay apart; the run goes on, and pairs.jsonl has the whole name."""
    answer = " ".join(["word"] * 40)
    models = ["m" * 300, "m" * 299 + "n", "short"]
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "s.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "model": model,
                    "conversations": [
                        {"from": "human", "value": f"Why {index}?"},
                        {"from": "gpt", "value": answer},
                    ],
                }
            )
            + "\n"
            for index, model in enumerate(models)
        )
    )
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(archive), "--out", str(out), "--partition-by", "model") == 0
    folders = sorted(path.name for path in (out / "pairs").iterdir())
    assert len(folders) == 3
    assert all(len(name.encode()) <= 255 for name in folders)
    assert "model=short" in folders
    read = pl.scan_parquet(
        out / "pairs" / "**" / "*.parquet", hive_partitioning=True, hive_schema={"model": pl.String}
    )
    assert read.select(pl.col("model").str.len_bytes() <= 255).collect().to_series().all()
    assert sorted(
        json.loads(line)["model"] for line in (out / "pairs.jsonl").read_text().splitlines()
    ) == sorted(models)


def test_a_partitioned_run_without_rows_commits_empty_datasets(tmp_path: Path) -> None:
    """Sessions with no candidate at all: ``--partition-by`` leaves empty folders, not a
    failed commit."""
    with Outputs(tmp_path, partition_by="model") as outputs:
        outputs.commit({})
    assert [path.name for path in sorted(tmp_path.iterdir())] == [
        "candidates",
        "pairs",
        "pairs.jsonl",
        "quarantine.jsonl",
        "stats.json",
    ]
    assert not any((tmp_path / "pairs").iterdir())


def test_stats_of_partitioned_outputs_read_models_as_text_and_no_rows_as_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model named ``123`` stays text in ``scan_output`` of a partitioned run, and a
    partitioned run without a pair gives empty frames, so that ``compound stats`` reads it."""
    archive = tmp_path / "archive"
    archive.mkdir()
    answer = " ".join(["word"] * 40)
    session = {
        "id": "s",
        "model": "123",
        "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": answer}],
    }
    (archive / "numbers.jsonl").write_text(json.dumps(session) + "\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "none.jsonl").write_text(
        json.dumps(session | {"conversations": session["conversations"][:1]}) + "\n"
    )
    for name in ("archive", "empty"):
        assert (
            compound(
                monkeypatch,
                "pairs",
                str(tmp_path / name),
                "--out",
                str(tmp_path / f"out-{name}"),
                "--partition-by",
                "model",
            )
            == 0
        )
    pairs = scan_output(tmp_path / "out-archive", "pairs").collect()
    assert pairs.schema["model"] == pl.String
    assert pairs["model"].to_list() == ["123"]
    empty = scan_output(tmp_path / "out-empty", "candidates").collect()
    assert empty.height == 0
    assert empty.columns == CANDIDATES_SCHEMA.names
    capsys.readouterr()
    assert compound(monkeypatch, "stats", str(tmp_path / "out-empty")) == 0
