from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from anomalyflow.params import Params, ParamsError, load_params

REPO = Path(__file__).resolve().parents[2]


def test_repository_params_yaml_loads_and_covers_every_section() -> None:
    params = load_params(REPO / "params.yaml")
    assert isinstance(params, Params)
    assert params.finetune.max_epochs == 10
    assert params.pretrain.batch_size == "auto"
    assert params.synthetic.drift.new_fraud_pattern is False
    assert params.data.source == "synthetic" and params.data.incoming == "data/incoming"


def test_params_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Params().runtime.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("pretrian:\n  max_epochs: 3\n", "pretrian"),
        ("pretrain:\n  max_epoch: 3\n", "pretrain.max_epoch"),
        ("synthetic:\n  drift:\n    inflation: 0.1\n", "synthetic.drift.inflation"),
    ],
)
def test_unknown_keys_are_refused_by_name(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=f"unknown key '{key}'"):
        load_params(path)


@pytest.mark.parametrize(
    "text",
    [
        "pretrain:\n  max_epochs: many\n",
        "pretrain:\n  batch_size: big\n",
        "threshold:\n  method: median\n",
        "runtime:\n  progress: 1\n",
    ],
)
def test_wrong_types_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match="is not a valid"):
        load_params(path)


def test_missing_keys_take_defaults_and_ints_become_floats(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("pretrain:\n  learning_rate: 1\n  batch_size: 64\n")
    params = load_params(path)
    assert params.pretrain.learning_rate == 1.0
    assert isinstance(params.pretrain.learning_rate, float)
    assert params.pretrain.batch_size == 64
    assert params.finetune == Params().finetune


def test_data_section_parses_lists_into_tuples(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        "data:\n  source: files\n  features: [temperature_c, pressure_kpa]\n  label: fault\n"
        "  id: ''\n  timestamp: null\n  reference: ref.parquet\n  holdout: holdout.csv\n"
    )
    data = load_params(path).data
    assert data.features == ("temperature_c", "pressure_kpa")
    assert data.label == "fault" and not data.id and data.timestamp is None


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ("temperature_c", "'data.features' = 'temperature_c' is not a valid list of str"),
        ("[temperature_c, 3]", "'data.features[1]' = 3 is not a valid str"),
        ("{a: 1}", "'data.features' = {'a': 1} is not a valid list of str"),
        ("[]", "'data.features' is required when data.source is files"),
        ("[temperature_c, fault]", "column 'fault' is named twice in 'data'"),
    ],
)
def test_bad_feature_lists_are_refused_by_dotted_key(
    tmp_path: Path, features: str, message: str
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        f"data:\n  source: files\n  features: {features}\n  label: fault\n"
        "  reference: ref.parquet\n  holdout: holdout.parquet\n"
    )
    with pytest.raises(ParamsError, match=re.escape(message)):
        load_params(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data:\n  features: [a]\n", "'data.features' applies only to data.source files"),
        ("data:\n  source: files\n  features: [a]\n", "'data.label' is required"),
        ("data:\n  source: csv\n", "'data.source' = 'csv' is not a valid 'synthetic' | 'files'"),
        ("data:\n  batch: ''\n", "'data.batch' must name a file (dvc.yaml versions it)"),
        ("finetune:\n  near_anomaly_share: 1.5\n", "'finetune.near_anomaly_share' = 1.5 must"),
        ("finetune:\n  linear_c: 0\n", "'finetune.linear_c' = 0.0 must be above 0"),
    ],
)
def test_keys_that_break_a_rule_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=re.escape(message)):
        load_params(path)


def test_the_linear_half_can_be_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("finetune:\n  linear_c: null\n")
    assert load_params(path).finetune.linear_c is None
