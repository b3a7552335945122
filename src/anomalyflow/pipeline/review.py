"""The review page of a run: decision, metrics, curves, drift, lineage, on one offline page."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anomalyflow.data.loaders import read_table
from anomalyflow.detector import AnomalyDetector
from anomalyflow.pipeline.context import RunContext
from anomalyflow.reports.index import ReportInputs, write_review_page


def build_review_page(ctx: RunContext) -> Path:
    """Write this run's review page (``artifacts/reports/<time>/index.html``)."""
    paths = ctx.paths
    folder = paths.reports / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    drift_html = None
    if (paths.drift / "drift.html").exists():  # copied: the next run overwrites the original
        drift_html = Path(shutil.copy(paths.drift / "drift.html", folder / "drift.html"))
    validation = _read_json(paths.validation)
    candidate = AnomalyDetector.load(paths.candidate, ctx.params.runtime)
    holdout = read_table(paths.holdout, ctx.schema)
    assert holdout.y is not None
    inputs = ReportInputs(
        holdout_labels=holdout.y,
        holdout_scores=candidate.decision_function(holdout.x),
        threshold=candidate.threshold_,
        evaluation=json.loads(paths.evaluation.read_text()),
        decision=_read_json(paths.decision),
        drift_summary=_read_json(paths.drift / "summary.json"),
        drift_html=drift_html,
        data_docs=Path(validation["data_docs"]) if validation else None,
        shadow=_read_json(paths.shadow),
    )
    return write_review_page(inputs, folder / "index.html")


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None  # type: ignore[no-any-return]
