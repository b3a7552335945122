"""The run state (``artifacts/state.json``): what the last runs checked and trained on.

This module alone reads and writes it; the retraining policy decides from what it holds.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from anomalyflow.atomic import sweep_partials, write_json
from anomalyflow.data.loaders import Table
from anomalyflow.data.schema import Schema
from anomalyflow.errors import Refusal
from anomalyflow.integrity import read_json_object
from anomalyflow.paths import ArtifactPaths


class RunInProgress(Refusal):
    """Another run works in the same artifacts folder; this one would share its files."""


@contextmanager
def exclusive_run(paths: ArtifactPaths, wait: bool = False) -> Iterator[Path]:
    """Hold the artifacts folder for one run at a time: refuse at once, or ``wait``.

    Two runs in one project once shared checkpoints and candidate files: the second
    resumed from the first's checkpoint and registered its candidate as its own. The
    lock is the kernel's (``flock``), so it is released however the holder ends. A
    holder killed mid-write leaves a temporary file: each run starts by sweeping those
    of writers no longer running.

    Yields:
        The run's own folder (``artifacts/runs/<UTC time>-pid<pid>/``) for its checkpoints
        and candidate, removed when the run ends.
    """
    paths.artifacts_dir.mkdir(parents=True, exist_ok=True)
    lock_file = paths.artifacts_dir / ".run.lock"
    with lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInProgress(
                f"{lock_file}: another anomalyflow run ({holder}) is working in "
                f"{paths.artifacts_dir}; wait for it to end (or run with --wait)"
            ) from None
        handle.truncate(0)
        started = datetime.now(UTC)
        handle.write(f"pid {os.getpid()}, started {started.isoformat(timespec='seconds')}")
        handle.flush()
        sweep_partials(paths.artifacts_dir)
        folder = _own_folder(paths.runs, started)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _own_folder(runs: Path, started: datetime) -> Path:
    """A new folder for the run holding the lock. Any other folder there is a killed
    run's: its checkpoints are taken over (resumed only by a run whose data and settings
    match theirs), the rest removed."""
    folder = runs / f"{started.strftime('%Y%m%dT%H%M%S%f')}-pid{os.getpid()}"
    (folder / "checkpoints").mkdir(parents=True)
    for killed in sorted(p for p in runs.iterdir() if p != folder):  # oldest first
        for checkpoint in (killed / "checkpoints").glob("*.ckpt"):
            os.replace(checkpoint, folder / "checkpoints" / checkpoint.name)
        shutil.rmtree(killed, ignore_errors=True)
    return folder


@dataclass(frozen=True)
class RunState:
    """What the skip rules and the retraining policy remember between runs."""

    checked: tuple[str, ...] | None = None  # batch, params and reference digests last checked
    window_digest: str | None = None  # the training window the latest model learned from
    trained_at: float | None = None  # epoch seconds of that training
    training_digest: str | None = None  # the training params it was trained with


def read_state(paths: ArtifactPaths) -> RunState:
    """The saved state, or an empty one before the first run."""
    if not paths.state.exists():
        return RunState()
    saved = read_json_object(paths.state)
    checked = saved.get("checked")
    return RunState(
        checked=tuple(checked) if checked else None,
        window_digest=saved.get("window_digest"),
        trained_at=saved.get("trained_at"),
        training_digest=saved.get("training_digest"),
    )


def has_candidate(paths: ArtifactPaths) -> bool:
    """A trained candidate is in place (a run may have stopped before saving one)."""
    return (paths.candidate / "detector.json").exists()


def record_check(paths: ArtifactPaths, checked: tuple[str, ...]) -> None:
    """Remember that this batch passed validation and drift with these params."""
    _write(paths.state, replace(read_state(paths), checked=checked))


def record_training(
    paths: ArtifactPaths, batch: Table, schema: Schema, window_digest: str, training_digest: str
) -> None:
    """Remember what this run trained on: for the policy and the next label-rate check."""
    if schema.label and batch.y is not None:
        paths.reference_labels.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({schema.label: batch.y}).to_parquet(paths.reference_labels)
    trained = replace(
        read_state(paths),
        window_digest=window_digest,
        trained_at=time.time(),
        training_digest=training_digest,
    )
    _write(paths.state, trained)


def _write(path: Path, state: RunState) -> None:
    write_json(path, {k: v for k, v in asdict(state).items() if v is not None})
