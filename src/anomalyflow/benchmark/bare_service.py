"""A bare BentoML service: ``/score``'s request and answer shapes, and no model.

The serving benchmark's floor. Started beside the real service and sent the same
requests by the same client, it shows what BentoML's HTTP stack costs on its own, so
the real service's figure reads as "this many times the least a BentoML service costs".
"""

from __future__ import annotations

from typing import Any

from anomalyflow.telemetry import disable_telemetry

disable_telemetry()

import bentoml  # noqa: E402  (after the telemetry opt-out, which bentoml reads at import)

VERSION = "bare"


@bentoml.service(name="anomalyflow-bare", workers=1)
class BareService:
    """Answers every record with a constant score, in the real service's answer shape."""

    @bentoml.api(route="/score")  # type: ignore[untyped-decorator]
    async def score(self, records: list[dict[str, float]]) -> dict[str, Any]:
        """One result per record, no model."""
        results = [{"score": 0.0, "is_anomaly": False, "model_version": VERSION} for _ in records]
        return {"model_version": VERSION, "threshold": 0.0, "results": results}
