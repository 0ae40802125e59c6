"""Edges from crafted pod lists and built captures: what the lab cannot show.

Captures come from ``pcapgen`` (scapy, deterministic) and pods from ``kube_builders``; each test runs the
real pipeline (``analyze(capture, pods=...)``) and reads the edge rows. Cases: a pod IP reused by another
pod later (flows attributed by time), two pods holding one IP at once (ambiguous, never guessed),
native-sidecar and unmeshed pods, node and host-network peers, external IPs, stale/foreign SNIs, skip
ports (annotated vs default), mixed pairs, TLS 1.2 client certificates, flows without evidence, and the
``--fail-on`` exit codes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pcapgen as pg
from analyzer import analyze
from kube_builders import NODE_IP, pod, write_pods

from paths import REPO
T0 = pg.T0_NS / 1e9
IDENT = "{}.{}.serviceaccount.identity.linkerd.cluster.local".format


def flow(src: str, dst: str, dport: int, kind: str, at_s: float = 0.0, sport: int | None = None):
    """One TCP connection ``at_s`` seconds after T0. kind: http | syn | tls13:SNI | tls12:SNI."""
    sport = sport or 40000 + int(at_s * 10) % 20000 + dport % 97
    ends = dict(client=pg.Endpoint(src, sport), server=pg.Endpoint(dst, dport), t0_ns=pg.T0_NS + int(at_s * 1e9))
    if kind == "http":
        return pg.tcp_flow([("c", pg.HTTP_REQUEST), ("s", pg.HTTP_RESPONSE)], **ends)
    if kind == "syn":
        return pg.tcp_flow([], close=None, **ends)[:1]
    version, _, sni = kind.partition(":")
    exchange = pg.tls13(sni=sni or None) if version == "tls13" else pg.tls12(sni=sni or None)
    return pg.tcp_flow(exchange, **ends)


def edges_for(tmp_path: Path, flows: list, pods: list, **kw) -> list[dict]:
    capture = tmp_path / "capture.pcap"
    capture.write_bytes(pg.ether_pcap(pg.merge(*flows)))
    pods_file = write_pods(tmp_path / "pods.json", *pods)
    return analyze(capture, pods=pods_file).edge_rows_by(**kw)


def one_edge(rows: list[dict], src: str, dst: str) -> dict:
    (row,) = [r for r in rows if r["src"] == src and r["dst"] == dst]
    return row


VOTING = pod("voting", "10.42.0.12", sa="voting", created=T0 - 3600)


# -- who held the IP -------------------------------------------------------------------------------------
def test_reused_ip_flows_are_attributed_by_time(tmp_path):
    """10.42.0.11 was a meshed batch pod until T0+100 s, then an unmeshed pod from T0+150 s."""
    rows = edges_for(tmp_path, [
        flow("10.42.0.11", "10.42.0.12", 8080, f"tls13:{IDENT('voting', 'emojivoto')}", at_s=0),
        flow("10.42.0.11", "10.42.0.12", 8080, "http", at_s=200),
    ], [
        pod("batch-old", "10.42.0.11", sa="batch", created=T0 - 600, deleted=T0 + 100),
        pod("legacy-new", "10.42.0.11", meshed=False, created=T0 + 150),
        VOTING,
    ])
    old, new = one_edge(rows, "batch-old", "voting"), one_edge(rows, "legacy-new", "voting")
    assert (old["flows"], old["status"], old["client"], old["server"]) == (1, "secured", "batch.emojivoto", "voting.emojivoto")
    assert (new["flows"], new["status"], new["msg"]) == (1, "plaintext-expected", "no_tls_from_remote :8080 (source not meshed)")
    assert old["src_ips"] == new["src_ips"] == "10.42.0.11" and len(rows) == 2


def test_a_flow_between_two_holders_is_ambiguous(tmp_path):
    rows = edges_for(tmp_path, [flow("10.42.0.11", "10.42.0.12", 8080, "http", at_s=120)], [
        pod("batch-old", "10.42.0.11", created=T0 - 600, deleted=T0 + 100),
        pod("legacy-new", "10.42.0.11", meshed=False, created=T0 + 150),
        VOTING,
    ])
    (row,) = rows
    assert (row["src"], row["src_kind"], row["src_ns"], row["status"]) == ("10.42.0.11", "ambiguous", "", "unverified")
    assert row["msg"].startswith("ambiguous_ip :8080 (no listed pod held 10.42.0.11 at the flow's time")
    assert "emojivoto/batch-old" in row["notes"] and "emojivoto/legacy-new" in row["notes"]


def test_two_pods_with_one_ip_at_once_are_reported_not_guessed(tmp_path):
    ambiguous = [pod("a", "10.42.0.21", created=T0 - 60),
                 pod("b", "10.42.0.21", namespace="other", created=T0 - 30, meshed=False)]
    rows = edges_for(tmp_path, [
        flow("10.42.0.21", "10.42.0.12", 8080, "http", at_s=1),
        flow("10.42.0.12", "10.42.0.21", 8080, f"tls13:{IDENT('default', 'emojivoto')}", at_s=2),
    ], ambiguous + [VOTING])
    plaintext = one_edge(rows, "10.42.0.21", "voting")
    assert plaintext["status"] == "unverified" and plaintext["src_meshed"] is None
    assert "10.42.0.21 was held by 2 listed pods at once: emojivoto/a" in plaintext["notes"]
    tls = one_edge(rows, "voting", "10.42.0.21")
    assert tls["dst_kind"] == "ambiguous" and tls["status"] == "unverified" and tls["unverified"] == 1


def test_a_matching_sni_to_a_known_server_is_secured_even_from_an_ambiguous_client(tmp_path):
    rows = edges_for(tmp_path, [flow("10.42.0.21", "10.42.0.12", 8080, f"tls13:{IDENT('voting', 'emojivoto')}")],
                     [pod("a", "10.42.0.21"), pod("b", "10.42.0.21", namespace="x"), VOTING])
    (row,) = rows
    assert row["status"] == "secured" and row["src_kind"] == "ambiguous" and row["client"] == ""


# -- mesh membership -------------------------------------------------------------------------------------
def test_native_sidecar_server_is_secured_with_its_expected_identity(tmp_path):
    books = pod("books-1", "10.42.0.31", namespace="shop", sa="books", native=True,
                owner=("ReplicaSet", "books-5f6d8"), template_hash="5f6d8")
    rows = edges_for(tmp_path, [flow("10.42.0.12", "10.42.0.31", 8080, f"tls13:{IDENT('books', 'shop')}")],
                     [VOTING, books])
    row = one_edge(rows, "voting", "books-1")
    assert (row["status"], row["server"], row["expected_server"], row["dst_meshed"]) == (
        "secured", "books.shop", "books.shop", True)
    assert row["mtls"] == "inferred" and row["client"] == "voting.emojivoto" and row["tls_versions"] == "TLS 1.3"


def test_unmeshed_ends(tmp_path):
    rows = edges_for(tmp_path, [
        flow("10.42.0.12", "10.42.0.41", 8080, "http", at_s=0),
        flow("10.42.0.42", "10.42.0.41", 8080, "http", at_s=1),
    ], [VOTING, pod("db", "10.42.0.41", meshed=False), pod("cron", "10.42.0.42", meshed=False)])
    assert one_edge(rows, "voting", "db")["msg"] == "not_provided_by_service_discovery :8080 (destination not meshed)"
    assert one_edge(rows, "cron", "db")["msg"] == "not_meshed :8080 (neither pod is meshed)"
    assert {r["status"] for r in rows} == {"plaintext-expected"}
    assert one_edge(rows, "voting", "db")["dst_meshed"] is False


# -- node, host network, external ------------------------------------------------------------------------
def test_node_peers(tmp_path):
    rows = edges_for(tmp_path, [
        flow(NODE_IP, "10.42.0.12", 8080, "http", at_s=0),       # the app's readinessProbe port (named "http")
        flow(NODE_IP, "10.42.0.12", 4191, "http", at_s=1),       # the proxy's /live, /ready
        flow(NODE_IP, "10.42.0.12", 9999, "http", at_s=2),       # not a probe: still the node
        flow("10.42.0.5", "10.42.0.12", 8080, "http", at_s=3),   # a host-network pod
    ], [VOTING, pod("node-exporter", "10.42.0.5", namespace="monitoring", meshed=False, host_network=True,
                    host_ip="10.42.0.5")])
    node = one_edge(rows, "node-a", "voting")
    assert node["src_kind"] == "node" and node["src_ns"] == "" and node["status"] == "plaintext-expected"
    assert node["msg"] == "kubelet_probe :4191,8080; node_peer :9999 (from a node IP)"
    assert len(rows) == 1 and node["src_ips"] == f"{NODE_IP},10.42.0.5"  # the host-network pod is that node


def test_external_peers(tmp_path):
    rows = edges_for(tmp_path, [
        flow("10.42.0.12", "203.0.113.5", 443, "tls13:api.github.com", at_s=0),
        flow("10.42.0.12", "203.0.113.5", 80, "http", at_s=1),
        flow("198.51.100.9", "10.42.0.12", 8080, "http", at_s=2),
    ], [VOTING])
    out = one_edge(rows, "voting", "203.0.113.5")
    assert out["dst_kind"] == "external" and out["status"] == "mixed" and out["server"] == "api.github.com"
    assert out["msg"] == ("app_tls :443 (TLS outside the mesh (SNI api.github.com)); "
                          "not_provided_by_service_discovery :80 (203.0.113.5 is not in the pod list)")
    inbound = one_edge(rows, "198.51.100.9", "voting")
    assert inbound["status"] == "plaintext-expected" and inbound["msg"].startswith("no_tls_from_remote :8080")


# -- identities in the SNI -------------------------------------------------------------------------------
def test_stale_sni_to_a_reused_ip_is_flagged(tmp_path):
    """linkerd/linkerd2#6147: the client still sends the identity of the IP's previous owner."""
    rows = edges_for(tmp_path, [flow("10.42.0.12", "10.42.0.51", 8080, f"tls13:{IDENT('web', 'emojivoto')}", at_s=5)], [
        VOTING,
        pod("web-old", "10.42.0.51", sa="web", created=T0 - 900, deleted=T0 - 300),
        pod("emoji-new", "10.42.0.51", sa="emoji", created=T0 - 200),
    ])
    (row,) = rows
    assert row["dst"] == "emoji-new" and row["identity_mismatch"] and row["status"] == "unverified"
    # A mismatch names both identities in full: neither side is shortened to look like the other.
    assert row["server"] == IDENT("web", "emojivoto") and row["expected_server"] == IDENT("emoji", "emojivoto")
    assert row["msg"].startswith(f"sni_mismatch :8080 (SNI {IDENT('web', 'emojivoto')} is not emojivoto/emoji-new's "
                                 f"identity {IDENT('emoji', 'emojivoto')} (stale SNI to a reused pod IP? linkerd/linkerd2#6147)")


def test_mesh_identity_to_an_unmeshed_pod_and_app_tls_to_a_meshed_one(tmp_path):
    rows = edges_for(tmp_path, [
        flow("10.42.0.12", "10.42.0.41", 8080, f"tls13:{IDENT('db', 'emojivoto')}", at_s=0),
        flow("10.42.0.41", "10.42.0.12", 8443, "tls13:voting.example.com", at_s=1),
    ], [VOTING, pod("db", "10.42.0.41", meshed=False)])
    stale = one_edge(rows, "voting", "db")
    assert stale["identity_mismatch"] and stale["msg"].startswith(
        f"sni_mismatch :8080 (mesh identity {IDENT('db', 'emojivoto')} sent to emojivoto/db")
    assert stale["server"] == IDENT("db", "emojivoto")
    passthru = one_edge(rows, "db", "voting")
    assert passthru["identity_mismatch"] and passthru["status"] == "unverified"
    assert passthru["msg"] == "passthru :8443 (SNI voting.example.com: the application's own TLS, not mesh mTLS)"


def test_clienthello_without_sni_is_not_mesh_mtls(tmp_path):
    rows = edges_for(tmp_path, [flow("10.42.0.13", "10.42.0.12", 8080, "tls13:")], [VOTING, pod("web", "10.42.0.13")])
    (row,) = rows
    assert row["status"] == "unverified" and row["msg"] == "passthru :8080 (ClientHello without SNI: not Linkerd mTLS)"


def test_tls12_client_certificate_makes_mtls_proven(tmp_path):
    rows = edges_for(tmp_path, [flow("10.42.0.13", "10.42.0.12", 8080, f"tls12:{IDENT('voting', 'emojivoto')}")],
                     [VOTING, pod("web", "10.42.0.13", sa="web")])
    (row,) = rows
    assert (row["status"], row["mtls"], row["client"], row["tls_versions"]) == ("secured", "proven", "web.emojivoto", "TLS 1.2")


# -- ports -------------------------------------------------------------------------------------------------
def test_skip_ports_admin_port_and_unexpected_plaintext(tmp_path):
    db = pod("db", "10.42.0.61", sa="db", annotations={"config.linkerd.io/skip-inbound-ports": "5432"})
    rows = edges_for(tmp_path, [
        flow("10.42.0.12", "10.42.0.61", 5432, "http", at_s=0),   # annotated skip port: the operator's choice
        flow("10.42.0.12", "10.42.0.61", 4191, "http", at_s=1),   # proxy admin port
        flow("10.42.0.12", "10.42.0.61", 4567, "http", at_s=2),   # default skip port nobody asked for
        flow("10.42.0.12", "10.42.0.61", 8080, "http", at_s=3),   # a mesh port in plaintext
    ], [VOTING, db], by_port=True)
    by_port = {r["ports"]: r for r in rows}
    assert by_port["5432"]["status"] == "plaintext-expected" and by_port["5432"]["msg"].startswith("port_skipped :5432 (annotated")
    assert by_port["4191"]["status"] == "plaintext-expected" and by_port["4191"]["msg"] == "port_skipped :4191 (proxy admin port)"
    assert by_port["4567"]["status"] == "PLAINTEXT-UNEXPECTED" and by_port["4567"]["msg"].startswith("port_skipped :4567 (a default")
    assert by_port["8080"]["status"] == "PLAINTEXT-UNEXPECTED"
    assert by_port["8080"]["msg"] == "no_tls_from_remote :8080 (both pods meshed, plaintext on the wire)"
    (pair,) = analyze(tmp_path / "capture.pcap", pods=tmp_path / "pods.json").edge_rows
    assert pair["status"] == "PLAINTEXT-UNEXPECTED" and pair["unexpected"] == 2 and pair["flows"] == 4
    assert pair["msg"].startswith("no_tls_from_remote :8080 (both pods meshed, plaintext on the wire); port_skipped :4191,4567,5432")


def test_tls_plus_expected_plaintext_is_mixed(tmp_path):
    rows = edges_for(tmp_path, [
        flow("10.42.0.13", "10.42.0.12", 8080, f"tls13:{IDENT('voting', 'emojivoto')}", at_s=0),
        flow("10.42.0.13", "10.42.0.12", 4191, "http", at_s=1),
    ], [VOTING, pod("web", "10.42.0.13", sa="web")])
    (row,) = rows
    assert (row["status"], row["secured"], row["tls"], row["plaintext"]) == ("mixed", False, 1, 1)


def test_flows_without_evidence_are_unverified(tmp_path):
    rows = edges_for(tmp_path, [flow("10.42.0.13", "10.42.0.12", 8080, "syn")], [VOTING, pod("web", "10.42.0.13")])
    (row,) = rows
    assert (row["status"], row["unknown"], row["mtls"]) == ("unverified", 1, "none")
    assert row["msg"] == "no_evidence :8080 (no payload: SYN without answer)"


def test_localhost_hops_when_included(tmp_path):
    capture = tmp_path / "lo.pcap"
    capture.write_bytes(pg.ether_pcap(flow("10.42.0.12", "10.42.0.12", 8080, "http")))
    pods = write_pods(tmp_path / "pods.json", VOTING)
    assert analyze(capture, pods=pods).edge_rows == []
    (row,) = analyze(capture, pods=pods, include_localhost=True).edge_rows
    assert row["status"] == "plaintext-expected" and row["msg"].startswith("loopback :8080 (same IP both ends")


def test_wide_pod_list_keeps_mesh_unknown(tmp_path):
    capture = tmp_path / "c.pcap"
    capture.write_bytes(pg.ether_pcap(pg.merge(
        flow("10.42.0.13", "10.42.0.12", 8080, "http"),
        flow("10.42.0.13", "10.42.0.12", 8081, f"tls13:{IDENT('voting', 'emojivoto')}", at_s=1))))
    wide = tmp_path / "pods.txt"
    wide.write_text("NAMESPACE   NAME     READY   STATUS    RESTARTS   AGE   IP           NODE     NOMINATED NODE   READINESS GATES\n"
                    "emojivoto   voting   2/2     Running   0          1d    10.42.0.12   node-a   <none>           <none>\n"
                    "emojivoto   web      2/2     Running   0          1d    10.42.0.13   node-a   <none>           <none>\n")
    (row,) = analyze(capture, pods=wide).edge_rows
    assert row["status"] == "mixed" and row["src_meshed"] is None
    assert row["msg"].startswith("mesh_unknown :8080") and "identity_not_checked :8081" in row["msg"]
    assert "pod list from -o wide" in row["notes"]


# -- the gate, through the CLI ---------------------------------------------------------------------------
def run(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def clean_capture(tmp_path) -> tuple[Path, Path]:
    """secured + a kubelet probe: no unexpected plaintext, some plaintext, nothing unverified."""
    edges_for(tmp_path, [
        flow("10.42.0.13", "10.42.0.12", 8080, f"tls13:{IDENT('voting', 'emojivoto')}", at_s=0),
        flow(NODE_IP, "10.42.0.12", 8080, "http", at_s=1),
    ], [VOTING, pod("web", "10.42.0.13", sa="web")])
    return tmp_path / "capture.pcap", tmp_path / "pods.json"


@pytest.mark.parametrize("gates, code", [
    ((), 0),
    (("unexpected-plaintext",), 0),
    (("unverified",), 0),
    (("plaintext",), 3),
    (("unexpected-plaintext", "plaintext"), 3),
])
def test_gate_exit_codes_on_a_clean_capture(clean_capture, gates, code):
    capture, pods = clean_capture
    args = [a for g in gates for a in ("--fail-on", g)]
    result = run("analyze", capture, "--pods", pods, "--view", "edges", *args)
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith("SRC ") and "secured" in result.stdout
    gate_lines = [line for line in result.stderr.splitlines() if line.startswith("--fail-on")]
    assert gate_lines == ([] if code == 0 else ["--fail-on plaintext: 1 edge: node-a -> emojivoto/voting :8080"])


def test_gate_unverified_fails_on_flows_without_evidence(tmp_path):
    edges_for(tmp_path, [flow("10.42.0.13", "10.42.0.12", 8080, "syn")], [VOTING, pod("web", "10.42.0.13")])
    result = run("analyze", tmp_path / "capture.pcap", "--pods", tmp_path / "pods.json", "--fail-on", "unverified",
                 "--view", "edges", "--format", "json")
    assert result.returncode == 3
    assert '"status": "unverified"' in result.stdout
    assert result.stderr.splitlines()[-1] == "--fail-on unverified: 1 edge: emojivoto/web -> emojivoto/voting :8080"
