"""Archive shapes for the bench, converted from ``gen_archive.py`` output.

``gen_archive.py`` writes ShareGPT JSONL (one session per line) in files of about the
same size. The suite also holds ``compound pairs`` to archives of other shapes, built here
from that output, deterministically (the same input gives the same bytes):

- :func:`merge_runs`: the archive as generated, except that a few runs of consecutive
  files are merged into one big file each (a realistic size mix: thousands of files of
  about 100 KB and a few of tens of MB); reading order and bytes are unchanged;
- :func:`split_lines`: the same bytes, concatenated in reading order and cut at line ends
  into a given number of files;
- :func:`write_json_array`: the sessions as one top-level JSON array, pretty-printed as
  ``json.dumps(sessions, indent=2)`` writes it (how LLaMA-Factory and FastChat ship
  datasets), written one session at a time;
- :func:`write_state_db`: the sessions as a Hermes Agent ``state.db`` (SQLite), with its
  ``messages`` index and its FTS5 table.

Each function writes into a folder the caller made and returns a JSON-able summary of
what it wrote. This module imports nothing from the bench, so that the bench (a script)
can import it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The files of a generated archive, in the order the reference and compound read them.
JSONL_GLOB = "*.jsonl"
COPY_CHUNK_BYTES = 16 * 1024 * 1024

#: The Hermes Agent state.db layout (``hermes_state``), trimmed to the columns that matter
#: here plus a few around them: ``sessions``, ``messages``, the ``messages(session_id,
#: timestamp)`` index and the external-content FTS5 table over the message contents. The
#: job's queries must run against it as it is (tests/test_reader_hermes.py builds its
#: databases with it too).
STATE_DB_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    user_id TEXT,
    model TEXT,
    model_config TEXT,
    system_prompt TEXT,
    parent_session_id TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    end_reason TEXT,
    message_count INTEGER DEFAULT 0,
    tool_call_count INTEGER DEFAULT 0,
    input_tokens INTEGER DEFAULT 0,
    output_tokens INTEGER DEFAULT 0,
    title TEXT,
    FOREIGN KEY (parent_session_id) REFERENCES sessions(id)
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL,
    content TEXT,
    tool_call_id TEXT,
    tool_calls TEXT,
    tool_name TEXT,
    timestamp REAL NOT NULL,
    token_count INTEGER,
    finish_reason TEXT,
    reasoning TEXT
);
CREATE INDEX idx_messages_session ON messages(session_id, timestamp);
CREATE VIRTUAL TABLE messages_fts USING fts5(content, content=messages, content_rowid=id);
"""
STATE_DB_SCHEMA_VERSION = 6
#: ShareGPT ``from`` -> Hermes ``role``; messages of any other role are left out.
#: ``assistant`` is kept as itself: ``gen_archive.py`` writes it for a quarter of the
#: final answers, beside ``gpt``.
HERMES_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
}
#: 2026-03-01 08:00:00 UTC: the first message; each message is one second after the last.
STATE_DB_EPOCH = 1772352000.0
STATE_DB_SOURCE = "cli"
#: Messages per ``executemany``; each batch is its own transaction.
STATE_DB_BATCH_MESSAGES = 50_000


def jsonl_files(folder: Path) -> list[Path]:
    """The JSONL files of a generated archive, in reading order (``sorted(rglob)``)."""
    return sorted(folder.rglob(JSONL_GLOB))


def lines_of(files: Sequence[Path]) -> Iterator[bytes]:
    """Every line of ``files`` in order, each ending with a newline (one is added to a
    last line without it)."""
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                yield line if line.endswith(b"\n") else line + b"\n"


def sessions_of(files: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """The sessions of ``files`` in order; blank lines are skipped (the shapes are built
    from archives without malformed lines)."""
    for line in lines_of(files):
        if line.strip():
            session: dict[str, Any] = json.loads(line)
            yield session


def total_size(files: Sequence[Path]) -> int:
    return sum(path.stat().st_size for path in files)


# --- many small files, a few big ones ---------------------------------------------------


@dataclass(frozen=True)
class Merge:
    """One big file: the consecutive files from ``start`` (a share of the file list) on,
    until they hold at least ``min_bytes`` (at least two files)."""

    start: float
    min_bytes: int


def merge_runs(source: Path, destination: Path, merges: Sequence[Merge]) -> dict[str, Any]:
    """Copy the archive in ``source`` to ``destination`` (same relative paths), each run of
    ``merges`` concatenated into the run's first file. The reading order of the sessions
    does not change: the merged file sorts where its run began."""
    files = jsonl_files(source)
    runs = plan_runs(files, merges)
    merged_into = {run[0]: run for run in runs}
    skipped = {path for run in runs for path in run[1:]}
    big_files = []
    for path in files:
        if path in skipped:
            continue
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        run = merged_into.get(path, [path])
        with target.open("wb") as out:
            for part in run:
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, COPY_CHUNK_BYTES)
        if len(run) > 1:
            big_files.append(
                {
                    "file": str(target.relative_to(destination)),
                    "parts": len(run),
                    "bytes": target.stat().st_size,
                }
            )
    written = jsonl_files(destination)
    sizes = sorted(path.stat().st_size for path in written)
    return {
        "source": str(source),
        "files": len(written),
        "bytes": sum(sizes),
        "merged": big_files,
        "median_file_bytes": sizes[len(sizes) // 2] if sizes else 0,
    }


def plan_runs(files: Sequence[Path], merges: Sequence[Merge]) -> list[list[Path]]:
    """The runs of consecutive files to merge; a run starts after the one before it ends."""
    runs: list[list[Path]] = []
    taken_until = 0
    for merge in merges:
        start = max(int(merge.start * len(files)), taken_until)
        end, size = start, 0
        while end < len(files) and (size < merge.min_bytes or end - start < 2):
            size += files[end].stat().st_size
            end += 1
        if end - start >= 2:
            runs.append(list(files[start:end]))
        taken_until = end
    return runs


# --- the same bytes in fewer files ------------------------------------------------------


def split_lines(source: Path, destination: Path, parts: int) -> dict[str, Any]:
    """The JSONL files of ``source``, concatenated in reading order and cut after the first
    line end past each ``k / parts`` of the bytes, into ``parts`` files (fewer if there
    are fewer lines), each ending with a newline."""
    files = jsonl_files(source)
    total = total_size(files)
    width = len(str(parts - 1))
    written = 0
    index = 0
    out = (destination / f"part-{index:0{width}d}.jsonl").open("wb")
    try:
        for line in lines_of(files):
            out.write(line)
            written += len(line)
            if index < parts - 1 and written >= total * (index + 1) / parts:
                out.close()
                index += 1
                out = (destination / f"part-{index:0{width}d}.jsonl").open("wb")
    finally:
        out.close()
    written_files = jsonl_files(destination)
    if written_files and written_files[-1].stat().st_size == 0:  # the last cut was the end
        written_files[-1].unlink()
        written_files.pop()
    return {"source": str(source), "files": len(written_files), "bytes": total_size(written_files)}


# --- one JSON array ---------------------------------------------------------------------


def write_json_array(source: Path, target: Path) -> dict[str, Any]:
    """The sessions of ``source`` as one JSON array, byte for byte what
    ``json.dumps(sessions, indent=2)`` writes (each element is ``json.dumps(session,
    indent=2)`` indented two more spaces), written one session at a time."""
    temporary = target.with_name(target.name + ".partial")
    sessions = 0
    with temporary.open("w", encoding="utf-8", newline="\n") as out:
        out.write("[")
        for session in sessions_of(jsonl_files(source)):
            element = json.dumps(session, indent=2).replace("\n", "\n  ")
            out.write(("\n  " if sessions == 0 else ",\n  ") + element)
            sessions += 1
        out.write("\n]" if sessions else "]")
    temporary.replace(target)
    return {"source": str(source), "sessions": sessions, "bytes": target.stat().st_size}


# --- a Hermes state.db ------------------------------------------------------------------


def session_id(index: int, started_at: float) -> str:
    """``YYYYMMDD_HHMMSS_<6 hex>`` as Hermes names sessions: the start time (UTC) and the
    session's index, so that ids are unique and sort as the sessions were read."""
    return time.strftime("%Y%m%d_%H%M%S", time.gmtime(started_at)) + f"_{index:06x}"


def write_state_db(source: Path, target: Path) -> dict[str, Any]:
    """The sessions of ``source`` as a Hermes ``state.db``: one ``sessions`` row each (its
    id from its index, its model, source ``cli``), one ``messages`` row per message whose
    role maps to a Hermes role, one second apart, then the FTS5 table built over the
    contents. Sessions keep their reading order (ids sort as read)."""
    temporary = target.with_name(target.name + ".partial")
    temporary.unlink(missing_ok=True)
    counts = {"sessions": 0, "messages": 0, "skipped_messages": 0, "content_bytes": 0}
    with closing(sqlite3.connect(temporary, isolation_level=None)) as connection:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.executescript(STATE_DB_SCHEMA)
        connection.execute("INSERT INTO schema_version VALUES (?)", (STATE_DB_SCHEMA_VERSION,))
        sessions: list[tuple[Any, ...]] = []
        messages: list[tuple[Any, ...]] = []
        clock = STATE_DB_EPOCH
        for index, session in enumerate(sessions_of(jsonl_files(source))):
            started_at = clock
            sid = session_id(index, started_at)
            turns = session.get("conversations")
            count = 0
            for turn in turns if isinstance(turns, list) else []:
                speaker = turn.get("from") if isinstance(turn, dict) else None
                role = HERMES_ROLES.get(speaker) if isinstance(speaker, str) else None
                content = turn.get("value") if isinstance(turn, dict) else None
                if role is None or not isinstance(content, str):
                    counts["skipped_messages"] += 1
                    continue
                messages.append((sid, role, content, clock))
                counts["content_bytes"] += len(content.encode())
                clock += 1.0
                count += 1
            model = session.get("model")
            model_text = model if isinstance(model, str) or model is None else json.dumps(model)
            sessions.append(
                (sid, STATE_DB_SOURCE, model_text, started_at, max(started_at, clock - 1.0), count)
            )
            counts["sessions"] += 1
            counts["messages"] += count
            if len(messages) >= STATE_DB_BATCH_MESSAGES:
                insert_rows(connection, sessions, messages)
        insert_rows(connection, sessions, messages)
        connection.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    temporary.replace(target)
    return {"source": str(source), **counts, "bytes": target.stat().st_size}


def insert_rows(
    connection: sqlite3.Connection, sessions: list[tuple[Any, ...]], messages: list[tuple[Any, ...]]
) -> None:
    """Insert the buffered rows in one transaction and empty the buffers."""
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO sessions (id, source, model, started_at, ended_at, message_count)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        sessions,
    )
    connection.executemany(
        "INSERT INTO messages (session_id, role, content, timestamp) VALUES (?, ?, ?, ?)", messages
    )
    connection.execute("COMMIT")
    sessions.clear()
    messages.clear()
