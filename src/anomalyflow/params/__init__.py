"""One frozen, typed ``Params`` parsed from ``params.yaml``.

Every knob the pipeline has lives in ``params.yaml``; each stage receives only its own
section. Each key's type and range is declared once, beside it, as a pydantic ``Field``,
so the code that uses a value can trust it. The sections are pydantic dataclasses:
``dataclasses.asdict`` and ``dataclasses.replace`` work on them as on any dataclass, and
``replace`` validates the new values too.

The file fails closed: a missing file, a YAML slip, a repeated key, an unknown key or a
value out of range is a one-line ``ParamsError`` naming the file and the dotted key, never
a silent fall-back to a default.

The sections live by subject in ``data``, ``training`` and ``operations``; the kinds of
value their keys are declared with (counts, shares, ...) in ``kinds``.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from anomalyflow.params.data import (
    DataParams,
    DriftKnobs,
    DriftParams,
    SyntheticParams,
    ValidationParams,
    WindowParams,
)
from anomalyflow.params.kinds import CONFIG
from anomalyflow.params.operations import (
    BenchmarkParams,
    NotifyParams,
    OrchestrationParams,
    PathsParams,
    RegistryParams,
    RuntimeParams,
    ServingParams,
)
from anomalyflow.params.training import (
    EvaluationParams,
    FinetuneParams,
    GateParams,
    ModelParams,
    PretrainParams,
    ThresholdParams,
)
from anomalyflow.params_file import ParamsError as ParamsError
from anomalyflow.params_file import one_line, read_yaml

__all__ = [
    "BenchmarkParams",
    "DataParams",
    "DriftKnobs",
    "DriftParams",
    "EvaluationParams",
    "FinetuneParams",
    "GateParams",
    "ModelParams",
    "NotifyParams",
    "OrchestrationParams",
    "Params",
    "ParamsError",
    "PathsParams",
    "PretrainParams",
    "RegistryParams",
    "RuntimeParams",
    "ServingParams",
    "SyntheticParams",
    "ThresholdParams",
    "ValidationParams",
    "WindowParams",
    "load_params",
    "params_from_dict",
]


@dataclass(frozen=True, config=CONFIG)
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
    window: WindowParams = field(default_factory=WindowParams)
    gate: GateParams = field(default_factory=GateParams)
    orchestration: OrchestrationParams = field(default_factory=OrchestrationParams)
    runtime: RuntimeParams = field(default_factory=RuntimeParams)
    paths: PathsParams = field(default_factory=PathsParams)
    benchmark: BenchmarkParams = field(default_factory=BenchmarkParams)
    registry: RegistryParams = field(default_factory=RegistryParams)
    serving: ServingParams = field(default_factory=ServingParams)
    notify: NotifyParams = field(default_factory=NotifyParams)


_PARAMS = TypeAdapter(Params)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Parse ``params.yaml``; missing keys take their defaults, an empty file all of them.

    A missing file is an error rather than a run on defaults: a mistyped ``--params``
    would otherwise train, judge and promote with settings nobody chose.
    """
    path = Path(path)
    raw = read_yaml(path)
    return params_from_dict({} if raw is None else raw, source=path)


def params_from_dict(raw: Any, source: Path) -> Params:
    """Build ``Params`` from a parsed mapping (``params.yaml`` or a saved model's JSON)."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: the top level must be a mapping of sections")
    try:
        return _PARAMS.validate_python(raw)
    except ValidationError as error:
        raise one_line(error, source, Params) from None
