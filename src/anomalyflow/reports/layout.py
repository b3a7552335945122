"""What every page we write shares: one offline HTML shell, its style, value formatting.

The style is inline and uses system fonts only: a page must render whole with no
network, so nothing in it may name a remote stylesheet, font, image or script.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 62rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
td, th { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; } code.hash { word-break: break-all; }
.pass { color: #11772d; font-weight: 600; } .fail { color: #b00020; font-weight: 600; }
img { max-width: 100%; } code, pre { background: #f5f5f5; padding: 0 .2rem; }
pre.command { padding: .5rem; white-space: pre-wrap; }
"""


def document(title: str, body: str) -> str:
    """A whole HTML page: ``body`` is trusted HTML, ``title`` is escaped here."""
    title = html.escape(title)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_STYLE}</style></head><body>
<h1>{title}</h1>
{body}
</body></html>
"""


def fmt(value: Any) -> str:
    """A value for a table cell, escaped: floats to 4 decimals, None as n/a."""
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def verdict(passed: bool) -> str:
    """A pass/fail cell."""
    word = "pass" if passed else "fail"
    return f"<td class='{word}'>{word}</td>"


def relative(target: Path, folder: Path) -> str:
    """``target`` as a link from a page in ``folder``: pages stay linked when moved together."""
    return quote(Path(os.path.relpath(target.resolve(), folder.resolve())).as_posix())
