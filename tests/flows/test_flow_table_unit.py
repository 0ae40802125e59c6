"""``FlowTable`` by itself: frames in, finished flows out, with a recording inspector in place of the
TLS one.  No reader, no verdicts: what the table decides (who opened, where a connection ends, which
bytes reach the inspector and in what order, holes, eviction) is checked on the ``Flow`` objects.
"""

from __future__ import annotations

import pcapgen as g
from analyzer.analysis.inspector import connection_facts
from analyzer.analysis.verdict import client_direction
from analyzer.flows.table import CLOSED_IDLE_S, IDLE_S, FlowTable

class Recorder:
    """An inspector that keeps every in-order byte per direction and wants ``limit`` of them."""

    def __init__(self, limit: int = 1 << 30) -> None:
        self.got = [bytearray(), bytearray()]
        self.limit = limit

    def feed(self, direction: int, data: bytes) -> bool:
        self.got[direction] += data
        return len(self.got[direction]) < self.limit

    def client_hint(self) -> int | None:
        return None

    def segment(self, direction: int, seq: int, data: bytes, wire_len: int) -> bool:
        return False  # nothing is followed past a snaplen cut


def run(*batches: list[g.Pkt], limit: int = 1 << 30, evict_at: float | None = None):
    """Feed the batches, then evict (``evict_at``) or finish everything; the flows in finishing order."""
    finished, inspectors = [], []

    def new_inspector(_sport, _dport):
        inspectors.append(Recorder(limit))
        return inspectors[-1]

    table = FlowTable(new_inspector, finished.append)
    for pkts in batches:
        table.process(*g.frame_batch(pkts))
    if evict_at is None:
        table.finish_all()
    else:
        table.evict(evict_at)
    return finished, table


def payload(exchanges, direction: str) -> bytes:
    return b"".join(b for d, b in exchanges if d == direction)


def test_the_syn_sender_is_the_client_and_each_direction_arrives_whole():
    exchanges = g.tls13()
    (flow,), table = run(g.tcp_flow(exchanges))
    assert client_direction(connection_facts(flow), frozenset()) == (0, "syn")
    assert bytes(flow.inspector.got[0]) == payload(exchanges, "c")
    assert bytes(flow.inspector.got[1]) == payload(exchanges, "s")
    assert flow.bytes == [len(payload(exchanges, "c")), len(payload(exchanges, "s"))]
    assert flow.closed and flow.jumps == 0
    assert table.flows == {} and table.packets == len(g.tcp_flow(exchanges))


def test_out_of_order_and_retransmitted_segments_reach_the_inspector_once_in_order():
    exchanges = g.tls13()
    pkts = g.tcp_flow(exchanges, mss=100, reorder=[(1, 3)], retransmit=[2])
    (flow,), _ = run(pkts)
    assert bytes(flow.inspector.got[0]) == payload(exchanges, "c")
    assert bytes(flow.inspector.got[1]) == payload(exchanges, "s")
    assert flow.bytes[0] > len(payload(exchanges, "c"))  # the retransmission counts on the wire
    assert flow.jumps == 0


def test_a_lost_segment_after_inspection_ends_is_one_jump():
    """Once the inspector wants no more, sequence numbers alone are followed: one hole, one jump."""
    body = bytes(range(256)) * 8
    pkts = g.tcp_flow([("c", body)], mss=256, drop=[5])
    (flow,), _ = run(pkts, limit=256)
    assert bytes(flow.inspector.got[0]) == body[:256]
    assert flow.wants == [False, True]
    assert flow.jumps == 1


def test_a_new_syn_after_the_close_finishes_the_first_flow():
    first = g.tcp_flow([("c", b"GET / HTTP/1.1\r\n\r\n")])
    second = g.shift(g.tcp_flow([("c", b"GET /two HTTP/1.1\r\n\r\n")], isn_c=77_000), 10**9)
    finished, _ = run(first + second)
    assert [f.fid for f in finished] == [0, 1]
    assert finished[0].opener != -1 and finished[1].opener == -1  # the second took over the tuple
    assert bytes(finished[1].inspector.got[0]) == b"GET /two HTTP/1.1\r\n\r\n"


def test_a_retransmitted_syn_is_the_same_flow():
    pkts = g.tcp_flow([("c", b"x")])
    (flow,), _ = run([pkts[0]] + pkts)
    assert flow.packets[0] == sum(p.orig for p in pkts) + 1


def test_eviction_finishes_closed_flows_after_closed_idle_and_open_ones_after_idle():
    closed = g.tcp_flow([("c", b"a")])
    still_open = g.tcp_flow([("c", b"b")], client=g.Endpoint("10.42.0.21", 40002), close=None)
    last = max(p.ts_ns for p in closed + still_open) / 1e9
    finished, table = run(g.merge(closed, still_open), evict_at=last + CLOSED_IDLE_S + 1)
    assert [f.ports[0] for f in finished] == [g.CLIENT.port]
    assert len({id(f) for f, _ in table.flows.values()}) == 1
    table.evict(last + IDLE_S + 1)
    assert [f.ports[0] for f in finished] == [g.CLIENT.port, 40002]
    assert table.flows == {}


def test_udp_is_counted_per_host_pair_not_made_a_flow():
    finished, table = run(g.udp_flow([("c", b"q"), ("s", b"a"), ("c", b"q2")]))
    assert finished == []
    assert sum(table.not_tcp.values()) == 3 and len(table.not_tcp) == 2
