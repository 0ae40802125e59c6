"""The HTML report's layout, measured in a real headless Chromium at a desktop (1400x900) and a phone
(420x900) window: the answer is in the first screen, tables wrap, the graph's edges and names can be told
apart.  Driven over the DevTools protocol (``cdp.py``) so the page's own geometry is asserted, not its text.

Screenshots of both widths (first screen and whole page) go to ``$MTLS_TEST_ARTEFACTS`` when set, else to
a pytest temporary directory.  Skipped, with the reason, when chromium is not installed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from analyzer import analyze
from analyzer.report import graph
from analyzer.report.audit import build_audit
from analyzer.report.html import ATTENTION, MAX_WORST, write_html
from cdp import Browser

import report_case as rc

from paths import CAPTURES
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
SCREEN_H = 900
WIDTHS = (1400, 420)

# Elements of the tables (and their wrappers) whose content is wider than their box: clipped or scrolled.
OVERFLOWING = """[...document.querySelectorAll('table, table *, .wide')]
  .filter(el => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
  .map(el => el.tagName + '.' + el.className + ': ' + el.textContent.slice(0, 60))"""
# Every <text> of the graph: does it end inside the smallest rectangle it starts in, and its <title>.
GRAPH_TEXTS = """[...document.querySelectorAll('#mesh text')].map(t => {
  const b = t.getBBox();
  const rects = [...document.querySelectorAll('#mesh rect')].map(r => r.getBBox())
    .filter(r => r.x <= b.x && b.x <= r.x + r.width && r.y <= b.y + b.height / 2 && b.y + b.height / 2 <= r.y + r.height)
    .sort((p, q) => p.width * p.height - q.width * q.height);
  const title = t.querySelector('title');
  const shown = [...t.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('');
  return {shown, fits: rects.length > 0 && b.x + b.width <= rects[0].x + rects[0].width + 0.5,
          title: title ? title.textContent : null};
})"""
EDGE_ENDS = """[...document.querySelectorAll('#mesh .edge')].map(a => {
  const p = a.querySelector('path'), n = p.getTotalLength(), s = p.getPointAtLength(0), e = p.getPointAtLength(n);
  return {src: a.dataset.src, dst: a.dataset.dst, status: a.dataset.status, dash: getComputedStyle(p).strokeDasharray,
          start: [s.x, s.y], end: [e.x, e.y]};
})"""


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory) -> Path:
    where = os.environ.get("MTLS_TEST_ARTEFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Two real reports: the crafted mesh with a gate applied, and the lab capture with no policy."""
    directory = tmp_path_factory.mktemp("layout")
    capture, pods = rc.write_case(directory)
    # A capture named as `kubectl mtls` names its files: a long token in every flow row.
    capture = capture.rename(directory / f"web-lnh8fhhndj-g9cvx-20261206T043844Z-{'x' * 40}.pcapng")
    case = build_audit(analyze(capture, pods=pods), [capture], pods, fail_on=["unexpected-plaintext"])
    demo_capture, demo_pods = CAPTURES / "demo-transparent.pcapng", CAPTURES / "demo-transparent.pods.json"
    demo = build_audit(analyze(demo_capture, pods=demo_pods), [demo_capture], demo_pods)
    out = {}
    for name, doc in (("case", case), ("demo", demo)):
        path = directory / f"{name}.html"
        write_html(doc, path)
        out[name] = (path, doc)
    return out


@pytest.fixture(scope="module", params=[(n, w) for n in ("case", "demo") for w in WIDTHS], ids=lambda p: f"{p[0]}-{p[1]}")
def view(request, browser, reports, artefacts):
    name, width = request.param
    path, doc = reports[name]
    page = browser.page(path.as_uri(), width, SCREEN_H)
    assert page.js("document.documentElement.dataset.ready") == "1", "the page's script did not run"
    page.screenshot(artefacts / f"report-{name}-{width}.png")
    page.screenshot(artefacts / f"report-{name}-{width}-full.png", full_page=True)
    return page, doc, width


def _expected_gate(g: dict) -> str:
    n = len(g["edges"])
    edges = f"({n} edge{'' if n == 1 else 's'})"
    if g["applied"]:
        return "passed" if g["passed"] else f"FAILED {edges}"
    return "would pass" if g["passed"] else f"would FAIL {edges}"


def test_every_gate_result_is_in_the_first_screen(view):
    page, doc, _ = view
    for g in doc["policy"]["gates"]:
        shown = page.js(f"(() => {{ const li = document.getElementById('gate-{g['gate']}');"
                        "return [li.querySelector('strong').textContent, li.getBoundingClientRect().bottom]; })()")
        assert shown[0] == _expected_gate(g)
        assert shown[1] <= SCREEN_H
    bottom = page.js("document.getElementById('headline').getBoundingClientRect().bottom")
    assert bottom <= SCREEN_H
    assert page.js("document.getElementById('headline').textContent") == doc["headline"]


def test_worst_edges_link_to_their_rows_in_the_first_screen(view):
    page, doc, _ = view
    links = page.js("""[...document.querySelectorAll('#worst a.worst-edge')].map(a => {
        const row = document.getElementById(a.getAttribute('href').slice(1));
        return {bottom: a.getBoundingClientRect().bottom, row: row ? row.tagName : null,
                table: row && row.closest('table') ? row.closest('table').id : null,
                edge: row ? row.dataset.edge : null}; })""")
    worst = [e["id"] for e in doc["edges"] if e["status"] in ATTENTION][:MAX_WORST]
    assert worst, "the test reports must have an edge that needs attention"
    assert [link["edge"] for link in links] == worst
    assert all(link["row"] == "TR" and link["table"] == "edges" for link in links)
    assert all(link["bottom"] <= SCREEN_H for link in links)


def test_tables_wrap_with_nothing_clipped_or_scrolled(view):
    page, _, width = view
    assert page.js(OVERFLOWING) == []
    assert page.js("document.documentElement.scrollWidth") <= width
    # The reasons are read in full: every "why" and "reason" cell is as wide as its text needs.
    clipped = page.js("[...document.querySelectorAll('td.why, td.reason')].filter(td => td.scrollWidth > td.clientWidth).length")
    assert clipped == 0 and page.js("document.querySelectorAll('td.reason').length") > 0


def test_graph_names_fit_or_carry_their_full_name(view):
    page, doc, _ = view
    texts = page.js(GRAPH_TEXTS)
    names = {e[side] for e in doc["edges"] for side in ("src", "dst")}
    labels = [t for t in texts if t["title"] in names or t["shown"] in names]
    assert len(labels) == len(names)  # one label per workload
    for t in texts:
        assert t["fits"] or t["title"], t
        if t["title"]:
            head, _, tail = t["shown"].partition("\u2026")
            assert t["title"].startswith(head) and t["title"].endswith(tail) and len(t["shown"]) < len(t["title"])


def test_long_names_are_shortened_in_the_middle():
    long = "prometheus-server-475pcx47c7-v8vvb"
    short = graph.shorten(long, graph.BOX_W - 2 * graph.PAD)
    assert short != long and "\u2026" in short and short.endswith("-v8vvb") and short.startswith("prometheus-")
    assert graph.shorten("voting-whmtqttntr-8t4wr", graph.BOX_W - 2 * graph.PAD) == "voting-whmtqttntr-8t4wr"


def test_edges_into_one_node_arrive_apart_with_a_dash_per_status(view):
    page, doc, _ = view
    ends = page.js(EDGE_ENDS)
    assert len(ends) == len(doc["edges"])
    for side, point in (("dst", "end"), ("src", "start")):
        by_node: dict[str, list] = {}
        for e in ends:
            by_node.setdefault(e[side], []).append(e[point])
        for points in by_node.values():
            for i, a in enumerate(points):
                for b in points[i + 1:]:
                    assert abs(a[0] - b[0]) + abs(a[1] - b[1]) >= graph.PORT_PITCH - 1, (side, points)
    dash = {}
    for e in ends:
        dash.setdefault(e["status"], set()).add(e["dash"])
    assert all(len(v) == 1 for v in dash.values())
    assert len({next(iter(v)) for v in dash.values()}) == len(dash)
    legend = page.js("[...document.querySelectorAll('.legend line')].map(l => [l.dataset.status, getComputedStyle(l).strokeDasharray])")
    assert len(legend) == 5 and len({d for _, d in legend}) == 5
    assert {s: d for s, d in legend if s in dash} == {s: next(iter(v)) for s, v in dash.items()}


def test_the_graph_frame_has_no_empty_margin(view):
    page, _, width = view
    wrap, svg = page.js("[document.querySelector('.graph-wrap').getBoundingClientRect().width,"
                        " document.getElementById('mesh').getBoundingClientRect().width]")
    assert wrap - svg <= 4  # the frame hugs the picture (2 px borders)
    assert wrap <= width


def test_the_policy_still_allows_only_the_pages_own_style_and_script(reports):
    for path, _ in reports.values():
        text = path.read_text()
        csp = text.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]
        assert "unsafe-inline" not in csp and "style-src 'sha256-" in csp and "script-src 'sha256-" in csp


def test_screenshots_are_written(view, artefacts):
    _, _, width = view
    shots = sorted(artefacts.glob(f"report-*-{width}*.png"))
    assert shots and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 20_000 for p in shots)
