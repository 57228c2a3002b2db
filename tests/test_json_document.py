"""Walking one JSON document's members in its bytes: the streamed lists' elements are the
ones ``json`` finds, the outline is the document with those lists empty and its large values
pruned, whatever the buffer size, the text inside strings and the layout; a document cut
anywhere keeps what came before the cut."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.json_array import ListPiece, NotAnObjectError, Outline, WalkRules, document
from tests.test_json_array import TRICKY, VALUES

#: an object whose members hold lists (of any values) and nested objects, among other values
DOCUMENTS = st.dictionaries(
    TRICKY,
    st.one_of(
        VALUES,
        st.lists(VALUES, max_size=8),
        st.dictionaries(TRICKY, st.one_of(VALUES, st.lists(VALUES, max_size=6)), max_size=4),
    ),
    max_size=6,
)
EMPTY: dict[type, Any] = {list: [], dict: {}, str: ""}


def _walk(text: bytes, rules: WalkRules) -> tuple[dict[str, list[Any]], Outline]:
    streamed: dict[str, list[Any]] = {}
    parts = list(document(io.BytesIO(text), rules))
    outline = parts.pop()
    assert isinstance(outline, Outline)
    for part in parts:
        assert isinstance(part, ListPiece)
        assert part.data is not None
        found = streamed.setdefault(part.path, [])
        assert part.first == len(found)
        assert len(part.starts)
        found += [json.loads(part.data[start:end]) for start, end in zip(part.starts, part.ends, strict=True)]
    return streamed, outline


def _lists_in(value: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    """The paths of the lists in ``value`` and one level down (keys without dots)."""
    paths = []
    for key, member in value.items():
        if "." in key:
            continue
        if isinstance(member, list):
            paths.append(".".join((*prefix, key)))
        elif isinstance(member, dict) and not prefix:
            paths += _lists_in(member, (key,))
    return paths


def _at(value: Any, path: str) -> Any:
    """The value at a dotted path."""
    for key in path.split("."):
        value = value[key]
    return value


def _agrees(original: Any, outline: Any, path: str, streamed: frozenset[str]) -> None:
    """``outline`` is ``original`` with the streamed lists empty, a large value pruned to an
    empty one of its kind (a list: to its first elements, outlined, when sampled), a large
    object walked member by member."""
    if path in streamed and isinstance(original, list):
        assert outline == []
    elif isinstance(original, dict) and isinstance(outline, dict):
        assert list(outline) == list(original)
        for key in original:
            _agrees(original[key], outline[key], f"{path}.{key}" if path else key, streamed)
    elif isinstance(original, list) and isinstance(outline, list):
        assert len(outline) <= len(original)
        for element, outlined in zip(original, outline, strict=False):
            _agrees(element, outlined, f"{path}[]", streamed)
    elif outline != original:
        assert outline == EMPTY[type(original)], (path, original, outline)


@settings(max_examples=100, deadline=None)
@given(
    value=DOCUMENTS,
    data=st.data(),
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
    buffer_bytes=st.sampled_from([1, 7, 64, 1 << 20]),
    piece_bytes=st.sampled_from([1, 50, 1 << 20]),
    value_bytes=st.sampled_from([0, 20, 1 << 20]),
)
def test_the_lists_and_the_outline_are_what_json_finds(
    *,
    value: dict[str, Any],
    data: st.DataObject,
    indent: int | None,
    ascii_only: bool,
    buffer_bytes: int,
    piece_bytes: int,
    value_bytes: int,
) -> None:
    paths = _lists_in(value)
    lists = frozenset(data.draw(st.lists(st.sampled_from(paths), unique=True)) if paths else [])
    text = b" \n" + json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode() + b"\n"
    rules = WalkRules(lists, piece_bytes, buffer_bytes, value_bytes)
    streamed, outline = _walk(text, rules)
    assert (outline.damaged, outline.end, outline.more) == (None, len(text) - 1, False)
    assert outline.one_line == (b"\n" not in text.strip())
    for path in lists:
        assert streamed.get(path, []) == _at(value, path)
    assert set(streamed) <= lists
    _agrees(value, json.loads(outline.text), "", lists)
    if value_bytes == 1 << 20:  # nothing pruned
        expected = json.loads(json.dumps(value))
        for path in lists:
            parent, _, last = path.rpartition(".")
            (_at(expected, parent) if "." in path else expected)[last] = []
        assert json.loads(outline.text) == expected


@settings(max_examples=100, deadline=None)
@given(value=DOCUMENTS, data=st.data(), buffer_bytes=st.sampled_from([1, 7, 1 << 20]))
def test_a_document_cut_anywhere_keeps_what_came_before(
    value: dict[str, Any], data: st.DataObject, buffer_bytes: int
) -> None:
    paths = _lists_in(value)
    lists = frozenset(paths)
    text = json.dumps(value, indent=1).encode()
    cut = data.draw(st.integers(0, len(text) - 1))
    rules = WalkRules(lists, 20, buffer_bytes, 20)
    try:
        streamed, outline = _walk(text[:cut], rules)
    except NotAnObjectError:
        assert not text[:cut].strip()
        return
    assert outline.damaged is not None
    json.loads(outline.text)  # what was read of it, closed
    for path, found in streamed.items():
        assert found == _at(value, path)[: len(found)]


@settings(max_examples=80, deadline=None)
@given(
    value=DOCUMENTS,
    sample=st.integers(1, 3),
    buffer_bytes=st.sampled_from([5, 64, 1 << 20]),
    value_bytes=st.sampled_from([0, 20]),
)
def test_a_large_list_is_sampled_by_its_first_elements_outlined(
    value: dict[str, Any], sample: int, buffer_bytes: int, value_bytes: int
) -> None:
    text = json.dumps(value).encode()
    rules = WalkRules(buffer_bytes=buffer_bytes, value_bytes=value_bytes, sample=sample, sample_bytes=0)
    _, outline = _walk(text, rules)
    found = json.loads(outline.text)
    assert list(found) == list(value)
    for key, member in value.items():
        if isinstance(member, list) and found[key] != member:
            assert min(1, len(member)) <= len(found[key]) <= sample
            for original, outlined in zip(member, found[key], strict=False):
                _agrees(original, outlined, "", frozenset())


@pytest.mark.parametrize(
    ("text", "damaged"),
    [
        (b'{"a": 1} {"b": 2}', "more after the document's closing }"),
        (b'{"a": 1, "h": [1, 2', "h[1]: the document ends before the list's closing ]"),
        (b'{"a" 1}', "not valid JSON at byte 4: a : expected after the key"),
        (b'{"a": 1 "b": 2}', "not valid JSON at byte 8: a , or } expected"),
        (b'{"a": [1, 2}', "not valid JSON at byte 11: a ] expected"),
        (b"{1: 2}", "not valid JSON at byte 1: a key expected"),
        (b'{"a": 1', "the document ends before its closing }"),
    ],
)
def test_what_goes_wrong_is_said(text: bytes, damaged: str) -> None:
    streamed, outline = _walk(text, WalkRules(frozenset({"h"})))
    assert outline.damaged == damaged
    if b'"h"' in text:
        assert streamed == {"h": [1]}
        assert json.loads(outline.text) == {"a": 1, "h": []}


@pytest.mark.parametrize("text", [b"[1]", b'"{}"', b"x{}", b"", b"  "])
def test_what_is_no_object_is_told(text: bytes) -> None:
    with pytest.raises(NotAnObjectError):
        list(document(io.BytesIO(text), WalkRules()))


def test_an_empty_list_streams_nothing_and_stays_in_the_outline() -> None:
    streamed, outline = _walk(b'{"h": [ \n ], "k": "v"}', WalkRules(frozenset({"h"})))
    assert streamed == {}
    assert json.loads(outline.text) == {"h": [], "k": "v"}


@settings(max_examples=60, deadline=None)
@given(
    value=DOCUMENTS,
    data=st.data(),
    buffer_bytes=st.sampled_from([5, 64, 1 << 20]),
    value_bytes=st.sampled_from([0, 20, 60]),
)
def test_values_an_earlier_walk_passed_over_are_passed_over_by_a_seek_alike(
    value: dict[str, Any], data: st.DataObject, buffer_bytes: int, value_bytes: int
) -> None:
    """Detection samples a document; its read then seeks past the large values detection
    found the ends of, and finds what it finds reading through them."""
    text = json.dumps(value, indent=1).encode()
    _, sniffed = _walk(text, WalkRules(buffer_bytes=buffer_bytes, value_bytes=20, sample=3))
    paths = _lists_in(value)
    lists = frozenset(data.draw(st.lists(st.sampled_from(paths), unique=True)) if paths else [])
    rules = WalkRules(lists, 30, buffer_bytes, max(value_bytes, 20))
    read, outline = _walk(text, rules)
    known = WalkRules(lists, 30, buffer_bytes, max(value_bytes, 20), known=sniffed.passed)
    assert _walk(text, known) == (read, outline)
    for start, end in sniffed.passed:
        assert text[start : start + 1] in (b"[", b'"')
        assert text[end - 1 : end] in (b"]", b'"')
