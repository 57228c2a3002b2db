"""Python's whitespace, strip() and round() as polars expressions."""

from __future__ import annotations

import sys

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from transforms.pairs import own_copy
from transforms.text import PY_WHITESPACE, py_round_ratio_2, py_strip
from transforms.words import word_count


def test_py_whitespace_is_every_space_character() -> None:
    assert "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()) == PY_WHITESPACE


#: Whitespace, and non-whitespace characters whose UTF-8 bytes start like whitespace's
#: (U+200B and U+2010 share E2 80 with U+2000..U+200A, U+3001 shares E3 80 with U+3000).
NEAR_SPACES = ["\u200b", "\u2010", "\u202e", "\u2060", "\u3001", "\u00a1", "\u0084", "\u1681", "\u205e"]
#: Control characters that are not whitespace, beside those that are.
CONTROLS = ["\x00", "\x08", "\x0e", "\x1b", "\x7f"]
TEXTS = st.lists(
    st.sampled_from([*PY_WHITESPACE, *NEAR_SPACES, *CONTROLS, "a", "é", "🚀", "```"]), max_size=40
).map("".join)


@given(st.lists(st.one_of(TEXTS, st.none()), max_size=20), st.integers(0, 5))
def test_word_count_is_len_of_split(texts: list[str | None], skip: int) -> None:
    series = pl.Series(texts, dtype=pl.String)
    counts = pl.select(word_count(pl.lit(series))).to_series().to_list()
    assert counts == [len(text.split()) if text is not None else 0 for text in texts]
    # a slice of a column (an offset into its buffers) counts the same
    sliced = pl.select(word_count(pl.lit(series.slice(skip)))).to_series().to_list()
    assert sliced == counts[skip:]


@given(st.lists(st.one_of(TEXTS, st.none()), max_size=300))
def test_word_count_of_a_long_column(texts: list[str | None]) -> None:
    """Many texts in one buffer: no word runs across from one text into the next."""
    counts = pl.select(word_count(pl.lit(pl.Series(texts, dtype=pl.String)))).to_series().to_list()
    assert counts == [len(text.split()) if text is not None else 0 for text in texts]


def test_word_count_of_each_whitespace_character_between_words() -> None:
    texts = [f"a{space}b{space}" for space in PY_WHITESPACE] + [
        f"{space}é" for space in NEAR_SPACES + CONTROLS
    ]
    counts = pl.select(word_count(pl.lit(pl.Series(texts)))).to_series().to_list()
    assert counts == [len(text.split()) for text in texts]
    assert pl.select(word_count(pl.lit(pl.Series([], dtype=pl.String)))).height == 0
    assert pl.select(word_count(pl.lit(pl.Series([None, ""], dtype=pl.String)))).to_series().to_list() == [
        0,
        0,
    ]


@given(st.lists(TEXTS, max_size=20))
def test_py_strip_is_strip(texts: list[str]) -> None:
    stripped = pl.select(py_strip(pl.lit(pl.Series(texts, dtype=pl.String)))).to_series().to_list()
    assert stripped == [text.strip() for text in texts]


@given(st.lists(st.one_of(TEXTS, st.none()), max_size=5), st.integers(0, 60))
def test_py_strip_of_a_column_with_few_padded_texts(padded: list[str | None], words: int) -> None:
    """Only the padded texts are stripped and put back; the others, and the column
    the expression reads, stay as they were."""
    texts = [f"word{n}" for n in range(words)] + padded
    column = pl.Series(texts, dtype=pl.String)
    stripped = pl.DataFrame({"text": column}).with_columns(py_strip(pl.col("text")).alias("stripped"))
    assert stripped["stripped"].to_list() == [None if text is None else text.strip() for text in texts]
    assert stripped["text"].to_list() == column.to_list() == texts


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


def test_a_head_holds_its_own_bytes_not_the_whole_text() -> None:
    """A slice is a view into the text's buffer; the ledger's heads must not keep every
    message of a batch in memory (``own_copy``)."""
    texts = pl.Series("text", [f"{i:04d}" + "x" * 5000 for i in range(200)])  # 1 MB
    heads = texts.to_frame().select(own_copy(pl.col("text").str.slice(0, 20))).to_series()
    assert heads.to_list() == [text[:20] for text in texts.to_list()]
    exported = heads.to_arrow(compat_level=pl.CompatLevel.newest())
    held = sum(buffer.size for buffer in exported.buffers()[2:] if buffer is not None)
    assert held < 20 * len(texts) * 2  # the heads' 4 KB, not the texts' 1 MB
