"""A file's bytes into one row per line, the lines left as views into those bytes."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from jobs.discover import line_breaks
from jobs.lines import JOIN_BYTES, LONG_LINE_BYTES, Content, count_line_ends, raw_lines
from transforms.text import PY_WHITESPACE

#: Lines around the 12 bytes a view holds in itself, blank ones, and padded ones.
LINE_PARTS = st.sampled_from(
    ["{", "}", "a", "é", "🚀", '"x": 1', " ", "\t", "\u3000", "\x85", "0123456789ab"]
)
LINES = st.lists(st.lists(LINE_PARTS, max_size=8).map("".join), max_size=20)


def expected_lines(text: str) -> list[str]:
    """Python's own split: a final newline ends the last line, it does not start one."""
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") or not text else lines


@given(st.lists(st.tuples(LINES, st.booleans()), max_size=5))
def test_lines_are_the_contents_lines_in_order(files: list[tuple[list[str], bool]]) -> None:
    texts = ["\n".join(lines) + ("\n" if final_newline else "") for lines, final_newline in files]
    contents = [
        Content(index, f"f{index}", 10 * index + 1, text.encode()) for index, text in enumerate(texts)
    ]
    got = raw_lines(contents)
    want = [
        (index, 10 * index + 1 + number, line)
        for index, text in enumerate(texts)
        for number, line in enumerate(expected_lines(text))
    ]
    assert list(zip(got["file_index"], got["line"], got["raw"].cast(pl.String), strict=True)) == want
    # every line a strip would change is flagged for one
    for line, padded in zip(got["raw"].cast(pl.String), got["padded"], strict=True):
        assert padded or line.strip(PY_WHITESPACE) == line


def test_long_and_short_lines_keep_their_bytes() -> None:
    lines = ["", "x" * 11, "y" * 12, "z" * 13, "é" * 7, "{" + "w" * 5000 + "}"]
    got = raw_lines([Content(0, "f", 1, ("\n".join(lines)).encode())])
    assert got["raw"].cast(pl.String).to_list() == lines
    assert got["line"].to_list() == list(range(1, len(lines) + 1))


@given(
    st.lists(st.sampled_from([0, 1, 30, LONG_LINE_BYTES - 1, 3 * LONG_LINE_BYTES]), max_size=30),
    st.booleans(),
)
def test_long_lines_then_short_ones_are_all_found(lengths: list[int], final_newline: bool) -> None:
    """Line ends are searched for one by one while lines are long, then by numpy: where
    the search switches over, no line is lost or doubled."""
    lines = ["x" * length for length in lengths]
    text = "\n".join(lines) + ("\n" if final_newline else "")
    got = raw_lines([Content(0, "f", 1, text.encode())])
    assert got["raw"].cast(pl.String).to_list() == expected_lines(text)
    assert got["line"].to_list() == list(range(1, len(expected_lines(text)) + 1))


@given(
    st.lists(st.sampled_from([0, 1, 30, LONG_LINE_BYTES - 1, 3 * LONG_LINE_BYTES]), max_size=30),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
)
def test_a_piece_counts_the_lines_it_ends_as_text_mode_reads_them(
    lengths: list[int], newline: str, final_newline: bool
) -> None:
    """The next piece of a file cut in several is numbered from this count, and numpy
    counts the ``\\n`` the line-by-line search leaves."""
    data = (newline.join("x" * length for length in lengths) + (newline if final_newline else "")).encode()
    assert count_line_ends(data) == data.count(b"\n")
    assert line_breaks(data) == data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n")


def test_small_contents_joined_around_a_large_one_keep_their_own_lines() -> None:
    """Small contents are split into lines together (``JOIN_BYTES``), a larger one alone:
    each content keeps its own lines and numbers, whether or not it ends with a newline,
    and an empty one has none."""
    texts = [
        "a\nb\n",
        "{" + "x" * JOIN_BYTES + "}\nlast",
        "c",
        "",
        "\n\nd\n",
        "e\nf",
        "g\n",
    ]
    got = raw_lines(
        [Content(index, f"f{index}", 100 * index + 1, text.encode()) for index, text in enumerate(texts)]
    )
    want = [
        (index, 100 * index + 1 + number, line)
        for index, text in enumerate(texts)
        for number, line in enumerate(expected_lines(text))
    ]
    assert list(zip(got["file_index"], got["line"], got["raw"].cast(pl.String), strict=True)) == want
