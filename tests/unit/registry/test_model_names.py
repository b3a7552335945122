"""One production per model name: the name in params, and names that never cross (issue 13)."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path
from typing import Any

import pytest

from anomalyflow.errors import Refusal
from anomalyflow.params import ParamsError, load_params
from anomalyflow.pipeline.data import SYNTHETIC_SCHEMA
from anomalyflow.registry.naming import derived_model_name, model_name
from anomalyflow.registry.store import Registry, RegistryConflict, RegistryError
from tests.conftest import decision_record
from tests.unit.registry.conftest import SMOKE_ROWS

SENSORS = ("temperature_c", "pressure_kpa", "vibration_rms")
REFUSED = 2  # the exit code of every refusal


def _passed(version: object) -> dict[str, Any]:
    return {"passed": True}


@pytest.mark.parametrize("name", ["Card Fraud", "-card", "card-", "card/fraud", "c" * 64, ""])
def test_a_name_bentoml_would_refuse_is_one_line_naming_the_key(tmp_path: Path, name: str) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"registry: {{model_name: '{name}'}}\n")
    with pytest.raises(ParamsError) as refused:
        load_params(params)
    message = str(refused.value)
    assert "\n" not in message and str(params) in message
    assert "'registry.model_name'" in message


def test_the_default_name_follows_the_features_and_an_explicit_one_wins(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("registry: {model_name: null}\n")
    registry = load_params(params).registry
    assert registry.model_name is None  # null: derived
    card = model_name(registry, SYNTHETIC_SCHEMA.features)
    assert card == derived_model_name(SYNTHETIC_SCHEMA.features)
    assert model_name(registry, SENSORS) != card  # two data sets never share one
    assert model_name(registry, SENSORS[::-1]) != model_name(registry, SENSORS)
    for derived in (card, model_name(registry, SENSORS)):
        Registry(tmp_path / "bentoml", derived)  # a name BentoML takes
    params.write_text("registry: {model_name: card-fraud.v2}\n")
    assert model_name(load_params(params).registry, SENSORS) == "card-fraud.v2"


def test_each_name_has_its_own_versions_production_and_history(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    card, sensors = (Registry(tmp_path / "bentoml", n) for n in ("card", "sensors"))
    card_versions = [
        card.register(folder, decision_record(), SMOKE_ROWS).version for folder in saved_detectors
    ]
    sensor = sensors.register(saved_detectors[0], decision_record(), SMOKE_ROWS).version
    card.promote(card_versions[0], _passed)
    card.promote(card_versions[1], _passed)
    sensor_log = sensors.audit_log.read_bytes()

    sensors.promote(sensor, _passed)  # the first of its name: nothing archived elsewhere
    assert card.state().production == card_versions[1]
    with pytest.raises(RegistryError):
        sensors.resolve(card_versions[0])  # another name's version is unknown here
    card.rollback()
    assert sensors.state().production == sensor and card.state().production == card_versions[0]
    assert sensors.audit_log.read_bytes().startswith(sensor_log)
    assert {e["version"] for e in sensors.history()} == {sensor}
    assert {v.model_name for v in card.versions()} == {"card"}
    with pytest.raises(RegistryError, match="nothing to roll back"):
        sensors.rollback()


def _promote_in_a_process(home: str, name: str, version: str, barrier: Any, refusals: Any) -> None:
    """One process's promotion; a refusal ends it as the CLI does: one line, exit 2.

    The smoke test waits until every process has looked at the registry, so the
    promotions start from the same state and race to commit.
    """

    def all_looked(chosen: object) -> dict[str, Any]:
        barrier.wait(timeout=120)
        return {"passed": True}

    try:
        Registry(Path(home), name).promote(version, all_looked)
    except Refusal as refused:
        refusals.put((type(refused).__name__, str(refused)))
        sys.exit(REFUSED)


def _race(home: Path, promotions: list[tuple[str, str]]) -> tuple[list[int | None], list[Any]]:
    """Promote each (name, version) at once, one real process each; their exit codes
    and refusals (class name, message)."""
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters
    barrier, refusals = spawn.Barrier(len(promotions)), spawn.Queue()
    racers = [
        spawn.Process(target=_promote_in_a_process, args=(str(home), n, v, barrier, refusals))
        for n, v in promotions
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=300)
    refused = sum(racer.exitcode == REFUSED for racer in racers)
    return [racer.exitcode for racer in racers], [refusals.get(timeout=5) for _ in range(refused)]


def test_two_processes_racing_to_promote_one_wins_the_other_gets_a_conflict(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    registry = Registry(tmp_path / "bentoml", "card")
    versions = [
        registry.register(folder, decision_record(), SMOKE_ROWS).version
        for folder in saved_detectors
    ]

    exit_codes, refusals = _race(registry.home, [("card", v) for v in versions])

    assert sorted(exit_codes, key=str) == [0, REFUSED]
    winner = versions[exit_codes.index(0)]
    assert registry.state().production == winner
    promotions = [e for e in registry.history() if e["action"] == "promote"]
    assert [e["version"] for e in promotions] == [winner]  # the loser recorded nothing
    ((kind, message),) = refusals
    assert kind == RegistryConflict.__name__
    assert "\n" not in message and winner in message  # one line, naming the production now


def test_promotions_of_two_names_at_once_both_win(
    tmp_path: Path, saved_detectors: list[Path]
) -> None:
    """Each name has its own log and lock: one name's promotion never conflicts with
    another's."""
    home = tmp_path / "bentoml"
    chosen = [
        (name, Registry(home, name).register(folder, decision_record(), SMOKE_ROWS).version)
        for name, folder in zip(("card", "sensors"), saved_detectors, strict=True)
    ]

    exit_codes, refusals = _race(home, chosen)

    assert exit_codes == [0, 0] and refusals == []
    assert [Registry(home, name).state().production for name, _ in chosen] == [
        version for _, version in chosen
    ]
