"""``compound export``: a run's pairs as a dataset fine-tuning tools load, with its card.

The export reads the pairs of a run's outputs (``pairs.parquet``, its Hive directory, or
an incremental dataset's committed parts), never a session. It writes into a scratch
folder beside ``DEST`` (``.compound-export-*``, locked while it is written, so that a run
finding it abandoned removes it as it removes its own), then renames that folder into
place: ``DEST`` holds the whole previous export or the whole new one, never a mix.

What the rows look like is ``transforms.export``'s; this module reads, writes and commits.
The rows stream from the Parquet files to the output files (polars' streaming sinks),
so memory follows the number of sessions (the split table), not the pairs' text.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from jobs.dataset_card import dataset_card
from jobs.durable import fsync_path
from jobs.incremental import DATASETS, LOCK, STATE_DIR, STATE_JSON, State, StateError
from jobs.outputs import (
    PAIRS_JSONL,
    PARQUET_OUTPUTS,
    QUARANTINE_JSONL,
    SCRATCH_PREFIX,
    STATS_JSON,
    _exchange,
    _lock,
    committed_parts,
    remove_abandoned_scratch,
    scan_parts,
)
from transforms.export import (
    FORMATS_WITH_SYSTEM,
    SPLITS,
    assign_sessions,
    filter_pairs,
    split_rows,
    to_format,
)

EXPORT_JSON = "export.json"
CARD_NAME = "README.md"
EXPORT_SCRATCH_PREFIX = f"{SCRATCH_PREFIX}export-"
#: The pairs' columns an export reads.
PAIR_COLUMNS = ("source", "format", "model", "terse", "rich")
#: How many values of a filter an error lists.
LISTED_VALUES = 20
#: Figures of a run that add up over an incremental dataset's runs.
ADDITIVE_FIGURES = (
    "files_scanned",
    "sessions",
    "messages",
    "skipped_messages",
    "malformed_lines",
    "damaged_files",
    "raw_pairs",
    "unique_pairs",
    "duplicates_removed",
)
#: What a run writes into its folder: an export there must not be one of these.
RUN_OUTPUT_NAMES = frozenset(
    {
        PAIRS_JSONL,
        QUARANTINE_JSONL,
        STATS_JSON,
        STATE_DIR,
        *DATASETS,
        *PARQUET_OUTPUTS,
        *(f"{name}.parquet" for name in PARQUET_OUTPUTS),
    }
)


class ExportError(Exception):
    """An export that cannot be made as asked; shown to the user as one line, naming
    ``option``, the argument at fault."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class ExportOptions:
    """What ``compound export`` was asked for (the CLI has checked each value's form)."""

    to: str
    val_share: float = 0.02
    seed: int = 0
    system: str | None = None
    layouts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    parquet: bool = False


@dataclass(frozen=True)
class RunPairs:
    """A run's pairs and the figures of the run (or runs) that wrote them."""

    pairs: pl.LazyFrame
    figures: dict[str, Any]


@dataclass
class Export:
    """What an export wrote: ``record`` is ``export.json``."""

    dest: Path
    record: dict[str, Any]
    removed_scratch: list[Path] = field(default_factory=list)


def _shared_lock(out_dir: Path) -> int | None:
    """A shared lock on an incremental dataset's state, held while its parts are read: a
    run (or ``compound compact``) takes it exclusively and would remove parts under us.
    None where there is no lock file or no such locks."""
    try:
        import fcntl  # noqa: PLC0415  (not on Windows)
    except ImportError:
        return None
    try:
        descriptor = os.open(out_dir / STATE_DIR / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise ExportError(f"a run is writing into {out_dir}; wait for it to end", "OUT_DIR") from None
    return descriptor


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ExportError(f"cannot read {path}: {error}", "OUT_DIR") from None
    if not isinstance(loaded, dict):
        raise ExportError(f"{path} is not a run's figures", "OUT_DIR")
    return loaded


def _summed(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of the runs that wrote the pairs (``stats.json``, or each run's of an
    incremental dataset, which read different content): their counts added up, the last
    run's rules. No file names: the card and ``export.json`` may be published."""
    figures: dict[str, Any] = {name: sum(run.get(name, 0) for run in runs) for name in ADDITIVE_FIGURES}
    for name in ("rejected", "redactions"):
        totals: dict[str, int] = {}
        for run in runs:
            for key, count in run.get(name, {}).items():
                totals[key] = totals.get(key, 0) + count
        figures[name] = totals
    layouts: dict[str, dict[str, int]] = {}
    for run in runs:
        for layout, counts in run.get("formats", {}).items():
            summed = layouts.setdefault(layout, {})
            for key in ("files", "sessions", "messages", "pairs"):
                summed[key] = summed.get(key, 0) + counts.get(key, 0)
    figures["formats"] = dict(sorted(layouts.items()))
    figures["unrecognized_files"] = sum(
        run.get("unrecognized_files_count", len(run.get("unrecognized_files", []))) for run in runs
    )
    figures["rules"] = runs[-1].get("rules", {}) if runs else {}
    figures["runs"] = len(runs)
    return figures


@contextlib.contextmanager
def read_run(out_dir: Path) -> Iterator[RunPairs]:
    """The pairs of the run in ``out_dir`` (lazily) and its figures. Raises ExportError
    when ``out_dir`` holds no run's outputs."""
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir} is not a directory: name a `compound pairs` output folder", "OUT_DIR")
    if (out_dir / STATE_DIR / STATE_JSON).is_file():
        lock = _shared_lock(out_dir)
        try:
            yield _read_dataset(out_dir)
        finally:
            if lock is not None:
                os.close(lock)
        return
    if not (out_dir / STATS_JSON).is_file():
        raise ExportError(
            f"{out_dir} holds no run's outputs (no {STATS_JSON}): run `compound pairs --out {out_dir}` first",
            "OUT_DIR",
        )
    figures = _summed([_read_json(out_dir / STATS_JSON)])
    single, directory = out_dir / "pairs.parquet", out_dir / "pairs"
    if single.is_file():
        yield RunPairs(pl.scan_parquet(single), figures)
        return
    files = sorted(directory.glob("*=*/*.parquet")) if directory.is_dir() else []
    if not files:
        raise ExportError(
            f"{out_dir} has a {STATS_JSON} but no pairs.parquet (or pairs/ directory)", "OUT_DIR"
        )
    yield RunPairs(scan_parts(files, partitioned=True), figures)


def _read_dataset(out_dir: Path) -> RunPairs:
    """An incremental dataset: the parts its committed state names (a run that died
    may have left others beside them), and its runs' figures added up."""
    try:
        state = State.load(out_dir)
    except StateError as error:
        raise ExportError(str(error), "OUT_DIR") from None
    parts = committed_parts(out_dir, state, "pairs")
    if not parts:
        raise ExportError(f"the dataset in {out_dir} has no pairs yet", "OUT_DIR")
    runs = [_read_json(out_dir / "runs" / part) for part in sorted(state.parts.get("runs", []))]
    partitioned = (state.rules or {}).get("partition_by") is not None
    pairs = scan_parts(parts, partitioned=partitioned)
    return RunPairs(pairs, _summed(runs))


def check_dest(dest: Path, out_dir: Path, *, overwrite: bool) -> None:
    """Raise ExportError unless ``dest`` can take the export: a new or empty folder, or,
    with ``overwrite``, an earlier export (never a run's outputs, nor a folder of other
    files: replacing it would delete them)."""
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a directory", "--dest")
    resolved, run = dest.resolve(), out_dir.resolve()
    if resolved == run or resolved in run.parents:
        raise ExportError(
            f"{dest} holds the run's outputs ({out_dir}): export into a folder of its own", "--dest"
        )
    if run in resolved.parents:
        first = resolved.relative_to(run).parts[0]
        if first in RUN_OUTPUT_NAMES or first.startswith(SCRATCH_PREFIX):
            raise ExportError(
                f"{dest} is one of the run's outputs: export into a folder of its own", "--dest"
            )
    if not dest.is_dir() or not any(dest.iterdir()):
        return
    if not overwrite:
        raise ExportError(f"{dest} is not empty: add --overwrite to replace it", "--dest")
    if not (dest / EXPORT_JSON).is_file():
        raise ExportError(
            f"{dest} holds files that are not an export (it has no {EXPORT_JSON}); "
            "not replaced, even with --overwrite",
            "--dest",
        )


def _present(values: pl.Series) -> list[str]:
    return sorted(value for value in values.to_list() if value is not None)


def _check_filter(asked: tuple[str, ...], present: list[str], what: str, option: str) -> None:
    missing = [value for value in asked if value not in present]
    if not missing:
        return
    listed = ", ".join(present[:LISTED_VALUES]) + (", ..." if len(present) > LISTED_VALUES else "")
    raise ExportError(f"no pair has {what} {missing[0]!r}; the pairs have: {listed or 'none'}", option)


def _unreadable(error: Exception) -> ExportError:
    """A Parquet file cut short (a copy still going, a disk that filled) or not ours."""
    first_line = str(error).strip().split("\n", 1)[0]
    return ExportError(
        f"the pairs cannot be read ({first_line}): is it a finished `compound pairs` output?", "OUT_DIR"
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def plan_splits(run: RunPairs, options: ExportOptions) -> tuple[pl.LazyFrame, pl.DataFrame, dict[str, Any]]:
    """The pairs to export (filtered, lazily), their sessions with their split, and the
    figures of ``export.json`` but the files. Raises ExportError for a filter value no
    pair has, filters that leave nothing, or too few sessions to split."""
    try:
        present = run.pairs.group_by("format", "model").agg(pl.len().alias("rows")).collect()
        kept = filter_pairs(run.pairs.select(PAIR_COLUMNS), options.layouts, options.models)
        _check_filter(options.layouts, _present(present["format"].unique()), "layout", "--format-filter")
        _check_filter(options.models, _present(present["model"].unique()), "model", "--model-filter")
        sessions = assign_sessions(kept, options.seed, options.val_share).collect()
    except pl.exceptions.PolarsError as error:
        raise _unreadable(error) from None
    pairs_read = int(present["rows"].sum())
    rows = int(sessions["rows"].sum())
    if not rows:
        what = "the filters leave no pair" if pairs_read else "the run wrote no pair"
        option = "OUT_DIR" if not pairs_read else "--model-filter" if options.models else "--format-filter"
        raise ExportError(f"nothing to export: {what}", option)
    if options.val_share > 0 and sessions.height < 2:
        raise ExportError(
            "the pairs come from one session, and the split keeps each session on one side: "
            "export them all with --val-share 0",
            "--val-share",
        )
    splits: dict[str, Any] = {}
    for split in SPLITS:
        chosen = sessions.filter(pl.col("validation") == (split == "validation"))
        rows_in_split = int(chosen["rows"].sum())
        splits[split] = {
            "rows": rows_in_split,
            "sessions": chosen.height,
            "row_share": _share(rows_in_split, rows),
            "session_share": _share(chosen.height, sessions.height),
        }
    record = {
        "format": options.to,
        "system": options.system,
        "seed": options.seed,
        "val_share": options.val_share,
        "format_filter": list(options.layouts),
        "model_filter": list(options.models),
        "split_rule": (
            "by session: a session is in validation when the top 53 bits of the xxh3_64 hash "
            "(seeded with the seed) of its id, divided by 2**53, are below val_share; "
            "with val_share above 0 and two sessions or more, neither split is empty"
        ),
        "pairs_read": pairs_read,
        "pairs_exported": rows,
        "sessions_exported": sessions.height,
        "splits": splits,
        "run": run.figures,
    }
    return kept, sessions, record


def _written_splits(options: ExportOptions) -> list[str]:
    """The splits written: validation only when its share is above 0 (an empty split is
    one a loader refuses to load)."""
    return list(SPLITS) if options.val_share > 0 else ["train"]


def _write_rows(
    pairs: pl.LazyFrame, sessions: pl.DataFrame, options: ExportOptions, scratch: Path
) -> dict[str, list[str]]:
    """Each split's rows, streamed into its files; the files per split."""
    sinks: list[pl.LazyFrame] = []
    files: dict[str, list[str]] = {}
    for split in _written_splits(options):
        rows = to_format(split_rows(pairs, sessions.lazy(), split), options.to, options.system)
        files[split] = [f"{split}.jsonl"]
        sinks.append(rows.sink_ndjson(scratch / f"{split}.jsonl", lazy=True))
        if options.parquet:
            files[split].append(f"{split}.parquet")
            sinks.append(rows.sink_parquet(scratch / f"{split}.parquet", compression="zstd", lazy=True))
    try:  # one query, so that polars can share the scan of the pairs between the files
        pl.collect_all(sinks, engine="streaming")
    except pl.exceptions.PolarsError as error:
        raise _unreadable(error) from None
    return files


def _first_line(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        loaded = json.loads(handle.readline())
    assert isinstance(loaded, dict)
    return loaded


def _commit(scratch: Path, dest: Path) -> None:
    """Put ``scratch`` in place of ``dest``: a rename where ``dest`` is missing or empty,
    else an atomic exchange (the old export is then in ``scratch``, removed), else the
    old export renamed aside first, the new one renamed in, the old one removed."""
    for path in [*scratch.iterdir(), scratch]:
        with contextlib.suppress(OSError):
            fsync_path(path)
    if not dest.exists() or (dest.is_dir() and not any(dest.iterdir())):
        scratch.replace(dest)
        return
    if _exchange(scratch, dest):
        shutil.rmtree(scratch, ignore_errors=True)
        return
    aside = Path(tempfile.mkdtemp(prefix=EXPORT_SCRATCH_PREFIX, dir=dest.parent))
    aside.rmdir()
    dest.rename(aside)
    scratch.rename(dest)
    shutil.rmtree(aside, ignore_errors=True)


def export(out_dir: Path, dest: Path, options: ExportOptions, *, overwrite: bool = False) -> Export:
    """Export the pairs in ``out_dir`` into ``dest``; raises ExportError for bad input,
    before anything is written."""
    if options.system is not None and options.to not in FORMATS_WITH_SYSTEM:
        raise ExportError(
            f"the {options.to} format has no place for a system prompt: "
            f"use --to messages (or {', '.join(FORMATS_WITH_SYSTEM[1:])}), or leave --system out",
            "--system",
        )
    check_dest(dest, out_dir, overwrite=overwrite)
    with read_run(out_dir) as run:
        pairs, sessions, record = plan_splits(run, options)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            removed = remove_abandoned_scratch(dest.parent)
            scratch = Path(tempfile.mkdtemp(prefix=EXPORT_SCRATCH_PREFIX, dir=dest.parent))
        except OSError as error:
            raise ExportError(f"cannot write beside {dest}: {error.strerror or error}", "--dest") from None
        scratch_lock = _lock(scratch)
        umask = os.umask(0)
        os.umask(umask)
        scratch.chmod(0o777 & ~umask)  # the folder becomes DEST: not mkdtemp's owner-only mode
        try:
            files = _write_rows(pairs, sessions, options, scratch)
            data_files = {split: names[-1] for split, names in files.items()}
            record = {**record, "data_files": data_files, "files": files}
            example = _first_line(scratch / files["train"][0])
            (scratch / CARD_NAME).write_text(dataset_card(record, example))
            (scratch / EXPORT_JSON).write_text(json.dumps(record, indent=2) + "\n")
            _commit(scratch, dest)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if scratch_lock is not None:
                os.close(scratch_lock)
    return Export(dest, record, removed)
