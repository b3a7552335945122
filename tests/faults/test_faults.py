"""Faults injected into a real project through the CLI (issue 14).

Each test damages a project that has a production model (corrupt or truncated weights,
a tampered audit log, ``kill -9`` mid-run, a second run at once) and checks that the
registry fails closed: production unchanged or the new version wholly in place, nothing
half-written, and every refusal an exit code 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from anomalyflow.pipeline.data import SYNTHETIC_SCHEMA
from anomalyflow.registry.naming import audit_log_path, derived_model_name
from tests.integration.test_main_job import SMALL

ANOMALYFLOW = Path(sys.executable).with_name("anomalyflow")
# The SMALL project's model name, derived from the built-in data set's features.
NAME = derived_model_name(SYNTHETIC_SCHEMA.features)
MODELS = Path(".bentoml/models") / NAME
AUDIT = audit_log_path(Path(".bentoml"), NAME)
PARAMS = SMALL.replace("runtime: {progress: false}", "runtime: {num_threads: 1, progress: false}")
# A fine-tuning that lasts long enough to be caught in the act (about 20 s on 2 cores).
LONG_FINETUNE = PARAMS.replace(
    "finetune: {frozen_epochs: 2, max_epochs: 5, max_steps: 150}",
    "finetune: {frozen_epochs: 2, max_epochs: 300, max_steps: 20000, patience: 1000,\n"
    "           learning_rate: 0.003}",
)
# Other weights (another learning rate), judged by a floor no model reaches.
GATE_FAILS = (
    PARAMS.replace(
        "finetune: {frozen_epochs: 2, max_epochs: 5, max_steps: 150}",
        "finetune: {frozen_epochs: 2, max_epochs: 5, max_steps: 150, learning_rate: 0.002}",
    )
    + "gate: {min_auprc: 0.99}\n"
)
assert SMALL != PARAMS != LONG_FINETUNE and GATE_FAILS.count("learning_rate") == 1


def cli(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``anomalyflow ARGS`` in ``project`` as a user runs it, one torch thread."""
    return subprocess.run(
        [str(ANOMALYFLOW), *args],
        cwd=project,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(project: Path, *args: str) -> subprocess.Popen[str]:
    """``anomalyflow ARGS`` in the background, in a process group of its own."""
    return subprocess.Popen(
        [str(ANOMALYFLOW), *args],
        cwd=project,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def registry_snapshot(project: Path) -> tuple[dict[str, str], bytes]:
    """The stored versions' files and the audit log's bytes."""
    return digest(project / MODELS), (project / AUDIT).read_bytes()


def production(project: Path) -> str:
    result = cli(project, "models", "--json")
    assert result.returncode == 0, result.stderr
    (version,) = [v["version"] for v in json.loads(result.stdout) if v["stage"] == "production"]
    return str(version)


def leftovers(project: Path) -> list[Path]:
    """Half-written files: atomic writes' ``*.partial`` and the registry's staging."""
    found = [p for top in ("artifacts", ".bentoml") for p in (project / top).rglob("*.partial")]
    staging = project / ".bentoml/anomalyflow/staging"
    return found + (sorted(staging.iterdir()) if staging.is_dir() else [])


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A project with production P (gate passed) and candidate C (gate failed): (dir, P, C)."""
    project = tmp_path_factory.mktemp("base")
    (project / "params.yaml").write_text(PARAMS)
    first = cli(project, "run")
    assert first.returncode == 0, first.stdout + first.stderr
    (project / "params.yaml").write_text(GATE_FAILS)
    second = cli(project, "run")
    assert second.returncode == 0, second.stdout + second.stderr
    (project / "params.yaml").write_text(PARAMS)
    listed = json.loads(cli(project, "models", "--json").stdout)
    assert len(listed) == 2, listed
    stages = {v["stage"]: v for v in listed}
    assert stages["production"]["gate"] == "passed" and stages["candidate"]["gate"] == "failed"
    return project, stages["production"]["version"], stages["candidate"]["version"]


@pytest.fixture
def project(base: tuple[Path, str, str], tmp_path: Path) -> Path:
    """A copy of the base project for one test to damage."""
    copy = tmp_path / "project"
    shutil.copytree(base[0], copy, symlinks=True)
    return copy


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - 100] ^= 0xFF  # inside the tensors, past the safetensors header
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [flip_a_byte, truncate], ids=["corrupt", "truncated"])
def test_damaged_weights_are_refused_by_score_and_promote(
    damage: Callable[[Path], None], base: tuple[Path, str, str], project: Path
) -> None:
    _, prod, candidate = base
    damage(project / MODELS / prod / "detector/weights.safetensors")
    damage(project / MODELS / candidate / "detector/weights.safetensors")
    before = registry_snapshot(project)

    scored = cli(project, "score", "--input", "data/holdout.parquet", "--output", "out.parquet")
    assert scored.returncode == 2
    assert prod in scored.stderr
    assert not (project / "out.parquet").exists()
    assert not list(project.glob("*out.parquet*"))  # no partial output either
    by_name = cli(
        project, "score", "--model", candidate, "--input", "data/holdout.parquet",
        "--output", "out.parquet",
    )  # fmt: skip
    assert by_name.returncode == 2 and candidate in by_name.stderr
    assert not list(project.glob("*out.parquet*"))

    # The gate is overridden on purpose; the weights' check is not.
    forced = cli(project, "promote", candidate, "--force", "--reason", "fault test")
    assert forced.returncode == 2
    assert candidate in forced.stderr

    assert registry_snapshot(project) == before
    assert cli(project, "history", "--verify").returncode == 0
    assert production(project) == prod
    assert leftovers(project) == []


def _forged_promotion(version: str, audit: bytes) -> str:
    """A well-formed promotion of ``version`` copied from a real line, but not chained."""
    real = next(
        json.loads(line) for line in audit.splitlines() if json.loads(line)["action"] == "promote"
    )
    forged = real | {"version": version, "revision": len(audit.splitlines()) + 1}
    forged.pop("prev_sha256")
    return json.dumps(forged)


@pytest.mark.parametrize("garbage", ["42", "{}", "bare_promotion", "unchained_promotion"])
def test_a_tampered_audit_log_stops_registry_commands(
    garbage: str, base: tuple[Path, str, str], project: Path
) -> None:
    _, prod, candidate = base
    audit = (project / AUDIT).read_bytes()
    line = {
        "bare_promotion": json.dumps({"action": "promote", "version": candidate}),
        "unchained_promotion": _forged_promotion(candidate, audit),
    }.get(garbage, garbage)
    assert audit.endswith(b"\n")
    (project / AUDIT).write_bytes(audit + line.encode() + b"\n")
    number = len(audit.splitlines()) + 1
    before = registry_snapshot(project)

    for command in (
        ["models"],
        ["promote", candidate, "--force", "--reason", "fault test"],
        ["rollback", "--reason", "fault test"],
        ["history", "--verify"],
    ):
        result = cli(project, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f"line {number}" in result.stderr, (command, result.stderr)
        assert registry_snapshot(project) == before, command

    # Removing the forged line is all it takes: production was never changed.
    (project / AUDIT).write_bytes(audit)
    assert production(project) == prod
    assert leftovers(project) == []


def _wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[str], seconds: float
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"ended first (exit {process.returncode}):\n" + str(
            process.stdout.read() if process.stdout else ""
        )
        assert time.monotonic() < deadline, f"not reached within {seconds} s"
        time.sleep(0.05)


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; their groups are killed when it ends, however it ends."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        with contextlib.suppress(ProcessLookupError):  # its own group: only what it started
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.slow
def test_kill_9_while_fine_tuning_leaves_production_and_the_next_run_completes(
    base: tuple[Path, str, str], project: Path, background: list[subprocess.Popen[str]]
) -> None:
    _, prod, _ = base
    (project / "params.yaml").write_text(LONG_FINETUNE)  # new params: the run retrains
    registry_before = registry_snapshot(project)
    candidate_before = digest(project / "artifacts/candidate")
    runs = project / "artifacts/runs"

    run = start(project, "run")
    background.append(run)
    # fine-tuning has written an epoch in the run's own folder
    _wait_for(lambda: any(runs.glob("*/checkpoints/finetune.ckpt")), run, 240)
    time.sleep(1.0)  # and is well into the next
    os.kill(run.pid, signal.SIGKILL)  # the run itself, as `kill -9 <pid>` does
    assert run.wait(30) == -signal.SIGKILL

    assert registry_snapshot(project) == registry_before
    assert digest(project / "artifacts/candidate") == candidate_before
    assert cli(project, "history", "--verify").returncode == 0
    assert production(project) == prod
    assert leftovers(project) == []

    # The killed run's lock went with it (its Prefect server may still be running).
    after = cli(project, "run", timeout=400)
    assert after.returncode == 0, after.stdout + after.stderr
    assert list(runs.iterdir()) == []  # the killed run's folder and checkpoint went too
    assert cli(project, "history", "--verify").returncode == 0
    listed = json.loads(cli(project, "models", "--json").stdout)
    assert len(listed) == 3  # the resumed run registered one new, whole version
    new = next(v for v in listed if v["version"] not in (prod, base[2]))
    assert (project / MODELS / new["version"] / "detector/weights.safetensors").is_file()
    assert leftovers(project) == []


@pytest.mark.slow
def test_a_second_run_is_refused_while_the_first_holds_the_project(
    base: tuple[Path, str, str], project: Path, background: list[subprocess.Popen[str]]
) -> None:
    (project / "params.yaml").write_text(LONG_FINETUNE)
    lock = project / "artifacts/.run.lock"

    first = start(project, "run")
    background.append(first)
    # The holder writes its pid into the lock file once it has the lock.
    _wait_for(lambda: re.search(rf"\b{first.pid}\b", lock.read_text()) is not None, first, 240)
    second = cli(project, "run", timeout=240)
    assert second.returncode == 2, second.stdout + second.stderr
    assert first.poll() is None  # the refusal came while the first still held the lock

    out, _ = first.communicate(timeout=400)
    assert first.returncode == 0, out
    assert cli(project, "history", "--verify").returncode == 0
    listed = json.loads(cli(project, "models", "--json").stdout)
    assert len(listed) == 3  # the first run's version, registered once
    assert leftovers(project) == []
