"""Output files, written under temporary names and renamed into place at the end."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

PAIRS_JSONL = "pairs.jsonl"
PAIRS_PARQUET = "pairs.parquet"
STATS_JSON = "stats.json"
QUARANTINE_JSONL = "quarantine.jsonl"

#: The fields of a training pair, in the reference's order.
JSONL_FIELDS = ("terse", "rich", "source", "model")

PAIRS_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("terse", pa.large_string()),
        ("rich", pa.large_string()),
        ("source", pa.string()),
        ("model", pa.string()),
        ("prompt_words", pa.int64()),
        ("response_words", pa.int64()),
        ("ratio", pa.float64()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("turn", pa.int32()),
    ]
)
PARQUET_ROW_GROUP_ROWS = 64 * 1024


class Outputs:
    """Writes one run's outputs into a scratch folder inside ``out_dir``; ``commit`` moves
    each into place with an atomic rename. Leaving the context without a commit removes
    the scratch folder and leaves the previous outputs as they were."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._scratch: Path | None = None
        self._jsonl: IO[bytes] | None = None
        self._quarantine: IO[bytes] | None = None
        self._parquet: pq.ParquetWriter | None = None

    def __enter__(self) -> Outputs:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._scratch = Path(tempfile.mkdtemp(prefix=".compound-", dir=self.out_dir))
        self._jsonl = (self._scratch / PAIRS_JSONL).open("wb")
        self._quarantine = (self._scratch / QUARANTINE_JSONL).open("wb")
        self._parquet = pq.ParquetWriter(self._scratch / PAIRS_PARQUET, PAIRS_SCHEMA, compression="zstd")
        return self

    def write_pairs(self, pairs: pl.DataFrame) -> None:
        assert self._jsonl is not None
        assert self._parquet is not None
        if pairs.is_empty():
            return
        pairs.select(JSONL_FIELDS).write_ndjson(self._jsonl)
        table = pairs.select(PAIRS_SCHEMA.names).to_arrow().cast(PAIRS_SCHEMA)
        self._parquet.write_table(table, row_group_size=PARQUET_ROW_GROUP_ROWS)

    def write_quarantine(self, rows: pl.DataFrame) -> None:
        assert self._quarantine is not None
        if not rows.is_empty():
            rows.write_ndjson(self._quarantine)

    def commit(self, stats: dict[str, Any]) -> None:
        """Close every file and rename it over the previous output."""
        assert self._scratch is not None
        self._close()
        (self._scratch / STATS_JSON).write_text(json.dumps(stats, indent=2) + "\n")
        for name in (PAIRS_JSONL, PAIRS_PARQUET, QUARANTINE_JSONL, STATS_JSON):
            (self._scratch / name).replace(self.out_dir / name)

    def _close(self) -> None:
        for handle in (self._jsonl, self._quarantine):
            if handle is not None:
                handle.close()
        if self._parquet is not None:
            self._parquet.close()
        self._jsonl = self._quarantine = None
        self._parquet = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
