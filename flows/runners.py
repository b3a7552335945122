"""The task runner named in params: in-process threads, or Dask through prefect-dask."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from anomalyflow.params import OrchestrationParams
from anomalyflow.partitions import cluster_of_flow

P = ParamSpec("P")
R = TypeVar("R")


def task_runner(params: OrchestrationParams) -> Any:
    """A Prefect task runner for ``flow.with_options(task_runner=...)``.

    With Dask, point ``dask_address`` at an existing cluster's scheduler, or leave it
    empty for a local cluster. Workers report task runs to ``PREFECT_API_URL``; without
    one each worker would start its own ephemeral API, so the CLI starts a server first.
    """
    if params.task_runner == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=max(1, params.finetune_seeds))
    from prefect_dask.task_runners import DaskTaskRunner

    if params.dask_address:
        return DaskTaskRunner(address=params.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": params.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


def on_flow_cluster(stage: Callable[P, R]) -> Callable[P, R]:
    """``stage`` run with the flow's Dask cluster as the one its checks use.

    Validation and drift send a large batch's partitions to Dask (see
    :mod:`anomalyflow.partitions`); inside a flow on a ``DaskTaskRunner`` they go to the
    runner's own cluster, so no second cluster is started. Elsewhere ``stage`` runs as is.
    """

    @functools.wraps(stage)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        runner = context.task_runner if context else None
        # A DaskTaskRunner exists only once prefect-dask is imported: threads import nothing.
        dask_runners = sys.modules.get("prefect_dask.task_runners")
        if dask_runners is None or not isinstance(runner, dask_runners.DaskTaskRunner):
            return stage(*args, **kwargs)
        with cluster_of_flow(lambda: runner.client):  # started by the first check to ask
            return stage(*args, **kwargs)

    return run
