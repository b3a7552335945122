"""A gate-passed candidate whose promotion never finished is reported, not forgotten."""

from __future__ import annotations

from collections.abc import Callable

from anomalyflow.registry.model_version import unfinished_promotion
from anomalyflow.registry.store import Registry


def test_the_newest_passed_candidate_not_promoted_is_reported_until_promoted(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    assert unfinished_promotion(registry.versions()) is None
    first = add_version(approved=True)
    assert unfinished_promotion(registry.versions()) == first  # its run was killed before promoting
    registry.promote(first, lambda version: {"passed": True})
    assert unfinished_promotion(registry.versions()) is None
    add_version(approved=False)  # a gate-failed candidate is meant to stay one
    assert unfinished_promotion(registry.versions()) is None
