"""A JSON document's records as the job hands them to a ``document`` reader's ``decode``: a
record per element of the reader's lists (``line``: its position, ``list``: the list's key)
and one for the header, the document with those lists empty. Built from the document in
Python, for inline tests of the readers (the job finds them in the bytes:
``jobs.json_array.document``)."""

from __future__ import annotations

import copy
import json
from typing import Any

import polars as pl

from transforms.readers import Reader


def document_records(document: dict[str, Any], lists: tuple[str, ...], file: str = "s.json") -> pl.LazyFrame:
    header = copy.deepcopy(document)
    rows: list[dict[str, Any]] = []
    for path in lists:
        *parents, key = path.split(".")
        holder: Any = header
        for parent in parents:
            holder = holder.get(parent) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or not isinstance(holder.get(key), list):
            continue
        rows += [
            {"line": position, "list": path, "text": json.dumps(element)}
            for position, element in enumerate(holder[key])
        ]
        holder[key] = []
    rows.append({"line": None, "list": None, "text": json.dumps(header)})
    return pl.LazyFrame(
        {
            "file_index": pl.Series([0] * len(rows), dtype=pl.Int32),
            "file": [file] * len(rows),
            "line": pl.Series([row["line"] for row in rows], dtype=pl.Int64),
            "text": [row["text"] for row in rows],
            "list": pl.Series([row["list"] for row in rows], dtype=pl.String),
        }
    )


def read_streamed(reader: Reader, document: dict[str, Any], file: str = "s.json") -> pl.DataFrame:
    """What ``reader`` makes of ``document`` decoded a record at a time."""
    assert reader.decode is not None
    return reader.read(reader.decode(document_records(document, reader.lists, file))).collect()
