"""The production model, where it can serve as this run's baseline."""

from __future__ import annotations

import json

from anomalyflow.data.schema import Schema
from anomalyflow.detector import AnomalyDetector
from anomalyflow.params import RegistryParams
from anomalyflow.registry.store import ModelVersion, open_registry


def production_version(schema: Schema, registry: RegistryParams) -> ModelVersion | None:
    """Production, where it scores exactly the schema's features: a model of other
    columns is no baseline for this data, nor a start for fine-tuning."""
    production = open_registry(registry).production()
    if production is None:
        return None
    described = json.loads((production.detector_dir / "detector.json").read_text())
    return production if tuple(described["feature_names"]) == schema.features else None


def production_detector(schema: Schema, registry: RegistryParams) -> AnomalyDetector | None:
    """The production detector loaded, under the same condition."""
    production = production_version(schema, registry)
    # Through the registry: its weights are checked against the gate's recorded hash.
    return open_registry(registry).load(production.version) if production else None
