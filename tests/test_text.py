"""Python's whitespace, strip() and round() as polars expressions."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from transforms.text import PY_WHITESPACE, py_round_ratio_2, py_strip, word_count

TEXTS = st.lists(st.sampled_from([*PY_WHITESPACE, "a", "é", "\u200b", "🚀", "```"]), max_size=40).map("".join)


@given(st.lists(TEXTS, max_size=20))
def test_word_count_is_len_of_split(texts: list[str]) -> None:
    counts = pl.select(word_count(pl.lit(pl.Series(texts, dtype=pl.String)))).to_series().to_list()
    assert counts == [len(text.split()) for text in texts]


@given(st.lists(TEXTS, max_size=20))
def test_py_strip_is_strip(texts: list[str]) -> None:
    stripped = pl.select(py_strip(pl.lit(pl.Series(texts, dtype=pl.String)))).to_series().to_list()
    assert stripped == [text.strip() for text in texts]


def test_round_matches_python_on_every_small_ratio() -> None:
    grid = pl.DataFrame({"words": pl.int_range(0, 2001, eager=True)}).join(
        pl.DataFrame({"prompt": pl.int_range(1, 301, eager=True)}), how="cross"
    )
    rounded = grid.select(py_round_ratio_2(pl.col("words"), pl.col("prompt"))).to_series().to_list()
    assert rounded == [round(w / p, 2) for w, p in grid.iter_rows()]


@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 10**6)), min_size=1, max_size=50))
def test_round_matches_python_on_large_counts(pairs: list[tuple[int, int]]) -> None:
    frame = pl.DataFrame(pairs, schema=["words", "prompt"], orient="row")
    rounded = frame.select(py_round_ratio_2(pl.col("words"), pl.col("prompt"))).to_series().to_list()
    assert rounded == [round(w / p, 2) for w, p in pairs]
