"""A registration cut short leaves no version and, once the registry is next opened,
nothing at all: no staged copy, no version folder without its register line.

A version exists exactly when its register line is in the audit log. The kill -9 and
full-disk versions of these faults, on a real run, are in ``tests/faults/``.
"""

from __future__ import annotations

import errno
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anomalyflow.registry import bento_store
from anomalyflow.registry.store import AuditLogTampered, Registry, RegistryError
from tests.conftest import decision_record
from tests.unit.registry.conftest import SMOKE_ROWS


def staging(registry: Registry) -> list[str]:
    folder = registry.home / "anomalyflow" / "staging"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def latest(registry: Registry) -> str:
    return (registry.models.root / "latest").read_text()


def dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def no_space(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_copy_that_fills_the_disk_leaves_nothing_staged_or_stored(
    registry: Registry,
    add_version: Callable[..., str],
    saved_detectors: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = add_version()
    before = registry.audit_log.read_bytes()
    copy = shutil.copytree

    def half_then_full(source: Path, target: Path, **kwargs: Any) -> Any:
        if "staging" not in str(target):
            return copy(source, target, **kwargs)
        Path(target, "model.yaml").write_text("half")  # part of it got there
        no_space()

    monkeypatch.setattr(bento_store.shutil, "copytree", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        registry.register(saved_detectors[1], decision_record(True), SMOKE_ROWS)

    assert staging(registry) == []
    assert registry.models.versions() == [first] and latest(registry) == first
    assert registry.audit_log.read_bytes() == before


def test_a_register_line_that_cannot_be_written_takes_the_version_back_out(
    registry: Registry,
    add_version: Callable[..., str],
    saved_detectors: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = add_version()
    before = registry.audit_log.read_bytes()
    monkeypatch.setattr(Registry, "_append", lambda self, line: no_space())

    with pytest.raises(OSError, match="No space left"):
        registry.register(saved_detectors[1], decision_record(True), SMOKE_ROWS)

    assert registry.models.versions() == [first] and latest(registry) == first
    assert staging(registry) == [] and registry.audit_log.read_bytes() == before


def test_a_folder_without_its_register_line_is_no_version_and_the_next_opening_removes_it(
    registry: Registry, add_version: Callable[..., str], saved_detectors: list[Path]
) -> None:
    first = add_version()
    # What a writer killed between its rename and its register line leaves (the same
    # steps, stopped there), and the staged copies of a dead and of a running writer.
    labels = {"stage": "candidate", "gate": "passed"}
    orphan, staged = registry.models.stage(labels, {}, lambda folder: None)
    registry.models.publish(orphan, staged)
    (registry.home / "anomalyflow/staging" / f"{dead_pid()}-{orphan}-x").mkdir()
    running = registry.home / "anomalyflow/staging" / "1-other-y"  # pid 1 runs for good
    running.mkdir()
    assert sorted(registry.models.versions()) == sorted([first, orphan])

    assert [v.version for v in registry.versions()] == [first]
    assert registry.resolve("latest") == first
    for ref in (orphan, orphan[:-1]):
        with pytest.raises(RegistryError):
            registry.resolve(ref)

    Registry(registry.home).recover()  # what opening it for any command does

    assert registry.models.versions() == [first] and latest(registry) == first
    assert staging(registry) == [running.name]
    second = add_version(detector=1)
    assert [e["version"] for e in registry.history()] == [first, second]
    assert sorted(registry.models.versions()) == sorted([first, second])


@pytest.mark.parametrize("loss", ["log removed", "log cut short"])
def test_versions_a_lost_or_cut_log_does_not_register_are_kept_and_the_registry_refuses(
    registry: Registry, add_version: Callable[..., str], saved_detectors: list[Path], loss: str
) -> None:
    """Folders the log lacks were once removed as if a registration had been cut short:
    a removed log, then one registration, deleted every version, production included."""
    first, second = add_version(), add_version(detector=1)
    if loss == "log removed":
        registry.audit_log.unlink()
    else:
        lines = registry.audit_log.read_bytes().splitlines(keepends=True)
        registry.audit_log.write_bytes(lines[0])  # the second version's line is gone

    Registry(registry.home).recover()  # what opening it for any command does
    for read in (registry.versions, registry.history):
        with pytest.raises(AuditLogTampered, match=second):
            read()
    with pytest.raises(AuditLogTampered):
        registry.register(saved_detectors[0], decision_record(True), SMOKE_ROWS)

    assert sorted(registry.models.versions()) == sorted([first, second])


def test_a_stage_label_rewrite_killed_mid_write_leaves_the_labels_whole_and_nothing_behind(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    """A kill while stage labels were rewritten once left ``tmp*.tmp`` in a version folder
    for good; the copy is now written in staging, under its writer's process id."""
    folder = registry.models.root / add_version()
    before = {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys\n"
         "from pathlib import Path\n"
         "from bentoml._internal.models.model import ModelInfo\n"
         "from anomalyflow.registry.store import Registry\n"
         "ModelInfo.dump = lambda info, stream=None: os.kill(os.getpid(), signal.SIGKILL)\n"
         "Registry(Path(sys.argv[1])).models.label_stages(lambda version: 'archived')\n",
         str(registry.home)],
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    assert {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert len(staging(registry)) == 1  # the killed writer's, named after it
    Registry(registry.home).recover()  # as the next command to open the registry does
    assert staging(registry) == []
