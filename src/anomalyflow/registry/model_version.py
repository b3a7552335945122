"""One registered version as the registry describes it: stage, gate, metrics, files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomalyflow.integrity import read_json_object
from anomalyflow.registry.errors import RegistryError
from anomalyflow.registry.state import RegistryState, Stage

# The evaluation metrics copied into each version's BentoML metadata, for listings.
REGISTERED_METRICS = ("auprc", "auroc", "precision_at_alert_budget", "recall_at_target_fpr")

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


def bentoml_metadata(detector_dir: Path, decision: dict[str, Any]) -> dict[str, Any]:
    """A new version's BentoML metadata: threshold, registered metrics and lineage."""
    lineage = decision["lineage"]
    metrics = decision.get("candidate_metrics", {})
    return {
        "threshold": float(read_json_object(detector_dir / "detector.json")["threshold"]),
        "metrics": {k: float(metrics[k]) for k in REGISTERED_METRICS if k in metrics},
        "data_version": str(lineage.get("batch_md5", "")),
        "lineage": {k: str(v) for k, v in lineage.items()},
        "git_commit": str(decision.get("git_commit") or ""),
        "prefect_run_id": str(decision.get("prefect_run_id") or ""),
    }


def describe(model: bentoml.Model, state: RegistryState) -> ModelVersion:
    """``model`` with the stage ``state`` gives it."""
    metadata: dict[str, Any] = dict(model.info.metadata)
    return ModelVersion(
        model_name=str(model.tag.name),
        version=str(model.tag.version),
        stage=state.stage_of(str(model.tag.version)),
        gate_passed=state.gate_passed(
            str(model.tag.version), model.info.labels.get("gate") == "passed"
        ),
        created=model.info.creation_time,
        threshold=float(metadata["threshold"]),
        metrics=dict(metadata.get("metrics", {})),
        data_version=str(metadata.get("data_version", "")),
        path=Path(model.path),
    )


def failed_rules(version: ModelVersion) -> list[str]:
    """The gate rules ``version`` failed, from its decision record."""
    decision = read_json_object(version.path / "decision.json")
    return [r["rule"] for r in decision.get("rules", []) if not r.get("passed")]


def feature_names(version: ModelVersion) -> tuple[str, ...]:
    """The columns ``version`` scores, in order, as its detector.json records them."""
    described = read_json_object(version.detector_dir / "detector.json")
    return tuple(described["feature_names"])


def features_differ(chosen: ModelVersion, production: ModelVersion) -> str | None:
    """Why ``chosen`` scores other columns than ``production``, or None when it does not.

    A model of other features answers traffic it was never trained on: the card
    model in front of sensor data. Such a promotion must be forced, with a reason.
    """
    mine, theirs = feature_names(chosen), feature_names(production)
    if mine == theirs:
        return None
    return (
        f"'{chosen.version}' scores other features than production "
        f"'{production.version}' ({len(mine)} vs {len(theirs)}: "
        f"{', '.join(sorted(set(mine) ^ set(theirs))[:5])} differ)"
    )


def refuse_force_without_reason(force: bool, reason: str | None) -> None:
    """An override is recorded with its reason, so ``--force`` needs one."""
    if force and not (reason and reason.strip()):
        raise RegistryError("--force needs --reason: the override is recorded")


def unfinished_promotion(versions: list[ModelVersion]) -> str | None:
    """The newest of ``versions`` (newest first), when it passed its gate but never became
    production.

    Under ``approval: auto`` every gate-passed candidate is promoted in its run; one
    still a candidate had its promotion cut short (a killed run, a failed smoke test),
    which nobody would notice otherwise. ``promote`` finishes it.
    """
    if versions and versions[0].stage == "candidate" and versions[0].gate_passed:
        return versions[0].version
    return None
