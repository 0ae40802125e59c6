"""The HTML report in a real headless browser (Debian ``chromium``): it renders, its script runs, the
graph and the table are in the DOM, sorting works, and the page requests nothing from the network.

Network: Chromium writes every request it makes to a NetLog (``--log-net-log``).  The browser itself
makes background requests (component updates, time sync) whatever the flags; those carry the initiator
"not an origin".  A request made *by the page* carries the page's origin (``null`` for file://), so the
test asserts that no such request exists, and a control page with an external image proves that the
check sees one when there is one.

Skipped, with the reason, when chromium is not installed (CI installs it: ``apt-get install chromium``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from analyzer import analyze
from analyzer.report.audit import build_audit
from analyzer.report.html import write_html

import report_case as rc

from paths import REPO
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-extensions", "--hide-scrollbars")


def _chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url], capture_output=True,
                          text=True, timeout=120)


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for (browser-internal requests left out, see the module docstring)."""
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        start = names.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in params  # (END events have no url)
        if start and params.get("initiator") != "not an origin":
            urls.append(params.get("url", ""))
        elif "file://" in str(params.get("network_anonymization_key", "")):
            urls.append(str(params.get("host") or params.get("group_id") or params))
    return urls


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, dict]:
    directory = tmp_path_factory.mktemp("browser")
    capture, pods = rc.write_case(directory)
    doc = build_audit(analyze(capture, pods=pods), [capture], pods, fail_on=["unexpected-plaintext"])
    path = directory / "report.html"
    write_html(doc, path)
    return path, doc


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory) -> tuple[Path, dict]:
    capture, pods = REPO / "captures" / "node-transparent.pcapng", REPO / "captures" / "node-transparent.pods.json"
    doc = build_audit(analyze(capture, pods=pods), [capture], pods)
    path = tmp_path_factory.mktemp("demo") / "report.html"
    write_html(doc, path)
    return path, doc


def test_graph_and_table_render_and_the_script_runs(page, tmp_path):
    path, doc = page
    out = _chromium(tmp_path, path.as_uri(), "--dump-dom")
    dom = out.stdout
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'data-ready="1"' in dom, "the page's script did not run to its end"
    workloads = {e["src"] for e in doc["edges"]} | {e["dst"] for e in doc["edges"]}
    assert '<svg id="mesh"' in dom and dom.count("data-node=") == len(workloads)
    assert dom.count('class="edge"') == len(doc["edges"])
    assert dom.count("<tr data-status=") == len(doc["edges"])
    assert "POLICY FAILED" in dom


def test_sorting_by_a_column(demo_page, tmp_path):
    path, doc = demo_page
    dom = _chromium(tmp_path, path.as_uri() + "?sort=flows&dir=desc", "--dump-dom").stdout
    order = [line.split('data-edge="')[1].split('"')[0] for line in dom.split("<tr data-status=")[1:]]
    flows = {e["id"]: e["flows"] for e in doc["edges"]}
    assert len(order) == len(doc["edges"])
    assert [flows[i] for i in order] == sorted(flows.values(), reverse=True)
    assert 'aria-sort="descending"' in dom


def test_no_external_resource_is_requested(demo_page, tmp_path):
    path, _ = demo_page
    netlog = tmp_path / "net.json"
    out = _chromium(tmp_path, path.as_uri(), "--dump-dom", f"--log-net-log={netlog}", "--net-log-capture-mode=Everything")
    assert 'data-ready="1"' in out.stdout
    assert _page_requests(netlog) == []


def test_the_network_check_sees_a_page_request(tmp_path):
    """Control: the same check on a page that loads an external image must report it."""
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    netlog = tmp_path / "net.json"
    _chromium(tmp_path, control.as_uri(), "--dump-dom", f"--log-net-log={netlog}", "--net-log-capture-mode=Everything")
    assert any("127.0.0.1:9" in url for url in _page_requests(netlog))


def test_screenshot(demo_page, tmp_path):
    """A screenshot a person can look at (kept in the test's tmp dir): a real PNG of a rendered page."""
    path, _ = demo_page
    shot = tmp_path / "report.png"
    out = _chromium(tmp_path, path.as_uri(), f"--screenshot={shot}", "--window-size=1400,1000")
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000  # a blank page compresses to a few KB
