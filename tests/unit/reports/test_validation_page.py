"""Our validation page: every expectation from the GX result, failures first, offline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from anomalyflow.reports.validation_page import write_validation_page
from anomalyflow.validation.results import ExpectationOutcome, outcomes_from_gx, stored_result


def _checked(kind: str, kwargs: dict[str, Any], result: dict[str, Any], ok: bool) -> dict[str, Any]:
    config = {"type": kind, "kwargs": {"batch_id": "b"} | kwargs}
    return {"expectation_config": config, "result": result, "success": ok}


GX_RESULT = {
    "meta": {"run_id": {"run_time": "2026-11-30T07:15:48.492044+00:00"}},
    "results": [
        _checked(
            "expect_table_row_count_to_be_between",
            {"min_value": 100},
            {"observed_value": 40},
            False,
        ),
        _checked(
            "expect_column_values_to_not_be_null",
            {"column": "amount"},
            {"unexpected_count": 0, "unexpected_percent": 0.0},
            True,
        ),
        _checked(
            "expect_column_values_to_be_between",
            {"column": "hour", "min_value": -1.5, "max_value": 25.0, "mostly": 0.99},
            {"unexpected_count": 3, "unexpected_percent": 7.5},
            False,
        ),
    ],
}


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.urls: list[str] = []
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_body |= tag == "tbody"
        if self._in_body and tag == "tr":
            self.rows.append([])
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_data(self, data: str) -> None:
        if self._in_body and self.rows and data.strip():
            self.rows[-1].append(data.strip())


def test_outcomes_read_every_expectation_with_column_rule_and_observed_value() -> None:
    outcomes = outcomes_from_gx(GX_RESULT)

    assert [o.success for o in outcomes] == [False, True, False]
    assert outcomes[0] == ExpectationOutcome(
        "expect_table_row_count_to_be_between", None, {"min_value": 100}, 40, False
    )
    assert outcomes[2].column == "hour" and outcomes[2].observed == "3 unexpected (7.50%)"
    assert "batch_id" not in outcomes[2].rule and outcomes[2].rule["mostly"] == 0.99


def test_page_has_a_row_per_expectation_failures_first(tmp_path: Path) -> None:
    summary = {"source": "data/recent.parquet", "success": False, "evaluated": 3}
    page = write_validation_page(summary, outcomes_from_gx(GX_RESULT), tmp_path / "v.html")
    parsed = _Rows()
    parsed.feed(page.read_text())

    assert len(parsed.rows) == 3
    assert [row[-1] for row in parsed.rows] == ["fail", "fail", "pass"]
    assert parsed.rows[1][:2] == ["expect_column_values_to_be_between", "hour"]
    assert "3 unexpected (7.50%)" in parsed.rows[1]
    assert not parsed.urls  # nothing to fetch, nothing linked away


def _store(project: Path, run_time: datetime) -> Path:
    stamp = run_time.strftime("%Y%m%dT%H%M%S.%fZ")
    path = project / "gx/uncommitted/validations/incoming_batch/__none__" / stamp / "b.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(GX_RESULT | {"meta": {"run_id": {"run_time": run_time.isoformat()}}})
    )
    return path


def test_the_runs_stored_result_is_the_last_one_before_its_validation_json(tmp_path: Path) -> None:
    now = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    _store(tmp_path, now - timedelta(hours=1))
    runs = _store(tmp_path, now - timedelta(seconds=2))
    _store(tmp_path, now + timedelta(minutes=5))  # a later batch, refused: no validation.json

    assert stored_result(tmp_path, now) == runs
    assert stored_result(tmp_path, now - timedelta(days=1)) is None
