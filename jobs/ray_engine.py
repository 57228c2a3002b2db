"""``compound pairs --engine ray``: the batches read and prepared on a Ray cluster, through Ray Data.

The run is the local engine's (``jobs.pairs_job``): the driver lists the files, detects
their layouts and cuts them into batches with ``jobs.discover.batches``, and the
batches' outputs are written in input order (``finish_batches``). What this engine moves
to the cluster is what each batch needs no other batch for, and the one step that needs
them all:

1. **Tasks.** Each batch becomes a small description (``BatchTask``): its pieces without
   their bytes (paths, offsets, lengths, the reader, element bounds), so that the
   workers read the bytes. A piece whose bytes the driver holds (cut from a file larger
   than a batch) is described by where they are in the file when that can be checked
   (whole lines of an uncompressed file), else by its place among the file's pieces, and
   the worker cuts the file again to get it (``Recut``). The descriptions go through
   ``ray.data.from_items`` and ``Dataset.map`` runs ``jobs.pairs_job.prepare`` on each:
   a block of consecutive batches per CPU of the cluster (at most
   ``MAX_BATCHES_PER_TASK`` a block), each block a task that prepares its batches one
   after the other and hands each on as a block of its own.
   The result is ``materialize``-d in the object store (spilled to disk past its
   memory): a row per batch with the prepared tables (pickled) and its candidates'
   dedup keys. A task's memory is the local engine's per batch.
2. **The run's duplicates.** "The first of equal pairs in input order wins" is a
   ``groupby("dedup_key")`` with a ``Min`` aggregation over the candidates that pass the
   pair rules, each one's position being ``batch << 32 | row``: Ray Data hash-partitions
   the keys over the cluster (its shuffle, not ours) and keeps each key's earliest
   position. The positions kept are ``sort``-ed (a range-partitioned distributed sort) so
   that they come back in input order.
3. **Finished, in input order.** Each batch's duplicates marked, its pairs given ids, its
   figures taken and its outputs written, by the same code as the local engine's
   (``jobs.pairs_job``), in one of two places (``_finishing_where``):

   - on a cluster of ``FINISH_ON_TASKS_FROM_CPUS`` or more, by tasks: the driver turns
     the kept positions, streamed in order a block at a time, into each batch's flags
     (a bit per candidate, ``_earlier_copies``, in the object store), and
     ``map_batches`` over the prepared batches, a run of consecutive ones a task,
     finishes each (``finish_batch``) and hands back its figures and its outputs
     encoded (``jobs.outputs.encode_batch``). The driver adds up the figures and appends
     the bytes in input order (``finish_batches``; Parquet files joined by
     ``jobs.parquet_concat``): what it does per GB is writing the outputs.
   - on a smaller one, by the driver: it streams the prepared batches (``iter_rows``,
     in input order: ``preserve_order``) and the kept positions side by side, a batch at
     a time, and hands each batch with its ``earlier_copy`` flags to ``finish_batches``,
     which finishes and writes it exactly as for the local engine. On one machine this
     is faster: the driver's writers overlap with its fetching the next batch.

   No step gathers the archive's candidates or keys on the driver: it holds the batch
   being finished, the ones its writers hold (``WRITES_AHEAD``) and the one Ray Data
   prefetches, a block of kept positions, the batch descriptions (a path and a few
   numbers per piece) and, when tasks finish, the ObjectRefs of each batch's flags.

An incremental run deduplicates against the earlier runs' pairs with the dataset's
on-disk ``KeyIndex``, batch by batch on the driver, as the local engine does: both
engines read and write the same state.

Ray is an optional dependency (``uv sync --extra ray``): importing this module does not
import it (``import jobs.cli`` stays fast); ``RayEngine`` does, when it connects.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import logging
import math
import os
import pickle
import socket
import time
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

# Ray's hook for drivers started with `uv run` runs every worker through `uv run` in a
# copy of the working directory, which builds an environment of its own there (without
# the ray extra): the workers then fail to start. Ray reads this when it is first
# imported; the workers run the driver's interpreter instead, as under `python -m`.
# RAY_ENABLE_UV_RUN_RUNTIME_ENV=1 turns the hook back on.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")

from jobs.discover import Detected, Piece, batches
from jobs.key_index import KeyIndex
from jobs.outputs import WriteOptions
from jobs.pairs_job import FinishedBatch, Finishing, PairRules, PreparedBatch, finish_batch, prepare
from jobs.seen_keys import SeenKeys

#: How to get the engine where it is missing.
INSTALL_HINT = "install the ray extra: uv sync --extra ray (or pip install 'compounding-intelligence[ray]')"
#: Set by the fault test: the first task writes its process id into this folder and
#: waits there to be killed (``_hold_first_task``).
HOLD_FIRST_TASK_ENV = "COMPOUND_RAY_HOLD_FIRST_TASK"
#: With ``HOLD_FIRST_TASK_ENV``: ``finish`` holds the first task that finishes batches
#: instead (when tasks finish them, ``FINISH_ON_ENV``).
HOLD_STAGE_ENV = "COMPOUND_RAY_HOLD_STAGE"
#: Where the engine writes its figures (``RayFigures``) as JSON at the end of a run, for
#: the bench: timings and tasks per node, which stats.json (the same for both engines)
#: does not hold.
REPORT_ENV = "COMPOUND_RAY_REPORT"
#: A batch's position in the run is ``batch << POSITION_BITS | row``: 4 billion
#: candidates a batch, 2 billion batches.
POSITION_BITS = 32
#: Bytes compared at each end of a piece the driver read, where the engine says it lies
#: in the file (``_located``).
CHECK_BYTES = 64
#: Blocks of keys per CPU of the cluster in the dedup's sorts.
KEY_BLOCKS_PER_CPU = 2
#: Ray Data's target size of a block, below a prepared batch's (38 MB pickled for a batch
#: of the bench archive): each batch's row leaves its task as a block of its own, as soon
#: as it is prepared. With the default (128 MB) a task gathered three batches into a
#: block and then stood 0.4 to 1 s before its next batch; on the 1 GB bench archive the
#: tasks took 6.5 to 7.5 s against 5.1 to 5.4 s.
PREPARED_BLOCK_BYTES = 32 * 1024 * 1024
#: Where the run's batches are finished (``_finishing_where``): ``driver`` or ``tasks``;
#: by default the cluster's CPUs decide.
FINISH_ON_ENV = "COMPOUND_RAY_FINISH_ON"
#: From this many CPUs in the cluster, tasks finish the batches (mark their duplicates,
#: take their figures, encode their outputs, about 5 CPU-s a GB of sessions) and the
#: driver appends the bytes; below, the driver finishes them with its writers, as the
#: local engine does (3.3 s a GB on 1.7 cores). On 2 CPUs the tasks took 4.9 to 5.1 s a
#: GB to the driver's 3.3 s (1 GB bench archive); from 4 they split those 5 CPU-s.
FINISH_ON_TASKS_FROM_CPUS = 4
#: The most batches one Ray task prepares (``_task_count``).
MAX_BATCHES_PER_TASK = 16
#: Kept positions streamed to the driver at a time (16 bytes each with their key).
POSITIONS_PER_FETCH = 1 << 20


class RayEngineError(Exception):
    """Ray is missing or cannot be reached; the message is shown to the user as is."""


def ray_installed() -> bool:
    """Whether the ray extra is installed (without importing ray, which takes seconds)."""
    return importlib.util.find_spec("ray") is not None


@dataclass(frozen=True)
class Recut:
    """A piece whose bytes only the file's own cut gives (decompressed, or not the file's
    bytes as they are: a document's header): the file as detected, and the piece's place
    among its pieces. The worker cuts the file again with ``jobs.discover.batches`` and
    takes that piece, so that it is the driver's byte for byte."""

    found: Detected
    ordinal: int
    file_index: int

    def piece(self, batch_bytes: int) -> Piece:
        pieces = (piece for batch in batches([self.found], batch_bytes) for piece in batch)
        for ordinal, piece in enumerate(pieces):
            if ordinal == self.ordinal:
                return replace(piece, file_index=self.file_index)
        raise RuntimeError(f"{self.found.path} has fewer pieces than when the run cut it")


@dataclass(frozen=True)
class BatchTask:
    """What a task is given: a batch's pieces, without their bytes."""

    seq: int
    pieces: list[Piece | Recut]

    def load(self, batch_bytes: int) -> list[Piece]:
        return [item.piece(batch_bytes) if isinstance(item, Recut) else item for item in self.pieces]


def _located(piece: Piece, offset: int) -> Piece | None:
    """The piece as a read of ``len(data)`` bytes of its file from ``offset``, if both
    ends of ``data`` are there; else None."""
    length = len(piece.data)
    try:
        with piece.path.open("rb") as handle:
            handle.seek(offset)
            head = handle.read(min(CHECK_BYTES, length))
            handle.seek(offset + max(0, length - CHECK_BYTES))
            tail = handle.read(min(CHECK_BYTES, length))
    except OSError:
        return None
    if head != piece.data[:CHECK_BYTES] or tail != piece.data[-CHECK_BYTES:]:
        return None
    return replace(piece, data=b"", deferred=True, stored_at=(offset, length))


class _Describer:
    """Batches of pieces into ``BatchTask``s, remembering of each file what that needs:
    how it was detected, where its next piece starts, how many pieces it has had."""

    def __init__(self) -> None:
        self.found: dict[int, Detected] = {}
        self._next_offset: dict[int, int] = {}
        self._pieces: Counter[int] = Counter()

    def detected(self, files: Iterable[Detected]) -> Iterator[Detected]:
        """``files``, numbered as ``batches`` numbers them."""
        for file_index, found in enumerate(files):
            if found.reader is not None:
                self.found[file_index] = found
                resume = found.resume
                from_offset = resume is not None and resume.stop is not None and resume.sessions is None
                self._next_offset[file_index] = resume.offset if resume is not None and from_offset else 0
            yield found

    def describe(self, seq: int, batch: list[Piece]) -> BatchTask:
        return BatchTask(seq, [self._describe(piece) for piece in batch])

    def _describe(self, piece: Piece) -> Piece | Recut:
        index = piece.file_index
        found, ordinal, offset = self.found[index], self._pieces[index], self._next_offset.get(index, 0)
        if piece.ends_file:  # nothing more of it will come: forgotten, as millions of files may
            del self.found[index]
            self._pieces.pop(index, None)
            self._next_offset.pop(index, None)
        else:
            self._pieces[index] += 1
            self._next_offset[index] = offset + len(piece.data)
        if not piece.data:
            return piece  # deferred (read by the task), a database's range, or empty
        if found.content is not None and piece.data is found.content:  # a small file, read whole
            return replace(piece, data=b"", deferred=True)
        plain_lines = piece.reader.layout == "lines" and found.compression is None
        if plain_lines and piece.damaged is None and piece.spans is None:
            located = _located(piece, offset)
            if located is not None:
                return located
        return Recut(found, ordinal, index)


@dataclass(frozen=True)
class _TaskOptions:
    rules: PairRules
    keep_messages: bool
    batch_bytes: int
    hold_folder: str | None


#: Seconds to wait for a cluster's head to answer: Ray itself retries for ever.
CONNECT_TIMEOUT_S = 5.0


def _check_reachable(address: str) -> None:
    """Raise ``RayEngineError`` unless ``address`` (``HOST:PORT``, ``ray://HOST:PORT`` or
    ``auto``) answers: ``ray.init`` would wait for an address nobody listens on without end."""
    if address in ("auto", "local"):
        return  # Ray finds (or fails to find) the instance on this machine at once
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        raise RayEngineError(f"a Ray address is HOST:PORT (or auto), not {address!r}")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise RayEngineError(
            f"cannot reach the Ray cluster at {address}: {error.strerror or error}"
        ) from None


def _connect_error(address: str, error: BaseException) -> str:
    """What went wrong joining the cluster, in a line."""
    causes = []
    cause: BaseException | None = error
    while cause is not None:
        causes.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    if any("InvalidAuthToken" in text for text in causes):
        return (
            f"the Ray cluster at {address} wants its token: set RAY_AUTH_MODE=token, and RAY_AUTH_TOKEN "
            "(or ~/.ray/auth_token) to the cluster's token"
        )
    first_line = causes[0].strip().split("\n", 1)[0]
    return f"cannot join the Ray cluster at {address}: {first_line}"


def _hold_first_task(folder: Path, seq: int, stage: str) -> None:
    """For the fault test: the first batch's task of ``stage`` (``HOLD_STAGE_ENV``,
    default ``prepare``), on its first attempt, writes its process id and waits (at most
    a minute) for the test to kill it; Ray runs it again."""
    marker = folder / "first-task.pid"
    if seq != 0 or marker.exists() or os.environ.get(HOLD_STAGE_ENV, "prepare") != stage:
        return
    marker.write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (folder / "release").exists():
        time.sleep(0.05)


def _prepare_row(row: dict[str, Any], options: _TaskOptions) -> dict[str, Any]:
    """One Ray Data row per batch: its description in, its prepared tables out (pickled),
    with the dedup keys of its candidates that pass the pair rules and the node that ran it."""
    import ray  # noqa: PLC0415 (on a worker, where ray is imported already)

    started, began_at, cpu = time.perf_counter(), time.time(), time.process_time()
    task: BatchTask = pickle.loads(row["task"])  # noqa: S301 (the driver's own descriptions)
    if options.hold_folder is not None:
        _hold_first_task(Path(options.hold_folder), task.seq, "prepare")
    prepared = prepare(task.load(options.batch_bytes), options.rules, keep_messages=options.keep_messages)
    keys = (
        prepared.candidates.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("row"), pl.col("dedup_key"), pl.col("reject_reason")
        )
        .filter(pl.col("reject_reason").is_null())
        .drop("reject_reason")
    )
    return {
        "seq": task.seq,
        "keys": _ipc(keys),
        "prepared": pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL),
        "node": ray.get_runtime_context().get_node_id(),
        "began_at": began_at,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
    }


@dataclass(frozen=True)
class _FinishOptions:
    write_options: WriteOptions | None
    sample_size: int
    hold_folder: str | None
    earlier: Any  # an ObjectRef: per batch, the ObjectRef of its flags (``_earlier_copies``)


def _finish_rows(rows: pa.Table, options: _FinishOptions) -> Iterator[pa.Table]:
    """Finish the prepared batches of ``rows`` one after the other (``finish_batch``),
    each with its duplicates' flags, and hand each on as it is done: its figures and
    outputs encoded, pickled."""
    import ray  # noqa: PLC0415 (on a worker, where ray is imported already)

    flags_of = ray.get(options.earlier)
    for index in range(rows.num_rows):  # a batch at a time
        if options.hold_folder is not None:
            _hold_first_task(Path(options.hold_folder), rows["seq"][index].as_py(), "finish")
        started, cpu = time.perf_counter(), time.process_time()
        row, batch = _unpickled(rows, index, "prepared")
        length, bits = ray.get(flags_of[row["seq"]])
        earlier = np.ones(batch.candidates.height, dtype=np.bool_)  # past ``length``: copies
        earlier[:length] = np.unpackbits(bits, count=length).astype(np.bool_)
        finished = finish_batch(
            batch, pl.Series("earlier_copy", earlier), options.write_options, options.sample_size
        )
        del batch
        yield pa.Table.from_pylist(
            [
                {
                    "seq": row["seq"],
                    "finished": pickle.dumps(finished, protocol=pickle.HIGHEST_PROTOCOL),
                    "node": row["node"],
                    "began_at": row["began_at"],
                    "seconds": row["seconds"],
                    "cpu_seconds": row["cpu_seconds"],
                    "finished_on": ray.get_runtime_context().get_node_id(),
                    "finish_seconds": time.perf_counter() - started,
                    "finish_cpu_seconds": time.process_time() - cpu,
                }
            ]
        )


def _unpickled(block: pa.Table, index: int, column: str) -> tuple[dict[str, Any], Any]:
    """Row ``index`` of ``block`` without ``column``, and ``column``'s value unpickled from
    the block's buffer: taking it as bytes first (``to_pylist``, ``iter_rows``) copies a
    batch of tens of MB (1 CPU-s a GB on the driver)."""
    (row,) = block.drop_columns([column]).slice(index, 1).to_pylist()
    return row, pickle.loads(block[column][index].as_buffer())  # noqa: S301 (our own tasks' output)


def _task_count(batches: int, cpus: int) -> int:
    """How many Ray tasks prepare the run's batches, each a run of consecutive ones: one a
    CPU of the cluster, or more where runs would exceed ``MAX_BATCHES_PER_TASK``.

    As a task each, a batch waited 0.13 to 0.25 s for Ray Data to start it (a third of a
    batch's time); a task goes on from one batch to the next at once. The cap keeps tasks
    for a cluster that grows during the run (an autoscaling one may have no CPU at the
    start) and bounds what a worker lost mid-task takes with it."""
    return max(1, min(batches, max(cpus, math.ceil(batches / MAX_BATCHES_PER_TASK))))


def _ipc(frame: pl.DataFrame) -> bytes:
    data = frame.write_ipc(None)
    return data.getvalue()


def _passing_keys(blocks: pa.Table) -> pa.Table:
    """The rows' keys as one table: ``dedup_key`` and ``position`` (batch, row)."""
    frames = [
        pl.read_ipc(keys).select(
            pl.col("dedup_key"), (pl.lit(seq << POSITION_BITS, pl.Int64) + pl.col("row")).alias("position")
        )
        for seq, keys in zip(blocks["seq"].to_pylist(), blocks["keys"].to_pylist(), strict=True)
    ]
    empty = pl.DataFrame(schema={"dedup_key": pl.UInt64, "position": pl.Int64})
    return pl.concat([empty, *frames]).to_arrow()


def _first_of_each_key(block: pa.Table) -> pa.Table:
    """The earliest position of each key of a block sorted by key. The sort cut the keys
    into ranges, one block each, so a key's candidates are all in its block."""
    frame = pl.from_arrow(block)
    assert isinstance(frame, pl.DataFrame)
    return frame.group_by("dedup_key").agg(pl.col("position").min().alias("first")).select("first").to_arrow()


def _node_labels() -> dict[str, str]:
    """Each node's id as the figures name it: ``<id's first 8 hex> (head|worker, N CPU)``."""
    import ray  # noqa: PLC0415

    labels = {}
    for node in ray.nodes():  # type: ignore[no-untyped-call]
        resources = node.get("Resources", {})
        role = "head" if "node:__internal_head__" in resources else "worker"
        labels[node["NodeID"]] = f"{node['NodeID'][:8]} ({role}, {resources.get('CPU', 0):g} CPU)"
    return labels


def _cluster_cpus() -> int:
    import ray  # noqa: PLC0415

    return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]


class _KeptPositions:
    """The positions the run keeps (the first of each key), streamed in ascending order,
    taken a batch at a time."""

    def __init__(self, blocks: Iterator[dict[str, npt.NDArray[np.int64]]]) -> None:
        self._blocks = blocks
        self._pending: npt.NDArray[np.int64] = np.empty(0, np.int64)

    def rows_of(self, seq: int) -> npt.NDArray[np.int64]:
        """The rows of batch ``seq`` that are the first of their key (batches asked in order)."""
        start, stop = seq << POSITION_BITS, (seq + 1) << POSITION_BITS
        taken = []
        while True:
            cut = int(np.searchsorted(self._pending, stop))
            taken.append(self._pending[:cut])
            self._pending = self._pending[cut:]
            if len(self._pending):
                break
            block = next(self._blocks, None)
            if block is None:
                break
            self._pending = block["first"]
        rows = np.concatenate(taken)
        if len(rows) and rows[0] < start:
            raise RuntimeError(f"kept positions out of order at batch {seq}")
        return rows - start


@dataclass
class RayFigures:
    """What a run on Ray took, by stage, and where its tasks ran (``REPORT_ENV``)."""

    connect_s: float = 0.0  # ray.init: a local instance started, or a cluster joined
    describe_s: float = 0.0  # files detected and cut into task descriptions, on the driver
    prepare_s: float = 0.0  # the tasks: read, candidates (wall, the cluster's)
    task_s: float = 0.0  # the time the tasks took for each batch, added up
    task_cpu_s: float = 0.0  # their CPU time (every thread), added up
    busiest: int = 0  # the most batches prepared at once
    dedup_s: float = 0.0  # the run's duplicates: groupby-min over the keys, sorted
    finished_by: str = ""  # "driver" or "tasks" (``_finishing_where``)
    flags_s: float = 0.0  # finished by tasks: each batch's duplicates flagged, on the driver
    finish_s: float = 0.0  # the batches finished, their outputs written, in input order
    finish_task_s: float = 0.0  # finished by tasks: the time they took for each batch, added up
    finish_task_cpu_s: float = 0.0  # and their CPU time
    finish_driver_cpu_s: float = 0.0  # the driver's CPU (every thread) while the batches were finished
    batches: int = 0
    tasks_per_node: dict[str, int] = field(default_factory=dict)  # batches prepared on each node
    finished_per_node: dict[str, int] = field(default_factory=dict)  # finished by tasks, on each node
    prepared_on: Counter[str] = field(default_factory=Counter, repr=False)
    finished_on: Counter[str] = field(default_factory=Counter, repr=False)
    _spans: list[tuple[float, int]] = field(default_factory=list, repr=False)

    def add_prepared(self, row: dict[str, Any]) -> None:
        """A batch's figures from the task that prepared it."""
        self.prepared_on[row["node"]] += 1
        self.task_s += row["seconds"]
        self.task_cpu_s += row["cpu_seconds"]
        self._spans += [(row["began_at"], 1), (row["began_at"] + row["seconds"], -1)]

    def name_nodes(self) -> None:
        """At the end of a run: the most batches prepared at once, the batches per node."""
        self.busiest = max(itertools.accumulate(step for _, step in sorted(self._spans)), default=0)
        labels = _node_labels()
        self.tasks_per_node = {labels.get(node, node): count for node, count in self.prepared_on.items()}
        self.finished_per_node = {labels.get(node, node): count for node, count in self.finished_on.items()}

    def report(self) -> dict[str, Any]:
        """The figures as ``REPORT_ENV`` has them."""
        return {
            name: value for name, value in self.__dict__.items() if not isinstance(value, (Counter, list))
        }


class RayEngine:
    """Prepares a run's batches on a Ray cluster (``address``), or on a local Ray instance
    started for the run when there is none (``num_cpus``: its CPUs, default all).

    Without ``address``, Ray's own ``RAY_ADDRESS`` is used where it is set (a job that
    ``ray job submit`` started); a driver that already called ``ray.init`` (the tests)
    is used as it is. ``close`` disconnects, and stops an instance the engine started.
    """

    deduplicates_run = True

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        if not ray_installed():
            raise RayEngineError(f"--engine ray needs ray, which is not installed: {INSTALL_HINT}")
        self.address = address
        self.num_cpus = num_cpus
        self.figures = RayFigures()
        self._started = False
        hold = os.environ.get(HOLD_FIRST_TASK_ENV)
        self._hold_folder = hold or None

    def connect(self) -> None:
        """Join the cluster, or start a local instance; ``RayEngineError`` when it cannot be reached."""
        started = time.perf_counter()
        import ray  # noqa: PLC0415 (seconds to import: only for this engine)

        if not ray.is_initialized():
            # warnings too: Ray's own notes (its token authentication, a progress bar
            # disabled, CPUs still busy warming up) would bury the run's summary
            options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
            address = self.address or os.environ.get("RAY_ADDRESS")
            if address is None:  # a new instance, even where one runs on this machine
                address = "local"
                options |= {"num_cpus": self.num_cpus, "include_dashboard": False}
            else:
                _check_reachable(address)
            try:
                ray.init(address=address, **options)
            except (ConnectionError, ValueError, RuntimeError) as error:
                raise RayEngineError(_connect_error(address, error)) from None
            self._started = True
        self.figures.connect_s = time.perf_counter() - started
        self._warm_workers()

    def _warm_workers(self) -> None:
        """Start a worker per CPU importing what the tasks need, without waiting for them:
        a new driver's workers are new processes, and importing polars, pyarrow, Ray Data
        and the readers takes them seconds, which this overlaps with the driver's own
        imports and the detection of the files."""
        import ray  # noqa: PLC0415

        warm = ray.remote(num_cpus=1)(_import_task_modules)
        for _ in range(_cluster_cpus()):
            warm.remote()

    def close(self) -> None:
        """Disconnect from the cluster; stop the local instance if this engine started it."""
        report = os.environ.get(REPORT_ENV)
        if report:
            Path(report).write_text(json.dumps(self.figures.report(), indent=2) + "\n")
        if self._started:
            import ray  # noqa: PLC0415

            ray.shutdown()
            self._started = False

    def prepare_all(
        self,
        detected: Iterator[Detected],
        rules: PairRules,
        *,
        keep_messages: bool,
        batch_bytes: int,
        finishing: Finishing,
    ) -> Generator[PreparedBatch | FinishedBatch, None, None]:
        import ray  # noqa: PLC0415

        if not ray.is_initialized():
            self.connect()
        import ray.data  # noqa: PLC0415

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.target_max_block_size = PREPARED_BLOCK_BYTES
        context.execution_options.preserve_order = True  # blocks come out in input order
        # sorts by tasks: the default strategy's aggregator actors are new processes for
        # each sort, which take seconds to start (10 s a sort here, against 0.8 s)
        context.shuffle_strategy = ray.data.context.ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        figures = self.figures = RayFigures(connect_s=self.figures.connect_s)  # this run's

        started = time.perf_counter()
        describer = _Describer()
        tasks = [
            {"task": pickle.dumps(describer.describe(seq, batch), protocol=pickle.HIGHEST_PROTOCOL)}
            for seq, batch in enumerate(batches(describer.detected(detected), batch_bytes))
        ]
        figures.describe_s = time.perf_counter() - started
        figures.batches = len(tasks)
        if not tasks:
            return

        started = time.perf_counter()
        options = _TaskOptions(rules, keep_messages, batch_bytes, self._hold_folder)
        prepared = (
            ray.data.from_items(tasks, override_num_blocks=_task_count(len(tasks), _cluster_cpus()))
            .map(functools.partial(_prepare_row, options=options), num_cpus=1)
            .materialize()
        )
        figures.prepare_s = time.perf_counter() - started

        started = time.perf_counter()
        # a few blocks of keys per CPU: the sorts shuffle every block to every reducer
        blocks = max(1, min(len(tasks), KEY_BLOCKS_PER_CPU * _cluster_cpus()))
        kept = (
            prepared.select_columns(["seq", "keys"])
            .map_batches(_passing_keys, batch_format="pyarrow", batch_size=None)
            .repartition(blocks)
            .sort("dedup_key")
            .map_batches(_first_of_each_key, batch_format="pyarrow", batch_size=None)
            .sort("first")
            .materialize()
        )
        figures.dedup_s = time.perf_counter() - started
        positions = _KeptPositions(
            iter(kept.iter_batches(batch_size=POSITIONS_PER_FETCH, batch_format="numpy", prefetch_batches=1))
        )
        figures.finished_by = _finishing_where(_cluster_cpus())
        if figures.finished_by == "driver":
            yield from self._finish_on_driver(prepared, positions)
            return
        started = time.perf_counter()
        earlier = ray.put(_earlier_copies(len(tasks), positions, prepared, finishing.seen))
        del kept, positions
        figures.flags_s = time.perf_counter() - started
        yield from self._finish_on_tasks(
            prepared,
            _FinishOptions(finishing.write_options, finishing.sample_size, self._hold_folder, earlier),
        )

    def _finish_on_driver(
        self, prepared: Any, positions: _KeptPositions
    ) -> Generator[PreparedBatch, None, None]:
        """The prepared batches, in input order, with their duplicates' flags, for the run
        to finish on the driver."""
        figures = self.figures
        started, cpu = time.perf_counter(), time.process_time()
        for expected, row in enumerate(prepared.iter_rows()):
            if row["seq"] != expected:
                raise RuntimeError(f"batch {row['seq']} came back in place of batch {expected}")
            figures.add_prepared(row)
            batch = pickle.loads(row["prepared"])  # noqa: S301 (our own tasks' output)
            first = np.zeros(batch.candidates.height, dtype=np.bool_)
            first[positions.rows_of(expected)] = True
            yield PreparedBatch(batch, pl.Series("earlier_copy", ~first))
        figures.finish_s = time.perf_counter() - started
        figures.finish_driver_cpu_s = time.process_time() - cpu
        figures.name_nodes()

    def _finish_on_tasks(
        self, prepared: Any, options: _FinishOptions
    ) -> Generator[FinishedBatch, None, None]:
        """The prepared batches finished by tasks (``finish_batch``), as many runs of
        consecutive ones as preparing them took, and taken in input order."""
        figures = self.figures
        started, cpu = time.perf_counter(), time.process_time()
        finished = prepared.map_batches(
            functools.partial(_finish_rows, options=options),
            batch_format="pyarrow",
            batch_size=math.ceil(figures.batches / _task_count(figures.batches, _cluster_cpus())),
            num_cpus=1,
        )
        # whole blocks (a batch each), not iter_rows: see ``_unpickled``
        blocks = finished.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=1)
        rows = (_unpickled(block, index, "finished") for block in blocks for index in range(block.num_rows))
        for expected, (row, finished_batch) in enumerate(rows):
            if row["seq"] != expected:
                raise RuntimeError(f"batch {row['seq']} came back in place of batch {expected}")
            figures.add_prepared(row)
            figures.finished_on[row["finished_on"]] += 1
            figures.finish_task_s += row["finish_seconds"]
            figures.finish_task_cpu_s += row["finish_cpu_seconds"]
            yield finished_batch
        figures.finish_s = time.perf_counter() - started
        figures.finish_driver_cpu_s = time.process_time() - cpu
        figures.name_nodes()


def _finishing_where(cpus: int) -> str:
    """Where a run's batches are finished (``FINISH_ON_ENV``, else by the cluster's CPUs):
    ``driver`` on a small cluster, ``tasks`` from ``FINISH_ON_TASKS_FROM_CPUS``."""
    chosen = os.environ.get(FINISH_ON_ENV, "")
    if chosen in ("driver", "tasks"):
        return chosen
    return "tasks" if cpus >= FINISH_ON_TASKS_FROM_CPUS else "driver"


def _earlier_copies(
    batch_count: int, positions: _KeptPositions, prepared: Any, seen: SeenKeys | KeyIndex | None
) -> list[Any]:
    """Per batch, in input order, the ObjectRef of its candidates' ``earlier_copy``
    flags: a candidate that passes the rules and is not the first of its key in the run
    (``positions``) or, with ``seen``, whose key an earlier run kept; ``seen`` gets the
    run's new keys, in input order.

    On the driver, a batch at a time: the kept positions stream past a block at a time,
    and each batch's flags go to the object store as bits up to its last first-of-its-key
    (``(length, packed bits)``: past it every passing candidate is a copy), about 80 KB a
    GB of sessions."""
    import ray  # noqa: PLC0415

    keys = None if seen is None else iter(prepared.select_columns(["seq", "keys"]).iter_rows())
    refs = []
    for seq in range(batch_count):
        rows = positions.rows_of(seq)
        length = int(rows.max()) + 1 if len(rows) else 0
        earlier = np.ones(length, dtype=np.bool_)
        earlier[rows] = False
        if keys is not None and seen is not None:
            row = next(keys)
            if row["seq"] != seq:
                raise RuntimeError(f"batch {row['seq']} came back in place of batch {seq}")
            passing = pl.read_ipc(row["keys"]).filter(pl.col("row") < length)
            firsts = passing.filter(pl.Series(~earlier[passing["row"].to_numpy()]))
            in_index = seen.contains(firsts["dedup_key"])
            earlier[firsts.filter(in_index)["row"].to_numpy()] = True
            seen.add(firsts.filter(~in_index)["dedup_key"])
        refs.append(ray.put((length, np.packbits(earlier))))
    return refs


def _import_task_modules() -> None:
    import pyarrow  # noqa: F401, PLC0415
    import ray.data  # noqa: F401, PLC0415

    import jobs.pairs_job  # noqa: F401, PLC0415
