"""``len(text.split())`` for a whole column at once, over its UTF-8 bytes.

Counting regex matches of a word is exact but slow: on the responses of one batch of
the 1 GB bench archive (17.7 MB), polars' regex engine takes 250 ms of CPU. Here numpy
classifies every byte as whitespace or not and counts the non-whitespace bytes that
follow whitespace: 55 ms (90 ms before the rare cases were tested for before they were
located).

Python's whitespace (``str.isspace``) is ten ASCII bytes, all at or below the space
(``\\t\\n\\v\\f\\r``, U+001C..U+001F and the space itself), and nineteen multi-byte
characters (U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F,
U+3000). So a byte is whitespace if it is at most 0x20 and not one of the other control
characters, or if it is part of one of those nineteen encodings; every other byte of
valid UTF-8 (a continuation byte included) belongs to a word.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import numpy.typing as npt
import polars as pl

from transforms.text import PY_WHITESPACE

_ASCII_SPACE = np.zeros(128, dtype=np.bool_)
_ASCII_SPACE[[ord(c) for c in PY_WHITESPACE if ord(c) < 128]] = True
#: Every ASCII whitespace byte is at most this; below it, only the control characters
#: 0x00..0x08 and 0x0E..0x1B are not whitespace.
_SPACE_MAX = 0x20
_NOT_SPACE_BELOW = 0x09
_NOT_SPACE_RANGE = (0x0E, 0x1C)
assert not _ASCII_SPACE[_SPACE_MAX + 1 :].any()
assert np.flatnonzero(~_ASCII_SPACE[: _SPACE_MAX + 1]).tolist() == [
    *range(_NOT_SPACE_BELOW),
    *range(*_NOT_SPACE_RANGE),
]

_ENCODED = [c.encode() for c in PY_WHITESPACE if ord(c) >= 128]
_LEADS = sorted({encoded[0] for encoded in _ENCODED})
#: The second bytes of the multi-byte whitespace encodings: most lead bytes found in
#: text (0xE2 starts the typographic quotes and dashes) are followed by none of them.
_SECONDS = np.array(sorted({encoded[1] for encoded in _ENCODED}), dtype=np.uint8)
#: The multi-byte whitespace encodings as integers of their 2 or 3 bytes.
_KEYS = {
    length: np.array(
        [int.from_bytes(encoded, "big") for encoded in _ENCODED if len(encoded) == length], dtype=np.uint32
    )
    for length in (2, 3)
}
assert {len(encoded) for encoded in _ENCODED} == set(_KEYS)
assert [0xC2, *range(0xE1, 0xE4)] == _LEADS  # what the candidate test in _whitespace assumes


def _whitespace(values: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """For each byte of valid UTF-8, whether it belongs to a whitespace character.

    Whole-chunk passes are kept to cheap comparisons: the rare cases (a control character
    that is not whitespace, a lead byte of a multi-byte whitespace character) are first
    tested for with ``any`` and only then located (``flatnonzero`` over a whole chunk
    cost more than the count).
    """
    space = values <= _SPACE_MAX
    not_space = (values < _NOT_SPACE_BELOW) | (
        (values - np.uint8(_NOT_SPACE_RANGE[0])) < np.uint8(_NOT_SPACE_RANGE[1] - _NOT_SPACE_RANGE[0])
    )
    if not_space.any():
        space &= ~not_space
    # candidates by lead byte (0xC2, then 0xE1..0xE3) and second byte, then the exact encodings
    lead_candidate = (values == _LEADS[0]) | (
        (values - np.uint8(_LEADS[1])) <= np.uint8(_LEADS[-1] - _LEADS[1])
    )
    if not lead_candidate.any():
        return space
    lead = np.flatnonzero(lead_candidate)
    last = len(values) - 1
    second = values[np.minimum(lead + 1, last)]
    keep = np.isin(second, _SECONDS)
    lead, second = lead[keep], second[keep].astype(np.uint32)
    if len(lead):
        first = values[lead].astype(np.uint32)
        third = values[np.minimum(lead + 2, last)].astype(np.uint32)
        pair = (first << 8) | second
        for length, key in ((2, pair), (3, (pair << 8) | third)):
            starts = lead[np.isin(key, _KEYS[length])]
            for offset in range(length):
                space[starts + offset] = True
    return space


#: Texts are counted in runs of about this many bytes: numpy's temporaries stay in the
#: CPU cache, and a large column allocates no fresh memory (page faults cost more than
#: the count on the bench archive).
CHUNK_BYTES = 1 << 20


def _count(values: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Words of the texts ``values[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]]``."""
    values = values[offsets[0] : offsets[-1]]
    space = _whitespace(values)
    # a word begins at a byte that is not whitespace, after one that is or at a text's start
    begins = ~space
    begins[1:] &= space[:-1]
    nonempty = offsets[1:] > offsets[:-1]
    text_starts = (offsets[:-1] - offsets[0])[nonempty]
    begins[text_starts] = ~space[text_starts]
    words = np.zeros(len(offsets) - 1, dtype=np.int64)
    if len(text_starts):
        words[nonempty] = np.add.reduceat(begins.view(np.uint8), text_starts, dtype=np.int32)
    return words


def count_words(texts: pl.Series) -> pl.Series:
    """``len(text.split())`` of each text; 0 for null."""
    # a null keeps the bytes of the value it replaced (a ``when`` that hid a text), and
    # they would be copied out and counted; as "" it has none
    arrow = texts.cast(pl.String).fill_null("").to_arrow()
    count = len(arrow)
    _, offsets_buffer, data_buffer = arrow.buffers()
    if count == 0 or data_buffer is None:
        return pl.Series(texts.name, np.zeros(count, dtype=np.int64))
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64, count=count + 1, offset=arrow.offset * 8)
    values = np.frombuffer(data_buffer, dtype=np.uint8)
    # row boundaries about CHUNK_BYTES apart (a longer text is a chunk of its own)
    targets = np.arange(offsets[0], offsets[-1], CHUNK_BYTES)
    cuts = np.unique(np.append(np.searchsorted(offsets, targets), count))
    words = [_count(values, offsets[start : stop + 1]) for start, stop in pairwise(cuts)]
    return pl.Series(texts.name, np.concatenate(words) if words else np.zeros(count, dtype=np.int64))


def word_count(text: pl.Expr) -> pl.Expr:
    """``len(text.split())`` of each text; 0 for null."""
    return text.map_batches(count_words, return_dtype=pl.Int64)
