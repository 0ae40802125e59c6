"""Exports: JSON Lines, Parquet (pyarrow optional), the report JSON; and their CLI entry points."""

from __future__ import annotations

import builtins
import json

import pytest

from analyzer import analyze
from analyzer.errors import AnalyzerError, BackendUnavailable
from analyzer.report import export
from analyzer.report.audit import REPORT_SCHEMA_VERSION, build_audit
from analyzer.report.schema import EDGE_COLUMNS, FLOW_COLUMNS, FLOW_NAMES

import report_case as rc

from paths import DEMO_CAPTURE as DEMO, DEMO_PODS, REPO


@pytest.fixture(scope="module")
def report():
    return analyze(DEMO, pods=DEMO_PODS)


def test_jsonl_is_one_object_per_flow_with_iso_times(report):
    lines = list(export.iter_jsonl(report.flow_rows, FLOW_NAMES))
    assert len(lines) == len(report.flow_rows) and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    first = json.loads(lines[0])
    assert list(first) == list(FLOW_NAMES)
    assert first["first_ts"].endswith("Z") and first["flow_id"] == report.flow_rows[0]["flow_id"]


def test_parquet_keeps_dtypes_and_descriptions(report, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow not installed (extra 'report')")
    import pandas as pd

    for name, rows, columns in (("flows", report.flow_rows, FLOW_COLUMNS), ("edges", report.edge_rows, EDGE_COLUMNS)):
        path = tmp_path / f"{name}.parquet"
        export.write_parquet(rows, columns, path, name)
        table = pq.read_table(path)
        assert table.schema.names == [c.name for c in columns]
        assert table.schema.field(columns[1].name).metadata[b"description"] == columns[1].description.encode()
        assert table.schema.metadata[b"mtls_analyzer.view"] == name.encode()
        back = pd.read_parquet(path)
        assert len(back) == len(rows)
        for c in columns:
            assert str(back[c.name].dtype) == c.dtype, c.name


def test_parquet_without_pyarrow_says_what_to_install(report, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(BackendUnavailable, match=r"pyarrow.*mtls-analyzer\[report\]"):
        export.write_parquet(report.flow_rows, FLOW_COLUMNS, tmp_path / "x.parquet")


def test_analyze_format_jsonl_and_parquet(cli, tmp_path):
    out = cli("analyze", DEMO, "--view", "flows", "--format", "jsonl", "-q")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert rows and {r["verdict"] for r in rows} == {"tls", "plaintext"}
    out = cli("analyze", DEMO, "--format", "parquet", "-q")
    assert out.returncode == 2 and b"give -o PATH" in out.stderr
    pytest.importorskip("pyarrow", reason="pyarrow not installed (extra 'report')")
    target = tmp_path / "edges.parquet"
    out = cli("analyze", DEMO, "--pods", DEMO_PODS, "--view", "edges", "--format", "parquet", "-o", target, "-q")
    assert out.returncode == 0, out.stderr
    import pandas as pd

    assert set(pd.read_parquet(target)["status"]) == {"secured", "plaintext-expected", "PLAINTEXT-UNEXPECTED"}


# -- the report JSON ---------------------------------------------------------------------------------------
def test_report_json_round_trip(report, tmp_path):
    doc = build_audit(report, [DEMO], DEMO_PODS)
    path = tmp_path / "r.json"
    export.write_report_json(doc, path)
    assert export.load_report_json(path) == doc


@pytest.mark.parametrize("content, message", [
    ("not json", "not valid JSON"),
    ('{"schema": "something-else"}', "not an mtls-analyzer report"),
    ('{"schema": "mtls-analyzer/report", "schema_version": 99, "edges": []}', "version 99"),
    ('{"schema": "mtls-analyzer/report", "schema_version": %d}' % REPORT_SCHEMA_VERSION, "no edges"),
])
def test_bad_report_json_is_refused(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(AnalyzerError, match=message):
        export.load_report_json(path)


def test_report_command_writes_html_and_json(cli, tmp_path):
    capture, pods = rc.write_case(tmp_path / "in")
    out = cli("report", capture, "--pods", pods, "-o", tmp_path / "r.html", "--json", tmp_path / "r.json")
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["tool"]["command"][:2] == ["mtls-analyzer", "report"] and doc["policy"]["result"] == "none"
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert b"policy: none" in out.stderr


def test_report_command_policy_gate_exits_3_after_writing(cli, tmp_path):
    capture, pods = rc.write_case(tmp_path / "in")
    out = cli("report", capture, "--pods", pods, "-o", tmp_path / "r.html", "--fail-on", "unexpected-plaintext")
    assert out.returncode == 3 and (tmp_path / "r.html").exists()
    lines = out.stderr.decode().splitlines()
    head = "emojivoto/emoji-8b2-pqrst -> emojivoto/web-7c8-fghij :4567 (h2c)"  # the port, and what it carried
    assert lines[0] == f"NOT fully mTLS: 1 edge between meshed pods carries plaintext: {head}"
    assert lines[-1] == f"--fail-on unexpected-plaintext: 1 edge: {head}"  # a name, never an internal id
    html = (tmp_path / "r.html").read_text()
    assert "POLICY FAILED" in html
    assert f'<p id="headline"><strong>NOT fully mTLS: 1 edge between meshed pods carries plaintext: ' in html


@pytest.mark.parametrize("args, message", [
    (["--pods", "{pods}"], b"nothing to write"),
    (["-o", "x.html"], b"needs a pod list"),
    (["--pods", "{pods}", "--kubectl", "-o", "x.html"], b"needs a pod list"),
])
def test_report_command_usage_errors(cli, tmp_path, args, message):
    capture, pods = rc.write_case(tmp_path / "in")
    out = cli("report", capture, *[a.replace("{pods}", str(pods)) for a in args])
    assert out.returncode == 2 and message in out.stderr


def test_report_command_bad_pod_list_is_one_error_line(cli, tmp_path):
    capture, _ = rc.write_case(tmp_path / "in")
    bad = tmp_path / "pods.json"
    bad.write_text("{ not json")
    out = cli("report", capture, "--pods", bad, "-o", tmp_path / "r.html")
    assert out.returncode == 2 and out.stderr.decode().startswith("Error:") and b"Traceback" not in out.stderr


def test_json_schema_flag_prints_the_documented_schema(cli):
    out = cli("report", "--json-schema")
    assert out.returncode == 0
    assert out.stdout.decode() == (REPO / "docs" / "report.schema.json").read_text()


@pytest.mark.tshark
@pytest.mark.skipif(__import__("shutil").which("tshark") is None, reason="tshark not installed")
def test_report_with_the_tshark_engine_names_its_version(cli, tmp_path):
    out = cli("report", DEMO, "--pods", DEMO_PODS, "--engine", "tshark", "--json", tmp_path / "t.json", "-q")
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["tool"]["engine"] == "tshark" and doc["tool"]["tshark_version"].count(".") == 2
    assert doc["captures"][0]["packets"] > 0 and doc["captures"][0]["interfaces"][0]["linktype"] == 113
