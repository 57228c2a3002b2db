"""The ``compound`` command line."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

# typer vendors click; its UsageError is the base of every command-line error
from typer._click.exceptions import UsageError

from jobs.compact import compact as compact_dataset
from jobs.discover import InputError, SessionFiles, check_format_fits, detect, find_session_files
from jobs.incremental import DATASETS, STATE_DIR, STATE_JSON, Dataset, StateError
from jobs.outputs import (
    PAIRS_JSONL,
    PARQUET_COMPRESSIONS,
    PARQUET_OUTPUTS,
    QUARANTINE_JSONL,
    STATS_JSON,
    OutputDirError,
    Outputs,
    scan_output,
)
from jobs.pairs_job import Engine, PairRules, RunStats, run, run_incremental
from jobs.uris import SessionPath, UriError, as_path, describe_error, is_remote, upload_folder
from transforms.analytics import (
    DEFAULT_SWEEP_RATIOS,
    DEFAULT_SWEEP_WORDS,
    quantiles,
    reasons,
    threshold_sweep,
)
from transforms.pairs import RESPONSE_MODES
from transforms.readers import format_names
from transforms.secrets import SCRUB_MODES

PARTITION_COLUMNS = (None, "model")
#: What a run writes into --out (a Parquet output as a file, or partitioned as a folder):
#: what is there of an earlier run under these names is replaced or removed.
OUTPUT_NAMES = (
    PAIRS_JSONL,
    QUARANTINE_JSONL,
    *(name for output in PARQUET_OUTPUTS for name in (output, f"{output}.parquet")),
)
#: Where a run's batches are read and prepared: this machine's cores, or a Ray cluster.
ENGINES = ("local", "ray")

app = typer.Typer(
    name="compound",
    help="Turn archives of agent session transcripts into training pairs and analytics.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
)


@app.callback()
def _root() -> None:
    """Keep subcommands named even while there is one."""


def _one_of(value: str | None, choices: Sequence[str | None], option: str) -> None:
    """A one-line usage error unless ``value`` is one of ``choices`` (None: the option was
    not given, allowed where ``choices`` holds it)."""
    if value not in choices:
        named = ", ".join(choice for choice in choices if choice is not None)
        raise typer.BadParameter(f"must be one of {named}", param_hint=f"'{option}'")


def _scrub_mode(text: str) -> str:
    """``--scrub`` as one of ``SCRUB_MODES``, its parts in any order (``pii,secrets``)."""
    parts = {part.strip() for part in text.split(",")}
    mode = next((mode for mode in SCRUB_MODES if set(mode.split(",")) == parts), None)
    _one_of(mode, SCRUB_MODES, "--scrub")
    assert mode is not None
    return mode


@app.command()
def pairs(  # noqa: PLR0917 (typer passes every option by position)
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Session files or directories (searched recursively for .jsonl, .json, .traj, .db, "
            ".sqlite, also gzip/zstd compressed); local paths or URIs (s3://bucket/prefix, gs://..., "
            "file:///abs/path)."
        ),
    ],
    out: Annotated[
        str, typer.Option("--out", help="Output directory: a local path or a URI (s3://bucket/prefix, ...).")
    ] = "out",
    min_ratio: Annotated[
        float, typer.Option("--min-ratio", min=0.0, help="Minimum response/prompt word ratio.")
    ] = 1.5,
    min_words: Annotated[int, typer.Option("--min-words", min=0, help="Minimum response word count.")] = 20,
    responses: Annotated[
        str,
        typer.Option(
            "--responses",
            help="auto: final in an agent's run (tools, a harness), each in a chat; "
            "each: every assistant message pairs with the prompt before it (the reference's rule); "
            "final: only the last assistant text before the next prompt (the answer after a tool loop).",
        ),
    ] = "auto",
    strip_think: Annotated[
        bool, typer.Option("--strip-think", help="Remove inline <think>...</think> blocks from message text.")
    ] = False,
    scrub: Annotated[
        str,
        typer.Option(
            "--scrub",
            help="What every text written has replaced by a placeholder: secrets (credentials, the default), "
            "secrets,pii (also e-mail addresses, phone numbers, IP addresses, home-path user names), none.",
        ),
    ] = "secrets",
    format_: Annotated[
        str | None,
        typer.Option("--format", help="Read every input as this layout instead of detecting it per file."),
    ] = None,
    emit_messages: Annotated[
        bool, typer.Option("--emit-messages", help="Also write messages.parquet, the message table itself.")
    ] = False,
    partition_by: Annotated[
        str | None,
        typer.Option(
            "--partition-by", help="Write the Parquet outputs as Hive-partitioned directories by: model."
        ),
    ] = None,
    parquet_compression: Annotated[
        str,
        typer.Option(
            "--parquet-compression",
            help=f"Codec of the Parquet outputs: {', '.join(PARQUET_COMPRESSIONS)}. zstd (the default) makes "
            "the files about a quarter smaller than snappy, which writes them faster.",
        ),
    ] = PARQUET_COMPRESSIONS[0],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the stats and three sample pairs; write nothing.")
    ] = False,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Read only what changed since the last incremental run into --out, and add this run's "
            "pairs to the dataset there as parts (pairs/part-<run>.parquet, ...); a pair written before "
            "is never written again.",
        ),
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="With --incremental: start the dataset in --out over, with these rules."
        ),
    ] = False,
    engine_name: Annotated[
        str,
        typer.Option(
            "--engine",
            help="Where the files are read and their pairs found: local (this machine's cores) or ray "
            "(a Ray cluster, through Ray Data: --ray-address, or a local Ray instance started for the run; "
            "needs the ray extra). The outputs are the same.",
        ),
    ] = ENGINES[0],
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --engine ray: the cluster's head (HOST:PORT, or auto for the one started on this "
            "machine); default RAY_ADDRESS where set (ray job submit), else a local instance.",
        ),
    ] = None,
) -> None:
    """Harvest terse prompt -> rich response pairs from session transcripts."""
    _one_of(engine_name, ENGINES, "--engine")
    _check_values(min_ratio, out)
    if ray_address is not None and engine_name != "ray":
        raise typer.BadParameter("only with --engine ray", param_hint="'--ray-address'")
    _one_of(responses, RESPONSE_MODES, "--responses")
    scrub = _scrub_mode(scrub)
    _one_of(partition_by, PARTITION_COLUMNS, "--partition-by")
    _one_of(parquet_compression, PARQUET_COMPRESSIONS, "--parquet-compression")
    _one_of(format_, (None, *format_names()), "--format")
    input_paths = _paths(inputs, "'INPUTS...'")
    out_path = _paths([out], "'--out'")[0]
    if not isinstance(out_path, Path) and out_path.protocol in ("file", "local"):
        out_path = Path(out_path.path)  # a local folder: written and renamed into place as any
    remote_out = out_path if not isinstance(out_path, Path) else None
    if incremental and (remote_out is not None or any(is_remote(path) for path in input_paths)):
        raise typer.BadParameter(
            "reads and writes local paths only (its state needs renames, locks and modification times)",
            param_hint="'--incremental'",
        )
    try:
        files = find_session_files(input_paths)
    except InputError as error:
        raise typer.BadParameter(str(error), param_hint="'INPUTS...'") from None
    if format_ is not None:
        try:
            check_format_fits(files, format_)
        except InputError as error:
            raise typer.BadParameter(str(error), param_hint="'--format'") from None
    rules = PairRules(
        min_ratio=min_ratio, min_words=min_words, responses=responses, strip_think=strip_think, scrub=scrub
    )
    err = Console(stderr=True)
    with ExitStack() as staging:
        if remote_out is None:
            assert isinstance(out_path, Path)
            local_out = out_path
            _check_incremental(local_out, incremental=incremental, rebuild=rebuild, dry_run=dry_run)
            if not dry_run:
                _check_inputs_are_not_outputs(files, local_out, incremental=incremental)
        else:
            _check_remote_out(remote_out)
            # written here as a local run writes, then uploaded (``upload_folder``)
            local_out = Path(staging.enter_context(TemporaryDirectory(prefix="compound-out-")))
        stats = _pairs_command(
            files,
            rules,
            _Written(local_out, emit_messages, partition_by, parquet_compression),
            format_,
            engine_name,
            ray_address,
            err,
            dry_run=dry_run,
            incremental=incremental,
            rebuild=rebuild,
        )
        if remote_out is not None and stats is not None:
            try:
                upload_folder(local_out, remote_out, STATS_JSON, OUTPUT_NAMES)
            except Exception as error:
                print(
                    f"compound: error: cannot upload the outputs to {out}: {describe_error(error)}",
                    file=sys.stderr,
                )
                sys.exit(1)
    if stats is not None:
        _print_summary(stats[0], out if remote_out is not None else str(local_out), stats[1], stats[2])


def _check_values(min_ratio: float, out: str) -> None:
    """What typer's own checks let through: NaN passes ``min=0.0`` (and no ratio is above
    inf), an empty ``--out`` would be the current folder."""
    if not math.isfinite(min_ratio):
        raise typer.BadParameter(f"a finite number, not {min_ratio}", param_hint="'--min-ratio'")
    if not out.strip():
        raise typer.BadParameter("an empty path", param_hint="'--out'")


def _paths(texts: list[str], hint: str) -> list[SessionPath]:
    """Command-line paths: local ones as ``Path``, URIs as ``UPath``; a usage error for a
    URI of an unknown or uninstalled filesystem."""
    try:
        return [as_path(text) for text in texts]
    except UriError as error:
        raise typer.BadParameter(str(error), param_hint=hint) from None


def _check_remote_out(out: SessionPath) -> None:
    """A usage error, before anything is read, when ``out`` cannot be an output folder: it is
    a file, its bucket does not exist, or the store cannot be reached (credentials)."""
    assert not isinstance(out, Path)
    try:
        if out.fs.isfile(out.path):
            raise typer.BadParameter(f"{out} is a file", param_hint="'--out'")
        bucket = out.path.lstrip("/").split("/", 1)[0]
        if out.protocol not in ("memory",) and bucket and not out.fs.exists(bucket):
            raise typer.BadParameter(f"no such bucket: {bucket} (of {out})", param_hint="'--out'")
    except typer.BadParameter:
        raise
    except Exception as error:
        raise typer.BadParameter(f"cannot use {out}: {describe_error(error)}", param_hint="'--out'") from None


def _pairs_command(  # noqa: PLR0917 (the options of one command, passed on)
    files: SessionFiles,
    rules: PairRules,
    written: _Written,
    format_: str | None,
    engine_name: str,
    ray_address: str | None,
    err: Console,
    *,
    dry_run: bool,
    incremental: bool,
    rebuild: bool,
) -> tuple[RunStats, int, dict[str, Any] | None] | None:
    """The run into ``written.out`` (a local folder) on its engine: its stats, the bytes
    of its inputs and its incremental figures; None for a dry run."""
    dataset_rules = asdict(rules) | {
        "format": format_,
        "partition_by": written.partition_by,
        "emit_messages": written.emit_messages,
    }
    total_bytes = files.total_size()
    with ExitStack() as engine_stack:
        engine = _engine(engine_name, ray_address, engine_stack)
        stats, figures = _pairs_run(
            files,
            rules,
            written,
            dataset_rules,
            format_,
            engine,
            err,
            total_bytes,
            dry_run=dry_run,
            incremental=incremental,
            rebuild=rebuild,
        )
    return None if stats is None else (stats, total_bytes, figures)


def _engine(name: str, ray_address: str | None, stack: ExitStack) -> Engine | None:
    """The run's engine, connected (None: the local one); closed with ``stack``. A usage
    error when Ray is not installed or its cluster cannot be reached."""
    if name != "ray":
        return None
    from jobs.ray_engine import RayEngine, RayEngineError  # noqa: PLC0415 (only this engine needs it)

    try:
        engine = RayEngine(ray_address)
        stack.callback(engine.close)
        engine.connect()
    except RayEngineError as error:
        hint = "'--engine'" if ray_address is None else "'--ray-address'"
        raise typer.BadParameter(str(error), param_hint=hint) from None
    return engine


def _pairs_run(  # noqa: PLR0917 (the options of one command, passed on)
    files: SessionFiles,
    rules: PairRules,
    written: _Written,
    dataset_rules: dict[str, Any],
    format_: str | None,
    engine: Engine | None,
    err: Console,
    total_bytes: int,
    *,
    dry_run: bool,
    incremental: bool,
    rebuild: bool,
) -> tuple[RunStats | None, dict[str, Any] | None]:
    """The run itself, with a progress bar on a terminal: its stats and, for an
    incremental run, its figures; no stats for a dry run, which prints its own."""
    out = written.out
    with Progress(
        TextColumn("reading"),
        BarColumn(),
        TextColumn("{task.fields[files_done]:,}/{task.fields[files_total]:,} files"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task("reading", total=total_bytes, files_done=0, files_total=len(files))
        files_done = 0

        def advance(batch_files: int, batch_bytes: int) -> None:
            nonlocal files_done
            files_done += batch_files
            progress.update(task, advance=batch_bytes, files_done=files_done)

        figures: dict[str, Any] | None = None
        if dry_run:
            stats, samples = run(
                files, rules, None, forced_format=format_, on_batch=advance, sample_size=3, engine=engine
            )
            _check_something_was_read(stats)
            _print_dry_run(stats, samples)
            return None, None
        with ExitStack() as stack:
            dataset = _open_dataset(out, dataset_rules, rebuild=rebuild) if incremental else None
            if dataset is not None:
                stack.callback(os.close, dataset.lock)
            outputs = written.enter(stack, err)
            if dataset is not None:
                try:
                    stats, figures = run_incremental(
                        files,
                        rules,
                        outputs,
                        dataset,
                        dataset_rules,
                        forced_format=format_,
                        on_batch=advance,
                        check=_check_something_was_read,
                        engine=engine,
                    )
                except StateError as error:
                    raise typer.BadParameter(str(error), param_hint="'--out'") from None
            else:
                stats, _ = run(files, rules, outputs, forced_format=format_, on_batch=advance, engine=engine)
                _check_something_was_read(stats)  # else the previous outputs stay
                outputs.commit(stats.as_dict())
    return stats, figures


@dataclass(frozen=True)
class _Written:
    """Where and how a run writes its outputs."""

    out: Path
    emit_messages: bool
    partition_by: str | None
    compression: str

    def enter(self, stack: ExitStack, err: Console) -> Outputs:
        """The outputs, opened on ``stack``; a usage error when ``out`` cannot be written into."""
        try:
            outputs = stack.enter_context(
                Outputs(
                    self.out,
                    emit_messages=self.emit_messages,
                    partition_by=self.partition_by,
                    compression=self.compression,
                )
            )
        except OutputDirError as error:
            raise typer.BadParameter(str(error), param_hint="'--out'") from None
        for folder in outputs.abandoned_removed:
            err.print(f"removed {folder}: the scratch folder of a run that died", soft_wrap=True)
        return outputs


def _check_incremental(out: Path, *, incremental: bool, rebuild: bool, dry_run: bool) -> None:
    if rebuild and not incremental:
        raise typer.BadParameter("only with --incremental", param_hint="'--rebuild'")
    if incremental and dry_run:
        raise typer.BadParameter("--dry-run writes nothing to add to", param_hint="'--incremental'")
    if not incremental and not dry_run and (out / STATE_DIR / STATE_JSON).is_file():
        raise typer.BadParameter(
            f"{out} holds an incremental dataset: add --incremental (and --rebuild to start it over), "
            "or write to another folder",
            param_hint="'--out'",
        )


def _check_inputs_are_not_outputs(files: SessionFiles, out: Path, *, incremental: bool) -> None:
    """A usage error when an input session file lies where this run writes (``pairs.jsonl``
    in ``--out``, a file in an incremental dataset's folders): the run would replace or
    remove it. An earlier run's outputs found there (no reader knows them) are not sessions."""
    out_folder = out.absolute()
    places = [out_folder / name for name in (*OUTPUT_NAMES, STATS_JSON)]
    if incremental:
        places += [out_folder / name for name in (*DATASETS, STATE_DIR)]
    prefix = str(out_folder)
    here = os.getcwd()  # noqa: PTH109 (text, as the files' paths are kept)
    for text in files.local_texts():
        # ``Path.absolute()``'s text, without a Path made for every file
        absolute = text if os.path.isabs(text) else os.path.join(here, text)  # noqa: PTH117, PTH118
        if not absolute.startswith(prefix):  # most files: outside --out
            continue
        path, file = Path(absolute), Path(text)
        at_risk = any(path.is_relative_to(place) for place in places)
        if at_risk and detect(file).reader is not None:
            raise typer.BadParameter(
                f"{file} is a session file where this run writes its outputs, which would replace it: "
                "choose another --out",
                param_hint="'--out'",
            )


def _open_dataset(out: Path, rules: dict[str, Any], *, rebuild: bool) -> Dataset:
    """The incremental dataset in ``out``, locked; a usage error when another run holds
    it, its state cannot be read, or its rules are not these (unless ``rebuild``)."""
    try:
        return Dataset.open(out, rules, rebuild=rebuild)
    except StateError as error:
        raise typer.BadParameter(str(error), param_hint="'--out'") from None


def _check_something_was_read(stats: RunStats) -> None:
    """A usage error when no input file had a reader: the inputs are not session files
    (a wrong folder, an unmounted disk), and empty outputs must not replace the last ones."""
    if stats.formats:
        return
    unrecognized = stats.unrecognized_files
    example = f"; {unrecognized[0]['file']}: {unrecognized[0]['reason']}" if unrecognized else ""
    raise typer.BadParameter(
        f"nothing to read: none of the {stats.files_scanned:,} files is a session file the job can read "
        f"({stats.unrecognized_count:,} of no known layout, {stats.damaged_files:,} damaged){example}",
        param_hint="'INPUTS...'",
    )


def _print_dry_run(stats: RunStats, samples: list[dict[str, Any]]) -> None:
    """The reference's dry-run output: the stats, then three sample pairs."""
    print(json.dumps(stats.as_dict(), indent=2))
    for pair in samples:
        print(f"\n--- Source: {pair['source']} (ratio: {pair['ratio']}) ---")
        print(f"TERSE: {pair['terse'][:100]}...")
        print(f"RICH: {pair['rich'][:150]}...")


def _print_summary(stats: RunStats, out: str, total_bytes: int, incremental: dict[str, Any] | None) -> None:
    figures = stats.as_dict()
    table = Table(title=f"compound pairs -> {out}", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, object]] = [
        ("files scanned", figures["files_scanned"]),
        ("bytes read", f"{total_bytes if incremental is None else incremental['bytes_read']:,}"),
        ("sessions", figures["sessions"]),
        ("messages", figures["messages"]),
        ("malformed lines (quarantine.jsonl)", figures["malformed_lines"]),
        ("damaged files (quarantine.jsonl)", figures["damaged_files"]),
        ("unrecognized files", figures["unrecognized_files_count"]),
        ("skipped messages", figures["skipped_messages"]),
        ("raw pairs", figures["raw_pairs"]),
        ("unique pairs (written)", figures["unique_pairs"]),
        ("duplicates removed", figures["duplicates_removed"]),
        ("avg prompt words", figures["avg_prompt_words"]),
        ("avg response words", figures["avg_response_words"]),
        ("avg ratio", figures["avg_ratio"]),
    ]
    if incremental is not None:
        rows = [
            (f"run {incremental['run']}: files {change}", count)
            for change, count in incremental["files"].items()
        ] + [("bytes in the archive", f"{incremental['bytes_in_archive']:,}"), *rows]
    rows += [(f"rejected: {reason}", count) for reason, count in figures["rejected"].items()]
    rows += [(f"redacted: {rule}", count) for rule, count in figures["redactions"].items()]
    if figures["rules"]["scrub"] != "none" and not figures["redactions"]:
        rows.append(("redacted (secrets in pairs)", 0))
    for name, value in rows:
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    console = Console()
    console.print(table)
    by_format = Table(title="by format")
    for column in ("format", "files", "sessions", "messages", "pairs"):
        by_format.add_column(column, justify="left" if column == "format" else "right")
    for name, counts in figures["formats"].items():
        by_format.add_row(name, *(f"{counts[key]:,}" for key in ("files", "sessions", "messages", "pairs")))
    console.print(by_format)
    unrecognized, count = figures["unrecognized_files"], figures["unrecognized_files_count"]
    if count:
        listed = Table(title=f"unrecognized files ({count:,}, also in stats.json)")
        listed.add_column("file")
        listed.add_column("reason")
        for entry in unrecognized[:20]:
            listed.add_row(entry["file"], entry["reason"])
        if count > 20:
            listed.add_row(f"... and {count - 20:,} more", "")
        console.print(listed)
    _print_files_without_pairs(console, figures)


def _print_files_without_pairs(console: Console, figures: dict[str, Any]) -> None:
    count, entries = figures["files_without_pairs_count"], figures["files_without_pairs"]
    if not count:
        return
    listed = Table(title=f"files without a pair ({count:,}, also in stats.json)")
    for column in ("file", "format", "messages", "candidates", "rejected most as"):
        listed.add_column(
            column,
            justify="right" if column in ("messages", "candidates") else "left",
            overflow="fold" if column == "file" else "ellipsis",
        )
    for entry in entries[:20]:
        reason = entry["top_reason"] or ("no candidate" if entry["messages"] else "no message")
        listed.add_row(
            entry["file"], entry["format"], f"{entry['messages']:,}", f"{entry['candidates']:,}", reason
        )
    if count > 20:
        listed.add_row(f"... and {count - 20:,} more", "", "", "", "")
    console.print(listed)


def _parse_grid(text: str, kind: type[float] | type[int], option: str) -> tuple[float, ...]:
    try:
        values = tuple(sorted({kind(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated numbers, got {text!r}", param_hint=option
        ) from None
    if not values or min(values) < 0 or not all(math.isfinite(value) for value in values):
        raise typer.BadParameter(f"expected non-negative numbers, got {text!r}", param_hint=option)
    return values


@app.command()
def stats(
    out_dir: Annotated[Path, typer.Argument(help="A `compound pairs` output directory.")],
    ratios: Annotated[
        str, typer.Option("--ratios", help="min_ratio values of the threshold sweep, comma-separated.")
    ] = ",".join(map(str, DEFAULT_SWEEP_RATIOS)),
    words: Annotated[
        str, typer.Option("--words", help="min_words values of the threshold sweep, comma-separated.")
    ] = ",".join(map(str, DEFAULT_SWEEP_WORDS)),
    as_json: Annotated[bool, typer.Option("--json", help="Print the same as one JSON object.")] = False,
) -> None:
    """Distributions and a threshold sweep, from a run's outputs alone (no session is re-read)."""
    min_ratios = _parse_grid(ratios, float, "'--ratios'")
    min_words = tuple(int(w) for w in _parse_grid(words, int, "'--words'"))
    try:
        candidates = scan_output(out_dir, "candidates")
        report = {
            "quantiles": quantiles(candidates),
            "reasons": reasons(candidates),
            "sweep": threshold_sweep(candidates, min_ratios, min_words),
        }
    except InputError as error:
        raise typer.BadParameter(str(error), param_hint="'OUT_DIR'") from None
    except (pl.exceptions.PolarsError, OSError) as error:
        # a ledger cut short (a copy still going, a disk that filled) or not ours
        first_line = str(error).strip().split("\n", 1)[0]
        raise typer.BadParameter(
            f"the ledger in {out_dir} cannot be read ({first_line}): "
            "is it a finished `compound pairs` output?",
            param_hint="'OUT_DIR'",
        ) from None
    if as_json:
        print(json.dumps({name: frame.to_dicts() for name, frame in report.items()}, indent=2))
        return
    console = Console()
    console.print(_frame_table("quantiles (kept pairs and all candidates)", report["quantiles"]))
    console.print(_frame_table("candidates by outcome", report["reasons"]))
    sweep = report["sweep"].pivot(on="min_words", index="min_ratio", values="pairs")
    console.print(_frame_table("pairs kept at min_ratio (rows) x min_words (columns)", sweep))


@app.command()
def compact(
    out_dir: Annotated[Path, typer.Argument(help="An output directory of `compound pairs --incremental`.")],
) -> None:
    """Merge an incremental dataset's parts into one file per output (and partition)."""
    try:
        merged = compact_dataset(out_dir)
    except StateError as error:
        raise typer.BadParameter(str(error), param_hint="'OUT_DIR'") from None
    if not merged:
        print(f"{out_dir}: every output is one part already")
    for entry in merged:
        print(f"{out_dir / entry.folder}: {entry.parts} parts -> {entry.into}")


def _filter_values(values: list[str] | None) -> tuple[str, ...]:
    """A repeated option's values, each of which may also be comma-separated, in order, once each."""
    named = [part.strip() for value in values or [] for part in value.split(",")]
    return tuple(dict.fromkeys(part for part in named if part))


@app.command("export")
def export_command(  # noqa: PLR0917 (typer passes every option by position)
    out_dir: Annotated[
        Path, typer.Argument(help="A `compound pairs` output directory (an --incremental dataset too).")
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The format: messages (TRL conversational, OpenAI fine-tuning, axolotl chat_template), "
            "prompt-completion (TRL), sharegpt (LLaMA-Factory, axolotl), alpaca.",
        ),
    ],
    dest: Annotated[
        Path,
        typer.Option("--dest", help="The folder to write: train and validation files and a README.md card."),
    ],
    val_share: Annotated[
        float,
        typer.Option(
            "--val-share",
            help="Share of the sessions in the validation split, at least 0 and below 1 "
            "(0: no validation split).",
        ),
    ] = 0.02,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=2**64 - 1, help="Seed of the split by session.")
    ] = 0,
    system: Annotated[
        str | None,
        typer.Option(
            "--system",
            help="A system prompt for every row: a system message (messages), a system turn "
            "(sharegpt), a system field (alpaca); prompt-completion has no place for one.",
        ),
    ] = None,
    format_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--format-filter",
            help="Only the pairs read from this layout (the pairs' format column: sharegpt, "
            "claude_code, ...); repeat it or separate names with commas.",
        ),
    ] = None,
    model_filter: Annotated[
        list[str] | None,
        typer.Option(
            "--model-filter", help="Only the pairs of this model; repeat it or separate names with commas."
        ),
    ] = None,
    parquet: Annotated[
        bool,
        typer.Option(
            "--parquet",
            help="Also write train.parquet and validation.parquet (the card then points the loader at them).",
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier export in --dest.")
    ] = False,
) -> None:
    """Write a run's pairs in a format fine-tuning tools load, split by session, with a dataset card."""
    from jobs.export import ExportError, ExportOptions, export  # noqa: PLC0415 (only this command needs it)
    from transforms.export import EXPORT_FORMATS  # noqa: PLC0415

    _one_of(to, EXPORT_FORMATS, "--to")
    if not 0 <= val_share < 1:
        raise typer.BadParameter(
            f"must be at least 0 and below 1, not {val_share:g}", param_hint="'--val-share'"
        )
    if system is not None and not system.strip():
        raise typer.BadParameter("is empty: give the text, or leave --system out", param_hint="'--system'")
    options = ExportOptions(
        to=to,
        val_share=val_share,
        seed=seed,
        system=system,
        layouts=_filter_values(format_filter),
        models=_filter_values(model_filter),
        parquet=parquet,
    )
    try:
        done = export(out_dir, dest, options, overwrite=overwrite)
    except ExportError as error:
        raise typer.BadParameter(str(error), param_hint=f"'{error.option}'") from None
    err = Console(stderr=True)
    for folder in done.removed_scratch:
        err.print(f"removed {folder}: the scratch folder of a run that died", soft_wrap=True)
    _print_export(done.record, dest)


def _print_export(record: dict[str, Any], dest: Path) -> None:
    table = Table(title=f"compound export -> {dest} ({record['format']})")
    for column in ("split", "pairs", "share", "sessions", "share", "files"):
        table.add_column(
            column,
            justify="left" if column in ("split", "files") else "right",
            overflow="fold" if column == "files" else "ellipsis",
        )
    for split, figures in record["splits"].items():
        table.add_row(
            split,
            f"{figures['rows']:,}",
            f"{figures['row_share']:.2%}",
            f"{figures['sessions']:,}",
            f"{figures['session_share']:.2%}",
            ", ".join(record["files"].get(split, [])) or "none",
        )
    console = Console()
    console.print(table)
    console.print(
        f"{record['pairs_exported']:,} of the run's {record['pairs_read']:,} pairs exported to {dest} "
        f"(dataset card: {dest / 'README.md'})",
        soft_wrap=True,
    )


def _frame_table(title: str, frame: pl.DataFrame) -> Table:
    table = Table(title=title)
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="left" if dtype == pl.String else "right")
    for row in frame.iter_rows():
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main() -> None:
    """Entry point: a bad argument is one line on stderr and exit code 2, never a traceback."""
    try:
        exit_code = app(standalone_mode=False)  # an int only when the run was cut short
    except UsageError as error:
        command = error.ctx.command_path if error.ctx else "compound"
        print(f"{command}: error: {error.format_message()}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C in the run, or while typer builds the command
        exit_code = 130
    except OSError as error:  # the machine, not the input: a disk that filled, a folder removed under us
        print(f"compound: error: {error}; previous outputs left as they were", file=sys.stderr)
        sys.exit(1)
    if isinstance(exit_code, int) and exit_code:
        print("compound: interrupted; previous outputs left as they were", file=sys.stderr)
        sys.exit(exit_code)


def entry() -> None:
    """The ``compound`` command: ``main``, then, after a run that succeeded, an exit without
    the interpreter's teardown. Every output is closed and renamed into place by then;
    freeing the run's objects one by one only delays the exit (0.08 s on the 1 GB bench
    archive). Tests call ``main``, which returns."""
    main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    entry()
