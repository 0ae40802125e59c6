"""The lab's wiring, pods.json, PKI and tiny protocol codecs - no root, no network."""

from __future__ import annotations

import ipaddress

import ssl

import pytest
from cryptography import x509

from analyzer.lab import dns, h2c, hello, kube
from analyzer.lab.netns import nft_rules
from analyzer.lab.pki import Authority
from analyzer.lab.topology import (
    NODE, PLAINTEXT_EXPECTED, PLAINTEXT_UNEXPECTED, SECURED, Lab, expected_rows, localhost_rows,
)

CREATED = "2025-01-01T00:00:00Z"


@pytest.fixture(params=["transparent", "transport-header"])
def lab(request) -> Lab:
    return Lab.build(request.param, CREATED)


def test_every_status_is_wired(lab):
    rows = expected_rows(lab)
    assert {r["status"] for r in rows} == {SECURED, PLAINTEXT_EXPECTED, PLAINTEXT_UNEXPECTED}
    unexpected = [r for r in rows if r["status"] == PLAINTEXT_UNEXPECTED]
    assert [(r["src_pod"].split("-")[0], r["dst_pod"].split("-")[0], r["dst_port"]) for r in unexpected] == [
        ("web", "voting", 4567)]
    legacy = [r for r in rows if r["src_pod"].startswith("legacy")and r["dst_port"] != 53]
    # voting directly, and emoji through its Service emoji-svc: ClusterIP:80 before the DNAT, pod:8080 after
    assert sorted((r["dst_pod"].rsplit("-", 2)[0], r["dst_ip"], r["dst_port"], r["verdict"], r["reason"])
                  for r in legacy) == [
        ("emoji", lab.pod("emoji").ip, 8080, "plaintext", "no_tls_from_remote"),
        ("emoji", "10.96.0.10", 80, "plaintext", "no_tls_from_remote"),
        ("voting", lab.pod("voting").ip, 8080, "plaintext", "no_tls_from_remote")]


def test_service_edge_as_each_vantage_sees_it(lab):
    def ends(capture_pod):
        return sorted((r["dst_ip"], r["dst_port"]) for r in expected_rows(lab, "services", capture_pod))
    emoji = lab.pod("emoji").ip
    assert ends("legacy") == [("10.96.0.10", 80)]
    assert ends("emoji") == [(emoji, 8080)]
    assert ends(NODE) == ends(None) == sorted([("10.96.0.10", 80), (emoji, 8080)])
    [hop] = localhost_rows(lab, "services", "emoji")
    assert (hop["dst_port"], hop["reason"]) == (8080, "proxy_to_app")


def test_verdicts_follow_the_wiring(lab):
    meshed = {p.ip for p in lab.pods if p.meshed}
    for row in expected_rows(lab):
        assert (row["verdict"] == "tls") == (row["status"] == SECURED)
        if row["src_pod"] == NODE:
            assert row["src_ns"] == "" and row["status"] == PLAINTEXT_EXPECTED
        if row["verdict"] == "tls":
            assert row["src_ip"] in meshed and row["dst_ip"] in meshed
            if row["dst_port"] != 4191:
                assert row["dst_port"] == (4143 if lab.mode == "transport-header" else 8080)


def test_capture_point_filters(lab):
    voting = lab.pod("voting")
    rows = expected_rows(lab, "steady", "voting")
    assert rows and all(voting.ip in (r["src_ip"], r["dst_ip"]) for r in rows)
    assert len(expected_rows(lab, "steady", NODE)) > len(rows)
    hops = localhost_rows(lab, "steady", "voting")
    assert {(h["dst_ip"], h["reason"]) for h in hops} == {(voting.ip, "proxy_to_app")}
    web_hops = {h["reason"] for h in localhost_rows(lab, "steady", "web")}
    assert web_hops == {"app_to_proxy", "outbound_redirect_reply", "proxy_to_app"}
    assert localhost_rows(lab, "steady", NODE) == []


def test_pods_are_spread_over_two_nodes(lab):
    from analyzer.lab.topology import NODE_IPS, NODE_NAMES, NODE_SUBNETS

    assert {p.node_name for p in lab.pods} == set(NODE_NAMES) and lab.node_ip == NODE_IPS[0]
    for pod in lab.pods:
        assert ipaddress.ip_address(pod.ip) in NODE_SUBNETS[pod.node]
    # Every edge has an end on the first node (its bridge sees them all); kubelet probes come from its IP.
    first = {p.key for p in lab.pods if p.node == 0}
    assert all(e.src in first or e.dst in first for e in lab.edges if e.src != NODE)
    assert all(lab.pod(e.dst).node == 0 for e in lab.edges if e.src == NODE)
    assert {p.key for p in lab.pods if p.node == 1} == {"legacy", "prometheus-server"}


def test_pods_json_reads_like_kubectl(lab):
    doc = kube.pods_list(lab)
    assert doc["kind"] == "List" and doc["apiVersion"] == "v1"
    by_name = {item["metadata"]["name"]: item for item in doc["items"]}
    for pod in lab.pods:
        item = by_name[pod.name]
        meta, spec, status = item["metadata"], item["spec"], item["status"]
        assert meta["namespace"] == pod.namespace and meta["creationTimestamp"] == CREATED
        owner = meta["ownerReferences"][0]
        assert owner["kind"] == "ReplicaSet" and owner["name"].endswith(meta["labels"]["pod-template-hash"])
        assert status["podIP"] == pod.ip and status["podIPs"] == [{"ip": pod.ip}]
        assert status["hostIP"] == pod.node_ip and spec["nodeName"] == pod.node_name and status["phase"] == "Running"
        assert spec["serviceAccountName"] == pod.service_account
        proxies = [c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == "linkerd-proxy"]
        assert ("linkerd.io/control-plane-ns" in meta["labels"]) == pod.meshed == bool(proxies)
        if pod.meshed:
            assert meta["labels"]["linkerd.io/proxy-deployment"] == pod.key
            env = {e["name"]: e.get("value") for e in proxies[0]["env"]}
            local = env["LINKERD2_PROXY_IDENTITY_LOCAL_NAME"].replace(
                "$(_pod_sa).$(_pod_ns)", f"{spec['serviceAccountName']}.{meta['namespace']}")
            assert local == pod.identity
            in_init = proxies[0] in spec.get("initContainers", [])
            assert in_init == pod.native_sidecar
            assert (proxies[0].get("restartPolicy") == "Always") == in_init
    assert any(p.native_sidecar for p in lab.pods)


def test_leaf_has_exactly_one_dns_san(tmp_path, lab):
    authority = Authority(tmp_path)
    pod = lab.pod("prometheus")  # identity longer than 64 characters: no CN, critical SAN
    files = authority.issue(pod.key, pod.identity)
    leaf = x509.load_pem_x509_certificates(files.chain.read_bytes())[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == [pod.identity]
    assert len(list(san.value)) == 1


def test_nft_rules_play_linkerd_init(lab):
    rules = nft_rules(lab)
    assert "redirect to :4143" in rules and "redirect to :4140" in rules
    assert "4190, 4191, 4567, 4568" in rules and "meta mark 0x2102 return" in rules


def test_h2c_headers_round_trip():
    headers = [(":path", "/emojivoto.v1.VotingService/VoteDoughnut"), ("x-long", "v" * 300)]
    assert h2c.decode_headers(h2c.encode_headers(headers)) == headers
    with pytest.raises(ValueError):
        h2c.decode_headers(b"\x82")  # an indexed field: not produced by the lab


def test_dns_answer_round_trip():
    query = dns.encode_query(7, "web-svc.emojivoto.svc.cluster.local")
    answer = dns.encode_answer(query, {"web-svc.emojivoto.svc.cluster.local": "10.244.0.10"})
    assert dns.parse_a_answer(answer) == "10.244.0.10"
    assert dns.parse_a_answer(dns.encode_answer(query, {})) is None


def test_hello_reads_sni_from_a_real_client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    out = ssl.MemoryBIO()
    client = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="voting.emojivoto.serviceaccount.identity.linkerd.cluster.local")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    data = out.read()
    assert hello.looks_like_tls(data)
    assert hello.parse_sni(data) == (True, "voting.emojivoto.serviceaccount.identity.linkerd.cluster.local")
    assert hello.parse_sni(data[:40]) == (False, None)
    assert not hello.looks_like_tls(b"GET /ready HTTP/1.1\r\n")
