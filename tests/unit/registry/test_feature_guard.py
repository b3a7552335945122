"""A model of other features never silently replaces production."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.registry.store import Registry, RegistryError
from tests.conftest import decision_record, make_blobs


def _passed(version: object) -> dict[str, object]:
    return {"passed": True}


def test_promoting_a_model_of_other_features_needs_force_and_a_reason(
    registry: Registry,
    add_version: Callable[..., str],
    fast_settings: DetectorSettings,
    tmp_path: Path,
) -> None:
    """Pointing data: at a sensor set once replaced the card model without a word."""
    card = add_version()
    registry.promote(card, _passed)
    x, y = make_blobs(rows=600, features=5)
    quick = replace(fast_settings, pretrain=replace(fast_settings.pretrain, max_epochs=2))
    sensor_dir = tmp_path / "sensor"
    AnomalyDetector(quick).fit(x, y).save(sensor_dir)
    sensor = registry.register(sensor_dir, decision_record(), x[:8]).version

    with pytest.raises(RegistryError, match="other features"):
        registry.promote(sensor, _passed)
    assert registry.state().production == card

    registry.promote(sensor, _passed, force=True, reason="the sensor project, on purpose")
    assert registry.state().production == sensor
    assert registry.history()[-1]["forced"] is True


def test_listing_the_registry_loads_no_torch() -> None:
    """`models` took 9-17 s, most of it importing torch and scikit-learn to list JSON."""
    import subprocess
    import sys

    probe = "import sys, anomalyflow.registry.store; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
