"""Read ShareGPT JSONL files into the canonical message table, quarantining bad lines.

Most lines take the fast path: one typed ``json_decode`` over the whole batch. A line the
typed decoder cannot read exactly (see ``transforms.sharegpt.NEEDS_EXACT_PATH``), or
that it rejects, takes the exact path: Python's ``json`` module, the reference's own
parser, so that such a line is read as the reference reads it, or quarantined with the
reason where the reference would crash or drop it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from jobs.discover import Piece
from transforms.schema import MESSAGE_SCHEMA, SHAREGPT_ROLES
from transforms.sharegpt import (
    MISSING,
    SESSION_DTYPE,
    messages_from_sessions,
    route_lines,
    split_lines,
)

RAW_TEXT_LIMIT = 2000

QUARANTINE_SCHEMA = pl.Schema({"file": pl.String, "line": pl.Int64, "error": pl.String, "raw": pl.String})


@dataclass
class Batch:
    """What one batch of files yields."""

    messages: pl.DataFrame
    quarantine: pl.DataFrame
    sessions: int
    skipped_messages: int


@dataclass
class _ExactPath:
    """Rows built by the exact path, for the few lines that take it."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    sessions: int = 0
    skipped_messages: int = 0

    def reject(self, file_index: int, file: str, line: int, error: str, raw: str) -> None:
        self.quarantine.append(
            {
                "file_index": file_index,
                "file": file,
                "line": line,
                "error": error,
                "raw": raw[:RAW_TEXT_LIMIT],
            }
        )

    def read(self, file_index: int, file: str, line: int, record: str) -> None:
        try:
            session = json.loads(record)
        except (json.JSONDecodeError, RecursionError) as error:
            self.reject(file_index, file, line, f"invalid JSON: {error}", record)
            return
        if not isinstance(session, dict):
            self.reject(file_index, file, line, f"a JSON {_json_type(session)}, not a session object", record)
            return
        conversations = session.get("conversations", [])
        if not isinstance(conversations, list):
            self.reject(
                file_index,
                file,
                line,
                f"conversations is a JSON {_json_type(conversations)}, not a list",
                record,
            )
            return
        self.sessions += 1
        session_id = _as_text(session.get("id", MISSING))
        model = _as_text(session.get("model", MISSING))
        for turn, message in enumerate(conversations):
            if not isinstance(message, dict):
                self.skipped_messages += 1
                continue
            role_raw = message.get("from")
            value = message.get("value")
            if value is not None and not isinstance(value, str):
                self.skipped_messages += 1
                value = None
            role_raw = role_raw if isinstance(role_raw, str) else None
            self.messages.append(
                {
                    "file_index": file_index,
                    "file": file,
                    "line": line,
                    "session_id": session_id,
                    "model": model,
                    "turn": turn,
                    "role": SHAREGPT_ROLES.get(role_raw) if role_raw is not None else None,
                    "role_raw": role_raw,
                    "text": value,
                }
            )


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _as_text(value: object) -> str | None:
    """A session's id or model as a string; a non-string JSON value as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _piece_texts(pieces: list[Piece], exact: _ExactPath) -> pl.Series:
    """Each piece's text, validated as UTF-8 by polars in one pass.

    A piece that is not all UTF-8 is split into lines in Python: its bad lines are
    quarantined and left blank, so that line numbers stay true.
    """
    raw = pl.Series("content", [piece.data for piece in pieces], dtype=pl.Binary)
    try:
        return raw.cast(pl.String)
    except pl.exceptions.ComputeError:
        pass
    texts = []
    for piece in pieces:
        try:
            texts.append(piece.data.decode("utf-8"))
            continue
        except UnicodeDecodeError:
            pass
        lines = []
        universal = piece.data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        for number, line in enumerate(universal.split(b"\n"), start=piece.first_line):
            try:
                lines.append(line.decode("utf-8"))
            except UnicodeDecodeError as error:
                exact.reject(
                    piece.file_index,
                    str(piece.path),
                    number,
                    f"invalid UTF-8: {error.reason}",
                    line.decode("utf-8", "replace"),
                )
                lines.append("")
        texts.append("\n".join(lines))
    return pl.Series("content", texts, dtype=pl.String)


def _decode_typed(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Decode ``record`` with the session type; split off the rows the decoder rejects.

    One decode over the batch; only when it fails, halve and retry, so a few bad lines
    cost a few extra decodes of the parts that hold them.
    """
    try:
        return records.with_columns(
            pl.col("record").str.json_decode(SESSION_DTYPE).alias("session")
        ), records.clear()
    except pl.exceptions.ComputeError:
        if records.height == 1:
            return records.clear().with_columns(pl.lit(None, SESSION_DTYPE).alias("session")), records
    half = records.height // 2
    good_head, bad_head = _decode_typed(records.head(half))
    good_tail, bad_tail = _decode_typed(records.tail(records.height - half))
    return pl.concat([good_head, good_tail]), pl.concat([bad_head, bad_tail])


def read_batch(pieces: list[Piece]) -> Batch:
    """Read the given pieces of session files into one message table."""
    exact = _ExactPath()
    contents = pl.LazyFrame(
        {
            "file_index": pl.Series([piece.file_index for piece in pieces], dtype=pl.Int32),
            "file": pl.Series([str(piece.path) for piece in pieces], dtype=pl.String),
            "first_line": pl.Series([piece.first_line for piece in pieces], dtype=pl.Int64),
            "content": _piece_texts(pieces, exact),
        }
    )
    lines = route_lines(split_lines(contents)).collect()
    decoded, rejected = _decode_typed(lines.filter(pl.col("fast")).drop("fast"))
    for file_index, file, line, record in pl.concat(
        [lines.filter(~pl.col("fast")).drop("fast"), rejected]
    ).iter_rows():
        exact.read(file_index, file, line, record)
    messages = pl.concat(
        [
            messages_from_sessions(decoded.lazy().drop("record")).collect(),
            pl.DataFrame(exact.messages, schema=MESSAGE_SCHEMA),
        ]
    ).sort("file_index", "line", "turn")
    return Batch(
        messages=messages,
        quarantine=pl.DataFrame(exact.quarantine, schema={"file_index": pl.Int32, **QUARANTINE_SCHEMA})
        .sort("file_index", "line")
        .drop("file_index"),
        sessions=decoded.height + exact.sessions,
        skipped_messages=exact.skipped_messages,
    )
