"""The public API a notebook needs, on the bundled lab capture: flows named by pod, the audit document,
and the first bytes of a flow read again from its capture."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

import analyzer
from analyzer import AnalyzerError, analyze
from analyzer.report.audit import build_audit

from paths import DEMO_CAPTURE, DEMO_PODS

H2C_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 3.4


@pytest.fixture(scope="module")
def report():
    return analyze(DEMO_CAPTURE, pods=DEMO_PODS)


@pytest.fixture(scope="module")
def named(report):
    return report.flows_with_pods()


def test_flows_carry_pod_names_and_their_own_status(report, named):
    assert list(named["flow_id"]) == list(report.flows["flow_id"])
    unexpected = named[named["flow_status"] == "PLAINTEXT-UNEXPECTED"]
    assert len(unexpected) == 10
    assert set(unexpected["src"]) == {"web-lnh8fhhndj-g9cvx"} and set(unexpected["dst"]) == {"voting-whmtqttntr-8t4wr"}
    assert set(unexpected["server_port"]) == {4567} and unexpected["src_meshed"].all() and unexpected["dst_meshed"].all()
    probes = named[named["src"] == "mtlslab-node"]
    assert set(probes["src_kind"]) == {"node"} and not probes["src_meshed"].any()
    assert set(probes["flow_status"]) == {"plaintext-expected"}
    assert str(named["src_meshed"].dtype) == "boolean" and str(named["flow_status"].dtype) == "string"


def test_flow_statuses_are_those_of_the_audit(report, named):
    doc = report.audit()
    assert {f["flow_id"]: f["flow_status"] for f in doc["flows"]} == dict(zip(named["flow_id"], named["flow_status"]))


def test_flows_roll_up_like_edges(report):
    by_deployment = report.flows_with_pods("deployment")
    pairs = set(zip(by_deployment["src"], by_deployment["dst"]))
    assert {(e["src"], e["dst"]) for e in report.edge_rows_by("deployment")} == pairs
    assert ("web", "voting") in pairs


def test_audit_hashes_what_the_report_read(report):
    doc = report.audit(fail_on=["unexpected-plaintext"])
    assert doc["policy"]["result"] == "fail"
    assert [c["file"] for c in doc["captures"]] == ["demo-transparent.pcapng"]
    assert doc["captures"][0]["sha256"] == hashlib.sha256(DEMO_CAPTURE.read_bytes()).hexdigest()
    assert doc["pods"]["sha256"] == hashlib.sha256(DEMO_PODS.read_bytes()).hexdigest()
    same = build_audit(report, [DEMO_CAPTURE], DEMO_PODS, fail_on=["unexpected-plaintext"])
    assert {k: v for k, v in doc.items() if k != "generated_at"} == {k: v for k, v in same.items() if k != "generated_at"}


def test_audit_needs_a_pod_list():
    with pytest.raises(AnalyzerError, match="pod list"):
        analyze(DEMO_CAPTURE).audit()


def test_evidence_is_the_cleartext_on_the_wire(report, named):
    h2c = int(named[named["flow_status"] == "PLAINTEXT-UNEXPECTED"]["flow_id"].iloc[0])
    ev = report.evidence(h2c)
    assert isinstance(ev, analyzer.Evidence) and ev.flow_id == h2c
    assert ev.client.startswith(H2C_PREFACE)
    assert b":status\x03200" in ev.server and b"application/grpc" in ev.server  # HPACK literal headers, cleartext
    probe = int(named[(named["src"] == "mtlslab-node") & (named["server_port"] == 8080)]["flow_id"].iloc[0])
    ev = report.evidence(probe, limit=21)
    assert ev.client == b"GET /ready HTTP/1.1\r\n" and ev.server.startswith(b"HTTP/1.1 200 OK")
    tls = int(named[named["verdict"] == "tls"]["flow_id"].iloc[0])
    assert report.evidence(tls).client[:3] == b"\x16\x03\x01"  # a TLS handshake record: nothing readable


def test_evidence_of_a_flow_that_is_not_there(report):
    with pytest.raises(AnalyzerError, match="no flow 9999"):
        report.evidence(9999)


def test_evidence_needs_the_capture_file():
    read, write = os.pipe()  # a stream, as from standard input: nothing to read again

    def feed() -> None:
        with os.fdopen(write, "wb") as f:
            f.write(DEMO_CAPTURE.read_bytes())

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(read, "rb") as stream:
        streamed = analyze(stream)
    writer.join()
    with pytest.raises(AnalyzerError, match="not read from a file"):
        streamed.evidence(streamed.flow_rows[0]["flow_id"])
