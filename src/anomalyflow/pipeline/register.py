"""The register and promote stages: the candidate into the model store, then production."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from anomalyflow.data.loaders import read_table
from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.lineage import file_digest
from anomalyflow.registry.store import ModelVersion, Registry, RegistryState, open_registry
from anomalyflow.serving.server import smoke_test


def register(ctx: RunContext, record: dict[str, Any]) -> ModelVersion:
    """Save the candidate this run trained, its decision record and a smoke batch in the
    model store.

    Every candidate is registered, a gate-failed one too (``promote`` refuses it unless
    forced); the smoke batch is the first holdout rows, scored by the smoke test.
    """
    holdout = read_table(ctx.paths.holdout, ctx.schema)
    registry = ctx.params.registry
    return open_registry(registry, ctx.schema.features).register(
        ctx.paths.run_candidate, record, holdout.x[: registry.smoke_rows]
    )


def registered_twin(ctx: RunContext, candidate: Path) -> str | None:
    """The registered version whose weights equal those of the candidate saved in
    ``candidate`` (a folder), if there is one.

    Retraining on the same rows with the same seeds gives the same weights; registering
    them again would list one model twice under two names.
    """
    weights = file_digest(candidate / "weights.safetensors")
    for version in open_registry(ctx.params.registry, ctx.schema.features).versions():
        decision = json.loads((version.path / "decision.json").read_text())
        if decision.get("lineage", {}).get("candidate_weights_md5") == weights:
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
