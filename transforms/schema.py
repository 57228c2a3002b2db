"""The canonical message table: every reader produces exactly these columns."""

from __future__ import annotations

import polars as pl

#: One row per message, in session order. A session is one record of one file,
#: identified by ``(file_index, line)``; ``session_id`` is what the record calls itself.
MESSAGE_SCHEMA = pl.Schema(
    {
        "file_index": pl.Int32,  # position of the file in the run's input order
        "file": pl.String,
        "line": pl.Int64,  # 1-based line of the session record in its file
        "session_id": pl.String,
        "model": pl.String,
        "turn": pl.Int32,  # 0-based position of the message in its session
        "role": pl.String,  # canonical: system, user, assistant, tool; null when unknown
        "role_raw": pl.String,  # the role as the file spells it
        "text": pl.String,  # null when the message has no usable text
    }
)

#: Canonical roles of the ShareGPT ``from`` field, as the reference reads it: only
#: ``human`` is a prompt, and ``gpt`` and ``assistant`` are responses.
SHAREGPT_ROLES = {
    "human": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
}
