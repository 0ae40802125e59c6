"""Deterministic capture builders for tests: packets, link layers, file formats and named scenarios.

Role: turn "a client sends these bytes, the server answers those" into the exact bytes of a pcap or
pcapng file, so that every reader, flow and verdict test runs the real pipeline on a real file.
Zeek's ``tcp_flow()`` helper (``testing/btest/Traces/*.pcap.py``) is the model.

Layers, each a plain function:
  ``tcp_flow`` / ``udp_flow``  ->  ``Pkt`` list (L3 bytes, direction, timestamp in ns)
  ``encap``                    ->  ``Frame`` list (link-layer bytes + link type)
  ``pcap_bytes`` / ``pcapng_bytes`` / ``gzip_bytes`` / ``truncate``  ->  file bytes
  ``SCENARIOS``                ->  one named capture per feature the analyzer must handle

Must not: use unseeded randomness, the clock, or the network; depend on ``analyzer`` (these are
the independent side of every test). scapy builds IP/TCP/UDP (checksums, options, extension
headers); link headers and file formats are written here byte by byte so that tests control every
field. TLS bytes come from ``tests.tlsbytes``.

``python -m tests.pcapgen DIR`` writes every scenario to DIR, to open in Wireshark.
"""

from __future__ import annotations

import gzip
import random
import struct
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6
from scapy.layers.l2 import GRE
from scapy.packet import Raw

try:                      # python -m tests.pcapgen, or pytest with the repo root on sys.path
    from tests import tlsbytes as tb
except ImportError:       # pytest's rootdir-less "prepend" import mode puts tests/ itself on sys.path
    import tlsbytes as tb

# --- fixed identities ------------------------------------------------------------------------
SEED = 20240601                      # every "random" byte below comes from random.Random(SEED ...)
T0_NS = 1_700_000_000_123_456_789    # capture start; sub-microsecond digits on purpose (ns formats)
STEP_NS = 1_000_789                  # gap between consecutive packets of a flow (~1 ms)
ISN_C = 1_000_000                    # client initial sequence number
ISN_S = 3_000_000_000                # server ISN: above 2**31, so signed/unsigned mix-ups show
MAC_C = bytes.fromhex("0a580a2a000b")
MAC_S = bytes.fromhex("0a580a2a000c")

IDENTITY_SNI = tb.DEFAULT_SNI        # web.emojivoto.serviceaccount.identity.linkerd.cluster.local
L5D_ALPN = "transport.l5d.io/v1"

# --- link types (tcpdump.org/linktypes.html) --------------------------------------------------
LINKTYPE_NULL = 0           # BSD loopback: 4-byte address family in the writer's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101          # raw IP, version from the first nibble
LINKTYPE_IEEE802_11 = 105
LINKTYPE_USER0 = 147        # DLT_USER0, private use: never decodable, the "unsupported link type" fixture
LINKTYPE_LINUX_SLL = 113    # Linux cooked v1 (tshark 4.0 -i any)
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276   # Linux cooked v2 (newer tshark -i any)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100     # IEEE 802.1Q
ETHERTYPE_QINQ = 0x88A8     # IEEE 802.1ad service tag
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
PACKET_HOST, PACKET_OUTGOING = 0, 4   # linux/if_packet.h pkttype
LO_IFINDEX = 1

AF_INET = 2
AF_INET6_BSD = (24, 28, 30)  # NetBSD/OpenBSD, FreeBSD, Darwin


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int


CLIENT = Endpoint("10.42.0.11", 40001)
SERVER = Endpoint("10.42.0.12", 4143)
CLIENT6 = Endpoint("fd00:10:42::11", 40001)
SERVER6 = Endpoint("fd00:10:42::12", 4143)


@dataclass(frozen=True)
class Pkt:
    """One IP packet: ``l3`` from the IP header on, ``orig`` True when sent by the client."""
    ts_ns: int
    l3: bytes
    orig: bool = True

    @property
    def version(self) -> int:
        return self.l3[0] >> 4


@dataclass(frozen=True)
class Frame:
    """One captured frame. ``orig_len`` defaults to ``len(data)``; writers cut ``data`` at snaplen."""
    ts_ns: int
    data: bytes
    linktype: int = LINKTYPE_ETHERNET
    orig_len: int | None = None

    @property
    def wire_len(self) -> int:
        return len(self.data) if self.orig_len is None else self.orig_len


# --- packets ---------------------------------------------------------------------------------
def _ip_layer(src: str, dst: str, *, ip_options=None, ipv6_ext=()):
    if ":" in src:
        layer = IPv6(src=src, dst=dst, hlim=64)
        for ext in ipv6_ext:
            layer = layer / ext
        return layer
    if ip_options:
        return IP(src=src, dst=dst, ttl=64, id=0x4242, options=ip_options)
    return IP(src=src, dst=dst, ttl=64, id=0x4242)


def tcp_packet(src: Endpoint, dst: Endpoint, flags: str, seq: int, ack: int, payload: bytes = b"", *,
               ip_options=None, ipv6_ext=(), tcp_timestamps: bool = False, tsval: int = 0) -> bytes:
    """One TCP segment as IP bytes (checksums by scapy)."""
    options = [("NOP", None), ("NOP", None), ("Timestamp", (tsval, 0))] if tcp_timestamps else []
    if "S" in flags and not tcp_timestamps:
        options = [("MSS", 1460)]
    tcp = TCP(sport=src.port, dport=dst.port, flags=flags, seq=seq % 2**32,
              ack=(ack % 2**32) if "A" in flags else 0, window=64240, options=options)
    return bytes(_ip_layer(src.ip, dst.ip, ip_options=ip_options, ipv6_ext=ipv6_ext) / tcp / payload)


_DIRECTIONS = {"client": "c", "c2s": "c", ">": "c", "server": "s", "s2c": "s", "<": "s"}


def tcp_flow(exchanges: Sequence[tuple[str, bytes]], *, client: Endpoint = CLIENT,
             server: Endpoint = SERVER, opening: str = "syn", syn: bool = True, close: str | None = "fin",
             close_by: str = "c", mss: int | None = None, retransmit: Iterable[int] = (),
             reorder: Iterable[tuple[int, int]] = (), drop: Iterable[int] = (),
             t0_ns: int = T0_NS, step_ns: int = STEP_NS, isn_c: int = ISN_C, isn_s: int = ISN_S,
             ip_options=None, ipv6_ext=(), tcp_timestamps: bool = False) -> list[Pkt]:
    """A TCP connection as a list of packets, in capture (file) order.

    ``exchanges``: ordered ``(direction, payload)``, direction ``"c"`` (client to server) or ``"s"``
    (aliases: "client"/"server", "c2s"/"s2c", ">"/"<").
    ``opening``: ``"syn"`` SYN, SYN-ACK, ACK; ``"synack-first"`` the same three with SYN-ACK written
    first; ``"synack"`` no SYN (SYN-ACK, ACK); ``"none"`` mid-stream, no handshake at all.
    ``syn=False`` is shorthand for ``opening="none"``.
    ``close``: ``"fin"`` (FIN, FIN-ACK, ACK started by ``close_by``), ``"rst"`` (one RST from
    ``close_by``) or ``None``.
    ``mss`` splits each payload into segments of at most that many bytes. Data segments are numbered
    0.. in send order; ``retransmit`` repeats segment i right after it, ``reorder`` swaps the capture
    positions of two segments (a later one arrives first), ``drop`` leaves segment i out (a gap).
    Timestamps are assigned after reordering, so the file stays in time order like a real capture.
    """
    kw = dict(ip_options=ip_options, ipv6_ext=ipv6_ext, tcp_timestamps=tcp_timestamps)
    if not syn:
        opening = "none"
    exchanges = [(_DIRECTIONS.get(d, d), payload) for d, payload in exchanges]
    seq = {"c": isn_c + 1, "s": isn_s + 1}
    ends = {"c": (client, server), "s": (server, client)}
    other = {"c": "s", "s": "c"}
    opening_pkts: list[tuple[bool, bytes]] = []
    syn = (True, tcp_packet(client, server, "S", isn_c, 0, **kw))
    synack = (False, tcp_packet(server, client, "SA", isn_s, isn_c + 1, **kw))
    ack = (True, tcp_packet(client, server, "A", isn_c + 1, isn_s + 1, **kw))
    if opening == "syn":
        opening_pkts = [syn, synack, ack]
    elif opening == "synack-first":
        opening_pkts = [synack, syn, ack]
    elif opening == "synack":
        opening_pkts = [synack, ack]
    elif opening != "none":
        raise ValueError(f"unknown opening {opening!r}")

    # Data segments: (orig, direction, bytes) before retransmission/reordering/dropping.
    segments: list[tuple[str, int, int, bytes]] = []   # (dir, seq, ack, payload)
    for direction, payload in exchanges:
        if direction not in ("c", "s"):
            raise ValueError(f"direction must be 'c' or 's', not {direction!r}")
        size = mss or max(len(payload), 1)
        for i in range(0, len(payload), size):
            chunk = payload[i:i + size]
            segments.append((direction, seq[direction], seq[other[direction]], chunk))
            seq[direction] += len(chunk)
    order = list(range(len(segments)))
    for i, j in reorder:
        pi, pj = order.index(i), order.index(j)
        order[pi], order[pj] = order[pj], order[pi]
    dropped, repeated = set(drop), set(retransmit)
    data_pkts: list[tuple[bool, bytes]] = []
    for i in order:
        if i in dropped:
            continue
        direction, s, a, chunk = segments[i]
        src, dst = ends[direction]
        raw = tcp_packet(src, dst, "PA", s, a, chunk, **kw)
        data_pkts.append((direction == "c", raw))
        if i in repeated:
            data_pkts.append((direction == "c", raw))

    closing: list[tuple[bool, bytes]] = []
    if close == "fin":
        a_dir, b_dir = close_by, other[close_by]
        (a_src, a_dst), (b_src, b_dst) = ends[a_dir], ends[b_dir]
        closing = [(a_dir == "c", tcp_packet(a_src, a_dst, "FA", seq[a_dir], seq[b_dir], **kw)),
                   (b_dir == "c", tcp_packet(b_src, b_dst, "FA", seq[b_dir], seq[a_dir] + 1, **kw)),
                   (a_dir == "c", tcp_packet(a_src, a_dst, "A", seq[a_dir] + 1, seq[b_dir] + 1, **kw))]
    elif close == "rst":
        src, dst = ends[close_by]
        closing = [(close_by == "c", tcp_packet(src, dst, "R", seq[close_by], 0, **kw))]
    elif close is not None:
        raise ValueError(f"unknown close {close!r}")

    all_pkts = opening_pkts + data_pkts + closing
    return [Pkt(t0_ns + k * step_ns, raw, orig) for k, (orig, raw) in enumerate(all_pkts)]


def udp_flow(exchanges: Sequence[tuple[str, bytes]], *, client: Endpoint = Endpoint("10.42.0.11", 53001),
             server: Endpoint = Endpoint("10.96.0.10", 53), t0_ns: int = T0_NS,
             step_ns: int = STEP_NS) -> list[Pkt]:
    """UDP datagrams, one per exchange (e.g. DNS); Linkerd never encrypts these."""
    out = []
    for k, (direction, payload) in enumerate(exchanges):
        src, dst = (client, server) if direction == "c" else (server, client)
        layer = _ip_layer(src.ip, dst.ip) / UDP(sport=src.port, dport=dst.port) / payload
        out.append(Pkt(t0_ns + k * step_ns, bytes(layer), direction == "c"))
    return out


def shift(pkts: Sequence[Pkt], delta_ns: int) -> list[Pkt]:
    return [replace(p, ts_ns=p.ts_ns + delta_ns) for p in pkts]


def merge(*flows: Sequence[Pkt]) -> list[Pkt]:
    """Interleave several flows by timestamp (stable), as a capture of concurrent connections."""
    return sorted((p for f in flows for p in f), key=lambda p: p.ts_ns)


def ip_fragments(src: Endpoint = CLIENT, dst: Endpoint = SERVER, size: int = 1200) -> list[bytes]:
    """An IPv4 TCP segment split into fragments (the analyzer does not reassemble IP)."""
    whole = IP(src=src.ip, dst=dst.ip, id=0x1111) / TCP(sport=src.port, dport=dst.port, flags="PA",
                                                        seq=ISN_C + 1, ack=ISN_S + 1) / bytes(size)
    return [bytes(f) for f in fragment(whole, fragsize=512)]


def ipv6_fragments(src: Endpoint = CLIENT6, dst: Endpoint = SERVER6, size: int = 1200) -> list[bytes]:
    whole = (IPv6(src=src.ip, dst=dst.ip) / IPv6ExtHdrFragment(id=0x2222)
             / TCP(sport=src.port, dport=dst.port, flags="PA", seq=ISN_C + 1, ack=ISN_S + 1) / bytes(size))
    return [bytes(f) for f in fragment6(whole, 600)]


def gre_wrap(l3: bytes, outer_src: str = "192.168.1.1", outer_dst: str = "192.168.1.2") -> bytes:
    """IPv4 in GRE in IPv4: a tunnel the analyzer does not decode."""
    return bytes(IP(src=outer_src, dst=outer_dst) / GRE(proto=ETHERTYPE_IPV4)) + l3


def ipip_wrap(l3: bytes, outer_src: str = "192.168.1.1", outer_dst: str = "192.168.1.2") -> bytes:
    """IPv4 in IPv4 (protocol 4)."""
    return bytes(IP(src=outer_src, dst=outer_dst, proto=4) / Raw(l3))


# --- link layers -----------------------------------------------------------------------------
def _ethertype(l3: bytes) -> int:
    return ETHERTYPE_IPV6 if l3[0] >> 4 == 6 else ETHERTYPE_IPV4


def ether(l3: bytes, orig: bool = True, *, vlans: Sequence[tuple[int, int]] = ()) -> bytes:
    """Ethernet II; ``vlans`` is a list of (TPID, VLAN id), outermost first (802.1Q, QinQ)."""
    src, dst = (MAC_C, MAC_S) if orig else (MAC_S, MAC_C)
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    return dst + src + tags + struct.pack("!H", _ethertype(l3)) + l3


def sll(l3: bytes, orig: bool = True, *, arphrd: int = ARPHRD_ETHER, pkttype: int | None = None) -> bytes:
    """Linux cooked v1: pkttype u16, ARPHRD u16, addr len u16, addr[8], protocol u16 (all big-endian)."""
    if pkttype is None:
        pkttype = PACKET_OUTGOING if orig else PACKET_HOST
    addr = (MAC_C if orig else MAC_S) if arphrd == ARPHRD_ETHER else bytes(6)
    return struct.pack("!HHH", pkttype, arphrd, 6) + addr + b"\0\0" + struct.pack("!H", _ethertype(l3)) + l3


def sll2(l3: bytes, orig: bool = True, *, arphrd: int = ARPHRD_ETHER, ifindex: int = 3,
         pkttype: int | None = None) -> bytes:
    """Linux cooked v2: protocol u16, reserved u16, ifindex u32, ARPHRD u16, pkttype u8, addr len u8, addr[8]."""
    if pkttype is None:
        pkttype = PACKET_OUTGOING if orig else PACKET_HOST
    addr = (MAC_C if orig else MAC_S) if arphrd == ARPHRD_ETHER else bytes(6)
    return struct.pack("!HHIHBB", _ethertype(l3), 0, ifindex, arphrd, pkttype, 6) + addr + b"\0\0" + l3


def null(l3: bytes, orig: bool = True, *, byteorder: str = "<", af6: int = 30) -> bytes:
    """BSD loopback: the address family as a u32 in the *writer's* byte order."""
    family = af6 if l3[0] >> 4 == 6 else AF_INET
    return struct.pack(byteorder + "I", family) + l3


def raw(l3: bytes, orig: bool = True) -> bytes:
    return l3


LINKS: dict[str, tuple[int, Callable[..., bytes], dict]] = {
    "ether": (LINKTYPE_ETHERNET, ether, {}),
    "vlan": (LINKTYPE_ETHERNET, ether, {"vlans": [(ETHERTYPE_VLAN, 42)]}),
    "qinq": (LINKTYPE_ETHERNET, ether, {"vlans": [(ETHERTYPE_QINQ, 100), (ETHERTYPE_VLAN, 42)]}),
    "sll": (LINKTYPE_LINUX_SLL, sll, {}),
    "sll2": (LINKTYPE_LINUX_SLL2, sll2, {}),
    "raw": (LINKTYPE_RAW, raw, {}),
    "ipv4": (LINKTYPE_IPV4, raw, {}),
    "ipv6": (LINKTYPE_IPV6, raw, {}),
    "null-le": (LINKTYPE_NULL, null, {"byteorder": "<"}),
    "null-be": (LINKTYPE_NULL, null, {"byteorder": ">"}),
    "null-af24": (LINKTYPE_NULL, null, {"af6": 24}),
    "null-af28": (LINKTYPE_NULL, null, {"af6": 28}),
    "null-af30": (LINKTYPE_NULL, null, {"af6": 30, "byteorder": ">"}),
    "sll-lo": (LINKTYPE_LINUX_SLL, sll, {"arphrd": ARPHRD_LOOPBACK, "pkttype": PACKET_HOST}),
    "sll2-lo": (LINKTYPE_LINUX_SLL2, sll2, {"arphrd": ARPHRD_LOOPBACK, "ifindex": LO_IFINDEX,
                                            "pkttype": PACKET_HOST}),
}


def encap(pkts: Sequence[Pkt], link: str = "ether", **overrides) -> list[Frame]:
    """Wrap packets in one of ``LINKS``; extra keywords go to the link builder."""
    linktype, build, kw = LINKS[link]
    kw = {**kw, **overrides}
    return [Frame(p.ts_ns, build(p.l3, p.orig, **kw), linktype) for p in pkts]


# --- pcap ------------------------------------------------------------------------------------
PCAP_MAGIC_USEC = 0xA1B2C3D4
PCAP_MAGIC_NSEC = 0xA1B23C4D


def pcap_header(linktype: int, *, byteorder: str = "<", nano: bool = False, snaplen: int = 262144) -> bytes:
    magic = PCAP_MAGIC_NSEC if nano else PCAP_MAGIC_USEC
    return struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(frame: Frame, *, byteorder: str = "<", nano: bool = False, snaplen: int = 262144) -> bytes:
    sec, ns = divmod(frame.ts_ns, 10**9)
    frac = ns if nano else ns // 1000
    data = frame.data[:snaplen]
    return struct.pack(byteorder + "IIII", sec, frac, len(data), frame.wire_len) + data


def pcap_bytes(frames: Sequence[Frame], *, linktype: int | None = None, byteorder: str = "<",
               nano: bool = False, snaplen: int = 262144) -> bytes:
    """A classic pcap file. ``byteorder`` "<" writes d4c3b2a1 / 4d3cb2a1 on disk, ">" a1b2c3d4 / a1b23c4d."""
    if linktype is None:
        linktype = frames[0].linktype if frames else LINKTYPE_ETHERNET
    out = [pcap_header(linktype, byteorder=byteorder, nano=nano, snaplen=snaplen)]
    out += [pcap_record(f, byteorder=byteorder, nano=nano, snaplen=snaplen) for f in frames]
    return b"".join(out)


# --- pcapng ----------------------------------------------------------------------------------
BT_SHB, BT_IDB, BT_OPB, BT_SPB, BT_NRB, BT_ISB, BT_EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6
BT_CUSTOM = 0x00000BAD
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_ENDOFOPT, OPT_COMMENT = 0, 1
IF_NAME, IF_TSRESOL = 2, 9
TSRESOL_NS = 9                 # 10^-9
TSRESOL_POW2_20 = 0x80 | 20    # 2^-20 (~0.95 us)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _options(opts: Sequence[tuple[int, bytes]], bo: str) -> bytes:
    if not opts:
        return b""
    body = b"".join(struct.pack(bo + "HH", code, len(v)) + _pad4(v) for code, v in opts)
    return body + struct.pack(bo + "HH", OPT_ENDOFOPT, 0)


def block(btype: int, body: bytes, bo: str = "<") -> bytes:
    body = _pad4(body)
    total = 12 + len(body)
    return struct.pack(bo + "II", btype, total) + body + struct.pack(bo + "I", total)


@dataclass
class Interface:
    linktype: int
    snaplen: int = 262144
    tsresol: int | None = None     # if_tsresol option byte; None = default 10^-6
    name: str | None = None

    def units_per_s(self) -> int:
        if self.tsresol is None:
            return 10**6
        if self.tsresol & 0x80:
            return 2 ** (self.tsresol & 0x7F)
        return 10 ** self.tsresol

    def ts_units(self, ts_ns: int) -> int:
        return ts_ns * self.units_per_s() // 10**9


@dataclass
class Section:
    """One pcapng section: its interfaces, then blocks in order.

    ``blocks`` items: ``("epb", iface, Frame)``, ``("opb", iface, Frame)``, ``("spb", Frame)``,
    ``("isb", iface)``, ``("nrb", ip, name)``, ``("custom", bytes)``, ``("raw", bytes)`` (pre-built).
    """
    interfaces: list[Interface]
    blocks: list[tuple] = field(default_factory=list)
    byteorder: str = "<"
    comment: str | None = None


def shb(bo: str = "<", comment: str | None = None) -> bytes:
    opts = [(OPT_COMMENT, comment.encode())] if comment else []
    body = struct.pack(bo + "IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _options(opts, bo)
    return block(BT_SHB, body, bo)


def idb(iface: Interface, bo: str = "<") -> bytes:
    opts = []
    if iface.name:
        opts.append((IF_NAME, iface.name.encode()))
    if iface.tsresol is not None:
        opts.append((IF_TSRESOL, bytes([iface.tsresol])))
    return block(BT_IDB, struct.pack(bo + "HHI", iface.linktype, 0, iface.snaplen) + _options(opts, bo), bo)


def epb(iface_id: int, iface: Interface, frame: Frame, bo: str = "<", comment: str | None = None) -> bytes:
    ts = iface.ts_units(frame.ts_ns)
    data = frame.data[:iface.snaplen]
    opts = [(OPT_COMMENT, comment.encode())] if comment else []
    body = (struct.pack(bo + "IIIII", iface_id, ts >> 32, ts & 0xFFFFFFFF, len(data), frame.wire_len)
            + _pad4(data) + _options(opts, bo))
    return block(BT_EPB, body, bo)


def opb(iface_id: int, iface: Interface, frame: Frame, bo: str = "<") -> bytes:
    """Obsolete Packet Block (type 2): u16 interface id, u16 drops count, then as EPB."""
    ts = iface.ts_units(frame.ts_ns)
    data = frame.data[:iface.snaplen]
    body = struct.pack(bo + "HHIIII", iface_id, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), frame.wire_len) + _pad4(data)
    return block(BT_OPB, body, bo)


def spb(iface: Interface, frame: Frame, bo: str = "<") -> bytes:
    """Simple Packet Block (type 3): interface 0, no timestamp; captured length = min(len, snaplen)."""
    data = frame.data[:iface.snaplen]
    return block(BT_SPB, struct.pack(bo + "I", frame.wire_len) + _pad4(data), bo)


def isb(iface_id: int, ts_ns: int, iface: Interface, bo: str = "<") -> bytes:
    ts = iface.ts_units(ts_ns)
    return block(BT_ISB, struct.pack(bo + "III", iface_id, ts >> 32, ts & 0xFFFFFFFF), bo)


def nrb(ip: str, name: str, bo: str = "<") -> bytes:
    value = bytes(int(x) for x in ip.split(".")) + name.encode() + b"\0"
    rec = struct.pack(bo + "HH", 1, len(value)) + _pad4(value) + struct.pack(bo + "HH", 0, 0)
    return block(BT_NRB, rec, bo)


def pcapng_section(section: Section) -> bytes:
    bo = section.byteorder
    out = [shb(bo, section.comment)] + [idb(i, bo) for i in section.interfaces]
    for item in section.blocks:
        kind = item[0]
        if kind == "epb":
            out.append(epb(item[1], section.interfaces[item[1]], item[2], bo))
        elif kind == "opb":
            out.append(opb(item[1], section.interfaces[item[1]], item[2], bo))
        elif kind == "spb":
            out.append(spb(section.interfaces[0], item[1], bo))
        elif kind == "isb":
            out.append(isb(item[1], item[2], section.interfaces[item[1]], bo))
        elif kind == "nrb":
            out.append(nrb(item[1], item[2], bo))
        elif kind == "custom":
            out.append(block(BT_CUSTOM, struct.pack(bo + "I", 32473) + item[1], bo))
        elif kind == "raw":
            out.append(item[1])
        else:
            raise ValueError(f"unknown pcapng block kind {kind!r}")
    return b"".join(out)


def pcapng_bytes(sections: Sequence[Section]) -> bytes:
    return b"".join(pcapng_section(s) for s in sections)


def simple_pcapng(frames: Sequence[Frame], *, byteorder: str = "<", tsresol: int | None = None,
                  kind: str = "epb", snaplen: int = 262144) -> bytes:
    """One section, one interface (the frames' link type), every frame as ``kind`` (epb/opb/spb)."""
    iface = Interface(frames[0].linktype, snaplen=snaplen, tsresol=tsresol, name="eth0")
    blocks = [("spb", f) if kind == "spb" else (kind, 0, f) for f in frames]
    return pcapng_bytes([Section([iface], blocks, byteorder)])


# --- frames without a file -------------------------------------------------------------------
def frame_batch(pkts: Sequence[Pkt]) -> tuple[bytes, list[tuple]]:
    """Packets as the reader hands them to the flow table: one buffer and its frame records
    ``(ts, linktype, off, caplen, wirelen, iface)`` (raw IP link type), for tests below the reader."""
    buf, frames = bytearray(), []
    for p in pkts:
        frames.append((p.ts_ns / 1e9, LINKTYPE_RAW, len(buf), len(p.l3), len(p.l3), 0))
        buf += p.l3
    return bytes(buf), frames


# --- damage ----------------------------------------------------------------------------------
def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed mtime, so output bytes are reproducible."""
    return gzip.compress(data, mtime=0)


def truncate(data: bytes, keep: int) -> bytes:
    """The first ``keep`` bytes: a capture cut mid-packet (disk full, killed writer)."""
    return data[:keep]


def corrupt_epb(frame: Frame, iface: Interface, bo: str = "<") -> bytes:
    """An EPB whose trailing total length disagrees with the leading one (a corrupt block)."""
    good = epb(0, iface, frame, bo)
    return good[:-4] + struct.pack(bo + "I", len(good) + 8)


# --- TLS and application payloads ------------------------------------------------------------
def interleave_tls13(client: Sequence[bytes], server: Sequence[bytes]) -> list[tuple[str, bytes]]:
    """ClientHello, server flight, client Finished (+CCS), client data, server data."""
    return [("c", client[0]), ("s", server[0]), ("c", client[1]), ("c", client[2]), ("s", server[1])]


def interleave_tls12(client: Sequence[bytes], server: Sequence[bytes]) -> list[tuple[str, bytes]]:
    return [("c", client[0]), ("s", server[0]), ("c", client[1]), ("s", server[1]), ("c", client[2])]


def tls13(sni: str | None = IDENTITY_SNI, alpn=(), pq: bool = False) -> list[tuple[str, bytes]]:
    return interleave_tls13(*tb.tls13_exchange(sni=sni, alpn=alpn, pq=pq))


def tls12(sni: str | None = IDENTITY_SNI, client_cert: bool = True) -> list[tuple[str, bytes]]:
    return interleave_tls12(*tb.tls12_exchange(sni=sni, client_cert=client_cert))


HTTP_REQUEST = (b"GET /metrics HTTP/1.1\r\nHost: 10.42.0.12:4191\r\nUser-Agent: Prometheus/2.45.0\r\n"
                b"Accept: text/plain\r\n\r\n")
HTTP_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 33\r\n\r\n"
                 b"request_total{direction=\"in\"} 42\n")
H2C_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS = bytes.fromhex("000012040000000000000300000064000400100000000600004000")
SSH_CLIENT_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
SSH_SERVER_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
OPAQUE_PREFIX = b"\x00\x01\x02\xff\xfeOPAQUE"


def ssh_kexinit(seed: int) -> bytes:
    """A binary SSH packet (RFC 4253 6, 7.1): SSH_MSG_KEXINIT with a cookie and 10 name-lists."""
    names = [b"curve25519-sha256", b"ssh-ed25519"] + [b"aes128-ctr"] * 2 + [b"hmac-sha2-256"] * 2 + [b"none"] * 2
    payload = (bytes([20]) + random.Random(SEED + seed).randbytes(16)
               + b"".join(struct.pack("!I", len(n)) + n for n in names + [b"", b""])
               + b"\x00" + bytes(4))              # first_kex_packet_follows, reserved
    pad = 8 - (5 + len(payload)) % 8
    pad += 8 if pad < 4 else 0
    return struct.pack("!IB", 1 + len(payload) + pad, pad) + payload + bytes(pad)


def opaque(n: int = 600, seed: int = 0) -> bytes:
    """Binary bytes that are neither TLS framing nor any text protocol."""
    return OPAQUE_PREFIX + random.Random(SEED + seed).randbytes(n)


def smtp_starttls_exchange() -> list[tuple[str, bytes]]:
    """SMTP greeting, EHLO, STARTTLS, then a TLS 1.3 handshake on the same connection (RFC 3207)."""
    return [("s", b"220 mail.example.com ESMTP Postfix\r\n"),
            ("c", b"EHLO client.example.com\r\n"),
            ("s", b"250-mail.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
            ("c", b"STARTTLS\r\n"),
            ("s", b"220 2.0.0 Ready to start TLS\r\n")] + tls13(sni="mail.example.com")


SMTP_CLIENT_PREFIX = len(b"EHLO client.example.com\r\n") + len(b"STARTTLS\r\n")
SMTP_SERVER_PREFIX = (len(b"220 mail.example.com ESMTP Postfix\r\n")
                      + len(b"250-mail.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
                      + len(b"220 2.0.0 Ready to start TLS\r\n"))


def hrr_exchange() -> list[tuple[str, bytes]]:
    """TLS 1.3 with a HelloRetryRequest: the server asks for P-256, the client says hello again."""
    first = tb.handshake_record(tb.client_hello(key_share_groups=(0x001D,)))
    hrr = tb.handshake_record(tb.server_hello(hrr=True, key_share_group=0x0017), version=0x0303) + tb.ccs()
    second = tb.ccs() + tb.handshake_record(tb.client_hello(key_share_groups=(0x0017,)), version=0x0303)
    final = (tb.handshake_record(tb.server_hello(key_share_group=0x0017), version=0x0303)
             + tb.app_data(32, seed=3) + tb.app_data(900, seed=4))
    return [("c", first), ("s", hrr), ("c", second), ("s", final),
            ("c", tb.app_data(53, seed=1)), ("c", tb.app_data(120, seed=2)), ("s", tb.app_data(400, seed=7))]


def multi_record_hello() -> bytes:
    """A post-quantum ClientHello fragmented over three handshake records (record-layer fragmentation)."""
    hello = tb.client_hello(groups=(0x11EC, 0x001D), key_share_groups=(0x11EC, 0x001D))
    return tb.handshake_record(hello, max_fragment=512)


def midstream_records() -> list[tuple[str, bytes]]:
    return [("c", tb.app_data(300, seed=21) + tb.app_data(80, seed=22)),
            ("s", tb.app_data(1200, seed=23)),
            ("c", tb.app_data(64, seed=24)),
            ("s", tb.app_data(500, seed=25) + tb.app_data(40, seed=26))]


# --- scenarios -------------------------------------------------------------------------------
def ether_pcap(pkts: Sequence[Pkt], **kw) -> bytes:
    return pcap_bytes(encap(pkts, "ether"), **kw)


def base_flow(**kw) -> list[Pkt]:
    """The reference flow: client 10.42.0.11:40001 -> 10.42.0.12:4143, TLS 1.3, Linkerd identity SNI."""
    return tcp_flow(tls13(), **kw)


def base_flow6(**kw) -> list[Pkt]:
    return tcp_flow(tls13(), client=CLIENT6, server=SERVER6, **kw)


def _multi_iface() -> bytes:
    """pcapng with three interfaces: DLT_USER0 (unsupported, 2 frames), Ethernet (client side) and
    SLL2 (server side); the same flow is split over interfaces 1 and 2, as ``tshark -i a -i b`` writes."""
    ifaces = [Interface(LINKTYPE_USER0, name="user0"), Interface(LINKTYPE_ETHERNET, name="eth0"),
              Interface(LINKTYPE_LINUX_SLL2, tsresol=TSRESOL_NS, name="any")]
    blocks: list[tuple] = [("epb", 0, Frame(T0_NS - 2000, bytes(40), LINKTYPE_USER0)),
                           ("epb", 0, Frame(T0_NS - 1000, bytes(52), LINKTYPE_USER0))]
    for p in base_flow():
        if p.orig:
            blocks.append(("epb", 1, Frame(p.ts_ns, ether(p.l3, True), LINKTYPE_ETHERNET)))
        else:
            blocks.append(("epb", 2, Frame(p.ts_ns, sll2(p.l3, False), LINKTYPE_LINUX_SLL2)))
    return pcapng_bytes([Section(ifaces, blocks)])


def _sections() -> bytes:
    """Two sections with different byte orders; interface 0 is Ethernet in the first and raw IPv4 in
    the second, so a reader that keeps interfaces across sections decodes the second half wrongly."""
    pkts = base_flow()
    half = len(pkts) // 2
    s1 = Section([Interface(LINKTYPE_ETHERNET, name="eth0")],
                 [("epb", 0, f) for f in encap(pkts[:half], "ether")], "<", comment="first section")
    s2 = Section([Interface(LINKTYPE_IPV4, tsresol=TSRESOL_NS, name="ip0")],
                 [("epb", 0, f) for f in encap(pkts[half:], "ipv4")], ">", comment="second section")
    return pcapng_bytes([s1, s2])


def _extra_blocks() -> bytes:
    """EPBs interleaved with NRB, ISB, a custom block and a packet comment: all but EPB are skipped."""
    iface = Interface(LINKTYPE_ETHERNET, name="eth0")
    frames = encap(base_flow(), "ether")
    blocks: list[tuple] = [("nrb", SERVER.ip, "web.emojivoto.svc")]
    for k, f in enumerate(frames):
        blocks.append(("epb", 0, f))
        if k == 2:
            blocks.append(("custom", b"vendor data"))
    blocks.append(("isb", 0, frames[-1].ts_ns + 1000))
    return pcapng_bytes([Section([iface], blocks)])


def _mixed_blocks() -> bytes:
    """The same flow written as a mix of EPB, OPB and SPB (SPB carries no timestamp)."""
    iface = Interface(LINKTYPE_ETHERNET, name="eth0")
    kinds = ["epb", "opb", "epb", "spb", "epb", "opb"]
    frames = encap(base_flow(), "ether")
    blocks = [("spb", f) if kinds[k % len(kinds)] == "spb" else (kinds[k % len(kinds)], 0, f)
              for k, f in enumerate(frames)]
    # keep the first and last frames as EPBs so that first_ts/last_ts stay defined
    blocks[0], blocks[-1] = ("epb", 0, frames[0]), ("epb", 0, frames[-1])
    return pcapng_bytes([Section([iface], blocks)])


def _two_flows() -> list[Pkt]:
    """Flow A (TLS 1.3, port 40001) completes before flow B (HTTP, port 40002) starts."""
    a = base_flow()
    b = tcp_flow([("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)], client=Endpoint(CLIENT.ip, 40002),
                 server=Endpoint(SERVER.ip, 80), t0_ns=a[-1].ts_ns + 10 * STEP_NS)
    return a + b


def truncated_pcap() -> bytes:
    """Flow A whole, then flow B (SYN, SYN-ACK, ACK, HTTP request) cut in the middle of the response."""
    pkts = _two_flows()
    data = ether_pcap(pkts)
    n_a = len(base_flow())
    offset = 24 + sum(16 + len(ether(p.l3)) for p in pkts[:n_a + 4])
    return truncate(data, offset + 16 + 30)


def truncated_pcapng() -> bytes:
    pkts = _two_flows()
    data = pcapng_bytes([Section([Interface(LINKTYPE_ETHERNET)], [("epb", 0, f) for f in encap(pkts)])])
    head = len(shb()) + len(idb(Interface(LINKTYPE_ETHERNET)))
    n_a = len(base_flow())
    offset = head + sum(len(epb(0, Interface(LINKTYPE_ETHERNET), f)) for f in encap(pkts[:n_a + 4]))
    return truncate(data, offset + 40)


def corrupt_pcapng() -> bytes:
    """Flow A in good EPBs, then a block whose trailing length disagrees, then flow B."""
    pkts = _two_flows()
    n_a = len(base_flow())
    iface = Interface(LINKTYPE_ETHERNET)
    frames = encap(pkts)
    blocks = [("epb", 0, f) for f in frames[:n_a]]
    blocks.append(("raw", corrupt_epb(frames[n_a], iface)))
    blocks += [("epb", 0, f) for f in frames[n_a + 1:]]
    return pcapng_bytes([Section([iface], blocks)])


def corrupt_length_pcapng() -> bytes:
    """Flow A, then a block whose total length (13) is impossible (< 12 + body, not a multiple of 4)."""
    pkts = _two_flows()
    n_a = len(base_flow())
    frames = encap(pkts)
    blocks = [("epb", 0, f) for f in frames[:n_a]]
    blocks.append(("raw", struct.pack("<II", BT_EPB, 13) + bytes(5)))
    blocks += [("epb", 0, f) for f in frames[n_a:]]
    return pcapng_bytes([Section([Interface(LINKTYPE_ETHERNET)], blocks)])


def corrupt_iface_pcapng() -> bytes:
    """Flow A, then an EPB naming interface 5 when the section has one interface, then flow B."""
    pkts = _two_flows()
    n_a = len(base_flow())
    iface = Interface(LINKTYPE_ETHERNET)
    frames = encap(pkts)
    blocks = [("epb", 0, f) for f in frames[:n_a]]
    blocks.append(("raw", epb(5, iface, frames[n_a])))
    blocks += [("epb", 0, f) for f in frames[n_a + 1:]]
    return pcapng_bytes([Section([iface], blocks)])


def localhost_flow(kind: str) -> bytes:
    """One flow that must be excluded as localhost, by the rule named ``kind``."""
    http = [("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)]
    if kind == "ipv4-loopback":      # 127.0.0.0/8, two different addresses (not the same-IP rule)
        pkts = tcp_flow(http, client=Endpoint("127.0.0.5", 40010), server=Endpoint("127.0.0.1", 4140))
        return ether_pcap(pkts)
    if kind == "ipv6-loopback":
        pkts = tcp_flow(http, client=Endpoint("::1", 40011), server=Endpoint("::1", 4191))
        return ether_pcap(pkts)
    if kind == "ipv4-mapped":
        pkts = tcp_flow(http, client=Endpoint("::ffff:127.0.0.1", 40012),
                        server=Endpoint("::ffff:127.0.0.2", 8080))
        return ether_pcap(pkts)
    if kind == "sll-arphrd-loopback":  # pod IP to a different pod IP, but captured on lo
        pkts = tcp_flow(http, client=Endpoint("10.42.0.21", 40013), server=Endpoint("10.42.0.22", 8080))
        return pcap_bytes(encap(pkts, "sll-lo"))
    if kind == "sll2-loopback":
        pkts = tcp_flow(http, client=Endpoint("10.42.0.23", 40014), server=Endpoint("10.42.0.24", 8080))
        return pcap_bytes(encap(pkts, "sll2-lo"))
    if kind == "same-ip":             # proxy -> app over lo, pod IP on both ends, Ethernet framing
        pkts = tcp_flow(http, client=Endpoint("10.42.0.25", 40015), server=Endpoint("10.42.0.25", 8080))
        return ether_pcap(pkts)
    raise ValueError(kind)


LOCALHOST_KINDS = ("ipv4-loopback", "ipv6-loopback", "ipv4-mapped", "sll-arphrd-loopback",
                   "sll2-loopback", "same-ip")

# Every link type / file format variant of the reference flow. All must yield the same single
# TLS 1.3 flow (10.42.0.11:40001 -> 10.42.0.12:4143, identity SNI); IPv6 variants use CLIENT6/SERVER6.
FORMAT_VARIANTS: dict[str, Callable[[], bytes]] = {
    "pcap-le-usec": lambda: ether_pcap(base_flow(), byteorder="<"),
    "pcap-be-usec": lambda: ether_pcap(base_flow(), byteorder=">"),
    "pcap-le-nsec": lambda: ether_pcap(base_flow(), byteorder="<", nano=True),
    "pcap-be-nsec": lambda: ether_pcap(base_flow(), byteorder=">", nano=True),
    "pcapng-le": lambda: simple_pcapng(encap(base_flow()), byteorder="<"),
    "pcapng-be": lambda: simple_pcapng(encap(base_flow()), byteorder=">"),
    "pcapng-tsresol-ns": lambda: simple_pcapng(encap(base_flow()), tsresol=TSRESOL_NS),
    "pcapng-tsresol-pow2": lambda: simple_pcapng(encap(base_flow()), byteorder=">", tsresol=TSRESOL_POW2_20),
    "pcapng-opb": lambda: simple_pcapng(encap(base_flow()), kind="opb"),
    "pcapng-mixed-blocks": _mixed_blocks,
    "pcapng-multi-iface": _multi_iface,
    "pcapng-sections": _sections,
    "pcapng-extra-blocks": _extra_blocks,
    "pcap-gzip": lambda: gzip_bytes(ether_pcap(base_flow())),
    "pcapng-gzip": lambda: gzip_bytes(simple_pcapng(encap(base_flow()), byteorder=">")),
}
LINK_VARIANTS: dict[str, Callable[[], bytes]] = {
    "ether": lambda: pcap_bytes(encap(base_flow(), "ether")),
    "vlan": lambda: pcap_bytes(encap(base_flow(), "vlan")),
    "qinq": lambda: pcap_bytes(encap(base_flow(), "qinq")),
    "sll": lambda: pcap_bytes(encap(base_flow(), "sll")),
    "sll2": lambda: pcap_bytes(encap(base_flow(), "sll2")),
    "raw-v4": lambda: pcap_bytes(encap(base_flow(), "raw")),
    "raw-v6": lambda: pcap_bytes(encap(base_flow6(), "raw")),
    "ipv4": lambda: pcap_bytes(encap(base_flow(), "ipv4")),
    "ipv6": lambda: pcap_bytes(encap(base_flow6(), "ipv6")),
    "null-le": lambda: pcap_bytes(encap(base_flow(), "null-le")),
    "null-be": lambda: pcap_bytes(encap(base_flow(), "null-be"), byteorder=">"),
    "null6-af24": lambda: pcap_bytes(encap(base_flow6(), "null-af24")),
    "null6-af28": lambda: pcap_bytes(encap(base_flow6(), "null-af28")),
    "null6-af30": lambda: pcap_bytes(encap(base_flow6(), "null-af30"), byteorder=">"),
    "ether-v6": lambda: pcap_bytes(encap(base_flow6(), "ether")),
    "vlan-v6": lambda: pcap_bytes(encap(base_flow6(), "vlan")),
    "sll2-v6": lambda: pcap_bytes(encap(base_flow6(), "sll2")),
    "ipv4-options": lambda: pcap_bytes(encap(base_flow(ip_options=[IPOption_Router_Alert()]), "ether")),
    "ipv6-ext-headers": lambda: pcap_bytes(encap(base_flow6(ipv6_ext=(IPv6ExtHdrHopByHop(),
                                                                      IPv6ExtHdrDestOpt())), "ether")),
    "tcp-timestamps": lambda: pcap_bytes(encap(base_flow(tcp_timestamps=True), "sll")),
}
IPV6_VARIANTS = {"raw-v6", "ipv6", "null6-af24", "null6-af28", "null6-af30", "ether-v6", "vlan-v6",
                 "sll2-v6", "ipv6-ext-headers"}


def unsupported_capture() -> bytes:
    """Ethernet pcap: the reference flow, plus IPv4 and IPv6 fragments, GRE and IP-in-IP frames."""
    flow = base_flow()
    t = flow[-1].ts_ns
    extra = ([Pkt(t + k, f) for k, f in enumerate(ip_fragments(), 1)]
             + [Pkt(t + 10 + k, f) for k, f in enumerate(ipv6_fragments(), 1)])
    inner = tcp_flow(tls13(sni="tunnel.example"), client=Endpoint("172.16.0.1", 41000),
                     server=Endpoint("172.16.0.2", 443), t0_ns=t + 100)
    tunnels = [Pkt(p.ts_ns, gre_wrap(p.l3), p.orig) for p in inner[:3]]
    tunnels += [Pkt(p.ts_ns + 50, ipip_wrap(p.l3), p.orig) for p in inner[3:6]]
    return ether_pcap(flow + extra + tunnels)


N_IP_FRAGMENTS = len(ip_fragments()) + len(ipv6_fragments())
N_TUNNEL_FRAMES = 6


def pairs_capture() -> bytes:
    """Four host pairs, one per pair status (all-tls, plaintext-present, mixed, unknown-only)."""
    srv = SERVER
    c = lambda ip, port: Endpoint(ip, port)          # noqa: E731
    flows = [
        tcp_flow(tls13(), client=c("10.42.0.11", 40001), server=srv),
        tcp_flow(tls13(alpn=(L5D_ALPN,)), client=c("10.42.0.11", 40002), server=srv),
        tcp_flow(tls13(), client=c("10.42.0.13", 40003), server=srv),
        tcp_flow([("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)], client=c("10.42.0.13", 40004),
                 server=Endpoint(srv.ip, 80)),
        tcp_flow(tls13(), client=c("10.42.0.14", 40005), server=srv),
        tcp_flow([], client=c("10.42.0.14", 40006), server=srv, close="rst", close_by="s"),
        tcp_flow([], client=c("10.42.0.15", 40007), server=srv, close="rst", close_by="s"),
    ]
    return ether_pcap(merge(*(shift(f, k * 3 * STEP_NS) for k, f in enumerate(flows))))


def _syn_only() -> list[Pkt]:
    return [Pkt(T0_NS, tcp_packet(CLIENT, SERVER, "S", ISN_C, 0), True)]


def _reuse(close: str) -> list[Pkt]:
    """Two connections on the same 5-tuple: the second SYN follows the first one's FIN or RST."""
    first = tcp_flow(tls13(), close=close)
    second = tcp_flow([("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)], isn_c=ISN_C + 500_000,
                      isn_s=ISN_S + 700_000, t0_ns=first[-1].ts_ns + 5 * STEP_NS)
    return first + second


def _clienthello_then(answer: str) -> list[Pkt]:
    hello = tb.handshake_record(tb.client_hello())
    if answer == "alert":
        return tcp_flow([("c", hello), ("s", tb.alert(2, 40))], close="fin", close_by="s")
    return tcp_flow([("c", hello)], close="rst", close_by="s")


def _hrr_abandoned() -> list[Pkt]:
    """ClientHello, HelloRetryRequest, then the client hangs up: a HRR is not a negotiated ServerHello."""
    exchanges = hrr_exchange()[:2]
    return tcp_flow(exchanges, close="fin", close_by="c")


def tls12_alpn_exchange() -> list[tuple[str, bytes]]:
    """TLS 1.2 where the ServerHello carries the selected ALPN (visible before TLS 1.3 only)."""
    hello = tb.client_hello(sni="api.example.com", alpn=("h2", "http/1.1"), versions=(), key_share_groups=(),
                            cipher_suites=(0xC02F, 0xC030))
    flight = tb.handshake_record(tb.server_hello(version=None, cipher_suite=0xC02F, alpn="h2"), tb.certificate(),
                                 tb.server_hello_done(), version=0x0303)
    finish_c = tb.handshake_record(tb.client_key_exchange(), version=0x0303) + tb.ccs() + tb.records(
        22, random.Random(SEED + 40).randbytes(40))
    finish_s = tb.ccs() + tb.records(22, random.Random(SEED + 41).randbytes(40))
    return [("c", tb.handshake_record(hello)), ("s", flight), ("c", finish_c), ("s", finish_s),
            ("c", tb.app_data(100, seed=42)), ("s", tb.app_data(300, seed=43))]


def _overlap() -> list[Pkt]:
    """PQ ClientHello in 3 segments of 500, plus a late resend that straddles segments 0-1 and 1-2
    (bytes 250..1000) with different boundaries: overlapping data must not be appended twice."""
    pkts = tcp_flow(tls13(pq=True), mss=500)
    hello = tls13(pq=True)[0][1]
    resend = tcp_packet(CLIENT, SERVER, "PA", ISN_C + 1 + 250, ISN_S + 1, hello[250:1000])
    pkts.insert(6, Pkt(0, resend, True))     # after the 3 handshake packets and the 3 hello segments
    return [Pkt(T0_NS + k * STEP_NS, p.l3, p.orig) for k, p in enumerate(pkts)]


def _large_flow() -> list[Pkt]:
    """A long mesh connection: ~1 MB of application data each way after the handshake."""
    client, server = tb.tls13_exchange()
    bulk_c = b"".join(tb.app_data(16000, seed=100 + i) for i in range(64))
    bulk_s = b"".join(tb.app_data(16000, seed=200 + i) for i in range(64))
    exchanges = interleave_tls13(client, server) + [("c", bulk_c), ("s", bulk_s)]
    return tcp_flow(exchanges, mss=1448)


LARGE_FLOW_BYTES = (sum(len(b) for d, b in tls13() if d == "c") + 64 * 16005,
                    sum(len(b) for d, b in tls13() if d == "s") + 64 * 16005)


def _lo_interface_pcapng() -> bytes:
    """Pod IP to another pod IP on an Ethernet-framed pcapng interface named "lo"."""
    pkts = tcp_flow([("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)], client=Endpoint("10.42.0.31", 40016),
                    server=Endpoint("10.42.0.32", 8080))
    iface = Interface(LINKTYPE_ETHERNET, name="lo")
    return pcapng_bytes([Section([iface], [("epb", 0, f) for f in encap(pkts)])])


def _midstream_unaligned() -> list[Pkt]:
    ex = midstream_records()
    first = ex[0][1]
    return tcp_flow([("c", first[137:])] + ex[1:], opening="none", close=None)


def _snaplen68() -> bytes:
    """tcpdump -s 68 on ``any``: SLL 16 + IPv4 20 + TCP with timestamps 32 = 68, no payload kept."""
    return pcap_bytes(encap(base_flow(tcp_timestamps=True), "sll"), snaplen=68)


FLOW_SCENARIOS: dict[str, Callable[[], bytes]] = {
    "tls13-identity": lambda: ether_pcap(base_flow()),
    "tls13-pq-split": lambda: ether_pcap(tcp_flow(tls13(pq=True), mss=500)),
    "tls13-multi-record-hello": lambda: ether_pcap(tcp_flow(
        [("c", multi_record_hello())] + tls13()[1:], mss=700)),
    "tls13-l5d-alpn": lambda: ether_pcap(tcp_flow(tls13(alpn=(L5D_ALPN,)))),
    "tls13-plain-sni": lambda: ether_pcap(tcp_flow(tls13(sni="api.example.com", alpn=("h2", "http/1.1")),
                                                   server=Endpoint("93.184.216.34", 443))),
    "tls13-no-sni": lambda: ether_pcap(tcp_flow(tls13(sni=None), server=Endpoint("10.42.0.12", 8443))),
    "tls13-odd-port": lambda: ether_pcap(tcp_flow(tls13(), server=Endpoint(SERVER.ip, 9999))),
    "tls13-hrr": lambda: ether_pcap(tcp_flow(hrr_exchange())),
    "tls13-hello-midstream": lambda: ether_pcap(tcp_flow(tls13(), opening="none")),
    "tls13-non-ascii-alpn": lambda: ether_pcap(tcp_flow(tls13(alpn=(b"\xff\xfeodd", "h2")))),
    "tls12-alpn-selected": lambda: ether_pcap(tcp_flow(tls12_alpn_exchange(), server=Endpoint(SERVER.ip, 443))),
    "overlap-retransmission": lambda: ether_pcap(_overlap()),
    "large-tls-flow": lambda: ether_pcap(_large_flow()),
    "tls12-client-cert": lambda: ether_pcap(tcp_flow(tls12(client_cert=True), server=Endpoint(SERVER.ip, 8443))),
    "tls12-empty-client-cert": lambda: ether_pcap(tcp_flow(tls12(client_cert=False),
                                                           server=Endpoint(SERVER.ip, 8443))),
    "alert-after-clienthello": lambda: ether_pcap(_clienthello_then("alert")),
    "rst-after-clienthello": lambda: ether_pcap(_clienthello_then("rst")),
    "client-fin-after-clienthello": lambda: ether_pcap(tcp_flow(
        [("c", tb.handshake_record(tb.client_hello()))], close="fin", close_by="c")),
    "tls13-hrr-abandoned": lambda: ether_pcap(_hrr_abandoned()),
    "midstream-records": lambda: ether_pcap(tcp_flow(midstream_records(), opening="none", close=None)),
    "midstream-unaligned": lambda: ether_pcap(_midstream_unaligned()),
    "opaque-binary": lambda: ether_pcap(tcp_flow([("c", opaque(600, 1)), ("s", opaque(900, 2))],
                                                 server=Endpoint(SERVER.ip, 7000))),
    "http-request": lambda: ether_pcap(tcp_flow([("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)],
                                                server=Endpoint(SERVER.ip, 80))),
    "http-response-only": lambda: ether_pcap(tcp_flow([("s", HTTP_RESPONSE)], server=Endpoint(SERVER.ip, 80),
                                                      opening="none", close=None)),
    "http-probe-4191": lambda: ether_pcap(tcp_flow(
        [("c", b"GET /ready HTTP/1.1\r\nHost: 10.42.0.12:4191\r\nUser-Agent: kube-probe/1.30\r\n\r\n"),
         ("s", b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nready\n")],
        client=Endpoint("10.42.0.1", 51000), server=Endpoint(SERVER.ip, 4191))),
    "http-response-first": lambda: ether_pcap(tcp_flow([("s", HTTP_RESPONSE), ("c", HTTP_REQUEST)],
                                                       server=Endpoint(SERVER.ip, 80), opening="none",
                                                       close=None)),
    "h2c-preface": lambda: ether_pcap(tcp_flow([("c", H2C_PREFACE + H2_SETTINGS), ("s", H2_SETTINGS)],
                                               server=Endpoint(SERVER.ip, 8085))),
    "ssh-banner": lambda: ether_pcap(tcp_flow([("s", SSH_SERVER_BANNER), ("c", SSH_CLIENT_BANNER),
                                               ("c", ssh_kexinit(1)), ("s", ssh_kexinit(2))],
                                              server=Endpoint(SERVER.ip, 22))),
    "smtp-starttls": lambda: ether_pcap(tcp_flow(smtp_starttls_exchange(), server=Endpoint(SERVER.ip, 25))),
    "snaplen-68": _snaplen68,
    "syn-only": lambda: ether_pcap(_syn_only()),
    "no-payload": lambda: ether_pcap(tcp_flow([])),
    "http-8080": lambda: ether_pcap(tcp_flow([("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)],
                                             server=Endpoint(SERVER.ip, 8080))),
    "tls-8080": lambda: ether_pcap(tcp_flow(tls13(), server=Endpoint(SERVER.ip, 8080))),
    "http-9999": lambda: ether_pcap(tcp_flow([("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)],
                                             server=Endpoint(SERVER.ip, 9999))),
    "http-4143": lambda: ether_pcap(tcp_flow([("c", HTTP_REQUEST), ("s", HTTP_RESPONSE)])),
    "synack-first": lambda: ether_pcap(tcp_flow(tls13(), opening="synack-first")),
    "no-syn": lambda: ether_pcap(tcp_flow(tls13(), opening="synack")),
    "midstream-server-first": lambda: ether_pcap(tcp_flow(
        [("s", tb.app_data(200, seed=30)), ("c", tb.app_data(100, seed=31))], opening="none", close=None)),
    "reuse-after-fin": lambda: ether_pcap(_reuse("fin")),
    "reuse-after-rst": lambda: ether_pcap(_reuse("rst")),
    "retransmission": lambda: ether_pcap(tcp_flow(tls13(pq=True), mss=500, retransmit=(1,))),
    "out-of-order": lambda: ether_pcap(tcp_flow(tls13(pq=True), mss=500, reorder=((1, 2),))),
    # segment 2 is the middle of the server's first flight (ServerHello is in segment 1)
    "gap-after-handshake": lambda: ether_pcap(tcp_flow(tls13(), mss=500, drop=(2,))),
    "gap-in-clienthello": lambda: ether_pcap(tcp_flow(tls13(pq=True), mss=500, drop=(1,))),
    "udp-dns": lambda: ether_pcap(udp_flow([("c", b"\x12\x34\x01\x00\x00\x01" + bytes(30)),
                                            ("s", b"\x12\x34\x81\x80\x00\x01" + bytes(46))])
                                  + shift(base_flow(), 10 * STEP_NS)),
    "unsupported-linktype": lambda: pcap_bytes([Frame(T0_NS + k, bytes(60), LINKTYPE_USER0)
                                                for k in range(5)], linktype=LINKTYPE_USER0),
    "unsupported-frames": unsupported_capture,
    "pairs": pairs_capture,
    "truncated-pcap": truncated_pcap,
    "truncated-pcapng": truncated_pcapng,
    "truncated-gzip": lambda: truncate(gzip_bytes(ether_pcap(_two_flows())),
                                       len(gzip_bytes(ether_pcap(_two_flows()))) - 200),
    "corrupt-block": corrupt_pcapng,
    "corrupt-block-length": corrupt_length_pcapng,
    "corrupt-interface-id": corrupt_iface_pcapng,
    "header-only": lambda: pcap_bytes([], linktype=LINKTYPE_ETHERNET),
    "localhost-lo-interface": _lo_interface_pcapng,
    **{f"localhost-{k}": (lambda k=k: localhost_flow(k)) for k in LOCALHOST_KINDS},
}


def all_scenarios() -> dict[str, Callable[[], bytes]]:
    out = {f"format-{k}": v for k, v in FORMAT_VARIANTS.items()}
    out.update({f"link-{k}": v for k, v in LINK_VARIANTS.items()})
    out.update(FLOW_SCENARIOS)
    return out


def build(name: str) -> bytes:
    return all_scenarios()[name]()


def extension_for(data: bytes) -> str:
    if data[:2] == b"\x1f\x8b":
        return ".pcap.gz"
    return ".pcapng" if data[:4] == b"\x0a\x0d\x0d\x0a" else ".pcap"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, builder in all_scenarios().items():
        data = builder()
        path = directory / (name + extension_for(data))
        path.write_bytes(data)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m tests.pcapgen DIR   (writes every scenario capture to DIR)", file=sys.stderr)
        return 2
    paths = write_all(Path(argv[0]))
    print(f"wrote {len(paths)} captures to {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
