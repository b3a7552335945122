"""A person's review of a candidate that passed the gate, then its promotion."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run

from anomalyflow.notify import notify
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


def review_and_promote(
    ctx: RunContext, version: str, why_trained: str, page: Path
) -> tuple[str, str]:
    """Promote a candidate that passed the gate, after a person's approval if required.

    The review page is written before this is called, so a reviewer decides with it
    open: the pause names the candidate and production and links the page.

    Returns:
        The run's outcome (``promoted`` or ``registered``) and the reason people read.
    """
    registry = ctx.params.registry
    actor = "policy: approval auto"
    reason: str | None = why_trained
    if registry.approval == "required":
        review = _wait_for_review(ctx, version, page)
        open_registry(registry, ctx.schema.features).record_review(
            version, review.approve, review.reason, review.reviewer
        )
        if not review.approve:
            return "registered", f"rejected by {review.reviewer}: {review.reason}"
        actor, reason = review.reviewer, review.reason
    try:
        model = open_registry(registry, ctx.schema.features)
        promote_task(model, ctx.params_file, version, reason=reason, actor=actor)
    except SmokeTestFailed as error:
        return "registered", f"not promoted, the serving smoke test failed: {error}"
    return "promoted", f"{why_trained}; approved by {actor}"


def review_request(ctx: RunContext, version: str, page: Path) -> str:
    """What a reviewer reads at the pause: the candidate, production, the page to open."""
    production = open_registry(ctx.params.registry, ctx.schema.features).production()
    run_id = flow_run.get_id()
    return "\n".join(
        [
            f"Candidate **{version}** passed every gate rule and waits for your approval.",
            "",
            f"- production now: {production.version if production else 'none yet'}",
            f"- review page: [{page}]({page.resolve().as_uri()})",
            f"- decision record: `{ctx.paths.decision}`",
            f"- answer here, or `anomalyflow approve {run_id} --reason '...'` "
            "(`--reject` to refuse)",
        ]
    )


def _wait_for_review(ctx: RunContext, version: str, page: Path) -> Review:
    """Pause until someone answers in the Prefect UI or with ``anomalyflow approve``."""
    request = review_request(ctx, version, page)
    create_link_artifact(
        link=page.resolve().as_uri(),
        link_text=f"Review page of candidate {version}",
        key="review-page",
        description="Open it before you approve or reject the candidate.",
    )
    get_run_logger().warning("%s", request.replace("**", ""))
    notify(ctx.params.notify, "approval-waiting", version=version, review_page=page)
    try:
        review: Review = pause_flow_run(
            wait_for_input=Review.with_initial_data(description=request),
            timeout=int(ctx.params.registry.approval_timeout_hours * 3600),
            poll_interval=REVIEW_POLL_SECONDS,
            key=f"review-{version}",
        )
    except FlowPauseTimeout:
        return Review(approve=False, reviewer="timeout", reason="nobody answered in time")
    return review
