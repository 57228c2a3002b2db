"""The ``compound`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

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

from jobs.discover import InputError, find_session_files
from jobs.outputs import Outputs
from jobs.pairs_job import PairRules, RunStats, run
from transforms.pairs import RESPONSE_MODES
from transforms.readers import format_names

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


@app.command()
def pairs(  # noqa: PLR0917 (typer passes every option by position)
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Session files or directories (searched recursively for .jsonl, .json, .traj, .db, "
            ".sqlite, also gzip/zstd compressed)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("out"),
    min_ratio: Annotated[
        float, typer.Option("--min-ratio", min=0.0, help="Minimum response/prompt word ratio.")
    ] = 1.5,
    min_words: Annotated[int, typer.Option("--min-words", min=0, help="Minimum response word count.")] = 20,
    responses: Annotated[
        str,
        typer.Option(
            "--responses",
            help="each: every assistant message pairs with the prompt before it (the reference's rule); "
            "final: only the last assistant text before the next prompt (the answer after a tool loop).",
        ),
    ] = "each",
    strip_think: Annotated[
        bool, typer.Option("--strip-think", help="Remove inline <think>...</think> blocks from message text.")
    ] = False,
    format_: Annotated[
        str | None,
        typer.Option("--format", help="Read every input as this layout instead of detecting it per file."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the stats and three sample pairs; write nothing.")
    ] = False,
) -> None:
    """Harvest terse prompt -> rich response pairs from session transcripts."""
    if responses not in RESPONSE_MODES:
        raise typer.BadParameter(f"must be one of {', '.join(RESPONSE_MODES)}", param_hint="'--responses'")
    if format_ is not None and format_ not in format_names():
        raise typer.BadParameter(f"must be one of {', '.join(format_names())}", param_hint="'--format'")
    try:
        files = find_session_files(inputs)
    except InputError as error:
        raise typer.BadParameter(str(error), param_hint="'INPUTS...'") from None
    rules = PairRules(min_ratio=min_ratio, min_words=min_words, responses=responses, strip_think=strip_think)
    err = Console(stderr=True)
    total_bytes = sum(path.stat().st_size for path in files)
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

        if dry_run:
            stats, samples = run(files, rules, None, forced_format=format_, on_batch=advance, sample_size=3)
        else:
            with Outputs(out) as outputs:
                stats, samples = run(files, rules, outputs, forced_format=format_, on_batch=advance)
                outputs.commit(stats.as_dict())
    if dry_run:
        _print_dry_run(stats, samples)
    else:
        _print_summary(stats, out, total_bytes)


def _print_dry_run(stats: RunStats, samples: list[dict[str, Any]]) -> None:
    """The reference's dry-run output: the stats, then three sample pairs."""
    print(json.dumps(stats.as_dict(), indent=2))
    for pair in samples:
        print(f"\n--- Source: {pair['source']} (ratio: {pair['ratio']}) ---")
        print(f"TERSE: {pair['terse'][:100]}...")
        print(f"RICH: {pair['rich'][:150]}...")


def _print_summary(stats: RunStats, out: Path, total_bytes: int) -> None:
    figures = stats.as_dict()
    table = Table(title=f"compound pairs -> {out}", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, object]] = [
        ("files scanned", figures["files_scanned"]),
        ("bytes read", f"{total_bytes:,}"),
        ("sessions", figures["sessions"]),
        ("messages", figures["messages"]),
        ("malformed lines (quarantine.jsonl)", figures["malformed_lines"]),
        ("damaged files (quarantine.jsonl)", figures["damaged_files"]),
        ("unrecognized files", len(figures["unrecognized_files"])),
        ("skipped messages", figures["skipped_messages"]),
        ("raw pairs", figures["raw_pairs"]),
        ("unique pairs (written)", figures["unique_pairs"]),
        ("duplicates removed", figures["duplicates_removed"]),
        ("avg prompt words", figures["avg_prompt_words"]),
        ("avg response words", figures["avg_response_words"]),
        ("avg ratio", figures["avg_ratio"]),
    ]
    rows += [(f"rejected: {reason}", count) for reason, count in figures["rejected"].items()]
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
    unrecognized = figures["unrecognized_files"]
    if unrecognized:
        listed = Table(title=f"unrecognized files ({len(unrecognized)}, also in stats.json)")
        listed.add_column("file")
        listed.add_column("reason")
        for entry in unrecognized[:20]:
            listed.add_row(entry["file"], entry["reason"])
        if len(unrecognized) > 20:
            listed.add_row(f"... and {len(unrecognized) - 20} more", "")
        console.print(listed)


def main() -> None:
    """Entry point: a bad argument is one line on stderr and exit code 2, never a traceback."""
    try:
        exit_code = app(standalone_mode=False)  # an int only when the run was cut short
    except UsageError as error:
        command = error.ctx.command_path if error.ctx else "compound"
        print(f"{command}: error: {error.format_message()}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        exit_code = 130
    if isinstance(exit_code, int) and exit_code:
        print("compound: interrupted; previous outputs left as they were", file=sys.stderr)
        sys.exit(exit_code)


if __name__ == "__main__":
    main()
