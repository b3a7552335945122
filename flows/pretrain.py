"""Pretraining alone: refresh the versioned backbone from the reference data."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from anomalyflow import steps
from anomalyflow.jobs import prepare_data
from anomalyflow.params import load_params
from anomalyflow.paths import ArtifactPaths

pretrain = task(name="pretrain", cache_policy=NO_CACHE)(steps.pretrain)


@flow(name="pretrain")
def pretrain_flow(params_file: str = "params.yaml") -> bool:
    """Pretrain unless the backbone matches params and reference data; True if reused."""
    params = load_params(params_file)
    paths = ArtifactPaths.from_params(params.paths, params.data)
    schema = prepare_data(params, paths)
    _, reused = pretrain(params, paths, schema)
    return bool(reused)
