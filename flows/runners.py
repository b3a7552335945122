"""The task runner named in params: in-process threads, or Dask through prefect-dask."""

from __future__ import annotations

from typing import Any

from anomalyflow.params import OrchestrationParams


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
