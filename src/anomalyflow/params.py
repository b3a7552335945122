"""One frozen, typed ``Params`` parsed from ``params.yaml``.

Every knob the pipeline has lives in ``params.yaml``; each stage receives only its own
section. Unknown keys are refused with the dotted key named, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ParamsError(ValueError):
    """``params.yaml`` has an unknown key, a missing section or a value of the wrong type."""


@dataclass(frozen=True)
class DriftKnobs:
    """Shifts applied to generated data so drift and retraining can be exercised."""

    amount_inflation: float = 0.0  # relative increase of every amount (0.1 = +10%)
    merchant_mix_shift: float = 0.0  # 0..1, moves spending toward online categories
    new_fraud_pattern: bool = False  # adds a fraud typology absent from the history


@dataclass(frozen=True)
class SyntheticParams:
    """The built-in card-transaction generator (the default data set)."""

    seed: int = 7
    history_rows: int = 100_000  # unlabeled history used for pretraining
    recent_rows: int = 20_000  # recent, partly labeled rows used for fine-tuning
    holdout_rows: int = 10_000  # later, fully labeled rows used for evaluation only
    fraud_rate: float = 0.005  # share of fraudulent transactions
    label_coverage: float = 0.5  # share of recent frauds that were confirmed (labeled 1)
    drift: DriftKnobs = field(default_factory=DriftKnobs)


@dataclass(frozen=True)
class DataParams:
    """The data set: the built-in one, or the user's files and which column plays which role.

    Paths are relative to the working directory and name the files for both sources: the
    built-in data is generated there, and ``dvc.yaml`` versions whatever they hold. The
    column keys apply only to ``files``.
    """

    source: Literal["synthetic", "files"] = "synthetic"
    features: tuple[str, ...] = ()  # numeric feature columns
    label: str | None = None  # 1 = (labeled) anomaly, 0 = normal or unlabeled
    id: str | None = None  # optional; "" or None: none
    timestamp: str | None = None  # optional; the latest rows then fit the threshold
    reference: str = "data/history.parquet"  # pretraining, drift and GX reference
    holdout: str = "data/holdout.parquet"  # later, fully labeled rows: evaluation and the gate
    batch: str = "data/recent.parquet"  # the batch taken without --data
    incoming: str = "data/incoming"  # folder scheduled runs take batches from


@dataclass(frozen=True)
class ModelParams:
    """Shape of the tabular encoder and its heads."""

    hidden_dim: int = 256
    embedding_dim: int = 64
    head_hidden_dim: int = 64


@dataclass(frozen=True)
class PretrainParams:
    """Self-supervised masked-feature reconstruction on unlabeled rows."""

    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int | Literal["auto"] = "auto"  # auto: a rule on the row count
    max_epochs: int = 100
    max_steps: int = 2000  # caps work on large data: epochs = min(max_epochs, steps/epoch)
    min_mask_rate: float = 0.1  # share of cells hidden per row, drawn in [min, max]
    max_mask_rate: float = 0.5
    noise_std: float = 0.05  # Gaussian corruption of the visible cells


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning: a new scoring head on the pretrained encoder, small learning rate."""

    learning_rate: float = 1e-3  # head learning rate while the encoder is frozen
    encoder_lr_ratio: float = 0.1  # encoder learning rate = ratio * learning_rate
    skip_lr_ratio: float = 300.0  # the reconstruction score's weight: ratio * learning_rate
    near_anomaly_share: float = 0.05  # unlabeled rows nearest a labeled one: not negatives
    linear_c: float | None = 0.01  # linear half's inverse L2 strength; None: network alone
    weight_decay: float = 1e-4
    batch_size: int | Literal["auto"] = "auto"
    frozen_epochs: int = 5  # epochs with the encoder frozen before unfreezing
    max_epochs: int = 10  # few epochs: with a handful of labels, more overfits them
    max_steps: int = 1500
    patience: int = 5  # early stopping: epochs without validation AUPRC gain
    validation_fraction: float = 0.2  # share of labeled data held out for early stopping
    min_validation_positives: int = 5  # below this, train a fixed schedule, no early stop
    warm_start: Literal["backbone", "production"] = "backbone"  # production: continue it


@dataclass(frozen=True)
class ThresholdParams:
    """How the decision threshold is fitted, apart from the network."""

    method: Literal["alert_rate", "false_positive_rate", "best_f1"] = "alert_rate"
    alert_rate: float = 0.01  # share of rows flagged, for method alert_rate
    false_positive_rate: float = 0.01  # for method false_positive_rate


@dataclass(frozen=True)
class EvaluationParams:
    """Metrics beyond precision / recall / F1 at the threshold."""

    alert_budget: float = 0.01  # precision at the top share of scores
    target_false_positive_rate: float = 0.01  # recall at this false-positive rate
    bootstrap_samples: int = 200  # for the AUPRC confidence interval
    confidence_level: float = 0.95


@dataclass(frozen=True)
class GateParams:
    """The declarative promotion policy, checked on the frozen holdout."""

    min_auprc: float = 0.2  # absolute floor
    min_precision_at_alert_budget: float = 0.1  # analysts' hit rate among the top alerts
    auprc_tolerance: float = 0.02  # how much worse than production a candidate may be
    bootstrap_samples: int = 200  # paired resamples for the production comparison
    confidence_level: float = 0.95


@dataclass(frozen=True)
class OrchestrationParams:
    """How Prefect runs the flow's tasks."""

    task_runner: Literal["threads", "dask"] = "threads"  # dask: through prefect-dask
    finetune_seeds: int = 1  # fine-tune this many seeds side by side, keep the best
    dask_address: str = ""  # scheduler of an existing Dask cluster; empty: a local one
    dask_workers: int = 2  # workers of the local cluster


@dataclass(frozen=True)
class RuntimeParams:
    """Where and how reproducibly to compute."""

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA with bf16 if present
    seed: int = 0
    num_threads: int = 0  # 0: leave torch's default
    progress: bool = True  # progress bars on long loops


@dataclass(frozen=True)
class PathsParams:
    """Where the main job reads and writes, relative to the working directory."""

    data_dir: str = "data"  # holds quarantine/; the data files are the data.* paths
    artifacts_dir: str = "artifacts"


@dataclass(frozen=True)
class BenchmarkParams:
    """The few-label protocol of ``../shared/datasets/README.md``."""

    row_cap: int = 10_000  # larger data sets are subsampled (stratified), as ADBench does
    test_size: float = 0.3
    scoring_rows: int = 200_000  # rows scored to measure scoring throughput


@dataclass(frozen=True)
class ValidationParams:
    """Great Expectations suite built from the schema and the reference data."""

    project_dir: str = "."  # the GX project lives in <project_dir>/gx
    min_rows: int = 100  # smallest batch worth training on
    range_tolerance: float = 0.5  # band = reference [min, max] widened by this share
    in_range_share: float = 0.99  # share of values that must fall in the band
    min_labeled_anomaly_rate: float = 0.0
    max_labeled_anomaly_rate: float = 0.05  # above this, labels are likely broken


@dataclass(frozen=True)
class DriftParams:
    """Evidently drift checks and the retraining policy they drive."""

    drifted_share_threshold: float = 0.3  # share of drifted features that counts as drift
    cooldown_hours: float = 24.0  # never retrain more often than this
    ignore_cooldown: bool = False  # a manual run may override the cooldown


@dataclass(frozen=True)
class RegistryParams:
    """Model versions and stages in the BentoML model store; who approves promotion."""

    bentoml_home: str = ".bentoml"  # BentoML's home (models, bentos); $BENTOML_HOME wins
    approval: Literal["auto", "required"] = "auto"  # required: a person approves in Prefect
    approval_timeout_hours: float = 24.0  # an unanswered approval rejects the candidate
    smoke_rows: int = 64  # holdout rows kept with each version for the serving smoke test


@dataclass(frozen=True)
class ServingParams:
    """The BentoML service and batch scoring."""

    host: str = "127.0.0.1"  # loopback by default; BentoML's own default is 0.0.0.0
    port: int = 3000
    max_batch_records: int = 10_000  # larger requests get 413
    explain_top_k: int = 3  # features reported per record by /explain
    chunk_rows: int = 100_000  # batch scoring reads and writes this many rows at a time


@dataclass(frozen=True)
class Params:
    """Every knob of AnomalyFlow, one section per stage."""

    data: DataParams = field(default_factory=DataParams)
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)
    model: ModelParams = field(default_factory=ModelParams)
    pretrain: PretrainParams = field(default_factory=PretrainParams)
    finetune: FinetuneParams = field(default_factory=FinetuneParams)
    threshold: ThresholdParams = field(default_factory=ThresholdParams)
    evaluation: EvaluationParams = field(default_factory=EvaluationParams)
    validation: ValidationParams = field(default_factory=ValidationParams)
    drift: DriftParams = field(default_factory=DriftParams)
    gate: GateParams = field(default_factory=GateParams)
    orchestration: OrchestrationParams = field(default_factory=OrchestrationParams)
    runtime: RuntimeParams = field(default_factory=RuntimeParams)
    paths: PathsParams = field(default_factory=PathsParams)
    benchmark: BenchmarkParams = field(default_factory=BenchmarkParams)
    registry: RegistryParams = field(default_factory=RegistryParams)
    serving: ServingParams = field(default_factory=ServingParams)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Parse ``params.yaml``; missing keys take their defaults, unknown keys are refused."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text()) if path.exists() else None
    if raw is None:
        raw = {}
    return params_from_dict(raw, source=path)


def params_from_dict(raw: Any, source: Path) -> Params:
    """Build ``Params`` from a parsed mapping (``params.yaml`` or a saved model's JSON)."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: the top level must be a mapping of sections")
    params: Params = _build(Params, raw, prefix="", source=source)
    _check_data(params.data, source)
    _check_finetune(params.finetune, source)
    return params


def _check_data(data: DataParams, source: Path) -> None:
    """Rules across the ``data`` keys, which their types alone cannot state."""
    for key in ("reference", "holdout", "batch"):
        if not getattr(data, key):
            raise ParamsError(f"{source}: 'data.{key}' must name a file (dvc.yaml versions it)")
    columns: dict[str, object] = {
        "features": data.features,
        "label": data.label,
        "id": data.id,
        "timestamp": data.timestamp,
    }
    if data.source == "synthetic":
        # The built-in data has its own columns: a set key would be ignored.
        for key, value in columns.items():
            if value:
                raise ParamsError(
                    f"{source}: 'data.{key}' applies only to data.source files "
                    "(the built-in data set has its own columns); set source: files or remove it"
                )
        return
    for key in ("features", "label"):
        if not columns[key]:
            raise ParamsError(f"{source}: 'data.{key}' is required when data.source is files")
    named = [*data.features, *(c for c in (data.label, data.id, data.timestamp) if c)]
    repeated = sorted({c for c in named if named.count(c) > 1})
    if repeated:
        raise ParamsError(
            f"{source}: column '{repeated[0]}' is named twice in 'data' "
            "(features, label, id and timestamp are distinct columns)"
        )


def _check_finetune(finetune: FinetuneParams, source: Path) -> None:
    """Ranges of the fine-tuning knobs that shape which rows teach the detector."""
    if not 0 <= finetune.near_anomaly_share < 1:
        raise ParamsError(
            f"{source}: 'finetune.near_anomaly_share' = {finetune.near_anomaly_share} "
            "must be in [0, 1) (a share of the rows)"
        )
    if finetune.linear_c is not None and not finetune.linear_c > 0:
        raise ParamsError(
            f"{source}: 'finetune.linear_c' = {finetune.linear_c} must be above 0 "
            "(null turns the linear half off)"
        )


def _build(cls: type[Any], raw: dict[str, Any], prefix: str, source: Path) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ParamsError(f"{source}: unknown key '{prefix}{key}'")
    values = {}
    for name, value in raw.items():
        values[name] = _coerce(hints[name], value, f"{prefix}{name}", source)
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str, source: Path) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ParamsError(f"{source}: '{key}' must be a mapping")
        return _build(hint, value, prefix=f"{key}.", source=source)  # type: ignore[arg-type]
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    for option in options:
        if _is_sequence(option):
            if isinstance(value, list):  # YAML and JSON give lists
                item = typing.get_args(option)[0]
                items = [_coerce(item, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
                return tuple(items)
        elif _matches(option, value):
            return float(value) if option is float else value
    raise ParamsError(f"{source}: '{key}' = {value!r} is not a valid {_describe(hint)}")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_sequence(hint: Any) -> bool:
    """``tuple[X, ...]``: any number of items of one type (a YAML list)."""
    args = typing.get_args(hint)
    return typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis


def _matches(option: Any, value: Any) -> bool:
    if typing.get_origin(option) is Literal:
        return value in typing.get_args(option)
    if option is bool:
        return isinstance(value, bool)
    if option is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if option is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, option)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if _is_union(hint):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if _is_sequence(hint):
        return f"list of {_describe(typing.get_args(hint)[0])}"
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))
