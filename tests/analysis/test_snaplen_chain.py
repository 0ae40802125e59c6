"""TLS record headers followed by TCP sequence number across segments the snaplen cut.

A long-lived connection joined mid-stream with ``-s 96`` keeps each segment's first bytes only: the
record chain is followed by sequence number (``tls.detect.RecordChain``), so the flow is ``tls`` by
``records`` when several headers land exactly where the previous lengths say -- and a plaintext flow
cut the same way never is (HTTP bodies with ``17 03 03`` at segment starts, random bytes, chains that
break).  Captures are crafted with scapy (``pcapgen``), cut by the real snaplen arithmetic of a pcap
writer, and read by the real reader and flow table.
"""

from __future__ import annotations

import random

import pytest

import pcapgen as g
import tlsbytes as tb
from analyzer.pipeline import Context, flow_row
from analyzer.analysis.inspector import new_inspector
from analyzer.capture.reader import CaptureReader
from analyzer.flows.table import FlowTable
from analyzer.tls.detect import RecordChain

SNAP = 96  # Ethernet 14 + IPv4 20 + TCP 20: 42 payload bytes captured per segment
MSS = 1448


def rows_of(pkts, tmp_path, snaplen: int = SNAP) -> list[dict]:
    """Every flow's row, the packets written as a pcap cut at ``snaplen`` and read back."""
    path = tmp_path / "cut.pcap"
    path.write_bytes(g.ether_pcap(pkts, snaplen=snaplen))
    finished = []
    table = FlowTable(new_inspector, finished.append)
    with CaptureReader(path) as reader:
        for buf, frames in reader.iter_batches():
            table.process(buf, frames)
    table.finish_all()
    return [flow_row(flow, Context()) for flow in finished]


def row_of(pkts, tmp_path, snaplen: int = SNAP) -> dict:
    (row,) = rows_of(pkts, tmp_path, snaplen)
    return row


def long_lived(n: int = 12, seed: int = 7, big_every: int = 0) -> list[tuple[str, bytes]]:
    """Requests and responses of a connection long past its handshake: one record per write, sizes
    from a few dozen bytes to several segments (every ``big_every``-th response a 16 KiB record)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append(("c", tb.app_data(rnd.randrange(60, 900), seed=seed * 100 + i)))
        size = 16384 if big_every and i % big_every == 0 else rnd.randrange(100, 1400)
        out.append(("s", tb.app_data(size, seed=seed * 100 + 50 + i)))
    return out


def test_a_mid_stream_tls_connection_cut_by_snaplen_96_is_tls_by_records(tmp_path):
    row = row_of(g.tcp_flow(long_lived(), syn=False, close=None, mss=MSS), tmp_path)
    assert (row["verdict"], row["evidence"], row["midstream"]) == ("tls", "records", True)
    assert row["truncated_packets"] > 0
    assert "framed by sequence number across segments the snaplen cut" in row["reason"], row["reason"]


def test_records_longer_than_a_segment_do_not_stop_the_chain(tmp_path):
    """A 16 KiB record ends inside a segment's uncaptured tail: the chain is out of step until the next
    segment that starts with a header, then confirms again."""
    row = row_of(g.tcp_flow(long_lived(12, seed=3, big_every=2), syn=False, close=None, mss=MSS), tmp_path)
    assert (row["verdict"], row["evidence"]) == ("tls", "records"), row["reason"]


def test_the_same_connection_without_the_cut_stays_tls(tmp_path):
    row = row_of(g.tcp_flow(long_lived(), syn=False, close=None, mss=MSS), tmp_path, snaplen=262144)
    assert (row["verdict"], row["evidence"], row["truncated_packets"]) == ("tls", "records", 0)
    assert "sequence number" not in row["reason"]


def test_one_header_at_a_segment_start_is_not_enough(tmp_path):
    """Two records one way, each header at a segment start, never confirmed by a third: unknown."""
    pkts = g.tcp_flow([("c", tb.app_data(700, seed=1)), ("c", tb.app_data(700, seed=2))],
                      syn=False, close=None, mss=MSS)
    row = row_of(pkts, tmp_path)
    assert row["verdict"] == "unknown", row["reason"]


def test_two_confirmed_headers_are_the_threshold(tmp_path):
    """Three records: the second and third land where the first and second said -- the mid-stream rule's
    two whole records."""
    pkts = g.tcp_flow([("c", tb.app_data(n, seed=n)) for n in (700, 650, 600)], syn=False, close=None, mss=MSS)
    row = row_of(pkts, tmp_path)
    assert (row["verdict"], row["evidence"]) == ("tls", "records"), row["reason"]


def _http_with_record_lookalikes(seed: int) -> list[tuple[str, bytes]]:
    """Plaintext HTTP: a request, then a response whose body segments each start with 17 03 03 and a
    length that is not where the next one starts."""
    rnd = random.Random(seed)
    body = b"".join(b"\x17\x03\x03" + rnd.randrange(1, 16384).to_bytes(2, "big") + rnd.randbytes(MSS - 5)
                    for _ in range(20))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(body)
    pad = MSS - len(head)  # the body starts at a segment boundary
    return [("c", b"GET /blob HTTP/1.1\r\nHost: web\r\n\r\n"), ("s", head + b"x" * pad + body)]


@pytest.mark.parametrize("seed", range(5))
def test_http_bodies_with_record_bytes_at_segment_starts_are_never_tls(tmp_path, seed):
    row = row_of(g.tcp_flow(_http_with_record_lookalikes(seed), mss=MSS), tmp_path)
    assert row["verdict"] == "plaintext", row["reason"]
    mid = row_of(g.tcp_flow(_http_with_record_lookalikes(seed)[1:], syn=False, close=None, mss=MSS), tmp_path)
    assert mid["verdict"] != "tls", mid["reason"]


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_cut_by_the_snaplen_are_never_tls(tmp_path, seed):
    rnd = random.Random(seed)
    exchanges = [(rnd.choice("cs"), rnd.randbytes(rnd.randrange(50, 5000))) for _ in range(30)]
    row = row_of(g.tcp_flow(exchanges, syn=False, close=None, mss=MSS), tmp_path)
    assert row["verdict"] != "tls", row["reason"]


def test_a_chain_that_breaks_makes_the_direction_not_record_framing(tmp_path):
    """Headers at segment starts, but one says the next header is 10 bytes into a later segment's
    captured bytes and those bytes are not one: the direction is not TLS, whatever confirms after it."""
    good = [tb.app_data(n, seed=n) for n in (500, 400, 300, 200, 100)]
    liar = b"\x17\x03\x03" + (MSS + 10 - 5).to_bytes(2, "big") + bytes(MSS - 5)  # next header due at +10 of the next
    junk = b"\x00" * 10 + b"GARBAGE-NOT-A-HEADER" + bytes(300)
    sent = [good[0], liar, junk] + good[1:]
    pkts = g.tcp_flow([("c", r) for r in sent], syn=False, close=None, mss=MSS)
    row = row_of(pkts, tmp_path)
    assert row["verdict"] != "tls", row["reason"]


class TestRecordChain:
    """The chain by itself: seq, captured bytes, wire length."""

    @staticmethod
    def header(length: int, ctype: int = 23) -> bytes:
        return bytes((ctype, 3, 3)) + length.to_bytes(2, "big")

    def test_headers_where_predicted_are_confirmed_across_the_wrap(self):
        chain = RecordChain()
        seq = 0xFFFFFF00  # the chain crosses 2**32
        for length in (300, 200, 100, 50):
            chain.add(seq, self.header(length) + bytes(20), 5 + length)
            seq = (seq + 5 + length) & 0xFFFFFFFF
        assert (chain.headers, chain.confirmed, chain.broken) == (4, 3, False)

    def test_a_header_due_in_uncaptured_bytes_puts_it_out_of_step_not_broken(self):
        chain = RecordChain()
        chain.add(1000, self.header(3000) + bytes(20), 1448)  # next due at 4005: inside a cut tail
        chain.add(2448, bytes(25), 1448)
        chain.add(3896, bytes(25), 1448)
        assert (chain.next, chain.broken) == (None, False)
        chain.add(5344, self.header(100) + bytes(20), 105)  # picks up at a segment start, unconfirmed
        chain.add(5449, self.header(100) + bytes(20), 105)
        assert (chain.headers, chain.confirmed, chain.broken) == (3, 1, False)

    def test_a_captured_non_header_where_one_is_due_breaks_it(self):
        chain = RecordChain()
        chain.add(0, self.header(95) + bytes(20), 100)
        chain.add(100, b"GET / HTTP/1.1\r\n" + bytes(10), 1448)
        assert chain.broken and chain.confirmed == 0
        chain.add(1548, self.header(100) + bytes(20), 105)  # nothing counts after a break
        assert chain.headers == 1

    def test_retransmissions_are_ignored(self):
        chain = RecordChain()
        chain.add(0, self.header(95) + bytes(20), 100)
        chain.add(0, b"junk" * 10, 100)  # a retransmission behind the furthest byte seen
        chain.add(100, self.header(95) + bytes(20), 100)
        assert (chain.headers, chain.confirmed, chain.broken) == (2, 1, False)


@pytest.mark.parametrize("share", [0.2, 0.5, 0.8])
def test_byte_ranges_follow_the_chain_as_one_pass_does(tmp_path, share):
    """A cut through the middle of the chain: the earlier range's flow still follows record headers, so
    the later range's segments are replayed into it (``parallel._rescan``) and the rows are one pass's."""
    from analyzer import analyze, parallel

    flows = [g.tcp_flow(long_lived(10, seed=s), syn=False, close=None, mss=MSS,
                        client=g.Endpoint("10.42.0.11", 42000 + s)) for s in range(3)]
    path = tmp_path / "ranges.pcap"
    path.write_bytes(g.ether_pcap(g.merge(*flows), snaplen=SNAP))
    with CaptureReader(path) as reader:
        offsets = [off - 16 for _buf, frames in reader.iter_batches() for _ts, _lt, off, *_ in frames]
    cut = offsets[int(len(offsets) * share)]
    part = parallel.analyze_file(path, [0, cut, None], frozenset(), 0, None)
    one = analyze(path, jobs=1, include_localhost=True)
    assert part is not None, "the seam did not hold"
    assert part.rows == one.all_flow_rows
    assert [r["verdict"] for r in one.all_flow_rows] == ["tls"] * 3
