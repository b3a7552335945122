"""The review page renders in headless Chromium: plots present, no broken local links."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from tests.integration.test_main_job import SMALL

runner = CliRunner()
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [v for k, v in attrs if k == "href" and v]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    return found


def test_review_page_renders_offline_with_plots_and_working_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium = _chromium()
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL)
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    production = re.search(r"Registered version (\S+)", result.output).group(1)  # type: ignore[union-attr]
    shadowed = runner.invoke(
        app, ["shadow", "--input", "data/recent.parquet", "--candidate", production]
    )
    assert shadowed.exit_code == 0, shadowed.output
    page = Path(shadowed.output.split("Report: ")[1].strip())  # rewritten with the shadow

    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Decision:" in dom and "Evaluation on the holdout" in dom
    assert "Shadow comparison" in dom and "disagreement 0.00%" in dom
    assert dom.count('src="data:image/png;base64,') == 2  # PR/ROC and histograms inline

    parser = _Links()
    parser.feed(page.read_text())
    local = [h for h in parser.hrefs if not urlparse(h).scheme]
    assert any(h.endswith("drift.html") for h in local)
    assert any(h.endswith("index.html") for h in local)  # GX Data Docs
    for href in local:
        assert (page.parent / href).resolve().exists(), f"broken link: {href}"
