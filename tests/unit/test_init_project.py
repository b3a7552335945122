"""``anomalyflow init``: one CSV becomes reference, batch and holdout, and params.yaml's
data section points at them; bad input ends in exit 2 with nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.params import load_params

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _sensors(rows: int = 500, seed: int = 0) -> pd.DataFrame:
    """Readings in shuffled order: two numeric features, a text column, 7% faults."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "reading_id": np.arange(rows),
            "measured_at": pd.date_range("2024-01-01", periods=rows, freq="h").strftime(
                "%Y-%m-%d %H:%M"
            ),
            "temperature_c": rng.normal(20, 2, rows),
            "pressure_kpa": rng.normal(100, 5, rows),
            "site": rng.choice(["north", "south"], rows),
            "fault": (rng.random(rows) < 0.07).astype(int),
        }
    )
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the repository's params.yaml, as a new user has it."""
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _outside_data_section(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("data:")))
    end = next(i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " "))
    return lines[:start] + lines[end:]


def test_init_with_a_timestamp_splits_by_time_and_keeps_every_other_comment(
    project: Path,
) -> None:
    _sensors().to_csv("sensors.csv", index=False)
    before = (project / "params.yaml").read_text()
    args = ["init", "--data", "sensors.csv", "--label", "fault"]
    result = runner.invoke(app, [*args, "--id", "reading_id", "--timestamp", "measured_at"])
    assert result.exit_code == 0, result.output
    assert "anomalyflow run" in result.output.splitlines()[-1]

    after = (project / "params.yaml").read_text()
    assert _outside_data_section(after) == _outside_data_section(before)
    data = load_params(project / "params.yaml").data
    assert data.source == "files" and data.features == ("temperature_c", "pressure_kpa")
    assert (data.label, data.id, data.timestamp) == ("fault", "reading_id", "measured_at")
    parts = {k: pd.read_parquet(getattr(data, k)) for k in ("reference", "batch", "holdout")}
    assert "fault" not in parts["reference"].columns  # the history is unlabeled
    assert [len(p) for p in parts.values()] == [300, 100, 100]
    times = {k: p["measured_at"] for k, p in parts.items()}
    assert times["reference"].max() < times["batch"].min()
    assert times["batch"].max() < times["holdout"].min()


def test_init_without_a_timestamp_splits_at_random_keeping_the_anomaly_share(
    project: Path,
) -> None:
    frame = _sensors().drop(columns=["measured_at", "reading_id"])
    frame.to_csv("plain.csv", index=False)
    result = runner.invoke(app, ["init", "--data", "plain.csv", "--label", "fault"])
    assert result.exit_code == 0, result.output
    assert "random" in result.output

    data = load_params(project / "params.yaml").data
    assert data.timestamp is None and data.features == ("temperature_c", "pressure_kpa")
    share = frame["fault"].mean()
    for part in (data.batch, data.holdout):
        assert pd.read_parquet(part)["fault"].mean() == pytest.approx(share, abs=0.02)
    rows = sum(len(pd.read_parquet(p)) for p in (data.reference, data.batch, data.holdout))
    assert rows == len(frame)


def _nan_feature(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(pressure_kpa=frame["pressure_kpa"].where(frame.index != 9))


@pytest.mark.parametrize(
    ("damage", "extra"),
    [
        (_nan_feature, []),  # NaN in a feature, as every command refuses it
        (lambda f: f.assign(fault=f["fault"] * 2), []),  # labels must be 0 or 1
        (lambda f: f, ["--timestamp", "when"]),  # no such column
        (lambda f: f.assign(fault=0), []),  # no anomaly for the batch and the holdout
        (lambda f: f.assign(measured_at="soon"), ["--timestamp", "measured_at"]),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    project: Path, damage: object, extra: list[str]
) -> None:
    damage(_sensors()).to_csv("sensors.csv", index=False)  # type: ignore[operator]
    before = (project / "params.yaml").read_text()
    result = runner.invoke(app, ["init", "--data", "sensors.csv", "--label", "fault", *extra])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "sensors.csv" in result.output
    assert (project / "params.yaml").read_text() == before
    assert not (project / "data").exists()


def test_a_data_section_of_ones_own_is_replaced_only_with_force(project: Path) -> None:
    _sensors().to_csv("sensors.csv", index=False)
    args = ["init", "--data", "sensors.csv", "--label", "fault", "--timestamp", "measured_at"]
    assert runner.invoke(app, args).exit_code == 0
    configured = (project / "params.yaml").read_text()

    again = runner.invoke(app, [*args, "--id", "reading_id"])
    assert again.exit_code == 2
    assert (project / "params.yaml").read_text() == configured

    forced = runner.invoke(app, [*args, "--id", "reading_id", "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_params(project / "params.yaml").data.id == "reading_id"
