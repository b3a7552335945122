"""What lets the detector stand beside scikit-learn's: its settings, its knobs, its inputs.

A detector is configured by :class:`DetectorSettings` (the ``params.yaml`` sections it
needs) plus a few keyword knobs that override single keys, so ``AnomalyDetector()``
means "as ``params.yaml``'s defaults" and ``AnomalyDetector(hidden_dim=32)`` changes one
thing. Inputs are numpy arrays or tables (pandas, pyarrow, anything with ``to_pandas``);
a table's column names are kept and checked when scoring. Bad values are refused with
the same :class:`~anomalyflow.data.schema.InputError` the command line gives.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from anomalyflow.data.loaders import as_float32, table_from_frame
from anomalyflow.data.schema import InputError, Schema
from anomalyflow.params import (
    FinetuneParams,
    ModelParams,
    Params,
    PretrainParams,
    RuntimeParams,
    ThresholdParams,
)

SOURCE = Path("X")  # what a refusal of an in-memory input names in place of a file

# Keyword knob -> (section, key) of DetectorSettings it overrides.
KNOBS: dict[str, tuple[str, str]] = {
    "hidden_dim": ("model", "hidden_dim"),
    "embedding_dim": ("model", "embedding_dim"),
    "pretrain_epochs": ("pretrain", "max_epochs"),
    "finetune_epochs": ("finetune", "max_epochs"),
    "threshold_method": ("threshold", "method"),
    "alert_rate": ("threshold", "alert_rate"),
    "false_positive_rate": ("threshold", "false_positive_rate"),
    "device": ("runtime", "device"),
    "random_state": ("runtime", "seed"),
    "verbose": ("runtime", "progress"),
}


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


@functools.cache
def default_settings() -> DetectorSettings:
    """``params.yaml``'s defaults (``Params()``), built once."""
    return DetectorSettings.from_params(Params())


def resolve_settings(base: DetectorSettings | None, knobs: Mapping[str, Any]) -> DetectorSettings:
    """``base`` (default: ``params.yaml``'s defaults) with every knob that is not None applied.

    Raises:
        ValueError: a knob out of the range ``params.yaml`` allows for its key.
    """
    settings = base or default_settings()
    for name, value in knobs.items():
        if value is None:
            continue
        section, key = KNOBS[name]
        try:
            part = replace(getattr(settings, section), **{key: _plain(value)})
        except ValidationError as error:
            reason = error.errors()[0]["msg"]
            raise ValueError(f"{name}={value!r} ({section}.{key}): {reason}") from None
        settings = replace(settings, **{section: part})
    return settings


def _plain(value: Any) -> Any:
    """numpy scalars (from ``np.arange`` grids) as Python ones, which strict params take."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class Rows:
    """Validated input rows: ``x`` float32 ``(rows, features)``; ``names`` when X had them."""

    x: np.ndarray
    names: tuple[str, ...] | None


def as_rows(X: Any) -> Rows:
    """Rows from a numpy array or a table, refusing what the command line refuses.

    Raises:
        InputError: not 2-D, empty, non-numeric, complex, NaN, infinite or beyond float32.
    """
    if sparse.issparse(X):
        raise InputError(SOURCE, None, "sparse input is not supported; pass X.toarray()")
    if not isinstance(X, pd.DataFrame) and hasattr(X, "to_pandas"):
        X = X.to_pandas()  # pyarrow (and polars) tables
    if isinstance(X, pd.DataFrame):
        return _frame_rows(X)
    x = np.asarray(X)
    if x.dtype.kind == "c":
        raise InputError(SOURCE, None, "Complex data not supported")
    if x.dtype.kind not in "biuf":
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise InputError(SOURCE, None, f"non-numeric values ({error})") from None
    _check_shape(x.shape)
    x32 = x if x.dtype == np.float32 else as_float32(x)
    finite = np.isfinite(x32)
    if not finite.all():
        j = int(np.flatnonzero(~finite.all(axis=0))[0])
        _frame_rows(pd.DataFrame({f"x{j}": x[:, j]}))  # raises the command line's refusal
    return Rows(np.ascontiguousarray(x32), None)


def _frame_rows(frame: pd.DataFrame) -> Rows:
    """A table's rows through the loaders' checks; non-string column labels are not names."""
    _check_shape(frame.shape)
    columns = list(frame.columns)
    named = all(isinstance(c, str) for c in columns)
    if not named:
        frame = frame.set_axis([f"x{j}" for j in range(len(columns))], axis=1)
    names = tuple(str(c) for c in frame.columns)
    repeated = [c for c in names if names.count(c) > 1]
    if repeated:
        raise InputError(SOURCE, repeated[0], "appears more than once")
    table = table_from_frame(SOURCE, frame, Schema(names))
    return Rows(table.x, names if named else None)


def _check_shape(shape: tuple[int, ...]) -> None:
    if len(shape) != 2:
        raise InputError(
            SOURCE,
            None,
            f"must be 2-D (rows, features), got shape {shape}. Reshape your data: "
            "X.reshape(1, -1) for one row, X.reshape(-1, 1) for one feature",
        )
    if shape[0] == 0:
        raise InputError(SOURCE, None, "has no rows")
    if shape[1] == 0:
        raise InputError(
            SOURCE, None, f"has 0 feature(s) (shape={shape}) while a minimum of 1 is required."
        )


def check_columns(rows: Rows, fitted: tuple[str, ...], named: bool) -> None:
    """Refuse rows whose columns are not the fitted ones, in the fitted order.

    Column names are compared when both the rows and the fit had them; otherwise only
    their count can be.

    Raises:
        InputError: naming the first missing, unknown or misplaced column.
    """
    given = rows.names
    if named and given is not None and given != fitted:
        listed = ", ".join(fitted)
        for column in fitted:
            if column not in given:
                raise InputError(SOURCE, column, f"missing; the detector expects {listed}")
        for column in given:
            if column not in fitted:
                raise InputError(SOURCE, column, f"was not seen in fit; expected {listed}")
        place = next(i for i, (a, b) in enumerate(zip(given, fitted, strict=True)) if a != b)
        raise InputError(
            SOURCE,
            given[place],
            f"is column {place}, where the detector expects '{fitted[place]}'; "
            f"pass the columns in the fitted order ({listed})",
        )
    if rows.x.shape[1] != len(fitted):
        raise InputError(
            SOURCE,
            None,
            f"has {rows.x.shape[1]} features, the detector was fitted on {len(fitted)}",
        )


def as_labels(y: Any, rows: int) -> np.ndarray | None:
    """``y`` as int64 ``(rows,)`` of 0/1 (1 = labeled anomaly), or None.

    Raises:
        InputError: not one label per row, or a value other than 0 and 1.
    """
    if y is None:
        return None
    values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or len(values) != rows:
        raise InputError("y", None, f"must hold one label per row ({rows}), got {values.shape}")
    numeric = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    invalid = ~np.isin(numeric, (0.0, 1.0))
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        found = values[row].item() if isinstance(values[row], np.generic) else values[row]
        raise InputError("y", None, f"label values must be 0 or 1; found {found!r} at row {row}")
    return numeric.astype(np.int64)


@dataclass(eq=False, repr=False)  # identity equality, hashing and repr, as scikit-learn's
class ConfiguredEstimator(BaseEstimator):  # type: ignore[misc]  # scikit-learn is untyped
    """The parameters, fitted state and input checks of a detector, as scikit-learn has them.

    ``__init__`` is the dataclass's: it stores every argument unchanged and sets nothing
    else, so ``get_params``, ``set_params`` and ``clone`` work; fitted attributes end in
    ``_``. :class:`~anomalyflow.detector.AnomalyDetector` documents the arguments.
    """

    settings: DetectorSettings | None = None
    pretrained: bool = True
    _: KW_ONLY
    label_free: bool = False
    hidden_dim: int | None = None
    embedding_dim: int | None = None
    pretrain_epochs: int | None = None
    finetune_epochs: int | None = None
    threshold_method: Literal["alert_rate", "false_positive_rate", "best_f1"] | None = None
    alert_rate: float | None = None
    false_positive_rate: float | None = None
    device: Literal["auto", "cpu", "cuda"] | None = None
    random_state: int | None = None
    verbose: bool | None = None
    # Fitted, so never arguments: set by fit, absent until then.
    feature_names_: tuple[str, ...] = field(init=False)
    feature_names_in_: np.ndarray = field(init=False)
    n_features_in_: int = field(init=False)

    def resolved_settings(self) -> DetectorSettings:
        """``settings`` (or ``params.yaml``'s defaults) with the keyword knobs applied."""
        knobs = {name: getattr(self, name) for name in KNOBS}
        if self.settings is not None and all(v is None for v in knobs.values()):
            return self.settings  # the pipeline's case, on every scoring call: no work
        return resolve_settings(self.settings, knobs)

    def _set_features(self, rows: Rows, feature_names: tuple[str, ...] | None) -> None:
        """Record the columns fit saw: ``feature_names``, the table's, or ``x0``, ``x1``..."""
        names = tuple(feature_names) if feature_names else rows.names
        if names is not None and rows.names is not None and names != rows.names:
            raise InputError("feature_names", None, "differ from the columns of X")
        if names is not None and len(names) != rows.x.shape[1]:
            raise InputError(
                "feature_names", None, f"has {len(names)} names for {rows.x.shape[1]} columns"
            )
        self.feature_names_ = names or tuple(f"x{j}" for j in range(rows.x.shape[1]))
        self.n_features_in_ = len(self.feature_names_)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_  # refitted on an array: the old names no longer hold

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "scaler_")

    def _checked(self, X: Any) -> np.ndarray:
        """``X`` validated against the fitted columns, as float32 ``(rows, features)``.

        Row-major whatever the input's layout (a table converts column by column): a
        reduction over a row then adds in one order, and one row scores the same bits
        from a table as from an array.
        """
        check_is_fitted(self)
        rows = as_rows(X)
        check_columns(rows, self.feature_names_, hasattr(self, "feature_names_in_"))
        return np.ascontiguousarray(rows.x)
