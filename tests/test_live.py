"""``mtls-analyzer capture``: live capture in a lab pod's network namespace, stopped by time, by packet
count and by SIGINT; the file is complete for capinfos and the verdicts match the lab's wiring.

The lab parts need root and network namespaces (skipped otherwise, with the reason) and hold the
machine's lab lock (/tmp/mtlslab.lock).  Traffic is the lab's own bounded drivers, inside its namespaces.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labutil import capinfos_packets, lab_unavailable, running_lab, wait_for_file

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "captures" / "demo-transparent.pcapng"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


# -- no root needed ---------------------------------------------------------------------------------
def test_incremental_pcapng_reader_matches_the_file_reader():
    """The live tail parser, fed in awkward chunks, yields the same frames as capture.reader."""
    from analyzer.capture.reader import CaptureReader
    from analyzer.live import PcapngBlocks

    data = DEMO.read_bytes()
    with CaptureReader(str(DEMO)) as r:
        expected = [(round(f[0], 6), f[1], f[3], f[4], bytes(buf[f[2]:f[2] + f[3]])) for buf, fr in r.iter_batches() for f in fr]
    blocks, got = PcapngBlocks(), []
    for i in range(0, len(data), 777):
        buf, frames = blocks.feed(data[i:i + 777])
        got += [(round(f[0], 6), f[1], f[3], f[4], bytes(buf[f[2]:f[2] + f[3]])) for f in frames]
    assert got == expected and blocks.frames == len(expected) and not blocks.bad


def test_tap_line():
    from analyzer.live import tap_line

    row = {"flow_id": 7, "client_ip": "10.4.0.15", "client_port": 54740, "server_ip": "10.4.0.17", "server_port": 4143,
           "verdict": "tls", "sni": "web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
           "tls_version": "TLS 1.3", "evidence": "handshake", "localhost": False}
    assert tap_line(row, frozenset({"10.4.0.17"})) == (
        "flow id=7 proxy=in src=10.4.0.15:54740 dst=10.4.0.17:4143 tls=true "
        "sni=web.emojivoto.serviceaccount.identity.linkerd.cluster.local version=TLS1.3 evidence=handshake")
    assert " proxy=out " in tap_line(row, frozenset({"10.4.0.15"}))


def test_ring_files_are_found_in_order(tmp_path):
    from analyzer.live import ring_files_of

    for name in ("x_00002_20260101000001.pcapng", "x_00001_20260101000000.pcapng", "y_00001_1.pcapng", "x.pcapng"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in ring_files_of(tmp_path / "x.pcapng")] == [
        "x_00001_20260101000000.pcapng", "x_00002_20260101000001.pcapng"]


def test_capture_without_dumpcap_or_tshark_is_one_clear_line(tmp_path):
    env = {**ENV, "PATH": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-m", "analyzer", "capture", "--seconds", "1", "-w", str(tmp_path / "x.pcapng")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["Error: neither dumpcap nor tshark is installed: `apt-get install tshark` (Debian/Ubuntu, as in linkerd-debug)"]


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the capture is permitted")
def test_capture_without_permission_names_the_capability(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analyzer", "capture", "-i", "lo", "--seconds", "1", "-w",
                           str(tmp_path / "x.pcapng")], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 2 and "CAP_NET_RAW" in proc.stderr, proc.stderr


# -- in the lab (root) ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("mtlslab-live")
    with running_lab(state) as model:
        yield state, model


def _start(model, pod: str, *args) -> subprocess.Popen:
    ns = model.pod(pod).netns
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "analyzer", "capture", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _traffic(state, tmp_path, pod: str, seconds: float = 3):
    """The lab's bounded drivers (and its own reference tshark) for `seconds`; returns the reference capture."""
    from analyzer.lab import control

    ref = tmp_path / "reference.pcapng"
    result = control.capture(state, ref, pod, seconds=seconds)
    assert all(d.get("failed") == 0 and d.get("rounds", 0) >= 1 for d in result.drivers), result.drivers
    return ref


def _check_verdicts(csv_text: str, ref: Path) -> list[dict]:
    from analyzer.lab.expect import compare, edges_path, read_edges

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    for r in rows:
        r["localhost"] = r["localhost"] == "True"
    assert rows
    problems = compare(rows, read_edges(edges_path(ref)))
    assert not problems, "\n".join(problems)
    return rows


@pytest.mark.root
def test_capture_in_a_pod_stops_by_time(lab, tmp_path):
    state, model = lab
    out = tmp_path / "live.pcapng"
    proc = _start(model, "voting", "--seconds", 12, "-w", out, "--follow", "--view", "flows", "--format", "csv")
    wait_for_file(out, proc)
    ref = _traffic(state, tmp_path, "voting")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "capture stopped by seconds" in stderr
    follow, _, table = stdout.partition("\n\n")
    lines = follow.splitlines()
    assert lines and all(line.startswith("flow id=") for line in lines)
    voting = model.pod("voting")
    mtls = [line for line in lines if f"dst={voting.ip}:8080" in line and "tls=true" in line]
    assert mtls and all(f"sni={voting.identity}" in line and " proxy=in " in line and "evidence=handshake" in line
                        for line in mtls), lines
    assert any("tls=false" in line and ":4567 " in line for line in lines)
    rows = _check_verdicts(table, ref)
    assert capinfos_packets(out) > 0
    assert len({r["flow_id"] for r in rows}) == len(rows)


@pytest.mark.root
def test_capture_in_a_pod_stops_by_sigint(lab, tmp_path):
    state, model = lab
    out = tmp_path / "live.pcapng"
    proc = _start(model, "web", "--seconds", 120, "-w", out, "--view", "flows", "--format", "csv", "--engine", "tshark")
    wait_for_file(out, proc)
    ref = _traffic(state, tmp_path, "web", seconds=2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "capture stopped by signal" in stderr
    _check_verdicts(stdout, ref)
    assert capinfos_packets(out) > 0


@pytest.mark.root
def test_capture_stops_by_packet_count_with_a_ring_buffer(lab, tmp_path):
    state, model = lab
    out = tmp_path / "ring.pcapng"
    proc = _start(model, "voting", "--packets", 200, "--seconds", 60, "--ring-mb", 1, "--ring-files", 3, "-w", out,
                  "-q", "--format", "csv", "--view", "flows")
    deadline_files = []
    for _ in range(400):
        from analyzer.live import ring_files_of

        deadline_files = ring_files_of(out)
        if deadline_files or proc.poll() is not None:
            break
        import time

        time.sleep(0.05)
    assert deadline_files, proc.communicate()
    _traffic(state, tmp_path, "voting", seconds=2)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    from analyzer.live import ring_files_of

    files = ring_files_of(out)
    assert files and sum(capinfos_packets(p) for p in files) == 200
    assert stdout.startswith("capture,flow_id,")
