"""The retraining flow's skip rules: cheap runs when nothing changed, reuse of the backbone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from anomalyflow.params import load_params
from anomalyflow.pipeline.production import project_registry
from anomalyflow.pipeline.stages import STAGES
from tests.integration.test_main_job import SMALL, register_a_refit_copy

runner = CliRunner()


def _task_names(flow_run_id: str) -> list[str]:
    """The flow run's tasks as Prefect recorded them, in the order they started."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])),
            sort=TaskRunSort.EXPECTED_START_TIME_ASC,
        )
    return [run.name.rsplit("-", 1)[0] for run in runs]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def test_unchanged_rerun_skips_and_changed_finetune_params_reuse_the_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL)
    first = runner.invoke(app, ["run"])
    assert first.exit_code == 0, first.output
    backbone = _md5(Path("artifacts/backbone/weights.safetensors"))
    decision = json.loads(Path("artifacts/decision.json").read_text())
    assert decision["lineage"]["reference_md5"] == _md5(Path("data/history.parquet"))
    assert decision["prefect_run_id"]
    dvc_stages = [s.name for s in STAGES if s.name != "data"]  # data: before the flow
    assert _task_names(decision["prefect_run_id"])[: len(dvc_stages)] == dvc_stages
    assert [r["rule"] for r in decision["rules"]] == [
        "auprc_floor",
        "precision_at_alert_budget_floor",
        "not_worse_than_production",
    ]

    again = runner.invoke(app, ["run"])
    assert again.exit_code == 0, again.output
    assert "Decision: skipped (nothing changed since the last run" in again.output
    forced = runner.invoke(app, ["run", "--force"])  # retrains, as users read the flag
    assert forced.exit_code == 0, forced.output
    assert "pretrain (reused)" in forced.output.split("Time per step:")[1].split("\n")[0]
    # The same rows and seeds give the same weights: not registered again under a new name.
    assert "Decision: unchanged" in forced.output
    assert len(project_registry(load_params()).versions()) == 1

    Path("params.yaml").write_text(SMALL + "gate: {min_auprc: 0.99}\n")
    judged = runner.invoke(app, ["run"])  # a gate-only change: judged again, no training
    assert judged.exit_code == 0, judged.output
    registry = project_registry(load_params())
    assert len(registry.versions()) == 1
    assert registry.history()[-1]["action"] == "rejudge"  # failed now, still production
    assert "auprc_floor" in registry.history()[-1]["reason"]  # what failed, for `promote`
    assert registry.state().production == registry.versions()[0].version
    assert json.loads(Path("artifacts/decision.json").read_text())["approved"] is False
    Path("params.yaml").write_text(SMALL)
    again = runner.invoke(app, ["run"])  # back as it was: judged again, passes
    assert again.exit_code == 0, again.output
    assert [e["gate"] for e in registry.history() if e["action"] == "rejudge"] == [
        "failed",
        "passed",
    ]

    first_production = project_registry(load_params()).state().production
    warm = SMALL.replace(
        "max_epochs: 5", "max_epochs: 5, learning_rate: 0.002, warm_start: production"
    )
    Path("params.yaml").write_text(warm)
    changed = runner.invoke(app, ["run"])
    assert changed.exit_code == 0, changed.output
    assert "params changed" in changed.output
    assert "pretrain (reused)" in changed.output
    candidate = json.loads(Path("artifacts/candidate/detector.json").read_text())
    assert candidate["lineage"]["warm_started_from"] == first_production
    assert _md5(Path("artifacts/backbone/weights.safetensors")) == backbone
    registry = project_registry(load_params())
    versions = registry.versions()
    if "Decision: unchanged" in changed.output:  # early stopping kept production's weights
        assert f"equal version {first_production}'s" in changed.output and len(versions) == 1
    else:
        assert len(versions) == 2
    assert all((v.path / "decision.json").exists() for v in versions)
    assert all((v.detector_dir / "detector.json").exists() for v in versions)
    assert sum(v.stage == "production" for v in versions) == 1


FOLDERS = ("window", "pending")


def test_incoming_batches_end_processed_or_quarantined_never_both(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    webhook: tuple[str, list[dict[str, object]]],
) -> None:
    import pandas as pd

    from anomalyflow.data import synthetic
    from anomalyflow.params import load_params

    monkeypatch.chdir(tmp_path)
    url, events = webhook
    Path("params.yaml").write_text(SMALL + f"notify: {{webhook_url: '{url}'}}\n")
    data = synthetic.generate(load_params("params.yaml").synthetic)
    incoming = Path("data/incoming")
    incoming.mkdir(parents=True)
    data.recent.to_parquet(incoming / "2026-11-01.parquet")
    broken = data.recent.assign(is_fraud=data.recent.is_fraud.where(data.recent.index != 0, 7))
    broken.to_parquet(incoming / "2026-11-02.parquet")
    pd.DataFrame({"amount": []}).to_csv(incoming / "2026-11-03.csv", index=False)
    # A third of the features drifted, half a day after the first batch trained: the drift
    # is below drift.override_share, so the cooldown holds, but nothing of it is lost.
    drifted = data.recent.assign(
        transaction_id=data.recent.transaction_id + 10**6,
        amount=data.recent.amount * 4,
        distance_from_home_km=data.recent.distance_from_home_km * 6,
        minutes_since_last_txn=data.recent.minutes_since_last_txn * 5,
        hour=(data.recent.hour + 8) % 24,
    )
    drifted.to_parquet(incoming / "2026-11-04.parquet")

    once = runner.invoke(app, ["schedule", "--once"])  # as one scheduled run, then exit
    assert once.exit_code == 0, once.output

    lines = [line for line in once.output.splitlines() if line.startswith("2026-11-0")]
    outcomes = dict(line.split(": ", 1) for line in lines)
    assert outcomes["2026-11-01.parquet"] == "promoted"
    assert outcomes["2026-11-02.parquet"] == "quarantined"
    assert outcomes["2026-11-03.csv"] == "quarantined"
    assert outcomes["2026-11-04.parquet"] == "skipped"  # in the cooldown
    # The accepted batches, nothing else: the first trained on, the drifted one waiting
    # for the next training.
    trained, pending = (sorted(Path(f"data/{f}").glob("batch-*.parquet")) for f in FOLDERS)
    assert [len(pd.read_parquet(w)) for w in [*trained, *pending]] == [
        len(data.recent),
        len(drifted),
    ]
    assert len(pending) == 1
    drift_events = [e for e in events if e["event"] == "drift"]
    assert [Path(str(e["batch"])).name for e in drift_events] == ["2026-11-04.parquet"]
    assert not list(incoming.iterdir())
    processed = sorted(p.name for p in Path("data/processed").iterdir())
    assert processed == ["2026-11-01.parquet", "2026-11-04.parquet"]
    quarantined = {p.name for p in Path("data/quarantine").rglob("2026-11-0*") if p.is_file()}
    assert quarantined == {"2026-11-02.parquet", "2026-11-03.csv"}


def test_a_candidate_the_gate_rejected_is_promoted_once_the_rules_relax_without_retraining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL + "gate: {min_auprc: 0.99}\n")
    strict = runner.invoke(app, ["run"])
    assert strict.exit_code == 0, strict.output
    registry = project_registry(load_params())
    (candidate,) = registry.versions()
    assert registry.state().production is None and not candidate.gate_passed
    weights = _md5(Path("artifacts/candidate/weights.safetensors"))

    Path("params.yaml").write_text(SMALL)  # the bar back where it belongs
    relaxed = runner.invoke(app, ["run"])

    assert relaxed.exit_code == 0, relaxed.output
    assert [v.version for v in registry.versions()] == [candidate.version]  # nothing new
    assert registry.state().production == candidate.version
    assert _md5(Path("artifacts/candidate/weights.safetensors")) == weights  # not retrained
    assert [e["action"] for e in registry.history()][-2:] == ["rejudge", "promote"]


def test_a_rule_change_never_brings_back_a_version_a_person_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saved candidate's version, judged again after a gate-only change, was promoted
    over the production a person had rolled back to."""
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL)
    first = runner.invoke(app, ["run"])
    assert first.exit_code == 0, first.output
    registry = project_registry(load_params())
    chosen = registry.state().production
    rolled_back = register_a_refit_copy(chosen)  # the candidate's weights: its version now
    assert runner.invoke(app, ["promote", rolled_back]).exit_code == 0
    assert runner.invoke(app, ["rollback", "--reason", "misbehaves"]).exit_code == 0

    Path("params.yaml").write_text(SMALL + "gate: {min_auprc: 0.05}\n")  # the gate alone
    judged = runner.invoke(app, ["run"])

    assert judged.exit_code == 0, judged.output
    assert registry.state().production == chosen
    assert registry.history()[-1]["action"] == "rejudge"


def test_a_run_killed_between_gate_and_registration_is_finished_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next run said 'skipped (nothing changed)', and the approved candidate was
    never registered nor promoted."""
    from anomalyflow.registry.store import Registry

    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL)

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # the fault: the process dies before its register line

    with monkeypatch.context() as fault:
        fault.setattr(Registry, "register", killed)
        runner.invoke(app, ["run"])
    assert json.loads(Path("artifacts/decision.json").read_text())["approved"]

    again = runner.invoke(app, ["run"])

    assert again.exit_code == 0, again.output
    registry = project_registry(load_params())
    assert [v.stage for v in registry.versions()] == ["production"], again.output
