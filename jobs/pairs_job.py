"""The pairs job: session files in, training pairs and their stats out, batch by batch.

Memory is bounded by the batch: only the dedup keys of kept pairs (8 bytes each) and a
few running sums cross from one batch to the next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import polars_hash as plh

from jobs.discover import batches
from jobs.outputs import Outputs
from jobs.sharegpt_reader import read_batch
from transforms.pairs import DEDUP_PREFIX_CHARS, FILTER_ORDER, candidates, mark_duplicates, pair_metrics

DEFAULT_BATCH_BYTES = 24 * 1024 * 1024


@dataclass(frozen=True)
class PairRules:
    min_ratio: float = 1.5
    min_words: int = 20


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
            "rejected": dict(self.rejected),
        }


def pair_id() -> pl.Expr:
    """A stable id: the reference's content hash (sha256 of the prompt and the response's
    head, first 16 hex digits), the same in every polars version."""
    content = plh.concat_str(pl.col("terse"), pl.col("rich").str.slice(0, DEDUP_PREFIX_CHARS))
    return content.chash.sha2_256().str.head(16).alias("pair_id")


def _sequential_sum(start: float, values: pl.Series) -> float:
    """``start + v0 + v1 + ...`` left to right (polars' ``sum`` adds pairwise)."""
    if values.is_empty():
        return start
    return float(pl.concat([pl.Series([start], dtype=pl.Float64), values]).cum_sum()[-1])


def run(
    files: list[Path],
    rules: PairRules,
    outputs: Outputs | None,
    *,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    on_batch: Callable[[int, int], None] | None = None,
    sample_size: int = 0,
) -> tuple[RunStats, list[dict[str, Any]]]:
    """Run the job over ``files``; write to ``outputs`` unless it is None (dry run).

    Returns the stats and the first ``sample_size`` pairs.
    """
    stats = RunStats(files_scanned=len(files))
    seen_keys = pl.Series("dedup_key", [], dtype=pl.UInt64)
    samples: list[dict[str, Any]] = []
    for batch in batches(files, batch_bytes):
        read = read_batch(batch)
        marked = mark_duplicates(
            candidates(read.messages.lazy(), min_ratio=rules.min_ratio, min_words=rules.min_words),
            seen_keys,
        ).collect()
        kept = (
            marked.filter(pl.col("reject_reason").is_null())
            .with_columns(*pair_metrics())
            .with_columns(pair_id())
            .rename({"session_id": "source"})
        )
        seen_keys = pl.concat([seen_keys, kept["dedup_key"]])

        reasons = marked["reject_reason"].value_counts()
        for reason, count in reasons.iter_rows():
            if reason is not None:
                stats.rejected[reason] += count
        stats.sessions += read.sessions
        stats.messages += read.messages.height
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
            outputs.write_quarantine(read.quarantine)
        if on_batch is not None:
            on_batch(sum(piece.ends_file for piece in batch), sum(len(piece.data) for piece in batch))
    return stats, samples
