"""Inside a flow on a DaskTaskRunner, a stage wrapped by `on_flow_cluster` sees the runner's
own cluster as the current Dask client, so a batch's partitions go there; elsewhere no
client is current and nothing is started."""

from __future__ import annotations

import pytest
from flows.runners import on_flow_cluster

pytest.importorskip("prefect_dask")


def _current_scheduler() -> str:
    from distributed import default_client

    return str(default_client().scheduler.address)


@pytest.mark.slow  # a Prefect flow run: the temporary API server takes 10-15 s to start
def test_a_wrapped_stage_runs_on_the_flow_runners_cluster() -> None:
    from prefect import flow, task
    from prefect.context import FlowRunContext
    from prefect_dask import DaskTaskRunner

    stage = task(name="stage")(on_flow_cluster(_current_scheduler))
    unwrapped = task(name="unwrapped")(_current_scheduler)

    @flow(
        task_runner=DaskTaskRunner(
            cluster_kwargs={"n_workers": 2, "processes": False, "dashboard_address": None}
        )
    )
    def checks() -> tuple[str, str, bool]:
        context = FlowRunContext.get()
        assert context is not None
        runner_scheduler = str(context.task_runner.client.scheduler.address)  # type: ignore[attr-defined]
        try:
            unwrapped()
            current_without = True
        except ValueError:  # no client is current without the wrapper
            current_without = False
        return stage(), runner_scheduler, current_without

    seen, runner_scheduler, current_without = checks()
    assert seen == runner_scheduler
    assert not current_without
    with pytest.raises(ValueError):  # outside a flow the wrapper adds nothing
        on_flow_cluster(_current_scheduler)()
