"""Benchmark ``compound pairs`` against the reference pair harvester.

Archives are synthetic session archives from ``../shared/bench/gen_archive.py``, generated
once and cached in ``--cache`` (one folder per generator setting, e.g.
``mb1000-files50-seed11-bad0-gzip0``). Three programs run as whole subprocesses:

- reference: ``python session_pair_harvester.py ARCHIVE -o FILE`` (reads ``*.jsonl`` only)
- compound: ``compound pairs ARCHIVE --out DIR`` from the current virtualenv, both outputs written
- parse floor: polars parsing the same files into the session schema and nothing else

Each is timed for its whole-process wall time and the peak RSS that ``wait4`` reports.

Two modes:

The suite (the default, and ``make bench``) measures every target of the issue in one run:

1. the clean 1 GB archive (``--mb 1000 --files 50 --bad-share 0 --seed 11``): reference,
   compound and parse floor, alternating for ``--runs`` rounds; each round also runs
   compound on the 1 GB archive with ``--bad-share 0.002``, so the malformed-line cost is
   measured side by side with the clean runs;
2. the gzip archive (``--gzip-share 1.0``): compound and parse floor, one run; the
   reference is not run there, since it reads only ``*.jsonl``;
3. the 2 GB and 4 GB clean archives: compound only, one run each, for peak RSS;
4. the archive shapes, built by ``bench/shapes.py`` from the generator's output and
   cached beside the archives (``<archive folder>-<shape>/data``), each for ``--runs``
   alternating rounds:
   - many files: 3000 files of about 100 KB with three runs of them merged into files of
     20 to 30 MB (``--mb 300 --files 3000 --seed 3``): reference and compound; and the same
     bytes cut into 50 files: compound;
   - one JSON array: the sessions of ``--mb 520 --files 20 --seed 7`` as one
     pretty-printed array, and that JSONL: compound on both;
   - a Hermes state.db: the sessions of ``--mb 640 --files 20 --seed 13`` as a SQLite
     database with the Hermes schema and its FTS5 table, and that JSONL: compound on both.
   ``--shapes-only`` runs these alone. bench/README.md describes them.
5. the incremental targets (``compound pairs --incremental``), built by
   ``bench/incremental_archive.py`` and cached beside the archives, ``--runs`` rounds:
   - a working copy of the clean 1 GB archive (``<archive folder>-incremental/data``),
     grown by 1% (the files of ``--mb 10 --files 20 --seed 12``: half copied in as new
     files, half appended to ten existing ones); each round puts it and the dataset back
     as they were after a first incremental run, grows it, then times the incremental
     run, a run with nothing new, and a full run (no ``--incremental``) of the same
     archive, and checks that the dataset's parts hold the full run's pairs;
   - a dedup index preloaded with 200 M random keys (one segment, ``index-200m-seed23``):
     the 1 GB archive into a dataset whose index lists it, alternating with one whose
     index is empty.
   ``--incremental-only`` runs these alone.

It ends with one targets table (target, measured figure, limit, PASS/FAIL, or ``report``
for a figure without a limit), also written to ``<cache>/results.json``. A missed target
is a figure to report, not an error: it does not change the exit status.

A single-archive run (``--mb``, for quick checks) measures one or more archives of the
given sizes with the given generator options and prints their reports, without a targets
table. ``--files``, ``--bad-share`` and ``--gzip-share`` belong to it.

Usage:
    uv run python bench/run_bench.py                        # the suite, 3 runs (~5 min, shapes ~3 more)
    uv run python bench/run_bench.py --runs 1               # the suite, 1 run
    uv run python bench/run_bench.py --mb 20 --runs 1       # one 20 MB archive, a quick check
    uv run python bench/run_bench.py --mb 1000 4000 --skip-reference
    make bench                                              # the suite (BENCH_RUNS=3)
    make bench BENCH_MB=20 BENCH_RUNS=1                     # one archive
    make bench BENCH_ARGS="--mb 20 --runs 1"                # the same
    uv run python bench/run_bench.py --compound-args="--parquet-compression lz4"   # the suite, lz4 Parquet
    uv run python bench/run_bench.py --shapes-only          # the archive shapes only
    uv run python bench/run_bench.py --incremental-only     # the incremental targets only

``--suite-scale F`` (not in ``--help``) multiplies the suite's archive sizes by ``F``, to
test the harness itself in seconds (``--suite-scale 0.01``: 10, 20 and 40 MB, shapes of
3 to 6 MB, an index of 2 M keys); its figures are not the issue's targets.

Exit status: 0 when every parity check passed (whether or not the targets were met), 1 on
a parity mismatch (pairs unlike the reference's, a JSON array whose pairs differ in
number from those of the same sessions as JSONL, an incremental dataset whose parts do
not hold the full run's pairs, or a preloaded index that changed the pairs written), 2
when an argument is bad or the reference, compound or the generator fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.incremental_archive import Growth

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
DEFAULT_GENERATOR = SHARED_DIR / "bench/gen_archive.py"
DEFAULT_REFERENCE = SHARED_DIR / "reference/session_pair_harvester.py"
DEFAULT_CACHE = BENCH_DIR / "cache"
COMPOUND_SCRIPT = Path(sys.executable).parent / "compound"

RESULTS_FILE = "results.json"
#: Written into an archive's folder once the generator has finished; a folder without it
#: is a half-written archive and is generated again. Not ``*.jsonl``, so no program reads it.
GENERATED_MARKER = "GENERATED.json"
#: What the reference reads; the archive's size and file count also take the gzip files.
SESSION_GLOB = "*.jsonl"
GZIP_SESSION_GLOB = "*.jsonl.gz"
#: The JSON array and the state.db of the archive shapes.
ARRAY_SESSION_GLOB = "*.json"
DB_SESSION_GLOB = "*.db"
PAIRS_FILE = "pairs.jsonl"

DEFAULT_SEED = 11
DEFAULT_RUNS = 3
DEFAULT_SINGLE_MB = 1000
RSS_BUDGET_MIB = 1024
#: The first argument that makes this script the parse-floor child instead of the bench.
PARSE_FLOOR_COMMAND = "parse-floor"
STDERR_TAIL_LINES = 15
PAGE_CACHE_CHUNK_BYTES = 16 * 1024 * 1024

# The suite: sizes at --suite-scale 1, and the issue's limits.
SUITE_MB = 1000
SUITE_RSS_MB = (2000, 4000)
SUITE_BAD_SHARE = 0.002
SUITE_GZIP_SHARE = 1.0
#: Runs on the gzip archive and on each RSS archive (the 1 GB archives get --runs).
SUITE_SINGLE_RUNS = 1
MIN_SPEEDUP = 4.0  # the 6x of issue 5 is retired
MAX_OVER_PARSE_FLOOR = 2.7
MAX_BAD_SHARE_COST = 1.10
#: Scrubbing secrets (the default) against --scrub none on the clean archive (issue 16).
MAX_SCRUB_COST = 1.15
#: "Peak RSS not growing with the archive": the largest archive's peak over the 1 GB peak.
#: The issue gives no number; this allows for noise, not for growth in proportion.
MAX_RSS_GROWTH = 1.25
REFERENCE_JSONL_ONLY = "reference reads only *.jsonl"

PASS, FAIL, REPORT, NOT_MEASURED = "PASS", "FAIL", "report", "n/a"


class BenchError(Exception):
    """A run the bench cannot go on from; the message is shown as is."""


@dataclass(frozen=True)
class ArchiveSpec:
    """The generator's parameters for one archive; they also name its cache folder."""

    mb: float  # an int but for the incremental targets' small growth archives
    files: int
    seed: int
    bad_share: float
    gzip_share: float
    #: A shape built from the generator's output (``bench/shapes.py``); "" for the output itself.
    shape: str = ""

    @property
    def folder_name(self) -> str:
        name = (
            f"mb{self.mb:g}-files{self.files}-seed{self.seed}-bad{self.bad_share:g}-gzip{self.gzip_share:g}"
        )
        return f"{name}-{self.shape}" if self.shape else name

    def shaped(self, shape: str) -> ArchiveSpec:
        """The spec of a shape built from this archive (or, chained, from a shape of it)."""
        return dataclasses.replace(self, shape=f"{self.shape}-{shape}" if self.shape else shape)

    def generator_options(self) -> list[str]:
        return [
            f"--mb={self.mb:g}",
            f"--files={self.files}",
            f"--seed={self.seed}",
            f"--bad-share={self.bad_share}",
            f"--gzip-share={self.gzip_share}",
        ]


def default_files(mb: int) -> int:
    """Files per archive: 20 MB each (50 at 1 GB), at least 10."""
    return max(10, mb // 20)


@dataclass(frozen=True)
class Sample:
    """One run of one program."""

    wall_s: float
    peak_rss_mib: float


@dataclass(frozen=True)
class ChildResult:
    exit_code: int
    sample: Sample


@dataclass
class Timings:
    """Every run of one program on one archive."""

    samples: list[Sample]

    @property
    def median_wall_s(self) -> float:
        return statistics.median(sample.wall_s for sample in self.samples)

    @property
    def median_peak_rss_mib(self) -> float:
        return statistics.median(sample.peak_rss_mib for sample in self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_wall_s": round(self.median_wall_s, 3),
            "median_peak_rss_mib": round(self.median_peak_rss_mib, 1),
            "wall_s": [round(sample.wall_s, 3) for sample in self.samples],
            "peak_rss_mib": [round(sample.peak_rss_mib, 1) for sample in self.samples],
        }


@dataclass(frozen=True)
class Parity:
    matches: bool
    reference_pairs: int
    compound_pairs: int
    first_difference_line: int | None

    def describe(self) -> str:
        if self.matches:
            return f"parity: OK ({self.compound_pairs:,} pairs)"
        return (
            f"parity: MISMATCH (reference {self.reference_pairs:,} pairs, "
            f"compound {self.compound_pairs:,}; first difference on line "
            f"{self.first_difference_line})"
        )


@dataclass
class ArchiveResult:
    label: str
    spec: ArchiveSpec
    folder: Path
    session_files: int
    gzip_files: int
    total_bytes: int
    compound: Timings
    reference: Timings | None
    reference_note: str | None
    parse_floor: Timings | None
    parse_floor_note: str | None
    parity: Parity | None
    pairs_written: int | None = None

    def speedup(self) -> float | None:
        if self.reference is None:
            return None
        return self.reference.median_wall_s / self.compound.median_wall_s

    def over_parse_floor(self) -> float | None:
        if self.parse_floor is None:
            return None
        return self.compound.median_wall_s / self.parse_floor.median_wall_s

    def as_dict(self) -> dict[str, Any]:
        speedup, over_floor = self.speedup(), self.over_parse_floor()
        return {
            "label": self.label,
            "archive": {
                **asdict(self.spec),
                "folder": str(self.folder),
                "session_files": self.session_files,
                "gzip_files": self.gzip_files,
                "bytes": self.total_bytes,
            },
            "reference": self.reference.as_dict() if self.reference else None,
            "reference_note": self.reference_note,
            "compound": self.compound.as_dict(),
            "parse_floor": self.parse_floor.as_dict() if self.parse_floor else None,
            "parse_floor_note": self.parse_floor_note,
            "speedup": round(speedup, 2) if speedup is not None else None,
            "compound_over_parse_floor": round(over_floor, 2) if over_floor is not None else None,
            "compound_rss_share_of_budget": round(self.compound.median_peak_rss_mib / RSS_BUDGET_MIB, 3),
            "parity": None if self.parity is None else asdict(self.parity),
            "pairs_written": self.pairs_written,
        }


# --- the parse-floor child -------------------------------------------------------------


def parse_sessions(files: Sequence[str]) -> None:
    """Only parse ``files`` into the session schema: the least any polars job must do."""
    import polars as pl  # noqa: PLC0415 - only this child needs polars

    message = pl.Struct({"from": pl.String, "value": pl.String})
    schema: dict[str, pl.DataType] = {
        "id": pl.String(),
        "model": pl.String(),
        "conversations": pl.List(message),
    }
    pl.scan_ndjson(list(files), schema=schema, ignore_errors=True).collect()


# --- archives ---------------------------------------------------------------------------


def ensure_archive(spec: ArchiveSpec, cache: Path, generator: Path) -> Path:
    """The archive's folder, generated first unless a finished copy is cached."""
    folder = cache / spec.folder_name
    if (folder / GENERATED_MARKER).is_file():
        print(f"archive {folder} (cached)", flush=True)
        return folder
    if folder.exists():
        shutil.rmtree(folder)  # a generation that never finished
    print(f"generating {folder} ...", flush=True)
    started = time.perf_counter()
    command = [sys.executable, str(generator), str(folder), *spec.generator_options()]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise BenchError(f"gen_archive.py failed:\n{completed.stderr}")
    seconds = time.perf_counter() - started
    summary = {**asdict(spec), "generator_output": completed.stdout.strip(), "seconds": seconds}
    (folder / GENERATED_MARKER).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"generated in {seconds:.1f} s", flush=True)
    return folder


def reference_files(folder: Path) -> list[Path]:
    """The files the reference reads (``*.jsonl`` only), in its order."""
    return sorted(folder.rglob(SESSION_GLOB))


def gzip_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(GZIP_SESSION_GLOB))


def document_files(folder: Path) -> list[Path]:
    """The shapes' JSON arrays and databases (``*.json``, ``*.db``), without the marker."""
    found = [*folder.rglob(ARRAY_SESSION_GLOB), *folder.rglob(DB_SESSION_GLOB)]
    return sorted(path for path in found if path.name != GENERATED_MARKER)


def warm_page_cache(files: Sequence[Path]) -> None:
    """Read every file once, so that the first timed run does not pay for a cold cache."""
    for path in files:
        with path.open("rb") as handle:
            while handle.read(PAGE_CACHE_CHUNK_BYTES):
                pass


# --- running and measuring children -----------------------------------------------------


def peak_rss_mib(ru_maxrss: int) -> float:
    """``ru_maxrss`` is in KiB on Linux and in bytes on macOS."""
    bytes_per_unit = 1 if sys.platform == "darwin" else 1024
    return ru_maxrss * bytes_per_unit / (1024 * 1024)


def run_measured(command: Sequence[str], stderr_log: Path) -> ChildResult:
    """Run ``command`` to its end; its wall time and the peak RSS that ``wait4`` reports.

    Files an earlier run wrote are flushed to disk first: otherwise the kernel writes
    them back during this run, on the same two cores (the reference's 400 MB of pairs
    cost the run after it about 0.1 s).
    """
    os.sync()
    with stderr_log.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        wall_s = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped: tell Popen
    return ChildResult(process.returncode, Sample(wall_s, peak_rss_mib(usage.ru_maxrss)))


def stderr_tail(stderr_log: Path) -> str:
    lines = stderr_log.read_text(errors="replace").splitlines()
    return "\n".join(lines[-STDERR_TAIL_LINES:])


def run_required(name: str, command: Sequence[str], stderr_log: Path) -> Sample:
    """Run a program that must succeed; a failure stops the bench with its stderr."""
    result = run_measured(command, stderr_log)
    if result.exit_code != 0:
        raise BenchError(f"{name} exited with {result.exit_code}:\n{stderr_tail(stderr_log)}")
    return result.sample


def reference_command(reference: Path, archive: Path, pairs_file: Path) -> list[str]:
    return [sys.executable, str(reference), str(archive), "-o", str(pairs_file)]


def compound_command(archive: Path, out_dir: Path, options: Sequence[str] = ()) -> list[str]:
    return [str(COMPOUND_SCRIPT), "pairs", str(archive), "--out", str(out_dir), *options]


def parse_floor_command(files: Sequence[Path]) -> list[str]:
    script = str(Path(__file__).resolve())
    return [sys.executable, script, PARSE_FLOOR_COMMAND, *map(str, files)]


# --- parity -----------------------------------------------------------------------------


def compare_pairs(reference_file: Path, compound_file: Path) -> Parity:
    """Whether both files hold the same records, line for line, once parsed as JSON."""
    reference_pairs = compound_pairs = 0
    first_difference: int | None = None
    with (
        reference_file.open(encoding="utf-8") as reference_lines,
        compound_file.open(encoding="utf-8") as compound_lines,
    ):
        pairs = itertools.zip_longest(reference_lines, compound_lines)
        for line_number, (reference_line, compound_line) in enumerate(pairs, start=1):
            reference_pairs += reference_line is not None
            compound_pairs += compound_line is not None
            if first_difference is None and not same_record(reference_line, compound_line):
                first_difference = line_number
    return Parity(
        matches=first_difference is None,
        reference_pairs=reference_pairs,
        compound_pairs=compound_pairs,
        first_difference_line=first_difference,
    )


def count_lines(path: Path) -> int:
    """Lines in ``path`` (a last line without its newline counts too)."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(PAGE_CACHE_CHUNK_BYTES):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def same_record(reference_line: str | None, compound_line: str | None) -> bool:
    if reference_line is None or compound_line is None:
        return False
    return bool(json.loads(reference_line) == json.loads(compound_line))


# --- one archive ------------------------------------------------------------------------


@dataclass(frozen=True)
class Programs:
    """What runs on one archive besides compound, and why what does not run does not."""

    reference: Path | None
    reference_note: str  # shown when reference is None
    parse_floor: bool
    parse_floor_note: str  # shown when parse_floor is False


@dataclass
class ArchiveBench:
    """The runs on one archive, collected round by round in a scratch folder."""

    label: str
    spec: ArchiveSpec
    folder: Path
    runs: int
    work: Path
    reference: Path | None
    reference_note: str | None  # why the reference does not run; None while it does
    parse_floor_note: str | None  # why the parse floor is not measured; None while it is
    reference_samples: list[Sample] = field(default_factory=list)
    compound_samples: list[Sample] = field(default_factory=list)
    parse_floor_samples: list[Sample] = field(default_factory=list)
    parity: Parity | None = None
    compound_options: tuple[str, ...] = ()  # --compound-args
    pairs_written: int | None = None  # lines of compound's pairs.jsonl, first round

    @classmethod
    def prepare(
        cls,
        label: str,
        spec: ArchiveSpec,
        folder: Path,
        *,
        runs: int,
        programs: Programs,
        work_root: Path,
        compound_options: Sequence[str] = (),
    ) -> ArchiveBench:
        """The bench of one archive, with its page cache warmed and its scratch folder made."""
        reference, reference_note = programs.reference, None
        if reference is None:
            reference_note = programs.reference_note
        elif gzip_files(folder):  # it would read only part of the archive
            reference, reference_note = None, REFERENCE_JSONL_ONLY
        work = work_root / spec.folder_name
        work.mkdir()
        bench = cls(
            label=label,
            spec=spec,
            folder=folder,
            runs=runs,
            work=work,
            reference=reference,
            reference_note=reference_note,
            parse_floor_note=None if programs.parse_floor else programs.parse_floor_note,
            compound_options=tuple(compound_options),
        )
        warm_page_cache(bench.files)
        return bench

    @property
    def files(self) -> list[Path]:
        """Every session file, gzip ones, JSON arrays and databases too: what compound (and
        the parse floor, on JSONL archives) reads."""
        folder = self.folder
        return sorted([*reference_files(folder), *gzip_files(folder), *document_files(folder)])

    def run_round(self, run: int) -> None:
        """Reference, compound, parity (first round only), then the parse floor."""
        reference_file = self.work / f"reference-{run}.jsonl"
        compound_dir = self.work / f"compound-{run}"
        if self.reference is not None:
            command = reference_command(self.reference, self.folder, reference_file)
            self.time_program(run, "reference", self.reference_samples, command)
        command = compound_command(self.folder, compound_dir, self.compound_options)
        self.time_program(run, "compound", self.compound_samples, command)
        if self.pairs_written is None and (compound_dir / PAIRS_FILE).is_file():  # not with --dry-run
            self.pairs_written = count_lines(compound_dir / PAIRS_FILE)
        if self.reference is not None and self.parity is None:
            self.parity = compare_pairs(reference_file, compound_dir / PAIRS_FILE)
            print(f"  {self.parity.describe()}", flush=True)
        reference_file.unlink(missing_ok=True)
        shutil.rmtree(compound_dir, ignore_errors=True)
        if self.parse_floor_note is None:
            self.run_parse_floor(run)

    def print_sample(self, run: int, name: str, sample: Sample) -> None:
        print(
            f"  run {run + 1}/{self.runs}  {self.label:<16} {name:<12} "
            f"{sample.wall_s:9.2f} s  {sample.peak_rss_mib:9.1f} MiB",
            flush=True,
        )

    def time_program(self, run: int, name: str, samples: list[Sample], command: list[str]) -> None:
        sample = run_required(name, command, self.work / f"{name}.stderr")
        samples.append(sample)
        self.print_sample(run, name, sample)

    def run_parse_floor(self, run: int) -> None:
        """Time the parse floor; if polars cannot parse the archive, note why and give up."""
        stderr_log = self.work / "parse-floor.stderr"
        floor = run_measured(parse_floor_command(self.files), stderr_log)
        if floor.exit_code == 0:
            self.parse_floor_samples.append(floor.sample)
            self.print_sample(run, "parse floor", floor.sample)
            return
        last_line = stderr_tail(stderr_log).rpartition("\n")[2]
        self.parse_floor_note = f"polars failed: {last_line}"
        self.parse_floor_samples.clear()
        print(f"  parse floor: n/a ({self.parse_floor_note})", flush=True)

    def result(self) -> ArchiveResult:
        files = self.files
        return ArchiveResult(
            label=self.label,
            spec=self.spec,
            folder=self.folder,
            session_files=len(files),
            gzip_files=len(gzip_files(self.folder)),
            total_bytes=sum(path.stat().st_size for path in files),
            compound=Timings(self.compound_samples),
            reference=Timings(self.reference_samples) if self.reference_samples else None,
            reference_note=self.reference_note,
            parse_floor=Timings(self.parse_floor_samples) if self.parse_floor_samples else None,
            parse_floor_note=self.parse_floor_note,
            parity=self.parity,
            pairs_written=self.pairs_written,
        )


def run_rounds(benches: Sequence[ArchiveBench], runs: int) -> None:
    """``runs`` rounds; each runs every bench's programs once, so they alternate."""
    for run in range(runs):
        if len(benches) > 1 and runs > 1:
            print(f"round {run + 1}/{runs}", flush=True)
        for archive_bench in benches:
            archive_bench.run_round(run)


# --- report -----------------------------------------------------------------------------


def format_row(name: str, timings: Timings | None, note: str | None) -> str:
    if timings is None:
        return f"{name:<12} {'n/a':>14} {'n/a':>22}   ({note or 'skipped'})"
    return f"{name:<12} {timings.median_wall_s:14.2f} {timings.median_peak_rss_mib:22.1f}"


def format_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def describe_files(result: ArchiveResult) -> str:
    if result.gzip_files == 0:
        return f"{result.session_files} files"
    if result.gzip_files == result.session_files:
        return f"{result.session_files} gzip files"
    return f"{result.session_files} files ({result.gzip_files} gzip)"


def print_report(result: ArchiveResult) -> None:
    rss = result.compound.median_peak_rss_mib
    verdict = "within budget" if rss <= RSS_BUDGET_MIB else "OVER BUDGET"
    runs = len(result.compound.samples)
    if result.parity is not None:
        parity = result.parity.describe()
    else:
        parity = f"parity: not checked ({result.reference_note or 'no reference run'})"
    lines = [
        "",
        f"== {result.label}: {result.spec.folder_name}: {result.total_bytes / 1e6:,.0f} MB in "
        f"{describe_files(result)}, median of {runs} run{'s' if runs > 1 else ''} ==",
        f"{'program':<12} {'wall s':>14} {'peak RSS MiB':>22}",
        format_row("reference", result.reference, result.reference_note),
        format_row("compound", result.compound, None),
        format_row("parse floor", result.parse_floor, result.parse_floor_note),
        f"speedup (reference / compound): {format_ratio(result.speedup())}",
        f"compound / parse floor:         {format_ratio(result.over_parse_floor())}",
        f"compound peak RSS:              {rss:.1f} MiB of {RSS_BUDGET_MIB} MiB "
        f"budget ({rss / RSS_BUDGET_MIB:.0%}, {verdict})",
        parity,
    ]
    if result.pairs_written is not None:
        lines.append(f"pairs written by compound: {result.pairs_written:,}")
    lines.append("")
    print("\n".join(lines), flush=True)


# --- targets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One row of the targets table."""

    name: str
    measured: str
    limit: str
    verdict: str  # PASS, FAIL, report (a figure without a limit) or n/a (not measured)
    value: float | None = None


def format_x(value: float) -> str:
    return f"{value:.2f}x"


def format_mib(value: float) -> str:
    return f"{value:,.0f} MiB"


def format_s(value: float) -> str:
    return f"{value:.2f} s"


def limit_target(
    name: str, value: float | None, limit: float, *, at_least: bool, fmt: Callable[[float], str]
) -> Target:
    limit_text = f"{'>=' if at_least else '<='} {fmt(limit)}"
    if value is None:
        return Target(name, "n/a", limit_text, NOT_MEASURED)
    met = value >= limit if at_least else value <= limit
    return Target(name, fmt(value), limit_text, PASS if met else FAIL, round(value, 4))


def report_target(name: str, value: float | None, fmt: Callable[[float], str]) -> Target:
    if value is None:
        return Target(name, "n/a", "report", NOT_MEASURED)
    return Target(name, fmt(value), "report", REPORT, round(value, 4))


@dataclass
class SuiteResults:
    """The suite's archives, filled in as it goes (a missing one is not measured yet)."""

    clean: ArchiveResult | None = None
    bad: ArchiveResult | None = None
    unscrubbed: ArchiveResult | None = None  # the clean archive with --scrub none
    gzip: ArchiveResult | None = None
    rss: list[ArchiveResult] = field(default_factory=list)
    # the archive shapes
    many_files: ArchiveResult | None = None
    few_files: ArchiveResult | None = None
    array: ArchiveResult | None = None
    array_jsonl: ArchiveResult | None = None
    state_db: ArchiveResult | None = None
    state_db_jsonl: ArchiveResult | None = None
    #: the incremental targets (not an archive's runs: the runs of a dataset that grows)
    incremental: IncrementalRuns | None = None

    def archives(self) -> list[ArchiveResult]:
        found = [self.clean, self.bad, self.unscrubbed, self.gzip, *self.rss, *self.shapes()]
        return [result for result in found if result is not None]

    def shapes(self) -> list[ArchiveResult | None]:
        return [
            self.many_files,
            self.few_files,
            self.array,
            self.array_jsonl,
            self.state_db,
            self.state_db_jsonl,
        ]


def ratio(numerator: ArchiveResult | None, denominator: ArchiveResult | None) -> float | None:
    """Median compound wall time of one archive over another's."""
    if numerator is None or denominator is None:
        return None
    return numerator.compound.median_wall_s / denominator.compound.median_wall_s


def suite_targets(suite: SuiteResults, sizes: SuiteSizes) -> list[Target]:
    clean, bad, gzip = suite.clean, suite.bad, suite.gzip
    mb = f"{sizes.mb} MB"
    targets = [
        limit_target(
            f"speedup over the reference, {mb}",
            clean.speedup() if clean else None,
            MIN_SPEEDUP,
            at_least=True,
            fmt=format_x,
        ),
        limit_target(
            f"compound / parse floor, {mb}",
            clean.over_parse_floor() if clean else None,
            MAX_OVER_PARSE_FLOOR,
            at_least=False,
            fmt=format_x,
        ),
        parity_target(f"parity with the reference, {mb}", clean),
    ]
    rss_results = [clean, *suite.rss] if clean else suite.rss
    targets.extend(
        limit_target(
            f"compound peak RSS, {result.spec.mb} MB",
            result.compound.median_peak_rss_mib,
            RSS_BUDGET_MIB,
            at_least=False,
            fmt=format_mib,
        )
        for result in rss_results
    )
    largest = max(sizes.rss_mb)
    growth = None
    if clean and suite.rss and suite.rss[-1].spec.mb == largest:
        growth = suite.rss[-1].compound.median_peak_rss_mib / clean.compound.median_peak_rss_mib
    targets.extend(
        [
            limit_target(
                f"peak RSS growth, {sizes.mb} -> {largest} MB",
                growth,
                MAX_RSS_GROWTH,
                at_least=False,
                fmt=format_x,
            ),
            limit_target(
                f"bad-share {SUITE_BAD_SHARE:g} / clean, compound, {mb}",
                ratio(bad, clean),
                MAX_BAD_SHARE_COST,
                at_least=False,
                fmt=format_x,
            ),
            limit_target(
                f"scrubbing: compound / compound --scrub none, {mb}",
                ratio(clean, suite.unscrubbed),
                MAX_SCRUB_COST,
                at_least=False,
                fmt=format_x,
            ),
            report_target(
                f"gzip: compound wall, {mb}", gzip.compound.median_wall_s if gzip else None, format_s
            ),
            report_target(
                f"gzip: compound peak RSS, {mb}",
                gzip.compound.median_peak_rss_mib if gzip else None,
                format_mib,
            ),
            report_target(f"gzip / clean, compound, {mb}", ratio(gzip, clean), format_x),
            report_target(
                f"gzip: compound / parse floor, {mb}", gzip.over_parse_floor() if gzip else None, format_x
            ),
        ]
    )
    return targets


def shape_targets(suite: SuiteResults, specs: ShapeSpecs) -> list[Target]:
    """The targets of the three archive shapes (``bench/shapes.py``)."""
    many, array, state_db = suite.many_files, suite.array, suite.state_db
    # named by the generator's --mb: the files come out larger (bench/README.md)
    many_label = f"many files (--mb {specs.many_files.mb})"
    array_label = f"JSON array (--mb {specs.array.mb})"
    db_label = f"state.db (--mb {specs.state_db.mb})"
    return [
        limit_target(
            f"{many_label}: speedup over the reference",
            many.speedup() if many else None,
            MIN_MANY_FILES_SPEEDUP,
            at_least=True,
            fmt=format_x,
        ),
        limit_target(
            f"{many_label}: compound, many / same sessions in {specs.few_files_count} files",
            ratio(many, suite.few_files),
            MAX_MANY_OVER_FEW_FILES,
            at_least=False,
            fmt=format_x,
        ),
        parity_target(f"{many_label}: parity with the reference", many),
        *beside_its_jsonl(
            array_label, "array", array, suite.array_jsonl, max_ratio=MAX_ARRAY_OVER_JSONL, same_pairs=True
        ),
        *beside_its_jsonl(
            db_label,
            "state.db",
            state_db,
            suite.state_db_jsonl,
            max_ratio=MAX_STATE_DB_OVER_JSONL,
            same_pairs=False,
        ),
    ]


#: What ``make bench-ray`` (bench/ray_bench.py) writes into the cache, and its target.
RAY_RESULTS_FILE = "ray-results.json"
MAX_RAY_OVER_LOCAL = 1.5


def ray_targets(cache: Path) -> list[Target]:
    """The Ray engine's rows, from the last ``make bench-ray`` (a Ray node started on
    this machine takes the run's two cores, so the suite does not run it): the figures
    say when and at which commit they were measured, and are n/a until it has run."""
    path = cache / RAY_RESULTS_FILE
    label = "Ray engine (make bench-ray"
    try:
        saved = json.loads(path.read_text())
        label += f", {saved['measured_at']}, {saved['commit']})"  # undated figures are not shown
        ratio_over_local = float(saved["ratio"])
        same = all(saved["same"].values())
        nodes = len(saved["two_nodes"]["ray"]["tasks_per_node"])
        pairs = int(saved["pairs"])
    except (OSError, ValueError, KeyError, TypeError):
        label += ", no dated figures)"
        return [
            limit_target(
                f"{label}: Ray / local wall", None, MAX_RAY_OVER_LOCAL, at_least=False, fmt=format_x
            ),
            Target(f"{label}: same outputs as the local engine", "n/a", "same pairs", NOT_MEASURED),
            Target(f"{label}: two 1-CPU nodes, nodes given tasks", "n/a", ">= 2", NOT_MEASURED),
        ]
    return [
        limit_target(
            f"{label}: Ray / local wall", ratio_over_local, MAX_RAY_OVER_LOCAL, at_least=False, fmt=format_x
        ),
        Target(
            f"{label}: same outputs as the local engine",
            f"{'OK' if same else 'DIFFERENT'}, {pairs:,} pairs",
            "same pairs",
            PASS if same else FAIL,
        ),
        Target(
            f"{label}: two 1-CPU nodes, nodes given tasks", str(nodes), ">= 2", PASS if nodes >= 2 else FAIL
        ),
    ]


def beside_its_jsonl(
    label: str,
    kind: str,
    shape: ArchiveResult | None,
    jsonl: ArchiveResult | None,
    *,
    max_ratio: float,
    same_pairs: bool,
) -> list[Target]:
    """A shape read from the same sessions as a JSONL archive: its peak RSS, its time
    against the JSONL's, and the pairs both wrote (a parity check when ``same_pairs``)."""
    return [
        limit_target(
            f"{label}: compound peak RSS",
            shape.compound.median_peak_rss_mib if shape else None,
            RSS_BUDGET_MIB,
            at_least=False,
            fmt=format_mib,
        ),
        limit_target(
            f"{label}: compound, {kind} / JSONL", ratio(shape, jsonl), max_ratio, at_least=False, fmt=format_x
        ),
        pairs_count_target(
            f"{label}: pairs, {kind} {'=' if same_pairs else '/'} JSONL", shape, jsonl, must_match=same_pairs
        ),
    ]


def pairs_count_target(
    name: str, result: ArchiveResult | None, other: ArchiveResult | None, *, must_match: bool
) -> Target:
    """The pairs compound wrote on two archives of the same sessions: a parity check when
    ``must_match``, else a figure to report."""
    limit = "same count" if must_match else REPORT
    if result is None or other is None or result.pairs_written is None or other.pairs_written is None:
        return Target(name, "n/a", limit, NOT_MEASURED)
    count, other_count = result.pairs_written, other.pairs_written
    if not must_match:
        return Target(name, f"{count:,} / {other_count:,}", limit, REPORT, count)
    if count == other_count:
        return Target(name, f"{count:,} = {other_count:,}", limit, PASS, count)
    return Target(name, f"MISMATCH {count:,} != {other_count:,}", limit, FAIL, count)


def pairs_count_mismatches(suite: SuiteResults) -> list[str]:
    """The shapes whose pairs must match their JSONL's in number and do not."""
    array, jsonl = suite.array, suite.array_jsonl
    if array is None or jsonl is None or None in {array.pairs_written, jsonl.pairs_written}:
        return []
    if array.pairs_written == jsonl.pairs_written:
        return []
    return [f"{array.label} ({array.pairs_written} pairs) against {jsonl.label} ({jsonl.pairs_written})"]


def parity_target(name: str, result: ArchiveResult | None) -> Target:
    if result is None or result.parity is None:
        note = result.reference_note if result else None
        return Target(name, f"n/a ({note})" if note else "n/a", "same pairs", NOT_MEASURED)
    parity = result.parity
    if parity.matches:
        return Target(name, f"OK, {parity.compound_pairs:,} pairs", "same pairs", PASS)
    measured = f"MISMATCH at line {parity.first_difference_line}"
    return Target(name, measured, "same pairs", FAIL)


def print_targets(
    targets: Sequence[Target],
    sizes: SuiteSizes,
    runs: int,
    compound_options: Sequence[str] = (),
    *,
    shapes_only: bool = False,
    incremental_only: bool = False,
) -> None:
    name_width = max(len("target"), *(len(target.name) for target in targets))
    measured_width = max(len("measured"), *(len(target.measured) for target in targets))
    limit_width = max(len("limit"), *(len(target.limit) for target in targets))
    header = f"== targets: median of {runs} alternating run{'s' if runs > 1 else ''}"
    if shapes_only:
        header += " on the archive shapes only (--shapes-only)"
    elif incremental_only:
        header += f" of the incremental targets only (--incremental-only) at {sizes.mb} MB"
    else:
        header += f" at {sizes.mb} MB"
    if sizes.scale != 1:
        header += f"; SCALED SUITE (--suite-scale {sizes.scale:g}): not the issue's figures"
    if compound_options:
        header += f"; compound run with {shlex.join(compound_options)}"
    lines = [
        "",
        f"{header} ==",
        f"{'target':<{name_width}}  {'measured':>{measured_width}}  {'limit':<{limit_width}}  verdict",
    ]
    lines.extend(
        f"{target.name:<{name_width}}  {target.measured:>{measured_width}}  "
        f"{target.limit:<{limit_width}}  {target.verdict}"
        for target in targets
    )
    limited = [target for target in targets if target.verdict in {PASS, FAIL}]
    missed = [target.name for target in limited if target.verdict == FAIL]
    unmeasured = [target.name for target in targets if target.verdict == NOT_MEASURED]
    lines.append("")
    if missed:
        lines.append(
            f"TARGETS MISSED: {len(missed)} of {len(limited)} ({'; '.join(missed)}). "
            "A missed target is a figure to report, not an error: it does not change the exit status."
        )
    else:
        lines.append(f"all {len(limited)} measured targets met.")
    if unmeasured:
        lines.append(f"not measured: {'; '.join(unmeasured)}.")
    if not (shapes_only or incremental_only):
        lines.append(f"gzip: no speedup or parity, the reference is not run there ({REFERENCE_JSONL_ONLY}).")
    if not incremental_only:
        lines.append(
            f"shapes: {runs} alternating round{'s' if runs > 1 else ''} each (--runs); the JSON array and "
            "the state.db are timed against the JSONL they were built from; see bench/README.md."
        )
    if not shapes_only:
        lines.append(
            f"incremental: {runs} round{'s' if runs > 1 else ''} (--runs), each the archive grown again "
            "from the first run's dataset; the index's runs alternate with an empty index's; "
            "see bench/README.md."
        )
    print("\n".join(lines), flush=True)


# --- results.json -----------------------------------------------------------------------


def git_revision() -> dict[str, Any] | None:
    """The commit measured, and whether the working tree had changes on top of it."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        commit = run_git(git, "rev-parse", "HEAD").strip()
        status = run_git(git, "status", "--porcelain")
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def run_git(git: str, *arguments: str) -> str:
    command = [git, *arguments]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout


def write_results(
    path: Path,
    results: Sequence[ArchiveResult],
    runs: int,
    suite: dict[str, Any] | None = None,
    targets: Sequence[Target] | None = None,
    *,
    compound_options: Sequence[str] = (),
    incremental: dict[str, Any] | None = None,
) -> None:
    document = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "polars": metadata.version("polars"),
        },
        "git": git_revision(),
        "mode": "archives" if suite is None else "suite",
        "suite": suite,
        "runs": runs,
        "compound_args": list(compound_options),
        "rss_budget_mib": RSS_BUDGET_MIB,
        "targets": None if targets is None else [asdict(target) for target in targets],
        "archives": [result.as_dict() for result in results],
        "incremental": incremental,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


# --- command line -----------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


#: Options that only a single-archive run (``--mb``) takes.
ARCHIVE_OPTIONS = {"files": "--files", "bad_share": "--bad-share", "gzip_share": "--gzip-share"}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark `compound pairs` against the reference pair harvester. Without --mb: "
        "the suite (clean, bad-share and gzip 1 GB archives, 2 and 4 GB for RSS, the archive shapes, "
        "the incremental targets) and its targets table; with --mb: the given archives only."
    )
    parser.add_argument(
        "--mb",
        type=positive_int,
        nargs="+",
        help="benchmark one archive per size in MB instead of the suite (e.g. --mb 20 for a quick check)",
    )
    parser.add_argument(
        "--files", type=positive_int, help="with --mb: files per archive (default: max(10, mb // 20))"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default: {DEFAULT_SEED})"
    )
    parser.add_argument("--bad-share", type=share, help="with --mb: share of malformed lines (default: 0)")
    parser.add_argument(
        "--gzip-share", type=share, help="with --mb: share of files written as .jsonl.gz (default: 0)"
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=DEFAULT_RUNS,
        help=f"runs of each program per archive; in the suite, on the 1 GB archives "
        f"(default: {DEFAULT_RUNS})",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"archives and results.json (default: {DEFAULT_CACHE})",
    )
    parser.add_argument(
        "--skip-reference", action="store_true", help="measure compound and the parse floor only"
    )
    parser.add_argument(
        "--compound-args",
        type=shlex.split,
        default=[],
        metavar="ARGS",
        help="more options for every compound run, as one string "
        "(e.g. --compound-args='--parquet-compression lz4'); recorded in results.json",
    )
    parser.add_argument(
        "--generator",
        type=Path,
        default=DEFAULT_GENERATOR,
        help=f"gen_archive.py (default: {DEFAULT_GENERATOR})",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=DEFAULT_REFERENCE,
        help=f"the reference script (default: {DEFAULT_REFERENCE})",
    )
    parser.add_argument(
        "--shapes-only",
        action="store_true",
        help="in the suite, bench only the archive shapes (many small files, one JSON array, a "
        "Hermes state.db), not the issue's 1/2/4 GB archives",
    )
    parser.add_argument(
        "--incremental-only",
        action="store_true",
        help="in the suite, bench only the incremental targets (the 1 GB archive grown by 1%%, "
        "then unchanged; a dedup index preloaded with 200 M keys)",
    )
    # Scales the suite's archive sizes, to test this script in seconds.
    parser.add_argument("--suite-scale", type=positive_float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mb is None:
        given = [option for name, option in ARCHIVE_OPTIONS.items() if getattr(args, name) is not None]
        if given:
            parser.error(
                f"{', '.join(given)}: only with --mb (a single-archive run); the suite picks its own archives"
            )
    elif args.suite_scale is not None:
        parser.error("--suite-scale only applies to the suite, not with --mb")
    elif args.shapes_only or args.incremental_only:
        parser.error("--shapes-only and --incremental-only only apply to the suite, not with --mb")
    if args.shapes_only and args.incremental_only:
        parser.error("--shapes-only and --incremental-only: one or the other")
    return args


def check_programs(args: argparse.Namespace) -> None:
    needed = [("gen_archive.py", args.generator), ("compound", COMPOUND_SCRIPT)]
    if not args.skip_reference:
        needed.append(("the reference", args.reference))
    for name, path in needed:
        if not path.is_file():
            raise BenchError(f"{name} not found at {path}")


def reference_programs(args: argparse.Namespace) -> Programs:
    """Reference, compound and parse floor, unless --skip-reference."""
    reference = None if args.skip_reference else args.reference.resolve()
    return Programs(reference, "skipped: --skip-reference", parse_floor=True, parse_floor_note="")


def exit_status(results: Sequence[ArchiveResult], count_mismatches: Sequence[str] = ()) -> int:
    """1 if a parity check failed: pairs unlike the reference's, or (``count_mismatches``)
    a shape whose pairs differ in number from those of the same sessions as JSONL."""
    mismatches = [result for result in results if result.parity is not None and not result.parity.matches]
    labels = [*(result.label for result in mismatches), *count_mismatches]
    if labels:
        print(f"PARITY MISMATCH on {', '.join(labels)}: exit status 1", flush=True)
        return 1
    return 0


# --- the single-archive run -------------------------------------------------------------


def archive_specs(args: argparse.Namespace) -> list[ArchiveSpec]:
    return [
        ArchiveSpec(
            mb=mb,
            files=args.files or default_files(mb),
            seed=args.seed,
            bad_share=args.bad_share or 0.0,
            gzip_share=args.gzip_share or 0.0,
        )
        for mb in args.mb
    ]


def bench_archives(args: argparse.Namespace, cache: Path) -> int:
    """Each archive of ``--mb`` in turn: its programs alternating for ``--runs`` rounds."""
    programs = reference_programs(args)
    results: list[ArchiveResult] = []
    with tempfile.TemporaryDirectory(prefix="run-", dir=cache) as work:
        for spec in archive_specs(args):
            folder = ensure_archive(spec, cache, args.generator)
            archive_bench = ArchiveBench.prepare(
                f"{spec.mb} MB",
                spec,
                folder,
                runs=args.runs,
                programs=programs,
                work_root=Path(work),
                compound_options=args.compound_args,
            )
            run_rounds([archive_bench], args.runs)
            results.append(archive_bench.result())
            print_report(results[-1])
            write_results(cache / RESULTS_FILE, results, args.runs, compound_options=args.compound_args)
    print(f"results: {cache / RESULTS_FILE}")
    return exit_status(results)


# --- the archive shapes -----------------------------------------------------------------

# Each shape at --suite-scale 1: the generator's settings (MB of JSONL, files, seed; no
# malformed lines) and the limits. bench/shapes.py builds the shapes from its output.
MANY_FILES_MB, MANY_FILES_FILES, MANY_FILES_SEED = 300, 3000, 3
#: The big files among the many small ones: each merges the consecutive files from a
#: share of the file list on, until it holds at least that many MB.
MANY_FILES_MERGES = ((0.1, 20), (0.45, 25), (0.8, 30))
FEW_FILES = 50
ARRAY_MB, ARRAY_FILES, ARRAY_SEED = 520, 20, 7
STATE_DB_MB, STATE_DB_FILES, STATE_DB_SEED = 640, 20, 13
MIN_MANY_FILES_SPEEDUP = 3.5
MAX_MANY_OVER_FEW_FILES = 1.25
MAX_ARRAY_OVER_JSONL = 1.5
MAX_STATE_DB_OVER_JSONL = 1.5
#: A shape's files sit in this folder of its cache folder, away from the marker (which
#: compound would otherwise read as one more ``.json`` file).
SHAPE_DATA = "data"
ARRAY_FILE = "sessions.json"
STATE_DB_FILE = "state.db"
SHAPES_NO_FLOOR = "not run on the shapes"


@dataclass(frozen=True)
class ShapeSpecs:
    """The archives of the three shapes, and the generated archives they are built from."""

    scale: float
    many_generated: ArchiveSpec  # gen_archive.py output, 3000 files of about 100 KB
    merges: tuple[tuple[float, int], ...]  # (start share, min bytes) of each big file
    many_files: ArchiveSpec  # the same with a few runs of files merged into big ones
    few_files_count: int
    few_files: ArchiveSpec  # the same bytes in FEW_FILES files
    array_jsonl: ArchiveSpec  # gen_archive.py output
    array: ArchiveSpec  # its sessions as one pretty-printed JSON array
    state_db_jsonl: ArchiveSpec  # gen_archive.py output
    state_db: ArchiveSpec  # its sessions as a Hermes state.db

    @classmethod
    def scaled(cls, scale: float) -> ShapeSpecs:
        def size(mb: int) -> int:
            return max(1, round(mb * scale))

        many_generated = ArchiveSpec(
            size(MANY_FILES_MB), max(10, round(MANY_FILES_FILES * scale)), MANY_FILES_SEED, 0.0, 0.0
        )
        merges = tuple((start, round(mb * 1e6 * scale)) for start, mb in MANY_FILES_MERGES)
        many_files = many_generated.shaped(
            f"big{'+'.join(f'{mb * scale:g}' for _, mb in MANY_FILES_MERGES)}mb"
        )
        few = max(2, round(FEW_FILES * scale))
        array_jsonl = ArchiveSpec(size(ARRAY_MB), ARRAY_FILES, ARRAY_SEED, 0.0, 0.0)
        state_db_jsonl = ArchiveSpec(size(STATE_DB_MB), STATE_DB_FILES, STATE_DB_SEED, 0.0, 0.0)
        return cls(
            scale=scale,
            many_generated=many_generated,
            merges=merges,
            many_files=many_files,
            few_files_count=few,
            few_files=many_files.shaped(f"in{few}files"),
            array_jsonl=array_jsonl,
            array=array_jsonl.shaped("array-indent2"),
            state_db_jsonl=state_db_jsonl,
            state_db=state_db_jsonl.shaped("statedb"),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_shape(spec: ArchiveSpec, cache: Path, build: Callable[[Path], dict[str, Any]]) -> Path:
    """The folder of a shape's files (``<cache>/<spec folder>/data``), built first by
    ``build(folder)`` unless a finished copy is cached (its marker sits beside ``data``)."""
    folder = cache / spec.folder_name
    data = folder / SHAPE_DATA
    if (folder / GENERATED_MARKER).is_file():
        print(f"archive {data} (cached)", flush=True)
        return data
    if folder.exists():
        shutil.rmtree(folder)  # a build that never finished
    print(f"building {data} ...", flush=True)
    started = time.perf_counter()
    data.mkdir(parents=True)
    built = build(data)
    seconds = time.perf_counter() - started
    summary = {**asdict(spec), "built": built, "seconds": round(seconds, 1)}
    (folder / GENERATED_MARKER).write_text(json.dumps(summary, indent=2) + "\n")
    shown = {key: value for key, value in built.items() if key != "source"}
    print(f"built in {seconds:.1f} s: {json.dumps(shown)}", flush=True)
    return data


def ensure_shapes(specs: ShapeSpecs, cache: Path, generator: Path) -> dict[ArchiveSpec, Path]:
    """Every archive the shapes' benches read, generated and built unless cached."""
    from bench import shapes  # noqa: PLC0415 - kept out of the parse-floor child's start

    sources = (specs.many_generated, specs.array_jsonl, specs.state_db_jsonl)
    generated = {spec: ensure_archive(spec, cache, generator) for spec in sources}
    merges = [shapes.Merge(start, min_bytes) for start, min_bytes in specs.merges]
    many = ensure_shape(
        specs.many_files,
        cache,
        lambda data: shapes.merge_runs(generated[specs.many_generated], data, merges),
    )
    few = ensure_shape(
        specs.few_files, cache, lambda data: shapes.split_lines(many, data, specs.few_files_count)
    )
    array = ensure_shape(
        specs.array,
        cache,
        lambda data: shapes.write_json_array(generated[specs.array_jsonl], data / ARRAY_FILE),
    )
    state_db = ensure_shape(
        specs.state_db,
        cache,
        lambda data: shapes.write_state_db(generated[specs.state_db_jsonl], data / STATE_DB_FILE),
    )
    return {
        specs.many_files: many,
        specs.few_files: few,
        specs.array_jsonl: generated[specs.array_jsonl],
        specs.array: array,
        specs.state_db_jsonl: generated[specs.state_db_jsonl],
        specs.state_db: state_db,
    }


def bench_shapes(
    args: argparse.Namespace,
    specs: ShapeSpecs,
    *,
    folders: dict[ArchiveSpec, Path],
    suite: SuiteResults,
    report: Callable[[ArchiveResult], None],
    work: Path,
) -> None:
    """Each shape beside what it is compared with, alternating for ``--runs`` rounds."""
    reference = None if args.skip_reference else args.reference.resolve()
    with_reference = Programs(reference, "skipped: --skip-reference", False, SHAPES_NO_FLOOR)
    compound_only = Programs(None, "compound only on this shape", False, SHAPES_NO_FLOOR)
    rounds = f"{args.runs} alternating round{'s' if args.runs > 1 else ''}"

    def side_by_side(
        title: str,
        first: tuple[str, ArchiveSpec, Programs],
        second: tuple[str, ArchiveSpec, Programs],
        options: Sequence[str] = (),
    ) -> tuple[ArchiveResult, ArchiveResult]:
        """Two archives measured in alternating rounds (compound run with ``options`` too),
        then reported."""
        print(f"-- {title}, {rounds}", flush=True)
        benches = [
            ArchiveBench.prepare(
                label,
                spec,
                folders[spec],
                runs=args.runs,
                programs=programs,
                work_root=work,
                compound_options=(*args.compound_args, *options),
            )
            for label, spec, programs in (first, second)
        ]
        run_rounds(benches, args.runs)
        results = benches[0].result(), benches[1].result()
        for result in results:
            report(result)
        return results

    few_label = f"in {specs.few_files_count} files"
    suite.many_files, suite.few_files = side_by_side(
        f"many files (--mb {specs.many_files.mb}; reference, compound) and the same sessions "
        f"{few_label} (compound)",
        ("many files", specs.many_files, with_reference),
        (few_label, specs.few_files, compound_only),
    )
    suite.array, suite.array_jsonl = side_by_side(
        f"JSON array (--mb {specs.array.mb}) and the same sessions as JSONL (compound)",
        ("JSON array", specs.array, compound_only),
        ("array JSONL", specs.array_jsonl, compound_only),
    )
    suite.state_db, suite.state_db_jsonl = side_by_side(
        f"state.db (--mb {specs.state_db.mb}) and the JSONL it was built from (compound)",
        ("state.db", specs.state_db, compound_only),
        ("state.db JSONL", specs.state_db_jsonl, compound_only),
        # a Hermes store is an agent's (--responses auto reads it as final), its JSONL a
        # chat's: the same rule on both, for the same pairs
        options=("--responses", "each"),
    )


# --- the incremental targets ------------------------------------------------------------

# At --suite-scale 1. bench/incremental_archive.py builds the archives from the generator's
# output. The content added to the 1 GB archive: this share of it, generated (with the
# archive's seed + 1) into INCREMENTAL_GROWTH_FILES files, every other one copied in as a
# new file, the others appended to INCREMENTAL_GROWN_FILES existing files.
INCREMENTAL_GROWTH_SHARE = 0.01
INCREMENTAL_GROWTH_FILES = 20
INCREMENTAL_GROWN_FILES = 10
MAX_INCREMENTAL_OVER_FULL = 0.10
MAX_INCREMENTAL_BYTES_SHARE = 0.02
#: An incremental run with nothing new: at most this plus the time to stat the archive's files.
MAX_NOTHING_NEW_S = 1.0
#: The stat of the archive's files is timed this many times a round; the figure is the median.
STAT_REPEATS = 5
#: Between growing the archive and the incremental run: more than the job's 2 s "racy"
#: margin (a file modified that close before the previous run began is read again), so
#: that the run with nothing new, after it, takes every file for unchanged.
RACY_SLEEP_S = 2.1
#: The preloaded dedup index: random keys, a 500 GB archive's worth (at least
#: MIN_PRELOAD_KEYS at any --suite-scale).
PRELOAD_KEYS = 200_000_000
MIN_PRELOAD_KEYS = 1_000_000
PRELOAD_SEED = 23
MAX_PRELOAD_SLOWDOWN = 1.20
#: The archive of the first run into the preloaded-index datasets: one small generated
#: file, away from the 1 GB archive's path.
TINY_MB, TINY_SEED = 0.2, 5
#: The working copy of the 1 GB archive: ``<archive folder>-incremental/data``.
INCREMENTAL_SHAPE = "incremental"
STATS_JSON = "stats.json"
INCREMENTAL_LABEL, INDEX_LABEL = "grown 1%", "index"


@dataclass(frozen=True)
class IncrementalSpecs:
    """The archives and the index of the incremental targets."""

    scale: float
    archive: ArchiveSpec  # the clean 1 GB archive
    growth: ArchiveSpec  # gen_archive.py output: what the archive grows by
    grown_files: int  # existing files appended to
    tiny: ArchiveSpec  # the first run of the preloaded-index datasets
    preload_keys: int
    preload_seed: int

    @classmethod
    def of(cls, sizes: SuiteSizes, seed: int) -> IncrementalSpecs:
        archive = clean_spec(sizes.mb, seed)
        growth_mb = round(archive.mb * INCREMENTAL_GROWTH_SHARE, 6)
        return cls(
            scale=sizes.scale,
            archive=archive,
            growth=ArchiveSpec(growth_mb, INCREMENTAL_GROWTH_FILES, seed + 1, 0.0, 0.0),
            grown_files=INCREMENTAL_GROWN_FILES,
            tiny=ArchiveSpec(TINY_MB, 1, TINY_SEED, 0.0, 0.0),
            preload_keys=max(MIN_PRELOAD_KEYS, round(PRELOAD_KEYS * sizes.scale)),
            preload_seed=PRELOAD_SEED,
        )

    @property
    def index_folder_name(self) -> str:
        return f"index-{self.preload_keys / 1e6:g}m-seed{self.preload_seed}"

    @property
    def keys_label(self) -> str:
        return f"{self.preload_keys / 1e6:g}M keys"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"index_folder": self.index_folder_name}


@dataclass(frozen=True)
class IncrementalFolders:
    """Where the incremental targets' archives and index are."""

    source: Path  # the generated archive, never modified
    copy: Path  # its working copy, which grows
    files: list[Path]  # the archive's session files, relative, in reading order
    growth: Growth
    tiny: Path
    segments: Path  # the folder of the preloaded segment
    segment: str


def ensure_incremental(specs: IncrementalSpecs, cache: Path, generator: Path) -> IncrementalFolders:
    """The archives and the index of the incremental targets, generated and copied unless cached."""
    from bench import incremental_archive  # noqa: PLC0415 - kept out of the parse-floor child's start

    source = ensure_archive(specs.archive, cache, generator)
    growth_folder = ensure_archive(specs.growth, cache, generator)
    tiny = ensure_archive(specs.tiny, cache, generator)
    files = incremental_archive.session_files(source)
    growth = incremental_archive.plan_growth(
        files,
        [growth_folder / path for path in incremental_archive.session_files(growth_folder)],
        grown_files=specs.grown_files,
        first_number=specs.archive.files,
    )
    copy_folder = cache / specs.archive.shaped(INCREMENTAL_SHAPE).folder_name
    copy = copy_folder / SHAPE_DATA
    marker = copy_folder / GENERATED_MARKER
    started = time.perf_counter()
    if not marker.is_file():
        if copy_folder.exists():
            shutil.rmtree(copy_folder)  # a copy that never finished
        print(f"copying {source} to {copy} ...", flush=True)
    # every round puts the working copy back as generated; so does this, after a bench
    # that stopped in the middle of a round
    copied = incremental_archive.sync_working_copy(source, copy, files, growth.grown)
    if marker.is_file():
        print(f"archive {copy} (cached; {copied} files copied again)", flush=True)
    else:
        seconds = time.perf_counter() - started
        summary = {**asdict(specs.archive), "source": str(source), "files": len(files), "seconds": seconds}
        marker.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"copied in {seconds:.1f} s", flush=True)
    segments, segment = ensure_key_segment(specs, cache)
    return IncrementalFolders(source, copy, files, growth, tiny, segments, segment)


def ensure_key_segment(specs: IncrementalSpecs, cache: Path) -> tuple[Path, str]:
    """The folder and the name of the preloaded index's segment, written unless cached."""
    from bench import incremental_archive  # noqa: PLC0415

    folder = cache / specs.index_folder_name
    marker = folder / GENERATED_MARKER
    if marker.is_file():
        name = str(json.loads(marker.read_text())["segment"])
        print(f"index segment {folder / name} (cached)", flush=True)
        return folder, name
    if folder.exists():
        shutil.rmtree(folder)  # a segment that never finished
    print(f"writing {specs.preload_keys:,} random keys into {folder} ...", flush=True)
    started = time.perf_counter()
    name = incremental_archive.write_random_segment(folder, specs.preload_keys, specs.preload_seed)
    seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path in folder.glob(f"{name}.*"))
    summary = {"keys": specs.preload_keys, "seed": specs.preload_seed, "segment": name, "bytes": size}
    marker.write_text(json.dumps(summary | {"seconds": round(seconds, 1)}, indent=2) + "\n")
    print(f"written in {seconds:.1f} s ({size / 1e6:,.0f} MB)", flush=True)
    return folder, name


@dataclass(frozen=True)
class PairIdParity:
    """The pair ids of an incremental dataset's parts against a full run's."""

    parts_pairs: int  # rows over the dataset's parts
    full_pairs: int  # rows of the full run's pairs.parquet
    only_in_parts: int  # distinct ids
    only_in_full: int

    @property
    def matches(self) -> bool:
        return self.parts_pairs == self.full_pairs and not self.only_in_parts and not self.only_in_full

    def describe(self) -> str:
        if self.matches:
            return f"pair ids: OK, the parts hold the full run's {self.full_pairs:,} pairs"
        return (
            f"pair ids: MISMATCH (parts {self.parts_pairs:,} pairs, full run {self.full_pairs:,}; "
            f"{self.only_in_parts:,} ids only in the parts, {self.only_in_full:,} only in the full run)"
        )


def compare_pair_ids(dataset: Path, full: Path) -> PairIdParity:
    from bench import incremental_archive  # noqa: PLC0415

    parts = incremental_archive.pair_ids(incremental_archive.parquet_files(dataset / "pairs"))
    whole = incremental_archive.pair_ids(incremental_archive.parquet_files(full / "pairs.parquet"))
    part_ids, whole_ids = set(parts.to_list()), set(whole.to_list())
    return PairIdParity(len(parts), len(whole), len(part_ids - whole_ids), len(whole_ids - part_ids))


def read_stats(out_dir: Path) -> dict[str, Any]:
    stats: dict[str, Any] = json.loads((out_dir / STATS_JSON).read_text())
    return stats


@dataclass
class IncrementalRuns:
    """The incremental targets' runs, round by round, in a scratch folder.

    Each round: the working copy and the dataset put back as they were after the first
    incremental run, the growth applied, ``RACY_SLEEP_S`` slept; then the incremental run,
    the stat of the archive's files, an incremental run with nothing new, and a full run
    (no ``--incremental``, a fresh folder) on the same grown archive; then, for the
    index, an incremental run on the 1 GB archive into a dataset whose index holds the
    preloaded segment, and one into a dataset with an empty index.
    """

    specs: IncrementalSpecs
    folders: IncrementalFolders
    work: Path
    runs: int
    options: tuple[str, ...]  # --compound-args
    first_run: list[Sample] = field(default_factory=list)
    incremental: list[Sample] = field(default_factory=list)
    nothing_new: list[Sample] = field(default_factory=list)
    full: list[Sample] = field(default_factory=list)
    stat_s: list[float] = field(default_factory=list)  # medians of each round's repeats
    stat_files: int = 0
    figures: list[dict[str, Any]] = field(default_factory=list)  # stats.json "incremental"
    nothing_new_figures: list[dict[str, Any]] = field(default_factory=list)
    parity: PairIdParity | None = None  # first round
    preloaded: list[Sample] = field(default_factory=list)
    empty: list[Sample] = field(default_factory=list)
    preloaded_pairs: list[int] = field(default_factory=list)
    empty_pairs: list[int] = field(default_factory=list)
    preloaded_figures: list[dict[str, Any]] = field(default_factory=list)
    preloaded_segments: list[list[str]] = field(default_factory=list)  # state.json's, after

    @property
    def incremental_options(self) -> tuple[str, ...]:
        return (*self.options, "--incremental")

    @property
    def first_dataset(self) -> Path:
        return self.work / "first-run"

    def prepare(self) -> None:
        """Warm the page cache, then make the dataset of the first incremental run (timed,
        reported): every file new to it."""
        from bench import incremental_archive  # noqa: PLC0415

        folders = self.folders
        warm_page_cache(
            [
                *(folders.copy / path for path in folders.files),
                *(source for source, _ in (*folders.growth.new_files, *folders.growth.appends)),
                *(folders.source / path for path in folders.files),
                *reference_files(folders.tiny),
                folders.segments / f"{folders.segment}.keys",
            ]
        )
        incremental_archive.wait_until_settled(folders.copy, RACY_SLEEP_S)
        command = compound_command(folders.copy, self.first_dataset, self.incremental_options)
        self.time_program(0, INCREMENTAL_LABEL, "first run", self.first_run, command)

    def time_program(
        self, run: int, label: str, name: str, samples: list[Sample], command: list[str]
    ) -> None:
        sample = run_required(f"compound ({label}, {name})", command, self.work / "compound.stderr")
        samples.append(sample)
        print(
            f"  run {run + 1}/{self.runs}  {label:<16} {name:<12} "
            f"{sample.wall_s:9.2f} s  {sample.peak_rss_mib:9.1f} MiB",
            flush=True,
        )

    def run_round(self, run: int) -> None:
        self.grown_round(run)
        self.index_round(run)

    def grown_round(self, run: int) -> None:
        """The incremental run on the grown archive, the one with nothing new, the full run."""
        from bench import incremental_archive  # noqa: PLC0415

        folders = self.folders
        incremental_archive.sync_working_copy(
            folders.source, folders.copy, folders.files, folders.growth.grown
        )
        dataset = self.work / "dataset"
        shutil.rmtree(dataset, ignore_errors=True)
        shutil.copytree(self.first_dataset, dataset, symlinks=True)
        incremental_archive.apply_growth(folders.copy, folders.growth)
        time.sleep(RACY_SLEEP_S)
        command = compound_command(folders.copy, dataset, self.incremental_options)
        self.time_program(run, INCREMENTAL_LABEL, "incremental", self.incremental, command)
        self.figures.append(read_stats(dataset)["incremental"])
        stats = [incremental_archive.stat_files(folders.copy) for _ in range(STAT_REPEATS)]
        self.stat_s.append(statistics.median(seconds for seconds, _ in stats))
        self.stat_files = stats[0][1]
        self.time_program(run, INCREMENTAL_LABEL, "nothing new", self.nothing_new, command)
        self.nothing_new_figures.append(read_stats(dataset)["incremental"])
        full = self.work / f"full-{run}"
        command = compound_command(folders.copy, full, self.options)
        self.time_program(run, INCREMENTAL_LABEL, "full run", self.full, command)
        if self.parity is None:
            self.parity = compare_pair_ids(dataset, full)
            print(f"  {self.parity.describe()}", flush=True)
        shutil.rmtree(full, ignore_errors=True)
        shutil.rmtree(dataset, ignore_errors=True)

    def index_round(self, run: int) -> None:
        """The 1 GB archive into a dataset with the preloaded index, then with an empty one;
        both datasets made by a first run on the tiny archive."""
        from bench import incremental_archive  # noqa: PLC0415

        folders = self.folders
        for name, samples, pairs in (
            ("preloaded", self.preloaded, self.preloaded_pairs),
            ("empty index", self.empty, self.empty_pairs),
        ):
            dataset = self.work / f"index-{name.replace(' ', '-')}"
            shutil.rmtree(dataset, ignore_errors=True)
            command = compound_command(folders.tiny, dataset, self.incremental_options)
            run_required(f"compound ({name}: the tiny first run)", command, self.work / "tiny.stderr")
            if samples is self.preloaded:
                incremental_archive.preload_segment(dataset, folders.segments, folders.segment)
            command = compound_command(folders.source, dataset, self.incremental_options)
            self.time_program(run, INDEX_LABEL, name, samples, command)
            stats = read_stats(dataset)
            pairs.append(int(stats["unique_pairs"]))
            if samples is self.preloaded:
                self.preloaded_figures.append(stats["incremental"])
                state = json.loads((dataset / ".incremental" / "state.json").read_text())
                self.preloaded_segments.append(list(state["segments"]))
            shutil.rmtree(dataset, ignore_errors=True)

    # --- figures

    def over_full(self) -> float:
        return Timings(self.incremental).median_wall_s / Timings(self.full).median_wall_s

    def bytes_share(self) -> float:
        shares = [figures["bytes_read"] / figures["bytes_in_archive"] for figures in self.figures]
        return float(statistics.median(shares))

    def nothing_new_limit_s(self) -> float:
        return MAX_NOTHING_NEW_S + statistics.median(self.stat_s)

    def nothing_new_failures(self) -> list[str]:
        """Rounds whose run with nothing new read something or took a file for changed."""
        failures = []
        for run, figures in enumerate(self.nothing_new_figures, start=1):
            files = figures["files"]
            unchanged = files["unchanged"] == self.stat_files and not figures["bytes_read"]
            others = {change: count for change, count in files.items() if change != "unchanged" and count}
            if not unchanged or others:
                failures.append(
                    f"round {run}: {files['unchanged']}/{self.stat_files} unchanged, "
                    f"{figures['bytes_read']:,} B read{', ' if others else ''}"
                    + ", ".join(f"{count} {change}" for change, count in others.items())
                )
        return failures

    def index_ratio(self) -> float:
        return Timings(self.preloaded).median_wall_s / Timings(self.empty).median_wall_s

    def pairs_mismatch(self) -> bool:
        return self.preloaded_pairs != self.empty_pairs

    def as_dict(self) -> dict[str, Any]:
        growth = self.folders.growth
        return {
            "archive": str(self.folders.copy),
            "source": str(self.folders.source),
            "growth": growth.as_dict(),
            "first_incremental_run": Timings(self.first_run).as_dict(),
            "incremental": Timings(self.incremental).as_dict(),
            "full": Timings(self.full).as_dict(),
            "incremental_over_full": round(self.over_full(), 4),
            "incremental_figures": self.figures,
            "bytes_read_share": round(self.bytes_share(), 5),
            "parity": None if self.parity is None else asdict(self.parity) | {"matches": self.parity.matches},
            "nothing_new": Timings(self.nothing_new).as_dict(),
            "nothing_new_figures": self.nothing_new_figures,
            "stat": {
                "how": "in the bench's process: os.scandir walk, DirEntry.stat of every file, "
                f"median of {STAT_REPEATS} a round",
                "files": self.stat_files,
                "seconds": [round(seconds, 6) for seconds in self.stat_s],
            },
            "nothing_new_limit_s": round(self.nothing_new_limit_s(), 4),
            "index": {
                "segment": str(self.folders.segments / self.folders.segment),
                "keys": self.specs.preload_keys,
                "preloaded": Timings(self.preloaded).as_dict(),
                "empty": Timings(self.empty).as_dict(),
                "preloaded_over_empty": round(self.index_ratio(), 4),
                "pairs_preloaded": self.preloaded_pairs,
                "pairs_empty": self.empty_pairs,
                "preloaded_figures": self.preloaded_figures,
                "segments_after": self.preloaded_segments,
            },
        }


def bench_incremental(
    args: argparse.Namespace, specs: IncrementalSpecs, folders: IncrementalFolders, work: Path
) -> IncrementalRuns:
    """The incremental targets' runs, ``--runs`` alternating rounds, then reported."""
    print(
        f"\n-- incremental: {specs.archive.mb:g} MB grown by {INCREMENTAL_GROWTH_SHARE:.0%} (incremental, "
        f"nothing new, full run) and the index preloaded with {specs.keys_label} (preloaded, empty), "
        f"{args.runs} alternating round{'s' if args.runs > 1 else ''}",
        flush=True,
    )
    (work / INCREMENTAL_SHAPE).mkdir()
    runs = IncrementalRuns(specs, folders, work / INCREMENTAL_SHAPE, args.runs, tuple(args.compound_args))
    runs.prepare()
    for run in range(args.runs):
        if args.runs > 1:
            print(f"round {run + 1}/{args.runs}", flush=True)
        runs.run_round(run)
    print_incremental_report(runs)
    return runs


def print_incremental_report(runs: IncrementalRuns) -> None:
    specs, growth, figures = runs.specs, runs.folders.growth, runs.figures[0]
    rounds = len(runs.incremental)
    files = ", ".join(f"{count} {change}" for change, count in figures["files"].items())
    failures = runs.nothing_new_failures()
    lines = [
        "",
        f"== incremental: {specs.archive.folder_name} grown by {growth.bytes() / 1e6:,.1f} MB "
        f"({len(growth.new_files)} new files, {len(growth.grown)} files appended to), "
        f"median of {rounds} run{'s' if rounds > 1 else ''} ==",
        f"{'program':<24} {'wall s':>10} {'peak RSS MiB':>14}",
    ]
    for name, samples in (
        ("first incremental run", runs.first_run),
        ("incremental run", runs.incremental),
        ("nothing new", runs.nothing_new),
        ("full run", runs.full),
        (f"preloaded {specs.keys_label}", runs.preloaded),
        ("empty index", runs.empty),
    ):
        timings = Timings(samples)
        lines.append(f"{name:<24} {timings.median_wall_s:10.2f} {timings.median_peak_rss_mib:14.1f}")
    lines += [
        f"incremental / full run:       {format_x(runs.over_full())}",
        f"bytes read:                   {figures['bytes_read']:,} of {figures['bytes_in_archive']:,} "
        f"({runs.bytes_share():.2%}); files: {files}",
        f"stat of {runs.stat_files} files:           {statistics.median(runs.stat_s) * 1e3:.2f} ms "
        f"(nothing new: limit {runs.nothing_new_limit_s():.3f} s)",
        f"nothing new:                  {'; '.join(failures) or 'every file unchanged, 0 B read'}",
        f"preloaded / empty index:      {format_x(runs.index_ratio())}; pairs {runs.preloaded_pairs} / "
        f"{runs.empty_pairs}",
        runs.parity.describe() if runs.parity else "pair ids: not checked",
        "",
    ]
    print("\n".join(lines), flush=True)


def incremental_targets(runs: IncrementalRuns | None, specs: IncrementalSpecs) -> list[Target]:
    mb = f"{specs.archive.mb:g} MB"
    grown = f"incremental, {mb} + {INCREMENTAL_GROWTH_SHARE:.0%}"
    nothing = f"incremental, nothing new, {mb}"
    index = f"index preloaded with {specs.keys_label}, {mb}"
    if runs is None:
        return [
            Target(name, "n/a", limit, NOT_MEASURED)
            for name, limit in (
                (f"{grown}: incremental / full run", f"<= {format_x(MAX_INCREMENTAL_OVER_FULL)}"),
                (f"{grown}: bytes read / archive", f"<= {MAX_INCREMENTAL_BYTES_SHARE:.2%}"),
                (f"{grown}: pair ids, parts = full run", "same pairs"),
                (f"{nothing}: wall", f"<= {MAX_NOTHING_NEW_S:g} s + stat"),
                (f"{nothing}: files unchanged, bytes read", "all, 0 B"),
                (f"{index}: compound peak RSS", f"<= {format_mib(RSS_BUDGET_MIB)}"),
                (f"{index}: wall / empty index", f"<= {format_x(MAX_PRELOAD_SLOWDOWN)}"),
                (f"{index}: pairs, preloaded = empty", "same count"),
            )
        ]
    incremental, full = Timings(runs.incremental).median_wall_s, Timings(runs.full).median_wall_s
    preloaded, empty = Timings(runs.preloaded), Timings(runs.empty)
    nothing_new = Timings(runs.nothing_new).median_wall_s
    stat_s = statistics.median(runs.stat_s)
    limit = runs.nothing_new_limit_s()
    failures = runs.nothing_new_failures()
    parity = runs.parity
    if parity is None:
        parity_target = Target(f"{grown}: pair ids, parts = full run", "n/a", "same pairs", NOT_MEASURED)
    elif parity.matches:
        parity_target = Target(
            f"{grown}: pair ids, parts = full run", f"OK, {parity.full_pairs:,} pairs", "same pairs", PASS
        )
    else:
        measured = f"MISMATCH {parity.parts_pairs:,} != {parity.full_pairs:,}"
        parity_target = Target(f"{grown}: pair ids, parts = full run", measured, "same pairs", FAIL)
    pairs, empty_pairs = runs.preloaded_pairs[0], runs.empty_pairs[0]
    return [
        with_walls(
            limit_target(
                f"{grown}: incremental / full run",
                incremental / full,
                MAX_INCREMENTAL_OVER_FULL,
                at_least=False,
                fmt=lambda value: f"{value:.3f}x",
            ),
            incremental,
            full,
        ),
        limit_target(
            f"{grown}: bytes read / archive",
            runs.bytes_share(),
            MAX_INCREMENTAL_BYTES_SHARE,
            at_least=False,
            fmt=lambda value: f"{value:.2%}",
        ),
        parity_target,
        Target(
            f"{nothing}: wall",
            format_s(nothing_new),
            f"<= {MAX_NOTHING_NEW_S:g} s + stat {stat_s * 1e3:.1f} ms",
            PASS if nothing_new <= limit else FAIL,
            round(nothing_new, 4),
        ),
        Target(
            f"{nothing}: files unchanged, bytes read",
            "; ".join(failures) if failures else f"{runs.stat_files}/{runs.stat_files}, 0 B",
            "all, 0 B",
            FAIL if failures else PASS,
        ),
        limit_target(
            f"{index}: compound peak RSS",
            preloaded.median_peak_rss_mib,
            RSS_BUDGET_MIB,
            at_least=False,
            fmt=format_mib,
        ),
        with_walls(
            limit_target(
                f"{index}: wall / empty index",
                runs.index_ratio(),
                MAX_PRELOAD_SLOWDOWN,
                at_least=False,
                fmt=format_x,
            ),
            preloaded.median_wall_s,
            empty.median_wall_s,
        ),
        Target(
            f"{index}: pairs, preloaded = empty",
            f"MISMATCH {pairs:,} != {empty_pairs:,}"
            if runs.pairs_mismatch()
            else f"{pairs:,} = {empty_pairs:,}",
            "same count",
            FAIL if runs.pairs_mismatch() else PASS,
            pairs,
        ),
    ]


def with_walls(target: Target, numerator_s: float, denominator_s: float) -> Target:
    """A ratio's target with the two median wall times it divides shown after it."""
    return dataclasses.replace(
        target, measured=f"{target.measured} ({numerator_s:.2f} / {denominator_s:.2f} s)"
    )


def incremental_mismatches(runs: IncrementalRuns | None) -> list[str]:
    """The incremental targets' parity failures: the dataset's pairs unlike the full run's,
    or a preloaded index that changed the pairs written."""
    if runs is None:
        return []
    mismatches = []
    if runs.parity is not None and not runs.parity.matches:
        mismatches.append(f"incremental dataset ({runs.parity.describe()})")
    if runs.pairs_mismatch():
        mismatches.append(
            f"preloaded index ({runs.preloaded_pairs} pairs against {runs.empty_pairs} with an empty index)"
        )
    return mismatches


# --- the suite --------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteSizes:
    scale: float
    mb: int
    rss_mb: tuple[int, ...]

    @classmethod
    def scaled(cls, scale: float) -> SuiteSizes:
        def size(mb: int) -> int:
            return max(1, round(mb * scale))

        return cls(scale, size(SUITE_MB), tuple(size(mb) for mb in SUITE_RSS_MB))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean_spec(mb: int, seed: int) -> ArchiveSpec:
    return ArchiveSpec(mb=mb, files=default_files(mb), seed=seed, bad_share=0.0, gzip_share=0.0)


@dataclass(frozen=True)
class IssueSpecs:
    """The issue's archives: clean, bad-share and gzip at 1 GB, clean at 2 and 4 GB."""

    clean: ArchiveSpec
    bad: ArchiveSpec
    gzip: ArchiveSpec
    rss: tuple[ArchiveSpec, ...]

    @classmethod
    def of(cls, sizes: SuiteSizes, seed: int) -> IssueSpecs:
        clean = clean_spec(sizes.mb, seed)
        return cls(
            clean=clean,
            bad=ArchiveSpec(sizes.mb, clean.files, seed, bad_share=SUITE_BAD_SHARE, gzip_share=0.0),
            gzip=ArchiveSpec(sizes.mb, clean.files, seed, bad_share=0.0, gzip_share=SUITE_GZIP_SHARE),
            rss=tuple(clean_spec(mb, seed) for mb in sizes.rss_mb),
        )

    def all(self) -> list[ArchiveSpec]:
        return [self.clean, self.bad, self.gzip, *self.rss]


def bench_suite(args: argparse.Namespace, cache: Path) -> int:
    """The clean and bad-share 1 GB archives alternating, then gzip, then 2 and 4 GB, then
    the archive shapes, then the incremental targets; with ``--shapes-only``, the shapes
    alone; with ``--incremental-only``, the incremental targets alone."""
    sizes = SuiteSizes.scaled(args.suite_scale or 1.0)
    issue = IssueSpecs.of(sizes, args.seed)
    specs = ShapeSpecs.scaled(sizes.scale)
    incremental_specs = IncrementalSpecs.of(sizes, args.seed)
    issue_archives = not (args.shapes_only or args.incremental_only)
    shapes, incremental = not args.incremental_only, not args.shapes_only
    folders: dict[ArchiveSpec, Path] = {}
    if issue_archives:
        folders.update({spec: ensure_archive(spec, cache, args.generator) for spec in issue.all()})
    if shapes:
        folders.update(ensure_shapes(specs, cache, args.generator))
    if incremental:
        incremental_folders = ensure_incremental(incremental_specs, cache, args.generator)
    suite = SuiteResults()
    suite_info = {
        **sizes.as_dict(),
        "single_runs": SUITE_SINGLE_RUNS,
        "gzip_reference": f"not run: {REFERENCE_JSONL_ONLY}",
        "max_rss_growth": MAX_RSS_GROWTH,
        "shapes_only": args.shapes_only,
        "incremental_only": args.incremental_only,
        "shapes": specs.as_dict(),
        "incremental": incremental_specs.as_dict(),
    }

    def targets() -> list[Target]:
        return [
            *(suite_targets(suite, sizes) if issue_archives else []),
            *(shape_targets(suite, specs) if shapes else []),
            *(incremental_targets(suite.incremental, incremental_specs) if incremental else []),
            *(ray_targets(cache) if issue_archives else []),
        ]

    def save() -> None:
        write_results(
            cache / RESULTS_FILE,
            suite.archives(),
            args.runs,
            suite_info,
            targets(),
            compound_options=args.compound_args,
            incremental=suite.incremental.as_dict() if suite.incremental else None,
        )

    def report(result: ArchiveResult) -> None:
        print_report(result)
        save()

    with tempfile.TemporaryDirectory(prefix="run-", dir=cache) as scratch:
        work = Path(scratch)
        if issue_archives:
            bench_issue_archives(args, issue, folders=folders, suite=suite, report=report, work=work)
        if shapes:
            bench_shapes(args, specs, folders=folders, suite=suite, report=report, work=work)
        if incremental:
            suite.incremental = bench_incremental(args, incremental_specs, incremental_folders, work)
            save()

    print_targets(
        targets(),
        sizes,
        args.runs,
        args.compound_args,
        shapes_only=args.shapes_only,
        incremental_only=args.incremental_only,
    )
    print(f"results: {cache / RESULTS_FILE}")
    mismatches = [*pairs_count_mismatches(suite), *incremental_mismatches(suite.incremental)]
    return exit_status(suite.archives(), mismatches)


def bench_issue_archives(
    args: argparse.Namespace,
    issue: IssueSpecs,
    *,
    folders: dict[ArchiveSpec, Path],
    suite: SuiteResults,
    report: Callable[[ArchiveResult], None],
    work: Path,
) -> None:
    """The issue's archives: clean and bad-share 1 GB alternating, then gzip, then 2 and 4 GB."""
    clean, bad, gzip, rss = issue.clean, issue.bad, issue.gzip, issue.rss
    compound_only = Programs(None, "compound only in the suite", False, "compound only in the suite")
    gzip_programs = Programs(None, REFERENCE_JSONL_ONLY, parse_floor=True, parse_floor_note="")
    label = f"{clean.mb} MB"
    print(
        f"\n-- {label} clean (reference, compound, parse floor), bad-share {SUITE_BAD_SHARE:g} "
        f"(compound) and clean with --scrub none (compound), {args.runs} alternating rounds",
        flush=True,
    )
    clean_bench = ArchiveBench.prepare(
        f"{label} clean",
        clean,
        folders[clean],
        runs=args.runs,
        programs=reference_programs(args),
        work_root=work,
        compound_options=args.compound_args,
    )
    bad_bench = ArchiveBench.prepare(
        f"{label} bad {SUITE_BAD_SHARE:g}",
        bad,
        folders[bad],
        runs=args.runs,
        programs=compound_only,
        work_root=work,
        compound_options=args.compound_args,
    )
    (work / "scrub-none").mkdir()
    unscrubbed_bench = ArchiveBench.prepare(
        f"{label} --scrub none",
        clean,
        folders[clean],
        runs=args.runs,
        programs=compound_only,
        work_root=work / "scrub-none",
        compound_options=(*args.compound_args, "--scrub", "none"),
    )
    run_rounds([clean_bench, bad_bench, unscrubbed_bench], args.runs)
    suite.clean, suite.bad, suite.unscrubbed = (
        clean_bench.result(),
        bad_bench.result(),
        unscrubbed_bench.result(),
    )
    report(suite.clean)
    report(suite.bad)
    report(suite.unscrubbed)

    def single_run(title: str, name: str, spec: ArchiveSpec, programs: Programs) -> ArchiveResult:
        """One archive measured in ``SUITE_SINGLE_RUNS`` rounds, then reported."""
        print(f"-- {title}", flush=True)
        bench = ArchiveBench.prepare(
            name,
            spec,
            folders[spec],
            runs=SUITE_SINGLE_RUNS,
            programs=programs,
            work_root=work,
            compound_options=args.compound_args,
        )
        run_rounds([bench], SUITE_SINGLE_RUNS)
        result = bench.result()
        report(result)
        return result

    title = f"{label} gzip (compound, parse floor; {REFERENCE_JSONL_ONLY})"
    suite.gzip = single_run(title, f"{label} gzip", gzip, gzip_programs)
    for spec in rss:
        title = f"{spec.mb} MB clean (compound, for peak RSS)"
        suite.rss.append(single_run(title, f"{spec.mb} MB clean", spec, compound_only))


def bench(args: argparse.Namespace) -> int:
    check_programs(args)
    cache: Path = args.cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    if args.mb is None:
        return bench_suite(args, cache)
    return bench_archives(args, cache)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == [PARSE_FLOOR_COMMAND]:
        parse_sessions(arguments[1:])
        return 0
    try:
        return bench(parse_args(arguments))
    except BenchError as error:
        print(f"run_bench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
