"""``kill -9`` at each step of a run: pretrain, register, promote, DVC record (issue 14).

Each test starts a real ``anomalyflow run`` in a copy of the fault suite's project,
kills it at one step, and checks what a user relies on: production unchanged (or the new
version wholly in place with its smoke-test record), no version folder without its
audit line, nothing half-written, ``history --verify`` passing, and the next run
completing. The step is found by watching files and processes appear; the register step
is too short to watch, so it is frozen at its rename by a fault hook of the suite's own
(``hooks/sitecustomize.py``) and killed there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.faults.test_faults import (
    ANOMALYFLOW,
    MODELS,
    PARAMS,
    background,
    base,
    cli,
    leftovers,
    production,
    project,
    start,
)
from tests.faults.test_faults import _wait_for as wait_for
from tests.integration.test_dvc_ledger import _dvc, small_pipeline

__all__ = ["background", "base", "project"]  # fixtures, used by name

HOOKS = Path(__file__).with_name("hooks")
FINETUNE = "finetune: {frozen_epochs: 2, max_epochs: 5, max_steps: 150}"
# A pretraining long enough to be caught in the act (tens of seconds on 2 cores).
LONG_PRETRAIN = PARAMS.replace(
    "pretrain: {max_epochs: 6, max_steps: 150}", "pretrain: {max_epochs: 400, max_steps: 4000}"
)
# Other weights that pass the gate beside production: registered, then promoted.
RETRAIN = (
    PARAMS.replace(FINETUNE, FINETUNE[:-1] + ", learning_rate: 0.0015}")
    + "gate: {auprc_tolerance: 1.0}\n"
)
assert PARAMS != LONG_PRETRAIN and RETRAIN.count("learning_rate") == 1


def descendants(pid: int) -> dict[int, str]:
    """Every live process below ``pid``, by pid, with its command line."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child in [c for c, p in parents.items() if p == parent]:
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            found[child] = command.replace(b"\0", b" ").decode(errors="replace")
            frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_intact(project: Path, allowed: set[str], killed: int | None = None) -> str:
    """The registry verifies, production is one of ``allowed`` (or a new version with a
    passed smoke test), every stored version is registered, nothing is half-written but
    the temporary files named after the ``killed`` writer (the next run's to sweep).
    Returns production."""
    assert cli(project, "history", "--verify").returncode == 0
    now = production(project)
    history = json.loads(cli(project, "history", "--json").stdout)  # newest first
    if now not in allowed:
        promotion = [e for e in history if e["action"] == "promote" and e["version"] == now]
        assert promotion and promotion[0]["smoke_test"]["passed"], history
    registered = {e["version"] for e in history if e["action"] == "register"}
    stored = {p.name for p in (project / MODELS).iterdir() if p.is_dir()}
    assert stored == registered, f"stored without a register line: {stored - registered}"
    for version in stored:
        assert (project / MODELS / version / "detector/weights.safetensors").is_file()
    assert [p for p in leftovers(project) if f".pid{killed}." not in p.name] == []
    return now


def kill_9(run: subprocess.Popen[str]) -> None:
    os.kill(run.pid, signal.SIGKILL)  # the run itself, as `kill -9 <pid>` does
    assert run.wait(30) == -signal.SIGKILL


def next_run_completes(project: Path) -> None:
    after = cli(project, "run", timeout=600)
    assert after.returncode == 0, after.stdout + after.stderr


@pytest.mark.slow
def test_kill_9_while_pretraining(
    base: tuple[Path, str, str],
    project: Path,
    background: list[subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    """Killed while saving an epoch's checkpoint (frozen before its rename)."""
    _, prod, _ = base
    (project / "params.yaml").write_text(LONG_PRETRAIN)  # new pretraining: it reruns
    backbone = (project / "artifacts/backbone").stat().st_mtime_ns
    marker = tmp_path / "frozen"
    run = start_with_fault(project, "checkpoints/pretrain.ckpt", marker)
    background.append(run)
    wait_for(marker.exists, run, 300)
    kill_9(run)

    # Killed outright, the run could not clean up; its temporary file names it.
    (partial,) = project.glob("artifacts/runs/*/checkpoints/.pretrain.ckpt.*.partial")
    assert f".pid{run.pid}." in partial.name
    assert assert_intact(project, {prod}, killed=run.pid) == prod
    assert (project / "artifacts/backbone").stat().st_mtime_ns == backbone
    next_run_completes(project)  # resumes from the checkpoint, once it swept the partial
    assert list((project / "artifacts/runs").iterdir()) == []  # the killed run's folder too
    assert_intact(project, {prod})


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["before-rename", "before-audit-line"])
def test_kill_9_while_registering(
    moment: str,
    base: tuple[Path, str, str],
    project: Path,
    background: list[subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    """Frozen with the version folder whole in staging, or in the store before its audit
    line is written, then killed."""
    _, prod, _ = base
    (project / "params.yaml").write_text(RETRAIN)
    marker = tmp_path / "frozen"
    target = f"{MODELS}/" if moment == "before-rename" else f"{MODELS}/latest"
    run = start_with_fault(project, target, marker)
    background.append(run)
    wait_for(marker.exists, run, 300)
    kill_9(run)

    assert assert_intact(project, {prod}) == prod
    next_run_completes(project)
    assert assert_intact(project, {prod}) == prod


def start_with_fault(project: Path, target: str, marker: Path) -> subprocess.Popen[str]:
    """``anomalyflow run`` that freezes before a rename onto a path containing ``target``."""
    env = {
        "PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]),
        "ANOMALYFLOW_FAULT_FREEZE": target,
        "ANOMALYFLOW_FAULT_MARKER": str(marker),
    }
    return subprocess.Popen(
        [str(ANOMALYFLOW), "run"],
        cwd=project,
        env=os.environ | {"OMP_NUM_THREADS": "1"} | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_kill_9_during_the_promotion_smoke_test(
    base: tuple[Path, str, str], project: Path, background: list[subprocess.Popen[str]]
) -> None:
    _, prod, _ = base
    (project / "params.yaml").write_text(RETRAIN)
    run = start(project, "run")
    background.append(run)
    servers: dict[int, str] = {}

    def smoke_server_started() -> bool:
        servers.update({p: c for p, c in descendants(run.pid).items() if "bentoml" in c})
        return bool(servers)

    wait_for(smoke_server_started, run, 400)
    kill_9(run)

    # The smoke test's server goes with the run instead of serving on, orphaned.
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in servers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [c for p, c in servers.items() if alive(p)], "smoke server outlived the run"
    assert assert_intact(project, {prod}) == prod
    next_run_completes(project)  # it reports the unfinished promotion; promote finishes it
    unfinished = json.loads(cli(project, "models", "--json").stdout)[0]["version"]
    assert cli(project, "promote", unfinished).returncode == 0
    assert assert_intact(project, {prod}) == unfinished


@pytest.fixture(scope="module")
def dvc_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project (the repository's dvc.yaml, a folder remote) with production."""
    project = tmp_path_factory.mktemp("dvc")
    here = Path.cwd()
    os.chdir(project)
    try:
        small_pipeline()
        _dvc("init", "--no-scm", "-q")
        _dvc("remote", "add", "-d", "local", str(project.parent / "dvc-remote"))
    finally:
        os.chdir(here)
    first = cli(project, "run", timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    return project


@pytest.mark.slow
def test_kill_9_while_dvc_records_the_run(
    dvc_base: Path, tmp_path: Path, background: list[subprocess.Popen[str]]
) -> None:
    project = tmp_path / "project"
    subprocess.run(["cp", "-a", str(dvc_base), str(project)], check=True)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["finetune"]["learning_rate"] = 0.0015
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    prod = production(project)
    run = start(project, "run")
    background.append(run)
    dvc: dict[int, str] = {}

    def dvc_started() -> bool:
        dvc.update({p: c for p, c in descendants(run.pid).items() if "-m dvc" in c})
        return bool(dvc)

    wait_for(dvc_started, run, 400)
    os.killpg(run.pid, signal.SIGKILL)  # the run and DVC with it, mid-write
    run.wait(30)

    assert_intact(project, {prod})  # the promotion, if any, finished before DVC
    lock = project / "dvc.lock"
    assert not lock.exists() or isinstance(yaml.safe_load(lock.read_text()), dict)
    next_run_completes(project)
    assert_intact(project, {prod})
    assert "up to date" in _dvc("status", cwd=project)  # the ledger caught up
