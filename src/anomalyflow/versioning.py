"""DVC as the ledger: after a flow run, record what was used and produced, and push.

The flow runs the steps itself (with Prefect's retries and artifacts), so DVC does not
re-execute them: ``dvc commit`` records the hashes of the current deps and outs in
``dvc.lock`` exactly as ``dvc repro`` would have, and ``dvc push`` sends the cached data
and weights to the default remote. DVC runs as a child process: its logging binds to the
streams of the first process that uses it, which breaks a second in-process use.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from anomalyflow.errors import Refusal
from anomalyflow.paths import ArtifactPaths
from anomalyflow.telemetry import disable_telemetry


@dataclass(frozen=True)
class LedgerEntry:
    """What DVC recorded for a run."""

    lock: Path
    pushed: int  # files sent to the remote


def record_run(root: Path = Path("."), stages: tuple[str, ...] = ()) -> LedgerEntry | None:
    """Commit ``stages`` (default: every stage of ``dvc.yaml``) to ``dvc.lock`` and push;
    None outside DVC."""
    if not (root / "dvc.yaml").exists() or not (root / ".dvc").is_dir():
        return None
    disable_telemetry()  # the child processes inherit the opt-out
    run_dvc(root, "commit", "--force", *stages)  # not --quiet: it would hide DVC's errors
    try:
        run_dvc(root, "remote", "default")
    except LedgerError:  # no default remote: nothing to push to
        return LedgerEntry(root / "dvc.lock", 0)
    count = re.search(r"(\d+) files? pushed", run_dvc(root, "push"))
    return LedgerEntry(root / "dvc.lock", int(count.group(1)) if count else 0)


def run_dvc(root: Path, *args: str) -> str:
    """Run ``dvc ARGS`` in ``root`` and return what it printed.

    Raises:
        LedgerError: DVC failed; the message is DVC's own.
    """
    env = dict(os.environ)
    # Stage commands call `anomalyflow`: make this environment's scripts findable.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        problem = (done.stderr or done.stdout).strip().replace("ERROR: ", "")
        problem = " ".join(problem.split()) or f"exit code {done.returncode}, no message"
        raise LedgerError(f"DVC could not record the run (dvc {args[0]}): {problem}")
    return done.stdout + done.stderr


class LedgerError(Refusal, RuntimeError):
    """DVC failed to record or push a run (the run's artifacts are still in place)."""


def unversioned_because(
    batch: Path, paths: ArtifactPaths, params_file: Path, root: Path = Path(".")
) -> str | None:
    """Why dvc.yaml's validate and drift stages do not describe a run on ``batch`` with
    ``params_file``; None when they do (``data.batch`` with ``params.yaml``)."""
    if params_file.resolve() != (root / "params.yaml").resolve():
        return f"dvc.yaml reads params.yaml, this run used {params_file}"
    if batch.resolve() != paths.batch.resolve():
        return f"dvc.yaml versions data.batch ({paths.batch}), not {batch}"
    return None


def record_in_dvc(
    batch: Path, paths: ArtifactPaths, params_file: Path, trained: bool, root: Path = Path(".")
) -> str:
    """Record a flow run in DVC; say what was (or was not) recorded.

    A run with another params file is not recorded: dvc.yaml's stages read
    ``params.yaml``. A run on another batch (``--data``, a scheduled batch) records only
    what it changed: the window it grew, and the model stages when it ``trained``; its
    validation and drift describe its own batch and stay in a folder of the run's own.
    """
    why_not = unversioned_because(batch, paths, params_file, root)
    if why_not and params_file.resolve() != (root / "params.yaml").resolve():
        return f"DVC: not recorded, {why_not}; copy it to params.yaml to version its runs."
    from anomalyflow.pipeline.stages import BATCH_CHECKS, STAGES, WINDOW_STAGE

    stages: tuple[str, ...] = ()  # every stage
    if why_not:
        grown = (WINDOW_STAGE,)
        stages = tuple(s.name for s in STAGES if s.name not in BATCH_CHECKS) if trained else grown
    ledger = record_run(root, stages)
    if ledger is None:
        return "DVC: not a DVC repository here; nothing recorded."
    if not why_not:
        return f"DVC: recorded {ledger.lock}, pushed {ledger.pushed} files to the remote."
    recorded = "the window and model stages" if trained else "the batch, pending training,"
    return (
        f"DVC: recorded {recorded} in {ledger.lock}, pushed {ledger.pushed} files. "
        f"This batch's validation and drift stay with the run's reports ({why_not})."
    )
