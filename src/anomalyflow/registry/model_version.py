"""One registered version as the registry describes it: stage, gate, metrics, files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomalyflow.registry.state import RegistryState, Stage

if TYPE_CHECKING:
    import bentoml


@dataclass(frozen=True)
class ModelVersion:
    """One registered version, as ``anomalyflow models`` lists it."""

    model_name: str  # the BentoML model name it is a version of
    version: str
    stage: Stage
    gate_passed: bool
    created: datetime
    threshold: float
    metrics: dict[str, float]
    data_version: str
    path: Path

    @property
    def detector_dir(self) -> Path:
        return self.path / "detector"

    @property
    def smoke_batch(self) -> Path:
        return self.path / "smoke.npy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.version,
            "stage": self.stage,
            "gate": "passed" if self.gate_passed else "failed",
            "created": self.created.isoformat(timespec="seconds"),
            "threshold": self.threshold,
            "metrics": self.metrics,
            "data_version": self.data_version,
        }


def describe(model: bentoml.Model, state: RegistryState) -> ModelVersion:
    """``model`` with the stage ``state`` gives it."""
    metadata: dict[str, Any] = dict(model.info.metadata)
    return ModelVersion(
        model_name=str(model.tag.name),
        version=str(model.tag.version),
        stage=state.stage_of(str(model.tag.version)),
        gate_passed=model.info.labels.get("gate") == "passed",
        created=model.info.creation_time,
        threshold=float(metadata["threshold"]),
        metrics=dict(metadata.get("metrics", {})),
        data_version=str(metadata.get("data_version", "")),
        path=Path(model.path),
    )


def failed_rules(version: ModelVersion) -> list[str]:
    """The gate rules ``version`` failed, from its decision record."""
    decision = json.loads((version.path / "decision.json").read_text())
    return [r["rule"] for r in decision.get("rules", []) if not r.get("passed")]


def feature_names(version: ModelVersion) -> tuple[str, ...]:
    """The columns ``version`` scores, in order, as its detector.json records them."""
    described = json.loads((version.detector_dir / "detector.json").read_text())
    return tuple(described["feature_names"])
