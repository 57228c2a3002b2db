"""Read a batch of file pieces into one message table, quarantining what cannot be read.

Each reader's records are decoded in one go. When a decode fails, the batch is halved
until the records at fault are found, so a few bad lines cost a few extra decodes of
the parts that hold them. ShareGPT records the typed decoder cannot read exactly take
the exact path (``jobs.sharegpt_exact``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from itertools import chain, groupby, pairwise
from pathlib import Path
from urllib.parse import quote

import numpy as np
import polars as pl
import pyarrow as pa

from jobs.discover import ARRAY_PIECES_PER_BATCH, UTF8_BOM, Piece, batches, detect, walk_document
from jobs.lines import Content, binary_spans, raw_lines, universal_newlines
from jobs.sharegpt_exact import ExactPath, Quarantine, json_type
from jobs.uris import SessionPath, local_copy
from transforms.readers import Reader
from transforms.schema import MESSAGE_SCHEMA
from transforms.text import py_strip

QUARANTINE_SCHEMA = pl.Schema({"file": pl.String, "line": pl.Int64, "error": pl.String, "raw": pl.String})
#: What a decode of records that do not fit the reader's dtype raises. A string left
#: unterminated can swallow the next line, which polars reports as a ShapeError.
DECODE_ERRORS = (pl.exceptions.ComputeError, pl.exceptions.ShapeError)
RECORDS_SCHEMA = pl.Schema({"file_index": pl.Int32, "file": pl.String, "line": pl.Int64, "text": pl.String})


@dataclass
class Batch:
    """What one batch of files yields."""

    messages: pl.DataFrame
    quarantine: pl.DataFrame
    skipped_messages: int


def _utf8_or_none(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _place(piece: Piece, line: int | None, member: str | None = None) -> tuple[int | None, str]:
    """A record's line for the quarantine, and what its error begins with: an array's
    elements are named by their position, a document's by their list and position
    (``member``: the list; none for the document's header) or as its header."""
    if piece.reader.layout in ("array", "events"):
        return None, f"array element {line}: "
    if piece.reader.layout == "document":
        return None, (f"{member}[{line}]: " if member is not None else "the document's header: ")
    return (line if piece.reader.layout == "lines" else None), ""


def _as_text(lines: pl.DataFrame, pieces: list[Piece], quarantine: Quarantine) -> pl.DataFrame:
    """``raw`` cast to ``text``. A record that is not UTF-8 is quarantined and left out: an
    element (of an array, of a document's list) keeps its position in ``line``; a line is
    left blank instead, so that the numbers of the lines after it stay true."""
    try:
        lines = lines.with_columns(pl.col("raw").cast(pl.String).alias("text"))
    except pl.exceptions.ComputeError:  # polars' cast rejects the whole column, even non-strict
        texts = [_utf8_or_none(line) for line in lines["raw"]]  # only a batch with a bad line
        lines = lines.with_columns(pl.Series("text", texts, dtype=pl.String))
    members = pl.col("list") if "list" in lines.columns else pl.lit(None, pl.String)
    for file_index, file, line, content, member in (
        lines.filter(pl.col("text").is_null())
        .select("file_index", "file", "line", "raw", members)
        .iter_rows()
    ):
        reason = "not UTF-8"
        try:
            content.decode("utf-8")
        except UnicodeDecodeError as error:
            reason = error.reason
        where, prefix = _place(pieces[0], line, member)
        quarantine.add(
            file_index, file, where, f"{prefix}invalid UTF-8: {reason}", content.decode("utf-8", "replace")
        )
    if pieces[0].reader.layout == "lines":
        return lines.drop("raw").with_columns(pl.col("text").fill_null(""))
    return lines.drop("raw").filter(pl.col("text").is_not_null())


def _raw_lines(pieces: list[Piece], quarantine: Quarantine) -> pl.DataFrame:
    """Every line of the pieces as text (``file_index``, ``file``, ``line``, ``text``, and
    ``padded`` from ``raw_lines``)."""
    contents = [
        Content(
            piece.file_index,
            str(piece.path),
            piece.first_line,
            universal_newlines(piece.data.removeprefix(UTF8_BOM)),
        )
        for piece in pieces
    ]
    return _as_text(raw_lines(contents), pieces, quarantine)


def _element_rows(piece: Piece) -> pl.DataFrame:
    """The elements of a piece of an array (or of a document's list) as raw bytes; ``line``
    is each one's position."""
    assert piece.spans is not None
    starts, ends = piece.spans
    count = len(starts)
    return pl.DataFrame(
        {
            "file_index": pl.Series([piece.file_index] * count, dtype=pl.Int32),
            "file": pl.Series([str(piece.path)] * count, dtype=pl.String),
            "line": pl.Series(np.arange(piece.first_line, piece.first_line + count), dtype=pl.Int64),
            "raw": pl.Series(binary_spans(piece.data, starts, ends), dtype=pl.Binary),
        }
    )


def _elements(pieces: list[Piece], quarantine: Quarantine) -> pl.DataFrame:
    """Every element of the pieces' arrays as text; ``line`` is its position."""
    return _as_text(pl.concat([_element_rows(piece) for piece in pieces]), pieces, quarantine)


def _document_records(pieces: list[Piece], quarantine: Quarantine) -> pl.DataFrame:
    """The records of pieces of documents as text: a row per element of a list (``line``:
    its position, ``list``: the list) and one per document's header (``line`` and ``list``
    null), in one frame whatever the number of pieces (a folder of small session files is
    a piece each)."""
    places = pl.DataFrame(
        {
            "file_index": pl.Series([piece.file_index for piece in pieces], dtype=pl.Int32),
            "file": pl.Series([str(piece.path) for piece in pieces], dtype=pl.String),
            "first": pl.Series([piece.first_line for piece in pieces], dtype=pl.Int64),
            "count": pl.Series(
                [len(piece.spans[0]) if piece.spans else 0 for piece in pieces], dtype=pl.Int64
            ),
            "list": pl.Series([piece.member for piece in pieces], dtype=pl.String),
        }
    )
    chunks = [binary_spans(piece.data, *piece.spans) for piece in pieces if piece.spans is not None]
    elements = (
        places.select(
            "file_index",
            "file",
            pl.int_ranges("first", pl.col("first") + pl.col("count"), dtype=pl.Int64).alias("line"),
            "list",
        )
        .explode("line")
        .filter(pl.col("line").is_not_null())
        .with_columns(pl.Series("raw", pa.chunked_array(chunks, type=pa.binary_view()), dtype=pl.Binary))
    )
    with_header = [piece for piece in pieces if piece.header is not None]
    headers = pl.DataFrame(
        {
            "file_index": pl.Series([piece.file_index for piece in with_header], dtype=pl.Int32),
            "file": pl.Series([str(piece.path) for piece in with_header], dtype=pl.String),
            "line": pl.Series([None] * len(with_header), dtype=pl.Int64),
            "list": pl.Series([None] * len(with_header), dtype=pl.String),
            "raw": pl.Series([piece.header for piece in with_header], dtype=pl.Binary),
        }
    )
    records = _as_text(pl.concat([elements, headers]), pieces, quarantine)
    return records.select(*RECORDS_SCHEMA.names(), "list")


def _records(pieces: list[Piece], quarantine: Quarantine) -> pl.DataFrame:
    """The raw records of pieces read by one reader of the ``lines`` or ``array`` layout: a
    row per non-blank line (trimmed with Python's ``strip()``), or per array element."""
    if pieces[0].reader.layout == "array":
        records = _elements(pieces, quarantine).lazy()
    else:
        lines = _raw_lines(pieces, quarantine)
        # a strip copies every line; JSON lines hardly ever need one
        text = py_strip(pl.col("text")) if lines["padded"].any() else pl.col("text")
        records = lines.lazy().with_columns(text).filter(pl.col("text") != "")
    return records.select(RECORDS_SCHEMA.names()).collect()


#: Records are decoded in chunks of about this many bytes of JSON. polars decodes a
#: chunk at a time, building its values for the whole chunk first: one 20 MB chunk of
#: the bench archive peaked at 64 MB over its input and took 40 ms of CPU; in 32
#: chunks, 34 MB and 26 ms (less fresh memory to fault in), and the chunks spread over
#: the cores.
DECODE_CHUNK_BYTES = 1 << 20


def _in_chunks(records: pl.DataFrame) -> pl.DataFrame:
    """``records`` as chunks of about ``DECODE_CHUNK_BYTES`` of text (a record is never split)."""
    ends = records["text"].str.len_bytes().cast(pl.Int64).cum_sum().to_numpy()
    if len(ends) == 0 or ends[-1] <= DECODE_CHUNK_BYTES:
        return records
    cuts = np.unique(np.searchsorted(ends, np.arange(DECODE_CHUNK_BYTES, ends[-1], DECODE_CHUNK_BYTES)) + 1)
    bounds = [0, *cuts[cuts < len(ends)].tolist(), len(ends)]
    return pl.concat([records.slice(start, stop - start) for start, stop in pairwise(bounds)], rechunk=False)


#: What reads records: a reader's ``read``, or its ``decode`` for the events layout.
ReadRecords = Callable[[pl.LazyFrame], pl.LazyFrame]


def _read(read: ReadRecords, records: pl.DataFrame) -> pl.DataFrame:
    return read(records.drop("_row").lazy()).collect()


def _bad_rows(read: ReadRecords, records: pl.DataFrame) -> list[int]:
    """The ``_row`` of each record ``read`` cannot decode, found by halving."""
    try:
        _read(read, records)
    except DECODE_ERRORS:
        if records.height == 1:
            return records["_row"].to_list()
        half = records.height // 2
        return _bad_rows(read, records.head(half)) + _bad_rows(read, records.tail(records.height - half))
    return []


def _decode(read: ReadRecords, records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What ``read`` makes of the records it decodes, and the records it cannot.

    After the bad records are found, the good ones are read again in one go: a reader
    numbers a conversation's turns across all its lines, which halves would break.
    """
    records = records.with_row_index("_row")
    try:
        return _read(read, records), records.clear().drop("_row")
    except DECODE_ERRORS:
        bad = pl.Series(_bad_rows(read, records), dtype=pl.UInt32)
    is_bad = pl.col("_row").is_in(bad.implode())
    good = records.filter(~is_bad)
    return _read(read, good), records.filter(is_bad).drop("_row")


def _why_not(reader: Reader, text: str, member: str | None = None, line: int | None = 1) -> str:
    """Why a record a reader rejected cannot be read, in a line (``member`` and ``line``: a
    document's record's list and position, as ``decode`` takes them)."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        return f"invalid JSON: {error}"
    read = reader.decode or reader.read
    record = {"file_index": [0], "file": [""], "line": pl.Series([line], dtype=pl.Int64), "text": [text]}
    if reader.layout == "document":
        record["list"] = pl.Series([member], dtype=pl.String)
    try:
        read(pl.LazyFrame(record)).collect()
    except DECODE_ERRORS as error:
        detail = str(error).strip().splitlines()[0]
        return f"a JSON {json_type(value)} that is not a {reader.format} record: {detail}"
    return f"not a {reader.format} record"


#: The columns of a database reader's query that tell its sessions apart.
SQL_KEY_COLUMNS = frozenset({"session_id"})


def _sql_literal(value: object) -> str:
    """A session key as SQL text (connectorx binds no parameters)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    raise TypeError(f"a session key of type {type(value).__name__}")


def _read_sqlite_exactly(database: Path, query: str) -> pl.DataFrame:
    """The query's rows through Python's sqlite3, for a range connectorx cannot take: SQLite
    keeps a value of any type in any column (a BLOB content, a timestamp written as text),
    and connectorx wants each column's values of one type. A column of whole numbers stays
    one; any other is text (a BLOB that is not UTF-8 is null: it holds no text). A row a
    tuple in the interpreter, as connectorx's path avoids: only for such a range.

    A key (``SQL_KEY_COLUMNS``) that is a BLOB but no UTF-8 reads as its SQL literal
    (``X'00ff'``): as null, every such session would be one conversation."""
    with closing(sqlite3.connect(f"file:{quote(str(database))}?mode=ro", uri=True)) as connection:
        cursor = connection.execute(query)
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    columns: dict[str, pl.Series] = {}
    for index, name in enumerate(names):
        values = [row[index] for row in rows]
        if all(value is None or isinstance(value, int) for value in values):
            columns[name] = pl.Series(name, values, dtype=pl.Int64)
        else:
            as_text = _sql_key if name in SQL_KEY_COLUMNS else _sql_text
            columns[name] = pl.Series(name, [as_text(value) for value in values], dtype=pl.String)
    return pl.DataFrame(columns)


def _sql_key(value: object) -> str | None:
    if isinstance(value, bytes):
        text = _utf8_or_none(value)
        return text if text is not None else f"X'{value.hex()}'"
    return _sql_text(value)


def _sql_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return _utf8_or_none(value)
    return str(value)


def _read_sqlite(reader: Reader, pieces: list[Piece], quarantine: Quarantine) -> list[pl.DataFrame]:
    """Each piece's range of sessions, one keyed query each, read by connectorx: straight
    into Arrow, without the interpreter (Python's sqlite3 made a tuple a row, and held the
    other threads up while it did: 0.47 against 0.18 s for 33 MB of messages). Imported
    here: loading it costs every run 10 to 90 ms, and only a database needs it."""
    import connectorx  # noqa: PLC0415

    assert reader.query is not None
    frames = []
    for piece in pieces:
        if piece.sessions is None:  # a database without sessions
            continue
        first, last, first_conversation = piece.sessions
        try:
            query = reader.query.replace(":first", _sql_literal(first)).replace(":last", _sql_literal(last))
            if not piece.path.is_file():  # connectorx would make an empty database there
                raise FileNotFoundError("the file is gone")
            with local_copy(piece.path) as local:  # a URI's database: copied (connectorx reads files)
                try:
                    rows = pl.from_arrow(
                        connectorx.read_sql(
                            f"sqlite://{quote(str(local.resolve()))}", query, return_type="arrow"
                        )
                    )
                except RuntimeError:  # a value of another type than its column's first
                    rows = _read_sqlite_exactly(local, query)
        except (RuntimeError, OSError, TypeError, sqlite3.Error, pl.exceptions.PolarsError) as error:
            quarantine.add(piece.file_index, str(piece.path), None, f"cannot read the database: {error}", "")
            continue
        assert isinstance(rows, pl.DataFrame)
        rows = rows.with_columns(
            pl.lit(piece.file_index, pl.Int32).alias("file_index"),
            pl.lit(str(piece.path)).alias("file"),
            pl.lit(first_conversation, pl.Int64).alias("first_conversation"),
        )
        frames.append(reader.read(rows.lazy()).collect())
    return frames


def _loaded(pieces: list[Piece], quarantine: Quarantine) -> list[Piece]:
    """The pieces with their bytes; a damaged one is quarantined and left out."""
    whole = []
    for piece in chain.from_iterable(map(Piece.loaded, pieces)):
        if piece.damaged is None:
            whole.append(piece)
            continue
        raw = piece.data[-2000:].decode("utf-8", "replace")
        # a document's damage says where it is itself
        where, prefix = (None, "") if piece.reader.layout == "document" else _place(piece, piece.first_line)
        quarantine.add(piece.file_index, str(piece.path), where, prefix + piece.damaged, raw)
    return whole


def _quarantine_rejected(
    reader: Reader, pieces: list[Piece], rejected: pl.DataFrame, quarantine: Quarantine
) -> None:
    members = pl.col("list") if "list" in rejected.columns else pl.lit(None, pl.String)
    for file_index, file, line, text, member in rejected.select(*RECORDS_SCHEMA.names(), members).iter_rows():
        where, prefix = _place(pieces[0], line, member)
        quarantine.add(file_index, file, where, prefix + _why_not(reader, text, member, line), text)


def _read_events(reader: Reader, pieces: list[Piece], quarantine: Quarantine) -> list[pl.DataFrame]:
    """Arrays of one conversation's events, each a piece at a time: a piece is loaded,
    decoded into the reader's columns and let go before the next, and the reader reads a
    file's decoded events whole (a conversation is paired whole)."""
    assert reader.decode is not None
    decoded = []
    for piece in pieces:
        for whole in _loaded([piece], quarantine):
            events, rejected = _decode(reader.decode, _in_chunks(_elements([whole], quarantine)))
            decoded.append(events)
            _quarantine_rejected(reader, [whole], rejected, quarantine)
    return [reader.read(pl.concat(decoded).lazy()).collect()] if decoded else []


#: Pieces of documents are decoded together up to about this many bytes: a folder of
#: small session files, a decode each, would cost a polars call per file.
DOCUMENT_DECODE_BYTES = 8 << 20


def _read_documents(
    reader: Reader, pieces: list[Piece], quarantine: Quarantine, exact: ExactPath
) -> list[pl.DataFrame]:
    """Documents: small ones read whole, together (``_read_whole``); larger ones, and small
    ones that do not decode whole, a piece of their lists' elements at a time with their
    headers: pieces are loaded, decoded into the reader's columns (a few small ones
    together) and let go, and the reader reads the decoded rows of whole documents (a
    conversation is paired whole). ShareGPT records the typed decoder cannot read exactly
    are decoded in Python (``ExactPath.decode_document_record``)."""
    decode_records = reader.decode
    assert decode_records is not None
    decoded: list[pl.DataFrame] = []

    def decode(group: list[Piece]) -> None:
        records = _in_chunks(_document_records(group, quarantine))
        slow = records.clear()
        if reader.needs_exact is not None:
            routed = records.with_columns(reader.needs_exact(pl.col("text")).alias("exact"))
            records = routed.filter(~pl.col("exact")).drop("exact")
            slow = routed.filter(pl.col("exact")).drop("exact")
        rows, rejected = _decode(decode_records, records)
        decoded.append(rows)
        if reader.needs_exact is None:
            _quarantine_rejected(reader, group, rejected, quarantine)
            return
        for file_index, file, line, text, member in pl.concat([slow, rejected]).iter_rows():
            exact.decode_document_record(file_index, file, line, member, text)

    whole: list[Piece] = []
    group: list[Piece] = []
    size = 0

    def add(piece: Piece) -> None:
        nonlocal group, size
        for loaded in _loaded([piece], quarantine):
            group.append(loaded)
            size += len(loaded.data) + len(loaded.header or b"")
            if size >= DOCUMENT_DECODE_BYTES:
                decode(group)
                group, size = [], 0

    for piece in pieces:
        if piece.spans is None and piece.damaged is None:  # a small document, read whole
            whole += _loaded([piece], quarantine)
        else:
            add(piece)
    frames = []
    if whole:
        read, walk = _read_whole(reader, whole)
        frames.append(read)
        for piece in walk:
            for part in walk_document(piece, DOCUMENT_DECODE_BYTES * ARRAY_PIECES_PER_BATCH):
                add(part)
    if group:
        decode(group)
    decoded += exact.decoded_documents()
    if decoded:
        frames.append(reader.read(pl.concat(decoded, how="vertical_relaxed").lazy()).collect())
    return frames


def _read_whole(reader: Reader, pieces: list[Piece]) -> tuple[pl.DataFrame, list[Piece]]:
    """Small documents, one a piece, decoded whole in one go by ``Reader.read_whole``; and
    those that are not (not UTF-8, text the typed ShareGPT decoder cannot read exactly, a
    document that does not decode whole), to be walked and read in pieces: what goes wrong
    in them is then found and quarantined element by element."""
    assert reader.read_whole is not None
    by_file = {piece.file_index: piece for piece in pieces}
    bom = [len(UTF8_BOM) if piece.data.startswith(UTF8_BOM) else 0 for piece in pieces]
    one_span = [
        binary_spans(piece.data, np.array([skip]), np.array([len(piece.data)]))
        for piece, skip in zip(pieces, bom, strict=True)
    ]
    raw = pl.Series("raw", pa.chunked_array(one_span, type=pa.binary_view()), dtype=pl.Binary)
    try:
        text = raw.cast(pl.String)  # views into the files' bytes, as lines are
    except pl.exceptions.ComputeError:  # one is not UTF-8: it is walked, and its elements told apart
        text = pl.Series([_utf8_or_none(value) for value in raw], dtype=pl.String)
    records = pl.DataFrame(
        {
            "file_index": pl.Series(list(by_file), dtype=pl.Int32),
            "file": pl.Series([str(piece.path) for piece in pieces], dtype=pl.String),
            "line": pl.Series([None] * len(pieces), dtype=pl.Int64),
            "text": text,
        },
        schema=RECORDS_SCHEMA,
    )
    walk = records["text"].is_null()
    if reader.needs_exact is not None:
        walk |= records.select(reader.needs_exact(pl.col("text")).fill_null(value=False).alias("exact"))[
            "exact"
        ]
    read, rejected = _decode(reader.read_whole, _in_chunks(records.filter(~walk)))
    walked = pl.concat([records.filter(walk)["file_index"], rejected["file_index"]])
    return read, [by_file[file_index] for file_index in walked.to_list()]


def _runs_or_chats(reader: Reader, messages: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """``agent_run`` where the reader left it open: the layout's kind (``Reader.agent``)."""
    return [frame.with_columns(pl.col("agent_run").fill_null(bool(reader.agent))) for frame in messages]


def read_batch(pieces: list[Piece]) -> Batch:
    """Read the given pieces of session files into one message table."""
    quarantine = Quarantine()
    exact = ExactPath(quarantine)
    frames = [pl.DataFrame(schema=MESSAGE_SCHEMA)]
    for reader, group in groupby(pieces, key=lambda piece: piece.reader):
        if reader.layout == "events":
            frames += _runs_or_chats(reader, _read_events(reader, list(group), quarantine))
            continue
        if reader.layout == "document":
            frames += _runs_or_chats(reader, _read_documents(reader, list(group), quarantine, exact))
            continue
        same_reader = _loaded(list(group), quarantine)
        if not same_reader:
            continue
        if reader.layout == "sqlite":
            frames += _runs_or_chats(reader, _read_sqlite(reader, same_reader, quarantine))
            continue
        records = _records(same_reader, quarantine)
        if reader.needs_exact is not None:
            routed = records.with_columns(reader.needs_exact(pl.col("text")).alias("exact"))
            records = routed.filter(~pl.col("exact")).drop("exact")
            slow = routed.filter(pl.col("exact")).drop("exact")
        else:
            slow = records.clear()
        decoded, rejected = _decode(reader.read, _in_chunks(records))
        frames += _runs_or_chats(reader, [decoded])
        if reader.needs_exact is None:
            _quarantine_rejected(reader, same_reader, rejected, quarantine)
            continue
        for file_index, file, line, text in pl.concat([slow, rejected]).iter_rows():
            if reader.layout == "lines":
                exact.read_line(file_index, file, line, text)
            else:
                exact.read_element(file_index, file, line, text)
    frames.append(exact.messages().collect())  # ShareGPT: chats
    return Batch(
        messages=pl.concat(frames)
        .with_columns(pl.col("agent_run").fill_null(value=False))
        .sort("file_index", "conversation", "turn", maintain_order=True),
        quarantine=pl.DataFrame(quarantine.rows, schema={"file_index": pl.Int32, **QUARANTINE_SCHEMA})
        .sort("file_index", "line", nulls_last=False, maintain_order=True)
        .drop("file_index"),
        skipped_messages=exact.skipped_messages,
    )


def read_files(paths: Sequence[SessionPath], forced_format: str | None = None) -> Batch:
    """Detect and read whole files into one batch (for tests and notebooks)."""
    pieces = [
        piece for batch in batches([detect(p, forced_format) for p in paths], 1 << 62) for piece in batch
    ]
    return read_batch(pieces)
