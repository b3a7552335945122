"""A person's review of a candidate that passed the gate, then its promotion."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run

from anomalyflow.pipeline.context import RunContext
from anomalyflow.pipeline.register import promote
from anomalyflow.registry.store import open_registry
from anomalyflow.serving.server import SmokeTestFailed

promote_task = task(name="promote", cache_policy=NO_CACHE)(promote)
REVIEW_POLL_SECONDS = 2


class Review(RunInput):
    """A person's answer to a candidate waiting for approval."""

    approve: bool
    reviewer: str
    reason: str = ""


def review_and_promote(ctx: RunContext, version: str, why_trained: str) -> tuple[str, str]:
    """Promote a candidate that passed the gate, after a person's approval if required.

    Returns:
        The run's outcome (``promoted`` or ``registered``) and the reason people read.
    """
    registry = ctx.params.registry
    actor = "policy: approval auto"
    reason: str | None = why_trained
    if registry.approval == "required":
        review = _wait_for_review(version, registry.approval_timeout_hours)
        open_registry(registry).record_review(
            version, review.approve, review.reason, review.reviewer
        )
        if not review.approve:
            return "registered", f"rejected by {review.reviewer}: {review.reason}"
        actor, reason = review.reviewer, review.reason
    try:
        promote_task(registry, ctx.params_file, version, reason=reason, actor=actor)
    except SmokeTestFailed as error:
        return "registered", f"not promoted, the serving smoke test failed: {error}"
    return "promoted", f"{why_trained}; approved by {actor}"


def _wait_for_review(version: str, timeout_hours: float) -> Review:
    """Pause until someone answers in the Prefect UI or with ``anomalyflow approve``."""
    run_id = flow_run.get_id()
    get_run_logger().warning(
        "Candidate %s passed the gate and waits for approval: "
        "anomalyflow approve %s [--reject] --reason '...' (or the Prefect UI)",
        version,
        run_id,
    )
    try:
        review: Review = pause_flow_run(
            wait_for_input=Review,
            timeout=int(timeout_hours * 3600),
            poll_interval=REVIEW_POLL_SECONDS,
            key=f"review-{version}",
        )
    except FlowPauseTimeout:
        return Review(approve=False, reviewer="timeout", reason="nobody answered in time")
    return review
