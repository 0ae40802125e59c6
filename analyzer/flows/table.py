"""Frames -> bidirectional TCP flows, plus per-host-pair counts of everything that is not TCP.

Role: the connection layer (Zeek's ``Connection``).  Keys flows by 5-tuple in both directions, counts
packets and payload bytes each way, tracks SYN/FIN/RST, decides the client, and hands each
direction's in-order bytes to an *inspector* (``analysis.inspector.FlowInspector``) until it has seen enough.

Rules:
  1. This module never looks inside payloads.  What the bytes mean is the inspector's business; the
     table only asks it ``feed(direction, data) -> wants_more``.
  2. ``process()`` is the per-packet hot path: locals, tuples, one dict lookup per packet; anything
     rare (a new flow, SYN/FIN/RST, payload still wanted) goes to a method.  A new flow is cheap: its
     streams and inspector are made on its first payload byte (``Flow.open_payload``), which most
     flows of a flood never send.
  3. Memory grows with live flows only: a flow that closed (FIN both ways or RST) and went quiet, or
     any flow idle too long, is finished and handed to ``on_finish``; the table forgets it.  And it is
     bounded whatever the capture holds: past ``MAX_OPEN_FLOWS`` live flows the quietest are finished
     early, judged on what they showed; out-of-order bytes share one ``reassembly.Budget``; past
     ``MAX_HOST_PAIRS`` not-TCP host pairs the new ones are counted in one bucket (``FOLDED``).  Every
     early release is counted in ``released``.
  4. Directions are ``orig`` (0, the first packet's sender) and ``resp`` (1) until the end, when
     ``analysis.verdict.client_direction`` maps them to TLS roles (SYN, SYN-ACK, ClientHello, ports).
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Callable, Iterable, Protocol

from ..capture.decode import ETH_IPV4, IPPROTO_TCP, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, SKIP_NAMES, TCP4_FAST, decode_frame
from .reassembly import UNBOUNDED, Budget, Stream

TH_FIN = 0x01  # RFC 9293 3.1
TH_SYN = 0x02
TH_RST = 0x04
TH_ACK = 0x10
SYN_FIN_RST = TH_SYN | TH_FIN | TH_RST

EVICT_EVERY = 1 << 16  # packets between scans for finished flows
COPY_WINDOW_S = 0.0005  # one segment seen on two interfaces of a node: microseconds apart, never an RTO
CLOSED_IDLE_S = 30.0  # a closed flow with no packet for this long is finished
IDLE_S = 600.0  # any flow with no packet for this long is finished
MAX_OPEN_FLOWS = 20_000  # live flows held at most (~1.5 KiB, ~4 KiB with payload); past it the quietest quarter is finished early
RELEASE_SHARE = 4  # 1/RELEASE_SHARE of the live flows is finished when the table is full
MAX_HOST_PAIRS = 20_000  # (source, destination, protocol) keys of not-TCP traffic counted one by one
FOLDED = (b"", b"", -1)  # the bucket of the not-TCP packets of every host pair past ``MAX_HOST_PAIRS``

_PORTS = struct.Struct("!HH")
SEQ_MASK = 0xFFFFFFFF
SEQ_HALF = 0x80000000


def follow_seq(nxt: int | None, seq: int, wire_len: int) -> tuple[int | None, bool]:
    """Sequence numbers followed without the bytes: (next expected seq, was this a forward jump)."""
    end = (seq + wire_len) & SEQ_MASK
    if nxt is None or seq == nxt:
        return end, False
    if (seq - nxt) & SEQ_MASK < SEQ_HALF:  # bytes in between were never captured (yet)
        return end, True
    if (end - nxt) & SEQ_MASK < SEQ_HALF:  # overlaps the end: a partial retransmission
        return end, False
    return nxt, False


def note_flags(conn, d: int, flags: int) -> None:
    """Record what SYN, SYN-ACK, FIN and RST say about a connection (any object with ``syn_dir``,
    ``synack_dir``, ``fin`` and ``rst``: a ``Flow``, or the tshark engine's stream)."""
    if flags & TH_SYN:
        if flags & TH_ACK:
            if conn.synack_dir is None:
                conn.synack_dir = d
        elif conn.syn_dir is None:
            conn.syn_dir = d
    if flags & TH_FIN:
        conn.fin[d] = True
    if flags & TH_RST:
        conn.rst[d] = True


def flow_key(src: bytes, dst: bytes, sport: int, dport: int) -> bytes:
    """The table's key for one direction: src, dst, sport, dport as on the wire (12 or 36 bytes).

    For an option-less IPv4 header this is the slice ``ip[12:24]``, which the fast path takes as is.
    """
    return src + dst + _PORTS.pack(sport, dport)


class Inspector(Protocol):
    """What the table needs from a payload analyzer."""

    def feed(self, direction: int, data: bytes) -> bool: ...  # True while it wants more bytes
    def client_hint(self) -> int | None: ...  # direction that sent a ClientHello, if any
    # Each segment once the in-order bytes ended at a snaplen cut: True while it wants more.
    def segment(self, direction: int, seq: int, data: bytes, wire_len: int) -> bool: ...


class Flow:
    """One TCP connection.  Index 0 = orig (first packet's sender), 1 = resp."""

    __slots__ = (
        "fid", "addrs", "ports", "first_ts", "last_ts", "packets", "bytes", "syn_dir", "synack_dir",
        "isn", "fin", "rst", "loopback", "truncated", "streams", "wants", "inspector", "capture",
        "nxt", "jumps", "opener", "track", "last_seg", "last_ack", "new_inspector", "budget", "keys",
    )

    def __init__(self, fid: int, key: bytes, ts: float, new_inspector: Callable[[int, int], "Inspector"],
                 capture: str, budget: Budget = UNBOUNDED):
        self.fid = fid
        n = (len(key) - 4) >> 1  # address length: 4 or 16
        src, dst = key[:n], key[n:2 * n]
        sport, dport = _PORTS.unpack_from(key, 2 * n)
        self.keys = (key, flow_key(dst, src, dport, sport))  # the table's keys, one per direction
        self.addrs = (src, dst)
        self.ports = (sport, dport)
        self.first_ts = self.last_ts = ts
        self.packets = [0, 0]
        self.bytes = [0, 0]  # TCP payload bytes on the wire, retransmissions included
        self.syn_dir: int | None = None  # sent a SYN without ACK
        self.synack_dir: int | None = None
        self.isn: list[int | None] = [None, None]
        self.fin = [False, False]
        self.rst = [False, False]
        self.loopback = False  # a frame crossed a loopback interface
        self.truncated = 0  # packets whose payload the snaplen cut
        # Made on the first payload byte (``open_payload``): most flows of a flood never carry one.
        self.streams: tuple[Stream, Stream] | None = None
        self.inspector = None
        self.new_inspector = new_inspector
        self.budget = budget
        self.wants = [True, True]  # the inspector still wants bytes in this direction
        self.capture = capture
        self.nxt: list[int | None] = [None, None]  # next expected seq once payload is no longer read
        self.jumps = 0  # forward sequence jumps after that: lost (or reordered) segments
        self.opener = 0  # TCP flags of the first packet; -1 when the flow took over a reused tuple
        self.track: Track | None = None  # set in a later byte range (``analyzer.parallel``)
        self.last_seg: list[tuple | None] = [None, None]  # (seq, wire_len, ts) of the last data segment
        self.last_ack: tuple | None = None  # (direction, TCP seq..window bytes, interface, ts): last without payload

    def seq_jump(self, d: int, seq: int, wire_len: int) -> None:
        """A segment that does not continue where the last one ended (payload no longer inspected)."""
        self.nxt[d], jumped = follow_seq(self.nxt[d], seq, wire_len)
        if jumped:
            self.jumps += 1
            if self.track is not None:
                self.track.after[d] += 1

    def open_payload(self) -> tuple[Stream, Stream]:
        """The streams and the inspector, made for the first payload segment (an ISN already seen is
        the streams' base)."""
        self.streams = (Stream(self.budget), Stream(self.budget))
        for d in (0, 1):
            if self.isn[d] is not None:
                self.streams[d].set_isn(self.isn[d])
        self.inspector = self.new_inspector(*self.ports)
        return self.streams

    def deliver(self, d: int, seq: int, data: bytes, wire_len: int) -> None:
        """One segment's payload for the inspector, in order (only while it wants this direction)."""
        track = self.track
        if track is not None:
            track.follow(d, seq, wire_len)
        stream = (self.streams or self.open_payload())[d]
        if stream.stopped:  # past a snaplen cut: the inspector follows what sequence numbers tell
            self.seq_jump(d, seq, wire_len)
            self.wants[d] = self.inspector.segment(d, seq, data, wire_len)
            following = True
        else:
            chunk = stream.add(seq, data, wire_len)
            if chunk:
                self.wants[d] = self.inspector.feed(d, chunk)
            following = False
            if stream.stopped:
                self.wants[d] = self.wants[d] and stream.truncated and self.inspector.segment(d, seq, data, wire_len)
        if not self.wants[d]:
            if stream.base is not None and not following:
                # From here on only sequence numbers are followed, to count later holes cheaply.
                self.nxt[d] = (stream.base + stream.nxt) & SEQ_MASK if not stream.stopped else None
            if track is not None:
                track.handover[d] = self.packets[d]
                track.aligned[d] = track.nxt[d] == self.nxt[d]

    def turn(self, other: "Flow") -> int:
        """0 when ``other`` (the same tuple) has this flow's direction 0 as its own direction 0, else 1."""
        return 0 if (other.addrs[0], other.ports[0]) == (self.addrs[0], self.ports[0]) else 1

    def absorb(self, later: "Flow") -> None:
        """Add ``later`` -- this connection as a later byte range of the file saw it, from its own first
        packet (``analyzer.parallel``) -- to this flow: counts add up, flags and times accumulate.  Its
        payload is not looked at here, nor the holes its inspection met (``analyzer.parallel`` counts
        those from its ``track``)."""
        s = self.turn(later)
        for d in (0, 1):
            e = d ^ s
            self.packets[e] += later.packets[d]
            self.bytes[e] += later.bytes[d]
            self.fin[e] = self.fin[e] or later.fin[d]
            self.rst[e] = self.rst[e] or later.rst[d]
            if self.isn[e] is None:
                self.isn[e] = later.isn[d]
            if not self.wants[e]:  # go on following sequence numbers where ``later`` left off
                track = later.track
                nxt = later.nxt[d] if track is None or track.handover[d] is not None else track.nxt[d]
                if nxt is not None:
                    self.nxt[e] = nxt
        if self.syn_dir is None and later.syn_dir is not None:
            self.syn_dir = later.syn_dir ^ s
        if self.synack_dir is None and later.synack_dir is not None:
            self.synack_dir = later.synack_dir ^ s
        self.last_ts = max(self.last_ts, later.last_ts)
        self.loopback = self.loopback or later.loopback
        self.truncated += later.truncated

    @property
    def closed(self) -> bool:
        return self.rst[0] or self.rst[1] or (self.fin[0] and self.fin[1])

    def is_reuse(self, d: int, flags: int, seq: int) -> bool:
        """Does this SYN (no ACK) open a new connection on the tuple?  A SYN only ever opens one: yes,
        unless it repeats the ISN this side already sent (a retransmission), or the flow has carried no
        payload and not closed (a simultaneous open).  After FIN or RST this is port reuse; without them
        the capture missed the close (or the peer aborted silently) -- folding the new connection into
        the old flow would hide its bytes behind the old verdict."""
        if flags & TH_ACK:
            return False
        isn = self.isn[d]
        if isn is not None:
            return seq != isn
        return bool(self.bytes[0] or self.bytes[1] or self.closed)


class Track:
    """A flow first seen in a later byte range of the file (``analyzer.parallel``): what an earlier
    range's flow, its inspection over, would have counted had it followed these segments itself.

    Per direction: the first payload segment's seq, sequence numbers followed from there while this
    flow's own inspection runs (``nxt``, ``jumps``), the packet count when that inspection stopped
    (``handover``), whether the flow then went on from where those sequence numbers had got to
    (``aligned``: not so when the inspection stopped with reordered bytes pending, and then ``after``
    is not what one pass would count), and the jumps counted after it (``after``).
    """

    __slots__ = ("first", "nxt", "jumps", "handover", "aligned", "after")

    def __init__(self) -> None:
        self.first: list[int | None] = [None, None]
        self.nxt: list[int | None] = [None, None]
        self.jumps = [0, 0]
        self.handover: list[int | None] = [None, None]
        self.aligned = [True, True]
        self.after = [0, 0]

    def follow(self, d: int, seq: int, wire_len: int) -> None:
        if self.first[d] is None:
            self.first[d] = seq
        self.nxt[d], jumped = follow_seq(self.nxt[d], seq, wire_len)
        self.jumps[d] += jumped


class FlowTable:
    """Feed it batches of frames; it calls ``on_finish(flow)`` for every flow, once, in finish order."""

    def __init__(
        self,
        new_inspector: Callable[[int, int], Inspector],
        on_finish: Callable[[Flow], None],
        loopback_ifaces: Iterable[int] = (),
    ):
        self.new_inspector = new_inspector  # (sport, dport) of the first packet -> inspector
        self.on_finish = on_finish
        self.loopback_ifaces = frozenset(loopback_ifaces)
        self.flows: dict[bytes, tuple[Flow, int]] = {}  # flow_key -> (flow, direction)
        self.next_fid = 0
        self.packets = 0
        self.skipped: Counter[str] = Counter()  # reason -> frames
        self.not_tcp: Counter[tuple[bytes, bytes, int]] = Counter()  # (src, dst, proto) -> packets
        self.not_tcp_loopback: set[tuple[bytes, bytes, int]] = set()
        self.capture = ""
        self.track = False  # give new flows a ``Track`` (a later byte range)
        self.max_flows = MAX_OPEN_FLOWS
        self.max_host_pairs = MAX_HOST_PAIRS
        self.budget = Budget()  # out-of-order bytes held by all the flows' streams
        self.released_flows = 0  # flows finished early because ``max_flows`` were live
        self._since_evict = 0
        self._now = 0.0

    def add_loopback_ifaces(self, ifaces: Iterable[int]) -> None:
        self.loopback_ifaces = self.loopback_ifaces | frozenset(ifaces)

    def process(self, buf: bytes, frames: list) -> None:
        """The hot path: one batch of ``(ts, linktype, off, caplen, wirelen, iface)`` frames (any iterable
        with ``len``: a ``capture.reader.FrameBatch`` or a list).

        The common frame -- SLL2, SLL or Ethernet carrying an option-less, unfragmented IPv4 TCP
        segment -- is decoded inline with the one ``unpack_from`` of ``decode.TCP4_FAST``, and its flow
        key is the 12 address+port bytes sliced from the header; every other frame goes through
        ``decode_frame``, which accepts exactly the same frames, so the result does not depend on
        the path.  Calling ``decode_frame`` per frame and keying by a 4-tuple is measurably slower
        (``benchmarks/run.py``): the inline path skips a function call and a tuple per packet.
        """
        flows = self.flows
        get = flows.get
        skipped = self.skipped
        loop_ifaces = self.loopback_ifaces
        fast_lt = -1
        unpack = None
        ts = self._now
        for ts, linktype, off, caplen, wirelen, iface in frames:
            if linktype != fast_lt:
                fast_lt = linktype
                unpack, ip_off, etype_first, loop_arphrd = TCP4_FAST.get(linktype, (None, 0, False, 0))
                min_cap = ip_off + 40  # IPv4 + TCP headers, as decode_frame requires
            if unpack is not None and caplen >= min_cap:
                a, b, ver_ihl, total, frag, proto, key, seq, doff, flags = unpack(buf, off)
                if etype_first:
                    etype, arphrd = a, b
                else:
                    etype, arphrd = b, a
                ip = off + ip_off
                poff = ip + 20 + (doff >> 4) * 4
                l4_end = ip + total
                fast = (etype == ETH_IPV4 and ver_ihl == 0x45 and proto == IPPROTO_TCP and not frag & 0x3FFF
                        and total >= 40 and doff >= 0x50 and poff <= l4_end)
            else:
                fast = False
            if fast:
                end = off + caplen
                wlen = l4_end - poff
                clen = (end if end < l4_end else l4_end) - poff
                if clen < 0:
                    clen = 0
                loop = arphrd == loop_arphrd
            else:
                r = decode_frame(buf, off, caplen, wirelen, linktype)
                if r.__class__ is int:
                    skipped[SKIP_NAMES[r]] += 1
                    continue
                if r[0] != IPPROTO_TCP:
                    self._count_other(r, iface in loop_ifaces)
                    continue
                _, src, dst, sport, dport, seq, _ack, flags, poff, clen, wlen, loop = r
                key = flow_key(src, dst, sport, dport)
                doff = 0  # the TCP header's place is not known here: copies without payload are counted
            hit = get(key)
            if hit is None or (flags & TH_SYN and hit[0].is_reuse(hit[1], flags, seq)):
                hit = self._new_flow(hit, key, ts, flags)
            flow, d = hit
            flow.last_ts = ts
            flow.packets[d] += 1
            if loop or (loop_ifaces and iface in loop_ifaces):
                flow.loopback = True
            if flags & SYN_FIN_RST:
                self._flags(flow, d, flags, seq)
            if wlen:
                # A node's ``-i any`` sees a segment on each interface it crosses (the pod's veth, the
                # peer's veth): the same seq and length again at once, with no other segment of this
                # direction in between, is that copy - a retransmission comes an RTO or three
                # duplicate ACKs (later segments) after.  Counted once, fed to reassembly once.
                last = flow.last_seg[d]
                if last is not None and last[0] == seq and last[1] == wlen and ts - last[2] < COPY_WINDOW_S:
                    flow.packets[d] -= 1
                    continue
                flow.last_seg[d] = (seq, wlen, ts)
                flow.bytes[d] += wlen
                if clen < wlen:
                    flow.truncated += 1
                if flow.wants[d]:
                    flow.deliver(d, seq, buf[poff:poff + clen], wlen)
                elif seq != flow.nxt[d]:
                    flow.seq_jump(d, seq, wlen)
                else:
                    flow.nxt[d] = (seq + wlen) & SEQ_MASK
            elif doff:
                # A segment without payload (a pure ACK, SYN, FIN): the same IP id, seq, ack, flags and
                # window again at once, from another interface of the capture (pcapng interface, or SLL2
                # ifindex), is that copy; SLL (v1, `-i any`'s default) does not say which interface, and
                # one interface never shows one packet twice, so there any such repeat is a copy.  A
                # duplicate ACK is another IP packet (another id) from the same interface, a window update
                # has another window.  (Its flags were noted above: noting them twice is harmless.)
                tcp = poff - (doff >> 4) * 4
                seen = buf[tcp + 4:tcp + 16] + buf[ip + 4:ip + 6]
                where = ((iface, buf[off + 4:off + 8]) if linktype == LINKTYPE_LINUX_SLL2
                         else None if linktype == LINKTYPE_LINUX_SLL else iface)
                last = flow.last_ack
                if (last is not None and last[0] == d and last[1] == seen and (where is None or last[2] != where)
                        and ts - last[3] < COPY_WINDOW_S):
                    flow.packets[d] -= 1
                    continue
                flow.last_ack = (d, seen, where, ts)
        n = len(frames)
        self.packets += n
        self._since_evict += n
        self._now = ts
        if self._since_evict >= EVICT_EVERY:
            self._since_evict = 0
            self.evict(ts)

    @property
    def released(self) -> Counter:
        """Early releases so far: flows finished at the open-flow limit, streams that stopped at their
        hole at the buffer limit, not-TCP packets of host pairs counted in one bucket."""
        return Counter({"flows_released_early": self.released_flows,
                        "streams_released_early": self.budget.released,
                        "not_tcp_packets_folded": self.not_tcp.get(FOLDED, 0)})

    def _count_other(self, r: tuple, loop_iface: bool) -> None:
        key = (r[1], r[2], r[0])
        if key not in self.not_tcp and len(self.not_tcp) >= self.max_host_pairs:
            key = FOLDED
        self.not_tcp[key] += 1
        if r[3] or loop_iface:
            self.not_tcp_loopback.add(key)

    def _new_flow(self, old, key: bytes, ts: float, flags: int) -> tuple[Flow, int]:
        if old is not None:  # a SYN that opens a new connection on the tuple (Flow.is_reuse)
            self._finish(old[0])
        elif len(self.flows) >= 2 * self.max_flows:
            self._release()
        flow = Flow(self.next_fid, key, ts, self.new_inspector, self.capture, self.budget)
        flow.opener = flags if old is None else -1
        if self.track:
            flow.track = Track()
        self.next_fid += 1
        self.flows[flow.keys[1]] = (flow, 1)
        hit = self.flows[key] = (flow, 0)  # written last: a connection to itself has one key, direction 0
        return hit

    def _flags(self, flow: Flow, d: int, flags: int, seq: int) -> None:
        note_flags(flow, d, flags)
        if flags & TH_SYN and flow.isn[d] is None:
            flow.isn[d] = seq
            if flow.streams is not None:
                flow.streams[d].set_isn(seq)

    def _finish(self, flow: Flow) -> None:
        flows = self.flows
        for key in flow.keys:
            hit = flows.get(key)
            if hit is not None and hit[0] is flow:
                del flows[key]
        for s in flow.streams or ():
            s.finish()
        self.on_finish(flow)

    def evict(self, now: float) -> None:
        """Finish flows that closed and went quiet, or sat idle too long (capture time, not wall time)."""
        done = [f for f, d in self.flows.values()  # each live flow once
                if not d and (now - f.last_ts > IDLE_S or (f.closed and now - f.last_ts > CLOSED_IDLE_S))]
        for flow in done:
            self._finish(flow)

    def _release(self) -> None:
        """The table is full: finish the quietest share of the live flows now, closed ones first, each
        judged on what it showed (a later packet of one starts a new, mid-stream flow)."""
        # Each live flow once; ``Flow.closed`` written out: this runs for every live flow at every release.
        live = sorted([(not (f.rst[0] or f.rst[1] or (f.fin[0] and f.fin[1])), f.last_ts, f.fid, f)
                       for f, d in self.flows.values() if not d])
        for *_, flow in live[:max(1, len(live) // RELEASE_SHARE)]:
            self._finish(flow)
            self.released_flows += 1

    def finish_all(self) -> None:
        """End of input: every live flow is finished, oldest first."""
        live = sorted({id(f): f for f, _ in self.flows.values()}.values(), key=lambda f: f.fid)
        for flow in live:
            self._finish(flow)
