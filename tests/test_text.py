"""Python's whitespace, strip() and round() as polars expressions."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from transforms.text import PY_WHITESPACE, py_round_ratio_2, py_strip, word_count

#: Whitespace, and non-whitespace characters whose UTF-8 bytes start like whitespace's
#: (U+200B and U+2010 share E2 80 with U+2000..U+200A, U+3001 shares E3 80 with U+3000).
NEAR_SPACES = ["\u200b", "\u2010", "\u202e", "\u2060", "\u3001", "\u00a1", "\u0084", "\u1681", "\u205e"]
TEXTS = st.lists(st.sampled_from([*PY_WHITESPACE, *NEAR_SPACES, "a", "é", "🚀", "```"]), max_size=40).map(
    "".join
)


@given(st.lists(st.one_of(TEXTS, st.none()), max_size=20), st.integers(0, 5))
def test_word_count_is_len_of_split(texts: list[str | None], skip: int) -> None:
    series = pl.Series(texts, dtype=pl.String)
    counts = pl.select(word_count(pl.lit(series))).to_series().to_list()
    assert counts == [len(text.split()) if text is not None else 0 for text in texts]
    # a slice of a column (an offset into its buffers) counts the same
    sliced = pl.select(word_count(pl.lit(series.slice(skip)))).to_series().to_list()
    assert sliced == counts[skip:]


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
