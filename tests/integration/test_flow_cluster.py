"""Inside a flow on a DaskTaskRunner, the checks of a stage wrapped by `on_flow_cluster`
use the runner's own cluster, which starts only when a check asks for it."""

from __future__ import annotations

import pytest
from flows.runners import on_flow_cluster

from anomalyflow.params import OrchestrationParams
from anomalyflow.partitions import partition_client

pytest.importorskip("prefect_dask")


def _checks_scheduler() -> str:
    """The scheduler a check's partitions would go to."""
    with partition_client(OrchestrationParams(task_runner="dask")) as client:
        return str(client.scheduler.address)


def _no_check() -> None:
    """A stage whose batch is small enough to check as one frame."""


@pytest.mark.slow  # a Prefect flow run: the temporary API server takes 10-15 s to start
def test_a_wrapped_stage_checks_on_the_flow_runners_cluster_started_on_demand() -> None:
    from prefect import flow, task
    from prefect.context import FlowRunContext
    from prefect_dask import DaskTaskRunner

    @flow(
        task_runner=DaskTaskRunner(
            cluster_kwargs={"n_workers": 2, "processes": False, "dashboard_address": None}
        )
    )
    def checks() -> tuple[bool, str, str]:
        context = FlowRunContext.get()
        assert context is not None
        runner = context.task_runner
        task(name="small")(on_flow_cluster(_no_check))()
        started_for_nothing = runner._client is not None  # type: ignore[attr-defined]
        seen = task(name="large")(on_flow_cluster(_checks_scheduler))()
        return started_for_nothing, seen, str(runner.client.scheduler.address)  # type: ignore[attr-defined]

    started_for_nothing, seen, runner_scheduler = checks()
    assert not started_for_nothing
    assert seen == runner_scheduler
