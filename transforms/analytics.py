"""Distributions of the candidate ledger: what ``compound stats`` prints and the notebook plots.

Everything here reads the ledger (``candidates.parquet``) only, never the sessions.
"""

from __future__ import annotations

import polars as pl

from transforms.pairs import FILTER_ORDER, THRESHOLD_FILTERS

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
METRICS = ("ratio", "prompt_words", "response_words")
DEFAULT_SWEEP_RATIOS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
DEFAULT_SWEEP_WORDS = (0, 5, 10, 20, 50, 100, 200)
#: Filters a threshold sweep re-decides: the two thresholds, and dedup (which depends on
#: what else survives).
_RE_DECIDED = (*THRESHOLD_FILTERS, "duplicate_in_session", "duplicate")


def quantiles(candidates: pl.LazyFrame, qs: tuple[float, ...] = QUANTILES) -> pl.DataFrame:
    """One row per (``population``, ``metric``): kept pairs and all candidates, with the
    count, mean and the given quantiles (nearest-rank on the sorted values)."""
    rows = []
    for population, frame in (("kept", candidates.filter(pl.col("kept"))), ("all", candidates)):
        for metric in METRICS:
            value = pl.col(metric).cast(pl.Float64)
            rows.append(
                frame.select(
                    pl.lit(population).alias("population"),
                    pl.lit(metric).alias("metric"),
                    value.count().alias("count"),
                    value.mean().alias("mean"),
                    *(value.quantile(q, "nearest").alias(f"p{round(q * 100):02d}") for q in qs),
                )
            )
    return pl.concat(pl.collect_all(rows))


def reasons(candidates: pl.LazyFrame) -> pl.DataFrame:
    """Candidates per outcome (``kept`` or the reject reason), in filter order, with shares,
    and how many of them held secrets (``with_secrets``) and how many were redacted."""
    outcome = pl.col("reject_reason").fill_null("kept")
    order = pl.DataFrame({"outcome": ["kept", *FILTER_ORDER], "order": range(len(FILTER_ORDER) + 1)})
    redacted = pl.col("redactions") if "redactions" in candidates.collect_schema().names() else pl.lit(0)
    counts = (
        candidates.group_by(outcome.alias("outcome"))
        .agg(
            pl.len().alias("candidates"),
            (redacted > 0).sum().alias("with_secrets"),
            redacted.sum().alias("redactions"),
        )
        .collect()
    )
    return (
        order.join(counts, on="outcome", how="left")
        .with_columns(pl.col("candidates", "with_secrets", "redactions").fill_null(0).cast(pl.Int64))
        .with_columns((pl.col("candidates") / pl.col("candidates").sum()).alias("share"))
        .select("outcome", "candidates", "share", "with_secrets", "redactions")
    )


def threshold_sweep(
    candidates: pl.LazyFrame,
    min_ratios: tuple[float, ...] = DEFAULT_SWEEP_RATIOS,
    min_words: tuple[int, ...] = DEFAULT_SWEEP_WORDS,
) -> pl.DataFrame:
    """How many unique pairs a run with each (``min_ratio``, ``min_words``) would keep.

    A candidate survives when it fails no filter but the thresholds and dedup, has
    ``response_words >= min_words`` and a ratio of at least ``min_ratio`` (the reference's
    test, on the unrounded ratio). Survivors with equal ``dedup_key`` are one pair, so the
    count is what a rerun at those thresholds would write.
    """
    fixed_filters_pass = pl.col("failed").list.set_difference(list(_RE_DECIDED)).list.len() == 0
    base = candidates.filter(
        fixed_filters_pass & (pl.col("prompt_words") > 0) & (pl.col("response_words") > 0)
    )
    ratio = pl.col("response_words").cast(pl.Float64) / pl.col("prompt_words").cast(pl.Float64)
    points = [
        base.filter((ratio >= r) & (pl.col("response_words") >= w)).select(
            pl.lit(r, pl.Float64).alias("min_ratio"),
            pl.lit(w, pl.Int64).alias("min_words"),
            pl.col("dedup_key").n_unique().cast(pl.Int64).alias("pairs"),
        )
        for r in min_ratios
        for w in min_words
    ]
    return pl.concat(pl.collect_all(points))
