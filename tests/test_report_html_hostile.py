"""The HTML report under hostile input, in headless Chromium: every field that reaches the page (SNI,
ALPN, reasons, pod, namespace, owner and service-account names, the capture's file and interface names)
carries markup, script and control characters; the page must show them as text, run only its own script,
and its Content-Security-Policy must refuse any inline script it did not hash.

Skipped, with the reason, when chromium is not installed (CI installs it: ``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
from html.parser import HTMLParser

import pytest

import hostile_case as hc
from analyzer import analyze
from analyzer.report.audit import build_audit
from analyzer.report.html import render_html, write_html
from analyzer.report.html_assets import CSS, JS
from test_report_html_browser import CHROMIUM, _chromium

TSHARK = shutil.which("tshark")
ENGINES = ["native", pytest.param("tshark", marks=pytest.mark.skipif(TSHARK is None, reason="tshark not installed"))]
INJECTED = '<script>document.documentElement.setAttribute("data-injected", "1")</script>'


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


class Elements(HTMLParser):
    """Every element of a serialised DOM, with its attributes (what the browser really built)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module", params=ENGINES)
def hostile_doc(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile-html")
    capture, pods = hc.write_case(directory)
    named = capture.with_name('cap<img src=x onerror=alert(4)>"\'.pcapng')  # the file name is on the page too
    capture.rename(named)
    report = analyze(named, pods=pods, engine=request.param)
    return build_audit(report, [named], pods, fail_on=["unverified"], engine=request.param), directory


def test_csp_has_no_unsafe_inline_and_hashes_the_inline_elements(hostile_doc):
    doc, _ = hostile_doc
    html = render_html(doc)
    (csp,) = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert "unsafe" not in csp
    assert f"script-src {_sha256(JS)};" in csp and f"style-src {_sha256(CSS)};" in csp
    assert html.count("<script>") == 1 and html.count("<style>") == 1
    assert f"<script>{JS}</script>" in html and f"<style>{CSS}</style>" in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_hostile_values_stay_text_in_the_browser(hostile_doc, tmp_path):
    doc, _ = hostile_doc
    path = tmp_path / "report.html"
    write_html(doc, path)
    out = _chromium(tmp_path, path.as_uri(), "--dump-dom")
    dom = out.stdout
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'data-ready="1"' in dom, "the page's own script did not run under its policy"
    elements = Elements(dom).tags
    assert [tag for tag, _ in elements if tag in ("script", "img", "iframe", "object", "embed")] == ["script"]
    assert [tag for tag, attrs in elements if any(name.startswith("on") for name in attrs)] == []
    assert sum(tag == "svg" for tag, _ in elements) == path.read_text().count("<svg")  # the graph and legend; none from data
    assert not set(dom) & {chr(c) for c in hc.CONTROL_BYTES}  # ESC, BEL, CR... were made visible
    assert "&lt;img src=x onerror=alert(1)&gt;" in dom  # the SNI is on the page, as text
    assert "eth0&lt;svg onload=alert(3)&gt;" in dom  # so is the interface name
    assert "vote-bot-" in dom and "data-injected" not in dom


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_the_policy_blocks_a_script_an_escaping_mistake_would_let_in(hostile_doc, tmp_path):
    """Control: the same page with an unhashed inline script added (what a missed escape would give):
    Chromium refuses it and still runs the page's own script."""
    doc, _ = hostile_doc
    html = render_html(doc).replace("<main>", "<main>" + INJECTED, 1)
    path = tmp_path / "mistake.html"
    path.write_text(html, encoding="utf-8")
    dom = _chromium(tmp_path, path.as_uri(), "--dump-dom").stdout
    assert 'data-ready="1"' in dom and 'data-injected="1"' not in dom
    unguarded = tmp_path / "unguarded.html"  # and without the policy, the same script does run
    unguarded.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html), encoding="utf-8")
    assert 'data-injected="1"' in _chromium(tmp_path, unguarded.as_uri(), "--dump-dom").stdout
