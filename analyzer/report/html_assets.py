"""The HTML report's stylesheet and script, inlined into the page by ``report/html.py``.

Kept as Python strings rather than package data files so that a plain ``pip install .`` (no
MANIFEST, no package-data configuration) and the stripped sidecar ``.pyz`` carry them.

Rules: no external reference of any kind (fonts, images, scripts); the page must read fully with the
script disabled (the script only sorts, filters and highlights); the script talks to nothing but the DOM.
"""

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-alt: #f6f8fa;
  --secured: #1a7f37; --expected: #6e7781; --unexpected: #cf222e; --mixed: #bc4c00; --unverified: #8250df; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--fg); }
header, main > section { padding: 0 24px; }
header { border-bottom: 1px solid var(--line); padding-top: 12px; padding-bottom: 12px; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.muted { color: var(--muted); }
.verdict { display: inline-block; font-weight: 700; padding: 2px 10px; border-radius: 6px; color: #fff; }
.verdict.pass { background: var(--secured); } .verdict.fail { background: var(--unexpected); }
.verdict.none { background: var(--expected); }
.answer { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 4px 32px; margin: 6px 0; }
.answer h2 { font-size: 15px; margin: 4px 0; border: 0; padding: 0; }
ul.gates, #worst ol { margin: 4px 0; padding-left: 20px; }
ul.gates li, #worst li { margin: 2px 0; }
.gate.fail strong { color: var(--unexpected); } .gate.would-fail strong { color: var(--mixed); }
.gate.pass strong, .gate.would-pass strong { color: var(--secured); }
#headline, #worst li, h1, h2, h3 { overflow-wrap: anywhere; }  /* pod and file names are long */
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0 0; }
.chip { border: 1px solid var(--line); background: #fff; border-radius: 14px; padding: 2px 10px; cursor: pointer; font: inherit; }
.chip[aria-pressed="true"] { outline: 2px solid var(--fg); }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.st-secured { background: var(--secured); } .st-plaintext-expected { background: var(--expected); }
.st-PLAINTEXT-UNEXPECTED { background: var(--unexpected); } .st-mixed { background: var(--mixed); }
.st-unverified { background: var(--unverified); }
.graph-wrap { width: fit-content; max-width: 100%; overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; background: #fff; }
svg.mesh { display: block; font-size: 12px; }
svg.mesh.fit { max-width: 100%; height: auto; }
svg.mesh .ns rect { fill: var(--bg-alt); stroke: var(--line); }
svg.mesh .ns.outside rect { fill: #fff; stroke-dasharray: 4 3; }
svg.mesh .ns-title { font-weight: 700; fill: var(--fg); font-size: 13px; }
svg.mesh .ns-count { font-weight: 400; fill: var(--muted); }
svg .box rect { fill: #fff; stroke: #24292f; stroke-width: 1.4; }
svg .box.unmeshed rect { stroke: #8c959f; stroke-dasharray: 4 2; }
svg .box.unknown rect { stroke: #8c959f; }
svg .box.peer-node rect, svg .box.peer-external rect, svg .box.peer-ambiguous rect { fill: #eef1f4; }
svg .box text, svg.mesh .labels text { fill: var(--fg); }
svg.mesh .labels text { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; pointer-events: none; }
svg.mesh .box { cursor: default; }
svg.mesh .edge path { fill: none; opacity: .85; }
svg.mesh .edge:hover path, svg.mesh .edge.hot path { opacity: 1; stroke-width: 5; }
svg.mesh.focus .edge:not(.hot) { opacity: .1; }
body[data-only] svg.mesh .edge { opacity: .08; }
body[data-only="secured"] svg.mesh .edge[data-status="secured"],
body[data-only="plaintext-expected"] svg.mesh .edge[data-status="plaintext-expected"],
body[data-only="PLAINTEXT-UNEXPECTED"] svg.mesh .edge[data-status="PLAINTEXT-UNEXPECTED"],
body[data-only="mixed"] svg.mesh .edge[data-status="mixed"],
body[data-only="unverified"] svg.mesh .edge[data-status="unverified"] { opacity: 1; }
body[data-only="secured"] #edges tbody tr:not([data-status="secured"]),
body[data-only="plaintext-expected"] #edges tbody tr:not([data-status="plaintext-expected"]),
body[data-only="PLAINTEXT-UNEXPECTED"] #edges tbody tr:not([data-status="PLAINTEXT-UNEXPECTED"]),
body[data-only="mixed"] #edges tbody tr:not([data-status="mixed"]),
body[data-only="unverified"] #edges tbody tr:not([data-status="unverified"]) { display: none; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 6px 0; font-size: 12px; }
.legend-item { display: inline-flex; align-items: center; gap: 6px; }
.legend .box rect { fill: #fff; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
th { background: var(--bg-alt); font-weight: 600; }
td.why, td.reason, td.mono, td.long, code { overflow-wrap: anywhere; }  /* identities, file names, hashes */
td.sub { padding-left: 2em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
table.facts th { width: 14em; }
#edges, table.flows { font-size: 13px; width: 100%; }
td.why { min-width: 12em; }
td.peer .ns { display: block; color: var(--muted); font-size: 12px; }
.nowrap { white-space: nowrap; }
tr.fs-PLAINTEXT-UNEXPECTED td:first-child { border-left: 4px solid var(--unexpected); }
tr.fs-unverified td:first-child { border-left: 4px solid var(--unverified); }
tr.fs-secured td:first-child { border-left: 4px solid var(--secured); }
tr.fs-plaintext-expected td:first-child { border-left: 4px solid var(--expected); }
.edge-evidence { border-top: 1px solid var(--line); margin-top: 16px; }
:target { scroll-margin-top: 12px; }
tr:target, section:target > h3 { background: #fff8c5; }
.reason { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; min-width: 14em; }
footer { padding: 24px; color: var(--muted); }
@media (max-width: 720px) {
  header, main > section { padding: 0 12px; }
  h1 { font-size: 18px; }
  .answer { grid-template-columns: minmax(0, 1fr); }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; width: auto; }
  table.cards thead { display: none; }
  table.cards tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 8px; padding: 4px 8px; }
  table.cards td { border: 0; padding: 1px 0; text-align: left; min-width: 0; }
  table.cards td::before { content: attr(data-label) ": "; font-weight: 600; color: var(--muted); font-family: system-ui, sans-serif; }
  table.facts th { width: 38%; }
}
@media print { .chips, .graph-hint { display: none; } .graph-wrap { overflow: visible; border: 0; } }
"""

# Sort the edges table (and any table.sortable) by a column; filter by status; light up a node's edges.
# ``?sort=COLUMN&dir=desc`` in the page's URL picks the initial sort (used by the browser test).
JS = """
(function () {
  "use strict";
  function value(cell, numeric) {
    var v = cell.getAttribute("data-v");
    if (v === null) { v = cell.textContent.trim(); }
    return numeric ? (parseFloat(v) || 0) : v.toLowerCase();
  }
  function sortBy(table, th, dir) {
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.classList.contains("num");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[idx], numeric), y = value(b.cells[idx], numeric);
      return (x < y ? -1 : x > y ? 1 : 0) * (dir === "descending" ? -1 : 1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th) {
      th.addEventListener("click", function () {
        sortBy(table, th, th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending");
      });
    });
  });
  var params = new URLSearchParams(window.location.search);
  var key = params.get("sort");
  if (key) {
    var th = document.querySelector('#edges thead th[data-key="' + key.replace(/[^a-z_]/g, "") + '"]');
    if (th) { sortBy(document.getElementById("edges"), th, params.get("dir") === "desc" ? "descending" : "ascending"); }
  }
  document.querySelectorAll("button.chip").forEach(function (chip) {
    chip.addEventListener("click", function () {
      var only = chip.getAttribute("data-filter");
      var on = chip.getAttribute("aria-pressed") === "true" || only === "";
      document.querySelectorAll("button.chip").forEach(function (c) { c.setAttribute("aria-pressed", "false"); });
      if (on) { delete document.body.dataset.only; } else { document.body.dataset.only = only; chip.setAttribute("aria-pressed", "true"); }
    });
  });
  var svg = document.getElementById("mesh");
  if (svg) {
    var light = function (id, on) {
      svg.classList.toggle("focus", on);
      svg.querySelectorAll('.edge[data-src="' + id + '"], .edge[data-dst="' + id + '"]').forEach(function (e) {
        e.classList.toggle("hot", on);
      });
    };
    svg.querySelectorAll(".box").forEach(function (box) {
      var id = box.getAttribute("data-node");
      ["mouseenter", "focus"].forEach(function (ev) { box.addEventListener(ev, function () { light(id, true); }); });
      ["mouseleave", "blur"].forEach(function (ev) { box.addEventListener(ev, function () { light(id, false); }); });
    });
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
"""
