"""Several vantage points of the same lab traffic, captured at once: every connection counted once.

The lab captures the client pod, the server pod and the node's bridge at the same time (``lab capture
--pod A --pod B --node``).  For every combination of those captures (one, two, three vantage points)
the joined flows must (a) fall on the lab's expected edges with the expected verdicts, and (b) hold each
TCP connection once: as many rows as distinct connections (4-tuples: ports are not reused within a
capture this short) across the captures given, each row naming exactly the captures that saw it.  The
``services`` scenario adds an unmeshed client calling a meshed pod through a ClusterIP the node DNATs
(nftables, as kube-proxy): the joined flow is that Service's edge with ``no_tls_from_remote``.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from analyzer import analyze
from analyzer.lab import control
from analyzer.lab.expect import compare
from analyzer.lab.topology import NODE, expected_rows
from labutil import lab_fixture

pytestmark = [pytest.mark.root, pytest.mark.tshark]
lab = lab_fixture("mtlslab-join")


def subsets(keys):
    return [c for n in range(1, len(keys) + 1) for c in itertools.combinations(keys, n)]


def _ends(row: dict) -> tuple:
    a, b = (row["client_ip"], row["client_port"]), (row["server_ip"], row["server_port"])
    return (a, b) if a <= b else (b, a)


@pytest.fixture(scope="module")
def steady(lab, tmp_path_factory):
    state, _ = lab
    out = tmp_path_factory.mktemp("join") / "steady.pcapng"
    result = control.capture(state, out, "web", seconds=6, also=("voting", NODE))
    assert all(d.get("failed") == 0 for d in result.drivers), result.drivers
    return {key: control.vantage_path(out, key) for key in ("web", "voting", NODE)}, out


@pytest.mark.parametrize("keys", subsets(("web", "voting", NODE)), ids="+".join)
def test_every_combination_counts_each_connection_once(lab, steady, keys):
    _, model = lab
    files, _ = steady
    alone = {key: analyze(str(files[key])) for key in keys}
    seen_by: dict[tuple, set] = {}
    for key, single in alone.items():
        for row in single.flow_rows:
            seen_by.setdefault(_ends(row), set()).add(files[key].name)
    report = analyze([str(files[k]) for k in keys])
    rows = report.flow_rows
    assert Counter(_ends(r) for r in rows) == Counter(set(seen_by)), "a connection is missing or counted twice"
    for row in rows:
        assert set(row["captures"].split(",")) == seen_by[_ends(row)], row
        assert row["vantages"] == len(seen_by[_ends(row)])
        assert not row["vantage_conflict"], row["reason"]
    expected = {tuple(r.values()): r for k in keys for r in expected_rows(model, "steady", k)}
    problems = compare(rows, list(expected.values()))
    assert not problems, "\n".join(problems)
    if len(keys) > 1:
        assert report.stats["rows_in"] == sum(len(v.all_flow_rows) for v in alone.values())


def test_edges_of_three_vantages_equal_one_client_capture(lab, steady):
    """web's own capture holds all of web's connections: three vantage points may not add a single one."""
    state, _ = lab
    files, out = steady
    pods = out.with_name("steady.pods.json")
    one = {(e["src"], e["dst"]): e for e in analyze(str(files["web"]), pods=str(pods)).edge_rows}
    three = {(e["src"], e["dst"]): e for e in analyze([str(p) for p in files.values()], pods=str(pods)).edge_rows}
    for pair, edge in one.items():
        assert (three[pair]["flows"], three[pair]["status"]) == (edge["flows"], edge["status"]), pair


@pytest.fixture(scope="module")
def services(lab, tmp_path_factory):
    state, _ = lab
    out = tmp_path_factory.mktemp("join") / "svc.pcapng"
    result = control.capture(state, out, "legacy", seconds=4, scenario="services", also=("emoji", NODE))
    assert [d["failed"] for d in result.drivers] == [0] and result.drivers[0]["ok"] >= 2, result.drivers
    return {key: control.vantage_path(out, key) for key in ("legacy", "emoji", NODE)}, out.with_name("svc.pods.json")


@pytest.mark.parametrize("keys", subsets(("legacy", "emoji", NODE)), ids="+".join)
def test_unmeshed_client_of_a_meshed_service(lab, services, keys):
    _, model = lab
    files, pods = services
    legacy, emoji = model.pod("legacy"), model.pod("emoji")
    report = analyze([str(files[k]) for k in keys], pods=str(pods))
    clients = {r["client_port"] for k in keys for r in analyze(str(files[k])).flow_rows}
    flows = report.flow_rows
    assert sorted(r["client_port"] for r in flows) == sorted(clients)  # one row per connection
    [edge] = report.edge_rows
    assert edge["src"] == legacy.name and edge["flows"] == len(clients)
    assert (edge["status"], edge["plaintext"]) == ("plaintext-expected", len(clients))
    assert edge["msg"].startswith("no_tls_from_remote")
    if "legacy" in keys:  # the client's own capture saw the ClusterIP: the edge is the Service's
        assert (edge["dst"], edge["dst_kind"], edge["dst_ns"]) == ("emoji-svc", "service", "emojivoto")
        if len(keys) > 1:  # ... and the post-DNAT side joined it
            assert {(r["server_ip"], r["server_port"], r["service_ip"], r["service_port"]) for r in flows} == {
                (emoji.ip, 8080, "10.96.0.10", 80)}
            assert all(r["vantages"] == len(keys) for r in flows)
    else:
        assert (edge["dst"], edge["dst_kind"]) == (emoji.name, "pod")


@pytest.fixture(scope="module")
def node_any(lab, tmp_path_factory):
    """The services scenario captured at once in the client pod and on the client's node with ``-i any``:
    the node sees each connection twice (before the DNAT on the client's veth, after it on the way to the
    server: bridge or transit link) and packets on more than one interface."""
    state, model = lab
    node = NODE if model.pod("legacy").node == 0 else control.NODE2  # the client's node does the DNAT
    out = tmp_path_factory.mktemp("join") / "any.pcapng"
    result = control.capture(state, out, node, seconds=4, scenario="services", also=("legacy",), node_any=True)
    [driver] = result.drivers
    assert driver["failed"] == 0 and driver["ok"] >= 2, result.drivers
    return control.vantage_path(out, node), control.vantage_path(out, "legacy"), out.with_name("any.pods.json"), driver["ok"]


def test_one_node_capture_holds_both_sides_of_the_dnat(lab, node_any):
    _, model = lab
    node, pod, pods, calls = node_any
    legacy, emoji = model.pod("legacy"), model.pod("emoji")
    cluster_ip, port = "10.96.0.10", 80
    sides = Counter((r["server_ip"], r["server_port"]) for r in analyze(str(node)).flow_rows
                    if r["client_ip"] == legacy.ip)
    assert sides == {(cluster_ip, port): calls, (emoji.ip, 8080): calls}  # without the Services: two rows each
    # Each packet once, although the node saw most of them on two interfaces: the ClusterIP side's counts
    # are the client pod's own.
    own = {r["client_port"]: r for r in analyze(str(pod)).flow_rows if r["server_ip"] == cluster_ip}
    for row in analyze(str(node)).flow_rows:
        if row["server_ip"] == cluster_ip:
            mine = own[row["client_port"]]
            assert (row["packets_c2s"], row["packets_s2c"], row["bytes_c2s"], row["bytes_s2c"]) == (
                mine["packets_c2s"], mine["packets_s2c"], mine["bytes_c2s"], mine["bytes_s2c"]), row["client_port"]
    for files in ([node], [node, pod]):
        report = analyze([str(f) for f in files], pods=str(pods))
        flows = [r for r in report.flow_rows if r["client_ip"] == legacy.ip]
        assert len(flows) == calls  # one row per connection: both DNAT sides joined
        assert {(r["server_ip"], r["server_port"], r["service_ip"], r["service_port"], r["vantages"]) for r in flows} == {
            (emoji.ip, 8080, cluster_ip, port, len(files))}
        assert report.stats["dnat_joined"] == calls
        [edge] = report.edge_rows
        assert (edge["src"], edge["dst"], edge["dst_kind"], edge["flows"]) == (legacy.name, "emoji-svc", "service", calls)
        assert (edge["status"], edge["plaintext"]) == ("plaintext-expected", calls) and edge["msg"].startswith("no_tls_from_remote")
