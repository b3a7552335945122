"""The review page renders in headless Chromium with the network off: plots, both
versions, a validation page with a row per expectation, no broken local links, and no
request leaving the machine."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from anomalyflow.cli import app
from tests.integration.test_main_job import SMALL, register_a_refit_copy

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
    "--disable-extensions",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",  # let scripts (Evidently's report) finish first
]
# Chromium's own services, which it calls whatever page it shows (seen with Debian's
# Chromium 156); any other host in the proxy's log came from the page.
BROWSER_OWN_HOSTS = {"update.googleapis.com", "accounts.google.com", "clients2.google.com"}
URL_ATTRIBUTES = {"src", "href", "srcset", "poster", "data", "action", "background"}
REMOTE_CSS = re.compile(r"url\(\s*['\"]?\s*(https?:)?//|@import", re.IGNORECASE)


class _Links(HTMLParser):
    """The page's links, the URLs it would fetch from another host, and table rows."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.remote: list[str] = []
        self.rows: dict[str, int] = {}  # table id: rows in its body
        self._style = False
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")
        for name, value in attrs:
            if value and (name in URL_ATTRIBUTES or name == "style"):
                self.remote += _remote(name, value)
        self._style = tag == "style"
        if tag == "table":
            self._table = values.get("id") or ""
        if tag == "tr" and self._table is not None:
            self.rows[self._table] = self.rows.get(self._table, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        self._style = False if tag == "style" else self._style
        self._table = None if tag == "table" else self._table

    def handle_data(self, data: str) -> None:
        if self._style and REMOTE_CSS.search(data):
            self.remote.append(f"<style>: {REMOTE_CSS.search(data)}")


def _remote(name: str, value: str) -> list[str]:
    if name == "style":
        return [f"style={value}"] if REMOTE_CSS.search(value) else []
    urls = (
        [part.split()[0] for part in value.split(",") if part.strip()]
        if name == "srcset"
        else [value]
    )
    return [u for u in urls if urlparse(u).netloc or urlparse(u).scheme in ("http", "https")]


def parse(html_text: str) -> _Links:
    parser = _Links()
    parser.feed(html_text)
    return parser


@dataclass
class OfflineBrowser:
    """Headless Chromium whose every request goes to a proxy here that answers none.

    Nothing leaves the machine; the proxy records each request's first line, so a test
    can tell that a page tried to fetch something.
    """

    chromium: str
    profile: Path
    port: int
    seen: list[str] = field(default_factory=list)

    def run(self, page: Path, *extra: str) -> str:
        command = [
            self.chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self.profile}",
            f"--proxy-server=http://127.0.0.1:{self.port}",
            "--proxy-bypass-list=<-loopback>",
            *extra,
            page.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
        return done.stdout

    def dom(self, page: Path) -> str:
        return self.run(page, "--dump-dom")

    def screenshot(self, page: Path, png: Path) -> Path:
        self.run(page, f"--screenshot={png}", "--window-size=1200,2400")
        assert png.exists() and png.stat().st_size > 10_000, f"no screenshot of {page}"
        return png

    def page_requests(self) -> list[str]:
        """Requests not from Chromium's own services: the pages' attempts to go online."""
        found = []
        for line in self.seen:
            target = line.split(" ")[1] if " " in line else line
            host = urlparse(target if "//" in target else f"//{target}").hostname
            if host not in BROWSER_OWN_HOSTS:
                found.append(line)
        return found


@contextmanager
def offline_browser(profile: Path) -> Iterator[OfflineBrowser]:
    """An :class:`OfflineBrowser` with its recording proxy on a free loopback port."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    server = socket.create_server(("127.0.0.1", 0))
    browser = OfflineBrowser(found, profile, server.getsockname()[1])

    def record() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    request = connection.recv(4096)
                except OSError:
                    request = b"(unreadable request)"
                # Chromium opens spare connections to its proxy and closes them unused:
                # no request, so nothing a page tried to fetch.
                if request:
                    browser.seen.append(request.split(b"\r\n")[0].decode(errors="replace"))

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    try:
        yield browser
    finally:
        server.close()
        thread.join(timeout=5)


def assert_the_proxy_catches_a_fetching_page(browser: OfflineBrowser, folder: Path) -> None:
    """The check proves something only if a page that does fetch is caught."""
    page = folder / "fetching.html"
    page.write_text(
        '<link rel="stylesheet" href="https://cdn.example.org/x.css">'
        '<img src="https://assets.example.com/logo.png?id=1">'
    )
    before = len(browser.page_requests())
    browser.dom(page)
    caught = " ".join(browser.page_requests()[before:])
    assert "cdn.example.org" in caught and "assets.example.com" in caught, browser.seen
    assert len(parse(page.read_text()).remote) == 2


def test_review_page_renders_offline_with_plots_and_working_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(SMALL)
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    production = re.search(r"Registered version (\S+)", result.output).group(1)  # type: ignore[union-attr]
    candidate = register_a_refit_copy(production)
    shadowed = runner.invoke(
        app, ["shadow", "--input", "data/recent.parquet", "--candidate", candidate]
    )
    assert shadowed.exit_code == 0, shadowed.output
    page = Path(shadowed.output.split("Report: ")[1].strip())  # rewritten with the shadow
    validation_page = page.parent / "validation.html"

    with offline_browser(tmp_path / "profile") as browser:
        dom = browser.dom(page)
        validation_dom = browser.dom(validation_page)
        browser.screenshot(page, tmp_path / "review.png")
        browser.screenshot(validation_page, tmp_path / "validation.png")
        assert browser.page_requests() == [], "a page tried to reach the network"
        assert_the_proxy_catches_a_fetching_page(browser, tmp_path)

    assert "Decision:" in dom and "Evaluation on the holdout" in dom
    assert "Shadow comparison" in dom and re.search(r"disagreement \d+\.\d\d%", dom)

    assert dom.count('src="data:image/png;base64,') == 2  # PR/ROC and histograms inline
    versions = dom.split('id="versions"')[1].split("</section>")[0]
    assert production in versions and "none yet" in versions  # the first model

    evaluated = json.loads((page.parent / "validation.json").read_text())["evaluated"]
    assert evaluated > 10
    assert parse(validation_dom).rows["expectations"] == evaluated + 1  # header row too

    parsed = parse(page.read_text())
    assert parsed.remote == [] and parse(validation_page.read_text()).remote == []
    local = [h for h in parsed.hrefs if not urlparse(h).scheme]
    assert sorted(local) == ["drift.html", "validation.html"]  # the run's copies, not GX's
    for href in local:
        assert (page.parent / href).resolve().exists(), f"broken link: {href}"
