"""Incremental runs: an archive grown step by step gives, over all runs, the pairs of full runs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from bench.shapes import STATE_DB_SCHEMA
from jobs import incremental
from jobs.incremental import STATE_DIR, STATE_JSON
from jobs.lines import universal_newlines
from tests.conftest import compound

RULES = ("--min-words", "1", "--min-ratio", "0")
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho"
VOCABULARY = WORDS.split()
FAMILIES = ("sharegpt", "claude_code", "hermes_session", "state_db", "sharegpt_array", "openhands")


def text(seed: int, words: int) -> str:
    return (
        " ".join(
            VOCABULARY[(seed * 7 + index * 3 + index * index) % len(VOCABULARY)] for index in range(words)
        )
        + f" {seed}"
    )


def turn(seed: int) -> tuple[str, str]:
    """A prompt and its answer; a seed under 4 repeats across files (a duplicate pair)."""
    return f"Question {seed}: {text(seed, 3)}?", f"Answer {seed}. " + text(seed + 1000, 12)


@dataclass
class Session:
    family: str
    name: str
    turns: list[int] = field(default_factory=list)


@dataclass
class Archive:
    """Session files of every layout family, rewritten from their turns after each step."""

    root: Path
    sessions: list[Session] = field(default_factory=list)

    def path(self, session: Session) -> Path:
        suffix = {
            "sharegpt": ".jsonl",
            "claude_code": ".jsonl",
            "hermes_session": ".json",
            "state_db": ".db",
            "sharegpt_array": ".json",
            "openhands": ".json",
        }
        return self.root / session.family / f"{session.name}{suffix[session.family]}"

    def write(self, session: Session, *, appended: int = 0) -> None:
        """The file as its agent writes it: lines appended (``appended`` new turns), a
        document rewritten, rows inserted."""
        path = self.path(session)
        path.parent.mkdir(parents=True, exist_ok=True)
        if session.family == "state_db":
            self._write_db(path, session, appended)
            return
        if session.family == "sharegpt_array":  # a dataset of chats as one JSON array
            chats = [json.loads(line) for seed in session.turns for line in self._lines(session, seed)]
            path.write_text(json.dumps(chats, indent=2))
            return
        if session.family == "openhands":  # one conversation's events as one JSON array
            events = [
                {"id": number, "source": source, "action": "message", "args": {"content": content}}
                for number, (source, content) in enumerate(
                    (source, content)
                    for seed in session.turns
                    for source, content in zip(("user", "agent"), turn(seed), strict=True)
                )
            ]
            path.write_text(json.dumps(events, indent=2))
            return
        if session.family == "hermes_session":
            messages = [
                message
                for seed in session.turns
                for message in (
                    {"role": "user", "content": turn(seed)[0]},
                    {"role": "assistant", "content": turn(seed)[1]},
                )
            ]
            document = {"session_id": session.name, "model": "m", "platform": "cli", "messages": messages}
            path.write_text(json.dumps(document, indent=2))
            return
        new = session.turns[len(session.turns) - appended :] if appended else session.turns
        lines = [line for seed in new for line in self._lines(session, seed)]
        with path.open("a" if appended else "w") as handle:
            handle.writelines(line + "\n" for line in lines)

    @staticmethod
    def _lines(session: Session, seed: int) -> list[str]:
        prompt, answer = turn(seed)
        if session.family in ("sharegpt", "sharegpt_array"):
            conversation = [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]
            return [json.dumps({"id": f"{session.name}-{seed}", "model": "m", "conversations": conversation})]
        stamp = "2026-01-01T00:00:00.000Z"
        user = {"role": "user", "content": prompt}
        assistant = {"role": "assistant", "model": "m", "content": [{"type": "text", "text": answer}]}
        common = {"sessionId": session.name, "timestamp": stamp}
        return [
            json.dumps({"type": "user", "uuid": f"u{seed}", "message": user, **common}),
            json.dumps({"type": "assistant", "uuid": f"a{seed}", "message": assistant, **common}),
        ]

    @staticmethod
    def _write_db(path: Path, session: Session, appended: int) -> None:
        """Messages inserted for the ``appended`` last turns, as Hermes adds them; or the
        database's messages replaced (a rewrite)."""
        fresh = not path.exists()
        with closing(sqlite3.connect(path)) as connection:
            if fresh:
                connection.executescript(STATE_DB_SCHEMA)
                connection.execute("INSERT INTO schema_version VALUES (6)")
            if not appended:
                connection.execute("DELETE FROM messages")
                connection.execute("DELETE FROM sessions")
            first = len(session.turns) - appended if appended else 0
            # two sessions per database, the turns shared out between them
            for index, seed in list(enumerate(session.turns))[first:]:
                key = f"2026010{1 + index % 2}_000000_{session.name[-6:]:0>6}"
                connection.execute(
                    "INSERT OR IGNORE INTO sessions (id, source, model, started_at)"
                    " VALUES (?, 'cli', 'm', 0)",
                    (key,),
                )
                prompt, answer = turn(seed)
                for offset, (role, content) in enumerate((("user", prompt), ("assistant", answer))):
                    connection.execute(
                        "INSERT INTO messages (session_id, role, content, timestamp) VALUES (?, ?, ?, ?)",
                        (key, role, content, float(index * 2 + offset)),
                    )
            connection.commit()


STEPS = st.lists(
    st.tuples(
        st.sampled_from(("new", "grow", "grow", "rewrite", "delete", "truncate")),
        st.sampled_from(FAMILIES),
        st.integers(0, 50),
        st.lists(st.integers(0, 40), min_size=1, max_size=3),
    ),
    min_size=2,
    max_size=6,
)


def written_ids(out: Path) -> list[str]:
    parts = sorted((out / "pairs").glob("*.parquet"))
    return [pair for part in parts for pair in pl.read_parquet(part)["pair_id"].to_list()]


def full_run_ids(monkeypatch: pytest.MonkeyPatch, archive: Path, out: Path) -> set[str]:
    assert compound(monkeypatch, "pairs", str(archive), "--out", str(out), *RULES) == 0
    return set(pl.read_parquet(out / "pairs.parquet")["pair_id"].to_list())


def apply(archive: Archive, step: tuple[str, str, int, list[int]], number: int) -> None:
    action, family, pick, seeds = step
    of_family = [session for session in archive.sessions if session.family == family]
    if action == "new" or not of_family:
        session = Session(family, f"s{number:06d}", list(seeds))
        archive.sessions.append(session)
        archive.write(session)
        return
    session = of_family[pick % len(of_family)]
    path = archive.path(session)
    if action == "grow":
        session.turns += seeds
        archive.write(session, appended=len(seeds))
    elif action == "rewrite":
        session.turns = list(seeds)
        archive.write(session)
    elif action == "delete":
        archive.sessions.remove(session)
        path.unlink()
    elif session.family in ("sharegpt", "claude_code"):  # truncate: the file cut to its first line
        path.write_text(path.read_text().split("\n")[0] + "\n")
        session.turns = session.turns[:1]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_runs_together_write_what_full_runs_write(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[str, str, int, list[int]]],
) -> None:
    """After every step, the pairs of all incremental runs are the pairs that full runs at
    each step wrote (under growth alone: the last full run's), each written once."""
    base = tmp_path_factory.mktemp("growth")
    archive = Archive(base / "archive")
    for number, family in enumerate(FAMILIES):  # the first run sees every family, each with pairs of its own
        apply(archive, ("new", family, 0, [50 + 2 * number, 51 + 2 * number]), len(archive.sessions))
    expected: set[str] = set()
    for number, step in enumerate([("grow", "sharegpt", 0, [3]), *steps]):
        if number:
            time.sleep(0.002)
        apply(archive, step, number + 10)
        assert (
            compound(
                monkeypatch, "pairs", str(archive.root), "--out", str(base / "inc"), "--incremental", *RULES
            )
            == 0
        )
        expected |= full_run_ids(monkeypatch, archive.root, base / f"full{number}")
        written = written_ids(base / "inc")
        assert len(written) == len(set(written)), "a pair written twice"
        assert set(written) == expected, step


def test_only_new_lines_and_changed_sessions_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "archive")
    for family in FAMILIES:
        apply(archive, ("new", family, 0, [1, 2, 3]), len(archive.sessions))
    out = tmp_path / "out"
    time.sleep(2.1)  # past the racy margin: files written just before a run are read again by the next
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    second = json.loads((out / "stats.json").read_text())["incremental"]
    assert second["files"] == {"new": 0, "grown": 0, "changed": 0, "unchanged": 6, "deleted": 0}
    assert second["bytes_read"] == 0
    sharegpt = next(session for session in archive.sessions if session.family == "sharegpt")
    size = archive.path(sharegpt).stat().st_size
    apply(archive, ("grow", "sharegpt", 0, [30]), 99)
    archive.path(next(session for session in archive.sessions if session.family == "state_db")).unlink()
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    third = json.loads((out / "stats.json").read_text())
    assert third["incremental"]["files"] == {"new": 0, "grown": 1, "changed": 0, "unchanged": 4, "deleted": 1}
    assert third["incremental"]["bytes_read"] == archive.path(sharegpt).stat().st_size - size
    assert third["unique_pairs"] == 1
    pairs = pl.read_parquet(out / "pairs" / "part-000003.parquet")
    assert pairs["line"].to_list() == [4]  # numbered as in the whole file


def test_state_db_reads_the_sessions_that_gained_messages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "archive")
    apply(archive, ("new", "state_db", 0, [1, 2, 3, 4]), 0)
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    session = archive.sessions[0]
    session.turns += [5]  # index 4: the first of the two sessions
    archive.write(session, appended=1)
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    figures = json.loads((out / "stats.json").read_text())
    assert figures["incremental"]["files"]["changed"] == 1
    assert figures["sessions"] == 1  # one session read again, whole
    assert figures["unique_pairs"] == 1


def test_dataset_reads_with_one_glob(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    apply(archive, ("new", "sharegpt", 0, [1, 2]), 0)
    out = tmp_path / "out"
    for step in range(3):
        apply(archive, ("grow", "sharegpt", 0, [10 + step]), step + 1)
        assert (
            compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
        )
    ids = set(written_ids(out))
    assert set(pl.scan_parquet(out / "pairs" / "*.parquet").collect()["pair_id"]) == ids
    glob = (out / "pairs" / "*.parquet").as_posix()
    read_glob = duckdb.execute("SELECT pair_id FROM read_parquet($glob)", {"glob": glob})
    assert {row[0] for row in read_glob.fetchall()} == ids
    jsonl = pl.concat([pl.read_ndjson(part) for part in sorted((out / "pairs").glob("*.jsonl"))])
    assert jsonl.height == len(ids)


def test_other_rules_exit_2_naming_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = Archive(tmp_path / "archive")
    apply(archive, ("new", "sharegpt", 0, [1, 2]), 0)
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental") == 0
    capsys.readouterr()
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert "--min-ratio" in error
    assert "--min-words" in error
    assert "--responses" not in error
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out)) == 2  # not incremental
    rebuilt = ("--incremental", "--rebuild", *RULES)
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), *rebuilt) == 0
    assert sorted(path.name for path in (out / "pairs").iterdir()) == [
        "part-000002.jsonl",
        "part-000002.parquet",
    ]
    assert json.loads((out / STATE_DIR / STATE_JSON).read_text())["rules"]["min_words"] == 1


def test_a_second_run_into_the_folder_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcntl  # noqa: PLC0415 (POSIX only, as the lock)

    archive = Archive(tmp_path / "archive")
    apply(archive, ("new", "sharegpt", 0, [1]), 0)
    out = tmp_path / "out"
    (out / STATE_DIR).mkdir(parents=True)
    with (out / STATE_DIR / "lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental") == 2
    assert "another run is writing" in capsys.readouterr().err


def run_cli(archive: Path, out: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "jobs.cli",
        "pairs",
        str(archive),
        "--out",
        str(out),
        "--incremental",
        *RULES,
    ]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])},
    )


def test_killed_runs_leave_what_uninterrupted_runs_leave(tmp_path: Path) -> None:
    """SIGKILL at random moments of runs over a growing archive; after each kill the next
    run completes. At the end, the dataset holds exactly the pairs of the same steps run
    without kills, each once."""
    archive = Archive(tmp_path / "archive")
    for family in FAMILIES:
        apply(archive, ("new", family, 0, list(range(1, 30))), len(archive.sessions))
    killed, calm = tmp_path / "killed", tmp_path / "calm"
    delays = [0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 0.45, 0.75, 1.05]
    for number, delay in enumerate(delays):
        apply(
            archive,
            ("grow", FAMILIES[number % len(FAMILIES)], number, [100 + number, 200 + number]),
            50 + number,
        )
        victim = run_cli(archive.root, killed)
        time.sleep(delay)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert run_cli(archive.root, killed).wait() == 0
        assert run_cli(archive.root, calm).wait() == 0
    ids = written_ids(killed)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(written_ids(calm))
    state = json.loads((killed / STATE_DIR / STATE_JSON).read_text())
    on_disk = {path.relative_to(killed / "pairs").as_posix() for path in (killed / "pairs").iterdir()}
    assert on_disk == set(state["parts"]["pairs"])


def test_compact_merges_the_parts_and_runs_go_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    for family in FAMILIES:
        apply(archive, ("new", family, 0, [1, 2]), len(archive.sessions))
    out = tmp_path / "out"
    for step in range(3):
        apply(archive, ("grow", FAMILIES[step], 0, [10 + step]), 10 + step)
        assert (
            compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
        )
    ids = written_ids(out)
    candidates = pl.read_parquet(out / "candidates" / "*.parquet")
    assert compound(monkeypatch, "compact", str(out)) == 0
    assert sorted(path.name for path in (out / "pairs").iterdir()) == [
        "part-000001-000003.jsonl",
        "part-000001-000003.parquet",
    ]
    assert written_ids(out) == ids
    assert_frame_equal(pl.read_parquet(out / "candidates" / "*.parquet"), candidates)
    assert compound(monkeypatch, "stats", str(out), "--json") == 0
    apply(archive, ("grow", "sharegpt", 0, [20]), 20)
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    assert len(written_ids(out)) == len(ids) + 1
    assert compound(monkeypatch, "compact", str(tmp_path / "archive")) == 2  # no dataset there


@given(
    data=st.binary(max_size=80).map(lambda raw: bytes(b"ab\r\n"[byte % 4] for byte in raw)),
    chunk=st.integers(1, 9),
    bounds=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whole_lines_are_counted_as_the_readers_number_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, chunk: int, bounds: tuple[float, float]
) -> None:
    """Where an incremental run resumes a file (after its last whole line) and the number
    its next line gets, whatever the chunks the file is counted in."""
    monkeypatch.setattr(incremental, "COUNT_CHUNK_BYTES", chunk)
    start, stop = sorted(int(bound * len(data)) for bound in bounds)
    path = tmp_path / "lines.jsonl"
    path.write_bytes(data)
    part = data[start:stop]
    whole = part[: part.rfind(b"\n") + 1]
    assert incremental._whole_lines(path, start, stop) == (
        start + len(whole),
        universal_newlines(whole).count(b"\n"),
    )


def test_partitioned_dataset_adds_parts_per_partition(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    archive = Archive(tmp_path / "archive")
    apply(archive, ("new", "sharegpt", 0, [1, 2]), 0)
    out = tmp_path / "out"
    options = ("--incremental", "--partition-by", "model", *RULES)
    for step in range(2):
        apply(archive, ("grow", "sharegpt", 0, [10 + step]), step + 1)
        assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), *options) == 0
    parts = sorted(path.relative_to(out / "pairs").as_posix() for path in (out / "pairs").rglob("*.parquet"))
    assert parts == ["model=m/part-000001.parquet", "model=m/part-000002.parquet"]
    pairs = pl.read_parquet(out / "pairs" / "**" / "*.parquet", hive_partitioning=True)
    assert pairs["model"].unique().to_list() == ["m"]
    assert pairs.height == len(set(pairs["pair_id"])) == 4
    assert compound(monkeypatch, "compact", str(out)) == 0
    merged = pl.read_parquet(out / "pairs" / "**" / "*.parquet", hive_partitioning=True)
    assert sorted(merged["pair_id"]) == sorted(pairs["pair_id"])
    assert [path.name for path in (out / "pairs" / "model=m").iterdir()] == ["part-000001-000002.parquet"]


def test_a_users_files_in_the_datasets_folders_are_left_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run removes the parts its state does not name (a dead run's), and nothing else of
    the dataset's folders: a file of the user's there stays."""
    archive = Archive(tmp_path / "archive")
    archive.sessions.append(Session("sharegpt", "s000001", [1, 2]))
    archive.write(archive.sessions[0])
    out = tmp_path / "out"
    notes = [
        out / "pairs" / "notes.txt",
        out / "runs" / "README",
        out / "pairs" / "model=x" / "part-1.parquet",
    ]
    for path in notes:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    leftover = out / "pairs" / "part-000002.jsonl"  # as a run that died before its commit leaves it
    leftover.write_text("")
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    assert not leftover.exists()
    assert [path.read_text() for path in notes] == ["mine"] * 3
    assert written_ids(out)


def _cut_a_key_segment(state: Path) -> None:
    segment = next((state / "keys").glob("*.keys"))
    segment.write_bytes(segment.read_bytes()[:5])


def _drop_a_fence(state: Path) -> None:
    next((state / "keys").glob("*.fence")).unlink()


def _garble_the_manifest(state: Path) -> None:
    next(state.glob("manifest-*.parquet")).write_text("junk")


@pytest.mark.parametrize("damage", [_cut_a_key_segment, _drop_a_fence, _garble_the_manifest])
def test_a_damaged_state_is_a_usage_error_that_names_the_way_out(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: Callable[[Path], None],
) -> None:
    """A state file cut short, missing or garbled (a disk error, a hand edit) stops the run
    with one line naming ``--rebuild``, not a traceback; the dataset is left as it was,
    and ``--rebuild`` starts it over."""
    archive = Archive(tmp_path / "archive")
    archive.sessions.append(Session("sharegpt", "s000001", [1, 2]))
    archive.write(archive.sessions[0])
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0
    pairs_before = written_ids(out)
    damage(out / STATE_DIR)
    session = Session("sharegpt", "s000002", [3])
    archive.sessions.append(session)
    archive.write(session)
    capsys.readouterr()
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "cannot be read" in error
    assert "--rebuild starts the dataset over" in error
    assert written_ids(out) == pairs_before
    assert (
        compound(
            monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", "--rebuild", *RULES
        )
        == 0
    )
    assert len(written_ids(out)) == 3


def test_a_run_interrupted_before_its_commit_leaves_no_parts_and_stats_reads_the_committed_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C after a run moved its parts into the dataset's folders but before its state
    named them: the parts are removed (readers glob those folders). A run killed outright
    leaves them until the next run; ``compound stats`` reads only the committed parts."""
    archive = Archive(tmp_path / "archive")
    archive.sessions.append(Session("sharegpt", "s000001", [1, 2]))
    archive.write(archive.sessions[0])
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES) == 0

    def dataset_files() -> list[Path]:  # what readers see (the state's own folder aside)
        return sorted(
            path.relative_to(out) for path in out.rglob("*") if path.is_file() and STATE_DIR not in path.parts
        )

    files_before = dataset_files()
    session = Session("sharegpt", "s000002", [3])
    archive.sessions.append(session)
    archive.write(session)

    def interrupted(self: incremental.State, rules: dict[str, object]) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(incremental.State, "save", interrupted)
        assert (
            compound(monkeypatch, "pairs", str(archive.root), "--out", str(out), "--incremental", *RULES)
            == 130
        )
    assert dataset_files() == files_before

    # as a run killed outright leaves them: a part the state does not name
    leftover = out / "candidates" / "part-000002.parquet"
    pl.read_parquet(next((out / "candidates").glob("*.parquet"))).write_parquet(leftover)
    capsys.readouterr()
    assert compound(monkeypatch, "stats", str(out)) == 0
    printed = capsys.readouterr().out
    leftover.unlink()
    assert compound(monkeypatch, "stats", str(out)) == 0
    assert capsys.readouterr().out == printed
