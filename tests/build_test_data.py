#!/usr/bin/env python3
"""Rebuild the part of tests/data that comes from ../shared.

The tests must pass in a bare clone, where ../shared is not beside the repo, so what they
read is copied here (never linked): the real transcripts of ../shared/realdata, each with
its provenance entry, two large JSON arrays cut to their first records, and the archive
generator of ../shared/bench. ``tests/test_fixtures.py`` checks, whenever ../shared is
beside the repo, that every copy still matches its source. ``tests/data/found/`` (real
transcripts from elsewhere, with their own provenance) is left as it is. This script is
only needed to change the fixtures.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
SHARED = TESTS.parents[1] / "shared"
REALDATA = SHARED / "realdata"
GENERATOR = SHARED / "bench" / "gen_archive.py"
#: JSON arrays too large to keep whole -> the records kept (the first ones)
TRIMMED = {
    "openai_messages/llamafactory__kto_en_demo.json": 100,
    "sharegpt/llamafactory__glaive_toolcall_en_demo.json": 100,
}
#: How an indented JSON array (two-space records, as these files are written) is cut.
RECORD_BREAK = b"\n  },\n  {"


def first_records(data: bytes, count: int) -> bytes:
    """The first ``count`` records of an indented JSON array, as the array's own bytes.

    The array is cut after a record's closing brace, so every byte kept is the source's.
    """
    end = -1
    for _ in range(count):
        end = data.index(RECORD_BREAK, end + 1)
    return data[: end + len(b"\n  }")] + b"\n]\n"


def provenance_entries() -> dict[str, str]:
    text = (REALDATA / "PROVENANCE.md").read_text()
    return {block.split("`", 2)[1]: "### " + block.strip() for block in text.split("### ")[1:]}


def main() -> None:
    if (DATA / "realdata").exists():
        shutil.rmtree(DATA / "realdata")
    entries = provenance_entries()
    notes = [
        "# Where the test fixtures come from",
        "",
        "`realdata/` holds the transcripts of `../shared/realdata` (public repositories, none written",
        "for this project), copied byte for byte with each one's entry of `../shared/realdata/PROVENANCE.md`",
        "below; the two noted as trimmed keep the first records of the array, their bytes unchanged.",
        "`gen_archive.py` is `../shared/bench/gen_archive.py`, the project's own deterministic generator",
        "of synthetic archives, copied as it is. Rebuilt by `tests/build_test_data.py`. Transcripts",
        "found elsewhere are in `found/`, with their provenance in `found/PROVENANCE.md`.",
        "",
    ]
    for relative in sorted(entries):
        data = (REALDATA / relative).read_bytes()
        kept = TRIMMED.get(relative)
        if kept is not None:
            data = first_records(data, kept)
        target = DATA / "realdata" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        notes.append(entries[relative])
        if kept is not None:
            notes.append(f"- trimmed here: the first {kept} records of the array, {len(data)} bytes")
        notes.append("")
    generator = GENERATOR.read_bytes()
    (DATA / "gen_archive.py").write_bytes(generator)
    notes += [
        "### `gen_archive.py`",
        "- source: `../shared/bench/gen_archive.py` (the project's shared material)",
        f"- sha256: {hashlib.sha256(generator).hexdigest()}",
        "",
    ]
    (DATA / "PROVENANCE.md").write_text("\n".join(notes))


if __name__ == "__main__":
    main()
