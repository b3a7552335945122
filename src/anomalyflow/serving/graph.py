"""The scoring network as an ONNX graph, which the service runs with ONNX Runtime.

Through torch, one record costs some eighty small operator calls, each with Python and
dispatch overhead: about half a millisecond, half as much again as BentoML's whole
request. ONNX Runtime runs the same graph in a fraction of that. The graph is exported
once, when a version is registered (``serving.onnx``), from the weights the gate
passed; it must score the version's smoke rows as torch does (the smoke test's
tolerance) or it is not kept. It is saved in the version's detector folder and its
SHA-256 in the decision record's lineage, and the service verifies it like the weights.
Explanations (gradients) stay in torch.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anomalyflow.errors import Refusal
from anomalyflow.integrity import IntegrityError

if TYPE_CHECKING:  # torch and ONNX load only where a graph is exported or run
    import onnxruntime

    from anomalyflow.detector import AnomalyDetector

GRAPH_FILE = "scoring.onnx"  # in the detector folder
GRAPH_SHA256 = "scoring_graph_sha256"  # its key in decision.json's lineage
RTOL, ATOL = 1e-5, 1e-6  # the smoke test's tolerance: served against in-process scores


class GraphMismatch(Refusal):
    """The exported graph does not score as the torch network does."""


@dataclass(frozen=True)
class ScoringGraph:
    """A detector's scoring network as ONNX bytes, checked against torch."""

    onnx: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.onnx).hexdigest()


class GraphScorer:
    """``decision_function`` of a detector through ONNX Runtime, one thread (as the
    service's torch): the detector's scaler in numpy, then the graph."""

    def __init__(self, onnx: bytes, detector: AnomalyDetector) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: its warnings are about the CPU's kind
        self._session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
            onnx, options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._detector = detector

    def decision_function(self, rows: np.ndarray) -> np.ndarray:
        """Raw anomaly score per row ``(rows,)``, float64, as the detector's, for rows
        ``(rows, features)`` already checked against its columns (the service's records)."""
        scaled = self._detector.scaler_.transform(np.asarray(rows, dtype=np.float32))
        (scores,) = self._session.run(None, {self._input: scaled})
        return np.asarray(scores, dtype=np.float64)


def export_graph(detector: AnomalyDetector, rows: np.ndarray) -> ScoringGraph:
    """The detector's scoring network as ONNX, with a symbolic batch size.

    Raises:
        GraphMismatch: the graph's scores of ``rows`` (raw feature rows, at least one)
            differ from torch's beyond the smoke test's tolerance.
    """
    import torch

    network = detector.network().cpu()
    example = torch.from_numpy(detector.scaler_.transform(np.repeat(rows[:1], 2, axis=0)))
    batch = torch.export.Dim("batch", min=1)  # an example of 2: a 1 would be specialised
    with _quiet_exporter(), torch.inference_mode():
        program = torch.onnx.export(
            network, (example,), dynamo=True, dynamic_shapes=({0: batch},), verbose=False
        )
    assert program is not None
    onnx = program.model_proto.SerializeToString()
    expected = detector.decision_function(rows)
    served = GraphScorer(onnx, detector).decision_function(rows)
    gap = float(np.max(np.abs(served - expected)))
    if not np.allclose(served, expected, rtol=RTOL, atol=ATOL):
        raise GraphMismatch(f"the ONNX graph scores differ from torch's by up to {gap:.3g}")
    return ScoringGraph(onnx)


def load_graph(
    detector_dir: Path, recorded_sha256: str | None, detector: AnomalyDetector
) -> GraphScorer | None:
    """The version's graph once its SHA-256 matches the recorded one; None when none was
    recorded (a version registered with ``serving.onnx: false`` or before it existed).

    Raises:
        IntegrityError: the recorded graph is missing or its bytes changed.
    """
    if recorded_sha256 is None:
        return None
    path = detector_dir / GRAPH_FILE
    try:
        onnx = path.read_bytes()
    except OSError as error:
        raise IntegrityError(f"{path}: cannot be read ({error.strerror})") from None
    actual = ScoringGraph(onnx).sha256  # of the bytes loaded below, not a second read
    if actual != recorded_sha256:
        raise IntegrityError(
            f"{path}: SHA-256 {actual} differs from the {recorded_sha256} recorded when it "
            "was registered (the file is corrupted or was replaced)"
        )
    return GraphScorer(onnx, detector)


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's chatter (optional torchvision ops, deprecations inside torch) is not
    the user's business; a failure still raises."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logger.setLevel(level)
