"""The production model of this data set's model name, where it can serve as a baseline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from anomalyflow.integrity import read_json_object
from anomalyflow.params import Params, RegistryParams
from anomalyflow.pipeline.data import schema_from
from anomalyflow.registry.store import ModelVersion, Registry, RegistryError, open_registry

if TYPE_CHECKING:  # torch loads only where a model does: `anomalyflow models` stays quick
    from anomalyflow.data.schema import Schema
    from anomalyflow.detector import AnomalyDetector


def project_registry(params: Params) -> Registry:
    """The registry of the model name ``params`` configure (``registry.model_name``, or
    the name derived from ``data:``'s features): what every command acts on."""
    return open_registry(params.registry, schema_from(params.data).features)


def production_version(schema: Schema, registry: RegistryParams) -> ModelVersion | None:
    """Production of the schema's model name, where it scores exactly the schema's
    features: a model of other columns (a name shared on purpose) is no baseline for
    this data, nor a start for fine-tuning."""
    production = open_registry(registry, schema.features).production()
    if production is None:
        return None
    described = read_json_object(production.detector_dir / "detector.json")
    return production if tuple(described["feature_names"]) == schema.features else None


def production_detector(schema: Schema, registry: RegistryParams) -> AnomalyDetector | None:
    """The production detector loaded, under the same condition."""
    production = production_version(schema, registry)
    # Through the registry: its weights are checked against the gate's recorded hash.
    loaded = open_registry(registry, schema.features)
    return loaded.load(production.version) if production else None


def no_baseline_note(registry: Registry) -> str:
    """Why a candidate of ``registry``'s model name has no production to compare with.

    Productions of other model names are named, not compared: they score other data.
    """
    production = registry.state().production
    if production is not None:  # a name shared on purpose by a data set of other columns
        return (
            f"production {production} of {registry.name} scores other features: not "
            "compared (promoting this version needs --force --reason)"
        )
    others = other_productions(registry)
    elsewhere = "; ".join(f"{name}: {version}" for name, version in others.items())
    return f"no production of {registry.name} yet, so nothing to compare with" + (
        f" (productions of other model names, never compared: {elsewhere})" if others else ""
    )


def other_productions(registry: Registry) -> dict[str, str]:
    """The production version of every other model name in ``registry``'s home."""
    models = registry.home / "models"
    found = {}
    for folder in sorted(models.iterdir()) if models.is_dir() else []:
        if folder.name == registry.name:
            continue
        try:
            production = Registry(registry.home, folder.name).state().production
        except RegistryError:  # another model's unreadable log is that model's concern
            continue
        if production is not None:
            found[folder.name] = production
    return found
