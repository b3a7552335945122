from __future__ import annotations

import dataclasses
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
