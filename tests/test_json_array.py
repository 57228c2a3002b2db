"""Finding a JSON array's elements in its bytes: the elements ``json`` finds, whatever the
buffer size, the text inside strings and the layout."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.json_array import NotAnArrayError, elements, scan

#: text that looks like structure: quotes, brackets, commas, runs of backslashes
TRICKY = st.text(
    alphabet=st.sampled_from(['"', "\\", "[", "]", "{", "}", ",", "a", " ", "é", "\n"]), max_size=12
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=20,
)


def _split(text: bytes, buffer_bytes: int) -> list[Any]:
    found: list[Any] = []
    for part in elements(io.BytesIO(text), buffer_bytes):
        assert part.damaged is None
        assert part.first == len(found)
        found += [json.loads(part.data[start:end]) for start, end in zip(part.starts, part.ends, strict=True)]
    return found


@settings(max_examples=300, deadline=None)
@given(
    array=st.lists(VALUES, max_size=12),
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
    buffer_bytes=st.sampled_from([1, 7, 64, 1 << 20]),
)
def test_the_elements_are_what_json_finds(
    array: list[Any], indent: int | None, ascii_only: bool, buffer_bytes: int
) -> None:
    text = json.dumps(array, indent=indent, ensure_ascii=ascii_only).encode()
    assert _split(b"  \n" + text + b"\n", buffer_bytes) == array


@pytest.mark.parametrize("text", [b"{}", b'"[1]"', b"x[1]", b""])
def test_what_is_no_array_is_told(text: bytes) -> None:
    with pytest.raises(NotAnArrayError):
        scan(text, depth=0)


def test_what_goes_wrong_is_said_and_the_elements_before_it_kept() -> None:
    (cut,) = elements(io.BytesIO(b'[1, {"a": "]"}, [2'), 1 << 20)
    assert [json.loads(cut.data[s:e]) for s, e in zip(cut.starts, cut.ends, strict=True)] == [1, {"a": "]"}]
    assert cut.damaged == "the array ends before its closing ]"
    (more,) = elements(io.BytesIO(b"[1, 2] [3]"), 1 << 20)
    assert more.damaged == "more after the array's closing ]"
    (empty,) = elements(io.BytesIO(b"[ \n ]"), 1 << 20)
    assert (len(empty.starts), empty.damaged) == (0, None)
