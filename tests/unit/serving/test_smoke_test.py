"""The promotion smoke test refuses what must never be served, before starting a server.

A version whose scores were NaN once crashed the smoke test with a TypeError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import anomalyflow.serving.server as server
from anomalyflow.detector import AnomalyDetector
from anomalyflow.integrity import IntegrityError
from anomalyflow.registry.store import Registry
from anomalyflow.serving.server import SmokeTestFailed, smoke_test
from tests.conftest import decision_record, make_blobs

SMOKE_ROWS = make_blobs(rows=8, seed=5)[0]


def nan_scoring_copy(source: Path, target: Path) -> Path:
    """``source`` with NaN weights, saved properly: every recorded hash matches."""
    detector = AnomalyDetector.load(source)
    assert detector.scorer_ is not None
    with torch.no_grad():
        for parameter in detector.scorer_.parameters():
            parameter.fill_(float("nan"))
    detector.save(target)
    return target


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a server was started")

    monkeypatch.setattr(server, "running_service", refuse)


@pytest.mark.usefixtures("no_server")
def test_a_nan_scoring_version_fails_the_smoke_test_and_is_not_promoted(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    registry = Registry(tmp_path / "bentoml")
    good = registry.register(saved_detectors[0], decision_record(), SMOKE_ROWS).version
    registry.promote(good, lambda v: {"passed": True})
    folder = nan_scoring_copy(saved_detectors[1], tmp_path / "nan")
    nan = registry.register(folder, decision_record(), SMOKE_ROWS).version
    params = tmp_path / "params.yaml"
    params.write_text("")

    with pytest.raises(SmokeTestFailed, match=f"'{nan}' scores 8 of its 8 smoke rows as NaN"):
        registry.promote(nan, lambda v: smoke_test(v, registry.home, params))
    assert registry.state().production == good


@pytest.mark.usefixtures("no_server")
def test_a_version_failing_verification_starts_no_server(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    registry = Registry(tmp_path / "bentoml")
    version = registry.register(saved_detectors[0], decision_record(), SMOKE_ROWS)
    (version.detector_dir / "weights.safetensors").write_bytes(b"truncated")
    with pytest.raises(IntegrityError, match=f"version '{version.version}'"):
        smoke_test(version, registry.home, tmp_path / "params.yaml")
