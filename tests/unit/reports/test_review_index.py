"""The review page's sections: both versions, metrics with differences, params changed,
data versions, the override command; nothing on it loads from the network."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest

from anomalyflow.reports.index import ReportInputs, write_review_page
from anomalyflow.reports.plots import ScoredModel

METRICS = {
    "auprc": 0.60,
    "auroc": 0.90,
    "precision": 0.5,
    "recall": 0.4,
    "f1": 0.44,
    "precision_at_alert_budget": 0.5,
    "recall_at_target_fpr": 0.3,
}
COMMAND = 'anomalyflow promote v2 --force --reason "..."'


class _Page(HTMLParser):
    """Text by section id, and every URL the page names in an attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.urls: list[str] = []
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section":
            self._section = found.get("id")
            self.sections[self._section or ""] = ""
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data: str) -> None:
        if self._section is not None:
            self.sections[self._section] += data


def _decision(approved: bool, params: dict[str, Any], lineage: dict[str, str]) -> dict[str, Any]:
    rule = {"rule": "auprc_floor", "value": 0.6, "threshold": 0.2, "passed": approved}
    return {
        "approved": approved,
        "rules": [rule],
        "candidate_metrics": METRICS,
        "lineage": lineage,
        "params": params,
        "git_commit": "abc123",
        "prefect_run_id": "run-2",
    }


def _inputs(approved: bool = False) -> ReportInputs:
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.1).astype(int)
    scores = rng.normal(size=400) + 2 * labels
    evaluation = METRICS | {
        "rows": 400,
        "positives": int(labels.sum()),
        "auprc_ci_low": 0.5,
        "auprc_ci_high": 0.7,
        "confusion_matrix": {"tn": 300, "fp": 60, "fn": 10, "tp": 30},
    }
    production_metrics = {k: v - 0.1 for k, v in METRICS.items()}
    return ReportInputs(
        holdout_labels=labels,
        candidate=ScoredModel("candidate v2", scores, 1.0),
        candidate_version="v2",
        evaluation=evaluation,
        decision=_decision(
            approved,
            {"finetune": {"max_epochs": 8}, "gate": {"confidence_level": 0.95}},
            {"batch_md5": "batch-new", "reference_md5": "ref-r1"},
        ),
        production=ScoredModel("production v1", scores * 0.5, 0.4),
        production_version="v1",
        production_decision=_decision(
            True,
            {"finetune": {"max_epochs": 5}, "gate": {"confidence_level": 0.95}},
            {"batch_md5": "batch-old", "reference_md5": "ref-r1"},
        ),
        comparison={
            "production": production_metrics,
            "comparison": {"difference": 0.1, "low": 0.03, "high": 0.17},
        },
        promote_command=COMMAND,
    )


def _render(inputs: ReportInputs, tmp_path: Path) -> tuple[_Page, str]:
    page = write_review_page(inputs, tmp_path / "run" / "index.html")
    text = page.read_text()
    parsed = _Page()
    parsed.feed(text)
    return parsed, text


def test_page_names_both_versions(tmp_path: Path) -> None:
    page, _ = _render(_inputs(), tmp_path)

    assert "v2" in page.sections["versions"] and "v1" in page.sections["versions"]


def test_first_model_says_there_is_no_production_yet(tmp_path: Path) -> None:
    first = replace(
        _inputs(approved=True),
        production=None,
        production_version=None,
        production_decision=None,
        comparison={"production": None, "comparison": None},
    )
    page, _ = _render(first, tmp_path)

    assert "none yet" in page.sections["versions"]
    assert "none yet" in page.sections["metrics"]
    assert "No production run" in page.sections["changes"]


def test_metrics_table_has_differences_and_the_paired_interval(tmp_path: Path) -> None:
    page, _ = _render(_inputs(), tmp_path)

    metrics = page.sections["metrics"]
    assert "difference" in metrics and "+0.1000" in metrics  # candidate minus production
    assert "[+0.0300, +0.1700]" in metrics  # from comparison.json
    assert "95%" in metrics


def test_params_changed_since_production_are_dotted_old_to_new(tmp_path: Path) -> None:
    page, _ = _render(_inputs(), tmp_path)

    changes = page.sections["changes"]
    assert "finetune.max_epochs" in changes and "5 → 8" in changes
    assert "confidence_level" not in changes  # unchanged params are not listed


def test_data_versions_of_both_runs_side_by_side(tmp_path: Path) -> None:
    page, _ = _render(_inputs(), tmp_path)

    lineage = page.sections["lineage"]
    assert "batch-new" in lineage and "batch-old" in lineage and "changed" in lineage
    assert "ref-r1" in lineage and "same" in lineage


@pytest.mark.parametrize("approved", [False, True])
def test_override_command_is_shown_exactly_when_the_gate_rejected(
    approved: bool, tmp_path: Path
) -> None:
    page, _ = _render(_inputs(approved=approved), tmp_path)

    assert (COMMAND in page.sections["decision"]) is not approved


def test_both_models_are_plotted_and_nothing_is_fetched(tmp_path: Path) -> None:
    inputs = _inputs()
    page, text = _render(inputs, tmp_path)
    alone, _ = _render(replace(inputs, production=None), tmp_path / "alone")

    images = [u for u in page.urls if u.startswith("data:image/png;base64,")]
    assert len(images) == 2  # curves and histograms, inline
    assert images != [u for u in alone.urls if u.startswith("data:")]  # production drawn too
    assert not [u for u in page.urls if urlparse(u).netloc]  # no remote src or href
    assert "@import" not in text and "url(" not in text


def test_the_latest_replay_shows_each_policy_and_its_plot_inline(tmp_path: Path) -> None:
    day = {"auprc": 0.4, "precision_at_alert_budget": 0.3, "trained": True, "promoted": False}
    policy = {
        "retrains": 2,
        "promotions": 1,
        "auprc_after_drift": 0.35,
        "precision_at_alert_budget_after_drift": 0.25,
        "days": [day | {"day": d, "reason": ""} for d in range(4)],
    }
    replay = {
        "drift_day": 2,
        "label_delay": 3,
        "policies": {name: policy for name in ("never", "daily", "policy")},
    }
    without, _ = _render(_inputs(), tmp_path / "without")
    page, _ = _render(replace(_inputs(), replay=replay), tmp_path)

    assert "replay" not in without.sections
    assert all(name in page.sections["replay"] for name in ("never", "daily", "policy"))
    images = [u for u in page.urls if u.startswith("data:image/png;base64,")]
    assert len(images) == 3  # curves, histograms and the replay's days
