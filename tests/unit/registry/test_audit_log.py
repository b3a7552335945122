"""The audit log is verified before anything is read from it or written to it.

A line that is not an entry, breaks the hash chain, or records a change the registry
would never make is refused with the file and its line number; the registry reads and
writes nothing until it is explained, and a running service keeps the model it has.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from anomalyflow.registry.follow import ProductionFollower
from anomalyflow.registry.store import AuditLogTampered, ModelVersion, Registry, RegistryError


def passed_smoke(version: ModelVersion) -> dict[str, Any]:
    return {"passed": True, "rows": 0, "largest_gap": 0.0, "seconds": 0.0}


def _lines(registry: Registry) -> list[str]:
    return registry.audit_log.read_text().splitlines()


def _promoted(registry: Registry, add_version: Callable[..., str]) -> tuple[str, str]:
    """A production version, and a gate-failed candidate beside it."""
    good, failed = add_version(), add_version(approved=False, detector=1)
    registry.promote(good, passed_smoke)
    return good, failed


def _assert_refused_everywhere(registry: Registry, line: int, rule: str) -> None:
    """Reading and writing both refuse, naming the file, the line and the rule."""
    before = registry.audit_log.read_bytes()
    where = f"audit log {registry.audit_log}, line {line}: "
    for attempt in (
        registry.state,
        registry.versions,
        registry.history,
        registry.production,
        lambda: registry.rollback(reason="x"),
        lambda: registry.register(Path("unused"), {}, np.zeros((1, 1))),  # refused first
    ):
        with pytest.raises(AuditLogTampered) as refused:
            attempt()
        message = str(refused.value)
        assert message.startswith(where) and rule in message and "\n" not in message
    assert registry.audit_log.read_bytes() == before


@pytest.mark.parametrize(
    ("appended", "rule"),
    [
        ("42", "not a JSON object (42)"),
        ("{}", "at: Field required"),
        ("not json", "not JSON"),
        ('{"revision": 1, "revision": 2}', "the key 'revision' twice"),
        ('{"action": "promote", "version": "FAILED"}', "at: Field required"),
    ],
)
def test_a_line_that_is_no_entry_is_refused_naming_it_and_nothing_changes(
    registry: Registry, add_version: Callable[..., str], appended: str, rule: str
) -> None:
    good, failed = _promoted(registry, add_version)
    count = len(_lines(registry))
    with registry.audit_log.open("a") as log:
        log.write(appended.replace("FAILED", failed) + "\n")

    _assert_refused_everywhere(registry, count + 1, rule)

    registry.audit_log.write_text("\n".join(_lines(registry)[:count]) + "\n")
    assert registry.state().production == good
    assert registry.get(failed).stage == "candidate"


def _forge(registry: Registry, change: dict[str, Any]) -> None:
    """Append a well-formed line with a correct hash: only the fold can catch it.

    It is the last line with ``change`` applied, its revision then raised by one."""
    lines = _lines(registry)
    entry = json.loads(lines[-1]) | {"reason": None, "forced": False} | change
    entry["revision"] += 1
    entry["prev_sha256"] = hashlib.sha256(registry.audit_log.read_bytes()).hexdigest()
    with registry.audit_log.open("a") as log:
        log.write(json.dumps(entry) + "\n")


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"version": "FAILED"}, "previous_production 'None' but production was"),
        ({"version": "FAILED", "previous_production": "GOOD"}, "whose gate failed, unforced"),
        ({"version": "nosuchversion"}, "never registered"),
        ({"action": "rollback", "previous_production": "GOOD"}, "no earlier production"),
        ({"revision": 0}, "revision 1 where 4 comes next"),
    ],
)
def test_a_forged_change_with_a_valid_chain_is_refused_by_the_fold(
    registry: Registry, add_version: Callable[..., str], change: dict[str, Any], rule: str
) -> None:
    good, failed = _promoted(registry, add_version)
    names = {"FAILED": failed, "GOOD": good}
    _forge(registry, {k: names.get(v, v) if isinstance(v, str) else v for k, v in change.items()})

    _assert_refused_everywhere(registry, 4, rule)


def test_a_forged_unforced_rollback_to_a_gate_failed_version_is_refused_by_the_fold(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    good, failed = _promoted(registry, add_version)
    registry.promote(failed, passed_smoke, force=True, reason="hotfix")
    registry.promote(good, passed_smoke)  # failed is the production before it
    _forge(registry, {"action": "rollback", "version": failed, "previous_production": good})

    _assert_refused_everywhere(registry, 6, "whose gate failed, unforced")


def test_an_edited_inserted_or_unchained_line_breaks_the_chain(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    _, failed = _promoted(registry, add_version)
    original = _lines(registry)

    edited = original.copy()
    edited[1] = edited[1].replace('"gate": "failed"', '"gate": "passed"')
    registry.audit_log.write_text("\n".join(edited) + "\n")
    _assert_refused_everywhere(registry, 3, "prev_sha256 differs from the lines before it")

    registry.audit_log.write_text("\n".join(original[:1] + original[2:]) + "\n")  # removed
    _assert_refused_everywhere(registry, 2, "prev_sha256 differs")

    unchained = json.loads(original[-1])
    del unchained["prev_sha256"]
    unchained |= {"version": failed, "forced": True, "reason": "me", "revision": 4}
    unchained["previous_production"] = json.loads(original[-1])["version"]
    registry.audit_log.write_text("\n".join([*original, json.dumps(unchained)]) + "\n")
    _assert_refused_everywhere(registry, 4, "no prev_sha256 after chained lines")


def test_a_log_from_before_the_chain_is_read_and_then_chained(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    good, failed = _promoted(registry, add_version)
    legacy = []
    for line in _lines(registry):
        entry = json.loads(line)
        for added in ("prev_sha256", "gate"):  # what the log held before
            entry.pop(added, None)
        legacy.append(json.dumps(entry))
    registry.audit_log.write_text("\n".join(legacy) + "\n")

    assert registry.state().production == good
    registry.promote(failed, passed_smoke, force=True, reason="incident 7")
    assert registry.rollback().production == good
    lines = _lines(registry)
    assert lines[:3] == legacy and all("prev_sha256" in line for line in lines[3:])

    legacy[0] = legacy[0].replace(good, failed)  # the chain vouches for the legacy lines too
    registry.audit_log.write_text("\n".join(legacy + lines[3:]) + "\n")
    with pytest.raises(AuditLogTampered, match=r"line 4: prev_sha256 differs"):
        registry.state()


def test_a_following_server_keeps_the_last_verified_production(
    registry: Registry, add_version: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    first = add_version()
    registry.promote(first, passed_smoke)
    follower = ProductionFollower(registry)
    second = add_version(detector=1)
    assert follower.poll(first) is None  # a registration changes nothing served
    registry.promote(second, passed_smoke)
    assert follower.changed() and follower.poll(first) == second

    lines = _lines(registry)
    with registry.audit_log.open("a") as log:
        log.write("{}\n")
    with caplog.at_level(logging.ERROR):
        assert follower.poll(second) is None
    assert follower.refusal is not None and f"line {len(lines) + 1}" in follower.refusal
    assert f"still serving {second}" in caplog.text
    assert not follower.changed() and follower.poll(second) is None  # logged once

    registry.audit_log.write_text("\n".join(lines) + "\n")
    registry.rollback()
    assert follower.poll(second) == first and follower.refusal is None
    with pytest.raises(RegistryError):
        registry.rollback()
