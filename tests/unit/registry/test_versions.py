"""Versions by prefix or name resolve to one full version; rollback steps back in order.

Promotions here stand in a passed smoke test for the serving one: these tests are about
what the registry records, which ``test_registry.py`` checks with the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import takewhile
from typing import Any

import pytest

from anomalyflow.registry.store import ModelVersion, Registry, RegistryError


def passed_smoke(version: ModelVersion) -> dict[str, Any]:
    return {"passed": True, "rows": 0, "largest_gap": 0.0, "seconds": 0.0}


def _shared_prefix(a: str, b: str) -> str:
    return "".join(
        x for x, _ in takewhile(lambda pair: pair[0] == pair[1], zip(a, b, strict=False))
    )


def _shortest_unique_prefix(version: str, others: list[str]) -> str:
    shared = max(len(_shared_prefix(version, other)) for other in others)
    return version[: shared + 1]


def test_a_unique_prefix_is_used_recorded_and_returned_as_the_full_version(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    first, second = add_version(), add_version(detector=1)
    short = _shortest_unique_prefix(first, [second])
    assert len(short) < len(first)

    assert registry.resolve(short) == first
    assert registry.get(short).version == first
    state = registry.promote(short, passed_smoke)
    assert state.production == first
    assert registry.history()[-1]["version"] == first
    assert registry.production() is not None and registry.get(first).stage == "production"

    assert registry.record_review(_shortest_unique_prefix(second, [first]), True, "ok", "al") == (
        second
    )
    assert registry.history()[-1] | {"at": None} == registry.history()[-1] | {
        "at": None,
        "action": "approve",
        "version": second,
    }
    loaded = registry.load(short)
    assert list(loaded.feature_names_) == list(registry.load(first).feature_names_)


def test_names_resolve_to_production_previous_and_the_newest_version(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    first, second, third = add_version(), add_version(detector=1), add_version()
    for name in ("production", "previous"):
        with pytest.raises(RegistryError, match=f"no {name}"):
            registry.resolve(name)
    assert registry.resolve("latest") == third

    registry.promote(first, passed_smoke)
    registry.promote("latest", passed_smoke)
    assert (registry.resolve("production"), registry.resolve("previous")) == (third, first)
    assert registry.state().production == third and second not in registry.state().previous
    assert registry.history()[-1]["version"] == third


def test_an_unknown_or_ambiguous_version_is_refused_and_nothing_changes(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    first, second = add_version(), add_version(detector=1)
    shared = _shared_prefix(first, second)
    assert shared
    before = registry.audit_log.read_bytes()

    with pytest.raises(RegistryError, match="no registered version matches 'zzz'"):
        registry.promote("zzz", passed_smoke)
    with pytest.raises(RegistryError, match=f"'{shared}' is ambiguous") as ambiguous:
        registry.promote(shared, passed_smoke)
    assert first in str(ambiguous.value) and second in str(ambiguous.value)
    for refused in (
        lambda: registry.load(shared),
        lambda: registry.get(shared),
        lambda: registry.record_review(shared, False, "no", "al"),
        lambda: registry.record_review("", False, "no", "al"),
    ):
        with pytest.raises(RegistryError):
            refused()
    assert registry.audit_log.read_bytes() == before
    assert registry.state().production is None


def test_rollback_steps_back_through_earlier_productions_never_to_the_one_it_left(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    first, second, third = add_version(), add_version(detector=1), add_version()
    for version in (first, second, third):
        registry.promote(version, passed_smoke)

    assert registry.rollback(reason="bad alerts").production == second
    assert registry.rollback().production == first  # two rollbacks: two steps back
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()
    assert registry.state().production == first

    registry.promote(second, passed_smoke)
    registry.promote(first, passed_smoke)  # first is production again, second before it
    assert registry.rollback().production == second
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        registry.rollback()  # not back to first, which the last rollback left
    assert registry.state().production == second
    assert [v.stage for v in registry.versions()].count("production") == 1


def test_rollback_restores_a_gate_failed_version_only_forced_with_a_reason(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    failed, passed = add_version(approved=False), add_version(detector=1)
    registry.promote(failed, passed_smoke, force=True, reason="hotfix, bob agreed")
    registry.promote(passed, passed_smoke)  # the gate-failed version is the one before it
    before = registry.audit_log.read_bytes()

    with pytest.raises(RegistryError, match=failed):  # it names the version
        registry.rollback(reason="bad alerts")
    for no_reason in (None, "  "):  # the override is recorded with its reason
        with pytest.raises(RegistryError):
            registry.rollback(force=True, reason=no_reason)
    assert registry.audit_log.read_bytes() == before
    assert registry.state().production == passed

    assert registry.rollback(force=True, reason="passed one misses fraud").production == failed
    entry = registry.history()[-1]
    assert (entry["action"], entry["version"], entry["forced"]) == ("rollback", failed, True)
    assert entry["reason"] == "passed one misses fraud"


def test_the_gate_judging_again_changes_what_may_be_promoted_unforced(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    failed = add_version(approved=False)
    with pytest.raises(RegistryError):
        registry.promote(failed, passed_smoke)  # gate-failed: only forced

    assert registry.record_review(failed[:6], True, "gate rules relaxed", None, by_gate=True)
    entry = registry.history()[-1]
    assert (entry["action"], entry["version"], entry["gate"]) == ("rejudge", failed, "passed")
    assert registry.promote(failed, passed_smoke).production == failed

    registry.record_review(failed, False, "gate rules tightened", None, by_gate=True)
    assert registry.state().production == failed  # a verdict never demotes production
    assert failed in registry.state().gate_failed
