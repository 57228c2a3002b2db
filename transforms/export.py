"""Pairs reshaped into the formats fine-tuning tools load, and split by session.

Pure polars: ``compound export`` (``jobs/export.py``) reads the pairs and writes what these
return. Each format is the one its tools document, with nothing added:

- ``messages``: ``{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}``, a
  ``system`` message first when there is a system prompt (TRL's conversational format,
  OpenAI's fine-tuning files, axolotl's ``chat_template`` datasets);
- ``prompt-completion``: ``{"prompt": ..., "completion": ...}`` (TRL's standard
  prompt-completion type); it has no place for a system prompt;
- ``sharegpt``: ``{"conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}``, a
  ``{"from": "system"}`` turn first when there is a system prompt (the system tag that
  LLaMA-Factory, axolotl and torchtune read without a column mapping);
- ``alpaca``: ``{"instruction": ..., "input": "", "output": ...}``, and ``"system"`` when
  there is a system prompt (LLaMA-Factory's alpaca column).

The split assigns whole sessions (``source``): a pair's side depends only on its session
and the seed, so no session has pairs on both sides, and a session keeps its side as the
dataset grows.
"""

from __future__ import annotations

import polars as pl
import polars_hash as plh

#: ``--to`` values, in the order the help lists them.
EXPORT_FORMATS = ("messages", "prompt-completion", "sharegpt", "alpaca")
#: The formats with a documented place for a system prompt.
FORMATS_WITH_SYSTEM = ("messages", "sharegpt", "alpaca")
#: Each format's top-level fields, in the order they are written.
FORMAT_FIELDS = {
    "messages": ("messages",),
    "prompt-completion": ("prompt", "completion"),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "input", "output"),
}
SPLITS = ("train", "validation")

#: The hash bits kept: 53 bits over 2**53 are a double in [0, 1), exactly.
_FRACTION_BITS = 53


def session_fraction(source: pl.Expr, seed: int) -> pl.Expr:
    """Where a session falls in [0, 1): its id's 64-bit xxh3 hash, seeded with ``seed``,
    its top 53 bits divided by 2**53.

    xxh3 is a published algorithm (polars-hash, as ``dedup_key`` uses it), so a session's
    fraction is the same in every polars version and on every machine; polars' own
    ``hash`` promises neither. A null session id is hashed as the empty one.
    """
    digest = plh.concat_str(source.fill_null("")).nchash.xxh3_64(seed=seed)
    top_bits = digest // (1 << (64 - _FRACTION_BITS))
    return top_bits.cast(pl.Float64) / float(1 << _FRACTION_BITS)


def filter_pairs(
    pairs: pl.LazyFrame, layouts: tuple[str, ...] = (), models: tuple[str, ...] = ()
) -> pl.LazyFrame:
    """The pairs read from one of ``layouts`` (the ``format`` column) and answered by one of
    ``models``; an empty tuple keeps every value (and a null model only then)."""
    if layouts:
        pairs = pairs.filter(pl.col("format").is_in(layouts))
    if models:
        pairs = pairs.filter(pl.col("model").is_in(models))
    return pairs


def assign_sessions(pairs: pl.LazyFrame, seed: int, val_share: float) -> pl.LazyFrame:
    """One row per session: ``source``, ``rows`` (its pairs), ``fraction`` and
    ``validation``, sorted by fraction.

    A session is in validation when its fraction is below ``val_share``. With a share
    above 0 and two sessions or more neither split is left empty, which a loader refuses:
    when no fraction is below the share, the session with the lowest goes to validation;
    when every one is, the session with the highest stays in train. With fewer than two
    sessions, or a share of 0, every session is in train.
    """
    sessions = (
        pairs.group_by("source")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .with_columns(session_fraction(pl.col("source"), seed).alias("fraction"))
        .sort("fraction", "source", nulls_last=True)
    )
    if val_share <= 0:
        return sessions.with_columns(pl.lit(False).alias("validation"))
    below = pl.col("fraction") < val_share
    count, position = pl.len(), pl.int_range(pl.len())
    lowest_if_none = (below.sum() == 0) & (position == 0)
    highest_if_all = (below.sum() == count) & (position == count - 1)
    validation = pl.when(count >= 2).then((below | lowest_if_none) & ~highest_if_all).otherwise(False)
    return sessions.with_columns(validation.alias("validation"))


def split_rows(pairs: pl.LazyFrame, sessions: pl.LazyFrame, split: str) -> pl.LazyFrame:
    """The pairs of ``split`` (``train`` or ``validation``), in their order, by the sessions'
    ``validation`` column (``assign_sessions``)."""
    chosen = sessions.filter(pl.col("validation") == (split == "validation")).select("source")
    return pairs.join(chosen, on="source", how="semi", nulls_equal=True, maintain_order="left")


def _turn(role_key: str, content_key: str, role: str, content: pl.Expr) -> pl.Expr:
    return pl.struct(pl.lit(role, pl.String).alias(role_key), content.alias(content_key))


def to_format(pairs: pl.LazyFrame, name: str, system: str | None = None) -> pl.LazyFrame:
    """The pairs (``terse``, ``rich``) as the rows of format ``name``, with nothing else.

    ``system`` is the system prompt of every row; a format without a place for it
    (``prompt-completion``) raises ValueError.
    """
    if system is not None and name not in FORMATS_WITH_SYSTEM:
        raise ValueError(f"the {name} format has no place for a system prompt")
    prompt, answer = pl.col("terse"), pl.col("rich")
    system_text = pl.lit(system, pl.String)
    if name == "messages":
        turns = [_turn("role", "content", "user", prompt), _turn("role", "content", "assistant", answer)]
        if system is not None:
            turns.insert(0, _turn("role", "content", "system", system_text))
        return pairs.select(pl.concat_list(turns).alias("messages"))
    if name == "sharegpt":
        turns = [_turn("from", "value", "human", prompt), _turn("from", "value", "gpt", answer)]
        if system is not None:
            turns.insert(0, _turn("from", "value", "system", system_text))
        return pairs.select(pl.concat_list(turns).alias("conversations"))
    if name == "prompt-completion":
        return pairs.select(prompt.alias("prompt"), answer.alias("completion"))
    if name == "alpaca":
        columns = [prompt.alias("instruction"), pl.lit("", pl.String).alias("input"), answer.alias("output")]
        if system is not None:
            columns.append(system_text.alias("system"))
        return pairs.select(columns)
    raise ValueError(f"unknown format {name!r}; one of {', '.join(EXPORT_FORMATS)}")
