"""The fixtures in tests/data are what their provenance says they are."""

from __future__ import annotations

from tests.build_test_data import GENERATOR, TRIMMED, first_records, provenance_entries
from tests.build_test_data import REALDATA as SHARED_REALDATA
from tests.conftest import ARCHIVE_GENERATOR, REALDATA, TEST_DATA, require_shared

FIXTURES = sorted(path.relative_to(REALDATA).as_posix() for path in REALDATA.rglob("*") if path.is_file())


def test_every_fixture_names_its_source() -> None:
    provenance = (TEST_DATA / "PROVENANCE.md").read_text()
    assert FIXTURES
    for relative in FIXTURES:
        entry = provenance.split(f"### `{relative}`\n", 1)[1].split("\n### ", 1)[0]
        for field in ("- source repo: https://github.com/", "- path: ", "- commit: ", "- license: "):
            assert field in entry, (relative, field)
    assert "### `gen_archive.py`" in provenance


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
