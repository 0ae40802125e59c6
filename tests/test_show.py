"""``mtls-analyzer show CAPTURE --flow ID``: packets, Wireshark's handshake dissection (pyshark), both
engines' evidence side by side, ``--export`` of the flow's packets."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

import pytest

from paths import DEMO_CAPTURE as DEMO, REPO
pytestmark = [pytest.mark.tshark,
              pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")]
pytest.importorskip("pyshark")


def run(*args, env=None, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=180, cwd=cwd)


def tls_flow_id() -> int:
    from analyzer import analyze

    rows = analyze(DEMO, include_localhost=True).all_flow_rows
    return next(r["flow_id"] for r in rows if r["verdict"] == "tls" and r["server_port"] == 8080)


def test_show_tls_flow_with_export(tmp_path):
    fid = tls_flow_id()
    out = tmp_path / "flow.pcap"
    proc = run("show", DEMO, "--flow", fid, "--export", out)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith(f"flow {fid} of demo-transparent.pcapng: 10.244.0.10:")
    assert "== evidence, native engine vs Wireshark (tshark engine)" in text
    evidence = text.split("== packets")[0]
    assert [line.split()[-1] for line in evidence.splitlines() if line.startswith(("verdict ", "evidence ", "sni "))] == ["yes"] * 3
    assert "Handshake Type: Client Hello (1)" in text and "Handshake Type: Server Hello (2)" in text
    assert "Server Name: voting.emojivoto.serviceaccount.identity.linkerd.cluster.local" in text
    packets = [line for line in text.split("== packets")[1].split("== frame")[0].splitlines()[2:] if line.strip()]
    assert len(packets) >= 10 and "c->s" in packets[0] and "S" in packets[0]
    assert f"exported {len(packets)} packets to {out}" in text
    info = subprocess.run(["capinfos", "-c", "-M", str(out)], capture_output=True, text=True, check=True).stdout
    assert f"Number of packets:   {len(packets)}" in info or f"Number of packets:\t{len(packets)}" in info or \
        str(len(packets)) in info.split("Number of packets:")[1].split()[0]


def test_show_plaintext_flow_dissects_first_payload():
    from analyzer import analyze

    rows = analyze(DEMO).flow_rows
    fid = next(r["flow_id"] for r in rows if r["reason"].startswith("HTTP/1.x request GET /metrics"))
    proc = run("show", DEMO, "--flow", fid)
    assert proc.returncode == 0, proc.stderr
    assert "Layer HTTP" in proc.stdout and "GET /metrics" in proc.stdout


def test_show_unknown_flow_id_is_one_error_line():
    proc = run("show", DEMO, "--flow", 99999)
    assert proc.returncode == 2
    assert "no flow 99999" in proc.stderr and "Traceback" not in proc.stderr


def test_drilldown_inside_a_running_event_loop():
    """Jupyter runs an asyncio loop; the drill-down must not call run_until_complete on it."""
    from analyzer.engines.drilldown import drilldown

    async def notebook_cell():
        return drilldown(str(DEMO), tls_flow_id(), max_packets=5)

    dd = asyncio.run(notebook_cell())
    assert len(dd.packets) == 5 and dd.truncated and dd.tshark is not None
    assert dd.native["verdict"] == dd.tshark["verdict"] == "tls"


def test_flow_filter_selects_exactly_the_flow():
    from analyzer import analyze
    from analyzer.engines.drilldown import flow_filter

    row = next(r for r in analyze(DEMO).flow_rows if r["verdict"] == "tls")
    flt = flow_filter(row)
    out = subprocess.run(["tshark", "-n", "-r", str(DEMO), "-Y", flt, "-T", "fields", "-e", "tcp.stream"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(set(out)) == 1 and len(out) == row["packets_c2s"] + row["packets_s2c"]
