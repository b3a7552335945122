"""Every expectation of one validation, as plain records: what our validation page shows.

GX Data Docs render their validation table with scripts from CDNs (empty offline) and
load a remote logo, so the review page renders its own table from these records
instead. They come from GX's validation result, live or as GX stored it in JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# Kwargs that say nothing about the rule: where it applies is shown apart, or nowhere.
_NOT_RULE = ("column", "batch_id", "column_set")


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation of the suite on one batch: the rule, what was seen, the verdict."""

    expectation: str
    column: str | None
    rule: dict[str, Any]
    observed: Any
    success: bool

    def describe(self) -> str:
        """A line a person can act on."""
        where = f"column '{self.column}'" if self.column else "table"
        verdict = "passed" if self.success else "failed"
        return f"{where}: {self.expectation} {self.rule} {verdict} (observed: {self.observed})"


def outcomes_from_gx(result: dict[str, Any]) -> tuple[ExpectationOutcome, ...]:
    """The outcomes in a GX suite validation result, in the suite's order.

    Args:
        result: ``ExpectationSuiteValidationResult.to_json_dict()``, or the JSON GX
            stores under ``gx/uncommitted/validations/`` (the same form).
    """
    outcomes = []
    for checked in result["results"]:
        config = checked["expectation_config"]
        kwargs = dict(config.get("kwargs") or {})
        outcomes.append(
            ExpectationOutcome(
                expectation=str(config["type"]),
                column=kwargs.get("column"),
                rule={k: v for k, v in kwargs.items() if k not in _NOT_RULE},
                observed=observed(checked.get("result") or {}),
                success=bool(checked["success"]),
            )
        )
    return tuple(outcomes)


def observed(result: dict[str, Any]) -> Any:
    """What an expectation saw, in the most telling form its result offers."""
    mismatched = result.get("details", {}).get("mismatched")
    if mismatched:
        return mismatched  # {"unexpected": [extra columns], "missing": [absent columns]}
    if "observed_value" in result:
        return result["observed_value"]
    if "unexpected_count" in result:
        share = result.get("unexpected_percent") or 0.0  # None when no value was checked
        return f"{result['unexpected_count']} unexpected ({share:.2f}%)"
    return result


def stored_result(project_dir: Path, written_by: datetime) -> Path | None:
    """The newest validation result GX stored for the project at or before ``written_by``.

    A later validation (a batch refused since) stores a newer result without changing
    the run's ``validation.json``, so the run's result is the last one before it.
    """
    folder = Path(project_dir) / "gx" / "uncommitted" / "validations"
    found = []
    for path in folder.glob("*/*/*/*.json"):
        run_time = json.loads(path.read_text()).get("meta", {}).get("run_id", {}).get("run_time")
        if run_time and datetime.fromisoformat(run_time) <= written_by:
            found.append((datetime.fromisoformat(run_time), path))
    return max(found)[1] if found else None
