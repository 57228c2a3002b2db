"""No credential leaves in an output: planted secrets in sessions of every layout are
gone from every file the run writes, near-misses stay, and what detect-secrets finds
is redacted."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import sqlite3
import string
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import transient_settings

from jobs.pairs_job import PairRules, run
from tests.conftest import REALDATA
from transforms.secrets import SECRET_RULES, rules_for, scrubbed

ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"


def _fake(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _planted() -> dict[str, tuple[str, str]]:
    """Per rule, a realistic fake credential in its context, and the part of it that must
    vanish (the context around a value, like ``password = "``, may stay)."""
    rng = random.Random(16)
    aws_secret = _fake(rng, ALNUM + "/+", 40)
    url_password = "Sup3r" + _fake(rng, ALNUM, 10)
    keyword_value = "correct-horse-" + _fake(rng, LOWER_ALNUM, 8)
    env_value = _fake(rng, HEX, 40)
    body = "\n".join(_fake(rng, ALNUM + "+/", 64) for _ in range(6))
    private_key = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    tokens = {
        "aws_access_key": "AKIA" + _fake(rng, string.ascii_uppercase + string.digits, 16),
        "azure_storage_key": "AccountKey=" + _fake(rng, ALNUM + "+/", 86) + "==",
        "github_token": "ghp_" + _fake(rng, ALNUM, 36),
        "github_pat": "github_pat_11" + _fake(rng, ALNUM, 20) + "_" + _fake(rng, ALNUM, 59),
        "gitlab_token": "glpat-" + _fake(rng, ALNUM + "-_", 20),
        "slack_token": "xoxb-" + _fake(rng, string.digits, 11) + "-" + _fake(rng, LOWER_ALNUM, 24),
        "slack_webhook": "https://hooks.slack.com/services/T"
        + _fake(rng, ALNUM, 8)
        + "/B"
        + _fake(rng, ALNUM, 8)
        + "/"
        + _fake(rng, ALNUM, 24),
        "stripe_key": "sk_live_" + _fake(rng, ALNUM, 24),
        "twilio_key": "AC" + _fake(rng, LOWER_ALNUM, 32),
        "sendgrid_key": "SG." + _fake(rng, ALNUM, 22) + "." + _fake(rng, ALNUM, 43),
        "mailchimp_key": _fake(rng, HEX, 32) + "-us14",
        "npm_token": "npm_" + _fake(rng, ALNUM, 36),
        "pypi_token": "pypi-AgEIcHlwaS5vcmc" + _fake(rng, ALNUM + "-_", 80),
        "discord_token": "M"
        + _fake(rng, ALNUM, 23)
        + "."
        + _fake(rng, ALNUM, 6)
        + "."
        + _fake(rng, ALNUM, 27),
        "telegram_token": "123456789:" + _fake(rng, ALNUM, 35),
        "square_oauth": "sq0csp-" + _fake(rng, ALNUM, 43),
        "artifactory_token": "AKC" + _fake(rng, ALNUM, 70),
        "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        + "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
        + _fake(rng, ALNUM + "-_", 43),
        "anthropic_key": "sk-ant-api03-" + _fake(rng, ALNUM + "-_", 93) + "AA",
        "openai_project_key": "sk-proj-" + _fake(rng, ALNUM + "-_", 120),
        "openai_key": "sk-" + _fake(rng, ALNUM, 20) + "T3BlbkFJ" + _fake(rng, ALNUM, 20),
        "huggingface_token": "hf_" + _fake(rng, ALNUM, 34),
        "google_api_key": "AIza" + _fake(rng, ALNUM + "-_", 35),
    }
    planted = {name: (token, token) for name, token in tokens.items()}
    bearer = _fake(rng, ALNUM, 40)
    api_key = _fake(rng, ALNUM, 32)
    planted |= {
        "aws_secret_key": (f'aws_secret_access_key = "{aws_secret}"', aws_secret),
        "url_password": (f"postgres://app:{url_password}@db.internal:5432/prod", url_password),
        "bearer_token": (f"Authorization: Bearer {bearer}", bearer),
        "api_key_header": (f"X-API-Key: {api_key}", api_key),
        "private_key": (private_key, body.splitlines()[2]),
        "secret_keyword": (f'db_password = "{keyword_value}"', keyword_value),
        "env_secret": (f"\nSTRIPE_WEBHOOK_SECRET={env_value}\n", env_value),
    }
    return planted


PLANTED = _planted()
NEAR_MISSES = (
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
    "AAAABJRU5ErkJggg==",
    "integrity sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1t"
    "vj5FvSg==",
    "AbstractSingletonProxyFactoryBeanConfigurationHelperImplementation",
    "pip install scikit-learn; sk-learn is its old name",
    "MAX_TOKENS=4096",
    "PASSWORD_MIN_LENGTH=8",
    "git@github.com:octo/repo.git",
    "https://example.com:8080/path?q=1",
    'password = "${DB_PASSWORD}"',
)


def _blob() -> str:
    """Every planted credential, one as a JSON string with escaped quotes, one twice, and
    every near-miss."""
    secrets = [context for context, _ in PLANTED.values()]
    quoted = json.dumps({"api_key": PLANTED["openai_project_key"][1], "note": 'a "quoted" word'})
    return " ".join([*secrets, quoted, secrets[0], *NEAR_MISSES])


def _plant(value: Any) -> Any:
    """Every text of a JSON value (a string with a space in it and over 20 characters:
    what is said, not ids or roles) with a credential at its start, the blob, and one at
    its end."""
    first, last = PLANTED["github_token"][0], PLANTED["anthropic_key"][0]
    if isinstance(value, str):
        return f"{first} {value} {_blob()} {last}" if " " in value and len(value) > 20 else value
    if isinstance(value, list):
        return [_plant(item) for item in value]
    if isinstance(value, dict):
        return {key: _plant(item) for key, item in value.items()}
    return value


def _plant_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix in (".db", ".sqlite", ".sqlite3"):
        shutil.copy(source, target)
        with sqlite3.connect(target) as connection:
            connection.execute(
                "UPDATE messages SET content = ? || ' ' || content || ' ' || ?", (_blob(), _blob())
            )
        return
    opener: Any = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        text = handle.read()
    try:
        planted = json.dumps(_plant(json.loads(text)), indent=1) + "\n"
    except json.JSONDecodeError:  # JSON lines; a line that is not JSON stays as it is
        lines = []
        for line in text.splitlines():
            try:
                lines.append(json.dumps(_plant(json.loads(line))))
            except json.JSONDecodeError:
                lines.append(line)
        planted = "\n".join(lines) + "\n"
    with opener(target, "wt", encoding="utf-8") as handle:
        handle.write(planted)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every realdata sample (every layout the job reads) and a Hermes state.db, each text
    planted, run with the default scrub and every output written."""
    from tests.test_reader_hermes import make_state_db  # noqa: PLC0415

    root = tmp_path_factory.mktemp("planted")
    for source in sorted(REALDATA.rglob("*")):
        if source.is_file() and source.name != "PROVENANCE.md":
            _plant_file(source, root / "in" / source.relative_to(REALDATA))
    make_state_db(root / "state.db")
    _plant_file(root / "state.db", root / "in" / "hermes" / "state.db")
    (root / "in" / "broken.jsonl").write_text('{"id": "x", "conversations": [' + _blob() + "\n")
    out = root / "out"
    from tests.conftest import compound  # noqa: PLC0415

    monkeypatch = pytest.MonkeyPatch()
    try:
        args = ["pairs", str(root / "in"), "--out", str(out), "--min-words", "1", "--min-ratio", "0"]
        assert compound(monkeypatch, *args, "--emit-messages") == 0
    finally:
        monkeypatch.undo()
    return out


def _written_texts(out: Path) -> str:
    """Everything the run wrote, as text: the JSON files as they are and decoded, and every
    string value of every Parquet file, read back."""
    parts = []
    for path in sorted(out.rglob("*")):
        if path.suffix in (".jsonl", ".json"):
            raw = path.read_text()
            values = (
                [json.loads(line) for line in raw.splitlines() if line] if path.suffix == ".jsonl" else []
            )
            parts += [raw, *(json.dumps(value, ensure_ascii=False) for value in values), *map(str, values)]
        elif path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            for name, dtype in frame.schema.items():
                if dtype in (pl.String, pl.Categorical) or dtype == pl.List(pl.String):
                    parts.append("\n".join(map(str, frame[name].drop_nulls().to_list())))
    return "\n".join(parts)


def test_no_planted_secret_is_written_anywhere(planted_run: Path) -> None:
    written = _written_texts(planted_run)
    stats = json.loads((planted_run / "stats.json").read_text())
    assert stats["messages"] > 1000
    assert stats["unique_pairs"] > 100
    leaked = [name for name, (_, secret) in PLANTED.items() if secret in written]
    assert leaked == []
    for name in {rule.name for rule in SECRET_RULES}:
        assert f"[REDACTED:{name}]" in written, name
    assert set(stats["redactions"]) >= {"aws_access_key", "github_token", "private_key", "secret_keyword"}


def test_near_misses_are_written_as_they_were(planted_run: Path) -> None:
    texts = "\n".join(pl.read_parquet(planted_run / "messages.parquet")["text"].drop_nulls().to_list())
    for near_miss in NEAR_MISSES:
        assert near_miss in texts, near_miss


def test_every_file_layout_was_read(planted_run: Path) -> None:
    stats = json.loads((planted_run / "stats.json").read_text())
    assert stats["unrecognized_files"] == []
    assert {"hermes_db", "claude_code", "codex", "openhands", "sharegpt", "openai"} <= set(stats["formats"])


def _detect_secrets_findings(text: str) -> set[str]:
    """What detect-secrets reports in a text, with the plugins whose rules we take."""
    left_out = {
        "Base64HighEntropyString",  # commit SHAs, UUIDs, images: not secrets
        "HexHighEntropyString",
        "IPPublicDetector",  # personal data, under --scrub secrets,pii
        "CloudantDetector",  # vendor-specific assignments not taken (README)
        "IbmCloudIamDetector",
        "IbmCosHmacDetector",
        "SoftlayerDetector",
    }
    mapping: dict[str, type] = get_mapping_from_secret_type_to_class()
    names = [plugin.__name__ for plugin in mapping.values()]
    plugins = [{"name": name} for name in names if name not in left_out]
    found = set()
    with transient_settings({"plugins_used": plugins}):
        for line in text.splitlines():
            found |= {secret.secret_value for secret in scan_line(line) if secret.secret_value}
    return found


def test_what_detect_secrets_finds_is_redacted() -> None:
    """The differential test: on the planted texts and on every message of the realdata
    samples, each secret detect-secrets reports is gone once scrubbed."""
    messages = run_messages(REALDATA)
    texts = [*messages, *(context for context, _ in PLANTED.values()), _blob()]
    lines = [line for text in texts for line in text.splitlines()]  # detect-secrets reads a line at a time
    frame = pl.DataFrame({"text": lines}).with_columns(
        scrubbed(pl.col("text"), rules_for("secrets")).alias("clean")
    )
    missed = [
        secret
        for text, clean in frame.iter_rows()
        for secret in _detect_secrets_findings(text)
        if secret in clean
    ]
    assert missed == []


def run_messages(folder: Path) -> list[str]:
    from jobs.discover import find_session_files  # noqa: PLC0415
    from jobs.read_batch import read_files  # noqa: PLC0415

    return read_files(find_session_files([folder])).messages["text"].drop_nulls().to_list()


def test_scrubbing_keeps_the_same_pairs_and_none_writes_the_texts_as_they_were(tmp_path: Path) -> None:
    source = tmp_path / "in" / "chat.jsonl"
    source.parent.mkdir()
    sessions = []
    for number, (context, _) in enumerate(PLANTED.values()):
        question = f"Why does my deploy fail with {context}?"
        answer = f"Because the credential {context} was revoked; " + " ".join(["rotate"] * 30)
        conversation = [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
        sessions.append({"id": f"s{number}", "model": "m", "conversations": conversation})
    source.write_text("".join(json.dumps(session) + "\n" for session in sessions))

    plain, raw_samples = run([source], PairRules(scrub="none"), None, sample_size=100)
    clean, samples = run([source], PairRules(), None, sample_size=100)
    assert plain.unique_pairs == clean.unique_pairs == len(sessions)
    assert sum(clean.redactions.values()) >= len(sessions) * 2
    assert not plain.redactions
    assert [sample["pair_id"] for sample in samples] == [sample["pair_id"] for sample in raw_samples]
    for sample, raw, (_, secret) in zip(samples, raw_samples, PLANTED.values(), strict=True):
        assert secret in raw["rich"]
        assert secret not in sample["terse"] + sample["rich"]
        assert sample["redactions"] >= 2
