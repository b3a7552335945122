"""`anomalyflow models | promote | rollback | score | shadow` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.registry.store import Registry
from tests.conftest import decision_record, make_blobs

runner = CliRunner()
BLOBS = "blobs-detector"


@pytest.fixture
def registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved_detectors: list[Path]
) -> Registry:
    """Two registered versions in ./.bentoml: the first failed its gate."""
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(
        "runtime: {progress: false}\nserving: {chunk_rows: 700}\n"
        f"registry: {{model_name: {BLOBS}}}\n"  # an explicit name: blobs are not the card data
    )
    registry = Registry(Path(".bentoml"), BLOBS)
    smoke = make_blobs(rows=16, seed=4)[0]
    registry.register(saved_detectors[0], decision_record(approved=False, auprc=0.1), smoke)
    registry.register(saved_detectors[1], decision_record(approved=True), smoke)
    return registry


def _batch(path: Path, rows: int = 2000) -> pd.DataFrame:
    x = make_blobs(rows=rows, seed=8)[0]
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)]).assign(event_id=np.arange(rows))
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return frame


def test_promote_refuses_a_failed_gate_records_a_forced_override_and_rolls_back(
    registry: Registry,
) -> None:
    failed, passed = sorted(registry.versions(), key=lambda v: v.gate_passed)

    refused = runner.invoke(app, ["promote", failed.version])
    assert refused.exit_code == 2
    assert "failed the gate (auprc_floor)" in refused.output
    assert "production is unchanged" in refused.output
    no_reason = runner.invoke(app, ["promote", failed.version, "--force"])
    assert no_reason.exit_code == 2 and "--force needs --reason" in no_reason.output

    forced = runner.invoke(app, ["promote", failed.version, "--force", "--reason", "incident 42"])
    assert forced.exit_code == 0, forced.output
    unknown = runner.invoke(app, ["promote", "no-such-version"])
    assert unknown.exit_code == 2 and registry.state().production == failed.version
    prefix = next(
        passed.version[:n] for n in range(1, 99) if failed.version[:n] != passed.version[:n]
    )
    promoted = runner.invoke(app, ["promote", prefix])  # a unique prefix names the version
    assert promoted.exit_code == 0, promoted.output
    assert registry.state().production == passed.version
    assert f"{passed.version} is production; {failed.version} archived" in promoted.output

    listed = json.loads(runner.invoke(app, ["models", "--json"]).output)
    stages = {v["version"]: v["stage"] for v in listed}
    assert stages == {failed.version: "archived", passed.version: "production"}
    assert {"gate", "metrics", "created", "data_version", "threshold"} <= set(listed[0])
    forced_by = {v["version"]: (v["promoted_by"], v["forced"]) for v in listed}
    assert forced_by[failed.version][1] is True and forced_by[passed.version][1] is False
    assert forced_by[passed.version][0]  # who promoted it
    table = runner.invoke(app, ["models"]).output
    assert "production" in table and "archived" in table and "0123456789ab" in table

    before = registry.audit_log.read_bytes()
    refused = runner.invoke(app, ["rollback", "--reason", "too many alerts"])  # to failed
    assert refused.exit_code == 2 and failed.version in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert registry.audit_log.read_bytes() == before
    rolled = runner.invoke(app, ["rollback", "--force", "--reason", "too many alerts"])
    assert rolled.exit_code == 0, rolled.output
    assert registry.state().production == failed.version
    history = registry.history()
    assert history[-1]["forced"] is True
    override = next(e for e in history if e["action"] == "promote" and e["forced"])
    assert override["reason"] == "incident 42" and override["version"] == failed.version
    assert history[-1]["action"] == "rollback" and history[-1]["reason"] == "too many alerts"
    trail = runner.invoke(app, ["history", "--json"])
    assert trail.exit_code == 0, trail.output
    shown = json.loads(trail.output)
    assert shown == history[::-1]  # every change, newest first, with who, when, why, forced
    assert [e["version"] for e in shown if e["action"] == "promote"] == [
        passed.version,  # the full version, though a prefix was typed
        failed.version,
    ]
    assert runner.invoke(app, ["history", "--verify"]).exit_code == 0
    with registry.audit_log.open("a") as log:
        log.write("42\n")  # a line nobody wrote through the registry
    assert runner.invoke(app, ["history", "--verify"]).exit_code == 2
    assert runner.invoke(app, ["models"]).exit_code == 2


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".pq"])  # .pq: as the loaders read
def test_score_writes_scores_in_chunks_matching_the_model(registry: Registry, suffix: str) -> None:
    version = registry.versions()[0].version
    frame = _batch(Path(f"batch{suffix}"))

    done = runner.invoke(
        app, ["score", "--input", f"batch{suffix}", "--output", f"out{suffix}", "--model", version]
    )
    assert done.exit_code == 0, done.output
    out = pd.read_csv(f"out{suffix}") if suffix == ".csv" else pd.read_parquet(f"out{suffix}")
    model = registry.load(version)
    expected = model.decision_function(frame[list(model.feature_names_)].to_numpy(np.float32))
    assert list(out.columns) == ["event_id", "score", "is_anomaly"]
    assert out.event_id.tolist() == list(range(2000))
    np.testing.assert_allclose(out.score, expected, rtol=1e-5)
    assert out.is_anomaly.tolist() == list(expected >= model.threshold_)


def test_score_refuses_bad_input_and_writes_nothing(registry: Registry) -> None:
    version = registry.versions()[0].version
    frame = _batch(Path("batch.parquet"))
    frame.loc[1500, "x3"] = np.nan  # in the third chunk: two chunks were already scored
    frame.to_parquet("batch.parquet")

    nan = runner.invoke(
        app, ["score", "--input", "batch.parquet", "--output", "out.parquet", "--model", version]
    )
    assert nan.exit_code == 2
    assert "batch.parquet: column 'x3'" in nan.output and "row 1500" in nan.output
    frame.drop(columns=["x4"]).to_parquet("batch.parquet")
    missing = runner.invoke(
        app, ["score", "--input", "batch.parquet", "--output", "out.parquet", "--model", version]
    )
    assert missing.exit_code == 2 and "column 'x4'" in missing.output
    no_production = runner.invoke(
        app, ["score", "--input", "batch.parquet", "--output", "out.parquet"]
    )
    assert no_production.exit_code == 2 and "no production model" in no_production.output
    assert not [p for p in Path(".").iterdir() if p.name.startswith(("out", ".out"))]


def _files() -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(Path(".").rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("batch.parquet", "batch.parquet"),  # the scores would replace the batch they score
        ("batch.parquet", "folder"),
        ("batch.parquet", ""),
        ("absent.parquet", "out.parquet"),
        ("text.parquet", "out.parquet"),
        ("empty.csv", "out.csv"),
        ("batch.parquet", "scores.txt"),  # was Parquet bytes under a .txt name
    ],
)
def test_score_refuses_paths_it_cannot_read_or_must_not_write(
    registry: Registry, source: str, target: str
) -> None:
    _batch(Path("batch.parquet"))
    Path("text.parquet").write_text("x0,x1\n1,2\n")
    Path("empty.csv").touch()
    Path("folder").mkdir()
    before = _files()

    done = runner.invoke(app, ["score", "--input", source, "--output", target, "--model", "latest"])

    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    assert _files() == before


def test_a_registered_version_whose_folder_is_gone_is_named_not_hidden(
    registry: Registry,
) -> None:
    """A deleted production folder vanished from `models` (exit 0, the archived versions
    listed) and `score --model` called it 'no registered version matches'."""
    import shutil

    production = registry.versions()[0].version
    assert runner.invoke(app, ["promote", production]).exit_code == 0
    shutil.rmtree(registry.models.root / production)
    _batch(Path("batch.parquet"))

    listed = runner.invoke(app, ["models"])
    scored = runner.invoke(
        app, ["score", "--input", "batch.parquet", "--output", "out.parquet", "--model", production]
    )

    assert listed.exit_code == 2 and production in listed.output
    assert scored.exit_code == 2 and "missing" in scored.output
    assert not Path("out.parquet").exists()


def test_threshold_refuses_to_change_a_version_in_the_model_store(registry: Registry) -> None:
    _batch(Path("batch.parquet"))
    stored = registry.versions()[0]
    before = _files()
    roles = ["--label-column", "", "--id-column", "event_id", "--timestamp-column", ""]

    refit = ["threshold", "--data", "batch.parquet", *roles, "--model"]
    refused = runner.invoke(app, [*refit, str(stored.detector_dir)])

    assert refused.exit_code == 2, refused.output
    assert _files() == before
    assert runner.invoke(app, ["history", "--verify"]).exit_code == 0


def test_shadow_reports_disagreements_between_production_and_a_candidate(
    registry: Registry,
) -> None:
    failed, passed = sorted(registry.versions(), key=lambda v: v.gate_passed)
    forced = runner.invoke(app, ["promote", failed.version, "--force", "--reason", "baseline"])
    assert forced.exit_code == 0, forced.output
    frame = _batch(Path("batch.parquet"))

    shadowed = runner.invoke(app, ["shadow", "--input", "batch.parquet"])
    assert shadowed.exit_code == 0, shadowed.output
    report = json.loads(Path("artifacts/shadow.json").read_text())
    assert report["production"] == failed.version and report["candidate"] == passed.version
    x = frame[[f"x{i}" for i in range(6)]].to_numpy(np.float32)
    production, candidate = registry.load(failed.version), registry.load(passed.version)
    p_flags = production.decision_function(x) >= production.threshold_
    c_flags = candidate.decision_function(x) >= candidate.threshold_
    assert report["flags"]["production_only"] == int((p_flags & ~c_flags).sum())
    assert report["flags"]["candidate_only"] == int((~p_flags & c_flags).sum())
    assert report["disagreement_rate"] == pytest.approx(float((p_flags != c_flags).mean()))
    assert f"disagreement {report['disagreement_rate']:.2%}" in shadowed.output

    before = _files()
    itself = runner.invoke(app, ["shadow", "--input", "batch.parquet", "--candidate", "production"])
    assert itself.exit_code == 2, itself.output  # was "0.00%", a report and a review page
    assert _files() == before
    frame.head(0).to_parquet("empty.parquet")  # no rows: nothing to agree or disagree on
    for source in ("empty.parquet", "absent.parquet"):
        refused = runner.invoke(app, ["shadow", "--input", source])
        assert refused.exit_code == 2, refused.output
    assert _files() == before | {"empty.parquet": Path("empty.parquet").read_bytes()}


def test_serving_beyond_loopback_needs_a_token(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BentoML binds 0.0.0.0 by default; our service has no other access control."""
    monkeypatch.delenv("ANOMALYFLOW_API_TOKEN", raising=False)
    version = registry.versions()[0].version
    refused = runner.invoke(app, ["serve", "--model", version, "--host", "0.0.0.0"])
    assert refused.exit_code == 2
    assert "ANOMALYFLOW_API_TOKEN" in refused.output
