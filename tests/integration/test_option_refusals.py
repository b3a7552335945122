"""Options and requests no run can serve are refused in one line, exit 2, before anything
starts or is written.

Each case once started a server, ran for half a minute, or bound another port than it said.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.registry.store import Registry
from tests.conftest import decision_record, make_blobs

runner = CliRunner()


def _files() -> set[Path]:
    return {p for p in Path(".").rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "command",
    [
        ["schedule", "--cron", "not a cron"],  # was refused only after a server started
        ["schedule", "--cron", "99 99 * * *"],
        ["schedule", "--cron", "0 3 * * *", "--port", "70000"],
        ["schedule", "--once", "--incoming", "absent"],  # was "0 batches taken"
        ["schedule", "--once", "--incoming", "params.yaml"],
        ["replay", "--days", "99999999999999999999"],  # was an OverflowError
        ["replay", "--days", "2", "--json", "folder"],  # was refused after the replay ran
        ["replay", "--days", "2", "--json", "params.yaml/x.json"],  # a traceback after it ran
    ],
    ids=lambda command: " ".join(command),
)
def test_an_unusable_option_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("runtime: {progress: false}\n")
    Path("folder").mkdir()
    before = _files()

    refused = runner.invoke(app, command)

    assert refused.exit_code == 2, refused.output
    assert _files() == before


@pytest.mark.parametrize(
    "where",
    [["--port", "70000"], ["--port", "0"], ["--port", "-1"], ["--host", "not a host!"]],
    ids=" ".join,
)
def test_serve_refuses_a_port_outside_1_to_65535_or_a_host_it_cannot_bind(
    tmp_path: Path, saved_detectors: list[Path], where: list[str]
) -> None:
    (tmp_path / "params.yaml").write_text("registry: {model_name: blobs}\n")
    registry = Registry(tmp_path / ".bentoml", "blobs")
    smoke = make_blobs(rows=16)[0]
    version = registry.register(saved_detectors[0], decision_record(), smoke).version

    # Its own process: a port taken would exec the server in place of this one. 70000 was
    # served on 70000 - 65536, and 0 on the default port.
    serve = [sys.executable, "-m", "anomalyflow", "serve", "--model", version, *where]
    token = {"ANOMALYFLOW_API_TOKEN": "secret"}  # beyond loopback: the token is not the issue
    done = subprocess.run(
        serve, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=os.environ | token
    )

    assert done.returncode == 2, done.stdout + done.stderr


def test_serve_refuses_a_port_in_use_in_one_line(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    """BentoML found it once started: a traceback, exit 1."""
    import socket

    (tmp_path / "params.yaml").write_text("registry: {model_name: blobs}\n")
    registry = Registry(tmp_path / ".bentoml", "blobs")
    smoke = make_blobs(rows=16)[0]
    version = registry.register(saved_detectors[0], decision_record(), smoke).version
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        serve = [sys.executable, "-m", "anomalyflow", "serve", "--model", version, "--port", port]
        done = subprocess.run(serve, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_report_before_any_run_is_refused_without_writing_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("runtime: {progress: false}\n")

    refused = runner.invoke(app, ["report"])

    assert refused.exit_code == 2, refused.output
    assert _files() == {Path("params.yaml")}  # the built-in data was generated, then refused


@pytest.mark.parametrize(
    ("setting", "taken"),
    [
        ("paths: {artifacts_dir: notes}", "file"),  # was a FileExistsError after Prefect started
        ("data: {incoming: notes}", "file"),
        ("data: {reference: notes.parquet}", "folder"),  # was an IsADirectoryError traceback
        ("data: {holdout: notes.parquet}", "folder"),
    ],
    ids=lambda value: value,
)
def test_a_file_where_a_folder_belongs_or_the_reverse_is_refused_before_the_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, taken: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(f"runtime: {{progress: false}}\n{setting}\n")
    if taken == "file":
        Path("notes").write_text("mine")
    else:
        Path("notes.parquet").mkdir()
    before = _files()

    refused = runner.invoke(app, ["run"])

    assert refused.exit_code == 2, refused.output
    assert _files() == before
