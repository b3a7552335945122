"""Every detector variant ranks anomalies above normal rows; saving changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomalyflow.atomic import sweep_partials
from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.integrity import IntegrityError
from anomalyflow.params import ThresholdParams
from tests.conftest import make_blobs


def _partial(y: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """Keep label 1 on ``share`` of the anomalies, as the few-label protocol does."""
    anomalies = np.flatnonzero(y == 1)
    keep = np.random.default_rng(seed).choice(
        anomalies, size=max(1, int(share * len(anomalies))), replace=False
    )
    partial = np.zeros_like(y)
    partial[keep] = 1
    return partial


VARIANTS = {
    "no labels (reconstruction)": (True, None),
    "few labels": (True, 0.1),
    "full labels": (True, 1.0),
    "from scratch (ablation)": (False, 0.5),  # no pretraining: it needs more labels
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_scores_anomalies_above_normals(
    variant: str, fast_settings: DetectorSettings
) -> None:
    pretrained, share = VARIANTS[variant]
    x_all, y_all = make_blobs(rows=2000, seed=0)
    x, y, x_test, y_test = x_all[:1200], y_all[:1200], x_all[1200:], y_all[1200:]
    labels = None if share is None else _partial(y, share)
    detector = AnomalyDetector(fast_settings, pretrained=pretrained).fit(x, labels)
    scores = detector.decision_function(x_test)
    assert scores.shape == (len(x_test),)
    assert roc_auc_score(y_test, scores) > 0.85
    assert scores[y_test == 1].mean() > scores[y_test == 0].mean()


def test_ablation_without_labels_is_refused(fast_settings: DetectorSettings) -> None:
    x, _ = make_blobs(rows=300)
    with pytest.raises(ValueError, match="needs labeled anomalies"):
        AnomalyDetector(fast_settings, pretrained=False).fit(x)


def test_saved_model_scores_identically_and_holds_no_pickle(
    fast_settings: DetectorSettings, tmp_path: Path
) -> None:
    x, y = make_blobs(rows=800)
    detector = AnomalyDetector(fast_settings).fit(x, _partial(y, 0.2))
    folder = tmp_path / "model"
    detector.save(folder)

    assert sorted(p.name for p in folder.iterdir()) == [
        "detector.json",
        "scaler.safetensors",
        "weights.safetensors",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left
    loaded = AnomalyDetector.load(folder)
    np.testing.assert_array_equal(loaded.decision_function(x), detector.decision_function(x))
    assert loaded.threshold_ == detector.threshold_
    meta = json.loads((folder / "detector.json").read_text())
    assert meta["fine_tuned"] is True and meta["feature_names"] == [f"x{j}" for j in range(6)]

    # A model saved by an older release scores differently: refused, not misread.
    (folder / "detector.json").write_text(json.dumps(meta | {"format_version": 1}))
    with pytest.raises(IntegrityError, match="saved in detector format 1"):
        AnomalyDetector.load(folder)


def test_moving_the_threshold_needs_no_retraining(fast_settings: DetectorSettings) -> None:
    x, y = make_blobs(rows=800)
    detector = AnomalyDetector(fast_settings).fit(x, _partial(y, 0.2))
    before = detector.decision_function(x)
    assert detector.predict(x).mean() == pytest.approx(0.01, abs=0.005)

    detector.settings = replace(
        detector.settings, threshold=ThresholdParams(method="alert_rate", alert_rate=0.1)
    )
    detector.refit_threshold(x, None)

    np.testing.assert_array_equal(detector.decision_function(x), before)
    assert detector.predict(x).mean() == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "no-checksums"])
def test_a_damaged_model_is_refused_not_scored(
    damage: str, saved_detectors: list[Path], tmp_path: Path
) -> None:
    """Flipped bytes once scored NaN silently; truncated weights crashed the service."""
    folder = Path(shutil.copytree(saved_detectors[0], tmp_path / "model"))
    weights = folder / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "flipped-byte":
        data[-9] ^= 0xFF  # inside the last tensor's values: still a valid safetensors file
        weights.write_bytes(bytes(data))
    elif damage == "truncated":
        weights.write_bytes(bytes(data[: len(data) // 2]))
    else:
        meta = json.loads((folder / "detector.json").read_text())
        del meta["checksums"]
        (folder / "detector.json").write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match=r"detector\.json|weights\.safetensors"):
        AnomalyDetector.load(folder)


def test_a_saved_model_folder_gets_the_usual_mode(
    saved_detectors: list[Path], tmp_path: Path
) -> None:
    previous = os.umask(0o022)
    try:
        AnomalyDetector.load(saved_detectors[0]).save(tmp_path / "model")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o755


def test_a_save_killed_half_way_leaves_the_earlier_save_and_a_staging_the_sweep_removes(
    saved_detectors: list[Path], tmp_path: Path
) -> None:
    target = tmp_path / "backbone"
    shutil.copytree(saved_detectors[0], target)
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys\n"
         "import anomalyflow.detector as module\n"
         "detector = module.AnomalyDetector.load(sys.argv[1])\n"
         "module.save_arrays = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
         "detector.save(sys.argv[2])\n",
         str(saved_detectors[1]), str(target)],
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    (left,) = (p for p in tmp_path.iterdir() if p != target)  # its weights written, no more
    assert sweep_partials(tmp_path) == [left]  # named after the killed writer
    assert [p.name for p in tmp_path.iterdir()] == ["backbone"]
    reloaded = AnomalyDetector.load(target)  # the earlier save, whole
    x = make_blobs(rows=50, seed=9)[0]
    expected = AnomalyDetector.load(saved_detectors[0]).decision_function(x)
    np.testing.assert_array_equal(reloaded.decision_function(x), expected)
