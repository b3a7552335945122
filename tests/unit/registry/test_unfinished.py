"""A gate-passed candidate whose promotion never finished is reported, not forgotten."""

from __future__ import annotations

from collections.abc import Callable

from anomalyflow.registry.store import Registry


def test_the_newest_passed_candidate_not_promoted_is_reported_until_promoted(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    assert registry.unfinished_promotion() is None
    first = add_version(approved=True)
    assert registry.unfinished_promotion() == first  # its run was killed before promoting
    registry.promote(first, lambda version: {"passed": True})
    assert registry.unfinished_promotion() is None
    add_version(approved=False)  # a gate-failed candidate is meant to stay one
    assert registry.unfinished_promotion() is None
