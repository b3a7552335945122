"""The HTML page people open to review a run: one self-contained index per run.

Our own plots are inline PNGs, so the page works offline; the Evidently drift report
(assets inlined) and the GX Data Docs (readable offline, styled only online: GX loads
its CSS from a CDN) are linked as secondary pages, by relative paths.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomalyflow.atomic import write_text
from anomalyflow.evaluation.curves import curve_points


@dataclass(frozen=True)
class ReportInputs:
    """Everything the page shows; paths are linked relative to the page."""

    holdout_labels: np.ndarray
    holdout_scores: np.ndarray
    threshold: float
    evaluation: dict[str, Any]
    decision: dict[str, Any] | None
    drift_summary: dict[str, Any] | None
    drift_html: Path | None
    data_docs: Path | None
    shadow: dict[str, Any] | None = None  # the latest `anomalyflow shadow` comparison


def write_review_page(inputs: ReportInputs, page: Path) -> Path:
    """Render ``index.html`` at ``page`` (written atomically) and return its path."""
    page.parent.mkdir(parents=True, exist_ok=True)
    sections = [
        _decision_section(inputs.decision),
        _evaluation_section(inputs),
        _drift_section(inputs, page.parent),
        _shadow_section(inputs.shadow),
        _lineage_section(inputs.decision),
    ]
    body = "\n".join(s for s in sections if s)
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AnomalyFlow run report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
table {{ border-collapse: collapse; margin: .5rem 0 1rem; }}
td, th {{ border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
.pass {{ color: #11772d; font-weight: 600; }} .fail {{ color: #b00020; font-weight: 600; }}
img {{ max-width: 100%; }} code {{ background: #f5f5f5; padding: 0 .2rem; }}
</style></head><body>
<h1>AnomalyFlow run report</h1>
{body}
</body></html>
"""
    write_text(page, document)
    return page


def _decision_section(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return "<section id='decision'><h2>Decision</h2><p>No model was trained.</p></section>"
    verdict = "approved" if decision["approved"] else "rejected"
    rows = "".join(
        f"<tr><td>{html.escape(r['rule'])}</td><td>{_fmt(r['value'])}</td>"
        f"<td>{_fmt(r['threshold'])}</td><td class='{'pass' if r['passed'] else 'fail'}'>"
        f"{'pass' if r['passed'] else 'fail'}</td><td>{html.escape(r.get('note', ''))}</td></tr>"
        for r in decision["rules"]
    )
    candidate, production = decision["candidate_metrics"], decision.get("production_metrics")
    keys = (
        "auprc",
        "auroc",
        "precision",
        "recall",
        "f1",
        "precision_at_alert_budget",
        "recall_at_target_fpr",
    )
    comparison = "".join(
        f"<tr><td>{k}</td><td>{_fmt(candidate[k])}</td>"
        f"<td>{_fmt(production[k]) if production else 'none yet'}</td></tr>"
        for k in keys
    )
    return f"""<section id='decision'><h2>Decision: <span class='{
        "pass" if decision["approved"] else "fail"
    }'>{verdict}</span></h2>
<table><tr><th>rule</th><th>value</th><th>threshold</th><th>verdict</th><th>note</th></tr>
{rows}</table>
<h3>Candidate beside production (same frozen holdout)</h3>
<table><tr><th>metric</th><th>candidate</th><th>production</th></tr>{comparison}</table>
</section>"""


def _evaluation_section(inputs: ReportInputs) -> str:
    evaluation = inputs.evaluation
    matrix = evaluation["confusion_matrix"]
    return f"""<section id='evaluation'><h2>Evaluation on the holdout</h2>
<p>{evaluation["rows"]} rows, {evaluation["positives"]} anomalies; threshold
<code>{inputs.threshold:.4f}</code>; AUPRC {evaluation["auprc"]:.4f}
(95% interval {evaluation["auprc_ci_low"]:.4f} to {evaluation["auprc_ci_high"]:.4f}),
AUROC {evaluation["auroc"]:.4f}.</p>
<table><tr><th></th><th>flagged</th><th>not flagged</th></tr>
<tr><td>anomaly</td><td>{matrix["tp"]}</td><td>{matrix["fn"]}</td></tr>
<tr><td>normal</td><td>{matrix["fp"]}</td><td>{matrix["tn"]}</td></tr></table>
<img alt="precision-recall and ROC curves" src="{_curves_png(inputs)}">
<img alt="score histograms for normals and anomalies" src="{_histogram_png(inputs)}">
</section>"""


def _drift_section(inputs: ReportInputs, folder: Path) -> str:
    links = []
    if inputs.drift_html is not None and inputs.drift_html.exists():
        links.append(
            f"<li><a href='{_relative(inputs.drift_html, folder)}'>Evidently drift "
            "report</a> (opens offline)</li>"
        )
    if inputs.data_docs is not None and inputs.data_docs.exists():
        links.append(
            f"<li><a href='{_relative(inputs.data_docs, folder)}'>Great Expectations "
            "Data Docs</a> (readable offline; styling loads from a CDN)</li>"
        )
    summary = ""
    if inputs.drift_summary is not None:
        drifted = ", ".join(inputs.drift_summary["drifted_columns"]) or "none"
        summary = (
            f"<p>Drift detected: <b>{inputs.drift_summary['drift_detected']}</b>; "
            f"{inputs.drift_summary['share_drifted']:.0%} of features drifted "
            f"({html.escape(drifted)}).</p>"
        )
    return f"<section id='data'><h2>Data and drift</h2>{summary}<ul>{''.join(links)}</ul></section>"


def _shadow_section(shadow: dict[str, Any] | None) -> str:
    if shadow is None:
        return ""
    flags = shadow["flags"]
    rows = "".join(
        f"<tr><td>{e['row']}</td><td>{e['production_score']:.4g}</td>"
        f"<td>{e['candidate_score']:.4g}</td><td>{html.escape(e['flagged_by'])}</td></tr>"
        for e in shadow["examples"]
    )
    return (
        "<section id='shadow'><h2>Shadow comparison</h2>"
        f"<p>Production <code>{html.escape(shadow['production'])}</code> and candidate "
        f"<code>{html.escape(shadow['candidate'])}</code> on {shadow['rows']} rows of "
        f"<code>{html.escape(shadow['input'])}</code>: both flag {flags['both']}, only "
        f"production {flags['production_only']}, only the candidate "
        f"{flags['candidate_only']} (disagreement {shadow['disagreement_rate']:.2%}).</p>"
        "<table><tr><th>row</th><th>production score</th><th>candidate score</th>"
        f"<th>flagged by</th></tr>{rows}</table></section>"
    )


def _lineage_section(decision: dict[str, Any] | None) -> str:
    if decision is None:
        return ""
    lineage = dict(decision.get("lineage", {}))
    lineage |= {
        "git_commit": decision.get("git_commit"),
        "prefect_run_id": decision.get("prefect_run_id"),
    }
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td><code>{html.escape(str(v))}</code></td></tr>"
        for k, v in lineage.items()
    )
    record = html.escape(
        json.dumps({k: v for k, v in decision.items() if k != "params"}, indent=2, default=str)
    )
    return (
        f"<section id='lineage'><h2>Lineage</h2><table>{rows}</table>"
        f"<details><summary>Decision record</summary><pre>{record}</pre></details></section>"
    )


def _curves_png(inputs: ReportInputs) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curve_points(inputs.holdout_labels, inputs.holdout_scores)
    figure, (pr, roc) = plt.subplots(1, 2, figsize=(9, 3.6))
    pr.plot([p["recall"] for p in points["pr"]], [p["precision"] for p in points["pr"]])
    pr.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    roc.plot([p["fpr"] for p in points["roc"]], [p["tpr"] for p in points["roc"]])
    roc.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
    return _png(figure)


def _histogram_png(inputs: ReportInputs) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 3.2))
    scores, labels = inputs.holdout_scores, inputs.holdout_labels
    bins = np.linspace(scores.min(), scores.max(), 60).tolist()
    axis.hist(scores[labels == 0], bins=bins, alpha=0.6, density=True, label="normal")
    axis.hist(scores[labels == 1], bins=bins, alpha=0.6, density=True, label="anomaly")
    axis.axvline(inputs.threshold, color="black", linestyle="--", label="threshold")
    axis.set(xlabel="anomaly score", ylabel="density", title="Scores on the holdout")
    axis.legend()
    return _png(figure)


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _relative(target: Path, folder: Path) -> str:
    return Path(os.path.relpath(target.resolve(), folder.resolve())).as_posix()


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))
