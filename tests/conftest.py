"""Shared helpers: the reference harvester as an in-process oracle, and our job.

Everything the tests read lives in the repo (``tests/data``, ``tests/golden``,
``examples/archive``) except the reference harvester, which sits in ``../shared/reference``
beside our clones and CI, never in a user's clone. Tests that need it take the ``reference``
fixture: it skips them, with the reason, where the reference is missing, and fails them
under CI (``CI=true``), so that CI never passes without the differential tests.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import zstandard

from jobs.discover import find_session_files
from jobs.outputs import Outputs
from jobs.pairs_job import PairRules, run

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE_PATH = SHARED / "reference" / "session_pair_harvester.py"
EXAMPLE_ARCHIVE = REPO / "examples" / "archive"
TEST_DATA = REPO / "tests" / "data"
#: real transcripts, copied from ../shared/realdata (tests/data/PROVENANCE.md)
REALDATA = TEST_DATA / "realdata"
#: real transcripts found elsewhere (tests/data/found/PROVENANCE.md)
FOUND = TEST_DATA / "found"
#: the synthetic archive generator, copied from ../shared/bench
ARCHIVE_GENERATOR = TEST_DATA / "gen_archive.py"
REFERENCE_STATS = (
    "files_scanned",
    "raw_pairs",
    "unique_pairs",
    "duplicates_removed",
    "avg_prompt_words",
    "avg_response_words",
    "avg_ratio",
)


def load_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("session_pair_harvester", REFERENCE_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@contextlib.contextmanager
def local_ray_instance() -> Iterator[None]:
    """A local 2-CPU Ray instance for a module's tests (the engine uses the driver's as it
    is). Without ray (the ray extra) its tests skip, and fail under CI, which installs it."""
    from jobs import ray_engine  # noqa: PLC0415 (keeps Ray's uv hook off before ray loads)

    if not ray_engine.ray_installed():
        if in_ci():
            pytest.fail("CI=true, but ray (the ray extra) is not installed", pytrace=False)
        pytest.skip(f"the Ray engine's tests need ray: {ray_engine.INSTALL_HINT}")
    import ray  # noqa: PLC0415

    ray.init("local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


#: A file that says it is a SQLite database, and is not one.
CORRUPT_DATABASE = b"SQLite format 3\x00" + b"\x13" * 4000


def write_compressed_copies(folder: Path) -> None:
    """Into ``folder``: a real Claude Code session gzipped and a real FastChat document
    zstd-compressed, each named with its compression's suffix."""
    folder.mkdir()
    claude = REALDATA / "claude_code" / "claude-code-transcripts__sample_session.jsonl"
    (folder / "claude.jsonl.gz").write_bytes(gzip.compress(claude.read_bytes()))
    fastchat = REALDATA / "sharegpt" / "fastchat__dummy_conversation.json"
    (folder / "fastchat.json.zst").write_bytes(zstandard.ZstdCompressor().compress(fastchat.read_bytes()))


def require_shared(path: Path, what: str) -> None:
    """Skip the calling test, saying why, when ``path`` of ../shared is missing; under CI, fail it."""
    if path.exists():
        return
    reason = f"{what} needs ../{path.relative_to(SHARED.parent)}, which is not beside the repo"
    if in_ci():
        pytest.fail(f"CI=true, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def reference() -> ModuleType:
    """The reference harvester, loaded from ../shared."""
    require_shared(REFERENCE_PATH, "a differential test against the reference harvester")
    return load_reference()


def run_reference(
    reference: ModuleType, target: Path, out_file: Path, *, min_ratio: float = 1.5, min_words: int = 20
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the reference's own ``main()`` in this process; return its stats and records."""
    argv = [
        "session_pair_harvester.py",
        str(target),
        "-o",
        str(out_file),
        "--min-ratio",
        repr(min_ratio),
        "--min-words",
        str(min_words),
    ]
    stderr = io.StringIO()
    old_argv = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stderr(stderr):
            reference.main()
    finally:
        sys.argv = old_argv
    text = stderr.getvalue()
    stats_text = text[text.index("{") : text.index("}") + 1]
    records = [json.loads(line) for line in out_file.read_text().split("\n") if line]
    return json.loads(stats_text), records


def run_ours(
    target: Path,
    out_dir: Path,
    *,
    min_ratio: float = 1.5,
    min_words: int = 20,
    batch_bytes: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run our job into ``out_dir``; return stats.json and the records of pairs.jsonl."""
    files = find_session_files([target])
    rules = PairRules(min_ratio=min_ratio, min_words=min_words)
    with Outputs(out_dir) as outputs:
        if batch_bytes is None:
            stats, _ = run(files, rules, outputs)
        else:
            stats, _ = run(files, rules, outputs, batch_bytes=batch_bytes)
        outputs.commit(stats.as_dict())
    records = [json.loads(line) for line in (out_dir / "pairs.jsonl").read_text().split("\n") if line]
    return json.loads((out_dir / "stats.json").read_text()), records


def compound(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """The ``compound`` command line in this process, as a user runs it: its exit code."""
    from jobs.cli import main  # noqa: PLC0415 (the CLI module is heavy; most tests need none of it)

    monkeypatch.setattr(sys, "argv", ["compound", *args])
    try:
        main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0
