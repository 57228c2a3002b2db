"""Helpers the readers of the other coding agents share: Gemini CLI (``gemini_cli``), GitHub
Copilot CLI (``copilot_cli``), Kimi Code CLI (``kimi_cli``), pi and OpenClaw (``pi``).

Each file is one session (``conversation`` 0), except Copilot sub-agent side chains, which
get their own conversation numbers. The session id is the file's own id field when it has
one, else taken from the path (``.../<session>/events.jsonl``, ``.../<session>/agents/<agent>/
wire.jsonl``, or the file name without its extension).

Fields whose JSON type varies (``content`` is a string or a list of blocks) are renamed
textually before decoding when they hold a string (``content`` -> ``content_str``), or an
object (``result`` -> ``result_obj``); only the variants named in a dtype are decoded.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import polars as pl

from transforms.schema import conform


def _rename_keys(text: pl.Expr, keys: Iterable[str], opener: str, suffix: str) -> pl.Expr:
    """Rename each of ``keys`` to ``<key><suffix>`` where its value starts with ``opener``.

    Safe on raw JSON: inside a JSON string every ``"`` is escaped, so ``{`` or ``,`` then a
    bare ``"key"`` can only be structural.
    """
    pattern = r'([{,]\s*)"(' + "|".join(keys) + r')"(\s*:\s*)' + opener
    return text.str.replace_all(pattern, '${1}"${2}' + suffix + '"${3}' + opener.replace("\\", ""))


def strings_apart(text: pl.Expr, *keys: str) -> pl.Expr:
    """String values of ``keys`` under ``<key>_str``."""
    return _rename_keys(text, keys, '"', "_str")


def objects_apart(text: pl.Expr, *keys: str) -> pl.Expr:
    """Object values of ``keys`` under ``<key>_obj``."""
    return _rename_keys(text, keys, r"\{", "_obj")


def session_from_path(file: pl.Expr) -> pl.Expr:
    """The session id a path names: the session folder of ``<session>/agents/<agent>/wire.jsonl``
    (Kimi) or ``<session>/events.jsonl`` (Copilot), else the file name without extension."""
    kimi = file.str.extract(r"([^/\\]+)[/\\]agents[/\\][^/\\]+[/\\]wire\.jsonl$", 1)
    events = file.str.extract(r"([^/\\]+)[/\\]events\.jsonl$", 1)
    stem = file.str.extract(r"([^/\\]+?)(?:\.(?:jsonl|json|ndjson))?(?:\.(?:gz|zst|bz2|xz))?$", 1)
    return pl.coalesce(kimi, events, stem)


def said(text: pl.Expr) -> pl.Expr:
    """The text, or null when it is blank."""
    return pl.when(text.str.strip_chars() != "").then(text)


def joined(blocks: pl.Expr, keep: pl.Expr, field: str = "text", separator: str = "\n") -> pl.Expr:
    """The ``field`` of the list elements that ``keep`` (an expression on ``pl.element()``)
    selects, joined; null when there is nothing."""
    texts = blocks.list.eval(pl.element().filter(keep).struct.field(field).drop_nulls())
    return said(texts.list.join(separator))


def first_in_file(value: pl.Expr) -> pl.Expr:
    return value.drop_nulls().first().over("file_index")


def finish(rows: pl.LazyFrame, format_name: str, order: list[str]) -> pl.LazyFrame:
    """Number the turns of each conversation in ``order`` and conform to the message table."""
    return conform(
        rows.sort(["file_index", "conversation", *order])
        .with_columns(
            pl.int_range(pl.len(), dtype=pl.Int32).over("file_index", "conversation").alias("turn"),
            pl.lit(format_name).alias("format"),
        )
        .with_columns(pl.col("typed").fill_null(False))
    )


def is_dict(value: Any) -> bool:
    return isinstance(value, dict)


def one_of(value: Any, names: Collection[str]) -> bool:
    """Whether a record's field is one of these names. The field may hold any JSON (a
    file of another tool's, a hand-made one): a list or an object, which a set cannot
    look up, is not a name."""
    return isinstance(value, str) and value in names


def dicts(head: Any) -> list[dict[str, Any]]:
    return [value for value in head if isinstance(value, dict)] if isinstance(head, list) else []
