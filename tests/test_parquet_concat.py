"""Parquet files joined without decoding them (``jobs.parquet_concat``): the rows of every
part in order, the schema and statistics as written, readable by pyarrow and polars."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from jobs.outputs import CANDIDATES_SCHEMA, PAIRS_SCHEMA, EncodedBatch, Outputs, encode_parquet
from jobs.parquet_concat import ParquetConcat, ParquetConcatError


def joined(parts: list[bytes]) -> bytes:
    out = io.BytesIO()
    concat = ParquetConcat(out)
    for part in parts:
        concat.append(part)
    concat.close()
    return out.getvalue()


def frame(start: int, rows: int) -> pl.DataFrame:
    """Rows of every kind of column the outputs hold: unsigned keys, timestamps, lists,
    nulls, large strings, booleans."""
    return pl.DataFrame(
        {
            "pair_id": [f"{i:016x}" for i in range(start, start + rows)],
            "kept": [i % 3 != 0 for i in range(start, start + rows)],
            "reject_reason": [None if i % 3 else "duplicate" for i in range(start, start + rows)],
            "failed": [[] if i % 3 else ["duplicate", "low_ratio"] for i in range(start, start + rows)],
            "turn": pl.Series(range(start, start + rows), dtype=pl.Int32),
            "timestamp": pl.Series(range(start, start + rows), dtype=pl.Datetime("us", "UTC")),
            "dedup_key": pl.Series([2**63 + i for i in range(start, start + rows)], dtype=pl.UInt64),
            "response_head": ["é" * (i % 5) for i in range(start, start + rows)],
        }
    )


def parts_of(frames: list[pl.DataFrame], schema: pa.Schema) -> list[bytes]:
    encoded = [encode_parquet(f, schema, None, "zstd") for f in frames]
    return [data for files in encoded for _, data in files]


CANDIDATE_COLUMNS = [
    "pair_id",
    "kept",
    "reject_reason",
    "failed",
    "turn",
    "timestamp",
    "dedup_key",
    "response_head",
]
SCHEMA = pa.schema([CANDIDATES_SCHEMA.field(name) for name in CANDIDATE_COLUMNS])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20))
def test_the_rows_of_every_part_in_order(sizes: list[int]) -> None:
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    frames = [frame(start, rows) for start, rows in zip(starts, sizes, strict=True)]
    data = joined(parts_of(frames, SCHEMA))
    expected = pl.concat(frames)
    assert_frame_equal(pl.read_parquet(data), expected)
    table = pq.read_table(pa.BufferReader(data))
    assert table.schema.equals(SCHEMA)
    assert table.num_rows == expected.height
    assert pq.ParquetFile(pa.BufferReader(data)).metadata.num_row_groups == len(sizes)


def test_statistics_still_prune_row_groups() -> None:
    """A filter on a column with statistics reads the row groups that can match: their
    min/max moved with them."""
    data = joined(parts_of([frame(0, 10), frame(10, 10), frame(20, 10)], SCHEMA))
    metadata = pq.ParquetFile(pa.BufferReader(data)).metadata
    turns = [metadata.row_group(i).column(4).statistics for i in range(3)]
    assert [(s.min, s.max) for s in turns] == [(0, 9), (10, 19), (20, 29)]
    assert pl.read_parquet(data).filter(pl.col("turn") >= 25)["turn"].to_list() == [25, 26, 27, 28, 29]


def test_many_row_groups_and_a_part_of_many() -> None:
    """More than 15 row groups (a list's long header) in the file and in one part."""
    one = frame(0, 40)
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, SCHEMA) as writer:
        writer.write_table(one.to_arrow().cast(SCHEMA), row_group_size=2)
    data = joined([sink.getvalue(), *parts_of([frame(40, 3)] * 5, SCHEMA)])
    assert pq.ParquetFile(pa.BufferReader(data)).metadata.num_row_groups == 25
    assert pl.read_parquet(data).height == 55


def test_a_part_of_another_schema_or_not_parquet_is_refused() -> None:
    out = io.BytesIO()
    concat = ParquetConcat(out)
    concat.append(parts_of([frame(0, 3)], SCHEMA)[0])
    other = pa.schema([CANDIDATES_SCHEMA.field(name) for name in CANDIDATE_COLUMNS[:-1]])
    with pytest.raises(ParquetConcatError, match="schema"):
        concat.append(parts_of([frame(0, 3).drop("response_head")], other)[0])
    with pytest.raises(ParquetConcatError, match="not a Parquet file"):
        concat.append(b"PAR1 this is not one")
    with pytest.raises(ParquetConcatError, match="no Parquet part"):
        ParquetConcat(io.BytesIO()).close()


PAIRS = pl.DataFrame(
    {
        "pair_id": ["a", "b", "c"],
        "terse": ["hi", "yo", "hey"],
        "rich": ["long answer"] * 3,
        "source": ["s1", "s2", "s3"],
        "model": ["m", None, "m"],
        "format": ["sharegpt"] * 3,
        "prompt_words": [1, 1, 1],
        "response_words": [2, 2, 2],
        "ratio": [2.0, 2.0, 2.0],
        "file": ["f"] * 3,
        "line": [1, 2, None],
        "conversation": [0, 1, 2],
        "turn": pl.Series([1, 1, 1], dtype=pl.Int32),
        "timestamp": pl.Series([None, 5, 6], dtype=pl.Datetime("us", "UTC")),
    }
)


def test_outputs_of_encoded_batches_read_as_written_ones(tmp_path: Path) -> None:
    """``Outputs.write_encoded``'s pairs.parquet holds the rows ``write_pairs`` writes, in
    the same schema; with no batch, an empty file of that schema."""
    pairs = PAIRS
    written, appended, empty = tmp_path / "written", tmp_path / "appended", tmp_path / "empty"
    with Outputs(written) as outputs:
        outputs.write_pairs(pairs)
        outputs.commit({})
    with Outputs(appended) as outputs:
        for rows in (pairs.head(1), pairs.tail(2)):
            encoded = encode_parquet(rows, PAIRS_SCHEMA, None, outputs.compression)
            outputs.write_encoded(EncodedBatch(jsonl=b"", quarantine=b"", parquet={"pairs": encoded}))
        outputs.commit({})
    with Outputs(empty) as outputs:
        outputs.commit({})
    assert_frame_equal(
        pl.read_parquet(appended / "pairs.parquet"), pl.read_parquet(written / "pairs.parquet")
    )
    assert pq.read_schema(appended / "pairs.parquet").equals(pq.read_schema(written / "pairs.parquet"))
    assert pq.read_table(empty / "pairs.parquet").num_rows == 0
    assert pq.read_schema(empty / "pairs.parquet").equals(pq.read_schema(written / "pairs.parquet"))


def test_partitioned_outputs_of_encoded_batches(tmp_path: Path) -> None:
    """With ``--partition-by model``, each value's file holds its rows of every batch,
    as the frames written give them."""
    pairs = PAIRS
    written, appended = tmp_path / "written", tmp_path / "appended"
    with Outputs(written, partition_by="model") as outputs:
        outputs.write_pairs(pairs)
        outputs.commit({})
    with Outputs(appended, partition_by="model") as outputs:
        for rows in (pairs.head(2), pairs.tail(1)):
            encoded = encode_parquet(rows, PAIRS_SCHEMA, "model", outputs.compression)
            outputs.write_encoded(EncodedBatch(jsonl=b"", quarantine=b"", parquet={"pairs": encoded}))
        outputs.commit({})
    for part in sorted((written / "pairs").rglob("*.parquet")):
        assert_frame_equal(pl.read_parquet(appended / part.relative_to(written)), pl.read_parquet(part))
    assert len(list((appended / "pairs").rglob("*.parquet"))) == 2
