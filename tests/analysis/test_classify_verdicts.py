"""Verdicts: every TLS, plaintext and unknown case with its exact verdict, evidence and
the facts the reason must carry. One scenario capture per case, through ``analyzer.analyze``.
"""

from __future__ import annotations

import pytest

import pcapgen as g
from support import absent, rows

DECODE_8080 = ("tcp.port==8080,tls",)
DECODE_9999 = ("tcp.port==9999,tls",)
VERDICTS, EVIDENCE = {"tls", "plaintext", "unknown"}, {"handshake", "records", "payload", "none"}


def text(row: dict) -> str:
    """reason + handshake_detail, for facts that may be in either."""
    return f"{row['reason']} | {row['handshake_detail'] or ''}"


# --- TLS with a handshake ---------------------------------------------------------------------
def test_tls13_linkerd_identity(one_flow):
    row = one_flow("tls13-identity")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["sni"] == g.IDENTITY_SNI
    assert row["identity"] == "web.emojivoto"
    assert row["mesh"] is True
    assert row["mtls"] == "inferred"            # TLS 1.3 hides the client Certificate
    assert row["tls_version"] == "TLS 1.3"      # from supported_versions, not the 0x0303 record version
    assert row["handshake"] == "completed"
    assert "AES_128_GCM" in row["cipher_suite"]
    assert absent(row["alpn"]) and absent(row["alert"])
    assert row["app_protocol"] == "tls"
    assert g.IDENTITY_SNI in row["reason"] and "TLS 1.3" in row["reason"]
    assert row["plaintext_prefix_bytes"] == 0
    assert row["hint_conflict"] is False


def test_tls13_record_counts(one_flow):
    """Counted over the inspected first bytes (the schema says so), not the whole stream: the capture
    has 11 records (client ClientHello, CCS, 2 app data; server ServerHello, CCS, 5 app data), and the
    inspection reads the client's 4 and the server's first 5 (ServerHello, CCS, 3 app data) before
    the handshake is settled."""
    row = one_flow("tls13-identity")
    assert (row["tls_records"], row["app_data_records"]) == (9, 5)


def test_post_quantum_clienthello_split_over_three_segments(one_flow):
    assert len(g.tls13(pq=True)[0][1]) > 1200
    row = one_flow("tls13-pq-split")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["sni"] == g.IDENTITY_SNI and row["tls_version"] == "TLS 1.3"
    assert row["handshake"] == "completed" and row["mesh"] is True


def test_clienthello_fragmented_over_several_records(one_flow):
    row = one_flow("tls13-multi-record-hello")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["sni"] == g.IDENTITY_SNI and row["tls_version"] == "TLS 1.3"


def test_transport_header_alpn_to_4143_is_mesh(one_flow):
    row = one_flow("tls13-l5d-alpn")
    assert row["alpn"] == g.L5D_ALPN
    assert row["server_port"] == 4143
    assert row["mesh"] is True
    assert row["identity"] == "web.emojivoto"
    assert row["port_hint"]                      # 4143 is Linkerd's inbound port
    assert row["hint_conflict"] is False


def test_transport_header_alpn_alone_is_mesh(one_flow, write_capture):
    """No identity SNI (an ExternalWorkload name), but the transport.l5d.io/v1 ALPN."""
    pkts = g.tcp_flow(g.tls13(sni="vm-1.external.example", alpn=(g.L5D_ALPN,)))
    row = one_flow(write_capture(g.ether_pcap(pkts)))
    assert absent(row["identity"]) and row["mesh"] is True and row["mtls"] == "inferred"


@pytest.mark.parametrize("sni, identity", [
    ("emoji.emojivoto.serviceaccount.identity.linkerd.example.org", "emoji.emojivoto"),
    ("linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local", "linkerd-destination.linkerd"),
    ("default.team-a.serviceaccount.identity.cp-ns.td.internal", "default.team-a"),
])
def test_identity_sni_variants(one_flow, write_capture, sni, identity):
    """Any control-plane namespace and trust domain; the identity is shortened to sa.ns."""
    row = one_flow(write_capture(g.ether_pcap(g.tcp_flow(g.tls13(sni=sni)))))
    assert row["sni"] == sni and row["identity"] == identity and row["mesh"] is True


@pytest.mark.parametrize("sni", ["web.emojivoto.svc.cluster.local", "serviceaccount.identity.linkerd.cluster.local"])
def test_lookalike_sni_is_not_an_identity(one_flow, write_capture, sni):
    row = one_flow(write_capture(g.ether_pcap(g.tcp_flow(g.tls13(sni=sni)))))
    assert absent(row["identity"]) and row["mesh"] is False


def test_tls12_selected_alpn(one_flow):
    row = one_flow("tls12-alpn-selected")
    assert (row["verdict"], row["tls_version"]) == ("tls", "TLS 1.2")
    assert row["alpn"] == "h2,http/1.1" and row["alpn_selected"] == "h2"
    assert row["handshake"] == "completed"


def test_non_ascii_alpn_is_escaped_not_fatal(one_flow):
    row = one_flow("tls13-non-ascii-alpn")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["alpn"].endswith("odd,h2") and "\\x" in repr(row["alpn"])   # backslash-escaped bytes
    assert row["sni"] == g.IDENTITY_SNI


def test_tls13_non_linkerd_sni(one_flow):
    row = one_flow("tls13-plain-sni")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["sni"] == "api.example.com"
    assert absent(row["identity"])
    assert row["mesh"] is False
    assert row["alpn"] == "h2,http/1.1"
    assert row["mtls"] == "unknown"             # TLS 1.3 hides client auth; no mesh identity to infer from


def test_tls13_without_sni(one_flow):
    row = one_flow("tls13-no-sni")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert absent(row["sni"]) and absent(row["identity"]) and row["mesh"] is False


def test_tls_on_an_unhinted_port_is_found_by_its_bytes(one_flow):
    row = one_flow("tls13-odd-port")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["server_port"] == 9999 and absent(row["port_hint"])


def test_hello_retry_request(one_flow):
    row = one_flow("tls13-hrr")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["tls_version"] == "TLS 1.3"
    assert row["handshake"] == "completed"


def test_hello_retry_request_is_not_a_negotiated_server_hello(one_flow):
    """Client hangs up after the HRR: no version was negotiated and the handshake did not complete."""
    row = one_flow("tls13-hrr-abandoned")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["handshake"] in ("failed", "incomplete")
    assert absent(row["tls_version"])
    lowered = text(row).lower()
    assert "retry" in lowered or "hrr" in lowered


def test_tls12_client_certificate_proves_mtls(one_flow):
    row = one_flow("tls12-client-cert")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["tls_version"] == "TLS 1.2"
    assert row["mtls"] == "proven"
    assert row["handshake"] == "completed"
    assert "ECDHE_RSA_WITH_AES_128_GCM_SHA256" in row["cipher_suite"]


def test_tls12_empty_client_certificate_is_not_mtls(one_flow):
    row = one_flow("tls12-empty-client-cert")
    assert row["tls_version"] == "TLS 1.2"
    assert row["mtls"] == "none"


def test_alert_after_clienthello_fails_the_handshake_naming_the_server(one_flow):
    row = one_flow("alert-after-clienthello")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["handshake"] == "failed"
    assert "server" in text(row).lower()
    assert "handshake_failure" in (row["alert"] or "").lower().replace(" ", "_")
    assert absent(row["tls_version"])          # no ServerHello, no negotiated version


def test_rst_after_clienthello_fails_the_handshake(one_flow):
    row = one_flow("rst-after-clienthello")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["handshake"] == "failed"
    assert row["rst_seen"] is True
    lowered = text(row).lower()
    assert "server" in lowered and ("rst" in lowered or "reset" in lowered)


def test_client_closing_after_clienthello_is_named(one_flow):
    """The client sends FIN first (it gave up); the server's FIN only answers it."""
    row = one_flow("client-fin-after-clienthello")
    assert row["handshake"] == "failed"
    assert "client" in row["handshake_detail"].lower()


def test_clienthello_only_is_incomplete(one_flow, write_capture):
    pkts = g.tcp_flow([("c", g.tb.handshake_record(g.tb.client_hello()))], close=None)
    row = one_flow(write_capture(g.ether_pcap(pkts)))
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["handshake"] == "incomplete"
    assert row["sni"] == g.IDENTITY_SNI


# --- TLS without a handshake ------------------------------------------------------------------
def test_midstream_application_data_records(one_flow):
    row = one_flow("midstream-records")
    assert (row["verdict"], row["evidence"]) == ("tls", "records")
    assert row["midstream"] is True
    assert row["handshake"] == "not-seen"
    assert absent(row["sni"]) and absent(row["tls_version"])
    # counted over the inspected first bytes: at least the client's first chunk (2) and the server's (1)
    assert row["tls_records"] >= 3 and row["app_data_records"] == row["tls_records"]
    assert row["mtls"] != "proven"


def test_midstream_starting_inside_a_record_is_not_plaintext(one_flow):
    row = one_flow("midstream-unaligned")
    assert row["verdict"] != "plaintext"


def test_starttls_smtp_is_tls_with_the_cleartext_prefix(one_flow):
    row = one_flow("smtp-starttls")
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["app_protocol"] == "smtp+starttls"
    assert row["plaintext_prefix_bytes"] > 0
    assert row["plaintext_prefix_bytes"] in (g.SMTP_CLIENT_PREFIX, g.SMTP_CLIENT_PREFIX + g.SMTP_SERVER_PREFIX)
    assert row["sni"] == "mail.example.com" and row["tls_version"] == "TLS 1.3"
    assert "smtp" in row["reason"].lower()
    # after the upgrade the handshake is as complete as in the plain TLS 1.3 flow
    assert row["handshake"] == "completed", row["handshake_detail"]
    assert row["tls_records"] > 0 and row["app_data_records"] > 0


# --- plaintext --------------------------------------------------------------------------------
def test_http_request(one_flow):
    row = one_flow("http-request")
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")
    assert row["app_protocol"] == "http/1.1"
    assert "GET /metrics" in row["reason"]
    assert row["handshake"] == "not-seen" and absent(row["tls_version"]) and absent(row["sni"])
    assert row["mtls"] == "none" and row["mesh"] is False
    assert row["hint_conflict"] is False


def test_http_response_first(one_flow):
    """Capture started after the request: only the response (then a later request) is seen."""
    row = one_flow("http-response-first")
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")
    assert row["app_protocol"] == "http/1.1"
    assert "HTTP/1.1 200" in row["reason"] or "GET /metrics" in row["reason"]
    assert row["midstream"] is True


def test_http_response_only(one_flow):
    row = one_flow("http-response-only")
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")
    assert row["app_protocol"] == "http/1.1"
    assert "HTTP/1.1 200" in row["reason"] or "response" in row["reason"].lower()


def test_kubelet_probe_on_admin_port_is_expected_plaintext(one_flow):
    """4191 is the proxy admin port: probes there are plaintext by design, not a contradiction."""
    row = one_flow("http-probe-4191")
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")
    assert "GET /ready" in row["reason"]
    assert row["port_hint"] and row["hint_conflict"] is False


def test_h2c_preface(one_flow):
    row = one_flow("h2c-preface")
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")
    assert row["app_protocol"] == "h2c"
    lowered = row["reason"].lower()
    assert "http/2" in lowered or "h2c" in lowered


def test_opaque_binary_is_plaintext_with_an_escaped_sample(one_flow):
    row = one_flow("opaque-binary")
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")
    assert "\\x00\\x01\\x02\\xff\\xfeOPAQUE" in row["reason"]   # the first bytes, escaped
    assert "\x00" not in row["reason"] and "\n" not in row["reason"]
    assert len(row["reason"]) < 400                      # one line with a *short* sample, not a dump
    assert absent(row["sni"]) and absent(row["tls_version"])


def test_ssh_is_encrypted_but_not_tls(one_flow):
    row = one_flow("ssh-banner")
    assert row["verdict"] != "tls"
    assert row["app_protocol"] == "ssh"
    assert "SSH" in row["reason"] and "not TLS" in row["reason"]
    # SSH is encrypted but not TLS: unknown, not plaintext (the bytes after the banner are encrypted)
    assert row["verdict"] == "unknown"
    assert row["evidence"] == "payload"


# --- unknown ----------------------------------------------------------------------------------
def test_snaplen_68_is_unknown(one_flow):
    row = one_flow("snaplen-68")
    assert (row["verdict"], row["evidence"]) == ("unknown", "none")
    assert "snaplen" in row["reason"].lower()
    assert row["truncated_packets"] == 5


def test_syn_only_is_unknown(one_flow):
    row = one_flow("syn-only")
    assert (row["verdict"], row["evidence"]) == ("unknown", "none")
    assert row["handshake"] == "not-seen"


def test_no_payload_is_unknown(one_flow):
    row = one_flow("no-payload")
    assert (row["verdict"], row["evidence"]) == ("unknown", "none")
    assert "payload" in row["reason"].lower()
    assert (row["bytes_c2s"], row["bytes_s2c"]) == (0, 0)


def test_port_alone_never_decides(one_flow):
    """A silent connection to Linkerd's mTLS port is still unknown."""
    row = one_flow("no-payload")
    assert row["server_port"] == 4143 and row["port_hint"]
    assert row["verdict"] == "unknown"


# --- port hints -------------------------------------------------------------------------------
def test_decode_as_with_http_payload_reports_the_conflict(one_flow):
    row = one_flow("http-8080", decode_as=DECODE_8080)
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")   # payload wins
    assert row["port_hint"]
    assert row["hint_conflict"] is True
    assert "GET /metrics" in row["reason"]


def test_decode_as_with_tls_payload_agrees(one_flow):
    row = one_flow("tls-8080", decode_as=DECODE_8080)
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["port_hint"] and row["hint_conflict"] is False


def test_decode_as_is_what_makes_the_hint_on_an_unknown_port(one_flow):
    hinted = one_flow("http-9999", decode_as=DECODE_9999)
    plain = one_flow("http-9999")
    assert hinted["verdict"] == plain["verdict"] == "plaintext"
    assert hinted["port_hint"] and hinted["hint_conflict"] is True
    assert absent(plain["port_hint"]) and plain["hint_conflict"] is False


def test_repeated_decode_as(one_flow):
    row = one_flow("http-9999", decode_as=DECODE_8080 + DECODE_9999)
    assert row["hint_conflict"] is True


def test_builtin_linkerd_port_hint_conflict(one_flow):
    row = one_flow("http-4143")
    assert row["server_port"] == 4143 and row["port_hint"]
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")
    assert row["hint_conflict"] is True


# --- invariants over every scenario -------------------------------------------------------------
ALL_FLOW_SCENARIOS = sorted(n for n in g.FLOW_SCENARIOS if n not in ("header-only", "unsupported-linktype")
                            and not n.startswith(("truncated", "corrupt")))   # damage: tests/capture/test_formats.py


@pytest.mark.parametrize("name", ALL_FLOW_SCENARIOS)
def test_every_flow_has_a_closed_set_verdict_and_a_one_line_reason(analyze, scenario, name):
    for row in rows(analyze(scenario(name), include_localhost=True).all_flows):
        assert row["verdict"] in VERDICTS
        assert row["evidence"] in EVIDENCE
        assert row["handshake"] in {"completed", "failed", "incomplete", "not-seen"}
        assert row["mtls"] in {"proven", "inferred", "none", "unknown"}
        assert row["reason"] and "\n" not in row["reason"]
        assert row["client_basis"] in {"syn", "synack", "port", "first-packet", "hello"}
        # tls and plaintext rest on bytes seen on the wire
        if row["verdict"] in ("tls", "plaintext"):
            assert row["evidence"] in ("handshake", "records", "payload")
        if row["verdict"] == "tls":
            assert row["evidence"] in ("handshake", "records")
        if row["evidence"] == "none":
            assert row["verdict"] == "unknown"
        if row["mtls"] == "proven":
            assert row["tls_version"] != "TLS 1.3"


# --- host pairs -------------------------------------------------------------------------------
def test_pairs_status_and_counts(analyze, scenario):
    report = analyze(scenario("pairs"))
    pairs = {p["client_ip"]: p for p in rows(report.pairs)}
    assert set(pairs) == {"10.42.0.11", "10.42.0.13", "10.42.0.14", "10.42.0.15"}
    expect = {   # client: (flows, tls, plaintext, unknown, status)
        "10.42.0.11": (2, 2, 0, 0, "all-tls"),
        "10.42.0.13": (2, 1, 1, 0, "plaintext-present"),
        "10.42.0.14": (2, 1, 0, 1, "mixed"),
        "10.42.0.15": (1, 0, 0, 1, "unknown-only"),
    }
    for ip, (n, tls, plain, unknown, status) in expect.items():
        p = pairs[ip]
        assert p["server_ip"] == g.SERVER.ip
        assert (p["flows"], p["tls"], p["plaintext"], p["unknown"], p["status"]) == (n, tls, plain, unknown, status), ip
    flows = rows(report.flows)
    for ip, p in pairs.items():
        mine = [f for f in flows if f["client_ip"] == ip]
        assert p["bytes"] == sum(f["bytes_c2s"] + f["bytes_s2c"] for f in mine)
        assert "TLS 1.3" in (p["tls_versions"] or "") or p["tls"] == 0
        assert str(g.SERVER.port) in str(p["server_ports"])
        assert p["first_ts"] == min(f["first_ts"] for f in mine)
        assert p["last_ts"] == max(f["last_ts"] for f in mine)
    assert "80" in str(pairs["10.42.0.13"]["server_ports"])
    assert g.IDENTITY_SNI in str(pairs["10.42.0.11"]["snis"])


def test_pairs_exclude_localhost_unless_asked(analyze, scenario):
    path = scenario("localhost-ipv4-loopback")
    assert len(analyze(path).pairs) == 0
    assert len(analyze(path, include_localhost=True).pairs) == 1
