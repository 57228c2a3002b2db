"""The elements of a top-level JSON array, and the members of a top-level JSON object,
found in their bytes without decoding them.

A chat dataset ships as one JSON array of hundreds of MB, an agent's run as one object
that is mostly one list. Decoding either whole costs many times its size in memory; here
numpy finds where each element (or member) starts and ends, a buffer at a time, so that
the elements can be decoded in batches as JSON lines are.

The scan looks only at the bytes that can matter (``"`` ``[`` ``]`` ``{`` ``}`` ``,``,
found with numpy a block at a time), in their order: a quote after an odd run of backslashes
is escaped, the other quotes open and close strings, and outside strings the brackets
give the depth. In an array (``elements``), a comma at depth 1 ends an element; the ``]``
that brings the depth back to 0 ends the array. Every buffer but the first starts just
after an element's comma, where the state is known (depth 1, outside any string), so no
state crosses buffers. An object (``document``) is walked with the scan's state carried
from buffer to buffer instead, so that a member of any size can be passed over (see
below).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

QUOTE, BACKSLASH, COMMA = ord('"'), ord("\\"), ord(",")
OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT = ord("["), ord("]"), ord("{"), ord("}")
JSON_WHITESPACE = b" \t\n\r"
#: With 0x20 set, ``"`` ``,`` ``[`` ``]`` ``{`` ``}`` are one of these (and so are a few
#: control bytes, which JSON never holds raw: they change nothing below).
_CASE_FOLDED = (QUOTE | 0x20, COMMA | 0x20, OPEN_OBJECT, CLOSE_OBJECT)
#: Bytes compared per step, so that the temporaries stay in the cache (256 KB: 0.065 s
#: for 40 MB, against 0.10 for ``bytes.translate`` and 0.13 comparing 40 MB at once).
BLOCK_BYTES = 1 << 18
_DEPTH_CHANGE = np.zeros(256, dtype=np.int8)
_DEPTH_CHANGE[[OPEN_ARRAY, OPEN_OBJECT]] = 1
_DEPTH_CHANGE[[CLOSE_ARRAY, CLOSE_OBJECT]] = -1
_IS_WHITESPACE = np.zeros(256, dtype=np.bool_)
_IS_WHITESPACE[list(JSON_WHITESPACE)] = True
Int64Array = npt.NDArray[np.int64]
#: The most one read asks for.
READ_CHUNK_BYTES = 8 << 20


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Seekable(Readable, Protocol):
    def seek(self, offset: int, whence: int = 0, /) -> int: ...


class NotAnArrayError(ValueError):
    """The bytes do not start a JSON array."""


@dataclass(frozen=True)
class Scan:
    """What a scan of a buffer found."""

    #: after the opening ``[`` (when the scan started at depth 0), else 0
    body_start: int
    #: the commas at depth 1, in order
    separators: Int64Array
    #: the ``]`` that closes the array, or -1 when the buffer ends first
    close: int


def _escaped(values: npt.NDArray[np.uint8], quotes: Int64Array, carried: int = 0) -> npt.NDArray[np.bool_]:
    """Which quotes follow an odd run of backslashes. Only quotes right after a backslash
    are looked at, one byte further back per step while their runs go on; a run that
    reaches the buffer's start goes on with the ``carried`` backslashes that ended the
    buffer before."""
    escaped = np.zeros(len(quotes), dtype=np.bool_)
    if carried % 2 and len(quotes) and quotes[0] == 0:
        escaped[0] = True
    candidates = np.flatnonzero(quotes > 0)
    candidates = candidates[values[quotes[candidates] - 1] == BACKSLASH]
    run = 1
    while len(candidates):
        before = quotes[candidates] - run - 1
        going_on = before >= 0
        going_on[going_on] = values[before[going_on]] == BACKSLASH
        ended = ~going_on
        escaped[candidates[ended]] = (run + carried * (before[ended] < 0)) % 2 == 1
        candidates = candidates[going_on]
        run += 1
    return escaped


def special_positions(values: npt.NDArray[np.uint8]) -> Int64Array:
    """Where ``values`` holds a byte the scan looks at."""
    folded = np.empty(BLOCK_BYTES, dtype=np.uint8)
    found = np.empty(BLOCK_BYTES, dtype=np.bool_)
    equal = np.empty(BLOCK_BYTES, dtype=np.bool_)
    positions = []
    for start in range(0, len(values), BLOCK_BYTES):
        block = values[start : start + BLOCK_BYTES]
        size = len(block)
        np.bitwise_or(block, 0x20, out=folded[:size])
        np.equal(folded[:size], _CASE_FOLDED[0], out=found[:size])
        for byte in _CASE_FOLDED[1:]:
            np.equal(folded[:size], byte, out=equal[:size])
            np.logical_or(found[:size], equal[:size], out=found[:size])
        positions.append(np.flatnonzero(found[:size]) + start)
    return np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)


def _structure(
    values: npt.NDArray[np.uint8], in_string: bool, backslashes: int
) -> tuple[Int64Array, npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """The positions and bytes the scan looks at, and which of them are structural: the
    unescaped quotes, and the brackets and commas outside strings. ``in_string``: the
    buffer starts inside a string, after a run of ``backslashes``."""
    positions = special_positions(values)
    chars = values[positions]
    is_quote = chars == QUOTE
    quote = is_quote.copy()
    quote[is_quote] = ~_escaped(values, positions[is_quote], backslashes if in_string else 0)
    # the quotes before an entry leave a string open when they are odd (counting from
    # in_string); a running xor tells it, 5 times as fast as a running count
    inside = np.logical_xor.accumulate(quote) ^ quote
    if in_string:
        inside = ~inside
    return positions, chars, quote | (~inside & ~is_quote)


def scan(data: bytes, *, depth: int) -> Scan:
    """Scan ``data``, which starts outside any string at ``depth`` (0: before the array's
    ``[``, 1: just after an element's comma)."""
    values = np.frombuffer(data, dtype=np.uint8)
    positions, chars, structural = _structure(values, in_string=False, backslashes=0)
    structural &= chars != QUOTE
    kept = positions[structural]
    kept_chars = chars[structural]
    depths = depth + np.cumsum(_DEPTH_CHANGE[kept_chars], dtype=np.int64)
    body_start = 0
    if depth == 0:
        if not len(kept) or kept_chars[0] != OPEN_ARRAY or data[: kept[0]].strip(JSON_WHITESPACE):
            raise NotAnArrayError("not a JSON array: it does not start with [")
        body_start = int(kept[0]) + 1
    closes = np.flatnonzero((depths == 0) & (kept_chars == CLOSE_ARRAY))
    close = int(kept[closes[0]]) if len(closes) else -1
    limit = len(kept) if close < 0 else int(closes[0])
    separators = kept[:limit][(kept_chars[:limit] == COMMA) & (depths[:limit] == 1)]
    return Scan(body_start, separators.astype(np.int64), close)


def trimmed(data: bytes, starts: Int64Array, ends: Int64Array) -> tuple[Int64Array, Int64Array]:
    """The spans without their JSON whitespace (indentation is a few bytes: a step each)."""
    values = np.frombuffer(data, dtype=np.uint8)
    starts, ends = starts.copy(), ends.copy()
    while True:
        lead = starts < ends
        lead[lead] = _IS_WHITESPACE[values[starts[lead]]]
        if not lead.any():
            break
        starts[lead] += 1
    while True:
        trail = ends > starts
        trail[trail] = _IS_WHITESPACE[values[ends[trail] - 1]]
        if not trail.any():
            break
        ends[trail] -= 1
    return starts, ends


@dataclass(frozen=True)
class Elements:
    """Whole elements of one array: ``data[starts[i]:ends[i]]`` is element ``first + i``
    (trimmed; an empty one, as in ``[1,,2]``, is an empty span)."""

    data: bytes
    starts: Int64Array
    ends: Int64Array
    first: int
    #: the array ended here (its ``]`` was found, or the stream ended)
    last: bool
    #: why the array ended before its ``]``, or what followed it; None when it ended well
    damaged: str | None = None
    #: where ``data`` starts in the stream (``head`` included)
    offset: int = 0
    #: the bytes of ``data`` the elements are in (past them: the start of the next ones);
    #: None: all of it
    length: int | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.length is None else self.length


def elements(stream: Readable, max_bytes: int, *, head: bytes = b"") -> Iterator[Elements]:
    """The elements of the array ``stream`` holds (``head``: bytes already read from it),
    in buffers of about ``max_bytes`` of whole elements; an element larger than that is a
    buffer of its own."""
    data, depth, first, read_size = head, 0, 0, max_bytes
    offset, at_end = 0, False
    while True:
        if not at_end and len(data) < read_size:
            chunks = [data]
            size = len(data)
            while size < read_size:
                chunk = stream.read(min(read_size - size, READ_CHUNK_BYTES))
                if not chunk:
                    at_end = True
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks) if len(chunks) > 1 else data
        if depth == 0 and not at_end and not data.strip(JSON_WHITESPACE):  # the [ is still to come
            read_size = max(read_size, len(data)) * 2
            continue
        found = scan(data, depth=depth)
        body = found.body_start
        cuts = found.separators
        if found.close >= 0:
            ends = np.append(cuts, found.close)
            starts = np.concatenate(([body], cuts + 1))
            starts, ends = trimmed(data, starts, ends)
            if len(starts) == 1 and starts[0] == ends[0] and first == 0:  # []
                starts, ends = starts[:0], ends[:0]
            rest = data[found.close + 1 :] + (b"" if at_end else stream.read(1 << 16))
            damaged = None
            if rest.strip(JSON_WHITESPACE):
                damaged = "more after the array's closing ]"
            yield Elements(data, starts, ends, first, last=True, damaged=damaged, offset=offset)
            return
        if at_end:
            starts = np.concatenate(([body], cuts + 1))[:-1] if len(cuts) else np.zeros(0, np.int64)
            starts, ends = trimmed(data, starts, cuts) if len(cuts) else (starts, cuts)
            damaged = "the array ends before its closing ]"
            yield Elements(data, starts, ends, first, last=True, damaged=damaged, offset=offset)
            return
        if not len(cuts):  # no element ends in this buffer: read on, twice as much
            read_size = max(read_size, len(data)) * 2
            continue
        cut = int(cuts[-1])
        starts = np.concatenate(([body], cuts[:-1] + 1))
        starts, ends = trimmed(data, starts, cuts)
        yield Elements(data, starts, ends, first, last=False, offset=offset, length=cut)
        first += len(starts)
        offset += cut + 1
        data, depth, read_size = data[cut + 1 :], 1, max_bytes


# --- one JSON document: a top-level object, its members found in its bytes --------------
#
# A session file that is one object (a SWE-agent ``.traj``, a ToolBench answer, a Hermes or
# Gemini session) keeps its conversation in one list among other members, some of them far
# larger than the conversation (a ``.traj``'s ``trajectory``). The object is read a buffer
# at a time: each buffer's structural bytes are found as above, with the scan's state (open
# containers, inside a string, a run of backslashes) carried from one buffer to the next,
# so that a value can be passed over whatever its size and wherever the buffers cut it. Of
# the members, the lists that hold the conversation are cut into pieces of whole elements;
# every other member is kept when it is small, and passed over when it is not, leaving an
# empty value of its kind in its place: what is kept is the document's outline.


@dataclass(frozen=True)
class ScanState:
    """Where a buffer starts: the containers open, whether inside a string, and (inside
    one) the run of backslashes that ended the buffer before."""

    depth: int = 0
    in_string: bool = False
    backslashes: int = 0


@dataclass(frozen=True)
class Tokens:
    """The structural bytes of a buffer: the unescaped quotes, and the brackets and commas
    outside strings, with where they are in the stream and their level: the containers open
    around them (a bracket counts at the level of the container it opens or closes, so that
    a value's brackets and its quotes are at the level of the member or element it is)."""

    positions: Int64Array
    chars: npt.NDArray[np.uint8]
    levels: Int64Array


def tokens(data: bytes, state: ScanState, offset: int = 0) -> tuple[Tokens, ScanState]:
    """The structural bytes of ``data``, which starts in ``state`` at ``offset`` of the
    stream, and the state it ends in."""
    values = np.frombuffer(data, dtype=np.uint8)
    positions, chars, structural = _structure(values, state.in_string, state.backslashes)
    positions, chars = positions[structural], chars[structural]
    change = _DEPTH_CHANGE[chars]
    after = state.depth + np.cumsum(change, dtype=np.int64)
    quotes = int(np.count_nonzero(chars == QUOTE))
    in_string = state.in_string ^ (quotes % 2 == 1)
    backslashes = 0
    if in_string:
        backslashes = len(data) - len(data.rstrip(b"\\"))
        if backslashes == len(data):
            backslashes += state.backslashes
    depth = int(after[-1]) if len(after) else state.depth
    found = Tokens(positions + offset, chars, after - (change > 0))
    return found, ScanState(depth, in_string, backslashes)


class NotAnObjectError(ValueError):
    """The bytes do not start a JSON object."""


@dataclass(frozen=True)
class ListPiece:
    """Whole elements of a list the document holds: element ``first + i`` is
    ``data[starts[i]:ends[i]]``, the stream's bytes from ``offset`` (trimmed)."""

    #: the list's key; keys joined by dots one level down (``answer_generation.train_messages``)
    path: str
    first: int
    offset: int
    #: the bytes from ``offset`` the elements are in
    length: int
    starts: Int64Array
    ends: Int64Array
    #: None when the walk was asked not to keep the bytes (they are read again from the file)
    data: bytes | None


@dataclass(frozen=True)
class Outline:
    """The document without its streamed lists (each an empty list) and with its large
    values pruned (each an empty value of its kind), or sampled (a large list's first
    elements): what the readers take as the document's header."""

    text: bytes
    #: why the document ended before its closing ``}``, or what followed it; None: it ended well
    damaged: str | None
    #: the stream's offset past the closing ``}`` (-1: not reached)
    end: int
    #: no line ends before the closing ``}``: the object is a line's record (JSON lines)
    one_line: bool
    #: something other than whitespace follows the closing ``}``
    more: bool
    #: the bytes read past the closing ``}`` (at least 64 KB of them, when there are), and
    #: whether they are the rest of the stream
    rest: bytes = b""
    rest_is_all: bool = True
    #: where the top-level members' values that were passed over or sampled (lists and
    #: strings longer than ``WalkRules.value_bytes``) start and end: a later walk of the
    #: same bytes may pass over them without reading them (``WalkRules.known``)
    passed: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class WalkRules:
    """What a walk keeps of a document."""

    #: the lists whose elements are streamed in pieces (keys; dots one level down)
    lists: frozenset[str] = frozenset()
    #: a streamed piece's bytes, about
    piece_bytes: int = 8 << 20
    #: bytes read from the stream at a time
    buffer_bytes: int = 8 << 20
    #: a value longer than this is pruned (an object is walked member by member instead)
    value_bytes: int = 1 << 20
    #: past this many bytes of outline, every further value not streamed is pruned
    outline_bytes: int = 8 << 20
    #: of a large list not streamed, how many first elements to keep (0: none), within
    #: ``sample_bytes`` (the first is kept whatever its size)
    sample: int = 0
    sample_bytes: int = 256 << 10
    #: which values to keep whole (one that is not is walked as a large one; an element of a
    #: sampled list that is not is left out); None: every small one
    keep_value: Callable[[bytes], bool] | None = None
    #: whether a streamed piece keeps its bytes
    keep_data: bool = True
    #: how deep large objects are walked (past it, they are pruned)
    max_nesting: int = 8
    #: top-level values known to start and end where an earlier walk of the same bytes found
    #: them (``Outline.passed``): one to be pruned is passed over by a seek, not read (the
    #: stream must seek)
    known: tuple[tuple[int, int], ...] = ()


#: A member's keys from the document's top: ``("answer_generation", "train_messages")``.
Path = tuple[str, ...]
_EMPTY_VALUES = {OPEN_ARRAY: b"[]", OPEN_OBJECT: b"{}", QUOTE: b'""'}


class _Damaged(Exception):  # noqa: N818 (a signal inside the walk, not an error shown as such)
    """The document breaks off: why, and the outline of the value being walked so far
    (None: it has none worth keeping)."""

    def __init__(self, reason: str, partial: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial


Wanted = Callable[[npt.NDArray[np.uint8], Int64Array], npt.NDArray[np.bool_]]


def _any_token(chars: npt.NDArray[np.uint8], _: Int64Array) -> npt.NDArray[np.bool_]:
    return np.ones(len(chars), dtype=np.bool_)


def _at_level(level: int) -> Wanted:
    """Tokens at ``level`` or outside it: what ends a value at ``level``."""
    return lambda _, levels: levels <= level


class _Window:
    """The stream's bytes from ``retain`` on, read a buffer at a time, and their structural
    tokens from the ``cursor`` on. A token's index counts from the stream's first token, so
    that the walker's indices hold while the tokens before the cursor are let go."""

    def __init__(self, stream: Readable, head: bytes, buffer_bytes: int) -> None:
        self._stream = stream
        self._buffer_bytes = buffer_bytes
        self._chunks: deque[tuple[int, bytes]] = deque()
        self._state = ScanState()
        self.end = 0
        self.at_end = False
        self.retain = 0
        #: the first line end from ``newlines_from`` on (-1: none yet)
        self.first_newline = -1
        self.newlines_from = 0
        self.positions: Int64Array = np.zeros(0, dtype=np.int64)
        self.chars: npt.NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
        self.levels: Int64Array = np.zeros(0, dtype=np.int64)
        self.base = 0  # the index of the first token held
        self.cursor = 0
        if head:
            self._add(head)

    def _add(self, data: bytes) -> None:
        found, self._state = tokens(data, self._state, self.end)
        drop = self.cursor - self.base
        self.positions = np.concatenate((self.positions[drop:], found.positions))
        self.chars = np.concatenate((self.chars[drop:], found.chars))
        self.levels = np.concatenate((self.levels[drop:], found.levels))
        self.base = self.cursor
        if (
            self.first_newline < 0
            and (newline := data.find(b"\n", max(0, self.newlines_from - self.end))) >= 0
        ):
            self.first_newline = self.end + newline
        self._chunks.append((self.end, data))
        self.end += len(data)
        while len(self._chunks) > 1 and self._chunks[1][0] <= self.retain:
            self._chunks.popleft()

    def watch_newlines_from(self, offset: int) -> None:
        """Look for the first line end from ``offset`` on (in what is read and will be)."""
        self.newlines_from, self.first_newline = offset, -1
        for start, data in self._chunks:
            if (newline := data.find(b"\n", max(0, offset - start))) >= 0:
                self.first_newline = start + newline
                return

    def jump(self, to: int, depth: int) -> None:
        """Go on from the stream's offset ``to``, at ``depth`` outside any string, without
        reading what lies before it (the end of a value whose bounds are known)."""
        cast(Seekable, self._stream).seek(to - self.end, os.SEEK_CUR)
        self._chunks.clear()
        self.base = self.cursor = self.next_index
        self.positions, self.chars, self.levels = self.positions[:0], self.chars[:0], self.levels[:0]
        self.end = self.retain = to
        self._state = ScanState(depth)
        self.at_end = False

    @property
    def next_index(self) -> int:
        """The index the next token read will have."""
        return self.base + len(self.chars)

    def token(self, index: int) -> tuple[int, int, int]:
        """A token's position, byte and level."""
        at = index - self.base
        assert at >= 0, "a token no longer held"
        return int(self.positions[at]), int(self.chars[at]), int(self.levels[at])

    def read_more(self) -> bool:
        """Read the next buffer; False at the end of the stream."""
        if self.at_end:
            return False
        chunks, size = [], 0
        while size < self._buffer_bytes:
            chunk = self._stream.read(min(self._buffer_bytes - size, READ_CHUNK_BYTES))
            if not chunk:
                self.at_end = True
                break
            chunks.append(chunk)
            size += len(chunk)
        if not chunks:
            return False
        if self._chunks and self._chunks[-1][0] + len(self._chunks[-1][1]) <= self.retain:
            self._chunks.clear()  # nothing read so far is wanted
        self._add(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        return True

    def bytes(self, start: int, stop: int) -> bytes:
        """The stream's bytes from ``start`` to ``stop`` (both within what is kept)."""
        if start >= stop:
            return b""
        assert self._chunks, "no bytes kept"
        assert self._chunks[0][0] <= start, "bytes no longer kept"
        parts = []
        for offset, data in self._chunks:
            if offset >= stop:
                break
            if offset + len(data) > start:
                parts.append(data[max(0, start - offset) : stop - offset])
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def find(self, wanted: Wanted, after: int, limit: int | None = None) -> int:
        """The index of the first token past index ``after`` that ``wanted`` (of the tokens'
        bytes and levels) selects, reading on as needed; -1 when the stream ends first or
        (with ``limit``) when it is not found before the offset ``limit``."""
        start = after + 1
        while True:
            at = start - self.base
            found = np.flatnonzero(wanted(self.chars[at:], self.levels[at:]))
            if len(found):
                index = start + int(found[0])
                if limit is not None and self.token(index)[0] > limit:
                    return -1
                return index
            if limit is not None and self.end > limit:
                return -1
            start = self.next_index
            if not self.read_more():
                return -1

    def pass_over(self, wanted: Wanted) -> int:
        """As ``find`` from the cursor, keeping neither the bytes nor the tokens passed over."""
        while True:
            at = self.cursor - self.base
            found = np.flatnonzero(wanted(self.chars[at:], self.levels[at:]))
            if len(found):
                return self.cursor + int(found[0])
            self.cursor = self.next_index
            self.retain = self.end
            if not self.read_more():
                return -1


def _key(raw: bytes) -> str:
    """A member's key from its JSON string (with its quotes)."""
    if b"\\" in raw:
        try:
            return str(json.loads(raw))
        except ValueError:
            pass
    return raw[1:-1].decode("utf-8", "replace")


class _Walker:
    """A document's members, walked from its bytes as ``WalkRules`` say (``document``)."""

    def __init__(self, window: _Window, rules: WalkRules) -> None:
        self.window = window
        self.rules = rules
        self.lists = {tuple(path.split(".")) for path in rules.lists}
        self.known = dict(rules.known)
        self.passed: list[tuple[int, int]] = []
        self.prefixes = {path[:depth] for path in self.lists for depth in range(1, len(path))}
        self.outline_size = 0

    def _next(self) -> tuple[int, tuple[int, int, int]]:
        """The token at the cursor and its index (the cursor moves past it)."""
        window = self.window
        index = window.cursor
        while index >= window.next_index:  # none held: read on
            if not window.read_more():
                raise _Damaged("the document ends before its closing }")
        window.cursor = index + 1
        return index, window.token(index)

    def root(self) -> Iterator[ListPiece]:
        """The pieces of the streamed lists; the outline is ``self.outline``."""
        window = self.window
        index = window.find(_any_token, -1)
        position, char, _ = window.token(index) if index >= 0 else (window.end, 0, 0)
        if index < 0 or char != OPEN_OBJECT or window.bytes(0, position).strip(JSON_WHITESPACE):
            raise NotAnObjectError("not a JSON object: it does not start with {")
        window.watch_newlines_from(position)
        window.cursor = index + 1
        self.outline = yield from self._object((), 1, 0, position)

    def _object(self, path: Path, level: int, nesting: int, opened: int) -> Generator[ListPiece, None, bytes]:
        """The object whose ``{`` (at the offset ``opened``) is the token before the cursor
        (its members at ``level``); returns its outline, the cursor past its ``}``."""
        window = self.window
        members: list[bytes] = []
        raw_key = b""
        try:
            _, (position, char, at) = self._next()
            if char == CLOSE_OBJECT and at == level - 1:
                if window.bytes(opened + 1, position).strip(JSON_WHITESPACE):
                    raise _Damaged(f"not valid JSON at byte {opened + 1}: a key expected")
                return b"{}"
            while True:
                window.retain = position
                if char != QUOTE or at != level:
                    raise _Damaged(f"not valid JSON at byte {position}: a key expected")
                _, (key_end, _, _) = self._next()
                raw_key = window.bytes(position, key_end + 1)
                child = (*path, _key(raw_key))
                index, (position, char, at) = self._next()
                before_value = window.bytes(key_end + 1, position).strip(JSON_WHITESPACE)
                if not before_value.startswith(b":"):
                    raise _Damaged(f"not valid JSON at byte {key_end + 1}: a : expected after the key")
                if at == level and char in _EMPTY_VALUES and before_value == b":":
                    value = yield from self._value(child, index, level, nesting)
                    _, (position, char, at) = self._next()
                else:  # a number, true, false or null: no token of its own; this one ends it
                    value = before_value[1:].strip(JSON_WHITESPACE)
                    self.outline_size += len(value)
                members.append(raw_key + b":" + value)
                raw_key = b""
                if char == CLOSE_OBJECT and at == level - 1:
                    return b"{" + b",".join(members) + b"}"
                if char != COMMA or at != level:
                    raise _Damaged(f"not valid JSON at byte {position}: a , or }} expected")
                _, (position, char, at) = self._next()
        except _Damaged as damaged:
            if raw_key and damaged.partial is not None:  # the member it broke in, as far as it went
                members.append(raw_key + b":" + damaged.partial)
            raise _Damaged(damaged.reason, b"{" + b",".join(members) + b"}") from None

    def _value(self, path: Path, index: int, level: int, nesting: int) -> Generator[ListPiece, None, bytes]:
        """The value whose first token is at ``index``: streamed, walked, kept or pruned;
        returns its outline, the cursor past it."""
        window, rules = self.window, self.rules
        start, char, _ = window.token(index)
        if char == OPEN_ARRAY and path in self.lists:
            yield from self._stream(path, index, start, level)
            return b"[]"
        if char == OPEN_OBJECT and path in self.prefixes:
            window.cursor = index + 1
            return (yield from self._object(path, level + 1, nesting + 1, start))
        window.retain = start
        at_level = _at_level(level)
        close = -1
        if self.outline_size < rules.outline_bytes:
            close = window.find(at_level, index, limit=start + rules.value_bytes)
        if close >= 0:
            end, _, _ = window.token(close)
            self._check_close(char, close)
            value = window.bytes(start, end + 1)
            if rules.keep_value is None or rules.keep_value(value):
                window.cursor = close + 1
                self.outline_size += len(value)
                return value
            # not kept (it does not parse): walked as a large value is, which keeps its parts that do
        if char == OPEN_OBJECT and nesting < rules.max_nesting and self.outline_size < rules.outline_bytes:
            window.cursor = index + 1
            return (yield from self._object(path, level + 1, nesting + 1, start))
        if char == OPEN_ARRAY and rules.sample and self.outline_size < rules.outline_bytes:
            sample = yield from self._sample(path, index, start, level, nesting)
            if len(path) == 1:
                self.passed.append((start, window.token(window.cursor - 1)[0] + 1))
            return sample
        return self._pruned(path, index, (start, char), level)

    def _pruned(self, path: Path, index: int, opened: tuple[int, int], level: int) -> bytes:
        """An empty value of the kind of the one at ``index`` (``opened``: where it starts,
        and its first byte), the cursor past it: passed over by a seek when an earlier walk
        found where it ends (``WalkRules.known``), else read through."""
        window = self.window
        start, char = opened
        top = len(path) == 1 and char != OPEN_OBJECT
        known_end = self.known.get(start, -1) if top else -1
        if known_end > window.end:
            window.jump(known_end, level)
            self.passed.append((start, known_end))
            return _EMPTY_VALUES[char]
        window.cursor = index + 1
        close = window.pass_over(_at_level(level))
        if close < 0:
            raise _Damaged(f"the document ends inside {'.'.join(path)}")
        self._check_close(char, close)
        window.cursor = close + 1
        if top:
            self.passed.append((start, window.token(close)[0] + 1))
        return _EMPTY_VALUES[char]

    def _check_close(self, opened: int, index: int) -> None:
        position, char, _ = self.window.token(index)
        if opened != QUOTE and char != opened + 2:  # [ ] and { } are two apart
            raise _Damaged(f"not valid JSON at byte {position}: a {chr(opened + 2)} expected")

    def _elements(self, index: int, opened: int, level: int) -> Iterator[tuple[Int64Array, Int64Array, bool]]:
        """The bounds of the elements of the list opened at token ``index`` (at the offset
        ``opened``, at ``level``), untrimmed, a buffer at a time, and whether the list ended
        there; the cursor past what each gave."""
        window = self.window
        start = opened + 1
        window.cursor = index + 1
        while True:
            at = window.cursor - window.base
            chars, levels = window.chars[at:], window.levels[at:]
            closes = np.flatnonzero(levels <= level)
            limit = int(closes[0]) if len(closes) else len(chars)
            separators = window.positions[at : at + limit][
                (chars[:limit] == COMMA) & (levels[:limit] == level + 1)
            ]
            if len(closes):
                close = window.cursor + limit
                self._check_close(OPEN_ARRAY, close)
                ends = np.append(separators, window.token(close)[0])
                window.cursor = close + 1
                yield np.concatenate(([start], separators + 1)), ends, True
                return
            window.cursor += limit
            if len(separators):
                yield np.concatenate(([start], separators[:-1] + 1)), separators, False
                start = int(separators[-1]) + 1
            else:
                yield separators, separators, False
            if not window.read_more():
                raise _Damaged("the document ends before the list's closing ]")

    def _stream(self, path: Path, index: int, opened: int, level: int) -> Iterator[ListPiece]:
        """The elements of the list at ``index`` (its ``[`` at the offset ``opened``) in
        pieces of about ``piece_bytes``."""
        window, rules = self.window, self.rules
        first = 0
        pending: list[tuple[Int64Array, Int64Array]] = []
        pending_start = opened + 1
        window.retain = pending_start

        def piece(up_to: int, *, whole_list: bool) -> ListPiece:
            starts, ends = (np.concatenate(bounds) for bounds in zip(*pending, strict=True))
            data = window.bytes(pending_start, up_to)
            starts, ends = trimmed(data, starts - pending_start, ends - pending_start)
            if whole_list and len(starts) == 1 and starts[0] == ends[0]:
                starts, ends = starts[:0], ends[:0]  # []
            kept = data if rules.keep_data else None
            return ListPiece(".".join(path), first, pending_start, up_to - pending_start, starts, ends, kept)

        try:
            for starts, ends, ended in self._elements(index, opened, level):
                if len(ends):
                    pending.append((starts, ends))
                if not pending:
                    continue
                last_end = int(pending[-1][1][-1])
                if ended or last_end - pending_start >= rules.piece_bytes:
                    made = piece(last_end, whole_list=ended and first == 0 and len(pending) == 1)
                    if len(made.starts):
                        yield made
                    first += len(made.starts)
                    pending, pending_start = [], last_end + 1
                    window.retain = pending_start
        except _Damaged as damaged:
            if pending:
                made = piece(int(pending[-1][1][-1]), whole_list=False)
                yield made
                first += len(made.starts)
            raise _Damaged(f"{'.'.join(path)}[{first}]: {damaged.reason}", b"[]") from None

    def _sample(
        self, path: Path, index: int, opened: int, level: int, nesting: int
    ) -> Generator[ListPiece, None, bytes]:
        """The first elements of the large list at ``index`` (its ``[`` at the offset
        ``opened``): ``WalkRules.sample`` of them, as far as ``sample_bytes`` of them (the
        first whatever its size), each outlined as a value is (kept when small, else walked or
        pruned); returns them as a list, the cursor past the list's ``]``."""
        window, rules = self.window, self.rules
        kept: list[bytes] = []
        size = 0
        window.cursor = index + 1
        separator = opened  # the [, then each element's ,
        try:
            while True:
                window.retain = separator
                _, (position, char, at) = self._next()
                if at == level + 1 and char in _EMPTY_VALUES:
                    value = yield from self._value((*path, "[]"), window.cursor - 1, level + 1, nesting + 1)
                    _, (position, char, at) = self._next()
                else:  # a number, true, false or null (or nothing, in []): the , or ] after it ends it
                    value = window.bytes(separator + 1, position).strip(JSON_WHITESPACE)
                if value and (rules.keep_value is None or rules.keep_value(value)):
                    kept.append(value)
                    size += len(value)
                if char == CLOSE_ARRAY and at == level:
                    break
                if char != COMMA or at != level + 1:
                    raise _Damaged(f"not valid JSON at byte {position}: a , or ] expected")
                separator = position
                if len(kept) >= rules.sample or (kept and size >= rules.sample_bytes):
                    close = window.pass_over(_at_level(level))
                    if close < 0:
                        raise _Damaged("the document ends before the list's closing ]")
                    self._check_close(OPEN_ARRAY, close)
                    window.cursor = close + 1
                    break
        except _Damaged as damaged:
            raise _Damaged(damaged.reason, b"[" + b",".join(kept) + b"]") from None
        self.outline_size += size + len(kept) + 1
        return b"[" + b",".join(kept) + b"]"


def document(stream: Readable, rules: WalkRules, *, head: bytes = b"") -> Iterator[ListPiece | Outline]:
    """The pieces of the lists ``rules`` streams, in the document's order, then its outline
    (``head``: bytes already read from ``stream``). Raises NotAnObjectError when the
    stream holds no JSON object."""
    window = _Window(stream, head, rules.buffer_bytes)
    walker = _Walker(window, rules)
    damaged: str | None = None
    end = -1
    try:
        yield from walker.root()
        text = walker.outline
        end = window.token(window.cursor - 1)[0] + 1
    except _Damaged as broken:
        damaged, text = broken.reason, broken.partial or b"{}"
    more, rest = False, b""
    if damaged is None:
        window.retain = end
        while window.end - end < (1 << 16) and window.read_more():
            pass
        rest = window.bytes(end, window.end)
        more = bool(rest.strip(JSON_WHITESPACE))
        if more:
            damaged = "more after the document's closing }"
    one_line = end >= 0 and not 0 <= window.first_newline < end
    passed = tuple(walker.passed)
    yield Outline(text, damaged, end, one_line, more, rest, window.at_end, passed)
