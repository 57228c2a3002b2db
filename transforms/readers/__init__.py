"""One reader per session layout, each turning raw records into the canonical message table.

A reader is pure polars: ``read`` takes the raw records of some files (a LazyFrame with
``file_index``, ``file``, ``line`` and ``text``; one row per JSON line, or one per element of
a top-level JSON array (``line`` is then the element's 0-based position)) and returns the
message table (``transforms.schema.MESSAGE_SCHEMA``).

A reader of one conversation's elements (the ``events`` and ``document`` layouts) reads in
two steps, so that a file of any size is decoded a piece at a time: ``decode`` turns a
piece's records into columns of the reader's own, and ``read`` takes the decoded rows of
whole files. A ``document`` is one JSON object that keeps its conversation in a list (or
several: ``Reader.lists``); ``decode`` gets a record per element of those lists (``line``:
its position; ``list``: the list's key) and one for the document's header, the object with
those lists left empty and its large values pruned (``line`` and ``list`` null). A small
document is read whole, in one decode with others (``read_whole``), unless it does not
decode so.
Nothing about pairs lives here. ``read`` may raise ``polars.exceptions.ComputeError``
when a record does not decode; the job then narrows the failure down to the records at
fault and quarantines them.

``sniff`` decides from content whether a file is in the reader's layout: for the
``lines`` layout it gets the first JSON values of the file, for ``array`` and ``events``
the first elements of the array, for ``document`` the document's outline (its values
whole when small; a large list by its first elements, a large object member by member, a
large string empty), for ``sqlite`` the database's table names. An ``array``
reader reads arrays whose elements are conversations, so that an array of any size is
read a batch of elements at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import polars as pl

Layout = Literal["lines", "array", "events", "document", "sqlite"]


@dataclass(frozen=True)
class Reader:
    format: str  # the format name users see (--format, stats.json)
    layout: Layout
    sniff: Callable[[Any], bool]
    read: Callable[[pl.LazyFrame], pl.LazyFrame]
    #: each line is a whole conversation, so a large file may be read in pieces
    line_per_conversation: bool = False
    #: for the sqlite layout: the query whose rows ``read`` gets, for the sessions whose
    #: keys lie between the parameters ``:first`` and ``:last`` (``read`` also gets
    #: ``first_conversation``, the number of the first of them)
    query: str | None = None
    #: for the sqlite layout: every session's ``key`` and its number of ``messages``, in key
    #: order, then what else changes when a session does (an incremental run reads again
    #: the sessions whose row differs from the last run's)
    sessions_query: str | None = None
    #: records ``read`` cannot decode exactly go to the job's exact (Python) path
    needs_exact: Callable[[pl.Expr], pl.Expr] | None = None
    #: whether the layout is an agent's (its conversations are runs: ``--responses auto``
    #: keeps their final answers) or a chat's; None: ``read`` decides per conversation
    #: (``agent_run``)
    agent: bool | None = False
    #: for the events and document layouts: a piece's records into the columns ``read`` takes
    decode: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None
    #: for the document layout: the keys of the lists that hold the conversation (a key one
    #: level down after a dot: ``answer_generation.train_messages``), read in pieces
    lists: tuple[str, ...] = ()
    #: for the document layout: whole documents, one a record (``line`` null), into the
    #: message table ``decode`` then ``read`` make of them: a small document is read so
    read_whole: Callable[[pl.LazyFrame], pl.LazyFrame] | None = None


@cache
def registry() -> tuple[Reader, ...]:
    """Every reader, in the order detection tries them (the most specific first)."""
    # imported here: each reader module imports ``Reader`` from this one
    from transforms.readers import (  # noqa: PLC0415
        claude_code,
        codex,
        copilot_cli,
        gemini_cli,
        hermes,
        kimi_cli,
        openai,
        openhands,
        pi,
        sharegpt,
    )

    return (
        *claude_code.READERS,
        *codex.READERS,
        *openhands.READERS,
        *hermes.READERS,
        *sharegpt.READERS,
        *openai.READERS,
        *gemini_cli.READERS,
        *copilot_cli.READERS,
        *kimi_cli.READERS,
        *pi.READERS,
    )


def format_names() -> list[str]:
    return sorted({reader.format for reader in registry()})


def wrapping_reader(head: list[Any]) -> Reader | None:
    """A reader for JSON lines whose records wrap a list one reader knows (chat messages,
    OpenHands events) under a key of their own, or None."""
    from transforms.readers import openai, openhands  # noqa: PLC0415 (see registry)

    first = head[0] if head else None
    if (key := openai.list_key(first)) is not None:
        return openai.reader_under(key)
    if (key := openhands.list_key(first)) is not None:
        return openhands.reader_under(key)
    return None


#: The place of a document's record (``Reader.decode`` takes and keeps it): the header's
#: row has no ``line``, an element's ``line`` is its position in its list.
RECORD_PLACE = ("file_index", "file", "line")


def split_document_records(
    records: pl.LazyFrame, header: list[pl.Expr], element: list[pl.Expr]
) -> pl.LazyFrame:
    """A document's records decoded (``Reader.decode``): the header's row into the
    ``header`` columns, each element's into the ``element`` columns, in one frame (a row
    has nulls in the other's columns)."""
    is_header = pl.col("line").is_null()
    return pl.concat(
        [
            records.filter(is_header).select(*RECORD_PLACE, *header),
            records.filter(~is_header).select(*RECORD_PLACE, *element),
        ],
        how="diagonal",
    )


def elements_with_header(decoded: pl.LazyFrame, header: list[str], element: list[str]) -> pl.LazyFrame:
    """The elements of documents decoded a piece at a time (``split_document_records``), in
    order (file, then position), each with its document's ``header`` columns."""
    is_header = pl.col("line").is_null()
    headers = decoded.filter(is_header).select("file_index", *header)
    return (
        decoded.filter(~is_header)
        .select(*RECORD_PLACE, *element)
        .join(headers, on="file_index", how="left", maintain_order="left")
        .sort("file_index", "line", maintain_order=True)
    )
