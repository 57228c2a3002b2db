"""Benchmark ``compound pairs`` against the reference pair harvester.

For each archive size this script generates a synthetic session archive with
``../shared/bench/gen_archive.py`` (once: archives are cached in ``--cache``), then runs
three programs as whole subprocesses, alternating them for ``--runs`` rounds:

- reference: ``python session_pair_harvester.py ARCHIVE -o FILE``
- compound: ``compound pairs ARCHIVE --out DIR`` from the current virtualenv
- parse floor: polars parsing the same files into the session schema and nothing else

It reports the median wall time and median peak RSS of each, the speedup over the
reference, how far compound is from the parse floor, its peak RSS against the memory
budget, and whether both programs wrote the same pairs (checked on the first round).
Every figure is also written to ``<cache>/results.json``.

Usage:
    uv run python bench/run_bench.py                        # 1000 MB, 3 runs
    uv run python bench/run_bench.py --mb 20 --runs 1       # a quick check
    uv run python bench/run_bench.py --mb 1000 4000 --skip-reference

Exit status: 0 when every parity check passed, 1 on a parity mismatch, 2 when an
argument is bad or the reference or compound fails.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

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
SESSION_GLOB = "*.jsonl"
GZIP_SESSION_GLOB = "*.jsonl.gz"
PAIRS_FILE = "pairs.jsonl"

RSS_BUDGET_MIB = 1024
#: The first argument that makes this script the parse-floor child instead of the bench.
PARSE_FLOOR_COMMAND = "parse-floor"
STDERR_TAIL_LINES = 15
PAGE_CACHE_CHUNK_BYTES = 16 * 1024 * 1024


class BenchError(Exception):
    """A run the bench cannot go on from; the message is shown as is."""


@dataclass(frozen=True)
class ArchiveSpec:
    """The generator's parameters for one archive; they also name its cache folder."""

    mb: int
    files: int
    seed: int
    bad_share: float
    gzip_share: float

    @property
    def folder_name(self) -> str:
        return f"mb{self.mb}-files{self.files}-seed{self.seed}-bad{self.bad_share:g}-gzip{self.gzip_share:g}"

    def generator_options(self) -> list[str]:
        return [
            f"--mb={self.mb}",
            f"--files={self.files}",
            f"--seed={self.seed}",
            f"--bad-share={self.bad_share}",
            f"--gzip-share={self.gzip_share}",
        ]


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
    spec: ArchiveSpec
    folder: Path
    session_files: int
    total_bytes: int
    compound: Timings
    reference: Timings | None
    parse_floor: Timings | None
    parse_floor_note: str | None
    parity: Parity | None

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
            "archive": {
                **asdict(self.spec),
                "folder": str(self.folder),
                "session_files": self.session_files,
                "bytes": self.total_bytes,
            },
            "reference": self.reference.as_dict() if self.reference else None,
            "compound": self.compound.as_dict(),
            "parse_floor": self.parse_floor.as_dict() if self.parse_floor else None,
            "parse_floor_note": self.parse_floor_note,
            "speedup": round(speedup, 2) if speedup is not None else None,
            "compound_over_parse_floor": round(over_floor, 2) if over_floor is not None else None,
            "compound_rss_share_of_budget": round(self.compound.median_peak_rss_mib / RSS_BUDGET_MIB, 3),
            "parity": None if self.parity is None else asdict(self.parity),
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


def session_files(folder: Path) -> list[Path]:
    """The files the reference reads, in its order."""
    return sorted(folder.rglob(SESSION_GLOB))


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
    """Run ``command`` to its end; its wall time and the peak RSS that ``wait4`` reports."""
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


def compound_command(archive: Path, out_dir: Path) -> list[str]:
    return [str(COMPOUND_SCRIPT), "pairs", str(archive), "--out", str(out_dir)]


def parse_floor_command(files: Sequence[Path]) -> list[str]:
    script = str(Path(__file__).resolve())
    return [sys.executable, script, PARSE_FLOOR_COMMAND, *map(str, files)]


def print_sample(run: int, runs: int, name: str, sample: Sample) -> None:
    print(
        f"  run {run + 1}/{runs}  {name:<12} {sample.wall_s:9.2f} s  {sample.peak_rss_mib:9.1f} MiB",
        flush=True,
    )


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


def same_record(reference_line: str | None, compound_line: str | None) -> bool:
    if reference_line is None or compound_line is None:
        return False
    return bool(json.loads(reference_line) == json.loads(compound_line))


# --- one archive ------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchSettings:
    runs: int
    reference: Path | None  # None: --skip-reference
    work_root: Path


def parse_floor_blocker(folder: Path) -> str | None:
    """Why the parse floor cannot be measured on this archive, or None if it can."""
    if any(folder.rglob(GZIP_SESSION_GLOB)):
        return "the archive has gzip files"
    return None


@dataclass
class ArchiveBench:
    """The runs on one archive, collected round by round in a scratch folder."""

    spec: ArchiveSpec
    folder: Path
    files: list[Path]
    settings: BenchSettings
    work: Path
    parse_floor_note: str | None  # why the parse floor is not measured; None while it is
    reference_samples: list[Sample] = field(default_factory=list)
    compound_samples: list[Sample] = field(default_factory=list)
    parse_floor_samples: list[Sample] = field(default_factory=list)
    parity: Parity | None = None

    def run_round(self, run: int) -> None:
        """Reference, compound, parity (first round only), then the parse floor."""
        reference_file = self.work / f"reference-{run}.jsonl"
        compound_dir = self.work / f"compound-{run}"
        if self.settings.reference is not None:
            command = reference_command(self.settings.reference, self.folder, reference_file)
            self.time_program(run, "reference", self.reference_samples, command)
        command = compound_command(self.folder, compound_dir)
        self.time_program(run, "compound", self.compound_samples, command)
        if self.settings.reference is not None and self.parity is None:
            self.parity = compare_pairs(reference_file, compound_dir / PAIRS_FILE)
            print(f"  {self.parity.describe()}", flush=True)
        reference_file.unlink(missing_ok=True)
        shutil.rmtree(compound_dir, ignore_errors=True)
        if self.parse_floor_note is None:
            self.run_parse_floor(run)

    def time_program(self, run: int, name: str, samples: list[Sample], command: list[str]) -> None:
        sample = run_required(name, command, self.work / f"{name}.stderr")
        samples.append(sample)
        print_sample(run, self.settings.runs, name, sample)

    def run_parse_floor(self, run: int) -> None:
        """Time the parse floor; if polars cannot parse the archive, note why and give up."""
        stderr_log = self.work / "parse-floor.stderr"
        floor = run_measured(parse_floor_command(self.files), stderr_log)
        if floor.exit_code == 0:
            self.parse_floor_samples.append(floor.sample)
            print_sample(run, self.settings.runs, "parse floor", floor.sample)
            return
        last_line = stderr_tail(stderr_log).rpartition("\n")[2]
        self.parse_floor_note = f"polars failed: {last_line}"
        self.parse_floor_samples.clear()
        print(f"  parse floor: n/a ({self.parse_floor_note})", flush=True)

    def result(self) -> ArchiveResult:
        return ArchiveResult(
            spec=self.spec,
            folder=self.folder,
            session_files=len(self.files),
            total_bytes=sum(path.stat().st_size for path in self.files),
            compound=Timings(self.compound_samples),
            reference=Timings(self.reference_samples) if self.reference_samples else None,
            parse_floor=Timings(self.parse_floor_samples) if self.parse_floor_samples else None,
            parse_floor_note=self.parse_floor_note,
            parity=self.parity,
        )


def bench_archive(spec: ArchiveSpec, folder: Path, settings: BenchSettings) -> ArchiveResult:
    """Alternate reference, compound and parse floor for ``settings.runs`` rounds."""
    files = session_files(folder)
    warm_page_cache(files)
    with tempfile.TemporaryDirectory(prefix="run-", dir=settings.work_root) as work:
        archive_bench = ArchiveBench(spec, folder, files, settings, Path(work), parse_floor_blocker(folder))
        for run in range(settings.runs):
            archive_bench.run_round(run)
    return archive_bench.result()


# --- report -----------------------------------------------------------------------------


def format_row(name: str, timings: Timings | None, note: str = "skipped") -> str:
    if timings is None:
        return f"{name:<12} {'n/a':>14} {'n/a':>22}   ({note})"
    return f"{name:<12} {timings.median_wall_s:14.2f} {timings.median_peak_rss_mib:22.1f}"


def format_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def print_report(result: ArchiveResult) -> None:
    rss = result.compound.median_peak_rss_mib
    verdict = "within budget" if rss <= RSS_BUDGET_MIB else "OVER BUDGET"
    floor_note = result.parse_floor_note or "skipped"
    lines = [
        "",
        f"== {result.spec.folder_name}: {result.total_bytes / 1e6:,.0f} MB in "
        f"{result.session_files} files, median of {len(result.compound.samples)} runs ==",
        f"{'program':<12} {'wall s':>14} {'peak RSS MiB':>22}",
        format_row("reference", result.reference),
        format_row("compound", result.compound),
        format_row("parse floor", result.parse_floor, floor_note),
        f"speedup (reference / compound): {format_ratio(result.speedup())}",
        f"compound / parse floor:         {format_ratio(result.over_parse_floor())}",
        f"compound peak RSS:              {rss:.1f} MiB of {RSS_BUDGET_MIB} MiB "
        f"budget ({rss / RSS_BUDGET_MIB:.0%}, {verdict})",
        result.parity.describe() if result.parity else "parity: skipped (no reference run)",
        "",
    ]
    print("\n".join(lines), flush=True)


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


def write_results(path: Path, results: Sequence[ArchiveResult], runs: int) -> None:
    document = {
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "polars": metadata.version("polars"),
        },
        "git": git_revision(),
        "runs": runs,
        "rss_budget_mib": RSS_BUDGET_MIB,
        "archives": [result.as_dict() for result in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


# --- command line -----------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark `compound pairs` against the reference pair harvester."
    )
    parser.add_argument(
        "--mb", type=positive_int, nargs="+", default=[1000], help="archive sizes in MB (default: 1000)"
    )
    parser.add_argument("--files", type=positive_int, help="files per archive (default: max(10, mb // 20))")
    parser.add_argument("--seed", type=int, default=11, help="generator seed (default: 11)")
    parser.add_argument("--bad-share", type=share, default=0.0, help="share of malformed lines (default: 0)")
    parser.add_argument(
        "--gzip-share", type=share, default=0.0, help="share of files written as .jsonl.gz (default: 0)"
    )
    parser.add_argument(
        "--runs", type=positive_int, default=3, help="runs of each program per archive (default: 3)"
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
    return parser.parse_args(argv)


def check_programs(args: argparse.Namespace) -> None:
    needed = [("gen_archive.py", args.generator), ("compound", COMPOUND_SCRIPT)]
    if not args.skip_reference:
        needed.append(("the reference", args.reference))
    for name, path in needed:
        if not path.is_file():
            raise BenchError(f"{name} not found at {path}")


def archive_specs(args: argparse.Namespace) -> list[ArchiveSpec]:
    return [
        ArchiveSpec(
            mb=mb,
            files=args.files or max(10, mb // 20),
            seed=args.seed,
            bad_share=args.bad_share,
            gzip_share=args.gzip_share,
        )
        for mb in args.mb
    ]


def bench(args: argparse.Namespace) -> int:
    check_programs(args)
    cache: Path = args.cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    settings = BenchSettings(
        runs=args.runs,
        reference=None if args.skip_reference else args.reference.resolve(),
        work_root=cache,
    )
    results: list[ArchiveResult] = []
    for spec in archive_specs(args):
        folder = ensure_archive(spec, cache, args.generator)
        results.append(bench_archive(spec, folder, settings))
        print_report(results[-1])
        write_results(cache / RESULTS_FILE, results, args.runs)
    print(f"results: {cache / RESULTS_FILE}")
    mismatches = [r for r in results if r.parity is not None and not r.parity.matches]
    return 1 if mismatches else 0


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
