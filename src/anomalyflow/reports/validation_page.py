"""Our validation page: every expectation of the run's batch, rendered offline.

It stands in for GX Data Docs, whose table is built by CDN scripts (empty offline)
and whose pages load a remote logo carrying the data context id.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from anomalyflow.atomic import write_text
from anomalyflow.reports.layout import document, verdict
from anomalyflow.validation.results import ExpectationOutcome


def write_validation_page(
    summary: dict[str, Any], outcomes: tuple[ExpectationOutcome, ...], page: Path
) -> Path:
    """Render ``page`` from ``validation.json`` (``summary``) and the expectations' outcomes.

    Failed expectations come first: they are what a reviewer looks for.
    """
    passed = sum(o.success for o in outcomes)
    ordered = sorted(outcomes, key=lambda o: o.success)
    rows = "".join(_row(o) for o in ordered)
    overall = "passed" if summary.get("success") else "failed"
    body = (
        f"<p>Batch <code>{html.escape(str(summary.get('source', '?')))}</code>: "
        f"<span class='{'pass' if summary.get('success') else 'fail'}'>{overall}</span>; "
        f"{passed} of {len(outcomes)} expectations met.</p>"
        "<table id='expectations'><thead><tr><th>expectation</th><th>column</th>"
        "<th>rule</th><th>observed</th><th>verdict</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    if not outcomes:
        body += "<p>The expectations' results were not found for this run.</p>"
    write_text(page, document("Data validation (Great Expectations suite)", body))
    return page


def _row(outcome: ExpectationOutcome) -> str:
    return (
        f"<tr><td class='text'>{html.escape(outcome.expectation)}</td>"
        f"<td class='text'>{html.escape(outcome.column or '(table)')}</td>"
        f"<td class='text'><code>{_short(outcome.rule)}</code></td>"
        f"<td class='text'>{_short(outcome.observed)}</td>{verdict(outcome.success)}</tr>"
    )


def _short(value: Any, limit: int = 160) -> str:
    """A compact, escaped rendering cut to ``limit`` characters: a cell, not a dump."""
    text = _compact(value)
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _compact(value: Any, items: int = 4) -> str:
    """Floats to 6 significant digits, long lists cut to their first ``items``."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        shown = ", ".join(_compact(v) for v in value[:items])
        more = f", … ({len(value)} in all)" if len(value) > items else ""
        return f"[{shown}{more}]"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_compact(v)}" for k, v in value.items()) or "(none)"
    return str(value)
