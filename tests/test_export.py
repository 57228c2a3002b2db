"""``compound export``: the formats, the split by session, the dataset card, bad input.

The exported folders are loaded as a trainer loads them, by ``datasets.load_dataset``
through their card, offline and with every cache under the test's temporary folder.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jobs import export as export_job
from jobs.export import EXPORT_JSON
from tests.conftest import EXAMPLE_ARCHIVE, REPO, compound
from transforms.export import (
    EXPORT_FORMATS,
    FORMAT_FIELDS,
    assign_sessions,
    filter_pairs,
    session_fraction,
    split_rows,
    to_format,
)

RULES = ("--min-words", "1", "--min-ratio", "0")
FEATURES = {
    "messages": {"messages": [{"role": "string", "content": "string"}]},
    "prompt-completion": {"prompt": "string", "completion": "string"},
    "sharegpt": {"conversations": [{"from": "string", "value": "string"}]},
    "alpaca": {"instruction": "string", "input": "string", "output": "string"},
}


# --- transforms: pure polars ------------------------------------------------------------


def pairs_frame() -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "source": ["s1", "s1", "s2", None],
            "format": ["sharegpt", "sharegpt", "codex", "sharegpt"],
            "model": ["m1", "m1", "m2", None],
            "terse": ["p1", "p2", "p3", "p4"],
            "rich": ["a1", "a2", "a3", "a4"],
        }
    )


def turns(keys: tuple[str, str], *rows: tuple[str, str]) -> list[dict[str, str]]:
    return [{keys[0]: role, keys[1]: text} for role, text in rows]


@pytest.mark.parametrize("system", [None, "Be brief."])
def test_messages_rows(system: str | None) -> None:
    head = [("system", system)] if system else []
    expected = pl.DataFrame(
        {
            "messages": [
                turns(("role", "content"), *head, ("user", f"p{n}"), ("assistant", f"a{n}"))
                for n in (1, 2, 3, 4)
            ]
        }
    )
    assert_frame_equal(to_format(pairs_frame(), "messages", system).collect(), expected)


@pytest.mark.parametrize("system", [None, "Be brief."])
def test_sharegpt_rows(system: str | None) -> None:
    head = [("system", system)] if system else []
    expected = pl.DataFrame(
        {
            "conversations": [
                turns(("from", "value"), *head, ("human", f"p{n}"), ("gpt", f"a{n}")) for n in (1, 2, 3, 4)
            ]
        }
    )
    assert_frame_equal(to_format(pairs_frame(), "sharegpt", system).collect(), expected)


def test_prompt_completion_and_alpaca_rows() -> None:
    assert_frame_equal(
        to_format(pairs_frame(), "prompt-completion").collect(),
        pl.DataFrame({"prompt": ["p1", "p2", "p3", "p4"], "completion": ["a1", "a2", "a3", "a4"]}),
    )
    alpaca = {"instruction": ["p1", "p2", "p3", "p4"], "input": [""] * 4, "output": ["a1", "a2", "a3", "a4"]}
    assert_frame_equal(to_format(pairs_frame(), "alpaca").collect(), pl.DataFrame(alpaca))
    assert_frame_equal(
        to_format(pairs_frame(), "alpaca", "Be brief.").collect(),
        pl.DataFrame({**alpaca, "system": ["Be brief."] * 4}),
    )


def test_prompt_completion_has_no_place_for_a_system_prompt() -> None:
    with pytest.raises(ValueError, match="no place for a system prompt"):
        to_format(pairs_frame(), "prompt-completion", "Be brief.")


def test_filters_keep_the_named_layouts_and_models() -> None:
    kept = filter_pairs(pairs_frame(), ("sharegpt",), ("m1",)).collect()
    assert kept["terse"].to_list() == ["p1", "p2"]
    assert filter_pairs(pairs_frame()).collect().height == 4  # no filter: the null model too


def test_session_fraction_is_the_published_xxh3() -> None:
    """Pinned: seeded XXH3-64 (the values of the reference ``xxhash`` library), top 53 bits
    over 2**53. A polars or polars-hash upgrade that changed them would move sessions
    between the splits of datasets already exported."""
    frame = pl.DataFrame({"source": ["session-a", "session-b", None]})
    fractions = frame.select(
        session_fraction(pl.col("source"), 0).alias("seed_0"),
        session_fraction(pl.col("source"), 7).alias("seed_7"),
    )
    expected = pl.DataFrame(
        {
            "seed_0": [0.4715772906729344, 0.751309692987301, 0.1758804333447428],
            "seed_7": [0.0210094592596759, 0.33845308427780263, 0.5673046426951326],
        }
    )
    assert_frame_equal(fractions, expected)


def sessions_frame(count: int) -> pl.LazyFrame:
    return pl.LazyFrame({"source": [f"s{n}" for n in range(count)]})


def test_sessions_below_the_share_are_in_validation() -> None:
    sessions = assign_sessions(sessions_frame(200), 3, 0.3).collect()
    assert sessions["fraction"].is_sorted()
    assert_frame_equal(
        sessions.select("validation"), sessions.select((pl.col("fraction") < 0.3).alias("validation"))
    )
    assert 30 < sessions["validation"].sum() < 90


def test_neither_split_is_left_empty() -> None:
    """A share no fraction falls below takes the lowest session; a share every fraction
    falls below leaves the highest in train; one session, or a share of 0, is all train."""
    few = assign_sessions(sessions_frame(3), 0, 1e-9).collect()
    assert few["validation"].to_list() == [True, False, False]
    almost_all = assign_sessions(sessions_frame(3), 0, 0.999999).collect()
    assert almost_all["validation"].to_list() == [True, True, False]
    assert assign_sessions(sessions_frame(1), 0, 0.5).collect()["validation"].to_list() == [False]
    assert not assign_sessions(sessions_frame(50), 0, 0.0).collect()["validation"].any()


def test_split_rows_keep_every_session_whole_and_in_order() -> None:
    pairs = pairs_frame()
    sessions = pl.LazyFrame({"source": ["s1", "s2", None], "validation": [False, True, True]})
    assert split_rows(pairs, sessions, "train").collect()["terse"].to_list() == ["p1", "p2"]
    assert split_rows(pairs, sessions, "validation").collect()["terse"].to_list() == ["p3", "p4"]


# --- the command, end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``compound pairs`` on the example archive, once for the module."""
    out = tmp_path_factory.mktemp("run") / "out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(out)) == 0
    return out


@pytest.fixture(scope="module")
def datasets_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """``datasets``, offline, its caches (and the hub's) in a temporary folder: nothing goes
    to the home folder or the network. Set before the import, which reads them."""
    home = tmp_path_factory.mktemp("hf")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("HF_HOME", str(home))
        monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        import datasets  # noqa: PLC0415 (after the environment is set)

        datasets.disable_progress_bars()
        yield datasets


def export(monkeypatch: pytest.MonkeyPatch, run: Path, dest: Path, *options: str) -> int:
    return compound(monkeypatch, "export", str(run), "--dest", str(dest), *options)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def record_of(dest: Path) -> dict[str, Any]:
    loaded = json.loads((dest / EXPORT_JSON).read_text())
    assert isinstance(loaded, dict)
    return loaded


def load(datasets: ModuleType, dest: Path, cache: Path) -> Any:
    return datasets.load_dataset(str(dest), cache_dir=str(cache))


def plain_features(features: Any) -> Any:
    """``datasets`` features as plain values: ``{"messages": [{"role": "string", ...}]}``."""
    if isinstance(features, dict):
        return {name: plain_features(feature) for name, feature in features.items()}
    inner = getattr(features, "feature", None)
    if inner is not None:  # List / LargeList / Sequence
        return [plain_features(inner)]
    return str(features.dtype).removeprefix("large_")


@pytest.mark.parametrize("to", EXPORT_FORMATS)
def test_each_format_loads_as_two_splits_through_its_card(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path, datasets_module: ModuleType, to: str
) -> None:
    dest = tmp_path / "export"
    assert export(monkeypatch, run_dir, dest, "--to", to) == 0
    assert sorted(path.name for path in dest.iterdir()) == [
        "README.md", "export.json", "train.jsonl", "validation.jsonl",
    ]  # fmt: skip
    loaded = load(datasets_module, dest, tmp_path / "cache")
    assert sorted(loaded) == ["train", "validation"]
    record = record_of(dest)
    pairs = pl.read_parquet(run_dir / "pairs.parquet")
    for split in ("train", "validation"):
        assert plain_features(loaded[split].features) == FEATURES[to]
        assert loaded[split].num_rows == record["splits"][split]["rows"] > 0
        for row in lines(dest / f"{split}.jsonl"):
            assert tuple(row) == FORMAT_FIELDS[to]  # the format's keys, no source or model
    assert (
        loaded["train"].num_rows + loaded["validation"].num_rows == pairs.height == record["pairs_exported"]
    )


def test_parquet_files_are_the_card_s_and_hold_the_jsonl_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path, datasets_module: ModuleType
) -> None:
    dest = tmp_path / "export"
    assert export(monkeypatch, run_dir, dest, "--to", "sharegpt", "--parquet", "--system", "Be brief.") == 0
    record = record_of(dest)
    assert record["data_files"] == {"train": "train.parquet", "validation": "validation.parquet"}
    loaded = load(datasets_module, dest, tmp_path / "cache")
    assert sorted(loaded) == ["train", "validation"]
    for split in ("train", "validation"):
        assert plain_features(loaded[split].features) == FEATURES["sharegpt"]
        parquet = pl.read_parquet(dest / f"{split}.parquet")
        assert_frame_equal(parquet, pl.read_ndjson(dest / f"{split}.jsonl"))
        assert loaded[split].num_rows == parquet.height == record["splits"][split]["rows"]
        assert parquet["conversations"].list.first().struct.field("from").unique().to_list() == ["system"]


def openai_structure_errors(path: Path) -> list[str]:
    """The structure rules OpenAI documents for chat fine-tuning files, line by line:
    an object whose ``messages`` is a list of messages, each with a ``role`` of system,
    user or assistant and non-empty string ``content``, a system message only first, a
    user message before the answers, and at least one assistant message."""
    errors = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        row = json.loads(text)
        messages = row.get("messages") if isinstance(row, dict) else None
        if list(row) != ["messages"] or not isinstance(messages, list) or not messages:
            errors.append(f"line {number}: not an object with a list of messages")
            continue
        roles = [message.get("role") for message in messages]
        if any(set(message) != {"role", "content"} for message in messages):
            errors.append(f"line {number}: a message with keys other than role and content")
        if any(role not in ("system", "user", "assistant") for role in roles):
            errors.append(f"line {number}: a role that is not system, user or assistant")
        if any(not isinstance(m["content"], str) or not m["content"].strip() for m in messages):
            errors.append(f"line {number}: content that is empty or not text")
        body = roles[1:] if roles[0] == "system" else roles
        if "system" in body or not body or body[0] != "user" or "assistant" not in body:
            errors.append(f"line {number}: not system?, user, then assistant: {roles}")
        elif any(a == b for a, b in itertools.pairwise(body)):
            errors.append(f"line {number}: user and assistant do not alternate: {roles}")
    return errors


@pytest.mark.parametrize("system", [None, "You answer as a senior engineer would."])
def test_messages_files_pass_openai_structure_rules(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path, system: str | None
) -> None:
    dest = tmp_path / "export"
    options = ("--system", system) if system else ()
    assert export(monkeypatch, run_dir, dest, "--to", "messages", *options) == 0
    for split in ("train", "validation"):
        assert openai_structure_errors(dest / f"{split}.jsonl") == []
        first = lines(dest / f"{split}.jsonl")[0]["messages"]
        assert [message["role"] for message in first] == (["system"] if system else []) + [
            "user",
            "assistant",
        ]


def sessions_of(dest: Path, run: Path, split: str) -> set[str]:
    """The sessions a prompt-completion split's rows came from (a pair is its texts)."""
    pairs = pl.read_parquet(run / "pairs.parquet").select(
        pl.col("terse").alias("prompt"), pl.col("rich").alias("completion"), "source"
    )
    rows = pl.read_ndjson(dest / f"{split}.jsonl")
    joined = rows.join(pairs, on=["prompt", "completion"], how="left")
    assert joined.height == rows.height
    assert joined["source"].null_count() == 0
    return set(joined["source"].to_list())


def test_no_session_has_pairs_in_both_splits(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path
) -> None:
    dest = tmp_path / "export"
    assert export(monkeypatch, run_dir, dest, "--to", "prompt-completion", "--val-share", "0.3") == 0
    train, validation = sessions_of(dest, run_dir, "train"), sessions_of(dest, run_dir, "validation")
    assert train
    assert validation
    assert not train & validation
    assert train | validation == set(pl.read_parquet(run_dir / "pairs.parquet")["source"].to_list())
    record = record_of(dest)
    assert record["splits"]["train"]["sessions"] == len(train)
    assert record["splits"]["validation"]["sessions"] == len(validation)


def test_the_same_seed_gives_the_same_split_and_another_seed_another(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path
) -> None:
    def split(name: str, seed: int) -> tuple[bytes, bytes]:
        dest = tmp_path / name
        options = ("--to", "alpaca", "--val-share", "0.3", "--seed", str(seed))
        assert export(monkeypatch, run_dir, dest, *options) == 0
        return (dest / "train.jsonl").read_bytes(), (dest / "validation.jsonl").read_bytes()

    first = split("first", 0)
    assert split("again", 0) == first
    assert (tmp_path / "first" / "README.md").read_bytes() == (tmp_path / "again" / "README.md").read_bytes()
    assert split("other", 1) != first


def test_realised_shares_are_printed_and_recorded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "export"
    capsys.readouterr()
    assert export(monkeypatch, run_dir, dest, "--to", "messages", "--val-share", "0.2") == 0
    printed = capsys.readouterr().out
    record = record_of(dest)
    card = (dest / "README.md").read_text()
    total_rows, total_sessions = record["pairs_exported"], record["sessions_exported"]
    assert sum(figures["rows"] for figures in record["splits"].values()) == total_rows
    assert sum(figures["sessions"] for figures in record["splits"].values()) == total_sessions
    for split, figures in record["splits"].items():
        assert figures["row_share"] == round(figures["rows"] / total_rows, 6)
        assert figures["session_share"] == round(figures["sessions"] / total_sessions, 6)
        row = f"| {split} | `{split}.jsonl` | {figures['rows']:,} | {figures['row_share']:.2%} |"
        assert row in card
        assert f"{figures['row_share']:.2%}" in printed
        assert f"{figures['session_share']:.2%}" in printed
    assert f"exported to {dest}" in printed


def test_the_card_is_a_hugging_face_card_made_from_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path
) -> None:
    from huggingface_hub import DatasetCard  # noqa: PLC0415 (installed with datasets)

    dest = tmp_path / "export"
    assert export(monkeypatch, run_dir, dest, "--to", "messages") == 0
    card = DatasetCard.load(dest / "README.md")
    assert card.data.configs == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "train.jsonl"},
                {"split": "validation", "path": "validation.jsonl"},
            ],
        }
    ]
    assert card.data.license is None  # left for the user to fill in
    assert "license:" in (dest / "README.md").read_text()
    stats = json.loads((run_dir / "stats.json").read_text())
    text = card.text
    for reason, count in stats["rejected"].items():
        assert f"| `{reason}` | {count:,} |" in text
    assert f"| session files read | {stats['files_scanned']:,} |" in text
    assert f"| minimum words in an answer (`--min-words`) | {stats['rules']['min_words']} |" in text
    assert "**Scrubbing: `secrets`.**" in text
    assert "| `messages` | list of {role: string, content: string} |" in text
    example = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert list(json.loads(example)) == ["messages"]
    assert str(tmp_path) not in text  # no path of the user's machine
    assert str(EXAMPLE_ARCHIVE) not in (dest / EXPORT_JSON).read_text()


def test_a_share_of_zero_writes_the_train_split_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path, datasets_module: ModuleType
) -> None:
    dest = tmp_path / "export"
    assert export(monkeypatch, run_dir, dest, "--to", "prompt-completion", "--val-share", "0") == 0
    assert not (dest / "validation.jsonl").exists()
    loaded = load(datasets_module, dest, tmp_path / "cache")
    assert sorted(loaded) == ["train"]
    assert loaded["train"].num_rows == pl.read_parquet(run_dir / "pairs.parquet").height


def model_of_most_sessions(pairs: pl.DataFrame) -> str:
    counts = pairs.drop_nulls("model").group_by("model").agg(pl.col("source").n_unique().alias("sessions"))
    model = counts.sort("sessions", "model", descending=[True, False])["model"][0]
    assert isinstance(model, str)
    return model


def test_filters_keep_the_pairs_of_the_named_layouts_and_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path
) -> None:
    pairs = pl.read_parquet(run_dir / "pairs.parquet")
    dest = tmp_path / "export"
    options = (
        "--to",
        "prompt-completion",
        "--format-filter",
        "sharegpt,codex",
        "--format-filter",
        "kimi_cli",
    )
    assert export(monkeypatch, run_dir, dest, *options, "--val-share", "0") == 0
    kept = pairs.filter(pl.col("format").is_in(["sharegpt", "codex", "kimi_cli"]))
    assert_frame_equal(
        pl.read_ndjson(dest / "train.jsonl"),
        kept.select(pl.col("terse").alias("prompt"), pl.col("rich").alias("completion")),
    )
    model = model_of_most_sessions(pairs)
    assert export(monkeypatch, run_dir, dest, "--to", "alpaca", "--model-filter", model, "--overwrite") == 0
    assert record_of(dest)["pairs_exported"] == pairs.filter(pl.col("model") == model).height


def test_overwrite_replaces_an_earlier_export_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path
) -> None:
    dest = tmp_path / "export"
    assert export(monkeypatch, run_dir, dest, "--to", "messages", "--parquet") == 0
    assert export(monkeypatch, run_dir, dest, "--to", "alpaca", "--overwrite") == 0
    assert sorted(path.name for path in dest.iterdir()) == [
        "README.md", "export.json", "train.jsonl", "validation.jsonl",
    ]  # fmt: skip
    assert record_of(dest)["format"] == "alpaca"
    assert [path.name for path in tmp_path.iterdir()] == ["export"]  # no scratch folder left
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(monkeypatch, run_dir, empty, "--to", "messages") == 0  # an empty folder is taken


def test_without_an_exchange_the_old_export_is_renamed_aside(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path
) -> None:
    """Where the system cannot swap two folders in one step (not Linux, an old C library)."""
    monkeypatch.setattr(export_job, "_exchange", lambda *_: False)
    dest = tmp_path / "export"
    assert export(monkeypatch, run_dir, dest, "--to", "messages", "--parquet") == 0
    assert export(monkeypatch, run_dir, dest, "--to", "sharegpt", "--overwrite") == 0
    assert record_of(dest)["format"] == "sharegpt"
    assert not (dest / "train.parquet").exists()
    assert [path.name for path in tmp_path.iterdir()] == ["export"]


def make_sessions(path: Path, first: int, count: int) -> None:
    """ShareGPT sessions ``first`` .. ``first + count - 1``, appended to ``path``."""
    with path.open("a") as handle:
        for number in range(first, first + count):
            conversation = [
                {"from": "human", "value": f"Question {number}?"},
                {"from": "gpt", "value": f"Answer {number}: " + "word " * (5 + number % 7)},
            ]
            handle.write(
                json.dumps({"id": f"session-{number}", "model": "m", "conversations": conversation}) + "\n"
            )


@pytest.mark.parametrize("partition", [(), ("--partition-by", "model")])
def test_an_incremental_dataset_exports_every_committed_part(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, partition: tuple[str, ...]
) -> None:
    archive, out, dest = tmp_path / "archive", tmp_path / "out", tmp_path / "export"
    archive.mkdir()
    make_sessions(archive / "chats.jsonl", 0, 10)
    options = ("--out", str(out), "--incremental", *RULES, *partition)
    assert compound(monkeypatch, "pairs", str(archive), *options) == 0
    make_sessions(archive / "chats.jsonl", 10, 10)
    assert compound(monkeypatch, "pairs", str(archive), *options) == 0
    parts = sorted((out / "pairs").rglob("*.parquet"))
    assert len(parts) == 2
    # a part no committed state names (a run that died) is not the dataset's
    stray = parts[0].with_name("part-000099.parquet")
    stray.write_bytes(parts[0].read_bytes())
    assert export(monkeypatch, out, dest, "--to", "prompt-completion", "--val-share", "0.25") == 0
    exported = pl.concat([pl.read_ndjson(dest / "train.jsonl"), pl.read_ndjson(dest / "validation.jsonl")])
    assert sorted(exported["prompt"].to_list()) == sorted(f"Question {number}?" for number in range(20))
    record = record_of(dest)
    assert record["pairs_read"] == 20
    assert record["run"]["runs"] == 2
    assert record["run"]["unique_pairs"] == 20  # the runs' figures added up
    assert "2 incremental runs of `compound pairs`" in (dest / "README.md").read_text()


def test_a_dataset_a_run_is_writing_into_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive, out = tmp_path / "archive", tmp_path / "out"
    archive.mkdir()
    make_sessions(archive / "chats.jsonl", 0, 4)
    assert compound(monkeypatch, "pairs", str(archive), "--out", str(out), "--incremental", *RULES) == 0
    capsys.readouterr()
    with (out / ".incremental" / "lock").open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as a run holds it
        assert export(monkeypatch, out, tmp_path / "export", "--to", "messages") == 2
    assert "a run is writing into" in capsys.readouterr().err
    assert not (tmp_path / "export").exists()
    assert export(monkeypatch, out, tmp_path / "export", "--to", "messages") == 0


def test_a_partitioned_run_exports_all_its_partitions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out, dest = tmp_path / "out", tmp_path / "export"
    assert (
        compound(monkeypatch, "pairs", str(EXAMPLE_ARCHIVE), "--out", str(out), "--partition-by", "model")
        == 0
    )
    assert export(monkeypatch, out, dest, "--to", "messages") == 0
    pairs = pl.scan_parquet(out / "pairs" / "**" / "*.parquet", hive_partitioning=True).collect()
    assert record_of(dest)["pairs_exported"] == pairs.height
    model = model_of_most_sessions(pairs)
    assert export(monkeypatch, out, dest, "--to", "messages", "--model-filter", model, "--overwrite") == 0
    assert record_of(dest)["pairs_exported"] == pairs.filter(pl.col("model") == model).height


@pytest.fixture(scope="module")
def one_session_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose pairs all come from one session (and, beside it, ``none-out``: a run of
    the same session that kept no pair)."""
    archive = tmp_path_factory.mktemp("one")
    conversation = [
        {"from": "human", "value": "Question?"},
        {"from": "gpt", "value": "An answer of a few words."},
        {"from": "human", "value": "Another?"},
        {"from": "gpt", "value": "Another answer of a few words."},
    ]
    line = json.dumps({"id": "only", "model": "m", "conversations": conversation})
    (archive / "chat.jsonl").write_text(line + "\n")
    out = archive.parent / "one-out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert compound(monkeypatch, "pairs", str(archive), "--out", str(out), *RULES) == 0
        no_pairs = ("--out", str(archive.parent / "none-out"), "--min-words", "1000")
        assert compound(monkeypatch, "pairs", str(archive), *no_pairs) == 0  # and a run that kept none
    return out


BAD_INPUT = [
    pytest.param(("missing",), ("--to", "messages"), "'OUT_DIR'", id="out-dir-missing"),
    pytest.param(("not-a-run",), ("--to", "messages"), "no stats.json", id="out-dir-not-a-run"),
    pytest.param(("run",), ("--to", "chatml"), "'--to': must be one of", id="unknown-format"),
    pytest.param(("run",), ("--to", "messages", "--format-filter", "nope"), "layout 'nope'", id="layout"),
    pytest.param(("run",), ("--to", "messages", "--model-filter", "nope"), "model 'nope'", id="model"),
    pytest.param(("run",), ("--to", "messages", "--val-share", "1"), "below 1", id="share-1"),
    pytest.param(("run",), ("--to", "messages", "--val-share", "-0.1"), "at least 0", id="share-negative"),
    pytest.param(("run",), ("--to", "messages", "--val-share", "many"), "'--val-share'", id="share-text"),
    pytest.param(("run",), ("--to", "messages", "--seed", "-1"), "'--seed'", id="seed-negative"),
    pytest.param(("run",), ("--to", "prompt-completion", "--system", "S"), "no place", id="system-nowhere"),
    pytest.param(("run",), ("--to", "messages", "--system", " "), "'--system': is empty", id="system-empty"),
    pytest.param(("run",), ("--dest-not-empty", "--to", "messages"), "add --overwrite", id="dest-not-empty"),
    pytest.param(
        ("run",), ("--dest-foreign", "--to", "messages", "--overwrite"), "not an export", id="foreign"
    ),
    pytest.param(("run",), ("--dest-file", "--to", "messages"), "not a directory", id="dest-file"),
    pytest.param(("run",), ("--dest-run", "--to", "messages", "--overwrite"), "its own", id="dest-is-run"),
    pytest.param(
        ("run",), ("--dest-output", "--to", "messages"), "one of the run's outputs", id="dest-output"
    ),
    pytest.param(("one",), ("--to", "messages"), "one session", id="one-session"),
    pytest.param(
        ("run",),
        ("--to", "messages", "--format-filter", "codex", "--model-filter", "deepseek-v3"),
        "the filters leave no pair",
        id="filters-leave-nothing",
    ),
    pytest.param(("none",), ("--to", "messages"), "the run wrote no pair", id="no-pairs"),
]


@pytest.mark.parametrize(("where", "options", "message"), BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2_and_writes_nothing(  # noqa: PLR0917
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    run_dir: Path,
    one_session_run: Path,
    capsys: pytest.CaptureFixture[str],
    where: tuple[str],
    options: tuple[str, ...],
    message: str,
) -> None:
    not_a_run = tmp_path / "not-a-run"
    not_a_run.mkdir()
    (not_a_run / "notes.txt").write_text("hello\n")
    runs = {
        "run": run_dir,
        "one": one_session_run,
        "none": one_session_run.parent / "none-out",
        "missing": tmp_path / "missing",
        "not-a-run": not_a_run,
    }
    dest = tmp_path / "dest"
    if "--dest-not-empty" in options or "--dest-foreign" in options:
        dest.mkdir()
        (dest / "keep.txt").write_text("mine\n")
    if "--dest-file" in options:
        dest.write_text("a file\n")
    if "--dest-run" in options:
        dest = run_dir
    if "--dest-output" in options:
        dest = run_dir / "pairs"
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")}
    capsys.readouterr()
    arguments = [option for option in options if not option.startswith("--dest-")]
    assert export(monkeypatch, runs[where[0]], dest, *arguments) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("compound export: error: ")
    assert message in err
    assert "Traceback" not in err
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")} == before


def test_importing_the_cli_imports_neither_the_export_nor_datasets() -> None:
    """Every command's start pays for what ``jobs.cli`` imports: the export's modules are
    imported by the export command, and ``datasets`` only by tests."""
    modules = ("datasets", "jobs.export", "pandas")
    code = f"import sys, jobs.cli; print(sorted(m for m in {modules!r} if m in sys.modules))"
    shown = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[]"
