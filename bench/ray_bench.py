"""``make bench-ray``: the 1 GB bench archive through the Ray engine, beside the local engine.

1. A Ray node started here first (``ray start --head --num-cpus 2``), as a cluster user
   has one: the local engine and ``--engine ray --ray-address`` run alternately,
   ``--runs`` rounds; the target is the median Ray wall time over the local one, <= 1.5x,
   with the same ``pairs.jsonl`` and ``stats.json``. Each Ray run writes its figures
   (``COMPOUND_RAY_REPORT``): connecting, describing the batches, the tasks, the dedup,
   the driver's pass.
2. ``--engine ray`` without an address, which starts a local instance for the run: once,
   to show what the start costs.
3. Two nodes on this machine (a head and ``ray start --address``, 1 CPU each): the
   batches prepared on each node, and the same outputs.

Every ``ray start`` runs with ``--block`` as a child of this script, which stops it
(SIGTERM, then its process group) when done. The figures go to stdout and to
``bench/cache/ray-results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.run_bench import (
    COMPOUND_SCRIPT,
    DEFAULT_CACHE,
    DEFAULT_GENERATOR,
    DEFAULT_SEED,
    MAX_RAY_OVER_LOCAL,
    RAY_RESULTS_FILE,
    ArchiveSpec,
    BenchError,
    default_files,
    ensure_archive,
    warm_page_cache,
)
from jobs.ray_engine import FINISH_ON_ENV

RAY_SCRIPT = Path(sys.executable).parent / "ray"
HEAD_PORT = 6391
#: How long a node may take to start and join.
NODE_START_TIMEOUT_S = 120
#: Ray 2.60 nodes authenticate their clients with a token by default (``ray start`` keeps it
#: in ~/.ray/auth_token); the clients, compound among them, use it in this mode.
RAY_ENV = os.environ | {"RAY_AUTH_MODE": "token"}


@dataclass
class Run:
    """One ``compound pairs`` run: wall time, the driver's CPU time and peak RSS, and
    the Ray engine's own figures (``jobs.ray_engine.RayFigures``) where it ran."""

    engine: str
    wall_s: float
    driver_cpu_s: float
    peak_rss_mib: float
    ray: dict[str, Any] = field(default_factory=dict)


def measure(
    command: Sequence[str], report: Path | None, log: Path, extra_env: dict[str, str] | None = None
) -> Run:
    """Run ``command`` to its end (its outputs flushed to disk first by the previous run's sync)."""
    os.sync()
    env = dict(RAY_ENV) | (extra_env or {})
    if report is not None:
        report.unlink(missing_ok=True)
        env["COMPOUND_RAY_REPORT"] = str(report)
    with log.open("wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall_s = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise BenchError(f"{' '.join(command)} failed:\n{log.read_text(errors='replace')[-3000:]}")
    figures = json.loads(report.read_text()) if report is not None else {}
    return Run(
        "ray" if report is not None else "local",
        wall_s,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        figures,
    )


def compound(archive: Path, out: Path, *options: str) -> list[str]:
    return [str(COMPOUND_SCRIPT), "pairs", str(archive), "--out", str(out), *options]


def wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise BenchError(f"no Ray head on port {port} after {NODE_START_TIMEOUT_S} s")


def cluster_cpus(address: str) -> float:
    """The CPUs the cluster at ``address`` has, from ``ray status`` (0 while it has none)."""
    done = subprocess.run(
        [str(RAY_SCRIPT), "status", "--address", address],
        capture_output=True,
        text=True,
        check=False,
        env=RAY_ENV,
    )
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "CPU" and "/" in parts[0]:
            return float(parts[0].split("/")[1])
    return 0.0


@contextmanager
def ray_node(arguments: Sequence[str], log: Path) -> Iterator[None]:
    """``ray start --block ARGUMENTS`` as this script's child, stopped on the way out."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(RAY_SCRIPT), "start", "--block", "--disable-usage-stats", *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=RAY_ENV,
        )
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def cluster(cpus_per_node: Sequence[int], logs: Path) -> Iterator[tuple[str, float]]:
    """A head with ``cpus_per_node[0]`` CPUs, and a node per further entry joined to it;
    yields its address and the seconds it took to be up with every CPU."""
    address = f"127.0.0.1:{HEAD_PORT}"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + NODE_START_TIMEOUT_S
    with ExitStack() as stack:
        head = [
            "--head",
            f"--port={HEAD_PORT}",
            f"--num-cpus={cpus_per_node[0]}",
            "--include-dashboard=false",
        ]
        stack.enter_context(ray_node(head, logs / "head.log"))
        wait_for_port(HEAD_PORT, deadline)
        for number, cpus in enumerate(cpus_per_node[1:], 1):
            joined = [f"--address={address}", f"--num-cpus={cpus}"]
            stack.enter_context(ray_node(joined, logs / f"node-{number}.log"))
        while cluster_cpus(address) < sum(cpus_per_node):
            if time.monotonic() > deadline:
                raise BenchError(f"the cluster did not reach {sum(cpus_per_node)} CPUs: see {logs}")
            time.sleep(0.5)
        yield address, time.monotonic() - started


def same_outputs(first: Path, second: Path) -> bool:
    return all(
        (first / name).read_bytes() == (second / name).read_bytes() for name in ("pairs.jsonl", "stats.json")
    )


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 24), b""))


def breakdown(run: Run) -> str:
    figures = run.ray
    parts = [
        f"connect {figures['connect_s']:.1f}",
        f"describe {figures['describe_s']:.1f}",
        f"tasks {figures['prepare_s']:.1f} ({figures['batches']} batches: "
        f"{figures['task_s']:.1f} s preparing them, {figures['task_cpu_s']:.1f} CPU-s, "
        f"at most {figures['busiest']} at once)",
        f"dedup {figures['dedup_s']:.1f}",
        f"finished by the {figures['finished_by']} {figures['finish_s']:.1f} "
        f"(the driver's CPU meanwhile {figures['finish_driver_cpu_s']:.1f} CPU-s"
        + (
            f", the tasks' {figures['finish_task_cpu_s']:.1f} CPU-s)"
            if figures["finished_by"] == "tasks"
            else ")"
        ),
    ]
    accounted = sum(figures[name] for name in ("connect_s", "describe_s", "prepare_s", "dedup_s", "finish_s"))
    parts.append(f"rest (imports, listing, commit, exit) {run.wall_s - accounted:.1f}")
    return ", ".join(parts) + " s"


@dataclass
class Results:
    archive: Path
    gigabytes: float
    local: list[Run] = field(default_factory=list)
    ray: list[Run] = field(default_factory=list)
    started_by_the_run: Run | None = None
    two_nodes: Run | None = None
    same: dict[str, bool] = field(default_factory=dict)
    pairs: int = 0

    @property
    def ratio(self) -> float:
        return statistics.median(run.wall_s for run in self.ray) / statistics.median(
            run.wall_s for run in self.local
        )


def side_by_side(results: Results, work: Path, runs: int, report: Path) -> None:
    """The local engine and the Ray engine on a 2-CPU node started before, alternately."""
    with cluster([2], work / "one-node") as (address, started_s):
        print(f"ray start --head --num-cpus 2: up in {started_s:.1f} s", flush=True)
        for round_number in range(1, runs + 1):
            local = measure(compound(results.archive, work / "local"), None, work / "local.log")
            results.local.append(local)
            ray_options = ("--engine", "ray", "--ray-address", address)
            on_ray = measure(compound(results.archive, work / "ray", *ray_options), report, work / "ray.log")
            results.ray.append(on_ray)
            print(f"round {round_number}: local {local.wall_s:.1f} s, ray {on_ray.wall_s:.1f} s", flush=True)
            print(f"  ray: {breakdown(on_ray)}", flush=True)
            results.same[f"round {round_number}"] = same_outputs(work / "local", work / "ray")
    results.pairs = count_lines(work / "local" / "pairs.jsonl")


def elsewhere(results: Results, work: Path, report: Path) -> None:
    """The Ray engine starting its own local instance, then on two 1-CPU nodes."""
    started_here = measure(
        compound(results.archive, work / "ray-local", "--engine", "ray"), report, work / "ray-local.log"
    )
    print(f"--engine ray, an instance started by the run: {started_here.wall_s:.1f} s", flush=True)
    results.started_by_the_run = started_here
    results.same["started by the run"] = same_outputs(work / "local", work / "ray-local")
    with cluster([1, 1], work / "two-nodes") as (address, started_s):
        print(f"two nodes of 1 CPU: up in {started_s:.1f} s", flush=True)
        ray_options = ("--engine", "ray", "--ray-address", address)
        # the batches finished by tasks, as on a cluster of FINISH_ON_TASKS_FROM_CPUS or more
        results.two_nodes = measure(
            compound(results.archive, work / "ray-two", *ray_options),
            report,
            work / "two.log",
            {FINISH_ON_ENV: "tasks"},
        )
        print(f"  two nodes: {breakdown(results.two_nodes)}", flush=True)
    results.same["two nodes"] = same_outputs(work / "local", work / "ray-two")


def print_report(results: Results, runs: int) -> dict[str, float]:
    """The targets table, and the figures per GB that the README's estimate starts from."""
    gigabytes = results.gigabytes
    local_s = statistics.median(run.wall_s for run in results.local)
    ray_s = statistics.median(run.wall_s for run in results.ray)
    median_ray = sorted(results.ray, key=lambda run: run.wall_s)[len(results.ray) // 2]
    assert results.started_by_the_run is not None
    assert results.two_nodes is not None
    same = all(results.same.values())
    rows = [
        ("local engine, median wall", f"{local_s:.1f} s", ""),
        ("Ray engine on a 2-CPU node started before, median wall", f"{ray_s:.1f} s", ""),
        (
            "Ray / local",
            f"{results.ratio:.2f}x",
            f"<= {MAX_RAY_OVER_LOCAL}x {verdict(results.ratio <= MAX_RAY_OVER_LOCAL)}",
        ),
        (f"same pairs.jsonl and stats.json ({results.pairs:,} pairs), every run", str(same), verdict(same)),
        ("the median Ray run", breakdown(median_ray), ""),
        ("Ray engine starting its own instance", breakdown(results.started_by_the_run), "report"),
    ]
    per_node = results.two_nodes.ray["tasks_per_node"]
    listed = ", ".join(f"{node}: {count}" for node, count in per_node.items())
    rows.append(
        ("two 1-CPU nodes: batches prepared per node", listed, f"both nodes {verdict(len(per_node) == 2)}")
    )
    finished_per_node = results.two_nodes.ray["finished_per_node"]
    listed = ", ".join(f"{node}: {count}" for node, count in finished_per_node.items())
    rows.append(
        (
            "two 1-CPU nodes, batches finished by tasks: per node",
            listed,
            f"both nodes {verdict(len(finished_per_node) == 2)}",
        )
    )
    rows.append(("two 1-CPU nodes", breakdown(results.two_nodes), "report"))
    print()
    print(f"| the archive ({gigabytes:.2f} GB), {runs} alternating rounds | measured | target |")
    print("| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    figures = median_ray.ray
    per_gb = {
        "tasks: read, find candidates (CPU-s/GB, added up over the batches)": figures["task_cpu_s"]
        / gigabytes,
        "tasks: time preparing the batches (s/GB, added up)": figures["task_s"] / gigabytes,
        "dedup: keys sorted twice (wall s/GB, 2 CPUs)": figures["dedup_s"] / gigabytes,
        "driver: the whole run's CPU (CPU-s/GB)": median_ray.driver_cpu_s / gigabytes,
        "finished by the driver: mark, figures, write (wall s/GB)": figures["finish_s"] / gigabytes,
        "finished by tasks (two 1-CPU nodes): the tasks' CPU (CPU-s/GB)": results.two_nodes.ray[
            "finish_task_cpu_s"
        ]
        / gigabytes,
        "finished by tasks (two 1-CPU nodes): the driver's CPU meanwhile (CPU-s/GB)": results.two_nodes.ray[
            "finish_driver_cpu_s"
        ]
        / gigabytes,
        "local engine: the whole run's CPU (CPU-s/GB)": statistics.median(
            run.driver_cpu_s for run in results.local
        )
        / gigabytes,
        "local engine: wall (s/GB, 2 cores)": local_s / gigabytes,
    }
    print()
    for name, value in per_gb.items():
        print(f"{name}: {value:.2f}")
    return per_gb


def _commit() -> str:
    """The checked-out commit the figures were measured at (short), if this is a clone."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (git from the PATH)
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return done.stdout.strip()


def verdict(met: bool) -> str:
    return "PASS" if met else "FAIL"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=1000, help="the archive's size (default: the 1 GB archive)")
    parser.add_argument("--runs", type=int, default=3, help="alternating rounds local / ray (default 3)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--generator", type=Path, default=DEFAULT_GENERATOR)
    args = parser.parse_args(argv)

    spec = ArchiveSpec(args.mb, default_files(args.mb), DEFAULT_SEED, 0.0, 0.0)
    archive = ensure_archive(spec, args.cache, args.generator)
    warm_page_cache(sorted(archive.rglob("*.jsonl")))
    gigabytes = sum(path.stat().st_size for path in archive.rglob("*.jsonl")) / 1e9
    work = Path(tempfile.mkdtemp(prefix="ray-bench-", dir=args.cache))
    report = work / "report.json"
    print(f"archive {archive} ({gigabytes:.2f} GB); work folder {work}", flush=True)
    results = Results(archive, gigabytes)
    side_by_side(results, work, args.runs, report)
    elsewhere(results, work, report)
    per_gb = print_report(results, args.runs)
    saved = asdict(results) | {
        "archive": str(archive),
        "ratio": results.ratio,
        "per_gb": per_gb,
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": _commit(),
    }
    (args.cache / RAY_RESULTS_FILE).write_text(json.dumps(saved, indent=2) + "\n")
    if not all(results.same.values()):
        print(f"outputs differ: kept in {work}", file=sys.stderr)
        return 1
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as error:
        print(f"ray_bench: {error}", file=sys.stderr)
        sys.exit(2)
