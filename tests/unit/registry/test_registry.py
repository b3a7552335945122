"""Registry over the BentoML model store: stages, promotion, rollback, refusals, races, crashes.

Promotions run the real serving smoke test (a BentoML server on loopback).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from anomalyflow.registry.store import ModelVersion, Registry, RegistryConflict, RegistryError
from anomalyflow.serving.server import smoke_test
from tests.conftest import decision_record, make_blobs

SMOKE_ROWS = make_blobs(rows=32, seed=5)[0]


def _smoke(registry: Registry) -> Any:
    params = registry.home.parent / "params.yaml"  # empty: every default
    params.touch()
    return lambda version: smoke_test(version, registry.home, params)


def _register(registry: Registry, folder: Path, approved: bool = True) -> ModelVersion:
    return registry.register(folder, decision_record(approved), SMOKE_ROWS)


def _labels(version: ModelVersion) -> dict[str, str]:
    labels: dict[str, str] = yaml.safe_load((version.path / "model.yaml").read_text())["labels"]
    return labels


def test_register_stores_model_threshold_metrics_lineage_and_candidate_stage(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    registry = Registry(tmp_path / "bentoml")
    version = _register(registry, saved_detectors[0])

    assert version.stage == "candidate" and version.gate_passed
    assert _labels(version) == {"stage": "candidate", "gate": "passed"}
    saved = json.loads((saved_detectors[0] / "detector.json").read_text())
    assert version.threshold == pytest.approx(saved["threshold"])
    assert version.metrics["auprc"] == pytest.approx(0.6)
    assert version.data_version == "0123456789abcdef"
    metadata = yaml.safe_load((version.path / "model.yaml").read_text())["metadata"]
    assert metadata["lineage"]["backbone_weights_md5"] == "fedcba"
    assert metadata["prefect_run_id"] == "run-1"
    assert (version.detector_dir / "scaler.safetensors").exists()
    assert json.loads((version.path / "decision.json").read_text())["approved"] is True
    assert registry.history()[-1]["action"] == "register"


def test_promote_archives_the_previous_and_rollback_restores_it(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    registry = Registry(tmp_path / "bentoml")
    first, second = (_register(registry, f) for f in saved_detectors)

    registry.promote(first.version, _smoke(registry), actor="alice", reason="first model")
    state = registry.promote(second.version, _smoke(registry))

    assert state.production == second.version
    assert registry.get(first.version).stage == "archived"
    assert _labels(registry.get(second.version))["stage"] == "production"
    assert _labels(registry.get(first.version))["stage"] == "archived"
    promoted = [e for e in registry.history() if e["action"] == "promote"]
    assert promoted[0]["actor"] == "alice" and promoted[0]["reason"] == "first model"
    assert promoted[1]["smoke_test"]["passed"] and promoted[1]["smoke_test"]["largest_gap"] < 1e-5

    state = registry.rollback(reason="bad alerts")
    assert state.production == first.version
    assert registry.get(second.version).stage == "archived"
    assert [v.stage for v in registry.versions()].count("production") == 1
    assert registry.history()[-1] | {"at": None} == registry.history()[-1] | {
        "at": None,
        "action": "rollback",
        "version": first.version,
        "previous_production": second.version,
        "reason": "bad alerts",
    }
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()
    loaded = registry.load()
    x = make_blobs(rows=50, seed=9)[0]
    from anomalyflow.detector import AnomalyDetector

    expected = AnomalyDetector.load(saved_detectors[0]).decision_function(x)
    np.testing.assert_allclose(loaded.decision_function(x), expected)


def test_a_gate_failed_version_is_refused_unless_forced_with_a_recorded_reason(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    registry = Registry(tmp_path / "bentoml")
    failed = _register(registry, saved_detectors[0], approved=False)
    assert _labels(failed)["gate"] == "failed"

    with pytest.raises(RegistryError, match="failed the gate \\(auprc_floor\\)"):
        registry.promote(failed.version, _smoke(registry))
    with pytest.raises(RegistryError, match="--force needs --reason"):
        registry.promote(failed.version, _smoke(registry), force=True)
    assert registry.state().production is None

    registry.promote(failed.version, _smoke(registry), force=True, reason="hotfix, bob agreed")
    entry = registry.history()[-1]
    assert entry["forced"] is True and entry["reason"] == "hotfix, bob agreed"
    assert registry.state().production == failed.version


def test_two_promotions_at_once_cannot_both_win(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    registry = Registry(tmp_path / "bentoml")
    versions = [_register(registry, f).version for f in saved_detectors]
    outcomes: dict[str, object] = {}

    def promote(version: str) -> None:  # both look at the registry, then smoke-test at once
        try:
            outcomes[version] = Registry(registry.home).promote(version, _smoke(registry))
        except RegistryConflict as conflict:
            outcomes[version] = conflict

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    conflicts = [v for v, o in outcomes.items() if isinstance(o, RegistryConflict)]
    assert len(conflicts) == 1, outcomes
    winner = next(v for v in versions if v not in conflicts)
    assert registry.state().production == winner
    assert [v.stage for v in registry.versions()].count("production") == 1
    assert sum(e["action"] == "promote" for e in registry.history()) == 1


def test_a_crash_mid_promotion_leaves_the_previous_production(
    tmp_path: Path, saved_detectors: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(tmp_path / "bentoml")
    first, second = (_register(registry, f) for f in saved_detectors)
    registry.promote(first.version, _smoke(registry))

    def power_cut(self: Registry, line: str) -> None:  # half the line reaches the disk
        with self.audit_log.open("a") as log:
            log.write(line[: len(line) // 2])
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(Registry, "_append", power_cut)
    with pytest.raises(KeyboardInterrupt):
        registry.promote(second.version, _smoke(registry))
    monkeypatch.undo()

    after = Registry(registry.home)  # the next process
    assert after.state().production == first.version
    assert {v.version: v.stage for v in after.versions()} == {
        first.version: "production",
        second.version: "candidate",
    }
    assert _labels(after.get(first.version))["stage"] == "production"
    after.promote(second.version, _smoke(after))  # the torn line is cut, not glued to
    assert [e["action"] for e in after.history()] == ["register", "register", "promote", "promote"]
    assert after.state().production == second.version
