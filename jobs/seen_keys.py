"""The dedup keys of every pair a run has kept so far: the only state that crosses batches."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl


class SeenKeys:
    """A growing set of 64-bit keys, looked up a batch at a time.

    Rebuilding a hash set of every key so far for each batch (what ``is_in`` does with
    the run's keys) costs the whole run so far per batch: quadratic in the archive,
    300 ms a batch once 10 million pairs are kept (about 30 GB in). Here the keys are
    sorted runs of decreasing size, merged like the digits of a binary counter: a
    lookup is a binary search in each of the O(log n) runs, and each key takes part in
    O(log n) merges.
    """

    def __init__(self) -> None:
        self._runs: list[npt.NDArray[np.uint64]] = []

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    @property
    def runs(self) -> int:
        """How many sorted runs a lookup searches: at most log2 of the keys per batch."""
        return len(self._runs)

    def contains(self, keys: pl.Series) -> pl.Series:
        """For each key, whether it was added before (false for null).

        The keys are looked up in sorted order: numpy's binary search starts each needle
        where the previous one ended, which makes a batch's lookups 3x cheaper than in
        the order given (0.19 -> 0.06 s over the 1 GB bench archive's batches).
        """
        wanted = keys.fill_null(0).to_numpy().astype(np.uint64, copy=False)
        order = np.argsort(wanted)
        ascending = wanted[order]
        found_ascending = np.zeros(len(wanted), dtype=np.bool_)
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, ascending), len(run) - 1)
            found_ascending |= run[at] == ascending
        found = np.empty_like(found_ascending)
        found[order] = found_ascending
        return pl.Series(keys.name, found) & keys.is_not_null()

    def add(self, keys: pl.Series) -> None:
        run = np.sort(keys.drop_nulls().to_numpy().astype(np.uint64, copy=False))
        if not len(run):
            return
        while self._runs and len(self._runs[-1]) <= len(run):
            run = np.sort(np.concatenate((self._runs.pop(), run)), kind="stable")
        self._runs.append(run)
