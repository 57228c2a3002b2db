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

from transforms.readers.sharegpt import MISSING, messages

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

    def read_document(self, file_index: int, file: str, document: str) -> None:
        try:
            value = json.loads(document)
        except (json.JSONDecodeError, RecursionError) as error:
            self.quarantine.add(file_index, file, None, f"invalid JSON: {error}", document)
            return
        sessions = value if isinstance(value, list) else [value]
        for index, session in enumerate(sessions):
            self._session(
                file_index=file_index,
                file=file,
                line=None,
                conversation=index,
                place=f"{file}[{index}]",
                session=session,
                raw=json.dumps(session),
                where=f"session {index}: ",
            )

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
