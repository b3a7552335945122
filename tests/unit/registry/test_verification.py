"""A version whose files no longer match what was recorded is never promoted, restored,
loaded or switched to, and every refusal names the version.

Corrupted production weights once scored silently (every score NaN), and a version whose
weights differed from the ones the gate passed was promoted.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from anomalyflow.integrity import IntegrityError
from anomalyflow.registry.follow import ProductionFollower
from anomalyflow.registry.store import ModelVersion, Registry
from anomalyflow.registry.verify import verified_detector, weights_md5
from tests.conftest import decision_record
from tests.unit.registry.conftest import SMOKE_ROWS


def passed_smoke(version: ModelVersion) -> dict[str, Any]:
    return {"passed": True, "rows": 0, "largest_gap": 0.0, "seconds": 0.0}


def never_called(version: ModelVersion) -> dict[str, Any]:
    raise AssertionError(f"the smoke test ran for {version.version}")


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def swap_in_other_weights(path: Path, other: Path) -> None:
    """Another detector's weights and its detector.json: every SHA-256 still matches,
    only the MD5 the gate recorded tells them apart."""
    for name in ("weights.safetensors", "detector.json"):
        shutil.copyfile(other / name, path.parent / name)


@pytest.fixture
def tamper(saved_detectors: list[Path]) -> dict[str, Callable[[Path], None]]:
    return {
        "flipped": flip_a_byte,
        "truncated": truncate,
        "swapped": lambda path: swap_in_other_weights(path, saved_detectors[1]),
    }


@pytest.mark.parametrize("damage", ["flipped", "truncated", "swapped"])
def test_a_version_with_changed_weights_is_refused_at_promotion(
    registry: Registry,
    add_version: Callable[..., str],
    tamper: dict[str, Callable[[Path], None]],
    damage: str,
) -> None:
    production, changed = add_version(), add_version()
    registry.promote(production, passed_smoke)
    tamper[damage](registry.get(changed).detector_dir / "weights.safetensors")
    before = registry.audit_log.read_bytes()

    for force in (False, True):
        with pytest.raises(IntegrityError, match=f"version '{changed}'") as refused:
            registry.promote(changed, never_called, force=force, reason="x")
        assert "\n" not in str(refused.value)
    with pytest.raises(IntegrityError, match=f"version '{changed}'"):
        registry.load(changed)
    assert registry.audit_log.read_bytes() == before
    assert registry.state().production == production


def test_rollback_to_a_version_with_changed_weights_is_refused(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    first, second = add_version(), add_version(detector=1)
    registry.promote(first, passed_smoke)
    registry.promote(second, passed_smoke)
    flip_a_byte(registry.get(first).detector_dir / "weights.safetensors")

    with pytest.raises(IntegrityError, match=f"version '{first}'"):
        registry.rollback(reason="incident")
    assert registry.state().production == second
    assert [e["action"] for e in registry.history()][-1] == "promote"


def test_registration_refuses_weights_other_than_the_gate_passed(
    registry: Registry, saved_detectors: list[Path]
) -> None:
    decision = decision_record()
    lineage = decision["lineage"]
    assert isinstance(lineage, dict)
    lineage["candidate_weights_md5"] = weights_md5(saved_detectors[1])
    with pytest.raises(IntegrityError, match=r"weights\.safetensors"):
        registry.register(saved_detectors[0], decision, SMOKE_ROWS)
    assert registry.versions() == [] and registry.history() == []

    lineage["candidate_weights_md5"] = weights_md5(saved_detectors[0])
    version = registry.register(saved_detectors[0], decision, SMOKE_ROWS)
    recorded = json.loads((version.path / "decision.json").read_text())["lineage"]
    assert recorded["candidate_weights_md5"] == weights_md5(saved_detectors[0])
    verified_detector(version.path, version.version)  # passes


def test_a_version_registered_without_the_gate_hash_records_the_one_it_stored(
    registry: Registry, add_version: Callable[..., str], saved_detectors: list[Path]
) -> None:
    version = registry.get(add_version())
    recorded = json.loads((version.path / "decision.json").read_text())["lineage"]
    assert recorded["candidate_weights_md5"] == weights_md5(saved_detectors[0])


def test_a_following_server_keeps_serving_when_the_new_production_fails_verification(
    registry: Registry, add_version: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    first, second = add_version(), add_version(detector=1)
    registry.promote(first, passed_smoke)
    follower = ProductionFollower(registry)
    load = lambda v: verified_detector(registry.get(v).path, v)  # noqa: E731

    def corrupt_after_the_check(version: ModelVersion) -> dict[str, Any]:
        flip_a_byte(version.detector_dir / "weights.safetensors")  # between check and load
        return passed_smoke(version)

    registry.promote(second, corrupt_after_the_check)
    with caplog.at_level(logging.ERROR):
        assert follower.switch(first, load) is None
        assert follower.switch(first, load) is None  # no change since: not logged again
    assert follower.refusal is not None and f"version '{second}'" in follower.refusal
    assert caplog.text.count(f"still serving {first}") == 1

    registry.rollback(reason="corrupted")
    assert follower.switch(first, load) is None and follower.refusal is None


def test_rollback_to_a_version_whose_scoring_graph_changed_is_refused(
    registry: Registry, saved_detectors: list[Path], add_version: Callable[..., str], tmp_path: Path
) -> None:
    """Rollback checked the weights, not the graph: it restored a production that serve
    then refused to start."""
    from anomalyflow.pipeline.register import with_scoring_graph
    from anomalyflow.serving.graph import GRAPH_FILE

    candidate = Path(shutil.copytree(saved_detectors[0], tmp_path / "candidate"))
    record = with_scoring_graph(candidate, decision_record(), SMOKE_ROWS)
    first = registry.register(candidate, record, SMOKE_ROWS).version
    second = add_version(detector=1)
    registry.promote(first, passed_smoke)
    registry.promote(second, passed_smoke)
    with (registry.get(first).detector_dir / GRAPH_FILE).open("ab") as graph:
        graph.write(b"garbage")
    before = registry.audit_log.read_bytes()

    with pytest.raises(IntegrityError, match=f"version '{first}'"):
        registry.rollback(reason="incident")
    assert registry.audit_log.read_bytes() == before


def test_a_model_yaml_that_cannot_be_read_refuses_a_change_before_it_is_recorded(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    """An unrelated version's garbled model.yaml once failed promote and rollback after
    their line was written: recorded, reported as failed, labels left stale."""
    from anomalyflow.registry.store import RegistryError

    first, second, other = add_version(), add_version(detector=1), add_version()
    registry.promote(first, passed_smoke)
    registry.promote(second, passed_smoke)
    (registry.models.root / other / "model.yaml").write_text("{{{")
    before = registry.audit_log.read_bytes()

    with pytest.raises(RegistryError, match=r"model\.yaml"):
        registry.rollback(reason="incident")
    assert registry.audit_log.read_bytes() == before


@pytest.mark.parametrize("record", ["decision.json", "detector/detector.json"])
def test_a_damaged_record_of_a_stored_version_is_refused_naming_it(
    registry: Registry, add_version: Callable[..., str], record: str
) -> None:
    """Read raw, a damaged decision.json of any archived version stopped every later run
    with a JSONDecodeError that named no file."""
    from anomalyflow.errors import Refusal
    from anomalyflow.registry.model_version import failed_rules, feature_names

    version = registry.get(add_version(approved=False))
    (version.path / record).write_text("xx")

    with pytest.raises(Refusal, match=record.split("/")[-1].replace(".", r"\.")):
        failed_rules(version) if record == "decision.json" else feature_names(version)


@pytest.mark.parametrize("edit", ["threshold", "feature order"])
def test_a_stored_versions_edited_detector_json_is_refused(
    registry: Registry, add_version: Callable[..., str], edit: str
) -> None:
    """Only the weights and scaler were hashed: an edited threshold flagged no row, and
    swapped feature names scored every row against the wrong columns, with exit 0."""
    production, edited = add_version(), add_version()
    registry.promote(production, passed_smoke)
    description = registry.get(edited).detector_dir / "detector.json"
    saved = json.loads(description.read_text())
    if edit == "threshold":
        saved["threshold"] = 1e9
    else:
        saved["feature_names"][:2] = saved["feature_names"][1::-1]
    description.write_text(json.dumps(saved, indent=2))

    with pytest.raises(IntegrityError, match=f"version '{edited}'"):
        registry.load(edited)
    with pytest.raises(IntegrityError, match=f"version '{edited}'"):
        registry.promote(edited, never_called)
    assert registry.state().production == production


@pytest.mark.parametrize("damage", ["garbled", "removed", "other width"])
def test_smoke_rows_that_cannot_be_read_refuse_the_promotion_naming_the_file(
    registry: Registry, add_version: Callable[..., str], tmp_path: Path, damage: str
) -> None:
    """A pickle error, FileNotFoundError or 'zip() argument 2 is shorter', exit 1."""
    import numpy as np

    from anomalyflow.serving.server import smoke_test

    version = add_version()
    rows = registry.get(version).smoke_batch
    if damage == "garbled":
        rows.write_bytes(b"not numpy")
    elif damage == "removed":
        rows.unlink()
    else:
        np.save(rows, np.zeros((4, 2), dtype=np.float32))
    params = tmp_path / "params.yaml"
    params.touch()

    with pytest.raises(IntegrityError, match="smoke"):
        registry.promote(version, lambda v: smoke_test(v, registry.home, params))
    assert registry.state().production is None


def test_another_versions_files_copied_in_whole_are_refused_under_this_name(
    registry: Registry, add_version: Callable[..., str]
) -> None:
    """Every hash lived in the same folder as the files: V1's detector and decision record
    copied into V2 checked out, and V2 was restored and served with V1's scores."""
    first, second = add_version(), add_version(detector=1)
    registry.promote(first, passed_smoke)
    registry.promote(second, passed_smoke)
    registry.promote(first, passed_smoke)  # so that a rollback restores the second
    source, target = registry.get(first).path, registry.get(second).path
    shutil.rmtree(target / "detector")
    shutil.copytree(source / "detector", target / "detector")
    shutil.copyfile(source / "decision.json", target / "decision.json")

    with pytest.raises(IntegrityError, match=f"version '{second}'"):
        registry.load(second)
    with pytest.raises(IntegrityError, match=f"version '{second}'"):
        registry.rollback(reason="incident")
    assert registry.state().production == first
