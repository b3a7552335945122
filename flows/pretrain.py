"""Pretraining alone: refresh the versioned backbone from the reference data."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.pretrain import pretrain

pretrain_task = task(name="pretrain", cache_policy=NO_CACHE)(pretrain)


@flow(name="pretrain")
def pretrain_flow(params_file: str = "params.yaml") -> bool:
    """Pretrain unless the backbone matches params and reference data; True if reused."""
    _, reused = pretrain_task(RunContext.prepare(params_file))
    return bool(reused)
