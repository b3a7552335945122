"""Sections about the data: the built-in generator, the user's columns, validation, drift
and the training window."""

from __future__ import annotations

from dataclasses import field
from pathlib import PurePath
from typing import Annotated, Literal, Self

from pydantic import Field, StrictBool, StrictFloat, StrictStr, model_validator
from pydantic.dataclasses import dataclass

from anomalyflow.params.kinds import (
    CONFIG,
    Count,
    NonNegative,
    OpenShare,
    Positive,
    Share,
    Whole,
    in_order,
)
from anomalyflow.params_file import KeyRule


@dataclass(frozen=True, config=CONFIG)
class DriftKnobs:
    """Shifts applied to generated data so drift and retraining can be exercised."""

    # relative increase of every amount (0.1 = +10%); above -1 so amounts stay positive
    amount_inflation: Annotated[StrictFloat, Field(gt=-1)] = 0.0
    merchant_mix_shift: Share = 0.0  # moves spending toward online categories
    new_fraud_pattern: StrictBool = False  # adds a fraud typology absent from the history


@dataclass(frozen=True, config=CONFIG)
class SyntheticParams:
    """The built-in card-transaction generator (the default data set)."""

    seed: Whole = 7
    history_rows: Count = 100_000  # unlabeled history used for pretraining
    recent_rows: Count = 20_000  # recent, partly labeled rows used for fine-tuning
    holdout_rows: Count = 10_000  # later, fully labeled rows used for evaluation only
    fraud_rate: OpenShare = 0.005  # share of fraudulent transactions; evaluation needs both
    label_coverage: Share = 0.5  # share of recent frauds that were confirmed (labeled 1)
    drift: DriftKnobs = field(default_factory=DriftKnobs)


@dataclass(frozen=True, config=CONFIG)
class DataParams:
    """The data set: the built-in one, or the user's files and which column plays which role.

    Paths are relative to the working directory and name the files for both sources: the
    built-in data is generated there, and ``dvc.yaml`` versions whatever they hold. The
    column keys apply only to ``files``.
    """

    source: Literal["synthetic", "files"] = "synthetic"
    features: tuple[StrictStr, ...] = ()  # numeric feature columns
    label: StrictStr | None = None  # 1 = (labeled) anomaly, 0 = normal or unlabeled
    id: StrictStr | None = None  # optional; "" or None: none
    timestamp: StrictStr | None = None  # optional; the latest rows then fit the threshold
    # Each names a file, which dvc.yaml versions.
    reference: Annotated[StrictStr, Field(min_length=1)] = "data/history.parquet"
    holdout: Annotated[StrictStr, Field(min_length=1)] = "data/holdout.parquet"
    batch: Annotated[StrictStr, Field(min_length=1)] = "data/recent.parquet"
    incoming: StrictStr = "data/incoming"  # folder scheduled runs take batches from

    @model_validator(mode="after")
    def _columns_fit_the_source(self) -> Self:
        """The built-in data has its own columns; ``files`` needs features and a label."""
        columns: dict[str, object] = {
            "features": self.features,
            "label": self.label,
            "id": self.id,
            "timestamp": self.timestamp,
        }
        if self.source == "synthetic":
            # A set key would be ignored, which is worse than refusing it.
            for key, value in columns.items():
                if value:
                    raise KeyRule(
                        key,
                        value,
                        "applies only to data.source files (the built-in data set has its "
                        "own columns); set source: files or remove it",
                    )
            return self
        for key in ("features", "label"):
            if not columns[key]:
                raise KeyRule(key, columns[key], "must be set when data.source is files")
        named = [("features", c) for c in self.features]
        named += [(k, c) for k in ("label", "id", "timestamp") if (c := getattr(self, k))]
        seen: set[str] = set()
        for key, column in named:
            if column in seen:
                raise KeyRule(
                    key,
                    column,
                    "names a column named before in 'data' "
                    "(features, label, id and timestamp are distinct columns)",
                )
            seen.add(column)
        return self

    @model_validator(mode="after")
    def _files_of_a_kind_we_read(self) -> Self:
        """Each data file's suffix names a format the loaders read, checked before anything
        is written: the built-in data is written as Parquet whatever the name says."""
        kinds = (".parquet",) if self.source == "synthetic" else (".csv", ".parquet", ".pq", ".npz")
        for key in ("reference", "holdout", "batch"):
            path = getattr(self, key)
            if PurePath(path).suffix.lower() not in kinds:
                source = "the built-in data (source: synthetic)" if len(kinds) == 1 else "files"
                raise KeyRule(key, path, f"must name a {' or '.join(kinds)} file for {source}")
        return self


@dataclass(frozen=True, config=CONFIG)
class ValidationParams:
    """Great Expectations suite built from the schema and the reference data."""

    project_dir: StrictStr = "."  # the GX project lives in <project_dir>/gx
    min_rows: Count = 100  # smallest batch worth training on
    range_tolerance: NonNegative = 0.5  # band = reference [min, max] widened by this share
    # share of values that must fall in the band; 0 would check nothing
    in_range_share: Annotated[StrictFloat, Field(gt=0, le=1)] = 0.99
    min_labeled_anomaly_rate: Share = 0.0
    max_labeled_anomaly_rate: Share = 0.05  # above this, labels are likely broken

    @model_validator(mode="after")
    def _label_ratesin_order(self) -> Self:
        """A reversed pair would refuse every batch."""
        in_order(
            ("min_labeled_anomaly_rate", self.min_labeled_anomaly_rate),
            ("max_labeled_anomaly_rate", self.max_labeled_anomaly_rate),
        )
        return self


@dataclass(frozen=True, config=CONFIG)
class DriftParams:
    """Evidently drift checks and the retraining policy they drive."""

    # share of drifted features that counts as drift; 0 would count every batch
    drifted_share_threshold: Annotated[StrictFloat, Field(gt=0, le=1)] = 0.3
    cooldown_hours: NonNegative = 72.0  # never retrain more often than this
    ignore_cooldown: StrictBool = False  # a manual run may override the cooldown
    # severe drift retrains even in cooldown: this share of drifted features (1: never)
    override_share: Annotated[StrictFloat, Field(gt=0, le=1)] = 0.5


@dataclass(frozen=True, config=CONFIG)
class WindowParams:
    """The training window: every accepted batch and late label, most recent first."""

    days: Positive | None = None  # rows within this many days of the newest; None: all
    max_rows: Count | None = 200_000  # at most this many of the newest rows; None: all
