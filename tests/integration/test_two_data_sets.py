"""A second data set in the same project gets a model name of its own (issue 13).

Pointing ``data:`` at a sensor data set once archived the card model's production,
replaced it with a model of other features, and the gate said "first model", which was
false. Now each data set's features name a model of their own: the card model keeps
its production, log and versions, and the gate names the production it did not compare.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.params import load_params
from anomalyflow.pipeline.production import project_registry
from anomalyflow.registry.store import Registry
from tests.integration.test_main_job import SMALL
from tests.integration.test_user_data import SENSOR_DATA, write_sensor_data

runner = CliRunner()


def test_a_second_data_set_keeps_the_first_models_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL)
    first = runner.invoke(app, ["run"])
    assert first.exit_code == 0, first.output
    card = project_registry(load_params())
    card_production = card.state().production
    assert card_production is not None
    card_log, card_versions = card.audit_log.read_bytes(), card.models.versions()

    Path("mydata").mkdir()
    write_sensor_data(Path("mydata"))
    # Its own data folder: the training window of card batches is no window for sensors.
    second_data = {"data": SENSOR_DATA, "paths": {"data_dir": "mydata"}}
    Path("params.yaml").write_text(SMALL + yaml.safe_dump(second_data))
    second = runner.invoke(app, ["run"])
    assert second.exit_code == 0, second.output

    sensors = project_registry(load_params())
    assert sensors.name != card.name and sensors.home == card.home
    reread = Registry(card.home, card.name)
    assert reread.state().production == card_production  # kept, not archived
    assert card.audit_log.read_bytes() == card_log  # nothing recorded against it
    assert reread.models.versions() == card_versions
    assert sensors.state().production is not None  # the sensor model's own first production
    decision = json.loads(Path("artifacts/decision.json").read_text())
    assert decision["model_name"] == sensors.name
    assert decision["production_metrics"] is None  # the card model was not compared
    relative = next(r for r in decision["rules"] if r["rule"] == "not_worse_than_production")
    assert "first model" not in relative["note"]
    assert card.name in relative["note"] and card_production in relative["note"]

    listed = json.loads(runner.invoke(app, ["models", "--json"]).output)
    assert {v["model"] for v in listed} == {sensors.name}
    refused = runner.invoke(app, ["rollback"])  # the card model is no earlier production
    assert refused.exit_code == 2
    assert reread.state().production == card_production
