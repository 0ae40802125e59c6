"""The per-packet fast paths give the same flows as the general ones.

``FlowTable.process`` decodes the common IPv4/TCP frame inline (``decode.TCP4_FAST``) and keys flows by
header bytes; every other frame goes through ``decode_frame``.  ``CaptureReader`` hands frames over as a
flat ``FrameBatch``.  These tests run the same captures with the fast path switched off and compare.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

import pcapgen as g
from analyzer.capture import reader as reader_mod
from analyzer.capture.reader import CaptureReader, FrameBatch
from analyzer.analysis.inspector import FlowInspector
from analyzer.flows import table as table_mod
from analyzer.flows.table import FlowTable, flow_key

ARPHRD_LOOPBACK = 772


def _flows(path) -> list[tuple]:
    seen: list[tuple] = []
    fed: dict[int, list] = {}

    class Recorder:
        def __init__(self) -> None:
            self.i = FlowInspector()
            self.log: list = []

        def feed(self, d: int, data: bytes) -> bool:
            self.log.append((d, bytes(data)))
            return self.i.feed(d, data)

        def client_hint(self):
            return self.i.client_hint()

        def segment(self, d: int, seq: int, data: bytes, wire_len: int) -> bool:
            self.log.append((d, seq, bytes(data), wire_len))
            return self.i.segment(d, seq, data, wire_len)

    def finish(flow) -> None:
        seen.append((flow.addrs, flow.ports, flow.packets, flow.bytes, flow.loopback, flow.truncated, flow.fin,
                     flow.rst, flow.syn_dir, flow.synack_dir, flow.isn, flow.jumps, flow.inspector.log))

    with CaptureReader(path) as r:
        table = FlowTable(lambda sport, dport: Recorder(), finish)
        for buf, frames in r.iter_batches():
            table.process(buf, frames)
        table.finish_all()
        fed.update(skipped=dict(table.skipped), not_tcp=dict(table.not_tcp))
    return seen + [fed]


def _captures():
    tls = g.tcp_flow(g.tls13(pq=True), mss=500)
    other_port = g.Endpoint(g.CLIENT.ip, g.CLIENT.port + 1)  # a flow of its own
    opts = g.tcp_flow(g.tls13(), client=other_port, ip_options=[g.IPOption_Router_Alert()])
    six = g.tcp_flow(g.tls13(), client=g.CLIENT6, server=g.SERVER6)
    udp = g.udp_flow([("c", b"\x00" * 40)])
    pkts = g.merge(tls, g.shift(opts, 10**9), g.shift(six, 2 * 10**9), g.shift(udp, 3 * 10**9))
    yield "ether", g.pcap_bytes(g.encap(pkts, "ether"))
    yield "sll", g.pcap_bytes(g.encap(pkts, "sll"))
    yield "sll2", g.pcap_bytes(g.encap(pkts, "sll2"))
    yield "sll2-loopback", g.pcap_bytes(g.encap(pkts, "sll2", arphrd=ARPHRD_LOOPBACK))
    yield "sll-loopback", g.pcap_bytes(g.encap(pkts, "sll", arphrd=ARPHRD_LOOPBACK))
    yield "sll2-snaplen", g.pcap_bytes(g.encap(pkts, "sll2"), snaplen=90)
    yield "raw", g.pcap_bytes(g.encap(pkts, "raw"))


@pytest.mark.parametrize("name,data", list(_captures()), ids=lambda v: v if isinstance(v, str) else "")
def test_fast_path_matches_decode_frame(monkeypatch, tmp_path, name, data):
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(data)
    fast = _flows(path)
    monkeypatch.setattr(table_mod, "TCP4_FAST", {})
    slow = _flows(path)
    assert fast == slow
    assert len(fast) == 4  # three TCP flows (fast path, IPv4 options, IPv6) and the counters


def test_flow_key_is_the_ipv4_header_slice():
    ip = bytes.fromhex("4500003c000040004006" "0000" "0a000001" "0a000002" "1f90" "01bb")
    assert flow_key(ip[12:16], ip[16:20], 8080, 443) == ip[12:24]


def test_frame_batch_iterates_frames():
    flat = [1.5, 276, 16, 60, 60, 0, 2.5, 276, 92, 70, 80, 1]
    batch = FrameBatch(flat)
    assert len(batch) == 2 and batch
    assert list(batch) == [(1.5, 276, 16, 60, 60, 0), (2.5, 276, 92, 70, 80, 1)]
    assert not FrameBatch([])


def test_reader_batches_are_frame_batches(tmp_path):
    path = tmp_path / "one.pcap"
    path.write_bytes(g.pcap_bytes(g.encap(g.tcp_flow(g.tls13()), "sll2")))
    with CaptureReader(path) as r:
        batches = list(r.iter_batches())
    assert all(isinstance(frames, reader_mod.FrameBatch) for _, frames in batches)
    assert sum(len(frames) for _, frames in batches) == r.info.frames > 0


def test_parser_is_created_on_a_directions_first_bytes():
    ins = FlowInspector()
    assert ins.parsers == [None, None]
    ins.feed(0, g.tls13()[0][1][:3])
    assert ins.parsers[0] is not None and ins.parsers[1] is None


def test_a_failed_parser_is_freed_without_the_cyclic_gc():
    ins = FlowInspector()
    ins.feed(0, b"GET")  # too short to judge: the parser waits
    ref = weakref.ref(ins.parsers[0])
    gc.disable()
    try:
        ins.feed(0, b" / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ins.parsers[0] is None and ins.errors[0] is not None
        assert ref() is None  # no parser <-> traceback cycle keeps it alive
    finally:
        gc.enable()


def test_a_run_raises_the_gc_threshold_and_restores_it(tmp_path, monkeypatch):
    """``pipeline.run`` makes the cyclic GC's young passes rarer while it reads (they re-walked every live
    flow), and gives the caller's thresholds back afterwards, also when the read hits damage."""
    from analyzer import analyze, pipeline

    seen = []
    original = pipeline.FlowTable.process

    def spy(self, buf, frames):
        seen.append(gc.get_threshold()[0])
        return original(self, buf, frames)

    monkeypatch.setattr(pipeline.FlowTable, "process", spy)
    before = gc.get_threshold()
    analyze(Path(__file__).resolve().parents[1] / "captures" / "demo-transparent.pcapng", jobs=1)
    assert seen and all(t >= pipeline.GC_THRESHOLD for t in seen)
    assert gc.get_threshold() == before
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(g.pcap_header(1) + b"\xff" * 40)  # a corrupt record header: a warning
    assert analyze(bad, jobs=1).stats["warnings"]
    assert gc.get_threshold() == before
