"""The fixtures in tests/data are what their provenance says they are."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.build_test_data import GENERATOR, TRIMMED, first_records, provenance_entries
from tests.build_test_data import REALDATA as SHARED_REALDATA
from tests.conftest import ARCHIVE_GENERATOR, FOUND, REALDATA, require_shared


def _relative_files(folder: Path) -> list[str]:
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.name != "PROVENANCE.md"
    )


FIXTURES = _relative_files(REALDATA)


@pytest.mark.parametrize("folder", [REALDATA, FOUND], ids=["realdata", "found"])
def test_every_fixture_names_its_source(folder: Path) -> None:
    provenance = (folder.parent if folder == REALDATA else folder).joinpath("PROVENANCE.md").read_text()
    assert _relative_files(folder)
    for relative in _relative_files(folder):
        entry = provenance.split(f"### `{relative}`\n", 1)[1].split("\n### ", 1)[0]
        for field in ("- source repo: https://github.com/", "- path: ", "- commit: ", "- license: "):
            assert field in entry, (relative, field)
    assert folder == FOUND or "### `gen_archive.py`" in provenance


def test_every_fixture_is_its_source() -> None:
    """Byte for byte, or the source's first records where the provenance says trimmed."""
    require_shared(SHARED_REALDATA, "checking the fixtures against their sources")
    assert sorted(provenance_entries()) == FIXTURES
    for relative in FIXTURES:
        expected = (SHARED_REALDATA / relative).read_bytes()
        if relative in TRIMMED:
            expected = first_records(expected, TRIMMED[relative])
        assert (REALDATA / relative).read_bytes() == expected, (
            f"{relative}: tests/build_test_data.py rebuilds it"
        )


def test_generator_is_the_shared_one() -> None:
    require_shared(GENERATOR, "checking the archive generator against its source")
    assert ARCHIVE_GENERATOR.read_bytes() == GENERATOR.read_bytes()


def test_found_transcripts_are_as_copied() -> None:
    """Their sources are not beside the repo: the sha256 in the provenance guards them."""
    provenance = (FOUND / "PROVENANCE.md").read_text()
    for relative in _relative_files(FOUND):
        entry = provenance.split(f"### `{relative}`\n", 1)[1].split("\n### ", 1)[0]
        digest = hashlib.sha256((FOUND / relative).read_bytes()).hexdigest()
        assert f"sha256: {digest}" in entry, relative
