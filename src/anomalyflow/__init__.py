"""AnomalyFlow: pretrain on unlabeled data, fine-tune with few labels, detect anomalies.

``from anomalyflow import AnomalyDetector`` gives the scikit-learn style detector. It is
imported on first use, so commands and modules that never touch it do not pay for
importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anomalyflow.detector import AnomalyDetector as AnomalyDetector

__all__ = ["AnomalyDetector"]


def __getattr__(name: str) -> Any:
    if name == "AnomalyDetector":
        from anomalyflow.detector import AnomalyDetector

        return AnomalyDetector
    raise AttributeError(f"module 'anomalyflow' has no attribute {name!r}")
