"""Scheduled retraining: every new batch in the incoming folder goes through the flow.

Each batch ends either in ``processed/`` (validated, whatever the gate decided) or in
quarantine (moved there by the validation step), never both and never left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow

from anomalyflow.data.schema import InputError
from anomalyflow.validation.suite import DataValidationError
from flows.retrain import retrain

BATCH_PATTERNS = ("*.parquet", "*.csv")


@flow(name="retrain-incoming")
def retrain_incoming(
    incoming: str, processed: str, params_file: str = "params.yaml"
) -> dict[str, str]:
    """Run the retraining flow on each waiting batch, oldest name first."""
    outcomes: dict[str, str] = {}
    batches = sorted(p for pattern in BATCH_PATTERNS for p in Path(incoming).glob(pattern))
    for batch in batches:
        try:
            summary = retrain(batch=str(batch), params_file=params_file)
        except (DataValidationError, InputError) as error:
            if batch.exists():  # unreadable input never reached quarantine: put it there
                quarantine = Path(processed).parent / "quarantine"
                quarantine.mkdir(parents=True, exist_ok=True)
                shutil.move(str(batch), quarantine / batch.name)
            outcomes[batch.name] = f"quarantined: {str(error).splitlines()[0]}"
            continue
        Path(processed).mkdir(parents=True, exist_ok=True)
        shutil.move(str(batch), Path(processed) / batch.name)
        outcomes[batch.name] = summary.outcome
    return outcomes
