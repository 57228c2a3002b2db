"""The canonical message table's shared parsers."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_series_equal

from transforms.schema import parse_timestamp


def test_epoch_numbers_are_read_by_their_size_and_nonsense_is_null() -> None:
    stamps = pl.DataFrame(
        {
            "raw": [
                "1735000000",
                "1735000000.5",
                "1735000000000",  # milliseconds
                "1735000000000000",  # microseconds
                "1735000000000000000",  # nanoseconds
                "2024-12-24T00:26:40Z",
                "2024-12-24T02:26:40+02:00",
                "1e300",
                "NaN",
                "inf",
                "yesterday",
                None,
            ]
        }
    )
    at = datetime(2024, 12, 24, 0, 26, 40, tzinfo=UTC)
    expected = pl.Series(
        "timestamp",
        [at, at.replace(microsecond=500_000), at, at, at, at, at, None, None, None, None, None],
        pl.Datetime("us", "UTC"),
    )
    assert_series_equal(
        stamps.select(parse_timestamp(pl.col("raw")).alias("timestamp")).to_series(), expected
    )
