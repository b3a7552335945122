"""The review page of a run: candidate beside production, drift, validation, lineage.

Each page goes to a folder of its own (``artifacts/reports/<UTC time>/``) with copies
of what it links (drift report, validation result and page): a later run overwrites
``artifacts/`` but never an earlier run's folder.
"""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

from anomalyflow.data.loaders import read_table
from anomalyflow.detector import AnomalyDetector
from anomalyflow.integrity import read_json_object
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.production import production_version
from anomalyflow.registry.store import ModelVersion, Registry, open_registry
from anomalyflow.reports.index import ReportInputs, write_review_page
from anomalyflow.reports.plots import ScoredModel
from anomalyflow.reports.validation_page import write_validation_page
from anomalyflow.validation.results import (
    ExpectationOutcome,
    outcomes_from_gx,
    stored_result,
)

DEFAULT_PARAMS = Path("params.yaml")
REPLAY_FIGURES = "replay.json"  # written by `anomalyflow replay` beside its workspace


def build_review_page(ctx: RunContext, candidate_version: str | None = None) -> Path:
    """Write this run's review page; returns ``artifacts/reports/<time>/index.html``.

    Args:
        candidate_version: the version the run registered the candidate as. None (the
            ``report`` command) looks it up in the registry by its decision record.
    """
    paths = ctx.paths
    folder = _new_folder(paths.reports)
    decision = _read_json(paths.decision)
    comparison = _read_json(paths.comparison)
    registry = open_registry(ctx.params.registry, ctx.schema.features)
    version = candidate_version or _registered_as(registry, decision)
    holdout = read_table(paths.holdout, ctx.schema)
    assert holdout.y is not None
    candidate = AnomalyDetector.load(paths.candidate, ctx.params.runtime)
    inputs = ReportInputs(
        holdout_labels=holdout.y,
        candidate=ScoredModel(
            f"candidate {version or ''}".strip(),
            candidate.decision_function(holdout.x),
            candidate.threshold_,
        ),
        candidate_version=version,
        evaluation=read_json_object(paths.evaluation),
        decision=decision,
        comparison=comparison,
        promote_command=_promote_command(ctx, version, decision),
        drift_summary=_read_json(paths.drift / "summary.json"),
        drift_html=_copied(paths.drift / "drift.html", folder),
        validation=_read_json(paths.validation),
        validation_page=_validation_page(ctx, folder),
        shadow=_read_json(paths.shadow),
        replay=_read_json(paths.replay / REPLAY_FIGURES),
    )
    baseline = _baseline(ctx, registry, version, comparison)
    if baseline is not None:
        inputs = _with_production(ctx, inputs, baseline, holdout.x)
    elif comparison and comparison.get("production"):
        inputs = replace(inputs, production_version="not in this registry")
    return write_review_page(inputs, folder / "index.html")


def keep_check_reports(ctx: RunContext) -> dict[str, str]:
    """A run that did not train keeps its validation and drift pages in a folder of its
    own, as a trained run's review page does: later runs overwrite the originals."""
    folder = _new_folder(ctx.paths.reports)
    kept = {
        "validation": _validation_page(ctx, folder),
        "drift": _copied(ctx.paths.drift / "drift.html", folder),
    }
    return {name: str(path) for name, path in kept.items() if path is not None}


def _new_folder(reports: Path) -> Path:
    """A folder no earlier page used: two pages in one second get ``-2``, ``-3``, ..."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in count(1):
        folder = reports / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")


def _registered_as(registry: Registry, decision: dict[str, Any] | None) -> str | None:
    """The version registered with this very decision record, if any (newest first)."""
    if decision is None:
        return None
    for version in registry.versions():
        record = version.path / "decision.json"
        if record.exists() and _same_decision(read_json_object(record), decision):
            return version.version
    return None


def _same_decision(stored: dict[str, Any], decision: dict[str, Any]) -> bool:
    weights = "candidate_weights_md5"
    return bool(
        stored.get("decided_at") == decision.get("decided_at")
        and stored.get("lineage", {}).get(weights) == decision.get("lineage", {}).get(weights)
    )


def _baseline(
    ctx: RunContext, registry: Registry, version: str | None, comparison: dict[str, Any] | None
) -> ModelVersion | None:
    """The production the candidate was evaluated against, when it was.

    Before promotion that is today's production. A page rebuilt after the candidate
    itself was promoted shows the production it replaced, from the audit log.
    """
    if not comparison or comparison.get("production") is None:
        return None  # evaluated with no production (none yet, or other columns)
    production = production_version(ctx.schema, ctx.params.registry)
    if production is None or production.version != version:
        return production
    promotions = [
        e for e in registry.history() if e["action"] == "promote" and e["version"] == version
    ]
    replaced = promotions[-1].get("previous_production") if promotions else None
    return registry.get(replaced) if replaced else None


def _with_production(
    ctx: RunContext, inputs: ReportInputs, production: ModelVersion, x: Any
) -> ReportInputs:
    """``inputs`` with production's scores on the same holdout and its decision record."""
    registry = open_registry(ctx.params.registry, ctx.schema.features)
    detector = registry.load(production.version, ctx.params.runtime)
    return replace(
        inputs,
        production=ScoredModel(
            f"production {production.version}", detector.decision_function(x), detector.threshold_
        ),
        production_version=production.version,
        production_decision=_read_json(production.path / "decision.json"),
    )


def _promote_command(
    ctx: RunContext, version: str | None, decision: dict[str, Any] | None
) -> str | None:
    """The override for a rejected, registered candidate, exactly as it is to be typed."""
    if version is None or decision is None or decision["approved"]:
        return None
    command = f'anomalyflow promote {shlex.quote(version)} --force --reason "..."'
    if ctx.params_file != DEFAULT_PARAMS:  # the registry's place comes from the params
        command += f" --params {shlex.quote(str(ctx.params_file))}"
    return command


def _validation_page(ctx: RunContext, folder: Path) -> Path | None:
    """A copy of ``validation.json`` and our page of its expectations, in ``folder``."""
    source = ctx.paths.validation
    if not source.exists():
        return None
    summary = json.loads(Path(shutil.copy(source, folder / "validation.json")).read_text())
    return write_validation_page(
        summary, _outcomes(ctx, summary, source), folder / "validation.html"
    )


def _outcomes(
    ctx: RunContext, summary: dict[str, Any], source: Path
) -> tuple[ExpectationOutcome, ...]:
    """Each expectation's outcome: from ``validation.json`` where it lists them, else
    from the result GX stored for the run (the last one before ``validation.json``)."""
    if "expectations" in summary:
        return tuple(ExpectationOutcome(**record) for record in summary["expectations"])
    written = datetime.fromtimestamp(source.stat().st_mtime, UTC)
    stored = stored_result(Path(ctx.params.validation.project_dir), written)
    return outcomes_from_gx(json.loads(stored.read_text())) if stored else ()


def _copied(source: Path, folder: Path) -> Path | None:
    """A copy in the run's folder: the next run overwrites ``source``."""
    return Path(shutil.copy(source, folder / source.name)) if source.exists() else None


def _read_json(path: Path) -> dict[str, Any] | None:
    return read_json_object(path) if path.exists() else None
