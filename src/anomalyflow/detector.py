"""The AnomalyFlow detector: scaling, pretraining, fine-tuning and a separate threshold.

It follows PyOD's contract: ``fit`` returns the detector, ``decision_function`` gives one
raw score per row (higher = more anomalous), ``predict`` compares with the fitted
``threshold_``. Saved models load without executing code: weights and scaler in
safetensors, everything else in JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save_file as save_tensors

from anomalyflow.atomic import default_mode
from anomalyflow.data.scaling import RobustScaler
from anomalyflow.device import autocast, resolve_device
from anomalyflow.evaluation.threshold import fit_threshold, flag
from anomalyflow.integrity import IntegrityError, record_checksums, verify_checksums
from anomalyflow.models.backbone import Backbone
from anomalyflow.models.linear import LinearScore
from anomalyflow.models.networks import ScoringHead, TabularEncoder
from anomalyflow.models.scorer import ScoringModel
from anomalyflow.params import (
    FinetuneParams,
    ModelParams,
    Params,
    PretrainParams,
    RuntimeParams,
    ThresholdParams,
    params_from_dict,
)
from anomalyflow.training.finetune import finetune
from anomalyflow.training.loop import TrainingStats
from anomalyflow.training.pretrain import pretrain

SCORE_BATCH = 8192
FORMAT_VERSION = 3  # 3: detector.json records the SHA-256 of the weights and scaler
MODEL_FILES = ("weights.safetensors", "scaler.safetensors")  # verified on every load


@dataclass(frozen=True)
class DetectorSettings:
    """The params sections a detector needs, kept together for saving."""

    model: ModelParams
    pretrain: PretrainParams
    finetune: FinetuneParams
    threshold: ThresholdParams
    runtime: RuntimeParams

    @classmethod
    def from_params(cls, params: Params) -> DetectorSettings:
        """The params sections a detector needs, taken from the whole tree."""
        return cls(params.model, params.pretrain, params.finetune, params.threshold, params.runtime)


class AnomalyDetector:
    """Pretrain on all rows, fine-tune on the labeled anomalies, threshold separately.

    Attributes:
        scaler_: robust scaler fitted on the training rows.
        backbone_: the pretrained backbone (``None`` for the from-scratch ablation).
        scorer_: the fine-tuned scoring model, ``None`` when no labels were given (the
            reconstruction score is then the anomaly score).
        threshold_: scores at or above it are flagged.
        feature_names_: the columns the detector expects, in order.
        stats_: training statistics per stage.
    """

    def __init__(self, settings: DetectorSettings, pretrained: bool = True) -> None:
        self.settings = settings
        self.pretrained = pretrained
        self.scaler_: RobustScaler | None = None
        self.backbone_: Backbone | None = None
        self.scorer_: ScoringModel | None = None
        self.threshold_: float = float("inf")
        self.feature_names_: tuple[str, ...] = ()
        self.stats_: dict[str, TrainingStats] = {}
        self.lineage_: dict[str, str] = {}  # hashes of what produced it, saved with it

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray | None = None,
        feature_names: tuple[str, ...] | None = None,
        checkpoint_dir: Path | None = None,
    ) -> AnomalyDetector:
        """Pretrain and fine-tune on the same rows ``(rows, features)``, as in the protocol.

        ``y`` holds 1 for labeled anomalies and 0 for the rest; without any 1 the
        detector scores by reconstruction alone. The threshold is fitted on ``x``.
        """
        has_labels = y is not None and bool((y == 1).any())
        if not self.pretrained and not has_labels:
            raise ValueError("the from-scratch variant needs labeled anomalies")
        self.pretrain(x, feature_names, checkpoint_dir)
        if has_labels:
            assert y is not None
            self.finetune(x, y, checkpoint_dir)
        self.refit_threshold(x, y)
        return self

    def pretrain(
        self,
        x: np.ndarray,
        feature_names: tuple[str, ...] | None = None,
        checkpoint_dir: Path | None = None,
    ) -> AnomalyDetector:
        """Fit the scaler and, unless this is the ablation, the backbone on unlabeled rows."""
        self.scaler_ = RobustScaler().fit(x)
        self.feature_names_ = feature_names or tuple(f"x{j}" for j in range(x.shape[1]))
        if self.pretrained:
            s = self.settings
            self.backbone_, self.stats_["pretrain"] = pretrain(
                self.scaler_.transform(x),
                s.model,
                s.pretrain,
                s.runtime,
                checkpoint=_checkpoint(checkpoint_dir, "pretrain"),
            )
        return self

    def finetune(
        self,
        x: np.ndarray,
        y: np.ndarray,
        checkpoint_dir: Path | None = None,
        warm_start: bool = False,
    ) -> AnomalyDetector:
        """Train the scoring head on rows ``x`` and partial labels ``y`` (at least one 1).

        With ``warm_start``, a fine-tuned detector continues from its own scoring model
        (scaler and backbone unchanged) instead of a new head on the backbone.
        """
        if self.scaler_ is None:
            raise RuntimeError("pretrain the detector before fine-tuning it")
        if warm_start and self.scorer_ is None:
            raise RuntimeError("a warm start needs a fine-tuned detector")
        s = self.settings
        self.scorer_, self.stats_["finetune"] = finetune(
            self.backbone_,
            self.scaler_.transform(x),
            y,
            s.model,
            s.finetune,
            s.runtime,
            checkpoint=_checkpoint(checkpoint_dir, "finetune"),
            start_from=self.scorer_ if warm_start else None,
        )
        return self

    def refit_threshold(self, x: np.ndarray, y: np.ndarray | None) -> float:
        """Fit ``threshold_`` on rows ``x`` (and labels, when the method needs them)."""
        self.threshold_ = fit_threshold(self.decision_function(x), y, self.settings.threshold)
        return self.threshold_

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Raw anomaly score per row ``(rows,)``, float64; higher = more anomalous."""
        if self.scaler_ is None:
            raise RuntimeError("the detector is not fitted")
        network = self.network()
        device = resolve_device(self.settings.runtime.device)
        if next(network.parameters()).device.type != device.type:
            network.to(device)
        scores = np.empty(len(x), dtype=np.float64)
        with torch.inference_mode(), autocast(device):
            for start in range(0, len(x), SCORE_BATCH):
                chunk = self.scaler_.transform(x[start : start + SCORE_BATCH])
                out = network(torch.from_numpy(chunk).to(device))
                scores[start : start + len(chunk)] = out.float().cpu().numpy()
        return scores

    def feature_contributions(self, x: np.ndarray) -> np.ndarray:
        """How much each feature pushes each row's score up, ``(rows, features)``.

        Gradient times input on the scaled features: the robust scaler centres every
        feature on its median, so a contribution is relative to a typical row.
        """
        if self.scaler_ is None:
            raise RuntimeError("the detector is not fitted")
        network = self.network()
        scaled = torch.from_numpy(self.scaler_.transform(x)).requires_grad_(True)
        with torch.enable_grad():
            network.cpu()(scaled).sum().backward()
        assert scaled.grad is not None
        return (scaled.grad * scaled).detach().numpy().astype(np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``True`` where a row is flagged as an anomaly, ``(rows,)``."""
        return flag(self.decision_function(x), self.threshold_)

    def network(self) -> torch.nn.Module:
        """The torch module that maps scaled rows ``(batch, features)`` to scores."""
        if self.scorer_ is not None:
            module: torch.nn.Module = self.scorer_
        elif self.backbone_ is not None:
            module = _ReconstructionScorer(self.backbone_)
        else:
            raise RuntimeError("the detector is not fitted")
        # eval() and to() walk every submodule: a third of a single-row call; skip no-ops.
        return module.eval() if any(m.training for m in module.modules()) else module

    def save(self, directory: Path) -> None:
        """Write ``weights.safetensors``, ``scaler.safetensors`` and ``detector.json``.

        The folder appears whole or not at all: files go to a temporary sibling that is
        renamed into place, replacing an earlier save.
        """
        if self.scaler_ is None:
            raise RuntimeError("the detector is not fitted")
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            tensors = {
                f"backbone.{k}": v
                for k, v in (self.backbone_.state_dict().items() if self.backbone_ else [])
            }
            if self.scorer_ is not None:
                tensors |= {
                    f"scorer.encoder.{k}": v for k, v in self.scorer_.encoder.state_dict().items()
                }
                tensors |= {
                    f"scorer.head.{k}": v for k, v in self.scorer_.head.state_dict().items()
                }
                if self.scorer_.linear is not None:
                    tensors |= {
                        f"scorer.linear.{k}": v for k, v in self.scorer_.linear.state_dict().items()
                    }
            save_tensors(
                {k: v.contiguous() for k, v in tensors.items()},
                str(staging / "weights.safetensors"),
            )
            save_arrays(self.scaler_.state(), str(staging / "scaler.safetensors"))
            description = self.describe() | {"checksums": record_checksums(staging, MODEL_FILES)}
            (staging / "detector.json").write_text(json.dumps(description, indent=2))
            staging.chmod(default_mode(0o777))  # mkdtemp's folder is private to its owner
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(staging, directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def describe(self) -> dict[str, Any]:
        """What ``detector.json`` holds: shape, threshold, settings and training figures."""
        return {
            "format_version": FORMAT_VERSION,
            "feature_names": list(self.feature_names_),
            "threshold": self.threshold_,
            "pretrained": self.pretrained,
            "fine_tuned": self.scorer_ is not None,
            "settings": asdict(self.settings),
            "lineage": self.lineage_,
            "training": {
                k: asdict(v) | {"rows_per_second": v.rows_per_second}
                for k, v in self.stats_.items()
            },
        }

    @classmethod
    def load(cls, directory: Path, runtime: RuntimeParams | None = None) -> AnomalyDetector:
        """Rebuild a saved detector; ``runtime`` overrides the saved device settings."""
        directory = Path(directory)
        meta = _read_description(directory / "detector.json")
        found = meta.get("format_version")
        if found != FORMAT_VERSION:
            raise IntegrityError(
                f"{directory}: saved in detector format {found}, this AnomalyFlow reads "
                f"format {FORMAT_VERSION}; train a new model (anomalyflow run --force)"
            )
        verify_checksums(directory, meta.get("checksums"), MODEL_FILES)
        parsed = params_from_dict(meta["settings"], directory / "detector.json")
        settings = DetectorSettings(
            parsed.model,
            parsed.pretrain,
            parsed.finetune,
            parsed.threshold,
            runtime or parsed.runtime,
        )
        detector = cls(settings, pretrained=meta["pretrained"])
        detector.feature_names_ = tuple(meta["feature_names"])
        detector.threshold_ = float(meta["threshold"])
        detector.lineage_ = dict(meta.get("lineage", {}))
        detector.scaler_ = RobustScaler.from_state(
            load_arrays(str(directory / "scaler.safetensors"))
        )
        tensors = load_tensors(str(directory / "weights.safetensors"))
        n_features, m = len(detector.feature_names_), settings.model
        if detector.pretrained:
            detector.backbone_ = Backbone(n_features, m.hidden_dim, m.embedding_dim)
            detector.backbone_.load_state_dict(_section(tensors, "backbone."))
            detector.backbone_.eval()
        if meta["fine_tuned"]:
            encoder = TabularEncoder(n_features, m.hidden_dim, m.embedding_dim)
            encoder.load_state_dict(_section(tensors, "scorer.encoder."))
            head = ScoringHead(m.embedding_dim, m.head_hidden_dim)
            head.load_state_dict(_section(tensors, "scorer.head."))
            linear = None
            if linear_state := _section(tensors, "scorer.linear."):
                linear = LinearScore(n_features)
                linear.load_state_dict(linear_state)
            detector.scorer_ = ScoringModel(detector.backbone_, encoder, head, linear).eval()
        return detector


class _ReconstructionScorer(torch.nn.Module):
    """Scores rows by the backbone's reconstruction score alone (no labels)."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.reconstruction_score(x)


def _read_description(path: Path) -> dict[str, Any]:
    """``detector.json`` as a mapping, or a refusal naming it."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise IntegrityError(f"{path}: cannot be read as JSON ({error})") from error
    if not isinstance(meta, dict):
        raise IntegrityError(f"{path}: must be a JSON object")
    return meta


def _section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _checkpoint(directory: Path | None, stage: str) -> Path | None:
    return None if directory is None else Path(directory) / f"{stage}.ckpt"
