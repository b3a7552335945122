"""The gate's note when a candidate has no production to compare with (issue 13)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.pipeline.production import no_baseline_note, other_productions
from anomalyflow.registry.store import Registry
from tests.conftest import decision_record, make_blobs

SMOKE = make_blobs(rows=8, seed=5)[0]


def _passed(version: object) -> dict[str, Any]:
    return {"passed": True}


def test_another_names_production_is_named_never_called_a_first_model(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    """It once said "first model: no production model to compare with" while the card
    model was production in the same store."""
    card, sensors = (Registry(tmp_path / "bentoml", n) for n in ("card", "sensors"))
    assert other_productions(sensors) == {}
    production = card.register(saved_detectors[0], decision_record(), SMOKE).version
    card.promote(production, _passed)

    note = no_baseline_note(sensors)

    assert other_productions(sensors) == {"card": production}
    assert "first model" not in note and "card" in note and production in note


def test_a_shared_name_whose_production_has_other_features_says_so(
    tmp_path: Path, saved_detectors: list[Path], fast_settings: DetectorSettings
) -> None:
    shared = Registry(tmp_path / "bentoml", "shared")
    production = shared.register(saved_detectors[0], decision_record(), SMOKE).version
    shared.promote(production, _passed)
    x, y = make_blobs(rows=600, features=5)
    quick = replace(fast_settings, pretrain=replace(fast_settings.pretrain, max_epochs=2))
    AnomalyDetector(quick).fit(x, y).save(tmp_path / "sensor")
    shared.register(tmp_path / "sensor", decision_record(), x[:8])

    note = no_baseline_note(shared)

    assert production in note and "other features" in note and "--force" in note
