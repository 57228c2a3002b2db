"""The pairs job: session files in, training pairs and their stats out, batch by batch.

Memory is bounded by the batch: only the dedup keys of kept pairs (8 bytes each) and a
few running sums cross from one batch to the next.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Full, Queue
from tempfile import TemporaryDirectory
from typing import Any, NamedTuple, Protocol, TypeVar

import polars as pl
import polars_hash as plh

from jobs.discover import Detected, Piece, batches, detect, size_on_disk
from jobs.incremental import DATASETS, Dataset, Plan, StateError, make_durable, part_name
from jobs.key_index import KeyIndex
from jobs.outputs import EncodedBatch, Outputs, WriteOptions, encode_batch
from jobs.read_batch import read_batch
from jobs.seen_keys import SeenKeys
from jobs.uris import SessionPath
from transforms.pairs import (
    FILTER_ORDER,
    HEAD_CHARS,
    candidates,
    ledger,
    mark_duplicates,
    session_key,
    with_dedup_keys,
)
from transforms.secrets import (
    compile_test,
    redacted_rules,
    rules_for,
    scrub_candidates,
    scrub_columns,
    scrub_names,
)

#: Each batch costs about 11 ms of CPU whatever its size (bench archive cut into 8, 12
#: and 24 MB batches; a batch of a few sessions spends 4.6 ms reading, 3.1 finding
#: candidates, 1.8 on the ledger and 2.8 writing), hence batches of 40 MB: 3.72-3.83 s
#: for the 1 GB bench archive against 4.00-4.09 s with 24 MB, for 890 against 610 MiB
#: of peak memory (906-969 MiB at 4 GB over several runs; the budget is 1 GiB).
DEFAULT_BATCH_BYTES = 40 * 1024 * 1024
#: Batches read and prepared at once, ahead of the one being deduplicated. Reading is
#: the longest stage and leaves a core partly idle while it holds the GIL in Python;
#: with two, the 1 GB bench archive takes 5.1 s instead of 5.6 s (three: 5.2 s), for
#: 90 MiB more peak memory.
READERS = 2
#: Batches handed to the writers and not yet written. With one, the main thread waited
#: for the previous batch's writes before handing over the next, and the readers then
#: for the main thread; with two, 3.77-3.87 -> 3.64-3.69 s on the 1 GB bench archive
#: (three: no better), peak memory unchanged within the noise (850-900 MiB).
WRITES_AHEAD = 2
T = TypeVar("T")


THINK_BLOCK = r"(?s)<think>.*?</think>"


@dataclass(frozen=True)
class PairRules:
    min_ratio: float = 1.5
    min_words: int = 20
    responses: str = "auto"  # or "each", "final"
    strip_think: bool = False  # drop inline <think>...</think> from message text
    scrub: str = "secrets"  # or "secrets,pii", "none": what is replaced in every text written


class PieceOfFile(NamedTuple):
    """What the run's figures need of a piece: not its bytes, which would stay in memory."""

    file_index: int
    file: str
    format: str
    ends_file: bool  # the file's last piece is in this batch


@dataclass(frozen=True)
class Prepared:
    """A batch read and its candidates found: all of it that needs no other batch."""

    bytes_read: int
    pieces: list[PieceOfFile]
    candidates: pl.DataFrame
    per_format: pl.DataFrame  # format, messages, sessions, final_sessions
    per_file: pl.DataFrame  # file_index, messages
    quarantine: pl.DataFrame
    skipped_messages: int
    messages: pl.DataFrame | None  # the message table, when it is written out


@dataclass(frozen=True)
class BatchFigures:
    """What the run's figures need of a finished batch (``batch_figures``): counts, and the
    pairs' ratios (added one at a time, in order, by ``RunStats.add``). Small whatever the
    batch: an engine that finishes batches on a cluster sends these back, not the batch."""

    bytes_read: int
    pieces: list[PieceOfFile]
    per_file: pl.DataFrame  # file_index, messages
    per_file_outcomes: pl.DataFrame  # file_index, reject_reason (null: kept), candidates
    rejected: dict[str, int]
    per_format: pl.DataFrame  # format, messages, sessions, final_sessions, pairs
    skipped_messages: int
    malformed_lines: int
    prompt_words: int
    response_words: int
    ratios: pl.Series  # the pairs', in order
    redactions: Counter[str]  # per rule, the secrets replaced in the pairs

    @property
    def files_ended(self) -> int:
        """Files whose last piece is in this batch (for progress)."""
        return sum(piece.ends_file for piece in self.pieces)


def batch_figures(prepared: Prepared, marked: pl.DataFrame, kept: pl.DataFrame) -> BatchFigures:
    """A batch's figures, from its candidates marked (``marked``) and its pairs (``kept``)."""
    rejected = {
        reason: count
        for reason, count in marked["reject_reason"].value_counts().iter_rows()
        if reason is not None
    }
    redactions: Counter[str] = Counter()
    scrubbed = kept.filter(pl.col("redactions") > 0)
    if scrubbed.height:
        found = scrubbed.select(redacted_rules(pl.col("terse")), redacted_rules(pl.col("rich")))
        redactions.update(pl.concat([found["terse"], found["rich"]]).explode().drop_nulls().to_list())
    return BatchFigures(
        bytes_read=prepared.bytes_read,
        pieces=prepared.pieces,
        per_file=prepared.per_file,
        per_file_outcomes=marked.group_by("file_index", "reject_reason").len(),
        rejected=rejected,
        per_format=prepared.per_format.join(kept.group_by("format").len("pairs"), on="format", how="left"),
        skipped_messages=prepared.skipped_messages,
        malformed_lines=prepared.quarantine.height,
        prompt_words=int(kept["prompt_words"].sum()),
        response_words=int(kept["response_words"].sum()),
        ratios=kept["ratio"],
        redactions=redactions,
    )


@dataclass
class FormatStats:
    files: int = 0
    sessions: int = 0
    messages: int = 0
    pairs: int = 0
    final_sessions: int = 0  # sessions whose final answers only were responses

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "sessions": self.sessions,
            "messages": self.messages,
            "pairs": self.pairs,
            "responses": {"each": self.sessions - self.final_sessions, "final": self.final_sessions},
        }


#: How many files without a pair stats.json lists (all are counted).
LISTED_FILES_WITHOUT_PAIRS = 1000
#: How many unrecognized files stats.json lists (all are counted): an archive may hold
#: folders of other JSON (an agent's settings, its todo lists) by the hundred thousand.
LISTED_UNRECOGNIZED_FILES = 1000


@dataclass
class FileFigures:
    file: str
    format: str
    messages: int = 0
    candidates: int = 0
    pairs: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class FilesWithoutPairs:
    """The files a run read that gave no pair, each with its messages, candidates and the
    reason that rejected most of them: a layout read wrongly shows as a line here
    instead of a silent zero. Only the files of the batches in flight are held."""

    listed: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0
    _open: dict[int, FileFigures] = field(default_factory=dict)

    def add(self, figures: BatchFigures) -> None:
        for piece in figures.pieces:  # a file's figures made once (a folder of small files: a piece each)
            if piece.file_index not in self._open:
                self._open[piece.file_index] = FileFigures(piece.file, piece.format)
        for file_index, messages in figures.per_file.iter_rows():
            self._open[file_index].messages += messages
        for file_index, reason, count in figures.per_file_outcomes.iter_rows():
            file_figures = self._open[file_index]
            file_figures.candidates += count
            if reason is None:
                file_figures.pairs += count
            else:
                file_figures.reasons[reason] = file_figures.reasons.get(reason, 0) + count
        for piece in figures.pieces:
            if not piece.ends_file:
                continue
            file_figures = self._open.pop(piece.file_index)
            if file_figures.pairs:
                continue
            self.count += 1
            if len(self.listed) < LISTED_FILES_WITHOUT_PAIRS:
                # ties go to the filter that comes first, as a candidate's reason does
                top = max(
                    file_figures.reasons,
                    key=lambda r: (file_figures.reasons[r], -FILTER_ORDER.index(r)),
                    default=None,
                )
                self.listed.append(
                    {
                        "file": file_figures.file,
                        "format": file_figures.format,
                        "messages": file_figures.messages,
                        "candidates": file_figures.candidates,
                        "top_reason": top,
                    }
                )


@dataclass
class RunStats:
    """Running totals; ``as_dict`` gives stats.json."""

    files_scanned: int = 0
    sessions: int = 0
    messages: int = 0
    skipped_messages: int = 0
    malformed_lines: int = 0
    unique_pairs: int = 0
    prompt_words_total: int = 0
    response_words_total: int = 0
    # summed in pair order, one addition at a time, as the reference's sum() does
    ratio_total: float = 0.0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILTER_ORDER, 0))
    formats: dict[str, FormatStats] = field(default_factory=dict)
    #: the first ``LISTED_UNRECOGNIZED_FILES`` files no reader knows, with the reason
    unrecognized_files: list[dict[str, str]] = field(default_factory=list)
    unrecognized_count: int = 0
    without_pairs: FilesWithoutPairs = field(default_factory=FilesWithoutPairs)
    #: per rule, the secrets replaced in the pairs written
    redactions: Counter[str] = field(default_factory=Counter)
    damaged_files: int = 0
    rules: dict[str, Any] = field(default_factory=dict)  # the options the run was made with

    def add(self, figures: BatchFigures) -> None:
        """Add one finished batch's figures (``batch_figures``), batches in input order."""
        for reason, count in figures.rejected.items():
            self.rejected[reason] += count
        for name, message_count, session_count, final_count, pair_count in figures.per_format.iter_rows():
            format_figures = self.formats.setdefault(name, FormatStats())
            format_figures.messages += message_count
            format_figures.sessions += session_count
            format_figures.final_sessions += final_count
            format_figures.pairs += pair_count or 0
            self.messages += message_count
            self.sessions += session_count
        self.skipped_messages += figures.skipped_messages
        self.malformed_lines += figures.malformed_lines
        self.unique_pairs += figures.ratios.len()
        self.prompt_words_total += figures.prompt_words
        self.response_words_total += figures.response_words
        self.ratio_total = _sequential_sum(self.ratio_total, figures.ratios)
        self.without_pairs.add(figures)
        self.redactions.update(figures.redactions)

    def add_file(self, found: Detected) -> None:
        if found.reader is not None:
            format_figures = self.formats.get(found.reader.format)
            if format_figures is None:  # made once, not once a file
                format_figures = self.formats[found.reader.format] = FormatStats()
            format_figures.files += 1
        elif found.unrecognized is not None:
            self.unrecognized_count += 1
            if len(self.unrecognized_files) < LISTED_UNRECOGNIZED_FILES:
                self.unrecognized_files.append({"file": str(found.path), "reason": found.unrecognized})
        else:
            self.damaged_files += 1

    def as_dict(self) -> dict[str, Any]:
        n = self.unique_pairs
        duplicates = self.rejected["duplicate"]  # the reference's raw pairs less its unique ones
        return {
            "files_scanned": self.files_scanned,
            "raw_pairs": n + duplicates,
            "unique_pairs": n,
            "duplicates_removed": duplicates,
            "avg_prompt_words": round(self.prompt_words_total / n, 1) if n else 0,
            "avg_response_words": round(self.response_words_total / n, 1) if n else 0,
            "avg_ratio": round(self.ratio_total / n, 2) if n else 0,
            "sessions": self.sessions,
            "messages": self.messages,
            "skipped_messages": self.skipped_messages,
            "malformed_lines": self.malformed_lines,
            "damaged_files": self.damaged_files,
            "rejected": dict(self.rejected),
            "formats": {name: figures.as_dict() for name, figures in sorted(self.formats.items())},
            "unrecognized_files_count": self.unrecognized_count,
            "unrecognized_files": self.unrecognized_files,
            "redactions": dict(sorted(self.redactions.items())),
            "files_without_pairs_count": self.without_pairs.count,
            "files_without_pairs": self.without_pairs.listed,
            "rules": self.rules,
        }


def pair_id() -> pl.Expr:
    """A stable id of a kept pair: the reference's content hash (sha256 of the prompt and
    the response's head, first 16 hex digits), the same in every polars version."""
    content = plh.concat_str(pl.col("terse"), pl.col("rich").str.slice(0, HEAD_CHARS))
    return content.chash.sha2_256().str.head(16).alias("pair_id")


def split_kept(marked: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ledger with ``pair_id`` on its kept rows, and those rows as pairs, their texts
    scrubbed (``terse_scrubbed``, ``rich_scrubbed``).

    The id is hashed on the pairs alone and put back in the ledger by position: a
    hash under ``when(kept)`` would be computed for every candidate. It is the original
    texts' id, whatever the run scrubbed.
    """
    kept = marked.filter(pl.col("kept")).with_columns(pair_id())
    if (kept["redactions"] > 0).any():
        kept = kept.with_columns(
            pl.coalesce("terse_scrubbed", "terse").alias("terse"),
            pl.coalesce("rich_scrubbed", "rich").alias("rich"),
        )
    ids = pl.repeat(None, marked.height, dtype=pl.String, eager=True).scatter(
        marked["kept"].arg_true(), kept["pair_id"]
    )
    scrubbed = ["terse_scrubbed", "rich_scrubbed"]
    return (
        marked.with_columns(ids.alias("pair_id")).drop(scrubbed),
        kept.drop(scrubbed).rename({"session_id": "source"}),
    )


def _responses_for(responses: str, agent_run: pl.Series) -> str:
    """``auto`` as ``each`` or ``final`` when a batch holds only chats or only agents' runs:
    the same candidates, without the window that tells narration from answers where no
    conversation needs it (a batch of ShareGPT files, the common case)."""
    if responses != "auto" or agent_run.is_empty():
        return responses
    if not agent_run.any():
        return "each"
    return "final" if agent_run.all() else "auto"


def _sequential_sum(start: float, values: pl.Series) -> float:
    """``start + v0 + v1 + ...`` left to right (polars' ``sum`` adds pairwise)."""
    if values.is_empty():
        return start
    return float(pl.concat([pl.Series([start], dtype=pl.Float64), values]).cum_sum()[-1])


def _read_ahead(
    executor: ThreadPoolExecutor,
    prepare: Callable[[list[Piece]], T],
    batches: Iterator[list[Piece]],
    depth: int,
) -> Iterator[T]:
    """``prepare(batch)`` for each batch, in order, up to ``depth`` of the next ones running
    while this one is used."""
    ahead: deque[Future[T]] = deque()
    for batch in batches:
        ahead.append(executor.submit(prepare, batch))
        if len(ahead) > depth:
            yield ahead.popleft().result()
    while ahead:
        yield ahead.popleft().result()


_DONE = object()


def _in_background(items: Iterator[T], depth: int) -> Generator[T, None, None]:
    """``items``, produced on a thread of their own up to ``depth`` ahead of the consumer.

    Making batches means detecting each file's layout and cutting large files into
    pieces: Python work that would otherwise hold up the thread that deduplicates (for
    3,000 files of 100 KB, over a second)."""
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        """Hand ``item`` over; False once the consumer has stopped (it takes nothing more)."""
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
            except Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as error:
            put(error)

    producer = threading.Thread(target=produce, name="compound-batches", daemon=True)
    producer.start()
    try:
        while (item := queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


def prepare(batch: list[Piece], rules: PairRules, *, keep_messages: bool = False) -> Prepared:
    """What a batch needs no other batch for: its messages' figures and its candidates.

    Every engine calls this, on its own threads or workers: it reads the pieces' bytes
    (``read_batch``) and applies the readers and pair rules of ``transforms/``. What
    depends on other batches (the duplicates across them, the running figures, the
    order of the outputs) is left to ``finish_batches``.
    """
    scrub_rules = rules_for(rules.scrub)
    answers_final = {"each": pl.lit(False), "final": pl.lit(True)}.get(rules.responses, pl.col("agent_run"))
    read = read_batch(batch)
    # names too: a session id or a tool name can hold a credential as well as a text
    messages = scrub_names(read.messages, ["session_id", "model", "tool_name"], scrub_rules).lazy()
    if rules.strip_think:
        messages = messages.with_columns(pl.col("text").str.replace_all(THINK_BLOCK, ""))
    found = (
        scrub_candidates(
            with_dedup_keys(
                candidates(
                    messages,
                    min_ratio=rules.min_ratio,
                    min_words=rules.min_words,
                    responses=_responses_for(rules.responses, read.messages["agent_run"]),
                )
            ),
            scrub_rules,
            HEAD_CHARS,
        )
        # written nowhere (the pairs are the stripped texts): dropped, so that the
        # buffers of every message's text are freed before the batch is written
        .drop("prompt", "response")
        .collect()
    )
    return Prepared(
        bytes_read=sum(piece.size for piece in batch),
        pieces=[
            PieceOfFile(piece.file_index, str(piece.path), piece.reader.format, piece.ends_file)
            for piece in batch
        ],
        candidates=found,
        per_format=read.messages.group_by("format").agg(
            pl.len().alias("messages"),
            session_key().n_unique().alias("sessions"),
            session_key().filter(answers_final).n_unique().alias("final_sessions"),
        ),
        per_file=read.messages.group_by("file_index").len("messages"),
        quarantine=scrub_columns(read.quarantine.lazy(), ["raw"], scrub_rules).collect(),
        skipped_messages=read.skipped_messages,
        messages=scrub_columns(messages, ["text"], scrub_rules).collect() if keep_messages else None,
    )


def _write_tables(outputs: Outputs, kept: pl.DataFrame, prepared: Prepared) -> None:
    outputs.write_pairs(kept)
    if prepared.messages is not None:
        outputs.write_messages(prepared.messages)
    outputs.write_quarantine(prepared.quarantine)


def _write_lines_and_ledger(outputs: Outputs, kept: pl.DataFrame, marked: pl.DataFrame) -> None:
    outputs.write_jsonl(kept)
    outputs.write_candidates(marked)


def _damaged_rows(found: Detected) -> pl.DataFrame:
    return pl.DataFrame(
        {"file": [str(found.path)], "line": [None], "error": [found.damaged], "raw": [""]},
        schema={"file": pl.String, "line": pl.Int64, "error": pl.String, "raw": pl.String},
    )


class PreparedBatch(NamedTuple):
    """A batch prepared by an engine, in input order, for the run to finish."""

    prepared: Prepared
    #: per candidate, whether a candidate with its dedup key passed the pair rules
    #: earlier in this run (input order: batch, then row), where the engine finds that
    #: out for the whole run at once; None where the run's dedup index tells it, batch
    #: after batch
    earlier_copy: pl.Series | None


class FinishedBatch(NamedTuple):
    """A batch an engine finished itself (``finish_batch``), in input order: the run adds
    its figures and appends its outputs."""

    figures: BatchFigures
    encoded: EncodedBatch | None  # None in a dry run
    samples: list[dict[str, Any]]  # its first pairs, as many as the run shows


@dataclass(frozen=True)
class Finishing:
    """What an engine that finishes batches itself needs of the run: the earlier runs'
    keys (``seen``, looked up and added to in input order), how the outputs are written
    (None in a dry run), and how many pairs the run shows as samples."""

    seen: SeenKeys | KeyIndex | None
    write_options: WriteOptions | None
    sample_size: int


def mark_batch(prepared: Prepared, earlier_copy: pl.Series | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A batch's candidates with their duplicates marked (``earlier_copy``: a copy was
    kept earlier in the run, or by an earlier run) and ids given, and its pairs
    (``split_kept``)."""
    seen_before = None if earlier_copy is None else pl.lit(earlier_copy)
    return split_kept(ledger(mark_duplicates(prepared.candidates.lazy(), seen_before)).collect())


def finish_batch(
    prepared: Prepared, earlier_copy: pl.Series, write_options: WriteOptions | None, sample_size: int
) -> FinishedBatch:
    """All of a batch's finishing that needs no other batch, once its duplicates are
    known: its pairs, its figures and its outputs encoded (the run appends them)."""
    marked, kept = mark_batch(prepared, earlier_copy)
    encoded = None
    if write_options is not None:
        encoded = encode_batch(
            write_options,
            pairs=kept,
            candidates=marked,
            quarantine=prepared.quarantine,
            messages=prepared.messages,
        )
    samples = kept.head(sample_size).to_dicts() if sample_size else []
    return FinishedBatch(batch_figures(prepared, marked, kept), encoded, samples)


class Engine(Protocol):
    """Where batches are read and prepared (``prepare``): this machine's threads
    (``LocalEngine``) or a cluster's workers (``jobs.ray_engine.RayEngine``). The rest,
    the batches' order, their duplicates across batches, the figures and the outputs, is
    the run's (``finish_batches``); an engine may also finish its batches itself, all
    but appending their outputs and adding up their figures (``FinishedBatch``)."""

    #: True when the engine finds every candidate's ``earlier_copy`` itself: a full run
    #: then needs no dedup index of its own
    deduplicates_run: bool

    def prepare_all(
        self,
        detected: Iterator[Detected],
        rules: PairRules,
        *,
        keep_messages: bool,
        batch_bytes: int,
        finishing: Finishing,
    ) -> Generator[PreparedBatch | FinishedBatch, None, None]:
        """The files, as ``detected``, cut into batches of about ``batch_bytes``
        (``jobs.discover.batches``) and each batch prepared, or finished, in input order
        (a generator: closed when the run stops early)."""
        ...


class LocalEngine:
    """Batches read and prepared on this machine's threads, ``READERS`` of them at once,
    while the run finishes the one before."""

    deduplicates_run = False

    def prepare_all(
        self,
        detected: Iterator[Detected],
        rules: PairRules,
        *,
        keep_messages: bool,
        batch_bytes: int,
        finishing: Finishing,  # noqa: ARG002 (the run finishes this engine's batches)
    ) -> Generator[PreparedBatch, None, None]:
        def prepare_one(batch: list[Piece]) -> Prepared:
            return prepare(batch, rules, keep_messages=keep_messages)

        made = batches(detected, batch_bytes)
        with ThreadPoolExecutor(READERS, "compound-read") as reader:
            for prepared in _read_ahead(reader, prepare_one, _in_background(made, READERS), READERS):
                yield PreparedBatch(prepared, None)


def run(
    files: Sequence[SessionPath],
    rules: PairRules,
    outputs: Outputs | None,
    *,
    forced_format: str | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    on_batch: Callable[[int, int], None] | None = None,
    sample_size: int = 0,
    plan: Plan | None = None,
    seen: SeenKeys | KeyIndex | None = None,
    engine: Engine | None = None,
) -> tuple[RunStats, list[dict[str, Any]]]:
    """Run the job over ``files``; write to ``outputs`` unless it is None (dry run).

    Each file's layout is detected from its content unless ``forced_format`` names one.
    Returns the stats and the first ``sample_size`` pairs. An incremental run passes its
    ``plan`` (which files, and which part of each, to read) and the dedup index of the
    earlier runs (``seen``: the keys of every pair written before). ``engine`` prepares
    the batches (default: ``LocalEngine``).
    """
    engine = LocalEngine() if engine is None else engine
    job = _Job(files, rules, outputs, forced_format, batch_bytes, on_batch, sample_size, plan)
    if seen is not None or engine.deduplicates_run:
        return job.run(engine, seen)
    # the run's own index: on disk past a million keys, in the scratch folder (or a
    # temporary one for a dry run), so that memory does not grow with the pairs kept
    with contextlib.ExitStack() as stack:
        folder = (
            outputs.scratch_folder("keys")
            if outputs is not None
            else Path(stack.enter_context(TemporaryDirectory()))
        )
        index = KeyIndex(folder)
        stack.callback(index.close)
        return job.run(engine, index)


@dataclass
class _Job:
    """One run's inputs and options (``run``'s arguments)."""

    files: Sequence[SessionPath]
    rules: PairRules
    outputs: Outputs | None
    forced_format: str | None
    batch_bytes: int
    on_batch: Callable[[int, int], None] | None
    sample_size: int
    plan: Plan | None

    def run(self, engine: Engine, seen: SeenKeys | KeyIndex | None) -> tuple[RunStats, list[dict[str, Any]]]:
        stats = RunStats(
            files_scanned=len(self.files), rules=asdict(self.rules) | {"format": self.forced_format}
        )
        # Hyperscan compiles the rules' test in ~50 ms, without the GIL: meanwhile, files are
        # listed and read (a short incremental run is mostly such fixed costs)
        threading.Thread(
            target=compile_test, args=(rules_for(self.rules.scrub),), name="compound-compile", daemon=True
        ).start()
        keep_messages = self.outputs is not None and self.outputs.emit_messages
        finishing = Finishing(
            seen, None if self.outputs is None else self.outputs.write_options, self.sample_size
        )
        prepared = engine.prepare_all(
            self._detected(stats),
            self.rules,
            keep_messages=keep_messages,
            batch_bytes=self.batch_bytes,
            finishing=finishing,
        )
        with contextlib.closing(prepared):
            samples = finish_batches(
                prepared, stats, self.outputs, seen, sample_size=self.sample_size, on_batch=self.on_batch
            )
        return stats, samples

    def _detected(self, stats: RunStats) -> Iterator[Detected]:
        """Each file's layout (or the part an incremental run reads of it), in input order;
        files that cannot be read are counted, listed or quarantined as they are found."""
        for path in self.files:
            planned: Detected | None
            if self.plan is None:
                planned = detect(path, self.forced_format)
            else:
                assert isinstance(path, Path)  # an incremental run reads local paths only (the CLI says so)
                planned = self.plan.plan(path)
            if planned is None:  # unchanged since the last incremental run
                continue
            found = planned
            stats.add_file(found)
            if found.damaged is not None and self.outputs is not None:
                self.outputs.write_quarantine(_damaged_rows(found))
            if found.reader is None and self.on_batch is not None:
                self.on_batch(1, size_on_disk(path))
            yield found


class _FinishedHere(NamedTuple):
    """A batch finished by the run itself, its frames still to be written."""

    figures: BatchFigures
    samples: list[dict[str, Any]]
    prepared: Prepared
    marked: pl.DataFrame
    kept: pl.DataFrame


def _finish_here(item: PreparedBatch, seen: SeenKeys | KeyIndex | None, samples_wanted: int) -> _FinishedHere:
    """Mark a prepared batch's duplicates (with ``seen``, the earlier runs' too, and add
    its pairs' keys to it) and take its figures and first ``samples_wanted`` pairs."""
    batch, seen_before = item
    if seen is not None:
        in_index = seen.contains(batch.candidates["dedup_key"])
        seen_before = in_index if seen_before is None else seen_before | in_index
    marked, kept = mark_batch(batch, seen_before)
    if seen is not None:
        seen.add(kept["dedup_key"])
    samples = kept.head(samples_wanted).to_dicts() if samples_wanted > 0 else []
    return _FinishedHere(batch_figures(batch, marked, kept), samples, batch, marked, kept)


def _submit_writes(
    done: FinishedBatch | _FinishedHere,
    outputs: Outputs,
    writer: ThreadPoolExecutor,
    ledger_writer: ThreadPoolExecutor,
) -> list[Future[None]]:
    """Hand a batch to the writers: its encoded outputs to be appended, or its frames."""
    if isinstance(done, FinishedBatch):
        return [] if done.encoded is None else [writer.submit(outputs.write_encoded, done.encoded)]
    return [
        writer.submit(_write_tables, outputs, done.kept, done.prepared),
        ledger_writer.submit(_write_lines_and_ledger, outputs, done.kept, done.marked),
    ]


def finish_batches(
    prepared: Iterable[PreparedBatch | FinishedBatch],
    stats: RunStats,
    outputs: Outputs | None,
    seen: SeenKeys | KeyIndex | None,
    *,
    sample_size: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """The run's sequential step, batch after batch in input order: mark the duplicates
    (a pair kept earlier in the run, or, with ``seen``, by an earlier run), add up the
    figures, and hand the batch to the writers. Returns the first ``sample_size`` pairs.
    A batch the engine finished itself (``FinishedBatch``, ``seen`` already looked up
    and added to) has its figures added and its outputs appended.

    The stages overlap on their own threads: while this one is deduplicated, the engine
    prepares the next batches, and the previous one is written by two writers, one for
    pairs.parquet and one for pairs.jsonl and the ledger (a single writer was the
    slowest stage: with zstd, 4.37 -> 4.17 s on the 1 GB bench archive). polars and
    pyarrow release the GIL, so the stages use every core; each writer takes the
    batches in order (WRITES_AHEAD of them may wait).
    """
    samples: list[dict[str, Any]] = []
    with (
        ThreadPoolExecutor(1, "compound-write") as writer,
        ThreadPoolExecutor(1, "compound-write-ledger") as ledger_writer,
    ):
        writing: deque[list[Future[None]]] = deque()  # per batch, oldest first
        for item in prepared:
            done = (
                item
                if isinstance(item, FinishedBatch)
                else _finish_here(item, seen, sample_size - len(samples))
            )
            stats.add(done.figures)
            samples.extend(done.samples[: max(0, sample_size - len(samples))])
            while len(writing) >= WRITES_AHEAD:
                for pending in writing.popleft():
                    pending.result()
            if outputs is not None:
                writing.append(_submit_writes(done, outputs, writer, ledger_writer))
            if on_batch is not None:
                on_batch(done.figures.files_ended, done.figures.bytes_read)
        for batch_writes in writing:
            for pending in batch_writes:
                pending.result()
    return samples


#: A file modified this close before the last run began may have changed again within
#: the filesystem's mtime granularity after that run looked at it: it is read again.
RACY_MARGIN_NS = 2_000_000_000


def _remove(parts: list[Path]) -> None:
    """The parts of a run interrupted before its commit (Ctrl-C): the dataset's readers
    glob its folders. A run killed outright leaves them to the next run to remove."""
    for path in parts:
        with contextlib.suppress(OSError):
            path.unlink()


def run_incremental(
    files: Sequence[SessionPath],
    rules: PairRules,
    outputs: Outputs,
    dataset: Dataset,
    dataset_rules: dict[str, Any],
    *,
    forced_format: str | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    check: Callable[[RunStats], None] | None = None,
    engine: Engine | None = None,
) -> tuple[RunStats, dict[str, Any]]:
    """An incremental run: read what changed since ``dataset``'s state, add this run's
    outputs to the dataset as parts, and commit them with the new state.

    The commit is ordered so that a run killed at any moment leaves the committed state
    whole: the parts, the manifest and the index's new segments are written under new
    names, then ``state.json`` is replaced in one rename (the commit point); what it no
    longer names is removed after it, or by the next run. ``check`` may reject the
    first run's figures (nothing read), before anything is committed. ``engine``
    prepares the batches, as in ``run``; the state is the same whichever does.
    """
    state = dataset.state
    state.keys_folder.mkdir(parents=True, exist_ok=True)
    try:
        previous = state.previous_files()
        index = KeyIndex(state.keys_folder, state.segments)
    except (OSError, ValueError, pl.exceptions.PolarsError) as error:
        first_line = str(error).strip().split("\n", 1)[0]
        raise StateError(
            f"the dataset's state in {state.folder} cannot be read ({first_line}); "
            "--rebuild starts the dataset over"
        ) from None
    plan = Plan(previous, forced_format, racy_after_ns=state.started_ns - RACY_MARGIN_NS)
    try:
        stats, _ = run(
            files,
            rules,
            outputs,
            forced_format=forced_format,
            on_batch=on_batch,
            plan=plan,
            seen=index,
            engine=engine,
        )
        first = not state.parts
        if first and check is not None:
            check(stats)
        number = state.run + 1
        figures = {"run": number, **plan.figures()}
        figures_json = stats.as_dict() | {"incremental": figures}
        added = outputs.commit_parts(figures_json, part_name(number), first=first)
        written = [outputs.out_dir / folder / name for folder, names in added.items() for name in names]
        try:
            manifest = f"manifest-{number:06d}.parquet"
            plan.manifest().write_parquet(state.folder / manifest)
            make_durable([*written, state.folder / manifest])
            state.segments = index.flush()
            state.parts = {name: state.parts.get(name, []) + added.get(name, []) for name in DATASETS}
            state.manifest, state.run, state.started_ns = manifest, number, plan.started_ns
            state.save(dataset_rules)
        except BaseException:
            if state.committed_run() != number:
                _remove(written)  # not committed: the dataset's readers must not find them
            raise
    finally:
        index.close()
    outputs.commit_stats(figures_json)
    outputs.remove_single_outputs()
    state.remove_unreferenced()
    return stats, figures
