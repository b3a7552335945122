"""The register and promote stages: the candidate into the model store, then production."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anomalyflow.atomic import write_bytes
from anomalyflow.data.loaders import read_table
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.lineage import file_digest
from anomalyflow.registry.store import ModelVersion, Registry, RegistryState, open_registry
from anomalyflow.registry.verify import recorded_weights_md5
from anomalyflow.serving.server import smoke_test


def register(ctx: RunContext, record: dict[str, Any]) -> ModelVersion:
    """Save the candidate this run trained, its decision record and a smoke batch in the
    model store.

    Every candidate is registered, a gate-failed one too (``promote`` refuses it unless
    forced); the smoke batch is the first holdout rows, scored by the smoke test.
    """
    holdout = read_table(ctx.paths.holdout, ctx.schema)
    registry = ctx.params.registry
    smoke_rows = holdout.x[: registry.smoke_rows]
    if ctx.params.serving.onnx:
        record = with_scoring_graph(ctx.paths.run_candidate, record, smoke_rows)
    return open_registry(registry, ctx.schema.features).register(
        ctx.paths.run_candidate, record, smoke_rows
    )


def with_scoring_graph(
    candidate: Path, record: dict[str, Any], smoke_rows: np.ndarray
) -> dict[str, Any]:
    """``record`` naming the SHA-256 of the candidate's scoring graph, exported into its
    folder (:mod:`anomalyflow.serving.graph`) and checked on the smoke rows.

    A graph that does not score as torch does is not kept: the version is registered
    without one, the service then scores it with torch, and the log says why.
    """
    from anomalyflow.detector import AnomalyDetector
    from anomalyflow.serving.graph import GRAPH_FILE, GRAPH_SHA256, GraphMismatch, export_graph

    try:
        graph = export_graph(AnomalyDetector.load(candidate), smoke_rows)
    except GraphMismatch as mismatch:
        logging.getLogger(__name__).warning("%s: served with torch instead", mismatch)
        return record
    write_bytes(candidate / GRAPH_FILE, graph.onnx)
    return record | {"lineage": dict(record.get("lineage") or {}) | {GRAPH_SHA256: graph.sha256}}


def registered_twin(ctx: RunContext, candidate: Path) -> str | None:
    """The registered version whose weights equal those of the candidate saved in
    ``candidate`` (a folder), if there is one.

    Retraining on the same rows with the same seeds gives the same weights; registering
    them again would list one model twice under two names.
    """
    weights = file_digest(candidate / "weights.safetensors")
    for version in open_registry(ctx.params.registry, ctx.schema.features).versions():
        if recorded_weights_md5(version.path) == weights:
            return version.version
    return None


def promote(
    registry: Registry,
    params_file: Path,
    version: str,
    *,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
    say: Callable[[str], object] = lambda line: None,
) -> RegistryState:
    """Make ``version`` production in ``registry`` (one model name's) once its packaged
    service passes the smoke test; ``say`` hears each step of the test as it passes."""
    return registry.promote(
        version,
        lambda chosen: smoke_test(chosen, registry.home, params_file, say=say),
        force=force,
        reason=reason,
        actor=actor,
    )
