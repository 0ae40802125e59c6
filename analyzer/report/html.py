"""The audit document -> one self-contained HTML page an auditor opens from disk.

Role: present ``report/audit.py``'s document: the answer first (the headline, every gate's result, applied
or not, and the worst edges linked to their rows, all within the first screen), the mesh graph, the
sortable edges table, what could not be judged, the provenance of every input (hashes, times, interfaces,
drops, tool versions), then each edge's evidence down to its flows (``#edge-e3`` -> ``#flow-17``).

Rules:
  1. One file, no server, no network: CSS, script and the SVG graph are inline, and a Content-Security-
     Policy forbids the page from loading anything else, so even a hostile string in a capture cannot
     make it fetch.  No ``http(s)://`` appears in any ``src``/``href`` (a test scans for it).  The
     policy allows the page's own style and script by their SHA-256 and nothing else inline.
  2. Every value from the document is escaped (``escape.html_text``: control characters made visible,
     then ``html.escape``); SNIs and reasons come from the wire.
  3. The page reads completely without script: the script only sorts, filters and highlights.
  4. It renders the document and decides nothing; standard library only.
  5. Tables wrap rather than scroll: no cell is clipped at a desktop width, and below 720 px
     (``html_assets.CSS``) each row becomes a card of labelled cells (``data-label``), so a phone reads
     every column.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Iterable, Iterator, Sequence

from .escape import html_text
from .graph import legend, render_svg
from .html_assets import CSS, JS
from .edges import EDGE_ORDER as SEVERITY
from .schema import EDGE_COLUMNS, EDGE_STATUSES, FLOW_COLUMNS

SECURED, EXPECTED, UNEXPECTED, MIXED, UNVERIFIED = EDGE_STATUSES
ATTENTION = (UNEXPECTED, MIXED, UNVERIFIED)  # statuses listed at the top as the worst edges
SUB = "\u2003"  # leads a breakdown line under an item of the "could not be judged" table
MAX_WORST = 3  # worst edges listed at the top (all of them are first in the edges table)
WORST_PORTS = {UNEXPECTED: "unexpected_ports", UNVERIFIED: "unverified_ports"}  # the ports that make it bad
MAX_FLOWS_PER_EDGE = 1000  # flows listed under one edge; the rest are in report.json
MAX_FLOWS_IN_PAGE = 5000  # flows listed in the whole page, worst edges first
MAX_EDGES_IN_PAGE = 1000  # edges in the page (graph, table, evidence), worst first; the rest are in report.json
FIT_WIDTH = 1800  # graphs up to this width shrink to the window; wider ones scroll


def _sha256(source: str) -> str:
    """A CSP source expression allowing exactly this inline element (CSP Level 2 hash-source)."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


# The page's own style and script are allowed by their hashes, nothing else inline: an element or
# attribute that an escaping mistake let through would not run (no 'unsafe-inline').
CSP = (f"default-src 'none'; style-src {_sha256(CSS)}; script-src {_sha256(JS)}; img-src data:; "
       "base-uri 'none'; form-action 'none'")
GATE_MEANING = {
    "unexpected-plaintext": "no edge carries plaintext that the mesh should have encrypted",
    "plaintext": "no edge carries any plaintext",
    "unverified": "no edge has flows proving neither mesh mTLS nor expected plaintext",
}
STATUS_MEANING = {
    SECURED: "every flow is TLS with the destination's mesh identity (or TLS records between meshed pods)",
    EXPECTED: "plaintext the mesh does not encrypt: unmeshed peer, kubelet probe, proxy admin port, opted-out port",
    UNEXPECTED: "plaintext between peers the mesh should have encrypted",
    MIXED: "flows of different statuses, none unexpected plaintext",
    UNVERIFIED: "encrypted perhaps, but not proven to be the mesh's mTLS: no evidence, another SNI, ambiguous IP",
}
DESCRIPTIONS = {c.name: c.description for c in EDGE_COLUMNS + FLOW_COLUMNS}


# -- small helpers -----------------------------------------------------------------------------------------
def _e(value) -> str:
    return html_text(value)


def _bytes(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _time(iso: str | None) -> str:
    """``2026-11-28T08:07:16.287115Z`` -> ``08:07:16.287`` with the full value as a tooltip."""
    if not iso:
        return ""
    return f'<span title="{_e(iso)}">{_e(iso[11:23])}</span>'


def _ref(ns: str, name: str) -> str:
    return f"{ns}/{name}" if ns else name


def _badge(status: str) -> str:
    return f'<span class="badge st-{_e(status)}" title="{_e(STATUS_MEANING.get(status, ""))}">{_e(status)}</span>'


def _yes(value) -> str:
    return {True: "yes", False: "no", None: "unknown"}.get(value, _e(value))


def _flow_links(ids: Iterable[int], shown: set[int], total: int | None = None) -> str:
    ids = list(ids)
    parts = [f'<a href="#flow-{i}">{i}</a>' if i in shown else str(i) for i in ids]
    more = total - len(ids) if total is not None and total > len(ids) else 0
    return ", ".join(parts) + (f" \u2026 (+{more})" if more else "")


def _edge_links(ids: Iterable[str], edges: dict[str, dict]) -> str:
    """Links to edges, each named by its two ends (an edge's id is only the anchor)."""
    return ", ".join(
        f'<a href="#edge-{_e(i)}">{_e(_ref(edges[i]["src_ns"], edges[i]["src"]))} \u2192 '
        f'{_e(_ref(edges[i]["dst_ns"], edges[i]["dst"]))}</a>' for i in ids if i in edges)


def _worst_first(edges: Iterable[dict]) -> list[dict]:
    return sorted(edges, key=lambda e: (SEVERITY[e["status"]], e["key"]))


def _labelled(cells: Sequence[str], labels: Sequence[str]) -> str:
    """``<td>`` cells with their column's name as ``data-label``: the header a phone shows in each card."""
    return "".join(c.replace("<td", f'<td data-label="{_e(label)}"', 1) for c, label in zip(cells, labels))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    """A two-column table of (label, already-escaped HTML)."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


# -- sections ----------------------------------------------------------------------------------------------
def _gate_line(g: dict) -> str:
    """One gate's result: ``unexpected-plaintext: FAILED (1 edge)``, or for a gate not applied what it
    would give: ``plaintext: would FAIL (4 edges)``."""
    n = len(g["edges"])
    if g["applied"]:
        word, cls = ("passed", "pass") if g["passed"] else (f"FAILED ({_plural(n, 'edge')})", "fail")
    else:
        word, cls = ("would pass", "would-pass") if g["passed"] else (f"would FAIL ({_plural(n, 'edge')})", "would-fail")
    how = "applied" if g["applied"] else f"not applied: --fail-on {g['gate']}"
    return (f'<li class="gate {cls}" id="gate-{_e(g["gate"])}" data-gate="{_e(g["gate"])}">'
            f'<code>{_e(g["gate"])}</code>: <strong>{_e(word)}</strong> '
            f'<span class="muted">({_e(how)}; passes when {_e(GATE_MEANING[g["gate"]])})</span></li>')


def _worst(doc: dict) -> str:
    """The edges that need attention, worst first, each linked to its row in the edges table."""
    worst = [e for e in _worst_first(doc["edges"]) if e["status"] in ATTENTION]
    if not worst:
        counts = doc["summary"]["edge_statuses"]
        return (f'<p id="worst" class="worst-none">No edge needs attention: {counts[SECURED]} secured, '
                f'{counts[EXPECTED]} expected plaintext.</p>')
    items = "".join(
        f'<li>{_badge(e["status"])} <a class="worst-edge" href="#row-{_e(e["id"])}">'
        f'{_e(_ref(e["src_ns"], e["src"]))} \u2192 {_e(_ref(e["dst_ns"], e["dst"]))}</a> '
        f'<span class="muted">:{_e(e[WORST_PORTS.get(e["status"], "ports")] or e["ports"])}</span> {_e(e["msg"])}</li>'
        for e in worst[:MAX_WORST])
    more = (f'<li class="muted">{len(worst) - MAX_WORST} more, first in the <a href="#edges-table">edges table</a></li>'
            if len(worst) > MAX_WORST else "")
    return f'<div id="worst"><h2>Worst edges</h2><ol>{items}{more}</ol></div>'


def _header(doc: dict) -> str:
    policy, summary = doc["policy"], doc["summary"]
    result = policy["result"]
    verdict_text = {"pass": "POLICY PASSED", "fail": "POLICY FAILED", "none": "NO POLICY APPLIED"}[result]
    files = ", ".join(c["file"] for c in doc["captures"])
    v = summary["verdicts"]
    chips = [f'<button class="chip" data-filter="" aria-pressed="true">all edges ({summary["edges"]})</button>']
    for status in EDGE_STATUSES:
        n = summary["edge_statuses"][status]
        chips.append(f'<button class="chip" data-filter="{_e(status)}" aria-pressed="false">{_badge(status)} {n}</button>')
    share = summary["bytes_plaintext"] / summary["bytes"] * 100 if summary["bytes"] else 0.0
    gates = "".join(_gate_line(g) for g in policy["gates"])
    return (
        f'<header><h1>mTLS audit: {_e(files)}</h1>'
        f'<p id="headline"><strong>{_e(doc["headline"])}</strong></p>'
        f'<div class="answer"><div id="policy-gates"><h2><span class="verdict {result}" id="policy-result">'
        f'{verdict_text}</span></h2><ul class="gates">{gates}</ul></div>{_worst(doc)}</div>'
        f'<p>{summary["edges"]} edges from {summary["flows"]} flows '
        f'(tls {v["tls"]}, plaintext {v["plaintext"]}, unknown {v["unknown"]}) \u00b7 '
        f'{_bytes(summary["bytes_plaintext"])} of {_bytes(summary["bytes"])} in plaintext ({share:.1f}%) \u00b7 '
        f'{summary["excluded_localhost"]} localhost flows excluded \u00b7 {summary["packets"]} packets</p>'
        f'<div class="chips" role="group" aria-label="show only edges of one status">{"".join(chips)}</div>'
        f'<p class="muted">Generated {_e(doc["generated_at"])} by mtls-analyzer {_e(doc["tool"]["version"])} '
        f'({_e(doc["tool"]["engine"])} engine). Sections: <a href="#graph">graph</a> \u00b7 '
        f'<a href="#edges-table">edges</a> \u00b7 <a href="#unjudged">could not be judged</a> \u00b7 '
        f'<a href="#provenance">captures and provenance</a> \u00b7 <a href="#evidence">evidence per edge</a></p></header>'
    )


def _graph(doc: dict) -> str:
    svg = render_svg(doc["edges"])
    if 'width="' in svg:
        width = float(svg.split('width="', 1)[1].split('"', 1)[0])
        if width <= FIT_WIDTH:
            svg = svg.replace('class="mesh"', 'class="mesh fit"', 1)
    return (f'<section id="graph"><h2>Mesh graph</h2>{legend()}'
            f'<p class="graph-hint muted">Panels are namespaces; a workload stands right of those that call it. '
            f'Hover a workload to '
            f'light up its edges; hover an edge for its numbers; click it for its evidence.</p>'
            f'<div class="graph-wrap">{svg}</div></section>')


EDGE_TABLE = (  # (key, header, numeric)
    ("id", "edge", True), ("src", "source", False), ("dst", "destination", False), ("status", "status", False),
    ("mtls", "mTLS", False), ("flows", "flows", True), ("tls", "tls", True), ("plaintext", "plain", True),
    ("unknown", "unk.", True), ("bytes", "bytes", True),
    ("ports", "ports", False), ("server", "TLS, server identity", False),
    ("msg", "why", False),
)


def _edge_cells(e: dict) -> list[str]:
    share = e["bytes_plaintext"] / e["bytes"] * 100 if e["bytes"] else 0.0
    server = _e(e["server"])
    if e["identity_mismatch"]:
        server += f' <strong title="expected {_e(e["expected_server"])}">(not the expected identity)</strong>'
    return [
        f'<td class="num" data-v="{e["id"][1:]}"><a href="#edge-{_e(e["id"])}">{_e(e["id"])}</a></td>',
        _peer_cell(e["src_ns"], e["src"], e["src_kind"]),
        _peer_cell(e["dst_ns"], e["dst"], e["dst_kind"]),
        f'<td data-v="{SEVERITY[e["status"]]}">{_badge(e["status"])}</td>',
        f'<td>{_e(e["mtls"])}</td>',
        f'<td class="num">{e["flows"]}</td>', f'<td class="num">{e["tls"]}</td>',
        f'<td class="num">{e["plaintext"]}</td>', f'<td class="num">{e["unknown"]}</td>',
        f'<td class="num nowrap" data-v="{e["bytes"]}">{_bytes(e["bytes"])}'
        f'<br><span class="muted">{share:.0f}% plain</span></td>',
        f'<td>{_e(e["ports"])}</td>',
        f'<td class="long" data-v="{_e(e["server"])}"><span class="nowrap">{_e(e["tls_versions"])}</span><br>{server}</td>',
        f'<td class="why">{_e(e["msg"])}</td>',
    ]


def _peer_cell(ns: str, name: str, kind: str) -> str:
    """Namespace above the name (names stay on one line); the kind when it is not a pod."""
    top = f'<span class="ns">{_e(ns)}/</span>' if ns else ""
    tail = f' <span class="muted">{_e(kind)}</span>' if kind != "pod" else ""
    return f'<td class="peer" data-v="{_e(_ref(ns, name))}">{top}<span class="name">{_e(name)}</span>{tail}</td>'


def _edges_table(doc: dict) -> str:
    head = "".join(
        f'<th data-key="{key}" class="{"num" if numeric else ""}" title="{_e(DESCRIPTIONS.get(key, ""))}">{_e(label)}</th>'
        for key, label, numeric in EDGE_TABLE)
    edges = _worst_first(doc["edges"])
    labels = [label for _, label, _ in EDGE_TABLE]
    rows = "".join(f'<tr data-status="{_e(e["status"])}" data-edge="{_e(e["id"])}" id="row-{_e(e["id"])}">'
                   f'{_labelled(_edge_cells(e), labels)}</tr>' for e in edges)
    return (f'<section id="edges-table"><h2>Edges</h2><p class="muted">One row per '
            f'{_e(doc["options"]["resource"])} pair (source \u2192 destination, closed connections included). '
            f'Click a column to sort; the status column sorts worst first.</p>'
            f'<div class="wide"><table id="edges" class="sortable cards"><thead><tr>{head}</tr></thead>'
            f'<tbody>{rows}</tbody></table></div></section>')


def _item_cell(item: str) -> str:
    """An item of the "could not be judged" table; a leading em space marks a breakdown line, indented
    by the style sheet (the escaping would show the space itself as ``\\u2003``)."""
    if item.startswith(SUB):
        return f'<td class="sub">{_e(item[len(SUB):])}</td>'
    return f"<td>{_e(item)}</td>"


def _unjudged(doc: dict, shown: set[int]) -> str:
    u = doc["unjudged"]
    rows: list[tuple[str, str, str, str]] = []  # (item, count, why, flows html)

    def add(item: str, count, why: str, flows: str = "") -> None:
        rows.append((item, _e(count if count is not None else "not reported"), why, flows))

    add("flows with verdict unknown", u["unknown_flows"],
        "the bytes neither parse as TLS nor read as cleartext (SSH, opaque mid-stream data, no payload captured)")
    for g in u["unknown_by_reason"]:
        add(SUB + f"unknown: {g['reason']}", g["flows"], "", _flow_links(g["flow_ids"], shown, g["flows"]))
    add("flows unverified at their edge", u["unverified_flows"],
        "encrypted or not, they prove neither mesh mTLS nor expected plaintext")
    for g in u["unverified_by_reason"]:
        add(SUB + f"unverified: {g['reason']}", g["flows"], "", _flow_links(g["flow_ids"], shown, g["flows"]))
    add("secured without seeing the identity", u["identity_not_seen_flows"],
        "TLS records between meshed pods, but the ClientHello (SNI) was not captured: mid-stream or a short snaplen",
        _flow_links(u["identity_not_seen_flow_ids"], shown, u["identity_not_seen_flows"]))
    add("flows with packets cut by the snaplen", u["flows_with_truncated_packets"],
        f"{u['truncated_packets']} packets lost bytes: handshakes may be unreadable, verdicts rest on record headers",
        _flow_links(u["truncated_flow_ids"], shown, u["flows_with_truncated_packets"]))
    add("flows with gaps", u["flows_with_gaps"], "segments missing before the inspected bytes (loss or snaplen)",
        _flow_links(u["gap_flow_ids"], shown, u["flows_with_gaps"]))
    add("mid-stream flows", u["midstream_flows"], "opened before the capture started: no SYN, often no handshake",
        _flow_links(u["midstream_flow_ids"], shown, u["midstream_flows"]))
    add("localhost flows excluded", u["excluded_localhost"],
        "proxy \u2194 app hops inside a pod (lo, 127/8, ::1, same IP both ends): never on the network")
    for reason, n in u["localhost_by_reason"].items():
        add(SUB + f"localhost: {reason}", n, "")
    frames = sum(u["frames_not_analysed"].values())
    add("frames not analysed", frames, "not IP/TCP the analyzer decodes (ARP, tunnels, fragments, other link types)")
    for reason, n in u["frames_not_analysed"].items():
        add(SUB + f"frames: {reason}", n, "")
    add("not-TCP packets (network)", sum(u["not_tcp_packets"].values()),
        "UDP (e.g. DNS) and ICMP: Linkerd does not carry them, so no verdict applies")
    for proto, n in u["not_tcp_packets"].items():
        add(SUB + f"not TCP: {proto}", n, "")
    add("packets dropped by the capture", u["capture_drops"],
        "pcapng interface statistics (isb_ifdrop); a classic pcap does not record drops")
    add("truncated capture files", len(u["truncated_captures"]), ", ".join(u["truncated_captures"]))
    for warning in u["warnings"]:
        add("warning", "", warning)
    labels = ("item", "count", "why it matters", "flows")
    body = "".join(
        f'<tr class="{"muted" if count in ("0", "") else ""}">'
        + _labelled([_item_cell(item), f'<td class="num">{count}</td>', f"<td>{_e(why)}</td>",
                     f'<td class="mono">{flows}</td>'], labels) + "</tr>"
        for item, count, why, flows in rows)
    return (f'<section id="unjudged"><h2>What could not be judged, and why</h2>'
            f'<table class="cards"><thead><tr><th>item</th><th class="num">count</th><th>why it matters</th><th>flows</th></tr>'
            f'</thead><tbody>{body}</tbody></table></section>')


def _capture(c: dict) -> str:
    labels = ("#", "interface", "link type", "snaplen", "drops")
    itfs = "".join(
        "<tr>" + _labelled([
            f'<td class="num">{i["index"]}</td>', f'<td>{_e(i["name"]) or "<span class=muted>(unnamed)</span>"}</td>',
            f'<td>{i["linktype"]} {_e(i["linktype_name"])}</td>', f'<td class="num">{i["snaplen"]}</td>',
            f'<td class="num">{_e(i["drops"] if i["drops"] is not None else "not reported")}</td>'], labels) + "</tr>"
        for i in c["interfaces"])
    interfaces = ('<table class="cards"><thead><tr><th>#</th><th>interface</th><th>link type</th><th>snaplen</th><th>drops</th>'
                  f'</tr></thead><tbody>{itfs}</tbody></table>')
    return f'<h3>{_e(c["file"])}</h3>' + _facts([
        ("vantage point", _e(_vantage(c.get("vantage")))),
        ("path", f'<code>{_e(c["path"])}</code>'),
        ("size", f'{c["size_bytes"]} bytes ({_bytes(c["size_bytes"])})'),
        ("SHA-256", f'<code class="sha">{_e(c["sha256"])}</code>'),
        ("format", _e(c["format"])),
        ("capture start (UTC)", _e(c["start"])), ("capture end (UTC)", _e(c["end"])),
        ("duration", f'{_e(c["duration_s"])} s'),
        ("packets", _e(c["packets"])),
        ("interfaces and link types", interfaces),
        ("packets dropped (pcapng statistics)", _e(c["drops"] if c["drops"] is not None else "not reported by the file")),
        ("file complete", "no: truncated or damaged, analysed up to the damage" if c["truncated"] else "yes"),
        ("warnings", _e("; ".join(c["warnings"]) or "none")),
    ])


def _vantage(v: dict | None) -> str:
    """Where the capture was taken, and what says so (``audit`` ``captures[].vantage``)."""
    if not v or v["kind"] == "unknown":
        return "unknown (no manifest.json entry, and the file name does not say)"
    where = f'pod {v["pod"] or "(not a single listed pod)"}' if v["kind"] == "pod" else f'node {v["node"] or ""}'.rstrip()
    return f'{where} (from {"manifest.json" if v["source"] == "manifest" else "the file name"})'


def _provenance(doc: dict) -> str:
    tool, pods, policy = doc["tool"], doc["pods"], doc["policy"]
    parts = ['<section id="provenance"><h2>Captures and provenance</h2>']
    parts += [_capture(c) for c in doc["captures"]]
    parts.append("<h3>Tool</h3>" + _facts([
        ("analyzer", f'mtls-analyzer {_e(tool["version"])}'),
        ("engine", _e(tool["engine"])),
        ("tshark", _e(tool["tshark_version"] or "not used")),
        ("python", _e(tool["python"])),
        ("command", f'<code>{_e(" ".join(tool["command"]))}</code>' if tool["command"] else "(Python API)"),
        ("edges per", _e(doc["options"]["resource"])),
        ("--decode-as", _e(", ".join(doc["options"]["decode_as"]) or "none")),
        ("report schema", f'{_e(doc["schema"])} version {_e(doc["schema_version"])}'),
    ]))
    if pods is not None:
        parts.append("<h3>Pod list</h3>" + _facts([
            ("file", _e(pods["file"] or "(from kubectl)")),
            ("SHA-256", f'<code class="sha">{_e(pods["sha256"] or "not hashed: fetched live")}</code>'),
            ("size", f'{_e(pods["size_bytes"])} bytes' if pods["size_bytes"] is not None else ""),
            ("pods", f'{pods["pods"]} ({pods["meshed"]} meshed) in {pods["namespaces"]} namespaces'),
            ("format", _e("kubectl -o json" if pods["format"] == "json"
                          else "kubectl -o wide (no specs: mesh state unknown)")),
        ]))
    labels = ("gate", "passes when", "applied", "result", "edges")
    by_id = {e["id"]: e for e in doc["edges"]}
    rows = "".join(
        "<tr>" + _labelled([
            f'<td><code>{_e(g["gate"])}</code></td>', f'<td>{_e(GATE_MEANING[g["gate"]])}</td>',
            f'<td>{"applied" if g["applied"] else "not applied"}</td>',
            f'<td>{"pass" if g["passed"] else "<strong>fail</strong>" if g["applied"] else "would fail"}</td>',
            f'<td>{_edge_links(g["edges"], by_id)}</td>'], labels) + "</tr>"
        for g in policy["gates"])
    parts.append(f'<h3>Policy</h3><p>Result: <span class="verdict {policy["result"]}">{_e(policy["result"])}</span> '
                 f'(gates applied with <code>--fail-on</code>: {_e(", ".join(policy["applied"]) or "none")})</p>'
                 f'<table id="policy" class="cards"><thead><tr><th>gate</th><th>passes when</th><th>applied</th><th>result</th>'
                 f'<th>edges</th></tr></thead><tbody>{rows}</tbody></table></section>')
    return "".join(parts)


FLOW_TABLE = ("flow", "capture", "client \u2192 server", "start (UTC)", "duration s", "bytes c\u2192s / s\u2192c",
              "verdict", "evidence", "flow status", "TLS", "SNI / identity", "ALPN", "handshake", "reason")


def _flow_row(f: dict) -> str:
    sni = _e(f["identity"] or f["sni"])
    if f["identity"] and f["sni"]:
        sni = f'<span title="{_e(f["sni"])}">{_e(f["identity"])}</span>'
    status = _badge(f["flow_status"]) + (f' <span class="muted">{_e(f["status_word"])}</span>' if f["status_word"] else "")
    if f["status_detail"]:
        status += f'<br><span class="muted">{_e(f["status_detail"])}</span>'
    handshake = _e(f["handshake"])
    if f["handshake_detail"]:
        handshake += f'<br><span class="muted">{_e(f["handshake_detail"])}</span>'
    cells = [
        f'<td class="num"><a href="#flow-{f["flow_id"]}">{f["flow_id"]}</a></td>', f'<td class="long">{_e(f["capture"])}</td>',
        f'<td class="mono">{_e(f["client_ip"])}:{f["client_port"]} \u2192 {_e(f["server_ip"])}:{f["server_port"]}</td>',
        f'<td>{_time(f["first_ts"])}</td>', f'<td class="num">{f["duration_s"]:.3f}</td>',
        f'<td class="num">{f["bytes_c2s"]} / {f["bytes_s2c"]}</td>',
        f'<td>{_e(f["verdict"])}</td>', f'<td>{_e(f["evidence"])}</td>', f'<td class="long">{status}</td>',
        f'<td>{_e(f["tls_version"])}</td>', f'<td class="long">{sni}</td>', f'<td>{_e(f["alpn"])}</td>',
        f'<td class="long">{handshake}</td>', f'<td class="reason">{_e(f["reason"])}</td>',
    ]
    return f'<tr id="flow-{f["flow_id"]}" class="fs-{_e(f["flow_status"])}">{_labelled(cells, FLOW_TABLE)}</tr>'



def _edge_evidence(e: dict, listed: Sequence[dict]) -> str:
    total = len(e["flow_ids"])
    more = (f'<p class="muted">{total - len(listed)} more flows are in report.json '
            f'(<code>--json</code>).</p>') if total > len(listed) else ""
    mtls_note = {"proven": "a TLS 1.2 client Certificate was seen on the wire",
                 "inferred": "TLS 1.3 encrypts the client Certificate: the client identity is computed from the "
                             "source pod's service account, the server identity is seen in the SNI",
                 "none": "no secured TLS flow", "unknown": "TLS seen, but not proven to be the mesh's"}.get(e["mtls"], "")
    facts = _facts([
        ("status", f'{_badge(e["status"])} <span class="muted">{_e(STATUS_MEANING[e["status"]])}</span>'),
        ("why", _e(e["msg"] or "every flow secured")),
        ("mTLS", f'{_e(e["mtls"])} <span class="muted">{_e(mtls_note)}</span>'),
        ("client identity (computed)", _e(e["client"] or "\u2014")),
        ("server identity seen (SNI)", _e(e["server"] or "\u2014")),
        ("server identity expected", _e(e["expected_server"] or "\u2014")
         + (" <strong>mismatch</strong>" if e["identity_mismatch"] else "")),
        ("flows", f'{e["flows"]}: tls {e["tls"]}, plaintext {e["plaintext"]}, unknown {e["unknown"]}; '
                  f'unexpected {e["unexpected"]}, unverified {e["unverified"]}'),
        ("bytes", f'{_bytes(e["bytes"])}, of which plaintext {_bytes(e["bytes_plaintext"])}'),
        ("evidence kinds", _e(e["evidence"])), ("TLS versions", _e(e["tls_versions"] or "\u2014")),
        ("ports", _e(e["ports"])), ("first / last packet", f'{_e(e["first_ts"])} / {_e(e["last_ts"])}'),
        ("source IPs / meshed", f'{_e(e["src_ips"])} / {_yes(e["src_meshed"])}'),
        ("destination IPs / meshed", f'{_e(e["dst_ips"])} / {_yes(e["dst_meshed"])}'),
        ("notes", _e(e["notes"] or "\u2014")),
    ])
    head = "".join(f"<th>{_e(h)}</th>" for h in FLOW_TABLE)
    rows = "".join(_flow_row(f) for f in listed)
    return (f'<section class="edge-evidence" id="edge-{_e(e["id"])}" data-status="{_e(e["status"])}">'
            f'<h3>{_e(e["id"])}: {_e(_ref(e["src_ns"], e["src"]))} \u2192 {_e(_ref(e["dst_ns"], e["dst"]))} '
            f'{_badge(e["status"])} <a class="muted" href="#edges-table">\u2191 edges</a></h3>{facts}'
            f'<div class="wide"><table class="flows cards"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
            f'</div>{more}</section>')


def _evidence(doc: dict, by_edge: dict[str, list[dict]]) -> Iterator[str]:
    """The evidence section, one edge at a time (the largest part of a large page)."""
    yield '<section id="evidence"><h2>Evidence per edge</h2>'
    for e in _worst_first(doc["edges"]):
        yield _edge_evidence(e, by_edge.get(e["id"], []))
    yield "</section>"


def _in_page(doc: dict) -> tuple[dict, dict[str, int], str]:
    """What the page shows of a large document: the worst ``MAX_EDGES_IN_PAGE`` edges and, worst edges
    first, at most ``MAX_FLOWS_PER_EDGE`` flows of each and ``MAX_FLOWS_IN_PAGE`` in all.  Returns the
    document with those edges, how many flows are listed per edge, and a note saying what was left out
    ("" when nothing was)."""
    edges = _worst_first(doc["edges"])
    page_edges = edges[:MAX_EDGES_IN_PAGE]
    listed: dict[str, int] = {}
    room = MAX_FLOWS_IN_PAGE
    for e in page_edges:
        listed[e["id"]] = n = min(len(e["flow_ids"]), MAX_FLOWS_PER_EDGE, room)
        room -= n
    flows = sum(listed.values())
    total = len(doc["flows"])
    if len(page_edges) == len(edges) and flows == total:
        return doc, listed, ""
    note = (f'<p class="muted" id="page-limits">This page shows the {len(page_edges)} worst of {len(edges)} edges '
            f'and lists {flows} of {total} flows; everything is in report.json '
            f'(<code>--json</code>).</p>')
    return {**doc, "edges": page_edges}, listed, note


def _listed_flows(flows: Iterable[dict], listed: dict[str, int]) -> dict[str, list[dict]]:
    """The flows the page lists, per edge: the first ``listed[edge]`` of each, in document order (one
    pass; only those are kept)."""
    by_edge: dict[str, list[dict]] = {}
    for flow in flows:
        if listed.get(flow["edge"]):
            rows = by_edge.setdefault(flow["edge"], [])
            if len(rows) < listed[flow["edge"]]:
                rows.append(flow)
    return by_edge


# -- the page ----------------------------------------------------------------------------------------------
def render_html(doc: dict) -> str:
    """The whole page for an audit document (``audit.build_audit``)."""
    return "".join(iter_html(doc))


def iter_html(doc: dict) -> Iterator[str]:
    """The page in pieces, each made when it is asked for, so that ``write_html`` never holds all of it."""
    page, listed, note = _in_page(doc)
    by_edge = _listed_flows(doc["flows"], listed)
    shown = {f["flow_id"] for rows in by_edge.values() for f in rows}
    title = "mTLS audit: " + ", ".join(c["file"] for c in doc["captures"])
    yield "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="mtls-analyzer {_e(doc["tool"]["version"])}">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style></head>",
        f'<body data-result="{_e(doc["policy"]["result"])}">',
        _header(doc),
        "<main>",
        note,
        _graph(page),
        _edges_table(page),
        _unjudged(doc, shown),
        _provenance(doc),
        "",
    ])
    yield from _evidence(page, by_edge)
    yield "\n".join([
        "",
        "</main>",
        f'<footer>mtls-analyzer {_e(doc["tool"]["version"])} \u00b7 report schema {_e(doc["schema"])} '
        f'v{_e(doc["schema_version"])} \u00b7 the same data as <code>--json</code></footer>',
        f"<script>{JS}</script>",
        "</body></html>",
        "",
    ])


def write_html(doc: dict, path: str | os.PathLike) -> None:
    """Write the page as it is made (:func:`iter_html`); ``OSError`` is the caller's to report."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(iter_html(doc))
