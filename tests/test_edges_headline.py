"""The answer first: the headline, the worst-first order and gate lines that name only what trips them.

Captures come from ``pcapgen`` and pods from ``kube_builders``; each case runs the real pipeline (the
library and the CLI) and checks the exact line a person reads.
"""

from __future__ import annotations

import json

from analyzer import analyze
from analyzer.report.edges import headline, sort_edges
from kube_builders import NODE_IP, pod, write_pods
import pcapgen as pg
from test_edges_synthetic import IDENT, VOTING, edges_for, flow, run

WEB = pod("web", "10.42.0.13", sa="web")
EMOJI = pod("emoji", "10.42.0.14", sa="emoji")
DB = pod("db", "10.42.0.41", meshed=False)
SECURE = f"tls13:{IDENT('voting', 'emojivoto')}"


def every_status(tmp_path):
    """One edge of each status: secured, plaintext-expected, PLAINTEXT-UNEXPECTED, mixed, unverified."""
    return edges_for(tmp_path, [
        flow("10.42.0.13", "10.42.0.12", 8080, SECURE, at_s=0),       # web -> voting: secured
        flow("10.42.0.12", "10.42.0.41", 8080, "http", at_s=1),       # voting -> db: expected (db unmeshed)
        flow("10.42.0.14", "10.42.0.12", 8080, SECURE, at_s=2),       # emoji -> voting: mTLS on 8080 ...
        flow("10.42.0.14", "10.42.0.12", 4567, "http", at_s=3),       # ... and plaintext on a default skip port
        flow("10.42.0.13", "10.42.0.14", 8080, SECURE, at_s=4),       # web -> emoji: wrong SNI -> unverified ...
        flow("10.42.0.13", "10.42.0.14", 4191, "http", at_s=5),       # ... plus the admin port: mixed
        flow("10.42.0.41", "10.42.0.14", 9000, "syn", at_s=6),        # db -> emoji: no evidence: unverified
    ], [VOTING, WEB, EMOJI, DB])


def test_edges_are_worst_first(tmp_path):
    rows = every_status(tmp_path)
    assert [(r["src"], r["dst"], r["status"]) for r in rows] == [
        ("emoji", "voting", "PLAINTEXT-UNEXPECTED"),
        ("web", "emoji", "mixed"),
        ("db", "emoji", "unverified"),
        ("voting", "db", "plaintext-expected"),
        ("web", "voting", "secured"),
    ]
    assert sort_edges(list(reversed(rows))) == rows


def test_ports_columns_name_the_flows_behind_each_finding(tmp_path):
    rows = {(r["src"], r["dst"]): r for r in every_status(tmp_path)}
    emoji_voting = rows["emoji", "voting"]
    assert (emoji_voting["ports"], emoji_voting["unexpected_ports"], emoji_voting["plaintext_ports"],
            emoji_voting["unverified_ports"]) == ("4567,8080", "4567", "4567", "")
    assert rows["web", "emoji"]["unverified_ports"] == "8080" and rows["web", "emoji"]["plaintext_ports"] == "4191"


def test_headline_names_the_unexpected_plaintext_first(tmp_path):
    assert headline(every_status(tmp_path)) == (
        "NOT fully mTLS: 1 edge between meshed pods carries plaintext: emojivoto/emoji -> emojivoto/voting :4567 (http/1.1)")


def test_headline_when_only_unverified(tmp_path):
    rows = edges_for(tmp_path, [
        flow("10.42.0.13", "10.42.0.12", 8080, SECURE, at_s=0),
        flow("10.42.0.13", "10.42.0.14", 8080, SECURE, at_s=1),   # voting's identity sent to emoji
        flow("10.42.0.41", "10.42.0.14", 9000, "syn", at_s=2),
    ], [VOTING, WEB, EMOJI, DB])
    assert headline(rows) == ("mTLS not proven on 2 edges: emojivoto/db -> emojivoto/emoji :9000, ... (+1); "
                              "no plaintext between meshed pods")


def test_headline_when_every_meshed_edge_is_mtls(tmp_path):
    rows = edges_for(tmp_path, [
        flow("10.42.0.13", "10.42.0.12", 8080, SECURE, at_s=0),
        flow("10.42.0.13", "10.42.0.12", 8080, SECURE, at_s=1, sport=50001),
        flow("10.42.0.14", "10.42.0.12", 8080, SECURE, at_s=2),
        flow(NODE_IP, "10.42.0.12", 8080, "http", at_s=3),
        flow("10.42.0.12", "10.42.0.41", 8080, "http", at_s=4),
    ], [VOTING, WEB, EMOJI, DB])
    assert headline(rows) == ("mTLS on every meshed edge (2 edges, 3 TLS connections); 2 edges of expected "
                              "plaintext (probes, unmeshed or external peers)")


def test_headline_without_meshed_edges_or_flows(tmp_path):
    rows = edges_for(tmp_path, [flow("10.42.0.12", "10.42.0.41", 8080, "http")], [VOTING, DB])
    assert headline(rows) == ("No meshed edge in the captures; 1 edge of expected plaintext "
                              "(probes, unmeshed or external peers)")
    assert headline([]) == "No TCP flows to judge in the captures"


def test_headline_values_are_escaped(tmp_path):
    evil = pod("web\x1b[2J", "10.42.0.13", sa="web")
    edges_for(tmp_path, [flow("10.42.0.13", "10.42.0.12", 4567, "http")], [VOTING, evil])
    result = run("analyze", tmp_path / "capture.pcap", "--pods", tmp_path / "pods.json")
    first = result.stderr.splitlines()[0]
    assert first == ("NOT fully mTLS: 1 edge between meshed pods carries plaintext: "
                     "emojivoto/web\\x1b[2J -> emojivoto/voting :4567 (http/1.1)")


def test_cli_prints_the_headline_before_the_table_and_gates_name_only_tripping_ports(tmp_path):
    every_status(tmp_path)
    capture, pods = tmp_path / "capture.pcap", tmp_path / "pods.json"
    result = run("analyze", capture, "--pods", pods, "--fail-on", "unexpected-plaintext", "--fail-on", "unverified")
    assert result.returncode == 3
    err = result.stderr.splitlines()
    assert err[0] == ("NOT fully mTLS: 1 edge between meshed pods carries plaintext: "
                      "emojivoto/emoji -> emojivoto/voting :4567 (http/1.1)")
    assert err[-2:] == [
        "--fail-on unexpected-plaintext: 1 edge: emojivoto/emoji -> emojivoto/voting :4567 (http/1.1)",
        "--fail-on unverified: 2 edges: emojivoto/web -> emojivoto/emoji :8080, emojivoto/db -> emojivoto/emoji :9000",
    ]
    assert [line.split()[:2] for line in result.stdout.splitlines()[1:3]] == [["emojivoto/emoji", "emojivoto/voting"],
                                                                           ["emojivoto/web", "emojivoto/emoji"]]
    quiet = run("analyze", capture, "--pods", pods, "-q")
    assert quiet.stderr == ""


def test_report_json_and_html_carry_the_headline(tmp_path):
    every_status(tmp_path)
    out = run("report", tmp_path / "capture.pcap", "--pods", tmp_path / "pods.json", "--json", tmp_path / "r.json",
              "-o", tmp_path / "r.html")
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    line = ("NOT fully mTLS: 1 edge between meshed pods carries plaintext: emojivoto/emoji -> emojivoto/voting :4567 "
            "(http/1.1)")
    assert doc["headline"] == line and out.stderr.splitlines()[0] == line
    assert [e["status"] for e in doc["edges"]][0] == "PLAINTEXT-UNEXPECTED"
    html = (tmp_path / "r.html").read_text()
    assert html.index('<p id="headline">') < html.index('id="graph"')
    assert "emojivoto/emoji -&gt; emojivoto/voting :4567 (http/1.1)</strong>" in html
