"""What counts as a change that needs training, and what does not."""

from __future__ import annotations

from dataclasses import replace

import pytest

from anomalyflow.params import Params
from anomalyflow.pipeline.lineage import params_digest, training_digest

BASE = Params()


@pytest.mark.parametrize(
    "changed",
    [
        replace(BASE, gate=replace(BASE.gate, min_auprc=0.5)),
        replace(BASE, registry=replace(BASE.registry, approval="required")),
        replace(BASE, serving=replace(BASE.serving, port=3100)),
        replace(BASE, drift=replace(BASE.drift, cooldown_hours=1.0)),
    ],
)
def test_gate_registry_serving_or_drift_changes_need_no_training(changed: Params) -> None:
    """Changing only gate.min_auprc once registered a copy of the same weights."""
    assert training_digest(changed) == training_digest(BASE)
    assert params_digest(changed) != params_digest(BASE)  # the run still checks again


@pytest.mark.parametrize(
    "changed",
    [
        replace(BASE, finetune=replace(BASE.finetune, max_epochs=3)),
        replace(BASE, model=replace(BASE.model, hidden_dim=32)),
        replace(BASE, threshold=replace(BASE.threshold, alert_rate=0.02)),
        replace(BASE, runtime=replace(BASE.runtime, seed=3)),
    ],
)
def test_changes_that_shape_the_model_need_training(changed: Params) -> None:
    assert training_digest(changed) != training_digest(BASE)
