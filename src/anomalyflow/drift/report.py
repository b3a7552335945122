"""Evidently: drift of the features, of the model's scores and of the label rate.

The incoming batch is compared with the reference data (what the production model was
trained on). Results come back as a typed :class:`DriftResult`; the HTML report (all
assets inlined, opens offline) and the JSON snapshot are written beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from anomalyflow.params import DriftParams
from anomalyflow.telemetry import disable_telemetry

SCORE_COLUMN = "anomaly_score"


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's verdict on one column."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftSample:
    """The uniform samples drift was computed on, where the batch was too large to compare
    whole (``task_runner: dask``); every report of the drift says so."""

    batch_rows: int
    batch_total: int
    reference_rows: int
    reference_total: int
    seed: int

    def describe(self) -> str:
        """One line for the reports."""
        return (
            f"Drift computed on uniform samples drawn per partition (seed {self.seed}): "
            f"{self.batch_rows:,} of {self.batch_total:,} batch rows and "
            f"{self.reference_rows:,} of {self.reference_total:,} reference rows."
        )


@dataclass(frozen=True)
class DriftResult:
    """Drift of one batch against the reference."""

    columns: tuple[ColumnDrift, ...]
    share_drifted: float
    score_drift: ColumnDrift | None
    label_drift: ColumnDrift | None
    drift_detected: bool
    html: Path
    json: Path
    drifted_columns: tuple[str, ...] = field(default=())
    sample: DriftSample | None = None  # None: every row of both was compared


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: tuple[str, ...],
    params: DriftParams,
    out_dir: Path,
    label: str | None = None,
    reference_labels: pd.Series | None = None,
    sample: DriftSample | None = None,
) -> DriftResult:
    """Compare ``current`` with ``reference`` per column; write ``drift.html`` / ``.json``.

    Args:
        reference, current: frames with the ``features``; an ``anomaly_score`` column
            (the production model's scores) and the ``label`` column are compared too
            where both frames have them.
        params: the share of drifted feature columns that counts as drift.
        reference_labels: labels of the batch the current model was trained on, compared
            with ``current[label]`` when ``reference`` itself has no labels.
        sample: how both were sampled, if they were; stated atop ``drift.html``.
    """
    disable_telemetry()
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    extra = [c for c in (SCORE_COLUMN, label) if c and c in reference and c in current]
    columns = [*features, *extra]
    definition = DataDefinition(numerical_columns=columns)
    metrics = [DriftedColumnsCount(columns=list(features))]
    metrics += [ValueDrift(column=c) for c in columns]
    snapshot = Report(metrics).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    verdicts = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            verdicts[config["column"]] = _verdict(config, float(metric["value"]))
    per_feature = tuple(verdicts[c] for c in features)
    share = float(np.mean([v.drifted for v in per_feature]))
    score_drift = verdicts.get(SCORE_COLUMN)
    label_drift = verdicts.get(label) if label else None
    if label_drift is None and label and label in current and reference_labels is not None:
        label_drift = _label_drift(reference_labels, current[label], label)
    html, json_path = _saved(snapshot, out_dir, sample)
    detected = share >= params.drifted_share_threshold or any(
        d is not None and d.drifted for d in (score_drift, label_drift)
    )
    return DriftResult(
        columns=per_feature,
        share_drifted=share,
        score_drift=score_drift,
        label_drift=label_drift,
        drift_detected=detected,
        html=html,
        json=json_path,
        drifted_columns=tuple(v.column for v in per_feature if v.drifted),
        sample=sample,
    )


def _saved(snapshot: Any, out_dir: Path, sample: DriftSample | None) -> tuple[Path, Path]:
    """``drift.html`` (all assets inlined) and ``drift.json`` in ``out_dir``.

    A sample's line goes above Evidently's report: a reader must not take a sampled
    comparison for one of every row, and Evidently keeps run metadata out of its HTML.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    html, json_path = out_dir / "drift.html", out_dir / "drift.json"
    snapshot.save_html(str(html))
    snapshot.save_json(str(json_path))
    if sample is not None:
        line = f'<p style="font-family:sans-serif;margin:1em">{escape(sample.describe())}</p>'
        html.write_text(html.read_text().replace("<body>", "<body>" + line, 1))
    return html, json_path


def _label_drift(reference: pd.Series, current: pd.Series, label: str) -> ColumnDrift:
    """Drift of the labeled-anomaly rate against the labels the model was trained on."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(categorical_columns=[label])
    snapshot = Report([ValueDrift(column=label)]).run(
        current_data=Dataset.from_pandas(current.to_frame(label), data_definition=definition),
        reference_data=Dataset.from_pandas(reference.to_frame(label), data_definition=definition),
    )
    metric = snapshot.dict()["metrics"][0]
    return _verdict(metric["config"], float(metric["value"]))


def _verdict(config: dict[str, object], score: float) -> ColumnDrift:
    """Distances drift at or above the threshold; p-values drift below it."""
    method = str(config.get("method", ""))
    threshold = float(config.get("threshold", 0.1))  # type: ignore[arg-type]
    drifted = score < threshold if "p_value" in method.lower() else score >= threshold
    return ColumnDrift(str(config["column"]), method, score, threshold, drifted)
