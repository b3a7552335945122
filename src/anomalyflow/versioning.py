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


def record_run(root: Path = Path(".")) -> LedgerEntry | None:
    """Commit every stage of ``dvc.yaml`` to ``dvc.lock`` and push; None outside DVC."""
    if not (root / "dvc.yaml").exists() or not (root / ".dvc").is_dir():
        return None
    disable_telemetry()  # the child processes inherit the opt-out
    run_dvc(root, "commit", "--force", "--quiet")
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
        raise LedgerError(f"DVC could not record the run (dvc {args[0]}): {problem}")
    return done.stdout + done.stderr


class LedgerError(Refusal, RuntimeError):
    """DVC failed to record or push a run (the run's artifacts are still in place)."""


def record_in_dvc(
    batch: Path, paths: ArtifactPaths, params_file: Path, root: Path = Path(".")
) -> str:
    """Record a flow run of ``data.batch`` in DVC; say what was (or was not) recorded.

    A run on another batch or with another params file is not recorded: dvc.yaml's
    stages read ``data.batch`` and ``params.yaml``, and recording them would credit this
    run's artifacts to inputs it never used.
    """
    if params_file.resolve() != (root / "params.yaml").resolve():
        return (
            f"DVC: not recorded, dvc.yaml reads params.yaml, this run used {params_file}; "
            "copy it to params.yaml to version its runs."
        )
    if batch.resolve() != paths.batch.resolve():
        return (
            f"DVC: not recorded, dvc.yaml versions data.batch ({paths.batch}), not {batch}; "
            "set data.batch to this file to version its runs."
        )
    ledger = record_run(root)
    if ledger is None:
        return "DVC: not a DVC repository here; nothing recorded."
    return f"DVC: recorded {ledger.lock}, pushed {ledger.pushed} files to the remote."
