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
    disable_telemetry()  # the child process inherits the opt-out
    _dvc(root, "commit", "--force", "--quiet")
    has_remote = _dvc(root, "remote", "default", check=False) is not None
    pushed = _dvc(root, "push") if has_remote else ""
    count = re.search(r"(\d+) files? pushed", pushed or "")
    return LedgerEntry(root / "dvc.lock", int(count.group(1)) if count else 0)


def _dvc(root: Path, *args: str, check: bool = True) -> str | None:
    """Run ``dvc ARGS`` in ``root``; its output, or None when it failed and ``check`` is off."""
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
    if done.returncode == 0:
        return done.stdout
    if not check:
        return None
    problem = (done.stderr or done.stdout).strip().replace("ERROR: ", "")
    raise LedgerError(f"DVC could not record the run (dvc {args[0]}): {problem}")


class LedgerError(RuntimeError):
    """DVC failed to record or push a run (the run's artifacts are still in place)."""
