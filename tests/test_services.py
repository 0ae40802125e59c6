"""Services and EndpointSlices in the pod list: ClusterIP flows are Service edges, DNAT sides join.

Pod lists are built with ``kube_builders`` plus the Service/EndpointSlice builders below (the shapes of
``kubectl get pods,services,endpointslices -A -o json``); captures with ``pcapgen``; every case runs the
real ``analyze`` and reads the flow and edge rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pcapgen as pg
from analyzer import analyze
from analyzer.kube.podlist import parse_pods_json
from analyzer.kube.pods import PodsFormatError
from kube_builders import pod, rfc3339

REPO = Path(__file__).resolve().parent.parent
CLUSTER_IP = "10.96.0.20"
WEB, EMOJI, EMOJI2, CURL = "10.42.0.11", "10.42.0.12", "10.42.0.13", "10.42.0.14"
IDENT = "{}.{}.serviceaccount.identity.linkerd.cluster.local".format


def service(name: str, cluster_ip: str | None, ports=((80, "http", "http"),), namespace: str = "emojivoto",
            created="2020-01-01T00:00:00Z") -> dict:
    """ports: (port, name, targetPort)."""
    spec = {"clusterIP": cluster_ip or "None", "ports": [{"name": n, "port": p, "protocol": "TCP", "targetPort": t}
                                                         for p, n, t in ports]}
    if cluster_ip:
        spec["clusterIPs"] = [cluster_ip]
    return {"apiVersion": "v1", "kind": "Service", "spec": spec,
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339(created)}}


def endpointslice(svc: str, endpoints, ports=(("http", 8080),), namespace: str = "emojivoto") -> dict:
    """endpoints: (ip, pod name or None)."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{svc}-abcde", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": svc}},
            "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True},
                           **({"targetRef": {"kind": "Pod", "name": name, "namespace": namespace}} if name else {})}
                          for ip, name in endpoints]}


def pods_list(path: Path, *items) -> Path:
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)}))
    return path


def cluster(tmp_path, *extra, slices=True) -> Path:
    items = [pod("web", WEB), pod("emoji", EMOJI, sa="emoji"), pod("emoji-2", EMOJI2, sa="emoji"),
             pod("curl", CURL, meshed=False), service("emoji-svc", CLUSTER_IP)]
    if slices:
        items.append(endpointslice("emoji-svc", [(EMOJI, "emoji"), (EMOJI2, "emoji-2")]))
    return pods_list(tmp_path / "pods.json", *items, *extra)


def conn(client_ip: str, server: pg.Endpoint, kind: str = "http", sport: int = 40001, **kw):
    client = pg.Endpoint(client_ip, sport)
    if kind == "http":
        return pg.tcp_flow([("c", pg.HTTP_REQUEST), ("s", pg.HTTP_RESPONSE)], client=client, server=server, **kw)
    return pg.tcp_flow(pg.tls13(sni=IDENT("emoji", "emojivoto")), client=client, server=server, **kw)


def write(path: Path, pkts) -> Path:
    path.write_bytes(pg.ether_pcap(pkts))
    return path


def edge(report) -> dict:
    [row] = report.edge_rows
    return row


def test_unmeshed_caller_of_meshed_service(tmp_path):
    cap = write(tmp_path / "curl.pcap", conn(CURL, pg.Endpoint(CLUSTER_IP, 80)))
    row = edge(analyze(cap, pods=cluster(tmp_path)))
    assert (row["src"], row["dst"], row["dst_ns"], row["dst_kind"]) == ("curl", "emoji-svc", "emojivoto", "service")
    assert row["status"] == "plaintext-expected" and row["msg"].startswith("no_tls_from_remote :80")
    assert row["dst_meshed"] is True and row["expected_server"] == "emoji.emojivoto"


def test_meshed_caller_plaintext_to_meshed_service_is_unexpected(tmp_path):
    cap = write(tmp_path / "web.pcap", conn(WEB, pg.Endpoint(CLUSTER_IP, 80)))
    row = edge(analyze(cap, pods=cluster(tmp_path)))
    assert (row["dst_kind"], row["status"], row["unexpected"]) == ("service", "PLAINTEXT-UNEXPECTED", 1)


def test_tls_to_service_with_the_endpoints_identity_is_secured(tmp_path):
    cap = write(tmp_path / "web.pcap", conn(WEB, pg.Endpoint(CLUSTER_IP, 80), "tls"))
    row = edge(analyze(cap, pods=cluster(tmp_path)))
    assert (row["dst"], row["status"], row["server"]) == ("emoji-svc", "secured", "emoji.emojivoto")


def test_dnat_join_across_captures(tmp_path):
    pre = write(tmp_path / "curl.pcap", conn(CURL, pg.Endpoint(CLUSTER_IP, 80)))
    post = write(tmp_path / "emoji.pcap", pg.shift(conn(CURL, pg.Endpoint(EMOJI, 8080)), 2_000_000))
    report = analyze([pre, post], pods=cluster(tmp_path))
    [flow] = report.flow_rows
    assert (flow["server_ip"], flow["server_port"], flow["service_ip"], flow["service_port"]) == (EMOJI, 8080, CLUSTER_IP, 80)
    assert flow["captures"] == "curl.pcap,emoji.pcap" and flow["vantages"] == 2
    assert report.stats["dnat_joined"] == 1
    row = edge(report)
    assert (row["dst"], row["dst_kind"], row["flows"], row["status"]) == ("emoji-svc", "service", 1, "plaintext-expected")


def test_dnat_join_in_one_node_capture(tmp_path):
    both = pg.merge(conn(CURL, pg.Endpoint(CLUSTER_IP, 80)), pg.shift(conn(CURL, pg.Endpoint(EMOJI2, 8080)), 100_000))
    report = analyze(write(tmp_path / "node.pcap", both), pods=cluster(tmp_path))
    [flow] = report.flow_rows
    assert (flow["server_ip"], flow["service_ip"], flow["vantages"]) == (EMOJI2, CLUSTER_IP, 1)


def test_no_dnat_join_when_the_slice_does_not_list_the_pod_or_the_isn_differs(tmp_path):
    pre = write(tmp_path / "curl.pcap", conn(CURL, pg.Endpoint(CLUSTER_IP, 80)))
    elsewhere = write(tmp_path / "web.pcap", conn(CURL, pg.Endpoint(WEB, 8080)))
    other_isn = write(tmp_path / "emoji.pcap", conn(CURL, pg.Endpoint(EMOJI, 8080), isn_c=5_000))
    for post in (elsewhere, other_isn):
        rows = analyze([pre, post], pods=cluster(tmp_path)).flow_rows
        assert len(rows) == 2 and {r["service_ip"] for r in rows} == {CLUSTER_IP, ""}


def test_named_target_port_and_several_ports(tmp_path):
    pods = pods_list(tmp_path / "pods.json", pod("curl", CURL, meshed=False), pod("emoji", EMOJI, sa="emoji"),
                     service("emoji-svc", CLUSTER_IP, ports=((80, "http", "http"), (9090, "grpc", 8081))),
                     endpointslice("emoji-svc", [(EMOJI, "emoji")], ports=(("http", 8080), ("grpc", 8081))))
    pre = write(tmp_path / "curl.pcap", pg.merge(conn(CURL, pg.Endpoint(CLUSTER_IP, 80)),
                                                 conn(CURL, pg.Endpoint(CLUSTER_IP, 9090), sport=40002)))
    post = write(tmp_path / "emoji.pcap", pg.merge(conn(CURL, pg.Endpoint(EMOJI, 8080)),
                                                   conn(CURL, pg.Endpoint(EMOJI, 8081), sport=40002)))
    rows = analyze([pre, post], pods=pods).flow_rows
    assert sorted((r["service_port"], r["server_port"]) for r in rows) == [(80, 8080), (9090, 8081)]


def test_cluster_ip_reused_over_time(tmp_path):
    t = pg.T0_NS / 1e9
    pods = pods_list(tmp_path / "pods.json", pod("curl", CURL, meshed=False), pod("emoji", EMOJI, sa="emoji"),
                     service("old-svc", CLUSTER_IP, created=t - 3600),
                     service("new-svc", CLUSTER_IP, created=t + 10),
                     endpointslice("old-svc", [(EMOJI, "emoji")]), endpointslice("new-svc", [(EMOJI, "emoji")]))
    cap = write(tmp_path / "curl.pcap", pg.merge(conn(CURL, pg.Endpoint(CLUSTER_IP, 80)),
                                                 conn(CURL, pg.Endpoint(CLUSTER_IP, 80), sport=40009,
                                                      t0_ns=pg.T0_NS + 20_000_000_000)))
    rows = analyze(cap, pods=pods).edge_rows
    assert [(r["dst"], r["flows"]) for r in rows] == [("new-svc", 1), ("old-svc", 1)]


def test_headless_service_leaves_pod_edges(tmp_path):
    pods = pods_list(tmp_path / "pods.json", pod("curl", CURL, meshed=False), pod("emoji", EMOJI, sa="emoji"),
                     service("emoji-headless", None), endpointslice("emoji-headless", [(EMOJI, "emoji")]))
    row = edge(analyze(write(tmp_path / "c.pcap", conn(CURL, pg.Endpoint(EMOJI, 8080))), pods=pods))
    assert (row["dst"], row["dst_kind"]) == ("emoji", "pod")


def test_services_without_endpointslices(tmp_path):
    pods = cluster(tmp_path, slices=False)
    index = parse_pods_json(pods.read_text(), "pods.json")
    assert any("no EndpointSlice for 1 Service(s) (emojivoto/emoji-svc)" in n for n in index.notes)
    row = edge(analyze(write(tmp_path / "c.pcap", conn(WEB, pg.Endpoint(CLUSTER_IP, 80))), pods=pods))
    assert (row["dst_kind"], row["status"]) == ("service", "unverified")
    assert row["msg"].startswith("service_endpoints_unknown :80 (no EndpointSlice for emojivoto/emoji-svc")


def test_slice_naming_an_unknown_pod_and_other_kinds(tmp_path):
    pods = cluster(tmp_path, endpointslice("ghost-svc", [("10.42.0.99", "ghost")]),
                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}})
    proc = subprocess.run([sys.executable, "-m", "analyzer", "analyze",
                           str(write(tmp_path / "c.pcap", conn(CURL, pg.Endpoint(CLUSTER_IP, 80)))),
                           "--pods", str(pods), "--format", "csv"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("Warning:")]
    assert any("EndpointSlices name 1 pod(s) not in the list (emojivoto/ghost)" in w for w in warnings)
    assert any("ignored 2 item(s) of other kinds (ConfigMap 2)" in w for w in warnings)
    assert "emoji-svc,emojivoto" in proc.stdout.replace('"', "")


@pytest.mark.parametrize("item, message", [
    (service("s", "10.96.0.x"), r"items\[6\] \(service emojivoto/s\): spec.clusterIP: bad IP address '10.96.0.x'"),
    (service("s", CLUSTER_IP, ports=((0, "http", 80),)), r"items\[6\] \(service emojivoto/s\): spec.ports\[0\]: bad port 0"),
    ({"kind": "Service", "metadata": {}}, r"items\[6\]: no metadata.name"),
    ({"kind": "EndpointSlice", "metadata": {"name": "e"}}, r"no kubernetes.io/service-name label"),
    ({**endpointslice("s", []), "endpoints": ["10.0.0.1"]}, r"endpoints\[0\] is not an object"),
])
def test_malformed_items_are_one_error_line(tmp_path, item, message):
    pods = cluster(tmp_path, item)
    with pytest.raises(PodsFormatError, match=message):
        parse_pods_json(pods.read_text(), "pods.json")
    proc = subprocess.run([sys.executable, "-m", "analyzer", "analyze",
                           str(write(tmp_path / "c.pcap", conn(CURL, pg.Endpoint(CLUSTER_IP, 80)))),
                           "--pods", str(pods)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("Error: ")


def test_kubectl_mtls_capture_saves_and_uses_the_services(tmp_path):
    """``kubectl mtls capture`` lists pods, services and endpointslices before and after, saves that List
    beside the capture and analyses with it: web's plaintext call to a ClusterIP is emoji-svc's edge.
    (The kubectl stand-in replays a recorded capture of web as its tshark would stream it.)"""
    import os

    state, replay, out = tmp_path / "state", tmp_path / "replay", tmp_path / "out"
    state.mkdir()
    replay.mkdir()
    web = pod("web", WEB, debug=True)
    cluster_list = [web, pod("emoji", EMOJI, sa="emoji"), service("emoji-svc", CLUSTER_IP),
                    endpointslice("emoji-svc", [(EMOJI, "emoji")])]
    pods_list(state / "pods.json", *cluster_list)
    frames = pg.encap(conn(WEB, pg.Endpoint(CLUSTER_IP, 80)), "sll2")
    (replay / "web.pcapng").write_bytes(pg.simple_pcapng(frames))
    calls = tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MTLSLAB_STATE": str(state), "KUBECTL_STANDIN_REPLAY": str(replay),
           "KUBECTL_STANDIN_LOG": str(calls), "PATH": f"{REPO / 'tests' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "analyzer.kubectl_mtls", "capture", "-n", "emojivoto", "web",
                           "--seconds", "1", "--output-dir", str(out), "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    [edge_row] = json.loads(proc.stdout)
    assert (edge_row["src"], edge_row["dst"], edge_row["dst_kind"], edge_row["status"]) == (
        "web", "emoji-svc", "service", "PLAINTEXT-UNEXPECTED")
    assert [c for c in calls.read_text().splitlines() if c.startswith("get ")] == [
        "get pods,services,endpointslices -A -o json"] * 2
    [saved] = out.glob("web-*.pods.json")
    assert sorted(item["kind"] for item in json.loads(saved.read_text())["items"]) == [
        "EndpointSlice", "Pod", "Pod", "Service"]
