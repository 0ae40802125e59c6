"""Identity words that cannot contradict themselves: a mismatch names both full identities (an SNI that
differs only in the trust domain does not read as equal), and TLS from a client that is not a known
meshed pod says ``client_unknown`` and is not ``secured`` unless the operator trusts unknown clients.

Real pipeline: captures from ``pcapgen``, pods from ``kube_builders.injected_pod`` (injector-shaped,
with the trust domain in ``_l5d_trustdomain``).
"""

from __future__ import annotations

import pcapgen as pg
import pytest
from analyzer import analyze
from kube_builders import injected_pod, write_pods

CLIENT, SERVER, OUTSIDE, NODE = "10.42.0.11", "10.42.0.12", "192.0.2.50", "10.42.0.1"
IDENT = "{}.{}.serviceaccount.identity.linkerd.{}".format
CREATED = "2020-01-01T00:00:00Z"


def tls_flow(src: str, sni: str, sport: int = 40100):
    return pg.tcp_flow(pg.tls13(sni=sni), client=pg.Endpoint(src, sport), server=pg.Endpoint(SERVER, 4143))


def edges(tmp_path, flows, trust_domain="cluster.local", **kw) -> list[dict]:
    capture = tmp_path / "capture.pcap"
    capture.write_bytes(pg.ether_pcap(pg.merge(*flows)))
    pods = write_pods(tmp_path / "pods.json",
                      injected_pod("vote-bot", CLIENT, sa="vote-bot", created=CREATED, trust_domain=trust_domain),
                      injected_pod("web", SERVER, sa="web", created=CREATED, trust_domain=trust_domain))
    return analyze(capture, pods=pods).edge_rows_by(**kw)


def test_a_trust_domain_only_mismatch_names_both_full_identities(tmp_path):
    sent = IDENT("web", "emojivoto", "cluster.local")
    expected = IDENT("web", "emojivoto", "prod.example.org")
    (row,) = edges(tmp_path, [tls_flow(CLIENT, sent)], trust_domain="prod.example.org")
    assert (row["status"], row["identity_mismatch"], row["secured"]) == ("unverified", True, False)
    assert row["server"] == sent and row["expected_server"] == expected  # not both "web.emojivoto"
    assert row["msg"] == (f"sni_mismatch :4143 (SNI {sent} is not emojivoto/web's identity {expected} "
                          "(stale SNI to a reused pod IP? linkerd/linkerd2#6147))")


def test_the_destination_identity_is_still_shortened_when_it_matches(tmp_path):
    (row,) = edges(tmp_path, [tls_flow(CLIENT, IDENT("web", "emojivoto", "cluster.local"))])
    assert (row["status"], row["server"], row["expected_server"], row["client"]) == (
        "secured", "web.emojivoto", "web.emojivoto", "vote-bot.emojivoto")
    assert row["msg"] == ""


@pytest.mark.parametrize("src, who", [(OUTSIDE, "external 192.0.2.50"), (NODE, "node node-a")])
def test_tls_from_an_unknown_client_is_not_secured(tmp_path, src, who):
    (row,) = edges(tmp_path, [tls_flow(src, IDENT("web", "emojivoto", "cluster.local"))])
    assert (row["status"], row["secured"], row["mtls"], row["client"]) == ("unverified", False, "unknown", "")
    assert row["msg"] == f"client_unknown :4143 (the client {who} is not a known meshed pod)"
    assert row["unverified"] == 1


def test_trusting_unknown_clients_counts_them_as_secured_and_still_says_so(tmp_path):
    (row,) = edges(tmp_path, [tls_flow(OUTSIDE, IDENT("web", "emojivoto", "cluster.local"))],
                   trust_unknown_clients=True)
    assert (row["status"], row["secured"], row["mtls"], row["unverified"]) == ("secured", True, "inferred", 0)
    assert row["msg"] == ("client_unknown :4143 (the client external 192.0.2.50 is not a known meshed pod; "
                          "trusted by the operator)")


def test_the_cli_gate_and_the_option(tmp_path, cli):
    capture = tmp_path / "capture.pcap"
    capture.write_bytes(pg.ether_pcap(tls_flow(OUTSIDE, IDENT("web", "emojivoto", "cluster.local"))))
    pods = write_pods(tmp_path / "pods.json", injected_pod("web", SERVER, sa="web", created=CREATED))
    strict = cli("analyze", capture, "--pods", pods, "--fail-on", "unverified")
    assert strict.returncode == 3 and "client_unknown :4143" in strict.stdout.decode()
    trusting = cli("analyze", capture, "--pods", pods, "--fail-on", "unverified", "--trust-unknown-clients")
    assert trusting.returncode == 0, trusting.stderr.decode()
    assert "secured" in trusting.stdout.decode()
