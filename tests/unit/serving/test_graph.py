"""The ONNX scoring graph: it scores as torch does at every batch size, and a graph that
changed after registration is refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from anomalyflow.detector import AnomalyDetector, DetectorSettings
from anomalyflow.integrity import IntegrityError
from anomalyflow.serving.graph import ATOL, GRAPH_FILE, RTOL, GraphScorer, export_graph, load_graph
from tests.conftest import make_blobs

ROWS = make_blobs(rows=300, seed=5)[0]


def _same_scores(detector: AnomalyDetector) -> GraphScorer:
    graph = export_graph(detector, ROWS[:16])
    scorer = GraphScorer(graph.onnx, detector)
    for batch in (1, 2, 7, 300):  # the batch size stays symbolic in the graph
        np.testing.assert_allclose(
            scorer.decision_function(ROWS[:batch]),
            detector.decision_function(ROWS[:batch]),
            rtol=RTOL,
            atol=ATOL,
        )
    return scorer


def test_a_fine_tuned_detector_scores_the_same_through_its_graph(
    saved_detectors: list[Path],
) -> None:
    detector = AnomalyDetector.load(saved_detectors[0])
    assert detector.scorer_ is not None and detector.scorer_.linear is not None
    _same_scores(detector)


def test_a_label_free_detector_scores_the_same_through_its_graph(
    fast_settings: DetectorSettings,
) -> None:
    x, _ = make_blobs(rows=800, seed=2)
    settings = replace(fast_settings, pretrain=replace(fast_settings.pretrain, max_steps=20))
    detector = AnomalyDetector(settings, label_free=True).fit(x)
    assert detector.scorer_ is None
    _same_scores(detector)


def test_a_changed_or_missing_graph_is_refused_and_none_recorded_means_torch(
    saved_detectors: list[Path], tmp_path: Path
) -> None:
    detector = AnomalyDetector.load(saved_detectors[1])
    graph = export_graph(detector, ROWS[:16])
    path = tmp_path / GRAPH_FILE
    path.write_bytes(graph.onnx)
    loaded = load_graph(tmp_path, graph.sha256, detector)
    assert loaded is not None
    np.testing.assert_allclose(
        loaded.decision_function(ROWS), detector.decision_function(ROWS), rtol=RTOL, atol=ATOL
    )
    assert load_graph(tmp_path, None, detector) is None  # registered without one

    changed = bytearray(graph.onnx)
    changed[len(changed) // 2] ^= 0xFF
    path.write_bytes(bytes(changed))
    with pytest.raises(IntegrityError, match=f"{GRAPH_FILE}: SHA-256"):
        load_graph(tmp_path, graph.sha256, detector)
    path.unlink()
    with pytest.raises(IntegrityError, match="cannot be read"):
        load_graph(tmp_path, graph.sha256, detector)
