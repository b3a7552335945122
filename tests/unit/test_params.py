"""``params.yaml`` fails closed: every rule is refused in one line naming the dotted key."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from anomalyflow.params import DataParams, Params, ParamsError, load_params, params_from_dict

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    message = str(caught.value)
    assert "\n" not in message, "a refusal is one line"
    assert message.startswith(f"{path}: "), "a refusal names the file"
    return message


def test_repository_params_yaml_loads_and_covers_every_section() -> None:
    params = load_params(REPO / "params.yaml")
    assert isinstance(params, Params)
    assert params.finetune.max_epochs == 10
    assert params.pretrain.batch_size == "auto"
    assert params.synthetic.drift.new_fraud_pattern is False
    assert params.data.source == "synthetic" and params.data.incoming == "data/incoming"


def test_the_defaults_obey_every_rule_and_an_empty_file_takes_them(tmp_path: Path) -> None:
    assert load_params(_write(tmp_path, "")) == Params()
    assert load_params(_write(tmp_path, "# every key at its default\n")) == Params()


def test_params_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Params().runtime.seed = 3  # type: ignore[misc]


def test_replace_checks_the_new_value_too() -> None:
    finetune = Params().finetune
    assert dataclasses.replace(finetune, linear_c=None).linear_c is None
    with pytest.raises(ValidationError, match="learning_rate"):
        dataclasses.replace(finetune, learning_rate=-1.0)


def test_a_saved_models_settings_round_trip_through_json() -> None:
    params = Params(data=DataParams(source="files", features=("a", "b"), label="y"))
    saved = json.loads(json.dumps(dataclasses.asdict(params)))
    assert params_from_dict(saved, Path("detector.json")) == params


def _nested(key: str, value: str) -> str:
    """``a.b.c`` and ``1`` as the YAML ``a:\\n  b:\\n    c: 1``."""
    parts = key.split(".")
    lines = [f"{'  ' * depth}{part}:" for depth, part in enumerate(parts[:-1])]
    return "\n".join([*lines, f"{'  ' * (len(parts) - 1)}{parts[-1]}: {value}"]) + "\n"


# (dotted key, YAML value): each breaks one rule of the key alone, or of its section.
REFUSED = [
    ("finetune.learning_rate", "-0.1"),
    ("finetune.learning_rate", ".nan"),
    ("pretrain.learning_rate", "0"),
    ("pretrain.learning_rate", ".inf"),
    ("pretrain.weight_decay", "-1.0e-5"),
    ("threshold.alert_rate", "2.0"),
    ("threshold.alert_rate", "0"),
    ("threshold.false_positive_rate", "1.0"),
    ("threshold.method", "median"),
    ("pretrain.max_epochs", "0"),
    ("pretrain.max_epochs", "'5'"),
    ("pretrain.max_steps", "0"),
    ("pretrain.batch_size", "big"),
    ("pretrain.batch_size", "0"),
    ("finetune.batch_size", "-1"),
    ("finetune.batch_size", "2.5"),
    ("finetune.patience", "0"),
    ("finetune.frozen_epochs", "-1"),
    ("finetune.validation_fraction", "1.5"),
    ("finetune.near_anomaly_share", "1.0"),
    ("finetune.linear_c", "0"),
    ("finetune.tree_rounds", "0"),
    ("finetune.tree_rounds", "2.5"),
    ("finetune.warm_start", "latest"),
    ("pretrain.max_mask_rate", "1.0"),
    ("pretrain.isolation_weight", "0"),
    ("pretrain.min_mask_rate", "0.6"),  # above max_mask_rate (0.5)
    ("serving.port", "70000"),
    ("serving.port", "0"),
    ("serving.max_batch_records", "0"),
    ("serving.explain_top_k", "0"),
    ("serving.chunk_rows", "0"),
    ("drift.cooldown_hours", "-1"),
    ("drift.drifted_share_threshold", "0"),
    ("drift.ignore_cooldown", "'yes'"),
    ("gate.confidence_level", "7"),
    ("gate.min_auprc", "1.5"),
    ("gate.bootstrap_samples", "0"),
    ("evaluation.confidence_level", "1.0"),
    ("evaluation.alert_budget", "0"),
    ("evaluation.bootstrap_samples", "0"),
    ("model.hidden_dim", "0"),
    ("model.embedding_dim", "-4"),
    ("synthetic.seed", "-1"),
    ("synthetic.history_rows", "0"),
    ("synthetic.fraud_rate", "1.5"),
    ("synthetic.label_coverage", "1.1"),
    ("synthetic.drift.merchant_mix_shift", "2.0"),
    ("synthetic.drift.amount_inflation", "-1"),
    ("validation.min_rows", "0"),
    ("validation.in_range_share", "0"),
    ("validation.range_tolerance", "-0.5"),
    ("validation.min_labeled_anomaly_rate", "0.1"),  # above max_labeled_anomaly_rate (0.05)
    ("registry.approval_timeout_hours", "0"),
    ("registry.smoke_rows", "0"),
    ("orchestration.finetune_seeds", "0"),
    ("orchestration.dask_workers", "0"),
    ("orchestration.drift_sample_rows", "9999"),  # Evidently's scores move too much below
    ("runtime.seed", "-3"),
    ("runtime.num_threads", "-1"),
    ("runtime.progress", "1"),
    ("benchmark.test_size", "1"),
    ("data.source", "csv"),
    ("data.batch", "''"),
    ("data.holdout", "data/holdout.txt"),  # was written, then refused by its reader
    ("data.reference", "data/history.csv"),  # the built-in data is written as Parquet
    ("data.reference", "data/"),  # a folder: was an IsADirectoryError
    ("data.features", "[a]"),  # the built-in data set has its own columns
]


@pytest.mark.parametrize(("key", "value"), REFUSED, ids=[f"{k}={v}" for k, v in REFUSED])
def test_a_value_that_breaks_a_rule_is_refused_by_its_dotted_key(
    tmp_path: Path, key: str, value: str
) -> None:
    path = _write(tmp_path, _nested(key, value))
    assert _refusal(path).startswith(f"{path}: '{key}' = ")


FILES = "data:\n  source: files\n  reference: ref.parquet\n  holdout: holdout.parquet\n"


@pytest.mark.parametrize(
    ("columns", "key"),
    [
        ("  features: temperature_c\n  label: fault\n", "data.features"),
        ("  features: {a: 1}\n  label: fault\n", "data.features"),
        ("  features: [temperature_c, 3]\n  label: fault\n", "data.features[1]"),
        ("  features: []\n  label: fault\n", "data.features"),
        ("  features: [temperature_c]\n", "data.label"),
        ("  features: [temperature_c, fault]\n  label: fault\n", "data.label"),
        ("  features: [a, b]\n  label: y\n  id: a\n", "data.id"),
        ("  features: [a]\n  label: y\n  batch: batch.txt\n", "data.batch"),
    ],
)
def test_user_columns_that_break_a_rule_are_refused_by_key(
    tmp_path: Path, columns: str, key: str
) -> None:
    path = _write(tmp_path, FILES + columns)
    assert _refusal(path).startswith(f"{path}: '{key}' = ")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("pretrian:\n  max_epochs: 3\n", "pretrian"),
        ("finetune:\n  lerning_rate: 0.1\n", "finetune.lerning_rate"),
        ("synthetic:\n  drift:\n    inflation: 0.1\n", "synthetic.drift.inflation"),
    ],
)
def test_unknown_keys_are_refused_by_name(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    assert _refusal(path) == f"{path}: unknown key '{key}'"


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (
            "finetune:\n  learning_rate: 0.1\n  patience: 3\n  learning_rate: 0.2\n",
            "learning_rate",
            4,
        ),
        ("runtime:\n  seed: 1\nruntime:\n  seed: 2\n", "runtime", 3),
    ],
)
def test_a_duplicated_key_is_refused_with_its_line(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    # PyYAML alone would keep the last value silently.
    message = _refusal(_write(tmp_path, text))
    assert f"line {line}:" in message and f"'{key}'" in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("finetune:\n  learning_rate: 0.1\n patience: 3\n", 3),
        ("data:\n  features: [a, b\n", 3),
        ("runtime:\n\tseed: 1\n", 2),
    ],
)
def test_a_yaml_syntax_slip_is_refused_with_its_line(tmp_path: Path, text: str, line: int) -> None:
    assert f"line {line}:" in _refusal(_write(tmp_path, text))


def test_a_missing_file_is_refused_not_replaced_by_defaults(tmp_path: Path) -> None:
    path = tmp_path / "does_not_exist.yaml"
    assert "not found" in _refusal(path)


def test_a_top_level_that_is_not_sections_is_refused(tmp_path: Path) -> None:
    _refusal(_write(tmp_path, "- pretrain\n- finetune\n"))


def test_ints_are_floats_where_a_float_is_wanted(tmp_path: Path) -> None:
    params = load_params(_write(tmp_path, "pretrain:\n  learning_rate: 1\n  batch_size: 64\n"))
    assert params.pretrain.learning_rate == 1.0
    assert isinstance(params.pretrain.learning_rate, float)
    assert params.pretrain.batch_size == 64
    assert params.finetune == Params().finetune


def test_user_columns_parse_lists_into_tuples(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        FILES + "  features: [temperature_c, pressure_kpa]\n  label: fault\n  id: ''\n",
    )
    data = load_params(path).data
    assert data.features == ("temperature_c", "pressure_kpa")
    assert data.label == "fault" and not data.id and data.timestamp is None


def test_the_linear_half_can_be_turned_off(tmp_path: Path) -> None:
    path = _write(tmp_path, "finetune:\n  linear_c: null\n")
    assert load_params(path).finetune.linear_c is None
