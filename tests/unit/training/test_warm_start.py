"""Warm start: fine-tuning continues production's network instead of a new head."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from tests.conftest import make_blobs


def test_a_warm_start_continues_the_trained_network_and_a_cold_one_does_not(
    fast_settings: DetectorSettings,
) -> None:
    x, y = make_blobs(rows=1500, seed=2)
    production = AnomalyDetector(fast_settings).fit(x, y)
    # A rate so small that no float32 weight moves: learning is off, as a rate of 0 would
    # say if params allowed one.
    tiny = replace(fast_settings.finetune, learning_rate=1e-30)
    frozen = replace(fast_settings, finetune=tiny)

    warm = copy.deepcopy(production)
    warm.settings = frozen
    warm.finetune(x, y, warm_start=True)  # no learning: must still be production
    np.testing.assert_allclose(warm.decision_function(x), production.decision_function(x))

    cold = copy.deepcopy(production)
    cold.settings = frozen
    cold.finetune(x, y)  # a new head on the backbone
    assert not np.allclose(cold.decision_function(x), production.decision_function(x))

    unfitted = AnomalyDetector(fast_settings).pretrain(x)
    with pytest.raises(RuntimeError, match="warm start needs a fine-tuned detector"):
        unfitted.finetune(x, y, warm_start=True)
