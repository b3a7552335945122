"""The HTML page people open to review a run: candidate beside production, on one page.

Every page a run writes renders whole offline: our plots are inline PNGs, the style is
inline, the Evidently drift report inlines its assets, and the validation result is our
own page (GX Data Docs load CDN scripts and a remote logo, so they are not linked).
Secondary pages are linked by relative paths, inside the run's own report folder.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomalyflow.atomic import write_text
from anomalyflow.reports.changes import data_versions, params_changes
from anomalyflow.reports.layout import document, fmt, relative, verdict
from anomalyflow.reports.plots import ScoredModel, curves_png, histograms_png, replay_png

METRICS = (
    "auprc",
    "auroc",
    "precision",
    "recall",
    "f1",
    "precision_at_alert_budget",
    "recall_at_target_fpr",
)
NONE_YET = "none yet"


@dataclass(frozen=True)
class ReportInputs:
    """Everything the page shows; paths are linked relative to the page."""

    holdout_labels: np.ndarray  # (rows,) 0/1 labels of the frozen holdout
    candidate: ScoredModel
    candidate_version: str | None  # None: not registered
    evaluation: dict[str, Any]  # evaluation.json: the candidate on the holdout
    decision: dict[str, Any] | None  # decision.json of this run
    production: ScoredModel | None = None  # the production the candidate was compared with
    production_version: str | None = None
    production_decision: dict[str, Any] | None = None  # the record production was decided by
    comparison: dict[str, Any] | None = None  # comparison.json: production and paired bootstrap
    promote_command: str | None = None  # the override, shown when the gate rejected
    drift_summary: dict[str, Any] | None = None
    drift_html: Path | None = None
    validation: dict[str, Any] | None = None  # validation.json
    validation_page: Path | None = None
    shadow: dict[str, Any] | None = None  # the latest `anomalyflow shadow` comparison
    replay: dict[str, Any] | None = None  # the latest `anomalyflow replay` figures


def write_review_page(inputs: ReportInputs, page: Path) -> Path:
    """Render ``index.html`` at ``page`` (written atomically) and return its path."""
    sections = [
        _versions_section(inputs),
        _decision_section(inputs.decision, inputs.promote_command),
        _metrics_section(inputs),
        _evaluation_section(inputs),
        _changes_section(inputs),
        _data_section(inputs, page.parent),
        _shadow_section(inputs.shadow),
        _replay_section(inputs.replay),
        _lineage_section(inputs),
    ]
    write_text(page, document("AnomalyFlow run report", "\n".join(s for s in sections if s)))
    return page


def _versions_section(inputs: ReportInputs) -> str:
    candidate = inputs.candidate_version or "not registered"
    production = inputs.production_version or NONE_YET
    return (
        "<section id='versions'><table>"
        f"<tr><th>candidate</th><td class='text'><code>{html.escape(candidate)}</code></td></tr>"
        f"<tr><th>production</th><td class='text'><code>{html.escape(production)}</code>"
        "</td></tr></table></section>"
    )


def _decision_section(decision: dict[str, Any] | None, promote_command: str | None) -> str:
    if decision is None:
        return "<section id='decision'><h2>Decision</h2><p>No model was trained.</p></section>"
    approved = bool(decision["approved"])
    rows = "".join(
        f"<tr><td>{html.escape(r['rule'])}</td><td>{fmt(r['value'])}</td>"
        f"<td>{fmt(r['threshold'])}</td>{verdict(r['passed'])}"
        f"<td class='text'>{html.escape(r.get('note', ''))}</td></tr>"
        for r in decision["rules"]
    )
    override = ""
    if not approved and promote_command:
        override = (
            "<p>The gate rejected the candidate. To promote it anyway, with the reason "
            "recorded in the audit log:</p>"
            f"<pre class='command' id='override'>{html.escape(promote_command)}</pre>"
        )
    return f"""<section id='decision'><h2>Decision: <span class='{"pass" if approved else "fail"}'>{
        "approved" if approved else "rejected"
    }</span></h2>
<table><tr><th>rule</th><th>value</th><th>threshold</th><th>verdict</th><th>note</th></tr>
{rows}</table>{override}</section>"""


def _metrics_section(inputs: ReportInputs) -> str:
    candidate = inputs.evaluation
    comparison = inputs.comparison or {}
    production = comparison.get("production")
    paired = comparison.get("comparison")
    rows = []
    for key in METRICS:
        theirs = production.get(key) if production else None
        difference = candidate[key] - theirs if theirs is not None else None
        interval = ""
        if key == "auprc" and paired:
            interval = f"[{paired['low']:+.4f}, {paired['high']:+.4f}]"
        rows.append(
            f"<tr><td>{key}</td><td>{fmt(candidate[key])}</td>"
            f"<td>{fmt(theirs) if production else NONE_YET}</td>"
            f"<td>{'n/a' if difference is None else f'{difference:+.4f}'}</td>"
            f"<td>{interval}</td></tr>"
        )
    return (
        "<section id='metrics'><h2>Candidate beside production (same frozen holdout)</h2>"
        "<table><tr><th>metric</th><th>candidate</th><th>production</th>"
        "<th>difference</th><th>paired bootstrap interval</th></tr>"
        f"{''.join(rows)}</table><p>Difference: candidate minus production. The interval is "
        f"the {_confidence(inputs.decision)}paired bootstrap interval of the AUPRC "
        "difference (both models scored on the same resampled rows) the gate judged.</p>"
        "</section>"
    )


def _confidence(decision: dict[str, Any] | None) -> str:
    level = ((decision or {}).get("params") or {}).get("gate", {}).get("confidence_level")
    return f"{level:.0%} " if isinstance(level, float) else ""


def _evaluation_section(inputs: ReportInputs) -> str:
    evaluation = inputs.evaluation
    matrix = evaluation["confusion_matrix"]
    models = [inputs.candidate] + ([inputs.production] if inputs.production else [])
    labels = inputs.holdout_labels
    return f"""<section id='evaluation'><h2>Evaluation on the holdout</h2>
<p>{evaluation["rows"]} rows, {evaluation["positives"]} anomalies; candidate threshold
<code>{inputs.candidate.threshold:.4f}</code>; AUPRC {evaluation["auprc"]:.4f}
(95% interval {evaluation["auprc_ci_low"]:.4f} to {evaluation["auprc_ci_high"]:.4f}),
AUROC {evaluation["auroc"]:.4f}.</p>
<table><tr><th>candidate</th><th>flagged</th><th>not flagged</th></tr>
<tr><td>anomaly</td><td>{matrix["tp"]}</td><td>{matrix["fn"]}</td></tr>
<tr><td>normal</td><td>{matrix["fp"]}</td><td>{matrix["tn"]}</td></tr></table>
{_threshold_note(inputs.decision)}
<img alt="precision-recall and ROC curves" src="{curves_png(labels, models)}">
<img alt="score histograms for normals and anomalies" src="{histograms_png(labels, models)}">
</section>"""


def _threshold_note(decision: dict[str, Any] | None) -> str:
    """What the threshold rule implies (alerts, recall ceiling), warned when it caps recall."""
    implication = (decision or {}).get("threshold_implication")
    if not implication:
        return ""
    kind = "fail" if implication.get("caps_recall") else ""
    said = " ".join(html.escape(line) for line in implication["lines"])
    return f"<p id='threshold' class='{kind}'>Threshold: {said}</p>"


def _changes_section(inputs: ReportInputs) -> str:
    head = "<section id='changes'><h2>Params changed since production's run</h2>"
    if inputs.decision is None or inputs.production_decision is None:
        return head + "<p>No production run to compare with.</p></section>"
    changes = params_changes(
        inputs.production_decision.get("params") or {}, inputs.decision.get("params") or {}
    )
    if not changes:
        return head + "<p>None: both runs used the same params.</p></section>"
    rows = "".join(
        f"<tr><td><code>{html.escape(c.key)}</code></td><td class='text'>"
        f"{html.escape(c.old)} → {html.escape(c.new)}</td></tr>"
        for c in changes
    )
    return head + f"<table><tr><th>param</th><th>production → candidate</th></tr>{rows}</table>"


def _data_section(inputs: ReportInputs, folder: Path) -> str:
    links = []
    if inputs.validation_page is not None:
        checked = inputs.validation or {}
        links.append(
            f"<li><a href='{relative(inputs.validation_page, folder)}'>Data validation</a>: "
            f"{'passed' if checked.get('success') else 'failed'}, "
            f"{checked.get('evaluated', '?')} expectations</li>"
        )
    if inputs.drift_html is not None:
        links.append(
            f"<li><a href='{relative(inputs.drift_html, folder)}'>Evidently drift report</a></li>"
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
        f"<tr><td>{html.escape(str(e['row'] if e.get('id') is None else e['id']))}</td>"
        f"<td>{e['production_score']:.4g}</td>"
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
        f"{_shadow_on_labels(shadow.get('on_labels'))}"
        "<table><tr><th>row (or id)</th><th>production score</th><th>candidate score</th>"
        f"<th>flagged by</th></tr>{rows}</table></section>"
    )


def _replay_section(replay: dict[str, Any] | None) -> str:
    """How the retraining policy fared on the latest replay of a drifting stream."""
    if replay is None:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{f['retrains']}</td><td>{f['promotions']}</td>"
        f"<td>{_figure(f['auprc_after_drift'])}</td>"
        f"<td>{_figure(f['precision_at_alert_budget_after_drift'])}</td></tr>"
        for name, f in replay["policies"].items()
    )
    return (
        "<section id='replay'><h2>Retraining policy on a replayed stream</h2>"
        f"<p>The latest <code>anomalyflow replay</code>: drift from day {replay['drift_day']}, "
        f"labels {replay['label_delay']} days late. After the drift (means of the days):</p>"
        "<table><tr><th>policy</th><th>retrains</th><th>promotions</th><th>AUPRC</th>"
        f"<th>precision at the alert budget</th></tr>{rows}</table>"
        f'<img alt="production AUPRC and precision per day, by policy" src="{replay_png(replay)}">'
        "</section>"
    )


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _shadow_on_labels(on_labels: dict[str, dict[str, float]] | None) -> str:
    """Both models' precision and recall on the batch's own labels, where it has them."""
    if not on_labels:
        return ""
    cells = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{m['precision']:.3f}</td><td>{m['recall']:.3f}</td></tr>"
        for name, m in on_labels.items()
    )
    head = "<tr><th>on the batch's labels</th><th>precision</th><th>recall</th></tr>"
    return f"<table>{head}{cells}</table>"


def _lineage_section(inputs: ReportInputs) -> str:
    decision, theirs = inputs.decision, inputs.production_decision
    if decision is None:
        return ""
    mine = _lineage(decision)
    rows = "".join(
        f"<tr><td>{html.escape(key)}</td><td class='text'><code class='hash'>{html.escape(new)}"
        "</code></td>"
        f"<td class='text'><code class='hash'>{html.escape(NONE_YET if old is None else old)}"
        "</code></td>"
        f"<td>{'' if old is None else ('same' if old == new else 'changed')}</td></tr>"
        for key, new, old in data_versions(mine, _lineage(theirs) if theirs else None)
    )
    record = html.escape(
        json.dumps({k: v for k, v in decision.items() if k != "params"}, indent=2, default=str)
    )
    return (
        "<section id='lineage'><h2>Data versions and lineage</h2><table><tr><th></th>"
        "<th>candidate</th><th>production</th><th></th></tr>"
        f"{rows}</table><details><summary>Decision record</summary><pre>{record}</pre>"
        "</details></section>"
    )


def _lineage(decision: dict[str, Any]) -> dict[str, Any]:
    return dict(decision.get("lineage") or {}) | {
        "git_commit": decision.get("git_commit"),
        "prefect_run_id": decision.get("prefect_run_id"),
    }
