"""Nothing from the wire or a pod list steers the output: hostile SNI, ALPN, HTTP request lines and pod
names (``hostile_case``) through both engines into every output, checked on the bytes written.

Text for people (table, CSV, Markdown, ``--follow`` lines, ``show``, stderr lines) must be one printable
line per row with no control character, no CSV cell a spreadsheet evaluates, and no Markdown that
forms a link or HTML.  Outputs for programs (JSON, JSONL, Parquet) keep each engine's exact value.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil

import pytest

import hostile_case as hc
from analyzer import analyze
from analyzer.live import tap_line
from analyzer.report.render import MAX_CELL, TABLE_COLUMNS, render
from analyzer.report.schema import EDGE_NAMES, FLOW_NAMES, PAIR_NAMES

TSHARK = shutil.which("tshark")
ENGINES = ["native", pytest.param("tshark", marks=pytest.mark.skipif(TSHARK is None, reason="tshark not installed"))]
VIEWS = {"flows": FLOW_NAMES, "pairs": PAIR_NAMES, "edges": EDGE_NAMES}
MD_SPECIAL = "\\`*_[]<>!|~$&@"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    return hc.write_case(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module", params=ENGINES)
def run(request, case):
    capture, pods = case
    report = analyze(capture, pods=pods, engine=request.param)
    rows = {"flows": report.flow_rows, "pairs": report.pair_rows, "edges": report.edge_rows}
    return request.param, rows


# -- what inert text is --------------------------------------------------------------------------------
def assert_inert(data: bytes) -> str:
    """Valid UTF-8, and every character printable except the newline that ends a line."""
    text = data.decode("utf-8")  # strict: invalid UTF-8 from the wire must have been escaped
    bad = sorted({f"U+{ord(c):04X}" for c in text if c != "\n" and not c.isprintable()})
    assert not bad, f"non-printable characters reached the output: {bad}"
    assert not set(data) & hc.CONTROL_BYTES
    return text


def unescaped(line: str, chars: str) -> list[str]:
    """Characters of ``chars`` in a Markdown line that no backslash escapes."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] in chars:
            out.append(line[i])
        i += 1
    return out


# -- the engines really produced the hostile values ----------------------------------------------------
def test_the_case_carries_every_hostile_value(run):
    engine, rows = run
    tls = [r for r in rows["flows"] if r["verdict"] == "tls"]
    http = [r for r in rows["flows"] if r["verdict"] == "plaintext"]
    assert len(tls) == len(http) == len(hc.HOSTILE)
    assert any("\x1b" in r["sni"] for r in tls) == (engine == "tshark")  # tshark keeps ESC raw
    assert {r["src"][:9] for r in rows["edges"]} == {"vote-bot-", "p" * 9}


# -- text for people -------------------------------------------------------------------------------------
@pytest.mark.parametrize("view", VIEWS)
def test_table_is_one_printable_bounded_line_per_row(run, view):
    _, rows = run
    data = render(rows[view], VIEWS[view], "table", view).encode()
    lines = assert_inert(data).splitlines()
    assert len(lines) == len(rows[view]) + 1  # no row was split by CR/LF
    assert max(map(len, lines)) <= len(TABLE_COLUMNS[view]) * (MAX_CELL + 2)  # 64 KiB names are cut


@pytest.mark.parametrize("view", VIEWS)
def test_csv_cells_are_inert_and_never_formulas(run, view):
    _, rows = run
    data = render(rows[view], VIEWS[view], "csv", view).encode()
    records = list(csv.reader(io.StringIO(assert_inert(data))))
    assert len(records) == len(rows[view]) + 1
    formulas = [cell for record in records for cell in record if cell.startswith(hc.FORMULA_STARTS)]
    assert formulas == []
    if view == "flows":  # the neutralised cells are still there, marked as text
        assert sum(cell.startswith("'") for record in records for cell in record) >= 4


@pytest.mark.parametrize("view", VIEWS)
def test_markdown_has_no_link_html_or_broken_row(run, view):
    _, rows = run
    data = render(rows[view], VIEWS[view], "markdown", view).encode()
    lines = assert_inert(data).splitlines()
    assert len(lines) == len(rows[view]) + 2
    cells = len(VIEWS[view])
    for line in lines[2:]:  # the data rows (the header holds the schema's own column names)
        assert line.startswith("|") and line.endswith("|")
        assert unescaped(line, "|").count("|") == cells + 1  # a pipe in data does not make a cell
        assert unescaped(line, MD_SPECIAL.replace("|", "")) == []  # no <, [, !, @, & ... that Markdown acts on
        assert not re.search(r"(?<!\\)://|(?i:www)(?<!\\)\.", line)  # no bare autolink


def test_cli_table_csv_markdown_and_gate_lines_through_both_engines(run, case, cli):
    engine, _ = run
    capture, pods = case
    table = cli("analyze", capture, "--pods", pods, "--engine", engine, "--fail-on", "unverified")
    assert table.returncode == 3, table.stderr.decode()[-2000:]
    assert_inert(table.stdout)
    err = assert_inert(table.stderr)
    assert "--fail-on unverified: 1 edge: emojivoto/vote-bot-\\x1b]0;pwned\\x07x|" in err
    for fmt in ("csv", "markdown"):
        out = cli("analyze", capture, "--engine", engine, "--view", "flows", "--format", fmt, "-q")
        assert out.returncode == 0 and out.stderr == b"", out.stderr.decode()[-2000:]
        assert_inert(out.stdout)


def test_follow_lines_are_escaped(run):
    _, rows = run
    for row in rows["flows"]:
        line = tap_line(row)
        assert_inert(line.encode())
        assert "\n" not in line


# -- text for programs: the exact values -------------------------------------------------------------------
@pytest.mark.parametrize("view", VIEWS)
def test_json_keeps_the_exact_values(run, view):
    _, rows = run
    text = render(rows[view], VIEWS[view], "json", view)
    assert text.isascii()  # every control character is a JSON escape
    back = json.loads(text)
    for key in ("sni", "alpn", "reason", "src", "dst", "notes", "msg", "server"):
        if key in VIEWS[view]:
            assert [r[key] for r in back] == [r[key] for r in rows[view]]


def test_jsonl_and_parquet_keep_the_exact_values(run, tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from analyzer.report.export import export_view

    _, rows = run
    out = io.StringIO()
    export_view(rows["flows"], "flows", "jsonl", None, out)
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["sni"] for line in lines] == [r["sni"] for r in rows["flows"]]
    path = tmp_path / "edges.parquet"
    export_view(rows["edges"], "edges", "parquet", path, io.StringIO())
    assert pq.read_table(path).column("src").to_pylist() == [r["src"] for r in rows["edges"]]


# -- show: one flow, both engines side by side -----------------------------------------------------------
@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
@pytest.mark.parametrize("flow_id", [0, 1, 10, 11])  # OSC title SNI, its HTTP line, C1 SNI, its HTTP line
def test_show_prints_no_control_characters(case, cli, flow_id):
    capture, _ = case
    out = cli("show", capture, "--flow", flow_id)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    text = assert_inert(out.stdout)
    assert "\\x1b" in text or "\\x7f" in text or "\\x9b" in text or "\\xc2" in text


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_compare_lists_the_disagreeing_values_escaped(case, cli, fmt):
    """The engines disagree on these SNIs (tshark keeps ESC raw, cuts at NUL): the listing is still inert."""
    capture, _ = case
    out = cli("compare", capture, "--format", fmt)
    assert out.returncode in (0, 1), out.stderr.decode()[-2000:]
    text = assert_inert(out.stdout)
    assert "\\x1b" in text and "\\x00" in text
    assert_inert(out.stderr)
