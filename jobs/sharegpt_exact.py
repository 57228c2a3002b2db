"""The exact path for ShareGPT records the typed decoder cannot read as the reference does.

Python's ``json`` module is the reference's own parser, so such a record is read as the
reference reads it, or quarantined with the reason where the reference would crash.
These are rare records (non-string ids, messages that are not objects, bad JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from transforms.readers.sharegpt import DECODED_SCHEMA, MISSING, messages

RAW_TEXT_LIMIT = 2000

#: The rows ``transforms.readers.sharegpt.messages`` takes.
ROW_SCHEMA = pl.Schema(
    {
        "file_index": pl.Int32,
        "file": pl.String,
        "line": pl.Int64,
        "conversation": pl.Int64,
        "place": pl.String,
        "session_id": pl.String,
        "model": pl.String,
        "turn": pl.Int32,
        "role_raw": pl.String,
        "text": pl.String,
    }
)


def json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _as_text(value: object) -> str | None:
    """A session's id or model as a string; a non-string JSON value as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


@dataclass
class Quarantine:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, file_index: int, file: str, line: int | None, error: str, raw: str) -> None:
        self.rows.append(
            {
                "file_index": file_index,
                "file": file,
                "line": line,
                "error": error,
                "raw": raw[:RAW_TEXT_LIMIT],
            }
        )


@dataclass
class ExactPath:
    """Message rows built in Python, for the few records that take this path."""

    quarantine: Quarantine
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped_messages: int = 0
    #: a session document's records decoded here (``decode_document_record``)
    document_rows: list[dict[str, Any]] = field(default_factory=list)

    def read_line(self, file_index: int, file: str, line: int, record: str) -> None:
        self._read_record(
            file_index, file, record, line=line, place=f"{file}:{line}", conversation=line, where=""
        )

    def read_element(self, file_index: int, file: str, position: int, record: str) -> None:
        """An element of a JSON array: the conversation is its position."""
        where = f"array element {position}: "
        self._read_record(
            file_index,
            file,
            record,
            line=None,
            place=f"{file}[{position}]",
            conversation=position,
            where=where,
        )

    def _read_record(
        self,
        file_index: int,
        file: str,
        record: str,
        *,
        line: int | None,
        place: str,
        conversation: int,
        where: str,
    ) -> None:
        try:
            session = json.loads(record)
        except (json.JSONDecodeError, RecursionError) as error:
            self.quarantine.add(file_index, file, line, f"{where}invalid JSON: {error}", record)
            return
        self._session(
            file_index=file_index,
            file=file,
            line=line,
            conversation=conversation,
            place=place,
            session=session,
            raw=record,
            where=where,
        )

    def decode_document_record(
        self, file_index: int, file: str, line: int | None, member: str | None, record: str
    ) -> None:
        """A record of a session document, as ``transforms.readers.sharegpt.decode_document``
        decodes it: one of its messages (``line``: its position in ``member``), or the
        document's header (``line`` null: the session without its messages)."""
        where = f"{member}[{line}]: " if line is not None else "the document's header: "
        try:
            value = json.loads(record)
        except (json.JSONDecodeError, RecursionError) as error:
            self.quarantine.add(file_index, file, None, f"{where}invalid JSON: {error}", record)
            return
        row: dict[str, Any] = {"file_index": file_index, "file": file, "line": line}
        if line is None:
            conversations = value.get("conversations", []) if isinstance(value, dict) else None
            if not isinstance(conversations, list):
                reason = f"{where}conversations is a JSON {json_type(conversations)}, not a list"
                self.quarantine.add(file_index, file, None, reason, record)
                return
            row |= {"session_id": _as_text(value.get("id")), "model": _as_text(value.get("model", MISSING))}
        elif not isinstance(value, dict):
            self.skipped_messages += 1
            return
        else:
            role_raw, text = value.get("from"), value.get("value")
            if text is not None and not isinstance(text, str):
                self.skipped_messages += 1
                text = None
            row |= {"role_raw": role_raw if isinstance(role_raw, str) else None, "text": text}
        self.document_rows.append(row)

    def decoded_documents(self) -> list[pl.DataFrame]:
        """The rows ``decode_document_record`` made since it was last asked (at most one frame)."""
        rows, self.document_rows = self.document_rows, []
        return [pl.DataFrame(rows, schema=DECODED_SCHEMA)] if rows else []

    def _session(
        self,
        *,
        file_index: int,
        file: str,
        line: int | None,
        conversation: int,
        place: str,
        session: Any,
        raw: str,
        where: str,
    ) -> None:
        if not isinstance(session, dict):
            error = f"{where}a JSON {json_type(session)}, not a session object"
            self.quarantine.add(file_index, file, line, error, raw)
            return
        conversations = session.get("conversations", [])
        if not isinstance(conversations, list):
            error = f"{where}conversations is a JSON {json_type(conversations)}, not a list"
            self.quarantine.add(file_index, file, line, error, raw)
            return
        session_id = _as_text(session.get("id"))
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
            self.rows.append(
                {
                    "file_index": file_index,
                    "file": file,
                    "line": line,
                    "conversation": conversation,
                    "place": place,
                    "session_id": session_id,
                    "model": model,
                    "turn": turn,
                    "role_raw": role_raw if isinstance(role_raw, str) else None,
                    "text": value,
                }
            )

    def messages(self) -> pl.LazyFrame:
        return messages(pl.LazyFrame(self.rows, schema=ROW_SCHEMA))
