"""A second run, rejected by the gate: its review page compares it with production, and
every page in its report folder renders with the network off; the first run's folder
is left as it was."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from tests.integration.test_main_job import SMALL
from tests.integration.test_review_page import (
    assert_the_proxy_catches_a_fetching_page,
    offline_browser,
    parse,
)

runner = CliRunner()
# Retrains to other weights (fine-tuning knobs changed; max_steps alone caps max_epochs)
# and fails the gate's AUPRC floor.
CHANGED = (
    SMALL.replace("max_epochs: 5", "max_epochs: 4, learning_rate: 0.003")
    + "gate: {min_auprc: 0.99}\n"
)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _run() -> str:
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    return re.search(r"Registered version (\S+)", result.output).group(1)  # type: ignore[union-attr]


def test_rejected_run_page_compares_with_production_and_every_page_is_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert "max_epochs: 5" in SMALL
    Path("params.yaml").write_text(SMALL)
    production = _run()
    (first,) = Path("artifacts/reports").iterdir()
    before = _digest(first)
    Path("params.yaml").write_text(CHANGED)
    candidate = _run()

    folders = sorted(Path("artifacts/reports").iterdir())
    assert len(folders) == 2 and _digest(first) == before  # never overwritten
    folder = next(f for f in folders if f != first)
    assert sorted(p.name for p in folder.iterdir()) == [
        "drift.html",
        "index.html",
        "validation.html",
        "validation.json",
    ]
    with offline_browser(tmp_path / "profile") as browser:
        doms = {page.name: browser.dom(page) for page in sorted(folder.glob("*.html"))}
        browser.screenshot(folder / "index.html", tmp_path / "review.png")
        assert browser.page_requests() == [], "a page tried to reach the network"
        assert_the_proxy_catches_a_fetching_page(browser, tmp_path)
    for page in folder.glob("*.html"):
        assert parse(page.read_text()).remote == [], f"{page.name} names a remote resource"

    page = doms["index.html"]
    versions = page.split('id="versions"')[1].split("</section>")[0]
    assert candidate in versions and production in versions
    assert f'anomalyflow promote {candidate} --force --reason "..."' in page.replace("&quot;", '"')
    changes = page.split('id="changes"')[1].split("</section>")[0]
    assert "finetune.max_epochs" in changes and "5 → 4" in changes
    assert "gate.min_auprc" in changes and "→ 0.99" in changes
    lineage = page.split('id="lineage"')[1].split("</section>")[0]
    hashes = re.search(
        r"batch_md5</td>.*?<code[^>]*>(\w{32})</code>.*?<code[^>]*>(\w{32})</code>", lineage
    )
    assert hashes is not None, "the batch's data version of both runs"
    assert page.count('src="data:image/png;base64,') == 2
    assert parse(doms["validation.html"]).rows["expectations"] > 10

    # `anomalyflow report` finds the candidate's version itself, before and after an
    # override; after it, the page still shows the production it was compared with.
    for promoted in (False, True):
        if promoted:
            forced = ["promote", candidate, "--force", "--reason", "reviewed by hand"]
            assert runner.invoke(app, forced).exit_code == 0
        reported = runner.invoke(app, ["report"])
        assert reported.exit_code == 0, reported.output
        rebuilt = Path(reported.output.split("Report: ")[1].strip()).read_text()
        versions = rebuilt.split("id='versions'")[1].split("</section>")[0]
        assert candidate in versions and production in versions
