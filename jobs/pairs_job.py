"""The pairs job: session files in, training pairs and their stats out, batch by batch.

Memory is bounded by the batch: only the dedup keys of kept pairs (8 bytes each) and a
few running sums cross from one batch to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import polars_hash as plh

from jobs.discover import Detected, batches, detect
from jobs.outputs import Outputs
from jobs.read_batch import read_batch
from transforms.pairs import (
    DEDUP_PREFIX_CHARS,
    FILTER_ORDER,
    candidates,
    ledger,
    mark_duplicates,
    session_key,
)

DEFAULT_BATCH_BYTES = 24 * 1024 * 1024


THINK_BLOCK = r"(?s)<think>.*?</think>"


@dataclass(frozen=True)
class PairRules:
    min_ratio: float = 1.5
    min_words: int = 20
    responses: str = "each"  # or "final"
    strip_think: bool = False  # drop inline <think>...</think> from message text


@dataclass
class FormatStats:
    files: int = 0
    sessions: int = 0
    messages: int = 0
    pairs: int = 0


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
    unrecognized_files: list[dict[str, str]] = field(default_factory=list)
    damaged_files: int = 0
    rules: dict[str, Any] = field(default_factory=dict)  # the options the run was made with

    def add_file(self, found: Detected) -> None:
        if found.reader is not None:
            self.formats.setdefault(found.reader.format, FormatStats()).files += 1
        elif found.unrecognized is not None:
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
            "formats": {name: vars(figures) for name, figures in sorted(self.formats.items())},
            "unrecognized_files": self.unrecognized_files,
            "rules": self.rules,
        }


def pair_id() -> pl.Expr:
    """A stable id of a kept pair: the reference's content hash (sha256 of the prompt and
    the response's head, first 16 hex digits), the same in every polars version."""
    content = plh.concat_str(pl.col("terse"), pl.col("rich").str.slice(0, DEDUP_PREFIX_CHARS))
    return pl.when(pl.col("kept")).then(content.chash.sha2_256().str.head(16)).alias("pair_id")


def _sequential_sum(start: float, values: pl.Series) -> float:
    """``start + v0 + v1 + ...`` left to right (polars' ``sum`` adds pairwise)."""
    if values.is_empty():
        return start
    return float(pl.concat([pl.Series([start], dtype=pl.Float64), values]).cum_sum()[-1])


def _damaged_rows(found: Detected) -> pl.DataFrame:
    return pl.DataFrame(
        {"file": [str(found.path)], "line": [None], "error": [found.damaged], "raw": [""]},
        schema={"file": pl.String, "line": pl.Int64, "error": pl.String, "raw": pl.String},
    )


def run(
    files: list[Path],
    rules: PairRules,
    outputs: Outputs | None,
    *,
    forced_format: str | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    on_batch: Callable[[int, int], None] | None = None,
    sample_size: int = 0,
) -> tuple[RunStats, list[dict[str, Any]]]:
    """Run the job over ``files``; write to ``outputs`` unless it is None (dry run).

    Each file's layout is detected from its content unless ``forced_format`` names one.
    Returns the stats and the first ``sample_size`` pairs.
    """
    stats = RunStats(files_scanned=len(files), rules=asdict(rules) | {"format": forced_format})
    seen_keys = pl.Series("dedup_key", [], dtype=pl.UInt64)
    samples: list[dict[str, Any]] = []

    def detected() -> Iterator[Detected]:
        for path in files:
            found = detect(path, forced_format)
            stats.add_file(found)
            if found.damaged is not None and outputs is not None:
                outputs.write_quarantine(_damaged_rows(found))
            if found.reader is None and on_batch is not None:
                on_batch(1, path.stat().st_size)
            yield found

    for batch in batches(detected(), batch_bytes):
        read = read_batch(batch)
        messages = read.messages.lazy()
        if rules.strip_think:
            messages = messages.with_columns(pl.col("text").str.replace_all(THINK_BLOCK, ""))
        marked = (
            ledger(
                mark_duplicates(
                    candidates(
                        messages,
                        min_ratio=rules.min_ratio,
                        min_words=rules.min_words,
                        responses=rules.responses,
                    ),
                    seen_keys,
                )
            )
            .with_columns(pair_id())
            .collect()
        )
        kept = marked.filter(pl.col("kept")).rename({"session_id": "source"})
        seen_keys = pl.concat([seen_keys, kept["dedup_key"]])

        reasons = marked["reject_reason"].value_counts()
        for reason, count in reasons.iter_rows():
            if reason is not None:
                stats.rejected[reason] += count
        per_format = (
            read.messages.group_by("format")
            .agg(pl.len().alias("messages"), session_key().n_unique().alias("sessions"))
            .join(kept.group_by("format").len("pairs"), on="format", how="left")
        )
        for name, message_count, session_count, pair_count in per_format.iter_rows():
            figures = stats.formats.setdefault(name, FormatStats())
            figures.messages += message_count
            figures.sessions += session_count
            figures.pairs += pair_count or 0
            stats.messages += message_count
            stats.sessions += session_count
        stats.skipped_messages += read.skipped_messages
        stats.malformed_lines += read.quarantine.height
        stats.unique_pairs += kept.height
        stats.prompt_words_total += int(kept["prompt_words"].sum())
        stats.response_words_total += int(kept["response_words"].sum())
        stats.ratio_total = _sequential_sum(stats.ratio_total, kept["ratio"])
        if len(samples) < sample_size:
            samples.extend(kept.head(sample_size - len(samples)).to_dicts())
        if outputs is not None:
            outputs.write_pairs(kept)
            outputs.write_candidates(marked)
            outputs.write_messages(read.messages if not rules.strip_think else messages.collect())
            outputs.write_quarantine(read.quarantine)
        if on_batch is not None:
            on_batch(sum(piece.ends_file for piece in batch), sum(piece.size for piece in batch))
    return stats, samples
