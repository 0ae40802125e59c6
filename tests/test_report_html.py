"""The audit document and its HTML page: provenance, links from edges to flows, self-containment, layout.

The page is checked as text here; ``test_report_html_browser.py`` renders it in a real browser.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest

from analyzer import analyze
from analyzer.report import audit, graph
from analyzer.report.audit import build_audit, json_schema, link_flows, schema_text
from analyzer.report.html import render_html

import report_case as rc

from paths import CAPTURES, REPO
BUNDLED = sorted(p.name.removesuffix(".pcapng") for p in CAPTURES.glob("*.pcapng"))
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    capture, pods = rc.write_case(tmp_path_factory.mktemp("case"))
    report = analyze(capture, pods=pods)
    doc = build_audit(report, [capture], pods, fail_on=["unexpected-plaintext"], generated_at=WHEN,
                      command=["mtls-analyzer", "report", str(capture)])
    return capture, pods, report, doc


@pytest.fixture(scope="module")
def demo():
    capture, pods = CAPTURES / "demo-transparent.pcapng", CAPTURES / "demo-transparent.pods.json"
    report = analyze(capture, pods=pods)
    return build_audit(report, [capture], pods, generated_at=WHEN)


# -- the document --------------------------------------------------------------------------------------
def test_capture_facts_are_those_of_the_file(case):
    capture, _, _, doc = case
    facts = doc["captures"][0]
    assert facts["file"] == "mesh.pcapng"
    assert facts["size_bytes"] == capture.stat().st_size
    assert facts["sha256"] == hashlib.sha256(capture.read_bytes()).hexdigest()
    assert facts["format"] == "pcapng"
    assert facts["packets"] == 35
    assert facts["start"].startswith("2023-11-14T22:13:20.1234")  # pcapgen.T0_NS (microseconds, rounded)
    assert 0.15 < facts["duration_s"] < 0.2
    assert facts["interfaces"] == [{"index": 0, "name": "eth0", "linktype": 1, "linktype_name": "EN10MB (Ethernet)",
                                    "snaplen": 262144, "drops": rc.DROPS}]
    assert facts["drops"] == rc.DROPS and doc["unjudged"]["capture_drops"] == rc.DROPS


def test_a_classic_pcap_reports_no_drops(tmp_path):
    import pcapgen

    path = tmp_path / "one.pcap"
    path.write_bytes(pcapgen.ether_pcap(pcapgen.base_flow()))
    facts = audit.capture_facts(path)
    assert facts["drops"] is None and facts["interfaces"][0]["drops"] is None
    assert facts["format"] == "pcap"


def test_provenance_names_tool_pods_and_policy(case):
    _, pods, _, doc = case
    assert doc["schema"] == audit.REPORT_SCHEMA and doc["schema_version"] == audit.REPORT_SCHEMA_VERSION
    assert doc["generated_at"] == "2026-01-02T03:04:05.000000Z"
    assert doc["tool"]["engine"] == "native" and doc["tool"]["tshark_version"] is None
    assert doc["pods"]["sha256"] == hashlib.sha256(pods.read_bytes()).hexdigest()
    assert (doc["pods"]["pods"], doc["pods"]["meshed"]) == (5, 3)
    gates = {g["gate"]: g for g in doc["policy"]["gates"]}
    assert doc["policy"]["result"] == "fail"
    assert gates["unexpected-plaintext"]["applied"] and not gates["unexpected-plaintext"]["passed"]
    assert not gates["unverified"]["applied"] and not gates["unverified"]["passed"]  # shown, not applied


def test_each_edge_has_its_status_and_links_to_exactly_its_flows(case):
    _, _, report, doc = case
    by_src = {e["src"].rsplit("-", 2)[0]: e for e in doc["edges"]}
    assert {k: e["status"] for k, e in by_src.items()} == rc.STATUSES
    flows = {f["flow_id"]: f for f in doc["flows"]}
    for edge in doc["edges"]:
        assert len(edge["flow_ids"]) == edge["flows"]
        assert all(flows[i]["edge"] == edge["id"] for i in edge["flow_ids"])
    assert sorted(flows) == sorted(f["flow_id"] for f in report.flow_rows)
    ssh = next(f for f in doc["flows"] if f["server_port"] == 22)
    assert (ssh["verdict"], ssh["flow_status"], ssh["status_word"]) == ("unknown", "unverified", "no_evidence")


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("resource", ["pod", "deployment", "namespace"])
def test_flow_links_agree_with_the_edges_view(name, resource):
    """``audit.link_flows`` groups flows as ``edges.edge_rows`` does, for every bundled capture, and ties
    each flow to the edge that lists it."""
    report = analyze(CAPTURES / f"{name}.pcapng", pods=CAPTURES / f"{name}.pods.json")
    rows = report.edge_rows_by(resource)
    edges, flows = link_flows(report.flow_rows, report.pods, resource)
    assert [(e["src"], e["dst"], e["status"]) for e in edges] == [(r["src"], r["dst"], r["status"]) for r in rows]
    assert [len(e["flow_ids"]) for e in edges] == [r["flows"] for r in rows]
    assert len(flows) == len(list(flows)) == sum(r["flows"] for r in rows)
    edge_of = {i: e["id"] for e in edges for i in e["flow_ids"]}
    assert {f["flow_id"]: f["edge"] for f in flows} == edge_of


def test_what_could_not_be_judged(case):
    _, _, _, doc = case
    u = doc["unjudged"]
    assert u["unknown_flows"] == 1 and u["unknown_by_reason"][0]["flow_ids"] == [3]
    assert "SSH" in u["unknown_by_reason"][0]["reason"]
    assert u["unverified_edges"] == 1
    assert u["excluded_localhost"] == 0 and u["flows_with_truncated_packets"] == 0


def test_snaplen_and_localhost_are_counted():
    capture, pods = CAPTURES / "snaplen96-transparent.pcapng", CAPTURES / "snaplen96-transparent.pods.json"
    doc = build_audit(analyze(capture, pods=pods), [capture], pods)
    u = doc["unjudged"]
    assert u["flows_with_truncated_packets"] > 0 and u["truncated_packets"] >= u["flows_with_truncated_packets"]
    assert u["excluded_localhost"] == doc["summary"]["excluded_localhost"] > 0
    assert sum(u["localhost_by_reason"].values()) == u["excluded_localhost"]
    assert u["identity_not_seen_flows"] > 0  # TLS records between meshed pods, SNI cut by the snaplen


def test_the_document_is_plain_json_and_follows_its_schema(case, demo):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (installed with nbformat, extra 'report')")
    for doc in (case[3], demo):
        jsonschema.validate(json.loads(json.dumps(doc)), json_schema())


def test_the_documented_schema_is_current():
    path = REPO / "docs" / "report.schema.json"
    assert path.read_text() == schema_text(), \
        "regenerate with: python tools/gen_docs.py"


def test_an_audit_needs_a_pod_list(case):
    capture = case[0]
    from analyzer.errors import AnalyzerError

    with pytest.raises(AnalyzerError, match="pod list"):
        build_audit(analyze(capture), [capture])


def test_standard_input_is_refused_for_an_audit():
    from analyzer.errors import CaptureFormatError

    with pytest.raises(CaptureFormatError, match="standard input"):
        audit.load_path_list(["-"])


# -- the page ------------------------------------------------------------------------------------------
class _Page(HTMLParser):
    """Collects ids, #links and every src/href/url() an HTML page holds."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.refs, self.tags = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id":
                self.ids.add(value)
            if name in ("href", "src", "xlink:href", "action", "poster", "data"):
                self.refs.append(value or "")
                if (value or "").startswith("#"):
                    self.links.append(value[1:])


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def test_page_is_self_contained(case, demo):
    for doc in (case[3], demo):
        text = render_html(doc)
        page = _parse(text)
        assert not re.search(r"(?i)\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", text)
        assert not re.search(r"(?i)url\(\s*[\"']?(https?:)?//", text) and "@import" not in text
        assert all(ref.startswith("#") or ref.startswith("url(#") for ref in page.refs), page.refs
        assert "link" not in page.tags and "img" not in page.tags and "iframe" not in page.tags
        assert "default-src 'none'" in text  # the page may not load anything, whatever it contains


def test_every_internal_link_has_a_target(case, demo):
    for doc in (case[3], demo):
        page = _parse(render_html(doc))
        assert page.links and set(page.links) <= page.ids, set(page.links) - page.ids
        for edge in doc["edges"]:
            assert f"edge-{edge['id']}" in page.ids
        for flow in doc["flows"]:
            assert f"flow-{flow['flow_id']}" in page.ids


def test_page_shows_graph_table_provenance_and_unjudged(case):
    _, _, _, doc = case
    text = render_html(doc)
    assert 'id="mesh"' in text and text.count("data-node=") == 5
    assert text.count('<tr data-status=') == len(doc["edges"]) == 4
    assert doc["captures"][0]["sha256"] in text and doc["pods"]["sha256"] in text
    assert "POLICY FAILED" in text and "EN10MB (Ethernet)" in text and f">{rc.DROPS}<" in text
    assert "What could not be judged" in text and "SSH-2.0 banner" in text


def test_wire_strings_are_escaped(case):
    doc = json.loads(json.dumps(case[3]))
    evil = '<script>alert("x")</script><img src=https://evil.example/x>'
    doc["flows"][0]["reason"] = evil
    doc["flows"][0]["sni"] = doc["flows"][0]["identity"] = evil
    doc["edges"][0]["msg"] = evil
    doc["edges"][0]["src"] = evil
    text = render_html(doc)
    assert evil not in text and "<script>alert" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    page = _parse(text)  # the escaped markup is text, not an element
    assert "img" not in page.tags and all(ref.startswith("#") for ref in page.refs)


# -- the graph -----------------------------------------------------------------------------------------
def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_layout_of_a_large_mesh_is_readable_and_deterministic():
    edges = rc.synthetic_edges(namespaces=6, per_namespace=11)
    panels, boxes = graph.layout(edges)
    assert len(boxes) >= 60 and len(panels) == 8  # 6 namespaces + nodes + outside the pod list
    rects = [(b.x, b.y, b.x + graph.BOX_W, b.y + graph.BOX_H) for b in boxes.values()]
    assert not [1 for i, a in enumerate(rects) for b in rects[i + 1:] if _overlap(a, b)]
    panes = [(g.x, g.y, g.x + g.width, g.y + g.height) for g in panels]
    assert not [1 for i, a in enumerate(panes) for b in panes[i + 1:] if _overlap(a, b)]
    for box in boxes.values():  # each box sits inside its namespace panel
        g = next(p for p in panels if p.name == box.group)
        assert g.x <= box.x and box.x + graph.BOX_W <= g.x + g.width and g.y <= box.y <= g.y + g.height
    assert max(len(col) for g in panels for col in g.columns()) <= graph.MAX_ROWS
    # Callers stand left of callees: namespace i+1 is right of namespace i.
    xs = [next(g.x for g in panels if g.name == f"ns{i}") for i in range(6)]
    assert xs == sorted(xs) and len(set(xs)) == 6
    assert graph.render_svg(edges) == graph.render_svg(rc.synthetic_edges(namespaces=6, per_namespace=11))


def test_svg_marks_every_edge_with_its_status_and_anchor():
    edges = rc.synthetic_edges(namespaces=3, per_namespace=5)
    svg = graph.render_svg(edges)
    assert svg.count('class="edge"') == len(edges)
    for e in edges:
        assert f'href="#edge-{e["id"]}" class="edge" data-status="{e["status"]}"' in svg
    assert "xmlns" not in svg and "http" not in svg


def test_cycles_between_namespaces_still_lay_out():
    edges = rc.synthetic_edges(namespaces=3, per_namespace=3)
    back = dict(edges[0], id="e999", src_ns="ns2", src="ns2-svc00-6f7d8c9b4-x00z", dst_ns="ns0",
                dst="ns0-svc00-6f7d8c9b4-x00z", key="back")
    svg = graph.render_svg([*edges, back])
    assert svg.count('class="edge"') == len(edges) + 1


def test_no_edges_gives_a_sentence_not_an_empty_svg():
    assert "No edges" in graph.render_svg([])


def test_a_capture_without_flows_still_makes_a_report(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    pods = CAPTURES / "demo-transparent.pods.json"
    doc = build_audit(analyze(empty, pods=pods), [empty], pods)
    assert doc["edges"] == [] and doc["captures"][0]["start"] is None and doc["captures"][0]["packets"] == 0
    text = render_html(doc)
    assert "No edges" in text and "NO POLICY APPLIED" in text


# -- the answer at the top ------------------------------------------------------------------------------
def _gate_lines(text: str) -> dict[str, str]:
    return dict(re.findall(r'<li class="gate [^"]*" id="gate-([a-z-]+)"[^>]*><code>[^<]*</code>: <strong>([^<]*)</strong>', text))


def test_every_gate_is_answered_before_the_graph(case, demo):
    applied = render_html(case[3])
    assert _gate_lines(applied) == {"unexpected-plaintext": "FAILED (1 edge)", "plaintext": "would FAIL (2 edges)",
                                    "unverified": "would FAIL (1 edge)"}
    none = render_html(demo)
    assert _gate_lines(none) == {"unexpected-plaintext": "would FAIL (1 edge)", "plaintext": "would FAIL (4 edges)",
                                 "unverified": "would pass"}
    for text in (applied, none):
        assert text.index('id="gate-unverified"') < text.index('id="worst"') < text.index('id="graph"')


def test_worst_edges_name_the_ports_that_make_them_bad(demo):
    text = render_html(demo)
    worst = text.split('<div id="worst">', 1)[1].split("</div>", 1)[0]
    assert worst.count('class="worst-edge"') == 1
    edge = next(e for e in demo["edges"] if e["status"] == "PLAINTEXT-UNEXPECTED")
    assert f'href="#row-{edge["id"]}"' in worst and f'id="row-{edge["id"]}"' in text
    assert edge["ports"] == "4567,8080" and ":4567</span>" in worst


def test_a_mesh_with_nothing_to_fix_says_so(demo):
    doc = json.loads(json.dumps(demo))
    doc["edges"] = [e for e in doc["edges"] if e["status"] in ("secured", "plaintext-expected")]
    assert 'class="worst-none">No edge needs attention' in render_html(doc)


def test_breakdown_lines_are_indented_not_escaped(case):
    text = render_html(case[3])
    assert "\\u2003" not in text and 'class="sub">unknown: ' in text


def test_each_status_has_its_own_dash_pattern():
    dashes = [dash for _, dash in graph.STATUS_STYLE.values()]
    assert len(set(dashes)) == len(dashes)


def test_edges_into_one_workload_get_their_own_ports():
    edges = rc.synthetic_edges(namespaces=3, per_namespace=5)
    panels, boxes = graph.layout(edges)
    ends = [((e["src_ns"], e["src"]), (e["dst_ns"], e["dst"])) for e in edges]
    arrivals: dict = {}
    for (_, dst), (_, y) in zip(ends, graph.port_ys(ends, boxes)):
        arrivals.setdefault(dst, []).append(y)
        assert boxes[dst].y < y < boxes[dst].y + boxes[dst].h  # on the box's side
    busy = [ys for ys in arrivals.values() if len(ys) > 1]
    assert busy and all(min(b - a for a, b in zip(sorted(ys), sorted(ys)[1:])) >= graph.PORT_PITCH - 1 for ys in busy)


def test_policy_table_names_edges_by_their_ends(demo):
    html = render_html(demo)
    policy = html[html.index('<table id="policy"'):]
    policy = policy[:policy.index("</table>")]
    assert ">emojivoto/web-lnh8fhhndj-g9cvx \u2192 emojivoto/voting-whmtqttntr-8t4wr</a>" in policy
    assert ">e1<" not in policy
