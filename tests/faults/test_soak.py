"""The soak benchmark, run briefly: clients keep scoring through a promotion and a rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.test_faults import base, cli, production, project

__all__ = ["base", "project"]  # fixtures, used by name


@pytest.mark.slow
def test_a_short_soak_answers_every_request_across_a_promotion_and_a_rollback(
    base: tuple[Path, str, str], project: Path
) -> None:
    _, prod, candidate = base
    # Production C with P before it: the soak promotes P (the previous) and rolls back.
    setup = cli(project, "promote", candidate, "--force", "--reason", "soak set-up")
    assert setup.returncode == 0, setup.stderr
    history_before = json.loads(cli(project, "history", "--json").stdout)

    result = cli(
        project, "benchmark-soak", "--clients", "2", "--seconds", "8", "--out", "soak.json"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads((project / "soak.json").read_text())
    assert figures["errors"] == 0, figures["error_samples"]
    assert figures["clients"] == 2 and figures["singles"] > 0 and figures["batches"] > 0
    assert figures["requests"] == figures["singles"] + figures["batches"]
    assert figures["requests_per_second"] > 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert (figures["production"], figures["promoted"]) == (candidate, prod)
    assert set(figures["answers_by_version"]) == {candidate, prod}  # the switch was seen
    assert [c["action"] for c in figures["changes"]] == ["promote", "rollback"]
    # The registry ends where it began, two verified changes later.
    assert production(project) == candidate
    assert cli(project, "history", "--verify").returncode == 0
    history = json.loads(cli(project, "history", "--json").stdout)
    assert [e["action"] for e in history[: len(history) - len(history_before)]] == [
        "rollback",
        "promote",
    ]


@pytest.mark.slow
def test_a_change_refused_mid_soak_ends_it_in_one_line_and_changes_nothing(
    base: tuple[Path, str, str], project: Path
) -> None:
    _, prod, candidate = base  # production P passed its gate; candidate C failed it
    history_before = cli(project, "history", "--json").stdout

    result = cli(  # promoting C unforced is refused a third of the way in
        project, "benchmark-soak", "--clients", "2", "--seconds", "6", "--target", candidate
    )

    assert result.returncode == 2, result.stdout + result.stderr  # ended, not left hanging
    (line,) = result.stderr.strip().splitlines()
    assert "failed mid-soak" in line and "Traceback" not in result.stdout + result.stderr
    assert production(project) == prod
    assert cli(project, "history", "--json").stdout == history_before
