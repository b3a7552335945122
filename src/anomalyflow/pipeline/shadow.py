"""Shadow scoring: production and a candidate on the same batch, where they disagree."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anomalyflow.atomic import write_json
from anomalyflow.params import Params
from anomalyflow.paths import ArtifactPaths
from anomalyflow.pipeline.data import schema_from
from anomalyflow.registry.store import RegistryError, open_registry
from anomalyflow.scoring import shadow_compare


def shadow(
    batch: Path, candidate: str | None, params: Params, paths: ArtifactPaths
) -> dict[str, Any]:
    """Score a batch with production and a candidate (default: the newest candidate).

    The comparison is written to ``artifacts/shadow.json``; every review page written
    from then on shows it.
    """
    schema = schema_from(params.data)
    registry = open_registry(params.registry, schema.features)
    production = registry.production()
    if production is None:
        raise RegistryError("no production model to shadow yet")
    if candidate is None:
        waiting = [v for v in registry.versions() if v.stage == "candidate"]
        if not waiting:
            raise RegistryError("no candidate version to shadow; name one with --candidate")
        candidate = waiting[0].version
    candidate = registry.resolve(candidate)  # the full version, recorded as such
    if candidate == production.version:  # a 0.00% disagreement with itself says nothing
        raise RegistryError(f"'{candidate}' is production: shadow another version against it")
    comparison = {
        "input": str(batch),
        "production": production.version,
        "candidate": candidate,
        "compared_at": datetime.now(UTC).isoformat(timespec="seconds"),
    } | shadow_compare(
        registry.load(production.version),
        registry.load(candidate),
        batch,
        params.serving.chunk_rows,
        columns=(schema.id, schema.label),
    )
    write_json(paths.shadow, comparison, default=str)
    return comparison
