"""Parquet files joined into one without decoding them: each file's row groups copied
byte for byte after the ones before, and one footer that lists them all.

The Ray engine's tasks encode their batches' Parquet outputs themselves (dictionaries,
pages, compression: the CPU of writing), each as a small Parquet file, and the driver
only appends them to the run's file in input order. A Parquet file is ``PAR1``, its
column chunks, a footer (``FileMetaData`` in Thrift's compact protocol) that gives every
chunk's offset in the file, the footer's length and ``PAR1``: joining files is copying
their chunks and writing one footer whose row groups' offsets are moved by where each
file's chunks landed.

pyarrow reads footers but cannot move a row group's offsets. fastparquet's Thrift codec
can, but writes back what it read with other types (an ``i8`` as an ``i64``: polars then
rejects the file) and drops the fields it does not know; thriftpy2 would need the
format's IDL copied here and drops unknown fields as well. The footer is walked here
instead, at the level of the compact protocol: every byte is kept as written except the
offsets, the row count and the row groups' ordinals.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

MAGIC = b"PAR1"
#: The footer's length and the closing magic.
TAIL_BYTES = 8

# Thrift compact protocol types (as a field's or a list's element type)
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT, _UUID = range(1, 14)
_FIXED_SIZES = {_TRUE: 0, _FALSE: 0, _BYTE: 1, _DOUBLE: 8, _UUID: 16}

# field ids of parquet.thrift that hold a file offset, or are rewritten
_FILE_ROW_COUNT, _FILE_ROW_GROUPS = 3, 4
_GROUP_COLUMNS, _GROUP_FILE_OFFSET, _GROUP_ORDINAL = 1, 5, 7
_CHUNK_FILE_OFFSET, _CHUNK_META, _CHUNK_OFFSET_INDEX, _CHUNK_COLUMN_INDEX = 2, 3, 4, 6
#: ColumnMetaData: data_page_offset, index_page_offset, dictionary_page_offset, bloom_filter_offset
_META_OFFSETS = frozenset({9, 10, 11, 14})


class ParquetConcatError(ValueError):
    """A part that is not a Parquet file, or whose schema is not the file's."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ParquetConcatError("a Parquet footer cut short")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_int(value: int) -> bytes:
    return _encode_varint((value << 1) ^ (value >> 63))


def _skip(data: bytes, pos: int, kind: int, *, in_list: bool = False) -> int:
    """Where the value of type ``kind`` that starts at ``pos`` ends."""
    if kind in (_TRUE, _FALSE):
        end = pos + 1 if in_list else pos  # a field's bool is in its header
    elif kind in _FIXED_SIZES:
        end = pos + _FIXED_SIZES[kind]
    elif kind in (_I16, _I32, _I64):
        end = _varint(data, pos)[1]
    elif kind == _BINARY:
        length, end = _varint(data, pos)
        end += length
    elif kind in (_LIST, _SET):
        count, element, end = _list_header(data, pos)
        for _ in range(count):
            end = _skip(data, end, element, in_list=True)
    elif kind == _MAP:
        count, end = _varint(data, pos)
        if count:
            kinds = data[end]
            end += 1
            for _ in range(count):
                end = _skip(data, end, kinds >> 4, in_list=True)
                end = _skip(data, end, kinds & 0x0F, in_list=True)
    elif kind == _STRUCT:
        end = pos
        for _, _, _, field_end in _fields(data, pos):
            end = field_end
        end += 1  # the stop byte
    else:
        raise ParquetConcatError(f"a Parquet footer with an unknown Thrift type {kind}")
    return end


def _list_header(data: bytes, pos: int) -> tuple[int, int, int]:
    header = data[pos]
    pos += 1
    count = header >> 4
    if count == 0x0F:
        count, pos = _varint(data, pos)
    return count, header & 0x0F, pos


def _fields(data: bytes, pos: int) -> Iterator[tuple[int, int, int, int]]:
    """The fields of the struct at ``pos``: id, type, where the value starts and ends."""
    field_id = 0
    while True:
        if pos >= len(data):
            raise ParquetConcatError("a Parquet footer cut short")
        header = data[pos]
        pos += 1
        if header == 0:
            return
        delta, kind = header >> 4, header & 0x0F
        if delta:
            field_id += delta
        else:
            raw, pos = _varint(data, pos)
            field_id = _zigzag(raw)
        end = _skip(data, pos, kind)
        yield field_id, kind, pos, end
        pos = end


class _StructWriter:
    """A struct in the compact protocol, its fields written in ascending id order."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._last_id = 0

    def field(self, field_id: int, kind: int, value: bytes | memoryview) -> None:
        delta = field_id - self._last_id
        if 0 < delta <= 0x0F:  # the short form
            self.out.append(delta << 4 | kind)
        else:
            self.out.append(kind)
            self.out += _encode_int(field_id)
        self.out += value
        self._last_id = field_id

    def end(self) -> bytes:
        self.out.append(0)
        return bytes(self.out)


def _int_at(data: bytes, pos: int) -> int:
    return _zigzag(_varint(data, pos)[0])


def _moved(data: bytes, pos: int, by: int) -> bytes:
    """The i64 at ``pos``, moved by ``by``."""
    return _encode_int(_int_at(data, pos) + by)


def _structs(data: bytes, pos: int) -> Iterator[int]:
    """Where each struct of the list of structs at ``pos`` starts."""
    count, element, pos = _list_header(data, pos)
    if count and element != _STRUCT:
        raise ParquetConcatError("a Parquet footer with a list of something else than structs")
    for _ in range(count):
        yield pos
        pos = _skip(data, pos, _STRUCT)


def _list_of(items: list[bytes]) -> bytes:
    """A list of structs, written."""
    if len(items) < 0x0F:
        return bytes([len(items) << 4 | _STRUCT]) + b"".join(items)
    return bytes([0xF0 | _STRUCT]) + _encode_varint(len(items)) + b"".join(items)


def _column_meta(data: bytes, pos: int, by: int) -> bytes:
    out = _StructWriter()
    for field_id, kind, start, end in _fields(data, pos):
        moved = field_id in _META_OFFSETS and kind == _I64
        out.field(field_id, kind, _moved(data, start, by) if moved else data[start:end])
    return out.end()


def _column_chunk(data: bytes, pos: int, by: int) -> bytes:
    out = _StructWriter()
    for field_id, kind, start, end in _fields(data, pos):
        value: bytes = data[start:end]
        if field_id == _CHUNK_META and kind == _STRUCT:
            value = _column_meta(data, start, by)
        elif field_id in (_CHUNK_OFFSET_INDEX, _CHUNK_COLUMN_INDEX) and kind == _I64:
            value = _moved(data, start, by)
        elif field_id == _CHUNK_FILE_OFFSET and kind == _I64 and _int_at(data, start):
            value = _moved(data, start, by)  # deprecated: 0 where a writer does not fill it
        out.field(field_id, kind, value)
    return out.end()


def _row_group(data: bytes, pos: int, by: int, ordinal: int) -> bytes:
    out = _StructWriter()
    for field_id, kind, start, end in _fields(data, pos):
        value: bytes = data[start:end]
        if field_id == _GROUP_COLUMNS and kind == _LIST:
            value = _list_of([_column_chunk(data, chunk, by) for chunk in _structs(data, start)])
        elif field_id == _GROUP_FILE_OFFSET and kind == _I64:
            value = _moved(data, start, by)
        elif field_id == _GROUP_ORDINAL and kind == _I16:
            if ordinal >= 1 << 15:  # an i16: a file of more row groups has none
                continue
            value = _encode_int(ordinal)
        out.field(field_id, kind, value)
    return out.end()


class _Footer:
    """A part's footer: its top-level fields as written, and where its chunks end."""

    def __init__(self, data: bytes) -> None:
        if len(data) < len(MAGIC) + TAIL_BYTES or data[:4] != MAGIC or data[-4:] != MAGIC:
            raise ParquetConcatError("not a Parquet file")
        (length,) = struct.unpack("<i", data[-TAIL_BYTES:-4])
        self.start = len(data) - TAIL_BYTES - length
        if length <= 0 or self.start < len(MAGIC):
            raise ParquetConcatError("a Parquet footer that does not fit its file")
        self.data = data[self.start : len(data) - TAIL_BYTES]
        self.fields = {field_id: (kind, start, end) for field_id, kind, start, end in _fields(self.data, 0)}
        if _FILE_ROW_COUNT not in self.fields or _FILE_ROW_GROUPS not in self.fields:
            raise ParquetConcatError("a Parquet footer without its rows")

    def raw(self, field_id: int) -> bytes:
        _, start, end = self.fields[field_id]
        return self.data[start:end]

    @property
    def num_rows(self) -> int:
        _, start, _ = self.fields[_FILE_ROW_COUNT]
        return _int_at(self.data, start)

    def row_groups(self, by: int, first_ordinal: int) -> list[bytes]:
        """Its row groups, their offsets moved by ``by``, numbered from ``first_ordinal``."""
        _, start, _ = self.fields[_FILE_ROW_GROUPS]
        return [
            _row_group(self.data, group, by, ordinal)
            for ordinal, group in enumerate(_structs(self.data, start), first_ordinal)
        ]


class ParquetConcat:
    """Writes one Parquet file into ``handle`` from whole Parquet files of one schema
    (``append``), their rows in the order appended; ``close`` writes the footer.

    The file's footer is the first part's (schema, Arrow schema, writer, key-value
    metadata), with every part's row groups in it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._handle.write(MAGIC)
        self._position = len(MAGIC)
        self._first: _Footer | None = None
        self._row_groups: list[bytes] = []
        self._rows = 0

    def append(self, data: bytes) -> None:
        footer = _Footer(data)
        if self._first is None:
            self._first = footer
        elif footer.raw(2) != self._first.raw(2):  # the schema, as written
            raise ParquetConcatError("a Parquet part whose schema differs from the file's")
        by = self._position - len(MAGIC)  # its chunks start after its magic, ours here
        self._row_groups += footer.row_groups(by, len(self._row_groups))
        self._rows += footer.num_rows
        body = memoryview(data)[len(MAGIC) : footer.start]
        self._handle.write(body)
        self._position += len(body)

    def close(self) -> None:
        """Write the footer (the handle stays open). A file with nothing appended has no
        schema to write: the caller writes an empty file instead."""
        if self._first is None:
            raise ParquetConcatError("no Parquet part was appended")
        out = _StructWriter()
        for field_id, (kind, _, _) in sorted(self._first.fields.items()):
            if field_id == _FILE_ROW_COUNT:
                out.field(field_id, kind, _encode_int(self._rows))
            elif field_id == _FILE_ROW_GROUPS:
                out.field(field_id, kind, _list_of(self._row_groups))
            else:
                out.field(field_id, kind, self._first.raw(field_id))
        footer = out.end()
        self._handle.write(footer + struct.pack("<i", len(footer)) + MAGIC)
