"""The run's kept dedup keys: a growing set, looked up a batch at a time."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from jobs.seen_keys import SeenKeys

KEYS = st.integers(0, 2**64 - 1)


@given(st.lists(st.lists(st.one_of(KEYS, st.integers(0, 40), st.none()), max_size=30), max_size=25))
def test_lookups_answer_as_a_set_of_everything_added(batches: list[list[int | None]]) -> None:
    seen, expected = SeenKeys(), set()
    for batch in batches:
        keys = pl.Series("dedup_key", batch, dtype=pl.UInt64)
        assert seen.contains(keys).to_list() == [key is not None and key in expected for key in batch]
        seen.add(keys)
        expected |= {key for key in batch if key is not None}
    assert len(seen) <= sum(len(batch) for batch in batches)


def test_runs_stay_few_as_batches_come() -> None:
    seen = SeenKeys()
    for start in range(0, 100_000, 1_000):
        seen.add(pl.Series(range(start, start + 1_000), dtype=pl.UInt64))
    assert seen.runs <= 7  # log2(100 batches)
    assert seen.contains(pl.Series([0, 99_999, 100_000], dtype=pl.UInt64)).to_list() == [True, True, False]
