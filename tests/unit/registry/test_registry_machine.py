"""Random sequences of registry changes, checked against a plain-Python model of them.

A hypothesis state machine registers versions (gate passed or failed), promotes them by
full version, unique prefix or name (forced or not, with or without a reason), rolls
back, and records reviews, on a real :class:`Registry`. A reference model (the versions
in order with their gate verdicts, production and the stack of earlier productions)
says what each step must do; after every step the registry's state, its audit log and
a fresh reading of that log must agree with it, and a refused step must change nothing.

The smoke test is a stand-in that passes (the real one starts a server): this is about
what the registry records.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Callable
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
    "ambiguous", "unknown", "empty",
)  # fmt: skip
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


class RegistryMachine(RuleBasedStateMachine):
    """One registry in a fresh BentoML home per example, and its reference model."""

    detectors: ClassVar[list[Path]] = []  # two saved detector folders, set by the test

    def __init__(self) -> None:
        super().__init__()
        self.home = Path(tempfile.mkdtemp(prefix="registry-machine-"))
        self.registry = Registry(self.home / "bentoml")
        # the reference model
        self.registered: list[str] = []  # oldest first
        self.failed: set[str] = set()  # gate failed
        self.production: str | None = None
        self.previous: list[str] = []  # earlier productions, latest last
        self.archived: set[str] = set()
        self.revision = 0

    def teardown(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    # references -------------------------------------------------------------------------

    def _ref(self, kind: str, pick: int) -> tuple[str, str | None]:
        """A reference of ``kind`` and the full version it must resolve to (None: refused)."""
        known = self.registered
        # production is named by "production": picking others makes more steps succeed
        others = [v for v in known if v != self.production] or known
        target = others[pick % len(others)] if others else None
        if kind == "latest":
            return "latest", (known[-1] if known else None)
        if kind == "production":
            return "production", self.production
        if kind == "previous":
            return "previous", (self.previous[-1] if self.previous else None)
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

    def _attempt(self, change: Callable[[], object], refused: bool) -> None:
        """Run ``change``; it must raise :class:`RegistryError` exactly when ``refused``,
        and then leave the audit log and the stored versions as they were."""
        log = self.registry.audit_log
        before = (
            log.read_bytes() if log.exists() else b"",
            sorted(self.registry.models.versions()),
        )
        if refused:
            with pytest.raises(RegistryError):
                change()
            after = (
                log.read_bytes() if log.exists() else b"",
                sorted(self.registry.models.versions()),
            )
            assert after == before
        else:
            change()
            self.revision += 1

    @initialize()
    def first_versions(self) -> None:
        self.register(gate_passed=True, detector=0)
        self.register(gate_passed=True, detector=1)

    @rule(gate_passed=st.sampled_from([True, True, False]), detector=st.integers(0, 1))
    def register(self, gate_passed: bool, detector: int) -> None:
        known = set(self.registry.models.versions())
        record = decision_record(gate_passed)
        version = self.registry.register(self.detectors[detector], record, SMOKE_ROWS).version
        assert version not in known and version in self.registry.models.versions()
        self.revision += 1
        self.registered.append(version)
        if not gate_passed:
            self.failed.add(version)

    @rule(kind=st.sampled_from(REFS), pick=st.integers(0, 20))
    def promote(self, kind: str, pick: int) -> None:
        self._promote(kind, pick, force=False, reason=None)

    @rule(kind=st.sampled_from(REFS), pick=st.integers(0, 20), reason=st.sampled_from(REASONS))
    def force_promote(self, kind: str, pick: int, reason: str | None) -> None:
        self._promote(kind, pick, force=True, reason=reason)

    def _promote(self, kind: str, pick: int, force: bool, reason: str | None) -> None:
        ref, version = self._ref(kind, pick)
        refused = (
            version is None
            or version == self.production
            or (force and not (reason and reason.strip()))
            or (version in self.failed and not force)
        )
        self._attempt(
            lambda: self.registry.promote(ref, passed_smoke, force=force, reason=reason),
            refused,
        )
        if refused:
            return
        assert version is not None
        entry = self.registry.history()[-1]
        assert (entry["action"], entry["version"]) == ("promote", version)
        assert entry["previous_production"] == self.production
        assert entry["forced"] == (force and version in self.failed)
        self.previous = [v for v in self.previous if v != version]
        self.archived.discard(version)
        if self.production is not None:
            self.previous.append(self.production)
            self.archived.add(self.production)
        self.production = version

    @rule(reason=st.sampled_from(REASONS))
    def rollback(self, reason: str | None) -> None:
        refused = self.production is None or not self.previous
        self._attempt(lambda: self.registry.rollback(reason=reason), refused)
        if refused:
            return
        assert self.production is not None
        target = self.previous.pop()
        entry = self.registry.history()[-1]
        assert (entry["action"], entry["version"]) == ("rollback", target)
        assert entry["previous_production"] == self.production
        self.archived = (self.archived | {self.production}) - {target}
        self.production = target

    @rule(kind=st.sampled_from(REFS), pick=st.integers(0, 20), approved=st.booleans())
    def review(self, kind: str, pick: int, approved: bool) -> None:
        ref, version = self._ref(kind, pick)
        returned: list[str] = []
        self._attempt(
            lambda: returned.append(self.registry.record_review(ref, approved, "looked", "al")),
            version is None,
        )
        if version is not None:
            assert returned == [version]
            entry = self.registry.history()[-1]
            assert entry["action"] == ("approve" if approved else "reject")
            assert entry["version"] == version

    # checking ---------------------------------------------------------------------------

    @invariant()
    def state_matches_the_model(self) -> None:
        assert self.registry.state() == RegistryState(
            revision=self.revision,
            production=self.production,
            previous=tuple(self.previous),
            archived=frozenset(self.archived),
            registered=frozenset(self.registered),
            gate_failed=frozenset(self.failed),
        )

    @invariant()
    def at_most_one_production_and_labels_follow(self) -> None:
        listed = self.registry.versions()
        assert [v.stage for v in listed].count("production") <= 1
        assert [v.version for v in listed] == self.registered[::-1]  # newest first
        assert {v.version for v in listed if not v.gate_passed} == self.failed
        for model in self.registry.models.all():
            expected = self.registry.state().stage_of(str(model.tag.version))
            assert model.info.labels["stage"] == expected

    @invariant()
    def history_names_only_full_existing_versions(self) -> None:
        history = self.registry.history()
        assert len(history) == self.revision
        assert [entry["revision"] for entry in history] == list(range(1, self.revision + 1))
        assert {entry["version"] for entry in history} <= set(self.registry.models.versions())
        assert [e["version"] for e in history if e["action"] == "register"] == self.registered

    @invariant()
    def replaying_the_log_gives_the_same_state(self) -> None:
        assert Registry(self.home / "bentoml").state() == self.registry.state()


def test_random_registry_changes_agree_with_the_reference_model(
    saved_detectors: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RegistryMachine, "detectors", saved_detectors)
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
