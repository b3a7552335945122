"""Random sequences of registry changes, checked against a plain-Python model of them.

A hypothesis state machine registers versions (gate passed or failed), promotes them by
full version, unique prefix or name (forced or not, with or without a reason, one or
two in a row), rolls back (forced or not), and records reviews, on real registries of
two model names in one BentoML home. A reference model per name (the versions in order
with their gate verdicts, production and the stack of earlier productions) says what
each step must do; after every step each name's state, audit log and a fresh reading of
that log must agree with it, a refused step must change nothing, and no step on one
name may change the other.

The smoke test is a stand-in that passes (the real one starts a server): this is about
what the registry records.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from anomalyflow.registry.store import Registry, RegistryError, RegistryState
from tests.conftest import decision_record
from tests.unit.registry.conftest import SMOKE_ROWS

# How a step names its version; the ones that resolve come more often.
REFS = (
    "full", "unique", "latest", "full", "unique", "previous", "production",
    "ambiguous", "unknown", "empty", "other_model",
)  # fmt: skip
NAMES = ("card-model", "sensor-model")  # two model names in one BentoML home
REASONS = ("bad alerts", "rollback failed", "bad alerts", None, "   ")  # mostly valid
VERSIONS_MADE = itertools.count(1)


def fake_uuid1() -> uuid.UUID:
    """BentoML names a version from ``uuid.uuid1()``: these differ in two bytes only,
    so versions share prefixes as in the ``registry`` fixture."""
    n = next(VERSIONS_MADE)
    return uuid.UUID(bytes=bytes([7, n % 256, n // 256 % 256] + [0] * 13))


def passed_smoke(version: object) -> dict[str, Any]:
    return {"passed": True}


def _shared(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


@dataclass
class Reference:
    """What one model name's registry must hold."""

    registered: list[str] = field(default_factory=list)  # oldest first
    failed: set[str] = field(default_factory=set)  # gate failed
    production: str | None = None
    previous: list[str] = field(default_factory=list)  # earlier productions, latest last
    archived: set[str] = field(default_factory=set)
    revision: int = 0

    def state(self) -> RegistryState:
        return RegistryState(
            revision=self.revision,
            production=self.production,
            previous=tuple(self.previous),
            archived=frozenset(self.archived),
            registered=frozenset(self.registered),
            gate_failed=frozenset(self.failed),
            gate_judged=frozenset(self.registered),  # every registration carries a verdict
        )


class RegistryMachine(RuleBasedStateMachine):
    """Two model names' registries in a fresh BentoML home per example, and their
    reference models."""

    detectors: ClassVar[list[Path]] = []  # two saved detector folders, set by the test
    rollbacks_done: ClassVar[int] = 0  # rollbacks that succeeded, over every example

    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp(prefix="registry-machine-"))
        self.registries = {name: Registry(self.home / "bentoml", name) for name in NAMES}
        self.refs = {name: Reference() for name in NAMES}

    def teardown(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    # references -------------------------------------------------------------------------

    def _ref(self, name: str, kind: str, pick: int) -> tuple[str, str | None]:
        """A reference of ``kind`` in ``name`` and the full version it must resolve to
        (None: refused)."""
        model = self.refs[name]
        known = model.registered
        # production is named by "production": picking others makes more steps succeed
        others = [v for v in known if v != model.production] or known
        target = others[pick % len(others)] if others else None
        if kind == "latest":
            return "latest", (known[-1] if known else None)
        if kind == "production":
            return "production", model.production
        if kind == "previous":
            return "previous", (model.previous[-1] if model.previous else None)
        if kind == "other_model":  # a full version, but of the other name: unknown here
            elsewhere = [v for n in NAMES if n != name for v in self.refs[n].registered]
            return (elsewhere[pick % len(elsewhere)], None) if elsewhere else ("zzz", None)
        if kind == "unknown" or target is None:
            return "zzz", None  # versions here all start with "a"
        if kind == "empty":
            return "", None
        others = [v for v in known if v != target]
        if kind == "full" or not others:
            return target, target
        longest = max(_shared(target, other) for other in others)
        if kind == "unique":
            return target[: longest + 1], target
        return target[:longest], None  # ambiguous: it starts target and another

    # changing ---------------------------------------------------------------------------

    def _snapshot(self) -> list[tuple[bytes, list[str]]]:
        """Every name's audit log and stored versions."""
        return [
            (
                r.audit_log.read_bytes() if r.audit_log.exists() else b"",
                sorted(r.models.versions()),
            )
            for r in self.registries.values()
        ]

    def _attempt(self, name: str, change: Callable[[], object], refused: bool) -> None:
        """Run ``change`` on ``name``; it must raise :class:`RegistryError` exactly when
        ``refused``, and then leave every audit log and stored version as it was."""
        before = self._snapshot()
        if refused:
            with pytest.raises(RegistryError):
                change()
            assert self._snapshot() == before
        else:
            change()
            self.refs[name].revision += 1

    @initialize()
    def first_versions(self) -> None:
        for name in NAMES:
            self.register(name, gate_passed=True, detector=0)
            self.register(name, gate_passed=True, detector=1)

    @rule(
        name=st.sampled_from(NAMES),
        gate_passed=st.sampled_from([True, True, False]),
        detector=st.integers(0, 1),
    )
    def register(self, name: str, gate_passed: bool, detector: int) -> None:
        registry, model = self.registries[name], self.refs[name]
        known = set(registry.models.versions())
        record = decision_record(gate_passed)
        version = registry.register(self.detectors[detector], record, SMOKE_ROWS).version
        assert version not in known and version in registry.models.versions()
        model.revision += 1
        model.registered.append(version)
        if not gate_passed:
            model.failed.add(version)

    @rule(name=st.sampled_from(NAMES), kind=st.sampled_from(REFS), pick=st.integers(0, 20))
    def promote(self, name: str, kind: str, pick: int) -> None:
        self._promote(name, kind, pick, force=False, reason=None)

    @rule(
        name=st.sampled_from(NAMES),
        kind=st.sampled_from(REFS),
        pick=st.integers(0, 20),
        reason=st.sampled_from(REASONS),
    )
    def force_promote(self, name: str, kind: str, pick: int, reason: str | None) -> None:
        self._promote(name, kind, pick, force=True, reason=reason)

    @rule(name=st.sampled_from(NAMES), first=st.integers(0, 20), second=st.integers(0, 20))
    def promote_two_in_a_row(self, name: str, first: int, second: int) -> None:
        """Two productions in a row: a stack of earlier productions for rollbacks."""
        for pick in (first, second):
            self._promote(name, "full", pick, force=True, reason="two in a row")

    def _promote(self, name: str, kind: str, pick: int, force: bool, reason: str | None) -> None:
        registry, model = self.registries[name], self.refs[name]
        ref, version = self._ref(name, kind, pick)
        refused = (
            version is None
            or version == model.production
            or (force and not (reason and reason.strip()))
            or (version in model.failed and not force)
        )
        self._attempt(
            name,
            lambda: registry.promote(ref, passed_smoke, force=force, reason=reason),
            refused,
        )
        if refused:
            return
        assert version is not None
        entry = registry.history()[-1]
        assert (entry["action"], entry["version"]) == ("promote", version)
        assert entry["previous_production"] == model.production
        assert entry["forced"] == (force and version in model.failed)
        model.previous = [v for v in model.previous if v != version]
        model.archived.discard(version)
        if model.production is not None:
            model.previous.append(model.production)
            model.archived.add(model.production)
        model.production = version

    @rule(name=st.sampled_from(NAMES), reason=st.sampled_from(REASONS), force=st.booleans())
    def rollback(self, name: str, reason: str | None, force: bool) -> None:
        registry, model = self.registries[name], self.refs[name]
        target = model.previous[-1] if model.previous else None
        refused = (
            model.production is None
            or target is None
            or (force and not (reason and reason.strip()))
            or (target in model.failed and not force)  # restored past its gate only if forced
        )
        self._attempt(name, lambda: registry.rollback(reason=reason, force=force), refused)
        if refused:
            return
        assert model.production is not None
        target = model.previous.pop()
        entry = registry.history()[-1]
        assert (entry["action"], entry["version"]) == ("rollback", target)
        assert entry["previous_production"] == model.production
        assert entry["forced"] == (force and target in model.failed)
        model.archived = (model.archived | {model.production}) - {target}
        model.production = target
        RegistryMachine.rollbacks_done += 1

    @rule(
        name=st.sampled_from(NAMES),
        kind=st.sampled_from(REFS),
        pick=st.integers(0, 20),
        approved=st.booleans(),
    )
    def review(self, name: str, kind: str, pick: int, approved: bool) -> None:
        registry = self.registries[name]
        ref, version = self._ref(name, kind, pick)
        returned: list[str] = []
        self._attempt(
            name,
            lambda: returned.append(registry.record_review(ref, approved, "looked", "al")),
            version is None,
        )
        if version is not None:
            assert returned == [version]
            entry = registry.history()[-1]
            assert entry["action"] == ("approve" if approved else "reject")
            assert entry["version"] == version

    # checking ---------------------------------------------------------------------------

    @invariant()
    def each_state_matches_its_model(self) -> None:
        for name, registry in self.registries.items():
            assert registry.state() == self.refs[name].state()

    @invariant()
    def at_most_one_production_per_model_name_and_labels_follow(self) -> None:
        for name, registry in self.registries.items():
            model, listed = self.refs[name], registry.versions()
            assert [v.stage for v in listed].count("production") <= 1
            assert {v.model_name for v in listed} <= {name}
            assert [v.version for v in listed] == model.registered[::-1]  # newest first
            assert {v.version for v in listed if not v.gate_passed} == model.failed
            for stored in registry.models.all():
                expected = registry.state().stage_of(str(stored.tag.version))
                assert stored.info.labels["stage"] == expected

    @invariant()
    def history_names_only_full_existing_versions_of_its_name(self) -> None:
        for name, registry in self.registries.items():
            model, history = self.refs[name], registry.history()
            assert len(history) == model.revision
            assert [entry["revision"] for entry in history] == list(range(1, model.revision + 1))
            assert {entry["version"] for entry in history} <= set(registry.models.versions())
            assert [e["version"] for e in history if e["action"] == "register"] == (
                model.registered
            )

    @invariant()
    def replaying_each_log_gives_the_same_state(self) -> None:
        for name, registry in self.registries.items():
            assert Registry(self.home / "bentoml", name).state() == registry.state()


def test_random_registry_changes_agree_with_the_reference_model(
    saved_detectors: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RegistryMachine, "detectors", saved_detectors)
    monkeypatch.setattr(RegistryMachine, "rollbacks_done", 0)
    monkeypatch.setattr(uuid, "uuid1", fake_uuid1)
    run_state_machine_as_test(
        RegistryMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # Promotions two in a row build the stack rollbacks walk back through.
    assert RegistryMachine.rollbacks_done >= 10
