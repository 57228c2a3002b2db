"""``compound compact``: an incremental dataset's parts merged into one file per output."""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from jobs.incremental import State, StateError, lock_state
from jobs.outputs import PARQUET_COMPRESSIONS, PARQUET_OUTPUTS, _ParquetSink

#: The outputs whose parts are merged (``runs/``, a run's figures each, stays as it is).
MERGED = ("pairs", "candidates", "messages", "quarantine")
_RUNS = re.compile(r"part-(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class Merged:
    folder: str
    parts: int
    into: str


def _runs(name: str) -> tuple[int, int]:
    """The first and last run a part holds (``part-000003``, ``part-000001-000007``)."""
    found = _RUNS.match(Path(name).name.split(".", 1)[0])
    if found is None:
        raise StateError(f"unexpected part name {name!r}")
    first = int(found.group(1))
    return first, int(found.group(2) or first)


def _codec(path: Path) -> str:
    """The codec the part was written with, so that the merged file keeps it."""
    metadata = pq.ParquetFile(path).metadata
    if metadata.num_row_groups == 0 or metadata.num_columns == 0:
        return PARQUET_COMPRESSIONS[0]
    codec = metadata.row_group(0).column(0).compression.lower()
    return {"uncompressed": "none"}.get(
        codec, codec if codec in PARQUET_COMPRESSIONS else PARQUET_COMPRESSIONS[0]
    )


def _merge_parquet(name: str, sources: list[Path], target: Path) -> None:
    """The parts' rows, in order, one row group read at a time, into full row groups."""
    schema = PARQUET_OUTPUTS[name]
    if "=" in target.parent.name:  # a Hive partition's files leave its column out
        schema = schema.remove(schema.get_field_index(target.parent.name.split("=", 1)[0]))
    sink = _ParquetSink(target, schema, None, _codec(sources[0]))
    for source in sources:
        parquet = pq.ParquetFile(source)
        for group in range(parquet.num_row_groups):
            frame = pl.from_arrow(parquet.read_row_group(group))
            assert isinstance(frame, pl.DataFrame)
            sink.write(frame)
    sink.close()


def _merge_lines(sources: list[Path], target: Path) -> None:
    with target.open("wb") as merged:
        for source in sources:
            with source.open("rb") as part:
                shutil.copyfileobj(part, merged, 8 << 20)


def compact(out_dir: Path) -> list[Merged]:
    """Merge each output's parts (per partition and per kind) into one, committed as a
    run commits: the merged file is written beside the parts, ``state.json`` then names
    it instead of them (the commit point), and the parts are removed. Raises StateError
    for a folder without an incremental dataset, or one a run is writing into."""
    if not (out_dir / ".incremental" / "state.json").is_file():
        raise StateError(f"{out_dir} holds no incremental dataset (made by `compound pairs --incremental`)")
    lock = lock_state(out_dir)
    try:
        state = State.load(out_dir)
        done = []
        for folder in MERGED:
            groups: dict[tuple[str, str], list[str]] = defaultdict(list)
            for part in state.parts.get(folder, []):
                path = Path(part)
                groups[(path.parent.as_posix(), "".join(path.suffixes))].append(part)
            kept: list[str] = []
            for (parent, suffix), parts in groups.items():
                if len(parts) < 2:
                    kept += parts
                    continue
                ordered = sorted(parts, key=_runs)
                first, last = _runs(ordered[0])[0], _runs(ordered[-1])[1]
                merged = f"{parent}/part-{first:06d}-{last:06d}{suffix}".removeprefix("./")
                sources = [out_dir / folder / part for part in ordered]
                target = out_dir / folder / merged
                if suffix == ".parquet":
                    _merge_parquet(folder, sources, target)
                else:
                    _merge_lines(sources, target)
                kept.append(merged)
                done.append(Merged(folder, len(parts), merged))
            state.parts[folder] = sorted(kept)
        if done:
            assert state.rules is not None
            state.save(state.rules)
            state.remove_unreferenced()
        return done
    finally:
        os.close(lock)
