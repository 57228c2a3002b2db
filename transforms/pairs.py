"""Terse prompt -> rich response pairs from the canonical message table.

The rules are those of the reference harvester. Each filter is a named boolean column;
a candidate (an assistant message) is rejected under the first one it fails, in
``FILTER_ORDER``, so the same definitions both filter and explain.
"""

from __future__ import annotations

from functools import cache

import polars as pl
import polars_hash as plh

from transforms.text import PY_WHITESPACE, py_round_ratio_2, py_strip
from transforms.words import word_count

#: Filter names: ``not_final`` (only under ``responses="final"``), then the reference's
#: filters in its order. The last two need the candidates before them.
CONTENT_FILTERS = (
    "not_final",
    "empty_response",
    "short_response",
    "no_prompt",
    "tool_result_prompt",
    "system_prompt_leak",
    "low_ratio",
    "code_only",
    "tool_call_artifact",
)
FILTER_ORDER = (*CONTENT_FILTERS, "duplicate_in_session", "duplicate")

PROMPT_ROLE = "user"
RESPONSE_ROLE = "assistant"
#: Pairs are deduplicated on the prompt and this many characters of the response; the
#: ledger keeps as many of each text (``prompt_head``, ``response_head``).
HEAD_CHARS = 200
#: Searched for as a regex (no character in it is special to one): polars counts and
#: replaces a literal pattern with a general substring searcher, 9x slower.
CODE_FENCE = "```"


#: ``auto``: ``final`` in an agent's run (``agent_run``), ``each`` in a chat.
RESPONSE_MODES = ("auto", "each", "final")


def session_key() -> pl.Expr:
    """One integer per conversation: its file's position and its place in the file."""
    return (pl.col("file_index").cast(pl.Int64) * (1 << 40) + pl.col("conversation")).alias("session_key")


def is_response() -> pl.Expr:
    """An assistant message that says something: not a turn that only calls tools."""
    says_nothing = pl.col("text").is_null() | (pl.col("text") == "")
    return (pl.col("role") == RESPONSE_ROLE) & ~(pl.col("has_tool_calls") & says_nothing)


def attach_prompts(messages: pl.LazyFrame) -> pl.LazyFrame:
    """Each response with the text of the nearest preceding user message and its words.

    Messages must be in conversation order. The nearest user message is the prompt even
    when its text is empty or null, or when a person did not type it (a command wrapper):
    then the candidate has no prompt. One forward fill over the whole table replaces a
    window per conversation: a fill that crossed into another one is discarded by
    comparing session keys. ``prompt_turn`` identifies the prompt the response answers.
    A prompt's words are counted once, on its own row, not once per response to it.
    """
    is_prompt = pl.col("role") == PROMPT_ROLE
    prompt = pl.when(is_prompt & pl.col("typed")).then(pl.col("text"))
    last_user = (
        pl.when(is_prompt)
        .then(
            pl.struct(
                pl.col("session_key").alias("prompt_session"),
                pl.col("turn").alias("prompt_turn"),
                pl.col("_prompt").alias("prompt"),
                word_count(pl.col("_prompt")).alias("prompt_words"),
            )
        )
        .forward_fill()
    )
    same_session = pl.col("_last_user").struct.field("prompt_session") == pl.col("session_key")
    from_prompt = ("prompt", "prompt_turn", "prompt_words")
    return (
        messages.with_columns(session_key(), prompt.alias("_prompt"))
        .with_columns(last_user.alias("_last_user"))
        .filter(is_response())
        .with_columns(
            pl.when(same_session).then(pl.col("_last_user").struct.field(name)).alias(name)
            for name in from_prompt
        )
        .with_columns(pl.col("prompt_words").fill_null(0))
        .drop("_last_user", "_prompt")
        .rename({"text": "response"})
    )


def not_final(responses: str) -> pl.Expr:
    """Under ``final``: a response followed by another response with text before the next
    prompt (the narration inside a tool loop, not the answer at its end). Under ``auto``,
    the same in an agent's run only."""
    if responses == "each":
        return pl.lit(False)
    has_text = pl.col("response").is_not_null() & (pl.col("response") != "")
    last_with_text = pl.col("turn").filter(has_text).max().over("session_key", "prompt_turn")
    narration = pl.col("turn") != last_with_text
    return narration & pl.col("agent_run") if responses == "auto" else narration


def content_filters(min_ratio: float, min_words: int, responses: str = "auto") -> dict[str, pl.Expr]:
    """The per-candidate filters, each true where a candidate fails it.

    They read ``prompt``, ``response``, their word counts, ``code_fences`` and the heads
    (``prompt_head``, ``response_head``) that ``candidates`` computes once.
    """
    prompt, response = pl.col("prompt"), pl.col("response")
    prompt_words, response_words = pl.col("prompt_words"), pl.col("response_words")
    response_start = pl.col("response_head").str.slice(0, 100)
    # the strip is only worth doing where there are fences to remove: elsewhere it is null
    fenced = pl.when(pl.col("code_fences") >= 4).then(response)
    exprs = {
        "not_final": not_final(responses),
        "empty_response": response.is_null() | (response == ""),
        "short_response": response_words < min_words,
        "no_prompt": prompt.is_null() | (prompt == ""),
        "tool_result_prompt": prompt.str.starts_with("{")
        & pl.col("prompt_head").str.slice(0, 100).str.contains("output"),
        "system_prompt_leak": prompt.str.starts_with("# SOUL.md") | prompt.str.starts_with("You are"),
        # a prompt or response of no words has no ratio; the reference drops it here
        "low_ratio": (prompt_words == 0)
        | (response_words == 0)
        | (response_words.cast(pl.Float64) / prompt_words.cast(pl.Float64) < min_ratio),
        # what is left of fenced code is nearly always padded: stripped whole (py_strip
        # would first look for the texts that need it)
        "code_only": fenced.str.replace_all(CODE_FENCE, "").str.strip_chars(PY_WHITESPACE).str.len_chars()
        < 50,
        # one regex search (see CODE_FENCE): two literal ones cost 4x more
        "tool_call_artifact": response_start.str.contains("tool_call|function_call"),
    }
    return {name: expr.fill_null(False).alias(name) for name, expr in exprs.items()}


def own_copy(text: pl.Expr) -> pl.Expr:
    """The strings copied into buffers of their own.

    A slice of a text is a view into the buffer that holds it, and that buffer holds the
    text of every message decoded with it (tool output included): a 200-character head
    would keep a whole batch's text in memory for as long as the ledger lives. An
    empty suffix makes polars write each string out anew.
    """
    return pl.concat_str(text, pl.lit(""))


def first_reason(names: tuple[str, ...]) -> pl.Expr:
    """The first of the named boolean columns that is true, as its name; null if none."""
    return pl.coalesce([pl.when(pl.col(name)).then(pl.lit(name)) for name in names])


def candidates(
    messages: pl.LazyFrame, *, min_ratio: float, min_words: int, responses: str = "auto"
) -> pl.LazyFrame:
    """Every response with its prompt, metrics and filter columns.

    ``responses`` is ``each`` (every response pairs with the prompt before it, the
    reference's rule), ``final`` (only the last response with text before the next
    prompt does: the answer at the end of a tool loop) or ``auto`` (``final`` in an
    agent's run, ``each`` in a chat: see ``agent_run``).

    ``reject_reason`` holds the first failing filter up to ``duplicate_in_session``;
    the cross-file ``duplicate`` needs the run's earlier keys (``mark_duplicates``).
    """
    if responses not in RESPONSE_MODES:
        raise ValueError(f"responses must be one of {RESPONSE_MODES}, not {responses!r}")
    filters = content_filters(min_ratio, min_words, responses)
    passes_content = ~pl.any_horizontal(list(CONTENT_FILTERS))
    # per session, on the raw texts (the reference's seen_hashes)
    # hashed only where it is used: a null prompt makes the concatenation null
    session_dedup_key = pl.concat_str(
        pl.when(passes_content).then(pl.col("prompt")), pl.col("response_head")
    ).hash()
    return (
        attach_prompts(messages)
        .with_columns(
            word_count(pl.col("response")).alias("response_words"),
            pl.col("response").str.count_matches(CODE_FENCE).fill_null(0).cast(pl.Int64).alias("code_fences"),
            own_copy(pl.col("prompt").str.slice(0, HEAD_CHARS)).alias("prompt_head"),
            own_copy(pl.col("response").str.slice(0, HEAD_CHARS)).alias("response_head"),
            pl.col("prompt").str.len_chars().fill_null(0).cast(pl.Int64).alias("prompt_chars"),
            pl.col("response").str.len_chars().fill_null(0).cast(pl.Int64).alias("response_chars"),
        )
        .with_columns(**filters)
        .with_columns(
            (
                passes_content
                & ~pl.struct(
                    pl.col("session_key"), pl.when(passes_content).then(session_dedup_key)
                ).is_first_distinct()
            ).alias("duplicate_in_session")
        )
        .with_columns(first_reason((*CONTENT_FILTERS, "duplicate_in_session")).alias("reject_reason"))
    )


def dedup_key(terse: pl.Expr, rich: pl.Expr) -> pl.Expr:
    """The cross-file dedup key: the stripped prompt and the stripped response's head.

    A 64-bit xxh3 hash, the same in every polars version: an incremental run's index
    keeps the keys of every earlier run's pairs. Null where the prompt is.
    """
    return plh.concat_str(terse, rich.str.slice(0, HEAD_CHARS)).nchash.xxh3_64()


def with_dedup_keys(candidates: pl.LazyFrame) -> pl.LazyFrame:
    """Adds ``terse`` and ``rich`` (the stripped prompt and response) and ``dedup_key``."""
    return candidates.with_columns(
        py_strip(pl.col("prompt")).alias("terse"),
        py_strip(pl.col("response")).alias("rich"),
    ).with_columns(dedup_key(pl.col("terse"), pl.col("rich")).alias("dedup_key"))


def mark_duplicates(keyed: pl.LazyFrame, seen_before: pl.Expr | None = None) -> pl.LazyFrame:
    """Flag candidates (``with_dedup_keys``) whose pair was already kept earlier in this
    frame, or before it: ``seen_before`` is true where an earlier batch kept the key.

    The first of equal pairs in input order survives, as in the reference.
    """
    passes = pl.col("reject_reason").is_null()
    key = pl.when(passes).then(pl.col("dedup_key"))
    earlier = pl.lit(False) if seen_before is None else seen_before
    return keyed.with_columns(
        (passes & (~key.is_first_distinct() | earlier)).alias("duplicate")
    ).with_columns(
        pl.when(pl.col("duplicate"))
        .then(pl.lit("duplicate"))
        .otherwise(pl.col("reject_reason"))
        .alias("reject_reason")
    )


def pair_metrics() -> list[pl.Expr]:
    """Columns of a kept pair beyond its texts: the ratio rounded as the reference does."""
    return [
        py_round_ratio_2(pl.col("response_words"), pl.col("prompt_words")).alias("ratio"),
    ]


#: The filters whose outcome depends on ``--min-ratio`` / ``--min-words``.
THRESHOLD_FILTERS = ("short_response", "low_ratio")


@cache
def _failed_lists() -> pl.DataFrame:
    """Every combination of failed filters (a bit per filter) and its list of names, in
    the order of the bitmask (row ``m`` is mask ``m``).

    Taking a candidate's list by its bitmask from this table builds ``failed`` 20 times
    faster than assembling a list per row from eleven conditional columns.
    """
    mask = pl.col("failed_mask")
    names = [pl.when((mask & (1 << bit)) > 0).then(pl.lit(name)) for bit, name in enumerate(FILTER_ORDER)]
    return pl.DataFrame(
        {"failed_mask": pl.int_range(1 << len(FILTER_ORDER), dtype=pl.UInt16, eager=True)}
    ).with_columns(pl.concat_list(names).list.drop_nulls().alias("failed"))


def ledger(marked: pl.LazyFrame) -> pl.LazyFrame:
    """Every candidate with its metrics, the first reason it was rejected for and every
    filter it fails (``failed``); ``kept`` rows are the pairs."""
    has_ratio = (pl.col("prompt_words") > 0) & (pl.col("response_words") > 0)
    failed_mask = pl.sum_horizontal(
        [pl.col(name).cast(pl.UInt16) * (1 << bit) for bit, name in enumerate(FILTER_ORDER)]
    ).cast(pl.UInt16)
    # a gather by position, not a join: a join took every column of the batch along
    # (one batch of the 1 GB bench archive: 35 -> 12 ms)
    return marked.with_columns(
        pl.lit(_failed_lists()["failed"]).gather(failed_mask).alias("failed"),
        pl.col("reject_reason").is_null().alias("kept"),
        pl.when(has_ratio)
        .then(py_round_ratio_2(pl.col("response_words"), pl.col("prompt_words")))
        .alias("ratio"),
    )
