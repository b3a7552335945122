"""Sections about the model: its shape, pretraining, fine-tuning, the threshold, the
metrics and the promotion gate."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StrictFloat, StrictInt, model_validator
from pydantic.dataclasses import dataclass

from anomalyflow.params.kinds import (
    CONFIG,
    BatchSize,
    Count,
    NonNegative,
    OpenShare,
    Positive,
    Share,
    Whole,
    in_order,
)


@dataclass(frozen=True, config=CONFIG)
class ModelParams:
    """Shape of the tabular encoder and its heads."""

    hidden_dim: Count = 256
    embedding_dim: Count = 64
    head_hidden_dim: Count = 64


@dataclass(frozen=True, config=CONFIG)
class PretrainParams:
    """Self-supervised masked-feature reconstruction on unlabeled rows."""

    learning_rate: Positive = 1e-3
    weight_decay: NonNegative = 1e-5
    batch_size: BatchSize = "auto"  # auto: a rule on the row count
    max_epochs: Count = 100
    max_steps: Count = 2000  # caps work on large data: epochs = min(max_epochs, steps/epoch)
    min_mask_rate: OpenShare = 0.1  # share of cells hidden per row, drawn in [min, max]
    max_mask_rate: OpenShare = 0.5
    noise_std: NonNegative = 0.05  # Gaussian corruption of the visible cells
    nproc: Annotated[StrictInt, Field(ge=1, le=256)] = 1  # DDP processes per machine
    memory_rows: Annotated[StrictInt, Field(ge=1000)] = 1_000_000  # more: stream the reference
    isolation_weight: Positive | None = 2.0  # label-free score's isolation half; None: none

    @model_validator(mode="after")
    def _mask_ratesin_order(self) -> Self:
        """The rate is drawn in [min, max]; a reversed pair would draw outside both."""
        in_order(("min_mask_rate", self.min_mask_rate), ("max_mask_rate", self.max_mask_rate))
        return self


@dataclass(frozen=True, config=CONFIG)
class FinetuneParams:
    """Fine-tuning: a new scoring head on the pretrained encoder, small learning rate."""

    learning_rate: Positive = 1e-3  # head learning rate while the encoder is frozen
    encoder_lr_ratio: NonNegative = 0.1  # encoder learning rate = ratio * learning_rate
    skip_lr_ratio: NonNegative = 300.0  # the reconstruction score's weight: ratio * lr
    # unlabeled rows nearest a labeled one: not negatives; 1 would leave no negatives
    near_anomaly_share: Annotated[StrictFloat, Field(ge=0, lt=1)] = 0.05
    linear_c: Positive | None = 0.01  # linear half's inverse L2 strength; None: network alone
    tree_rounds: Count | None = 1000  # tree half's boosting rounds (CatBoost); None: no trees
    weight_decay: NonNegative = 1e-4
    batch_size: BatchSize = "auto"
    frozen_epochs: Whole = 5  # epochs with the encoder frozen before unfreezing
    max_epochs: Count = 10  # few epochs: with a handful of labels, more overfits them
    max_steps: Count = 1500
    patience: Count = 5  # early stopping: epochs without validation AUPRC gain
    validation_fraction: OpenShare = 0.2  # share of labeled data held out for early stopping
    min_validation_positives: Count = 50  # below: no split, a fixed schedule on every label
    warm_start: Literal["backbone", "production"] = "backbone"  # production: continue it


@dataclass(frozen=True, config=CONFIG)
class ThresholdParams:
    """How the decision threshold is fitted, apart from the network."""

    method: Literal["alert_rate", "false_positive_rate", "best_f1"] = "alert_rate"
    # share of rows flagged, for method alert_rate; 0 would never alert
    alert_rate: Annotated[StrictFloat, Field(gt=0, le=1)] = 0.01
    false_positive_rate: OpenShare = 0.01  # for method false_positive_rate


@dataclass(frozen=True, config=CONFIG)
class EvaluationParams:
    """Metrics beyond precision / recall / F1 at the threshold."""

    # precision at the top share of scores; 0 would be no rows
    alert_budget: Annotated[StrictFloat, Field(gt=0, le=1)] = 0.01
    target_false_positive_rate: Share = 0.01  # recall at this false-positive rate
    bootstrap_samples: Count = 200  # for the AUPRC confidence interval
    confidence_level: OpenShare = 0.95


@dataclass(frozen=True, config=CONFIG)
class GateParams:
    """The declarative promotion policy, checked on the frozen holdout."""

    min_auprc: Share = 0.2  # absolute floor
    min_precision_at_alert_budget: Share = 0.1  # analysts' hit rate among the top alerts
    auprc_tolerance: Share = 0.02  # how much worse than production a candidate may be
    bootstrap_samples: Count = 200  # paired resamples for the production comparison
    confidence_level: OpenShare = 0.95
