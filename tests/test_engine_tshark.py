"""The tshark engine: same schema as the native engine, same verdicts on every bundled capture,
and every corpus disagreement explained in ``tests/data/engine_disagreements.csv``."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys

import pytest

from analyzer.api import analyze
from analyzer.engines import tshark as engine
from analyzer.engines.compare import COMPARED, agreement, disagreements
from analyzer.errors import BackendUnavailable
from analyzer.report.schema import FLOW_COLUMNS, FLOW_NAMES

from paths import CORPUS, REPO
BUNDLED = sorted((REPO / "captures").glob("*.pcapng"))
CORPUS_FILES = CORPUS / "files"
DISAGREEMENTS = REPO / "tests" / "data" / "engine_disagreements.csv"

pytestmark = pytest.mark.tshark
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


@needs_tshark
@pytest.mark.parametrize("capture", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_engines_agree_on_every_flow_of_bundled_captures(capture):
    native = analyze(capture, include_localhost=True).all_flow_rows
    tshark = analyze(capture, include_localhost=True, engine="tshark").all_flow_rows
    assert native, "a bundled capture with no flow"
    counts = agreement(native, tshark)
    assert counts["agree"] == len(native) == len(tshark), (counts, disagreements(native, tshark)[:5])


@needs_tshark
def test_rows_have_exactly_the_schema_columns_and_build_a_frame():
    report = analyze(REPO / "captures" / "demo-transparent.pcapng", engine="tshark")
    assert report.flow_rows and all(tuple(r) == FLOW_NAMES for r in report.all_flow_rows)
    df = report.flows
    assert list(df.columns) == list(FLOW_NAMES)
    assert {str(df[c.name].dtype) for c in FLOW_COLUMNS if c.dtype == "category"} == {"category"}
    tls = [r for r in report.flow_rows if r["verdict"] == "tls"]
    assert tls and all(r["evidence"] == "handshake" and r["tls_version"] == "TLS 1.3" and r["mesh"] for r in tls)
    assert all(r["reason"].startswith("Wireshark: ClientHello SNI voting.emojivoto.serviceaccount") for r in tls)
    assert report.stats["engine"].startswith("tshark ")


@needs_tshark
def test_snaplen_cut_hellos_are_tls_records_not_plaintext():
    report = analyze(REPO / "captures" / "snaplen96-transparent.pcapng", engine="tshark")
    on_8080 = [r for r in report.flow_rows if r["server_port"] == 8080 and r["client_ip"] != "10.244.0.1"]
    assert on_8080 and {(r["verdict"], r["evidence"]) for r in on_8080} == {("tls", "records")}


@needs_tshark
def test_engine_rows_match_the_lab_expected_edges():
    from analyzer.lab.expect import compare, edges_path, read_edges

    for capture in BUNDLED:
        rows = analyze(capture, engine="tshark").flow_rows
        assert not compare(rows, read_edges(edges_path(capture))), capture.name


def test_command_is_one_streaming_fields_pass_with_n_heuristics_and_decode_as():
    fake = engine.TShark("/usr/bin/tshark", (4, 0, 17))
    cmd = engine.command(fake, "x.pcapng", ["tcp.port==8080,ssl", "tcp.port==9000-9002,tls"])
    assert cmd[:4] == ["/usr/bin/tshark", "-n", "-r", "x.pcapng"]
    assert "fields" in cmd and "--enable-heuristic" in cmd and cmd[cmd.index("--enable-heuristic") + 1] == "tls_tcp"
    assert "tcp.try_heuristic_first:TRUE" in cmd
    assert ["-d", "tcp.port==8080,tls"] == cmd[cmd.index("-d"):cmd.index("-d") + 2]
    assert "tcp.port==9000-9002,tls" in cmd
    assert [cmd[i + 1] for i, x in enumerate(cmd) if x == "-e"] == list(engine.FIELD_MAP.values())


def test_bad_decode_as_is_an_input_error():
    from analyzer.errors import AnalyzerError

    with pytest.raises(AnalyzerError, match="decode-as"):
        engine.decode_as_args(["udp.port==53,dns"])


@needs_tshark
def test_decode_as_reaches_tshark(tmp_path):
    # The h2c flows on 4567 are plaintext: a --decode-as that calls 4567 TLS changes the hint, not the verdict.
    report = analyze(REPO / "captures" / "demo-transparent.pcapng", engine="tshark", decode_as=["tcp.port==4567,tls"])
    rows = [r for r in report.flow_rows if r["server_port"] == 4567]
    assert rows and all(r["verdict"] == "plaintext" and r["hint_conflict"] for r in rows)


def test_tshark_missing_raises_backend_unavailable(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("TSHARK", raising=False)
    with pytest.raises(BackendUnavailable, match="tshark not found.*apt-get install tshark"):
        engine.find_tshark()


def test_tshark_too_old_is_refused(tmp_path):
    old = tmp_path / "tshark"
    old.write_text("#!/bin/sh\necho 'TShark (Wireshark) 2.6.10 (Git v2.6.10)'\n")
    old.chmod(0o755)
    with pytest.raises(BackendUnavailable, match="too old"):
        engine.find_tshark(str(old))


def test_cli_engine_tshark_without_tshark_is_one_error_line(tmp_path):
    env = {**os.environ, "PATH": "/nonexistent", "PYTHONPATH": str(REPO)}
    env.pop("TSHARK", None)
    proc = subprocess.run([sys.executable, "-m", "analyzer", "analyze", "--engine", "tshark",
                           str(REPO / "captures" / "demo-transparent.pcapng")], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "tshark not found" in lines[0] and "apt-get install tshark" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@needs_tshark
def test_cli_engine_both_and_compare(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    demo = str(REPO / "captures" / "demo-transparent.pcapng")
    proc = subprocess.run([sys.executable, "-m", "analyzer", "analyze", "--engine", "both", demo], capture_output=True,
                          text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "engines: 64 of 64 paired flows agree, 0 disagree" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "analyzer", "analyze", "--engine", "tshark", "--view", "flows",
                           "--format", "csv", "-q", demo], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0].split(",") == list(FLOW_NAMES)


@needs_tshark
def test_compare_lists_a_disagreement_with_both_reasons(tmp_path):
    rdp = CORPUS_FILES / "ndpi__rdp_over_tls.pcap"
    if not rdp.exists():
        pytest.skip("no corpus (--corpus DIR or MTLS_CORPUS)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "analyzer", "compare", "--format", "csv", str(rdp)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    rows = list(csv.DictReader(proc.stdout.splitlines()))
    assert len(rows) == 1 and rows[0]["native"].startswith("tls/handshake") and rows[0]["tshark"].startswith("plaintext")
    assert rows[0]["native_reason"] and rows[0]["tshark_reason"].startswith("Wireshark")


def _explained() -> dict[tuple, dict]:
    with DISAGREEMENTS.open(newline="") as h:
        return {(r["file"], r["client_ip"], int(r["client_port"]), r["server_ip"], int(r["server_port"]), r["columns"]): r
                for r in csv.DictReader(h)}


def test_disagreement_file_is_complete_prose():
    rows = _explained()
    assert rows
    for row in rows.values():
        assert row["right"] in ("native", "tshark", "both") and len(row["explanation"]) > 80, row


@needs_tshark
@pytest.mark.corpus
def test_every_corpus_disagreement_is_explained():
    if not CORPUS_FILES.is_dir():
        pytest.skip("no corpus (--corpus DIR or MTLS_CORPUS)")
    explained = _explained()
    seen = set()
    unexplained = []
    total = {"paired": 0, "agree": 0}
    for path in sorted(CORPUS_FILES.iterdir()):
        native = analyze(path, include_localhost=True).all_flow_rows
        tshark = analyze(path, include_localhost=True, engine="tshark").all_flow_rows
        counts = agreement(native, tshark)
        total["paired"] += counts["paired"]
        total["agree"] += counts["agree"]
        for d in disagreements(native, tshark, COMPARED):
            key = (path.name, d["client_ip"], int(d["client_port"]), d["server_ip"], int(d["server_port"]), d["columns"])
            if key in explained:
                seen.add(key)
            else:
                unexplained.append(f"{key}: native {d['native']} ({d['native_reason']}) | tshark {d['tshark']} "
                                   f"({d['tshark_reason']})")
    assert not unexplained, "explain these in tests/data/engine_disagreements.csv:\n" + "\n".join(unexplained)
    stale = set(explained) - seen
    assert not stale, f"the engines agree now; remove these rows from engine_disagreements.csv: {sorted(stale)}"
    assert total["agree"] >= total["paired"] - len(explained)
