"""The persistent dedup key index: sorted segments on disk, the run's keys in memory."""

from __future__ import annotations

import itertools
import mmap
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from unittest import mock

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs import key_index
from jobs.key_index import FENCE_STEP, KeyIndex, write_segment

KEYS = st.integers(0, 2**64 - 1)
EDGES = st.sampled_from([0, 1, 2**63, 2**64 - 2, 2**64 - 1])
BATCHES = st.lists(st.lists(st.one_of(KEYS, st.integers(0, 40), EDGES, st.none()), max_size=30), max_size=25)


def series(keys: Sequence[int | None]) -> pl.Series:
    return pl.Series("dedup_key", keys, dtype=pl.UInt64)


def files(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the directory: its bytes and modification time."""
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(directory.iterdir())}


def segment_files(names: list[str]) -> set[str]:
    return {f"{name}{suffix}" for name in names for suffix in (".keys", ".fence")}


@settings(deadline=None, max_examples=60)
@given(BATCHES, st.sets(st.integers(0, 24)), st.integers(1, 7))
def test_lookups_answer_as_a_set_across_spills_flushes_and_reopening(
    batches: list[list[int | None]], flush_after: set[int], spill_keys: int
) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        index, expected = KeyIndex(directory, spill_keys=spill_keys), set()
        for number, batch in enumerate(batches):
            keys = series(batch)
            assert index.contains(keys).to_list() == [key is not None and key in expected for key in batch]
            index.add(keys)
            expected |= {key for key in batch if key is not None}
            if number in flush_after:
                names = index.flush()
                index.close()
                index = KeyIndex(directory, names, spill_keys=spill_keys)
        names = index.flush()
        assert len(index) >= len(expected)
        index.close()
        # only the listed segments are needed (and only spills merged away were deleted)
        reopened = KeyIndex(directory, names)
        probes = [*sorted(expected), 0, 1, 2**64 - 1, 2**63, 41, None]
        assert reopened.contains(series(probes)).to_list() == [
            key is not None and key in expected for key in probes
        ]
        sizes = [segment_length(directory, name) for name in names]
        assert all(2 * newer < older for older, newer in itertools.pairwise(sizes))
        assert len(reopened) == sum(sizes)
        reopened.close()


def segment_length(directory: Path, name: str) -> int:
    return (directory / f"{name}.keys").stat().st_size // 8


def test_committed_segments_are_never_modified_or_deleted(tmp_path: Path) -> None:
    committed = [
        write_segment(tmp_path, np.arange(0, 4_000, 2, dtype=np.uint64)),
        write_segment(tmp_path, np.arange(1, 2_000, 2, dtype=np.uint64)),
    ]
    before = files(tmp_path)
    index = KeyIndex(tmp_path, committed, spill_keys=100)
    for start in range(10_000, 20_000, 250):
        index.add(series(range(start, start + 250)))
    names = index.flush()
    # the new keys outgrew the committed segments, which were merged away: still on disk
    assert not set(committed) & set(names)
    after = files(tmp_path)
    assert {name: after[name] for name in before} == before
    assert set(after) == set(before) | segment_files(names)
    wanted = series([0, 1, 3_998, 3_999, 1_999, 9_999, 10_000, 19_999, 20_000])
    assert index.contains(wanted).to_list() == [True, True, True, False, True, False, True, True, False]
    index.close()


def test_listed_segments_become_the_callers_after_flush(tmp_path: Path) -> None:
    index = KeyIndex(tmp_path, spill_keys=1_000)
    index.add(series(range(500)))
    first = index.flush()
    listed = files(tmp_path)
    index.add(series(range(1_000, 1_600)))  # spills and merges the flushed segment away
    second = index.flush()
    assert not set(first) & set(second)
    after = files(tmp_path)
    assert {name: after[name] for name in listed} == listed
    assert set(after) == set(listed) | segment_files(second)
    index.close()


def test_many_small_spills_end_in_logarithmically_many_segments(tmp_path: Path) -> None:
    index = KeyIndex(tmp_path, spill_keys=10)
    for start in range(0, 10_000, 10):
        index.add(series(range(start, start + 10)))
        assert len(index.segment_names) <= 11  # log2(1,000 spills) + 1
    names = index.flush()
    sizes = [segment_length(tmp_path, name) for name in names]
    assert sum(sizes) == len(index) == 10_000
    assert all(2 * newer < older for older, newer in itertools.pairwise(sizes))
    # spills merged away before any flush listed them are deleted
    assert {path.name for path in tmp_path.iterdir()} == segment_files(names)
    assert index.contains(series([0, 9_999, 10_000])).to_list() == [True, True, False]
    index.close()


@pytest.mark.parametrize(("added", "sizes"), [(99_656, [200_000, 99_999]), (99_657, [300_000])])
def test_a_large_segment_is_not_merged_with_a_much_smaller_one(
    tmp_path: Path, added: int, sizes: list[int]
) -> None:
    # 200 M keys and then a run of 343 K, to scale
    large = write_segment(tmp_path, np.arange(200_000, dtype=np.uint64) * 3 + np.uint64(2))
    index = KeyIndex(tmp_path, [large], spill_keys=1_000)
    index.add(series(range(1, 1_030, 3)))
    names = index.flush()
    assert names[0] == large
    assert [segment_length(tmp_path, name) for name in names] == [200_000, 343]
    index.close()
    # merged only once the newer keys are half as many
    index = KeyIndex(tmp_path, names, spill_keys=1_000_000)
    index.add(series(range(10**9, 10**9 + added)))
    names = index.flush()
    assert [segment_length(tmp_path, name) for name in names] == sizes
    assert (large in names) == (len(sizes) == 2)
    assert index.contains(series([2, 1, 1_027, 10**9, 0])).to_list() == [True, True, True, True, False]
    index.close()


@pytest.mark.parametrize("window", [key_index.PROBE_WINDOW, mmap.PAGESIZE])
@pytest.mark.parametrize("length", [0, 1, 2, 511, 512, 513, 1_023, 1_024, 1_025, 5_000])
def test_segments_are_found_whatever_their_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, length: int, window: int
) -> None:
    monkeypatch.setattr(key_index, "PROBE_WINDOW", window)  # one page: each page its own window
    rng = np.random.default_rng(length)
    keys = np.unique(rng.integers(0, 2**64, size=length, dtype=np.uint64, endpoint=False))
    keys[-1:] = 2**64 - 1
    keys[:1] = 0
    keys = np.unique(keys)
    name = write_segment(tmp_path, keys)
    fence = np.fromfile(tmp_path / f"{name}.fence", dtype="<u8")
    assert np.array_equal(fence, keys[::FENCE_STEP])
    assert np.array_equal(np.fromfile(tmp_path / f"{name}.keys", dtype="<u8"), keys)
    index = KeyIndex(tmp_path, [name])
    assert len(index) == len(keys)
    absent = np.setdiff1d(
        np.concatenate((keys[:-1] + np.uint64(1), keys[1:] - np.uint64(1), np.array([2**63], np.uint64))),
        keys,
    )
    probes = np.concatenate((keys, absent))
    rng.shuffle(probes)
    found = index.contains(pl.Series("dedup_key", probes)).to_numpy()
    assert np.array_equal(found, np.isin(probes, keys))
    index.close()


@settings(deadline=None, max_examples=60)
@given(
    st.lists(st.sets(st.one_of(st.integers(0, 300), KEYS), min_size=1, max_size=120), min_size=2, max_size=4),
    st.integers(1, 9),
)
def test_merges_write_the_union_whatever_the_chunks(segments: list[set[int]], chunk: int) -> None:
    """Overlapping segments merged down to one, read ``chunk`` keys at a time."""
    segments.sort(key=len, reverse=True)
    with tempfile.TemporaryDirectory() as temporary, mock.patch.object(key_index, "MERGE_CHUNK", chunk):
        directory = Path(temporary)
        names = [write_segment(directory, np.array(sorted(keys), dtype=np.uint64)) for keys in segments[:-1]]
        # the newest (smallest) comes as the run's keys: its spill merges all of them
        index = KeyIndex(directory, names, spill_keys=10**6)
        index.add(series(sorted(segments[-1])))
        union = sorted(set().union(*segments))
        merged = index.flush()
        written = np.fromfile(directory / f"{merged[-1]}.keys", dtype="<u8")
        if len(merged) == 1:
            assert written.tolist() == union
            assert np.fromfile(directory / f"{merged[0]}.fence", dtype="<u8").tolist() == union[::FENCE_STEP]
        probes = [*union, 301, 2**64 - 1]
        assert index.contains(series(probes)).to_list() == [key in set(union) for key in probes]
        index.close()


def test_write_segment_refuses_unsorted_or_repeated_keys(tmp_path: Path) -> None:
    for keys in ([1, 3, 2], [1, 2, 2]):
        with pytest.raises(ValueError, match="sorted ascending and unique"):
            write_segment(tmp_path, np.array(keys, dtype=np.uint64))
    with pytest.raises(ValueError, match="uint64"):
        write_segment(tmp_path, np.array([1, 2], dtype=np.int64))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_write_segment_streams_a_memmap(tmp_path: Path, mode: Literal["r", "r+", "c"]) -> None:
    source = np.memmap(tmp_path / "source", dtype=np.uint64, mode="w+", shape=(1_500_001,))
    source[:] = np.arange(1_500_001, dtype=np.uint64) * 7
    source.flush()
    del source
    # from the second key: not at a page's start; across MERGE_CHUNK boundaries
    mapped = np.memmap(tmp_path / "source", dtype=np.uint64, mode=mode, offset=8)
    if mode == "c":
        mapped[-1] += 1  # a change of this process's only: dropping the pages would lose it
    name = write_segment(tmp_path, mapped[1:])
    expected = np.arange(2, 1_500_001, dtype=np.uint64) * 7
    expected[-1] += mode == "c"
    assert np.array_equal(mapped[1:], expected)
    assert np.array_equal(np.fromfile(tmp_path / f"{name}.keys", dtype="<u8"), expected)
    index = KeyIndex(tmp_path, [name])
    wanted = series([7, 14, 15, 7 * 1_499_999, 7 * 1_500_000])
    assert index.contains(wanted).to_list() == [False, True, False, True, mode != "c"]
    index.close()
