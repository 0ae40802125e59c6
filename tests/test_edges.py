"""Edges on the bundled lab captures, compared exactly with the lab's expected edges.

``captures/<name>.expected-edges.csv`` is written by the lab from how it wired the traffic, never from an
analyzer (``analyzer/lab/topology.py``). Each capture is analysed with its ``<name>.pods.json`` and:

* per (client, server, port) - ``edge_rows(..., by_port=True)`` - every TCP row must match
  (namespace, pod, IP, port, verdict, status) and carry the expected Linkerd reason word in MSG;
* per pod pair (the default view), the status must be the one derived from the expected rows: any
  PLAINTEXT-UNEXPECTED wins, one status stays, several make ``mixed``;
* the rollups to deployments and namespaces add up.

UDP rows (``reason=udp``, DNS) are not compared: the analyzer's flows are TCP only, and its not-TCP
counters carry no ports to orient a datagram exchange; they are left out of the edges on purpose.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

from analyzer import analyze
from analyzer.kube import load_pods
from analyzer.report.edges import edge_status, summary
from analyzer.report.schema import EDGE_COLUMNS, EDGE_NAMES, EDGE_STATUSES

from paths import CAPTURES, DEMO_CAPTURE as DEMO, DEMO_PODS, REPO
NAMES = sorted(p.name.removesuffix(".expected-edges.csv") for p in CAPTURES.glob("*.expected-edges.csv"))
REASON_WORDS = {"kubelet_probe", "port_skipped", "no_tls_from_remote"}  # expected reasons that are MSG words


def expected(name: str) -> list[dict]:
    with (CAPTURES / f"{name}.expected-edges.csv").open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["reason"] != "udp"]


_cache: dict[str, object] = {}


def report(name: str):
    if name not in _cache:
        _cache[name] = analyze(CAPTURES / f"{name}.pcapng", pods=CAPTURES / f"{name}.pods.json")
    return _cache[name]


def observed_key(row: dict) -> tuple:
    src_pod = "node" if row["src_kind"] == "node" else row["src"]
    verdict = "tls" if row["tls"] == row["flows"] else "plaintext" if row["plaintext"] == row["flows"] else "mixed"
    return (row["src_ns"], src_pod, row["src_ips"], row["dst_ns"], row["dst"], row["dst_ips"], int(row["ports"]),
            verdict, row["status"])


def expected_key(row: dict) -> tuple:
    return (row["src_ns"], row["src_pod"], row["src_ip"], row["dst_ns"], row["dst_pod"], row["dst_ip"],
            int(row["dst_port"]), row["verdict"], row["status"])


def test_every_bundled_capture_is_covered():
    assert NAMES == ["demo-transparent", "midconn-snaplen96-transparent", "midconn-transparent", "node-transparent",
                     "sll2-transparent", "snaplen96-transparent", "transport-header"]


@pytest.mark.parametrize("name", NAMES)
def test_edges_per_port_match_the_lab_exactly(name):
    rows = report(name).edge_rows_by("pod", by_port=True)
    assert sorted(map(observed_key, rows)) == sorted(map(expected_key, expected(name)))


@pytest.mark.parametrize("name", NAMES)
def test_msg_carries_the_expected_linkerd_reason(name):
    rows = {(r["src_ips"], r["dst_ips"], int(r["ports"])): r for r in report(name).edge_rows_by("pod", by_port=True)}
    for exp in expected(name):
        row = rows[(exp["src_ip"], exp["dst_ip"], int(exp["dst_port"]))]
        if exp["reason"] in REASON_WORDS:
            assert row["msg"].startswith(exp["reason"] + " :"), (exp, row["msg"])
        else:
            assert exp["reason"] in ("mtls", "mtls_transport_header") and row["secured"], (exp, row)


@pytest.mark.parametrize("name", NAMES)
def test_pod_pair_status_is_derived_from_the_ports(name):
    want: dict[tuple, list[str]] = defaultdict(list)
    for exp in expected(name):
        want[(exp["src_ip"], exp["dst_ip"])].append(exp["status"])
    got = {(r["src_ips"], r["dst_ips"]): r["status"] for r in report(name).edge_rows}
    assert got == {k: edge_status(v) for k, v in want.items()}


def test_unexpected_plaintext_pair_is_never_hidden():
    """web -> voting mixes mTLS on 8080 and plaintext on skip port 4567: one row, both counted, flagged."""
    (row,) = [r for r in report("demo-transparent").edge_rows if r["src"].startswith("web-")]
    assert row["status"] == "PLAINTEXT-UNEXPECTED" and not row["secured"]
    assert row["tls"] == 10 and row["plaintext"] == 10 and row["unexpected"] == 10 and row["ports"] == "4567,8080"
    assert row["client"] == "web.emojivoto" and row["server"] == "voting.emojivoto" and row["mtls"] == "inferred"
    assert row["msg"] == "port_skipped :4567 (a default skip port of linkerd-init, not annotated; both pods meshed)"
    assert row["expected_server"] == "voting.emojivoto" and not row["identity_mismatch"]
    assert row["tls_versions"] == "TLS 1.3" and row["evidence"] == "handshake,payload"


def test_kubelet_probes_come_from_the_node():
    rows = [r for r in report("node-transparent").edge_rows if r["src_kind"] == "node"]
    assert len(rows) == 6 and {r["src"] for r in rows} == {"mtlslab-node"} and {r["src_ns"] for r in rows} == {""}
    assert {r["status"] for r in rows} == {"plaintext-expected"}
    assert all(r["msg"].startswith("kubelet_probe :") and r["src_meshed"] is False for r in rows)


def test_records_only_mtls_is_secured_with_the_identity_not_seen():
    (row,) = [r for r in report("midconn-transparent").edge_rows if r["src"].startswith("prometheus-8")]
    assert row["status"] == "secured" and row["evidence"] == "records" and row["server"] == ""
    assert row["msg"] == "identity_not_seen :4191 (TLS records between meshed pods, SNI not captured)"


def test_transport_header_mode_is_secured_on_4143():
    rows = report("transport-header").edge_rows_by("pod", by_port=True)
    assert {r["ports"] for r in rows if r["secured"]} == {"4143", "4191"}
    assert {r["server"] for r in rows if r["tls"]} == {"web.emojivoto", "emoji.emojivoto", "voting.emojivoto"}
    assert all(r["tls"] == 0 for r in rows if r["ports"] not in ("4143", "4191"))


def test_deployment_rollup():
    rep = report("node-transparent")
    pods = {(r["src"], r["dst"]): r for r in rep.edge_rows}
    deps = {(r["src"], r["dst"]): r for r in rep.edge_rows_by("deployment")}
    assert ("web", "voting") in deps and deps[("web", "voting")]["src_kind"] == "deployment"
    assert deps[("web", "voting")]["status"] == "PLAINTEXT-UNEXPECTED"
    assert deps[("mtlslab-node", "coredns")]["dst_kind"] == "deployment"
    # One replica per deployment in the lab: the rollup renames, it does not merge.
    assert len(deps) == len(pods) and sum(r["flows"] for r in deps.values()) == sum(r["flows"] for r in pods.values())


def test_namespace_rollup_status_comes_from_the_flows():
    rows = {(r["src"], r["dst"]): r for r in report("node-transparent").edge_rows_by("namespace")}
    emojivoto = rows[("emojivoto", "emojivoto")]
    assert emojivoto["src_kind"] == "namespace" and emojivoto["status"] == "PLAINTEXT-UNEXPECTED"
    assert rows[("linkerd-viz", "emojivoto")]["status"] == "secured"
    assert rows[("monitoring", "emojivoto")]["status"] == "plaintext-expected"
    assert rows[("mtlslab-node", "kube-system")]["status"] == "plaintext-expected"


def test_summary_line():
    assert summary(report("demo-transparent").edge_rows) == (
        "5 edges from 45 flows: PLAINTEXT-UNEXPECTED 1, plaintext-expected 3, secured 1")


# -- the DataFrame and the schema ------------------------------------------------------------------------
def test_edges_frame_has_the_schema_columns_and_dtypes():
    frame = report("demo-transparent").edges
    assert tuple(frame.columns) == EDGE_NAMES
    assert {c.name: str(frame[c.name].dtype) for c in EDGE_COLUMNS if c.dtype != "category"} == \
        {c.name: c.dtype for c in EDGE_COLUMNS if c.dtype != "category"}
    assert list(frame["mtls"].cat.categories) == ["proven", "inferred", "none", "unknown"]
    assert set(frame["status"]) <= set(EDGE_STATUSES)


def test_rows_have_exactly_the_schema_keys():
    for row in report("node-transparent").edge_rows:
        assert tuple(row) == EDGE_NAMES


def test_no_flows_give_an_empty_frame_with_all_columns(scenario):
    rep = analyze(scenario("header-only"), pods=CAPTURES / "demo-transparent.pods.json")
    assert rep.edge_rows == [] and tuple(rep.edges.columns) == EDGE_NAMES and len(rep.edges) == 0


def test_edges_without_pods_is_a_clear_error():
    from analyzer.errors import AnalyzerError
    with pytest.raises(AnalyzerError, match="edges need a pod list"):
        analyze(CAPTURES / "midconn-transparent.pcapng").edge_rows


def test_pods_can_be_given_as_an_index():
    pods = load_pods(CAPTURES / "midconn-transparent.pods.json")
    rep = analyze(CAPTURES / "midconn-transparent.pcapng", pods=pods)
    assert rep.pods is pods and len(rep.edge_rows) == 4


# -- the CLI on a lab capture ----------------------------------------------------------------------------
def run(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)




def test_cli_edges_table():
    result = run("analyze", DEMO, "--pods", DEMO_PODS, "--view", "edges")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SRC", "DST", "STATUS", "FLOWS", "PLAINTEXT", "TLS"] and len(lines) == 6  # 100 columns
    assert lines[1].split()[2] == "PLAINTEXT-UNEXPECTED" and lines[1].startswith("emojivoto/web-")
    wide = run("analyze", DEMO, "--pods", DEMO_PODS, "--view", "edges", "--wide").stdout.splitlines()
    assert wide[0].split() == ["SRC", "DST", "STATUS", "FLOWS", "PLAINTEXT", "TLS", "UNKNOWN", "PORTS", "MSG", "IDENTITY"]
    web = next(line for line in wide if line.startswith("emojivoto/web-lnh8fhhndj-g9cvx "))
    assert "PLAINTEXT-UNEXPECTED" in web and "port_skipped :4567" in web
    assert result.stderr.splitlines()[-1].startswith("5 edges from 45 flows: PLAINTEXT-UNEXPECTED 1,")


def test_cli_json_carries_the_statuses():
    result = run("analyze", DEMO, "--pods", DEMO_PODS, "--view", "edges", "--format", "json", "--resource", "deployment")
    rows = json.loads(result.stdout)
    assert [tuple(r) for r in rows][0] == EDGE_NAMES
    assert {(r["src"], r["dst"], r["status"]) for r in rows} == {
        ("mtlslab-node", "voting", "plaintext-expected"), ("web", "voting", "PLAINTEXT-UNEXPECTED"),
        ("legacy", "voting", "plaintext-expected"), ("prometheus", "voting", "secured"),
        ("prometheus-server", "voting", "plaintext-expected")}
    assert rows[0]["first_ts"].endswith("Z")


@pytest.mark.parametrize("gate, code", [("unexpected-plaintext", 3), ("plaintext", 3), ("unverified", 0)])
def test_cli_gate_exit_codes(gate, code):
    result = run("analyze", DEMO, "--pods", DEMO_PODS, "--view", "edges", "--fail-on", gate)
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith("SRC ") and len(result.stdout.splitlines()) == 6  # the table comes first
    err = result.stderr.splitlines()
    if code == 3:
        assert err[-2].startswith("5 edges from ") and err[-1].startswith(f"--fail-on {gate}: ")
    else:
        assert err[-1].startswith("5 edges from ")


def test_cli_gate_message_names_the_edge():
    result = run("analyze", DEMO, "--pods", DEMO_PODS, "--fail-on", "unexpected-plaintext", "-q", "--view", "pairs")
    assert result.returncode == 3
    assert result.stderr == ("--fail-on unexpected-plaintext: 1 edge: emojivoto/web-lnh8fhhndj-g9cvx -> "
                             "emojivoto/voting-whmtqttntr-8t4wr :4567 (h2c)\n")  # only the port that was plaintext, and its protocol
    assert result.stdout.startswith("CLIENT_IP")  # the gate works on edges whatever view is printed


def test_cli_a_pod_list_makes_edges_the_default_view():
    result = run("analyze", DEMO, "--pods", DEMO_PODS, "-q")
    assert result.returncode == 0
    assert result.stdout.startswith("SRC ") and "PLAINTEXT-UNEXPECTED" in result.stdout
    assert run("analyze", DEMO, "-q").stdout.startswith("CLIENT_IP")  # no pod list: host pairs


def test_cli_malformed_pods_json_is_one_error_line(tmp_path):
    bad = tmp_path / "pods.json"
    bad.write_text('{"items": [{"metadata": {"name": "a"}, "status": {"podIP": "10.1.1.999"}}]}')
    result = run("analyze", DEMO, "--pods", bad, "--view", "edges")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"Error: {bad}: items[0] (default/a): status.podIP: bad IP address '10.1.1.999'\n"


def test_cli_truncated_pods_json(tmp_path):
    bad = tmp_path / "pods.json"
    bad.write_text(DEMO_PODS.read_text()[:500])
    result = run("analyze", DEMO, "--pods", bad, "--view", "edges")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: {bad}: not valid JSON (")


@pytest.mark.parametrize("args", [("--view", "edges"), ("--fail-on", "plaintext")])
def test_cli_edges_need_pods(args):
    result = run("analyze", DEMO, *args)
    assert result.returncode == 2 and "need a pod list: --pods FILE or --kubectl" in result.stderr


def test_cli_help_lists_the_options():
    text = run("analyze", "--help").stdout
    for option in ("--pods", "--kubectl", "--context", "--namespace", "--all-namespaces", "--resource", "--fail-on",
                   "edges"):
        assert option in text


def test_readme_documents_edges():
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## Edges", 1)[1].split("\n## ", 1)[0]
    for column in EDGE_NAMES:
        assert f"`{column}`" in section, column
    for status in EDGE_STATUSES:
        assert f"`{status}`" in section, status
    for gate in ("unexpected-plaintext", "plaintext", "unverified"):
        assert f"`{gate}`" in section
