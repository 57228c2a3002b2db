"""Inputs and ``--out`` as filesystem URIs: ``s3://`` against a local S3 server (moto's,
started here on 127.0.0.1: no real network), and ``file://``; the same outputs as a
run on the same files by their local paths, bar the paths themselves."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import fsspec
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.conftest import EXAMPLE_ARCHIVE, compound, local_ray_instance
from tests.test_reader_hermes import make_state_db

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BUCKET = "sessions"
#: Outputs compared as text, with the input's URI put back to its local path.
TEXT_OUTPUTS = ("pairs.jsonl", "stats.json", "quarantine.jsonl")
PARQUET_OUTPUTS = ("pairs", "candidates")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, and the environment that points boto (s3fs) at it
    with fake credentials, for the module; the bucket ``BUCKET`` made."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 (a dev dependency)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        _clear_s3fs_cache()
        fsspec.filesystem("s3").mkdir(BUCKET)
        yield endpoint
        _clear_s3fs_cache()
    server.stop()


def _clear_s3fs_cache() -> None:
    """s3fs keeps a filesystem per set of options: a new environment needs a new one."""
    fsspec.get_filesystem_class("s3").clear_instance_cache()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example archive, with a Hermes ``state.db`` (copied to a local file to be read)."""
    folder = tmp_path_factory.mktemp("uris") / "archive"
    shutil.copytree(EXAMPLE_ARCHIVE, folder)
    (folder / "hermes").mkdir()
    make_state_db(folder / "hermes" / "state.db")
    return folder


@pytest.fixture(scope="module")
def local_run(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run by local paths, which the others are compared with."""
    out = tmp_path_factory.mktemp("uris") / "local-out"
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert compound(monkeypatch, "pairs", str(archive), "--out", str(out)) == 0
    return out


@pytest.fixture(scope="module")
def s3_archive(s3_endpoint: str, archive: Path) -> str:
    """The archive uploaded under ``s3://BUCKET/archive``."""
    fsspec.filesystem("s3", endpoint_url=s3_endpoint).put(str(archive), f"{BUCKET}/archive", recursive=True)
    return f"s3://{BUCKET}/archive"


def assert_same_outputs(local: Path, other: Path, *, uri: str, path: Path) -> None:
    """``other``'s outputs are ``local``'s, once ``uri`` (the input as ``other``'s run named
    it) reads as ``path`` (as the local run named it)."""
    for name in TEXT_OUTPUTS:
        text = (other / name).read_text()
        assert uri in text or name == "quarantine.jsonl", name
        assert text.replace(uri, str(path)) == (local / name).read_text(), name
    for name in PARQUET_OUTPUTS:
        frame = pl.read_parquet(other / f"{name}.parquet")
        assert frame["file"].str.starts_with(uri).all()
        restored = frame.with_columns(
            pl.col(column).str.replace(uri, str(path), literal=True)
            for column, dtype in frame.schema.items()
            if dtype == pl.String
        )
        assert_frame_equal(restored, pl.read_parquet(local / f"{name}.parquet"))


def test_s3_in_and_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, archive: Path, local_run: Path, s3_archive: str
) -> None:
    out_uri = f"s3://{BUCKET}/out"
    assert compound(monkeypatch, "pairs", s3_archive, "--out", out_uri) == 0
    fs = fsspec.filesystem("s3")
    written = sorted(name.removeprefix(f"{BUCKET}/out/") for name in fs.find(f"{BUCKET}/out"))
    assert written == sorted(path.name for path in local_run.iterdir())
    downloaded = tmp_path / "out"
    fs.get(f"{BUCKET}/out/", str(downloaded), recursive=True)
    assert_same_outputs(local_run, downloaded, uri=s3_archive, path=archive)
    stats = json.loads((downloaded / "stats.json").read_text())
    assert stats["formats"]["hermes_db"]["messages"] > 0  # the database, read from its copy


def test_a_later_run_replaces_the_earlier_runs_objects(
    monkeypatch: pytest.MonkeyPatch, local_run: Path, s3_archive: str
) -> None:
    """What an earlier run wrote under names this one does not write (messages, partition
    folders) is removed, as a local run removes it; stats.json is uploaded last."""
    out_uri = f"s3://{BUCKET}/twice"
    fs = fsspec.filesystem("s3")
    extra = ("--emit-messages", "--partition-by", "model")
    assert compound(monkeypatch, "pairs", s3_archive, "--out", out_uri, *extra) == 0
    assert fs.exists(f"{BUCKET}/twice/messages")
    assert compound(monkeypatch, "pairs", s3_archive, "--out", out_uri) == 0
    fs.invalidate_cache()
    written = sorted(name.removeprefix(f"{BUCKET}/twice/") for name in fs.find(f"{BUCKET}/twice"))
    assert written == sorted(path.name for path in local_run.iterdir())


def test_s3_in_local_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, archive: Path, local_run: Path, s3_archive: str
) -> None:
    """One file and one folder named by URIs, beside a local folder."""
    assert compound(monkeypatch, "pairs", s3_archive, "--out", str(tmp_path)) == 0
    assert_same_outputs(local_run, tmp_path, uri=s3_archive, path=archive)


def test_files_named_by_uri(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, archive: Path, s3_archive: str
) -> None:
    """Files named one by one, by URI and by local path, in the order given."""
    names = ("edge-cases/edge.jsonl", "agents/codex/rollout-large.jsonl.gz", "hermes/state.db")
    local, by_uri = tmp_path / "local", tmp_path / "by-uri"
    assert compound(monkeypatch, "pairs", *(str(archive / name) for name in names), "--out", str(local)) == 0
    uris = [f"{s3_archive}/{name}" for name in names]
    assert compound(monkeypatch, "pairs", *uris, "--out", str(by_uri)) == 0
    assert_same_outputs(local, by_uri, uri=s3_archive, path=archive)


def test_file_uris_in_and_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, archive: Path, local_run: Path
) -> None:
    uri = archive.as_uri()
    out = tmp_path / "out"
    assert compound(monkeypatch, "pairs", uri, "--out", out.as_uri()) == 0
    assert_same_outputs(local_run, out, uri=uri, path=archive)


@pytest.fixture(scope="module")
def ray_instance(s3_endpoint: str) -> Iterator[None]:
    """A local Ray instance, started once the environment points at the S3 server: its
    workers inherit that environment, as a cluster's nodes have their own credentials.
    (Not ``tests.test_ray_engine``'s fixture: that one starts before this environment.)"""
    assert os.environ["AWS_ENDPOINT_URL"] == s3_endpoint  # what the workers inherit
    with local_ray_instance():
        yield


@pytest.mark.usefixtures("ray_instance")
def test_s3_on_the_ray_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, archive: Path, local_run: Path, s3_archive: str
) -> None:
    out_uri = f"s3://{BUCKET}/ray-out"
    assert compound(monkeypatch, "pairs", s3_archive, "--out", out_uri, "--engine", "ray") == 0
    downloaded = tmp_path / "out"
    fsspec.filesystem("s3").get(f"{BUCKET}/ray-out/", str(downloaded), recursive=True)
    assert_same_outputs(local_run, downloaded, uri=s3_archive, path=archive)


@pytest.mark.usefixtures("s3_endpoint")
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["nosuch://bucket/archive"], "no filesystem knows the protocol nosuch://"),
        (["abfs://container/archive"], "the abfs:// filesystem is not installed"),
        (["s3://no-such-bucket/archive"], "no such file or directory: s3://no-such-bucket/archive"),
        ([f"s3://{BUCKET}/nothing-here"], "no such file or directory"),
        ([str(EXAMPLE_ARCHIVE), "--out", "s3://no-such-bucket/out"], "no such bucket: no-such-bucket"),
        ([str(EXAMPLE_ARCHIVE), "--out", f"s3://{BUCKET}/inc", "--incremental"], "local paths only"),
    ],
)
def test_bad_uris_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    says: str,
) -> None:
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "out")]
    capsys.readouterr()
    assert compound(monkeypatch, "pairs", *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert says in err
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("s3_archive")
def test_no_credentials_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    _clear_s3fs_cache()
    try:
        capsys.readouterr()
        code = compound(monkeypatch, "pairs", f"s3://{BUCKET}/archive", "--out", str(tmp_path / "out"))
    finally:
        _clear_s3fs_cache()
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert "credentials" in err.lower()
