"""The AnomalyFlow detector: scaling, pretraining, fine-tuning and a separate threshold.

It follows PyOD's contract and scikit-learn's estimator API: ``fit`` returns the
detector, ``decision_function`` gives one raw score per row (higher = more anomalous),
``predict`` compares with the fitted ``threshold_``; ``get_params``/``set_params`` make
``clone``, ``Pipeline`` and ``GridSearchCV`` work. The pipeline uses this same class,
built from the ``params.yaml`` sections in :class:`DetectorSettings`. Saved models load
without executing code: weights and scaler in safetensors, everything else in JSON.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_arrays
from safetensors.numpy import save_file as save_arrays
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save_file as save_tensors
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from anomalyflow.atomic import atomic_folder
from anomalyflow.data.reference_stream import ReferenceStream
from anomalyflow.data.scaling import RobustScaler
from anomalyflow.data.schema import InputError
from anomalyflow.device import autocast, resolve_device
from anomalyflow.estimator import ConfiguredEstimator, DetectorSettings, Rows, as_labels, as_rows
from anomalyflow.evaluation.threshold import fit_threshold, flag
from anomalyflow.integrity import (
    IntegrityError,
    read_json_object,
    record_checksums,
    verify_checksums,
)
from anomalyflow.models.backbone import Backbone
from anomalyflow.models.isolation import IsolationScore
from anomalyflow.models.saved import isolation_from_tensors, named_tensors, networks_from_tensors
from anomalyflow.models.scorer import LabelFreeScorer, ScoringModel
from anomalyflow.params import RuntimeParams, params_from_dict
from anomalyflow.training.distributed import pretrain_backbone
from anomalyflow.training.finetune import finetune
from anomalyflow.training.isolation import fit_isolation_half
from anomalyflow.training.loop import TrainingStats

__all__ = ["SCORE_BATCH", "AnomalyDetector", "DetectorSettings"]

SCORE_BATCH = 8192
FORMAT_VERSION = 3  # 3: detector.json records the SHA-256 of the weights and scaler
MODEL_FILES = ("weights.safetensors", "scaler.safetensors")  # verified on every load


class AnomalyDetector(ConfiguredEstimator):
    """Pretrain on all rows, fine-tune on the labeled anomalies, threshold separately.

    ``AnomalyDetector()`` trains as ``params.yaml``'s defaults do. ``settings`` holds
    every section the detector needs (the pipeline builds it from ``params.yaml``); each
    keyword below left at None takes its value from there.

    Args:
        settings: The params sections; None: ``params.yaml``'s defaults.
        pretrained: False trains from scratch on the labels (the benchmark's ablation).
        label_free: True ignores ``y`` for training and scores by reconstruction alone
            (the threshold rule still sees ``y`` when it needs labels).
        hidden_dim: ``model.hidden_dim``, width of the encoder's layers (256).
        embedding_dim: ``model.embedding_dim``, size of the row embedding (64).
        pretrain_epochs: ``pretrain.max_epochs`` (100; ``pretrain.max_steps`` caps work).
        finetune_epochs: ``finetune.max_epochs`` (10).
        threshold_method: ``threshold.method``: ``alert_rate``, ``false_positive_rate``
            or ``best_f1`` (``alert_rate``).
        alert_rate: ``threshold.alert_rate``, share of rows flagged (0.01).
        false_positive_rate: ``threshold.false_positive_rate``, share of label-0 rows
            flagged (0.01).
        device: ``runtime.device``: ``auto``, ``cpu`` or ``cuda`` (``auto``).
        random_state: ``runtime.seed`` (0): same seed, same model on the CPU.
        verbose: ``runtime.progress``, progress bars while training (True).

    Attributes:
        scaler_: robust scaler fitted on the training rows.
        backbone_: the pretrained backbone (``None`` for the from-scratch ablation).
        scorer_: the fine-tuned scoring model, ``None`` when no labels were used (the
            label-free score is then the anomaly score).
        isolation_: the label-free score's isolation half (``pretrain.isolation_weight``),
            ``None`` without it or once fine-tuned (the scoring model replaces it).
        threshold_: scores at or above it are flagged.
        feature_names_: the columns the detector expects, in order.
        feature_names_in_: the same as an array, when fit saw column names.
        n_features_in_: how many columns the detector expects.
        stats_: training statistics per stage.
        lineage_: hashes of what produced the detector, saved with it.
    """

    # Set by fit (or load), never by __init__, as scikit-learn's clone expects.
    scaler_: RobustScaler
    backbone_: Backbone | None
    scorer_: ScoringModel | None
    isolation_: IsolationScore | None
    threshold_: float
    feature_names_: tuple[str, ...]
    feature_names_in_: np.ndarray
    n_features_in_: int
    stats_: dict[str, TrainingStats]
    lineage_: dict[str, str]

    def fit(
        self,
        X: Any,
        y: Any = None,
        feature_names: tuple[str, ...] | None = None,
        checkpoint_dir: Path | None = None,
    ) -> AnomalyDetector:
        """Pretrain and fine-tune on the same rows ``X`` ``(rows, features)``.

        ``X`` is a numpy array or a table (pandas, pyarrow), whose column names are kept
        and checked when scoring. ``y`` holds 1 for labeled anomalies and 0 for the rest;
        without any 1 (or with ``label_free``) the detector scores by reconstruction
        alone. The threshold is fitted on ``X``.
        """
        rows = as_rows(X)
        threshold = self.resolved_settings().threshold  # a bad knob stops before training
        # Label-free with a label-free threshold rule, y is ignored, as unsupervised
        # scikit-learn estimators ignore it.
        ignored = self.label_free and threshold.method == "alert_rate"
        labels = None if ignored else as_labels(y, len(rows.x))
        has_labels = labels is not None and bool(labels.any()) and not self.label_free
        if not self.pretrained and not has_labels:
            raise ValueError("the from-scratch variant needs labeled anomalies")
        self.pretrain(rows, feature_names, checkpoint_dir)
        if has_labels:
            assert labels is not None
            self.finetune(rows.x, labels, checkpoint_dir)
        self.refit_threshold(rows.x, labels)
        return self

    def pretrain(
        self,
        X: Any,
        feature_names: tuple[str, ...] | None = None,
        checkpoint_dir: Path | None = None,
    ) -> AnomalyDetector:
        """Fit the scaler and, unless this is the ablation, the backbone on unlabeled rows.

        ``X`` may be a :class:`ReferenceStream` too: see :func:`pretrain_backbone`."""
        s = self.resolved_settings()
        parquet = X if isinstance(X, ReferenceStream) else None
        if parquet is not None:
            X = Rows(parquet.sample(s.pretrain.memory_rows, s.runtime.seed), parquet.features)
        rows = X if isinstance(X, Rows) else as_rows(X)
        self._set_features(rows, feature_names)
        self.scaler_ = RobustScaler().fit(rows.x)
        self.backbone_, self.scorer_, self.isolation_, self.stats_ = None, None, None, {}
        if self.pretrained:
            checkpoint = _checkpoint(checkpoint_dir, "pretrain")
            self.backbone_, self.stats_["pretrain"] = pretrain_backbone(
                parquet or rows.x, self.scaler_, s.model, s.pretrain, s.runtime, checkpoint
            )
            if s.pretrain.isolation_weight is not None:
                self.isolation_ = fit_isolation_half(
                    self.backbone_,
                    self.scaler_.transform(rows.x),
                    s.pretrain.isolation_weight,
                    s.runtime.seed,
                )
        return self

    def finetune(
        self,
        X: Any,
        y: Any,
        checkpoint_dir: Path | None = None,
        warm_start: bool = False,
    ) -> AnomalyDetector:
        """Train the scoring head on rows ``X`` and partial labels ``y`` (at least one 1).

        With ``warm_start``, a fine-tuned detector continues from its own scoring model
        (scaler and backbone unchanged) instead of a new head on the backbone.
        """
        if not hasattr(self, "scaler_"):
            raise RuntimeError("pretrain the detector before fine-tuning it")
        if warm_start and self.scorer_ is None:
            raise RuntimeError("a warm start needs a fine-tuned detector")
        x = self._checked(X)
        labels = as_labels(y, len(x))
        if labels is None or labels.min() == 1:
            # The pairwise loss ranks labeled anomalies above unlabeled rows.
            raise InputError("y", None, "fine-tuning needs unlabeled (0) rows beside the 1s")
        s = self.resolved_settings()
        self.scorer_, self.stats_["finetune"] = finetune(
            self.backbone_,
            self.scaler_.transform(x),
            labels,
            s.model,
            s.finetune,
            s.runtime,
            checkpoint=_checkpoint(checkpoint_dir, "finetune"),
            start_from=self.scorer_ if warm_start else None,
        )
        self.isolation_ = None
        return self

    def refit_threshold(self, X: Any, y: Any) -> float:
        """Fit ``threshold_`` on rows ``X`` (and labels, when the method needs them)."""
        scores = self.decision_function(X)
        labels = as_labels(y, len(scores))
        self.threshold_ = fit_threshold(scores, labels, self.resolved_settings().threshold)
        return self.threshold_

    def decision_function(self, X: Any) -> np.ndarray:
        """Raw anomaly score per row ``(rows,)``, float64; higher = more anomalous."""
        x = self._checked(X)
        network = self.network()
        device = resolve_device(self.resolved_settings().runtime.device)
        if next(network.parameters()).device.type != device.type:
            network.to(device)
        scores = np.empty(len(x), dtype=np.float64)
        with torch.inference_mode(), autocast(device):
            for start in range(0, len(x), SCORE_BATCH):
                chunk = self.scaler_.transform(x[start : start + SCORE_BATCH])
                out = network(torch.from_numpy(chunk).to(device))
                scores[start : start + len(chunk)] = out.float().cpu().numpy()
        return scores

    def feature_contributions(self, X: Any) -> np.ndarray:
        """How much each feature pushes each row's score up, ``(rows, features)``.

        Gradient times input on the scaled features: the robust scaler centres every
        feature on its median, so a contribution is relative to a typical row. Trees have
        no gradient; their part of the score is credited split by split along each row's
        path (:meth:`TreeScore.contributions`, :meth:`IsolationScore.contributions` with
        no labels), on the scale the blend adds it.
        """
        x = self._checked(X)
        network = self.network().cpu()
        scaled = torch.from_numpy(self.scaler_.transform(x)).requires_grad_(True)
        with torch.enable_grad():
            network(scaled).sum().backward()
        assert scaled.grad is not None
        contributions = scaled.grad * scaled
        trees = self.scorer_.trees if self.scorer_ is not None else None
        isolation = getattr(self, "isolation_", None) if self.scorer_ is None else None
        with torch.no_grad():
            if trees is not None:
                contributions += trees.contributions(scaled) / trees.scales[3]
            if isolation is not None:
                weight, spread = isolation.blend_scales[4], isolation.blend_scales[3]
                contributions += isolation.contributions(scaled) * weight / spread
        return contributions.detach().numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """1 where a row is flagged as an anomaly, else 0; int64 ``(rows,)``."""
        if not hasattr(self, "threshold_"):
            raise NotFittedError("the detector has no threshold yet; fit it first")
        return flag(self.decision_function(X), self.threshold_).astype(np.int64)

    def network(self) -> torch.nn.Module:
        """The torch module that maps scaled rows ``(batch, features)`` to scores."""
        scorer, backbone = getattr(self, "scorer_", None), getattr(self, "backbone_", None)
        if scorer is not None:
            module: torch.nn.Module = scorer
        elif backbone is not None:
            module = LabelFreeScorer(backbone, getattr(self, "isolation_", None))
        else:
            raise RuntimeError("the detector is not fitted")
        # eval() and to() walk every submodule: a third of a single-row call; skip no-ops.
        return module.eval() if any(m.training for m in module.modules()) else module

    def save(self, directory: Path | str) -> None:
        """Write ``weights.safetensors``, ``scaler.safetensors`` and ``detector.json``.

        The folder appears whole or not at all: files go to a temporary sibling named
        after this process (so a run's sweep removes it if the process is killed) that is
        renamed into place, replacing an earlier save.
        """
        check_is_fitted(self)
        with atomic_folder(Path(directory)) as staging:
            save_tensors(_weights(self), str(staging / "weights.safetensors"))
            save_arrays(self.scaler_.state(), str(staging / "scaler.safetensors"))
            description = self.describe() | {"checksums": record_checksums(staging, MODEL_FILES)}
            (staging / "detector.json").write_text(json.dumps(description, indent=2))

    def describe(self) -> dict[str, Any]:
        """What ``detector.json`` holds: shape, threshold, settings and training figures."""
        return {
            "format_version": FORMAT_VERSION,
            "feature_names": list(self.feature_names_),
            "named_features": hasattr(self, "feature_names_in_"),
            "threshold": getattr(self, "threshold_", float("inf")),
            "pretrained": self.pretrained,
            "label_free": self.label_free,
            "fine_tuned": self.scorer_ is not None,
            "settings": asdict(self.resolved_settings()),
            "lineage": getattr(self, "lineage_", {}),
            "training": {
                k: asdict(v) | {"rows_per_second": v.rows_per_second}
                for k, v in self.stats_.items()
            },
        }

    @classmethod
    def load(cls, directory: Path | str, runtime: RuntimeParams | None = None) -> AnomalyDetector:
        """Rebuild a saved detector; ``runtime`` overrides the saved device settings."""
        directory = Path(directory)
        meta = read_json_object(directory / "detector.json")
        found = meta.get("format_version")
        if found != FORMAT_VERSION:
            raise IntegrityError(
                f"{directory}: saved in detector format {found}, this AnomalyFlow reads "
                f"format {FORMAT_VERSION}; train a new model (anomalyflow run --force)"
            )
        verify_checksums(directory, meta.get("checksums"), MODEL_FILES)
        parsed = params_from_dict(meta["settings"], directory / "detector.json")
        settings = DetectorSettings.from_params(parsed)
        if runtime is not None:
            settings = replace(settings, runtime=runtime)
        detector = cls(
            settings,
            pretrained=meta["pretrained"],
            label_free=bool(meta.get("label_free", False)),
        )
        names = tuple(meta["feature_names"])
        detector.feature_names_, detector.n_features_in_ = names, len(names)
        if meta.get("named_features", True):
            detector.feature_names_in_ = np.asarray(names, dtype=object)
        detector.threshold_ = float(meta["threshold"])
        detector.lineage_ = dict(meta.get("lineage", {}))
        detector.stats_ = {}
        detector.scaler_ = RobustScaler.from_state(
            load_arrays(str(directory / "scaler.safetensors"))
        )
        tensors = load_tensors(str(directory / "weights.safetensors"))
        detector.backbone_, detector.scorer_ = networks_from_tensors(
            tensors, len(names), settings.model, detector.pretrained, bool(meta["fine_tuned"])
        )
        detector.isolation_ = isolation_from_tensors(tensors)
        return detector


def _weights(detector: AnomalyDetector) -> dict[str, torch.Tensor]:
    """Every network tensor of the detector, as ``weights.safetensors`` holds them."""
    parts: dict[str, torch.nn.Module | None] = {
        "backbone": detector.backbone_,
        "isolation": getattr(detector, "isolation_", None),
    }
    if detector.scorer_ is not None:
        parts |= {
            "scorer.encoder": detector.scorer_.encoder,
            "scorer.head": detector.scorer_.head,
            "scorer.linear": detector.scorer_.linear,
            "scorer.trees": detector.scorer_.trees,
        }
    return named_tensors(parts)


def _checkpoint(directory: Path | None, stage: str) -> Path | None:
    return None if directory is None else Path(directory) / f"{stage}.ckpt"
