"""The verdict rules by themselves: a finished ``Flow`` (built by ``FlowTable`` from packets, inspected
by the real payload inspector) turned into its row by ``pipeline.flow_row``, without a reader, a report or an
engine.  Each case names the rule it pins: what earns ``tls``, what earns ``plaintext``, and what must
stay ``unknown`` -- never a false ``tls``.
"""

from __future__ import annotations

import pytest

import pcapgen as g
from analyzer.analysis.inspector import new_inspector
from analyzer.flows.table import FlowTable
from analyzer.pipeline import Context, flow_row


def verdict_row(pkts, ctx: Context = Context()) -> dict:
    finished = []
    table = FlowTable(new_inspector, finished.append)
    table.process(*g.frame_batch(pkts))
    table.finish_all()
    (flow,) = finished
    return flow_row(flow, ctx)


def test_a_completed_tls13_handshake_is_tls_by_handshake():
    row = verdict_row(g.base_flow())
    assert (row["verdict"], row["evidence"], row["handshake"]) == ("tls", "handshake", "completed")
    assert (row["tls_version"], row["sni"], row["identity"]) == ("TLS 1.3", g.IDENTITY_SNI, "web.emojivoto")


@pytest.mark.parametrize("client_cert, mtls", [(True, "proven"), (False, "none")])
def test_tls12_shows_whether_the_client_sent_a_certificate(client_cert, mtls):
    """TLS 1.2 certificates travel in clear: a client Certificate proves mTLS, its absence disproves it."""
    row = verdict_row(g.tcp_flow(g.tls12(client_cert=client_cert)))
    assert (row["verdict"], row["evidence"], row["tls_version"]) == ("tls", "handshake", "TLS 1.2")
    assert row["mtls"] == mtls


def test_http_request_and_response_are_plaintext_by_payload():
    row = verdict_row(g.tcp_flow([("c", b"GET /metrics HTTP/1.1\r\nHost: web\r\n\r\n"),
                                  ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")],
                                 server=g.Endpoint("10.42.0.12", 8080)))
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")


def test_a_connection_without_payload_is_unknown_with_a_reason():
    row = verdict_row(g.tcp_flow([]))
    assert (row["verdict"], row["evidence"]) == ("unknown", "none")
    assert row["reason"].startswith("no payload")


def test_tls_records_seen_mid_stream_are_tls_by_records():
    row = verdict_row(g.tcp_flow(g.midstream_records(), syn=False, close=None))
    assert (row["verdict"], row["evidence"]) == ("tls", "records")


def test_a_single_record_header_alone_is_not_tls():
    """Five bytes that look like a record header, and nothing after: no proof either way."""
    row = verdict_row(g.tcp_flow([("c", bytes.fromhex("1703030040"))], syn=False, close=None))
    assert row["verdict"] == "unknown"


@pytest.mark.parametrize("drop", [0, 1])
def test_a_hole_inside_the_clienthello_never_makes_the_flow_plaintext(drop):
    row = verdict_row(g.tcp_flow(g.tls13(pq=True), mss=500, drop=[drop]))
    assert row["verdict"] != "plaintext"
    assert row["gaps"] >= 1


def test_binary_bytes_that_are_not_tls_framing_are_not_tls():
    """Encrypted by the application, maybe, but not by the mesh: the wire is not TLS."""
    row = verdict_row(g.tcp_flow([("c", g.opaque(600, seed=1)), ("s", g.opaque(600, seed=2))],
                                 server=g.Endpoint("10.42.0.12", 7000)))
    assert (row["verdict"], row["evidence"]) == ("plaintext", "payload")
    assert row["reason"].startswith("not TLS framing")


def test_decode_as_names_the_port_but_does_not_make_plaintext_tls():
    row = verdict_row(g.tcp_flow([("c", b"GET / HTTP/1.1\r\n\r\n")], server=g.Endpoint("10.42.0.12", 7000)),
                      Context(decode_as=frozenset({7000})))
    assert row["verdict"] == "plaintext"
