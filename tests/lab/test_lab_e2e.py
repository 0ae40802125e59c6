"""End to end as root: lab up -> live mTLS checks -> capture while traffic flows -> lab down, then the
fresh capture is checked with tshark and with the analyzer against the lab's expected edges.

Skipped (with the reason) only without root or network namespaces. ~25 s on 2 cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.lab import control, netns
from analyzer.lab.expect import compare, edges_path, read_edges
from analyzer.lab.verify import render, verify

pytestmark = [pytest.mark.root, pytest.mark.tshark]
PROBE = Path(__file__).with_name("tls_client_probe.py")


@pytest.fixture(scope="module")
def lab(netns_ok, tmp_path_factory):
    state = tmp_path_factory.mktemp("mtlslab-state")
    control.up(state, "transparent", lifetime_s=300)
    yield state
    control.down(state)


def test_status_lists_the_pods(lab):
    info = control.status(lab)
    assert info["mode"] == "transparent"
    assert {p["key"] for p in info["pods"]} >= {"web", "emoji", "voting", "vote-bot", "legacy", "coredns"}
    assert sum("analyzer.lab.agent proxy" in p["cmdline"] for p in info["processes"]) == 5


def test_live_mtls_is_mutual_and_tls13(lab):
    lab_model = control.load(lab)
    voting = lab_model.pod("voting")
    proc = subprocess.run(["ip", "netns", "exec", lab_model.pod("legacy").netns, sys.executable, str(PROBE),
                           str(lab / "certs"), voting.ip, "8080", voting.identity, "web"],
                          capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(proc.stdout)
    assert result["with_cert"]["ok"] and result["with_cert"]["version"] == "TLSv1.3", result
    assert result["with_cert"]["first"].startswith("HTTP/1.1 200"), result
    assert not result["without_cert"]["ok"], result
    assert not result["tls12_only"]["ok"], result


def test_capture_matches_expected_edges(lab, tmp_path):
    out = tmp_path / "voting.pcapng"
    result = control.capture(lab, out, "voting", seconds=5, sll2=True)
    assert all(d.get("failed") == 0 and d.get("rounds", 0) >= 1 for d in result.drivers), result.drivers
    report = verify(out, edges_path(out), edges_path(out, "expected-localhost"))
    assert report.ok, render(report)
    analyze = pytest.importorskip("analyzer").analyze
    problems = compare(analyze(str(out)).flows.to_dict("records"), read_edges(edges_path(out)))
    assert not problems, "\n".join(problems)


def test_capture_of_an_unknown_pod_is_one_error_line(lab, tmp_path):
    from click.testing import CliRunner

    from analyzer.lab.cli import lab as lab_group

    result = CliRunner().invoke(lab_group, ["capture", "--state", str(lab), "--pod", "nosuch",
                                            "-o", str(tmp_path / "x.pcapng")])
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith("Error: no pod 'nosuch'; pods: ") and "voting" in line


def test_midconn_capture(lab, tmp_path):
    out = tmp_path / "midconn.pcapng"
    control.capture(lab, out, "voting", seconds=3, scenario="midconn")
    report = verify(out, edges_path(out), edges_path(out, "expected-localhost"))
    assert report.ok, render(report)
    assert all(edge.handshakes == 0 for edge in report.edges)


def test_capture_echoes_what_it_ran_for_the_time_asked(lab, tmp_path):
    """``lab capture --seconds 3``: the command shown is the one that ran (no hidden ``-a duration``), and
    the file spans the 3 s of traffic plus the tail, not a minute."""
    import re

    from click.testing import CliRunner

    from analyzer.lab.cli import lab as lab_group

    out = tmp_path / "web.pcapng"
    result = CliRunner().invoke(lab_group, ["capture", "--state", str(lab), "--pod", "web", "--seconds", "3",
                                            "-o", str(out)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert re.fullmatch(rf"captured \d+ bytes in [\d.]+ s \(3 s of traffic, then {control.TAIL_S:g} s for the last "
                        rf"closes\): ip netns exec \S+ tshark -i any -w {re.escape(str(out))}", first), first
    info = subprocess.run(["capinfos", "-u", "-M", str(out)], capture_output=True, text=True, check=True).stdout
    span = float(re.search(r"Capture duration:\s+([\d.]+) seconds", info)[1])
    assert 2 <= span <= 3 + control.TAIL_S + 2, info  # first to last packet: within the traffic and its tail


def test_transport_header_mode_then_down(netns_ok, tmp_path):
    state = tmp_path / "state"
    try:
        control.up(state, "transport-header", lifetime_s=300)
        out = tmp_path / "web.pcapng"
        control.capture(state, out, "web", seconds=4)
        report = verify(out, edges_path(out), edges_path(out, "expected-localhost"))
        assert report.ok, render(report)
        secured = [e for e in report.edges if e.expected["status"] == "secured" and e.key[2] == 4143]
        assert secured and all(e.alpn == {"transport.l5d.io/v1"} for e in secured)
    finally:
        control.down(state)
    assert netns.lab_namespaces() == []
    assert control.down(state)["namespaces"] == []  # idempotent

