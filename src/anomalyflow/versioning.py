"""DVC as the ledger: after a flow run, record what was used and produced, and push.

The flow runs the steps itself (with Prefect's retries and artifacts), so DVC does not
re-execute them: ``dvc commit`` records the hashes of the current deps and outs in
``dvc.lock`` exactly as ``dvc repro`` would have, and ``dvc push`` sends the cached data
and weights to the default remote.
"""

from __future__ import annotations

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
    disable_telemetry()
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            repo.commit(force=True)
            pushed = repo.push() if repo.config["core"].get("remote") else 0
    except DvcException as error:
        raise LedgerError(f"DVC could not record the run: {error}") from error
    return LedgerEntry(root / "dvc.lock", int(pushed))


class LedgerError(RuntimeError):
    """DVC failed to record or push a run (the run's artifacts are still in place)."""
