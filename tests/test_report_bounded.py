"""``report --json`` is written as it is made: the same text as ``json.dump`` of the whole document, with
the flows made again from the report's rows as they are written, never all held.

The text is compared with ``json.dump`` of the document built as a list, on every bundled capture and on
the hostile-strings capture (control characters, newlines, invalid UTF-8 in every column a person reads),
with the rows in memory and with the rows compressed (``report.rowstore``, as past 20,000 flows).  The
memory test runs a 22,000-flow capture through the report and fails when what it needs grows with the
flows again.
"""

from __future__ import annotations

import importlib.util
import json
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest

import hostile_case
from analyzer import analyze
from analyzer.report import rowstore
from analyzer.report.audit import DocumentFlows, build_audit, json_schema
from analyzer.report.export import load_report_json, write_report_json
from analyzer.report.html import render_html, write_html
from paths import CAPTURES, DEMO_PODS, REPO

BUNDLED = sorted(p.name.removesuffix(".pcapng") for p in CAPTURES.glob("*.pcapng"))
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

_spec = importlib.util.spec_from_file_location("hostile", REPO / "benchmarks" / "hostile.py")
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


def old_writer(doc: dict, path: Path) -> None:
    """How the report JSON was written before it was streamed: the whole document at once."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def both_documents(capture: Path, pods: Path, resource: str = "pod") -> tuple[dict, dict]:
    """(the document with its flows in a list, the document as ``report`` writes it)."""
    report = analyze(capture, pods=pods)
    kw = dict(resource=resource, fail_on=["unexpected-plaintext"], generated_at=WHEN, command=["mtls-analyzer", "x"])
    return build_audit(report, [capture], pods, **kw), build_audit(report, [capture], pods, streamed=True, **kw)


def compact_rows(monkeypatch) -> None:
    """Keep the rows of any capture compressed, in many chunks, as past ``rowstore.IN_MEMORY`` flows."""
    monkeypatch.setattr(rowstore, "IN_MEMORY", 4)
    monkeypatch.setattr(rowstore, "CHUNK", 3)


# -- the same text --------------------------------------------------------------------------------------
@pytest.mark.parametrize("compact", [False, True], ids=["rows", "compressed"])
@pytest.mark.parametrize("name", BUNDLED)
def test_the_streamed_document_is_the_text_json_dump_wrote(name, compact, monkeypatch, tmp_path):
    if compact:
        compact_rows(monkeypatch)
    listed, streamed = both_documents(CAPTURES / f"{name}.pcapng", CAPTURES / f"{name}.pods.json",
                                      "deployment" if compact else "pod")
    assert isinstance(streamed["flows"], DocumentFlows) and isinstance(listed["flows"], list)
    assert len(listed["flows"]) > 0
    old_writer(listed, tmp_path / "old.json")
    write_report_json(streamed, tmp_path / "new.json")
    assert (tmp_path / "new.json").read_bytes() == (tmp_path / "old.json").read_bytes()
    assert render_html(streamed) == render_html(listed)
    assert list(streamed["flows"]) == listed["flows"] and streamed["flows"][-1] == listed["flows"][-1]


@pytest.mark.parametrize("compact", [False, True], ids=["rows", "compressed"])
def test_hostile_strings_stream_to_the_same_text(compact, monkeypatch, tmp_path):
    """Newlines, control characters and invalid UTF-8 from the wire and the pod list: ``json`` escapes
    them inside strings, so indenting a row by its depth cannot touch them."""
    if compact:
        compact_rows(monkeypatch)
    capture, pods = hostile_case.write_case(tmp_path)
    listed, streamed = both_documents(capture, pods)
    old_writer(listed, tmp_path / "old.json")
    write_report_json(streamed, tmp_path / "new.json")
    assert (tmp_path / "new.json").read_bytes() == (tmp_path / "old.json").read_bytes()
    text = (tmp_path / "new.json").read_text(encoding="utf-8")
    assert all(escaped in text for escaped in ("\\r\\n", "\\u001b", "\\u0000", "\u202e", "\x9b"))


def test_empty_arrays_and_the_schema(tmp_path):
    """A capture without TCP: empty edges and flows are ``[]`` as json writes them; the file loads and
    follows ``docs/report.schema.json``."""
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))  # a pcap header only
    listed, streamed = both_documents(empty, DEMO_PODS)
    assert streamed["flows"] == [] and streamed["edges"] == []
    old_writer(listed, tmp_path / "old.json")
    write_report_json(streamed, tmp_path / "new.json")
    text = (tmp_path / "new.json").read_text()
    assert text == (tmp_path / "old.json").read_text() and '"flows": []' in text
    doc = load_report_json(tmp_path / "new.json")
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (installed with nbformat, extra 'report')")
    jsonschema.validate(doc, json_schema())


# -- bounded memory -------------------------------------------------------------------------------------
FLOWS = 22_000
CLIENTS = [bytes((10, 244, 0, x)) for x in (10, 13, 16, 14)]  # web, vote-bot, legacy, prometheus (demo pods)
VOTING = bytes((10, 244, 0, 12))
REQUEST = b"GET / HTTP/1.1\r\nHost: voting\r\n\r\n"
RST = 0x04  # TCP RST, RFC 9293 3.1: the connection is closed
# tracemalloc peak of build + JSON + page for these 22,000 flows: 63 MiB when the document holds its flows
# as a list of dicts (the writer before this one copied them twice more: 86 MiB for 25,000 flows); 25 MiB
# streamed, most of it the page's 4,000 listed flows (grouping the flows into edges keeps ~0.5 KiB a flow).
LIMIT_MIB = 40


def many_flows(path: Path, n: int) -> Path:
    """``n`` plaintext HTTP connections (SYN, request, RST) from four demo pods to voting :8080: ``n``
    flows on four edges, at a time the demo pods held their IPs."""
    with open(path, "wb") as f:
        f.write(hostile.PCAP_HEADER)
        for i in range(n):
            src, sport = CLIENTS[i % 4], 10_000 + i // 4
            packets = ((1000, hostile.SYN, b""), (1001, hostile.ACK | hostile.PSH, REQUEST),
                       (1001 + len(REQUEST), RST, b""))
            for k, (seq, flags, data) in enumerate(packets):
                frame = hostile.ETH + hostile.tcp(src, sport, VOTING, 8080, seq, 0, flags, data)
                usec = (3 * i + k) * 100
                f.write(hostile.RECORD.pack(1_796_000_000 + usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
                        + frame)
    return path


def test_the_report_of_many_flows_is_written_in_bounded_memory(tmp_path):
    capture = many_flows(tmp_path / "many.pcap", FLOWS)
    report = analyze(capture, pods=DEMO_PODS)
    assert isinstance(report.all_flow_rows, rowstore.RowStore) and report.all_flow_rows.compact
    tracemalloc.start()
    try:
        doc = build_audit(report, [capture], DEMO_PODS, streamed=True)
        write_report_json(doc, tmp_path / "r.json")
        write_html(doc, tmp_path / "r.html")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak < LIMIT_MIB, f"the report of {FLOWS} flows needed {peak:.0f} MiB (limit {LIMIT_MIB})"
    written = load_report_json(tmp_path / "r.json")
    assert written["summary"]["flows"] == len(written["flows"]) == FLOWS
    assert [f["flow_id"] for f in written["flows"]] == sorted(f["flow_id"] for f in written["flows"])
    assert {f["verdict"] for f in written["flows"]} == {"plaintext"}
    edges = {e["src"].split("-")[0]: e for e in written["edges"]}
    assert {k: (e["status"], e["flows"], len(e["flow_ids"])) for k, e in edges.items()} == {
        "web": ("PLAINTEXT-UNEXPECTED", FLOWS // 4, FLOWS // 4),
        "vote": ("PLAINTEXT-UNEXPECTED", FLOWS // 4, FLOWS // 4),
        "prometheus": ("PLAINTEXT-UNEXPECTED", FLOWS // 4, FLOWS // 4),
        "legacy": ("plaintext-expected", FLOWS // 4, FLOWS // 4),
    }
    page = (tmp_path / "r.html").read_text()
    assert f"lists 4000 of {FLOWS} flows" in page and page.count('<tr id="flow-') == 4000
    # ``diff`` reads the edges, not the flows: what loading needs does not grow with them.
    tracemalloc.start()
    try:
        edges_only = load_report_json(tmp_path / "r.json", skip=("flows",))
        skipped_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        load_report_json(tmp_path / "r.json")
        whole_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert edges_only["flows"] == [] and edges_only["edges"] == written["edges"]
    assert skipped_peak * 10 < whole_peak, (skipped_peak, whole_peak)
