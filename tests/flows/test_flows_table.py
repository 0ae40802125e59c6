"""Flows: who is the client, where one connection ends and the next begins, counting and reassembly,
localhost exclusion. Every capture comes from ``pcapgen`` and runs through ``analyzer.analyze``.
"""

from __future__ import annotations

import pytest

import pcapgen as g
from support import absent, rows

CH_LEN = len(g.tls13(pq=True)[0][1])      # post-quantum ClientHello record, ~1.45 KB: 3 segments at MSS 500


def bytes_each_way(exchanges):
    return (sum(len(b) for d, b in exchanges if d == "c"), sum(len(b) for d, b in exchanges if d == "s"))


# --- client determination ---------------------------------------------------------------------
def test_client_is_the_syn_sender(one_flow):
    row = one_flow("tls13-identity")
    assert (row["client_ip"], row["client_port"], row["client_basis"]) == (g.CLIENT.ip, g.CLIENT.port, "syn")


def test_client_is_the_syn_sender_even_when_synack_is_first_in_the_file(one_flow):
    row = one_flow("synack-first")
    assert (row["client_ip"], row["client_port"]) == (g.CLIENT.ip, g.CLIENT.port)
    assert (row["server_ip"], row["server_port"]) == (g.SERVER.ip, g.SERVER.port)
    assert row["client_basis"] == "syn"
    assert row["verdict"] == "tls" and row["sni"] == g.IDENTITY_SNI


def test_without_syn_the_synack_receiver_is_the_client(one_flow):
    row = one_flow("no-syn")
    assert (row["client_ip"], row["client_port"], row["client_basis"]) == (g.CLIENT.ip, g.CLIENT.port, "synack")
    assert row["syn_seen"] is True                 # schema: "a SYN or SYN-ACK was captured"
    assert row["midstream"] is False
    assert row["verdict"] == "tls" and row["handshake"] == "completed"


def test_midstream_without_handshake_falls_back_to_ports(one_flow):
    """The server (port 4143) speaks first; the ephemeral port still marks the client."""
    row = one_flow("midstream-server-first")
    assert (row["client_ip"], row["client_port"]) == (g.CLIENT.ip, g.CLIENT.port)
    assert row["client_basis"] == "port"
    assert row["midstream"] is True and row["syn_seen"] is False


def test_midstream_capture_starting_at_the_clienthello_uses_the_hello(one_flow):
    row = one_flow("tls13-hello-midstream")
    assert (row["client_ip"], row["client_port"], row["client_basis"]) == (g.CLIENT.ip, g.CLIENT.port, "hello")
    assert row["midstream"] is True and row["syn_seen"] is False
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")


def test_midstream_between_ephemeral_ports_uses_the_first_packet(one_flow, write_capture):
    client, server = g.Endpoint("10.42.0.11", 45001), g.Endpoint("10.42.0.12", 45002)
    pkts = g.tcp_flow(g.midstream_records(), client=client, server=server, opening="none", close=None)
    row = one_flow(write_capture(g.ether_pcap(pkts)))
    assert (row["client_ip"], row["client_port"], row["client_basis"]) == (client.ip, client.port, "first-packet")


# --- one connection, or two ---------------------------------------------------------------------
@pytest.mark.parametrize("name, close_flag", [("reuse-after-fin", "fin_seen"), ("reuse-after-rst", "rst_seen")])
def test_new_syn_after_close_on_the_same_tuple_is_a_new_flow(analyze, scenario, name, close_flag):
    flows = sorted(rows(analyze(scenario(name)).flows), key=lambda f: f["first_ts"])
    assert len(flows) == 2
    first, second = flows
    assert first["flow_id"] != second["flow_id"]
    for f in flows:
        assert (f["client_ip"], f["client_port"], f["server_port"]) == (g.CLIENT.ip, g.CLIENT.port, g.SERVER.port)
        assert f["syn_seen"] is True and f["client_basis"] == "syn"
    assert first["verdict"] == "tls" and first[close_flag] is True
    assert second["verdict"] == "plaintext" and "GET /metrics" in second["reason"]
    assert (second["bytes_c2s"], second["bytes_s2c"]) == (len(g.HTTP_REQUEST), len(g.HTTP_RESPONSE))
    assert first["last_ts"] < second["first_ts"]


@pytest.mark.parametrize("first_opening", ["syn", "none"])
def test_new_syn_on_a_tuple_whose_close_was_not_captured_is_a_new_flow(analyze, write_capture, first_opening):
    """A TLS connection whose FIN/RST the capture missed (or that was aborted silently), then a SYN with a
    new ISN on the same tuple and cleartext HTTP.  A SYN only ever opens a connection, so this is a
    second flow, judged on its own bytes -- folded into the first, its plaintext would be reported as TLS."""
    first = g.tcp_flow(g.tls13(), opening=first_opening, close=None)
    second = g.tcp_flow([("c", g.HTTP_REQUEST), ("s", g.HTTP_RESPONSE)], isn_c=g.ISN_C + 5_000_000,
                        isn_s=g.ISN_S + 7_000_000, t0_ns=g.T0_NS + 10 * 10**9)
    flows = sorted(rows(analyze(write_capture(g.ether_pcap(first + second))).flows), key=lambda f: f["first_ts"])
    assert [(f["verdict"], f["syn_seen"]) for f in flows] == [("tls", first_opening == "syn"), ("plaintext", True)]
    assert "GET /metrics" in flows[1]["reason"]


def test_retransmitted_syn_is_not_a_new_flow(one_flow, write_capture):
    pkts = g.base_flow()
    pkts = [pkts[0]] + pkts             # the SYN twice, same ISN
    pkts = [g.Pkt(g.T0_NS + k * g.STEP_NS, p.l3, p.orig) for k, p in enumerate(pkts)]
    row = one_flow(write_capture(g.ether_pcap(pkts)))
    assert row["packets_c2s"] == 8 and row["verdict"] == "tls"


# --- counting and reassembly -----------------------------------------------------------------
def test_packets_and_bytes_each_way(one_flow):
    row = one_flow("tls13-pq-split")
    pkts = g.tcp_flow(g.tls13(pq=True), mss=500)
    c2s, s2c = bytes_each_way(g.tls13(pq=True))
    assert (row["packets_c2s"], row["packets_s2c"]) == (sum(p.orig for p in pkts), sum(not p.orig for p in pkts))
    assert (row["bytes_c2s"], row["bytes_s2c"]) == (c2s, s2c)


def test_retransmission_is_counted_on_the_wire_but_not_reassembled_twice(one_flow):
    """Segment 1 (middle of the ClientHello) is sent twice. Wire counts include it; the ClientHello
    still parses, which it would not if the retransmitted 500 bytes were appended again."""
    row = one_flow("retransmission")
    c2s, s2c = bytes_each_way(g.tls13(pq=True))
    assert row["bytes_c2s"] == c2s + 500 and row["bytes_s2c"] == s2c
    clean = g.tcp_flow(g.tls13(pq=True), mss=500)
    assert row["packets_c2s"] == sum(p.orig for p in clean) + 1
    assert row["verdict"] == "tls" and row["evidence"] == "handshake"
    assert row["sni"] == g.IDENTITY_SNI and row["handshake"] == "completed"
    assert row["gaps"] == 0


def test_overlapping_retransmission_with_new_boundaries(one_flow):
    """A resend of bytes 250..1000 of the ClientHello, cut differently from the originals."""
    row = one_flow("overlap-retransmission")
    c2s, _ = bytes_each_way(g.tls13(pq=True))
    assert row["bytes_c2s"] == c2s + 750
    assert row["verdict"] == "tls" and row["evidence"] == "handshake"
    assert row["sni"] == g.IDENTITY_SNI and row["handshake"] == "completed"
    assert row["gaps"] == 0


def test_long_flow_counts_every_byte_and_keeps_its_verdict(one_flow):
    """~1 MB each way: counters cover the whole flow though only the first bytes are inspected."""
    row = one_flow("large-tls-flow")
    assert (row["bytes_c2s"], row["bytes_s2c"]) == g.LARGE_FLOW_BYTES
    pkts = g._large_flow()
    assert (row["packets_c2s"], row["packets_s2c"]) == (sum(p.orig for p in pkts), sum(not p.orig for p in pkts))
    assert row["verdict"] == "tls" and row["handshake"] == "completed" and row["gaps"] == 0


def test_out_of_order_segments_are_reassembled_in_sequence_order(one_flow):
    row = one_flow("out-of-order")       # ClientHello segments 1 and 2 arrive swapped
    assert row["verdict"] == "tls" and row["evidence"] == "handshake"
    assert row["sni"] == g.IDENTITY_SNI and row["tls_version"] == "TLS 1.3"
    assert row["gaps"] == 0


def test_gap_is_recorded(one_flow):
    row = one_flow("gap-after-handshake")   # middle of the server flight never captured
    assert row["gaps"] == 1
    assert row["verdict"] == "tls" and row["sni"] == g.IDENTITY_SNI and row["tls_version"] == "TLS 1.3"


def test_gap_inside_the_clienthello_never_makes_it_plaintext(one_flow):
    row = one_flow("gap-in-clienthello")
    assert row["gaps"] == 1
    assert row["verdict"] != "plaintext"


def test_clean_flow_has_no_gaps_and_no_truncation(one_flow):
    row = one_flow("tls13-identity")
    assert row["gaps"] == 0 and row["truncated_packets"] == 0 and row["midstream"] is False


def test_syn_fin_rst_flags(one_flow):
    fin = one_flow("tls13-identity")
    rst = one_flow("rst-after-clienthello")
    syn_only = one_flow("syn-only")
    assert (fin["syn_seen"], fin["fin_seen"], fin["rst_seen"]) == (True, True, False)
    assert (rst["syn_seen"], rst["fin_seen"], rst["rst_seen"]) == (True, False, True)
    assert (syn_only["syn_seen"], syn_only["fin_seen"], syn_only["rst_seen"]) == (True, False, False)
    assert (syn_only["packets_c2s"], syn_only["packets_s2c"]) == (1, 0)


def test_ipv6_flow(one_flow):
    row = one_flow("link-ether-v6")
    assert row["ip_version"] == 6
    assert (row["client_ip"], row["server_ip"]) == (g.CLIENT6.ip, g.SERVER6.ip)


def test_concurrent_flows_are_kept_apart(analyze, scenario):
    report = analyze(scenario("pairs"))
    flows = rows(report.flows)
    assert len(flows) == 7
    assert sorted(f["client_port"] for f in flows) == list(range(40001, 40008))
    assert report.stats["flows"] == 7


# --- localhost: excluded, counted, listed on request --------------------------------------------
@pytest.mark.parametrize("kind", g.LOCALHOST_KINDS)
def test_localhost_flows_are_excluded_not_dropped(analyze, scenario, kind):
    path = scenario(f"localhost-{kind}")
    report = analyze(path)
    assert len(report.flows) == 0
    everything = rows(report.all_flows)
    assert len(everything) == 1
    row = everything[0]
    assert row["localhost"] is True
    assert row["localhost_reason"]
    assert row["verdict"] == "plaintext"           # still classified: the HTTP request is visible
    assert report.stats["excluded_localhost"] == 1
    shown = rows(analyze(path, include_localhost=True).flows)
    assert len(shown) == 1 and shown[0]["localhost"] is True


def test_pcapng_interface_named_lo_is_localhost(analyze, scenario):
    report = analyze(scenario("localhost-lo-interface"))
    assert len(report.flows) == 0
    [row] = rows(report.all_flows)
    assert row["localhost"] is True and row["localhost_reason"]
    assert report.stats["excluded_localhost"] == 1


def test_pod_to_pod_flow_is_not_localhost(one_flow):
    row = one_flow("tls13-identity")
    assert row["localhost"] is False and absent(row["localhost_reason"])


def test_localhost_reasons_name_the_rule(analyze, scenario):
    """Loopback interface (SLL/SLL2 ARPHRD 772), loopback address and same-IP are different rules."""
    reasons = {k: rows(analyze(scenario(f"localhost-{k}")).all_flows)[0]["localhost_reason"]
               for k in g.LOCALHOST_KINDS}
    assert reasons["same-ip"] != reasons["ipv4-loopback"]
    assert reasons["sll-arphrd-loopback"] != reasons["ipv4-loopback"]
    assert reasons["sll2-loopback"] == reasons["sll-arphrd-loopback"]


def test_localhost_and_mesh_flows_in_one_capture(analyze, write_capture):
    lo = g.tcp_flow([("c", g.HTTP_REQUEST), ("s", g.HTTP_RESPONSE)],
                    client=g.Endpoint("127.0.0.1", 40100), server=g.Endpoint("127.0.0.1", 4140))
    mesh = g.shift(g.base_flow(), g.STEP_NS // 2)
    report = analyze(write_capture(g.ether_pcap(g.merge(lo, mesh))))
    assert [f["verdict"] for f in rows(report.flows)] == ["tls"]
    assert len(report.all_flows) == 2
    assert report.stats["excluded_localhost"] == 1
    assert report.stats["flows"] == 2          # all flows; excluded_localhost says how many are hidden
