"""Generate a large, realistic capture of a Linkerd-meshed cluster for the benchmarks.

Role: write a classic pcap (microsecond timestamps) of about a million packets as a node-wide
``tshark -i any`` capture would see them -- thousands of interleaved TCP flows between ~50 pod IPs
(TLS 1.3 mesh traffic, plaintext HTTP/1.1, h2c/gRPC, loopback hops, flows joined mid-stream, flows
that never carry payload) plus UDP DNS -- and a ground-truth sidecar ``PATH.truth.csv`` with the
verdict a correct analyzer must give each TCP flow.

Must not: import anything outside the standard library, or build packets one by one with scapy.
Speed is the point: a million packets must be written in seconds, so per-packet work is one
``struct.pack`` of the IPv4+TCP header into precomputed per-direction templates (link header,
addresses, checksum base), with payloads sliced zero-copy out of precomputed byte streams.
Handshakes (a few per flow) are built with ordinary helpers.

What the bytes are, so that Wireshark dissects them like real traffic:
- TCP: SYN/SYN-ACK with MSS, SACK-permitted, timestamps and window scale; every other segment
  carries the timestamp option (hence MSS 1448 on a 1500-byte MTU, 65483 on ``lo``); sequence and
  acknowledgement numbers are consistent, the receiver ACKs every second full segment. IPv4 header
  checksums are correct; TCP checksums are 0, as captured before NIC checksum offload fills them.
- TLS 1.3 as rustls/Linkerd sends it: ClientHello with the identity SNI
  ``<sa>.<ns>.serviceaccount.identity.linkerd.cluster.local``, no ALPN on app ports, ALPN
  ``transport.l5d.io/v1`` on 4143; a quarter carry an X25519MLKEM768 key share and padding, so
  they exceed one MSS and span two segments; ServerHello with supported_versions 0x0304, fake
  ChangeCipherSpec, then only application_data (type 23) records in both directions.
- HTTP/1.1 (Prometheus ``/metrics`` scrapes, kubelet probes, app requests), h2c (preface, SETTINGS,
  HPACK-encoded HEADERS, gRPC DATA), DNS queries and answers.

Simplifications (documented, not hidden): a loopback packet is written once (``-i any`` shows it
twice, outgoing and incoming); no retransmissions, reordering or loss; TCP checksums are zero.

Usage::

    python benchmarks/gencapture.py -o /tmp/bench.sll2.pcap --linktype sll2 --packets 1000000
"""

from __future__ import annotations

import argparse
import bisect
import csv
import ipaddress
import random
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tlsbytes import extension as tls_extension  # noqa: E402 - standard library only, like this file
from tlsbytes import handshake_msg as tls_handshake  # noqa: E402
from tlsbytes import record as tls_record  # noqa: E402
from tlsbytes import u16, vec8, vec16  # noqa: E402

# --- pcap and link layer --------------------------------------------------------------------

PCAP_MAGIC_USEC = 0xA1B2C3D4  # classic pcap, microsecond timestamps
SNAPLEN = 262144  # what tcpdump/tshark write today
LINKTYPE_ETHERNET = 1  # DLT_EN10MB
LINKTYPE_LINUX_SLL = 113  # Linux cooked v1, tshark 4.0 -i any
LINKTYPE_LINUX_SLL2 = 276  # Linux cooked v2, libpcap >= 1.10 -i any
LINKTYPES = {"ether": LINKTYPE_ETHERNET, "sll": LINKTYPE_LINUX_SLL, "sll2": LINKTYPE_LINUX_SLL2}

ETHERTYPE_IPV4 = 0x0800
ARPHRD_ETHER = 1  # linux/if_arp.h
ARPHRD_LOOPBACK = 772  # linux/if_arp.h: what marks frames captured on lo
PACKET_HOST = 0  # linux/if_packet.h: addressed to this host
PACKET_OUTGOING = 4  # linux/if_packet.h: sent by this host
IFINDEX_LO = 1

PCAP_RECORD = struct.Struct("<IIII")  # ts_sec, ts_usec, incl_len, orig_len

# --- IPv4 / TCP / UDP ---------------------------------------------------------------------------

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IP_DF = 0x4000  # don't fragment, RFC 791
TTL = 64
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10  # RFC 793
TCPOPT_TS_PREFIX = 0x0101080A  # NOP, NOP, kind 8 len 10: timestamps, RFC 7323 3.2
MSS_ETH = 1448  # 1500 - 20 (IPv4) - 32 (TCP with timestamps)
MSS_LO = 65483  # 65536 (lo MTU) - 20 - 32, capped so the IPv4 total length fits 16 bits
WSCALE = 7

# Non-SYN segments: 20-byte IPv4 header + 32-byte TCP header (timestamps option). This is the
# only struct packed per packet; every argument but the variable ones is a constant or a
# per-direction precomputed value.
IPV4_TCP_TS = struct.Struct("!BBHHHBBH8sHHIIBBHHHIII")
IPV4_TCP_TS_LEN = 52
IPV4_UDP = struct.Struct("!BBHHHBBH8sHHHH")
IPV4_UDP_LEN = 28

# --- TLS (RFC 8446) ------------------------------------------------------------------------------

TLS_CHANGE_CIPHER_SPEC, TLS_ALERT, TLS_HANDSHAKE, TLS_APPLICATION_DATA = 20, 21, 22, 23
TLS_CLIENT_HELLO, TLS_SERVER_HELLO = 1, 2
TLS_VERSION_1_0, TLS_VERSION_1_2, TLS_VERSION_1_3 = 0x0301, 0x0303, 0x0304
EXT_SERVER_NAME = 0  # RFC 6066
EXT_SUPPORTED_GROUPS = 10  # RFC 8422
EXT_SIGNATURE_ALGORITHMS = 13  # RFC 8446 4.2.3
EXT_ALPN = 16  # RFC 7301
EXT_PADDING = 21  # RFC 7685
EXT_SUPPORTED_VERSIONS = 43  # RFC 8446 4.2.1
EXT_PSK_KEY_EXCHANGE_MODES = 45  # RFC 8446 4.2.9
EXT_KEY_SHARE = 51  # RFC 8446 4.2.8
GROUP_X25519, GROUP_SECP256R1, GROUP_SECP384R1 = 0x001D, 0x0017, 0x0018  # IANA TLS groups
GROUP_X25519MLKEM768 = 0x11EC  # draft-kwiatkowski-tls-ecdhe-mlkem
CIPHER_SUITES_TLS13 = (0x1301, 0x1302, 0x1303)  # AES128-GCM, AES256-GCM, CHACHA20 (RFC 8446 B.4)
TLS_MAX_CIPHERTEXT = 16384 + 17  # full record: 2^14 plaintext + content type + 16-byte AEAD tag
ALPN_LINKERD_TRANSPORT = "transport.l5d.io/v1"
IDENTITY_SUFFIX = "serviceaccount.identity.linkerd.cluster.local"

# --- HTTP/2 (RFC 9113) -------------------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_SETTINGS, H2_WINDOW_UPDATE = 0x0, 0x1, 0x4, 0x8
H2_END_STREAM, H2_ACK, H2_END_HEADERS = 0x1, 0x1, 0x4

# --- ports ------------------------------------------------------------------------------------

PORT_PROXY_INBOUND = 4143  # Linkerd proxy inbound / opaque transport
PORT_PROXY_OUTBOUND = 4140  # Linkerd proxy outbound listener on 127.0.0.1
PORT_PROXY_ADMIN = 4191  # Linkerd proxy admin: /metrics, /ready, /live
PORT_DNS = 53
EPHEMERAL_LO, EPHEMERAL_HI = 32768, 60999  # Linux ip_local_port_range default


# ================================================================================================
# Cluster inventory: who exists and who talks to whom
# ================================================================================================

@dataclass(frozen=True, slots=True)
class Pod:
    """One pod: identity parts, IP, the node it runs on and whether it is meshed."""

    ns: str
    app: str
    sa: str
    ip: str
    node: int
    meshed: bool

    @property
    def identity(self) -> str:
        return f"{self.sa}.{self.ns}.{IDENTITY_SUFFIX}"


# (namespace, deployment, service account, replicas, meshed). 49 pods over three nodes.
DEPLOYMENTS = (
    ("linkerd", "linkerd-destination", "linkerd-destination", 2, True),
    ("linkerd", "linkerd-identity", "linkerd-identity", 1, True),
    ("linkerd", "linkerd-proxy-injector", "linkerd-proxy-injector", 1, True),
    ("linkerd-viz", "prometheus", "prometheus", 1, True),
    ("linkerd-viz", "metrics-api", "metrics-api", 1, True),
    ("linkerd-viz", "tap", "tap", 1, True),
    ("linkerd-viz", "viz-web", "web", 1, True),
    ("kube-system", "coredns", "coredns", 2, False),
    ("monitoring", "prometheus-legacy", "prometheus", 1, False),
    ("emojivoto", "web", "web", 3, True),
    ("emojivoto", "emoji", "emoji", 3, True),
    ("emojivoto", "voting", "voting", 3, True),
    ("emojivoto", "vote-bot", "default", 1, True),
    ("booksapp", "webapp", "webapp", 3, True),
    ("booksapp", "authors", "authors", 3, True),
    ("booksapp", "books", "books", 3, True),
    ("booksapp", "traffic", "traffic", 1, True),
    ("booksapp", "mysql", "mysql", 1, True),
    ("shop", "frontend", "frontend", 3, True),
    ("shop", "cart", "cart", 2, True),
    ("shop", "catalog", "catalog", 3, True),
    ("shop", "orders", "orders", 2, True),
    ("shop", "payments", "payments", 2, True),
    ("shop", "redis", "redis", 1, True),
    ("legacy", "batch-api", "default", 2, False),
    ("legacy", "grpc-worker", "default", 2, False),
)
NODE_IPS = ("172.18.0.2", "172.18.0.3", "172.18.0.4")  # kubelet probes come from these
DEAD_POD_IP = "10.4.2.250"  # a recycled IP nobody answers on (SYN-only flows)

# Meshed app calls (client app, server app, server port). Port 4143 means the opaque transport
# (ALPN transport.l5d.io/v1); any other port is TLS on the app port ("transparent" mode).
MESH_EDGES = (
    ("vote-bot", "web", 8080), ("web", "emoji", 8080), ("web", "voting", 8080),
    ("web", "emoji", 4143), ("web", "voting", 4143),
    ("traffic", "webapp", 7000), ("webapp", "authors", 7001), ("webapp", "books", 7002),
    ("books", "authors", 7001), ("authors", "books", 7002), ("webapp", "books", 4143),
    ("frontend", "cart", 8080), ("frontend", "catalog", 8080), ("frontend", "orders", 8080),
    ("orders", "payments", 8080), ("cart", "catalog", 4143), ("frontend", "catalog", 4143),
    ("metrics-api", "prometheus", 9090),
    # opaque ports (MySQL, Redis) always ride the 4143 transport
    ("webapp", "mysql", 4143), ("authors", "mysql", 4143), ("books", "mysql", 4143),
    ("cart", "redis", 4143), ("orders", "redis", 4143),
)
CONTROL_PLANE = (("linkerd-destination", 8086), ("linkerd-identity", 8080))
# Plaintext calls from meshed clients to unmeshed servers (Linkerd cannot encrypt these).
PLAIN_HTTP_EDGES = (("frontend", "batch-api", 8080), ("orders", "batch-api", 8080))
H2C_EDGES = (("orders", "grpc-worker", 50051), ("batch-api", "grpc-worker", 50051),
             ("payments", "grpc-worker", 50051))
APP_PORTS = {"web": 8080, "emoji": 8080, "voting": 8080, "webapp": 7000, "authors": 7001,
             "books": 7002, "frontend": 8080, "cart": 8080, "catalog": 8080, "orders": 8080,
             "payments": 8080, "prometheus": 9090, "metrics-api": 8085}


def build_pods() -> list[Pod]:
    """The fixed inventory: IPs 10.4.<node>.<n>, replicas spread over the nodes."""
    pods, next_host = [], [10, 10, 10]
    for i, (ns, app, sa, replicas, meshed) in enumerate(DEPLOYMENTS):
        for r in range(replicas):
            node = (i + r) % 3
            pods.append(Pod(ns, app, sa, f"10.4.{node}.{next_host[node]}", node, meshed))
            next_host[node] += 1
    return pods


# ================================================================================================
# Byte builders (per flow, not per packet); the TLS primitives are the tests' (tests/tlsbytes.py)
# ================================================================================================

def client_hello(rng: random.Random, sni: str, alpn: str | None, pq: bool) -> bytes:
    """A rustls-style TLS 1.3 ClientHello record (RFC 8446 4.1.2).

    ``pq`` adds an X25519MLKEM768 key share (1216 bytes) and a padding extension, like the
    post-quantum hellos of Linkerd proxy v2.314+, making the record larger than one MSS.
    """
    groups = (GROUP_X25519MLKEM768,) if pq else ()
    groups += (GROUP_X25519, GROUP_SECP256R1, GROUP_SECP384R1)
    shares = u16(GROUP_X25519) + vec16(rng.randbytes(32))
    if pq:
        shares = u16(GROUP_X25519MLKEM768) + vec16(rng.randbytes(1216)) + shares
    exts = [
        tls_extension(EXT_SERVER_NAME, vec16(b"\x00" + vec16(sni.encode("ascii")))),
        tls_extension(EXT_SUPPORTED_GROUPS, vec16(b"".join(u16(g) for g in groups))),
        # ecdsa_secp256r1_sha256, ecdsa_secp384r1_sha256, ed25519, rsa_pss_rsae_sha256
        tls_extension(EXT_SIGNATURE_ALGORITHMS, vec16(bytes.fromhex("0403050308070804"))),
        tls_extension(EXT_SUPPORTED_VERSIONS, vec8(u16(TLS_VERSION_1_3))),
        tls_extension(EXT_PSK_KEY_EXCHANGE_MODES, vec8(b"\x01")),  # psk_dhe_ke
        tls_extension(EXT_KEY_SHARE, vec16(shares)),
    ]
    if alpn:
        exts.insert(3, tls_extension(EXT_ALPN, vec16(vec8(alpn.encode("ascii")))))
    if pq:
        exts.append(tls_extension(EXT_PADDING, bytes(rng.randrange(200, 500))))
    body = (u16(TLS_VERSION_1_2) + rng.randbytes(32) + vec8(rng.randbytes(32))
            + vec16(b"".join(u16(c) for c in CIPHER_SUITES_TLS13)) + b"\x01\x00"
            + vec16(b"".join(exts)))
    return tls_record(TLS_HANDSHAKE, tls_handshake(TLS_CLIENT_HELLO, body), TLS_VERSION_1_0)


def server_first_flight(rng: random.Random, pq: bool, pool: bytes) -> bytes:
    """ServerHello (supported_versions 0x0304), fake CCS, then the encrypted flight as type 23.

    The encrypted EncryptedExtensions/CertificateRequest/Certificate/CertificateVerify/Finished
    are opaque application_data records on the wire (RFC 8446 5.2).
    """
    share_group, share_len = (GROUP_X25519MLKEM768, 1120) if pq else (GROUP_X25519, 32)
    exts = (tls_extension(EXT_SUPPORTED_VERSIONS, u16(TLS_VERSION_1_3))
            + tls_extension(EXT_KEY_SHARE, u16(share_group) + vec16(rng.randbytes(share_len))))
    body = (u16(TLS_VERSION_1_2) + rng.randbytes(32) + vec8(rng.randbytes(32))
            + u16(rng.choice(CIPHER_SUITES_TLS13)) + b"\x00" + vec16(exts))
    return (tls_record(TLS_HANDSHAKE, tls_handshake(TLS_SERVER_HELLO, body))
            + tls_record(TLS_CHANGE_CIPHER_SPEC, b"\x01")
            + tls_record(TLS_APPLICATION_DATA, random_slice(rng, pool, rng.randrange(30, 60)))
            + tls_record(TLS_APPLICATION_DATA, random_slice(rng, pool, rng.randrange(1100, 1900))))


def client_second_flight(rng: random.Random, pool: bytes) -> bytes:
    """Fake CCS plus the encrypted client Certificate/CertificateVerify/Finished."""
    return (tls_record(TLS_CHANGE_CIPHER_SPEC, b"\x01")
            + tls_record(TLS_APPLICATION_DATA, random_slice(rng, pool, rng.randrange(800, 1300))))


def random_slice(rng: random.Random, pool: bytes, n: int) -> bytes:
    off = rng.randrange(0, len(pool) - n)
    return pool[off:off + n]


def h2_frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + stream.to_bytes(4, "big") + payload


def hpack_literal(index: int, value: str) -> bytes:
    """Literal header field without indexing, indexed name (RFC 7541 6.2.2); index < 15 + 128."""
    prefix = bytes((index,)) if index < 15 else bytes((0x0F, index - 15))
    return prefix + vec8(value.encode("ascii"))


def protobuf_bytes_field(data: bytes) -> bytes:
    """A protobuf message with field 1 = ``data`` (wire type 2), so gRPC dissectors stay quiet."""
    n, varint = len(data), bytearray()
    while True:
        varint.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return b"\x0a" + bytes(varint) + data


def h2c_request(stream: int, authority: str, path: str, body: bytes) -> bytes:
    """gRPC request: HEADERS (POST, http, path, authority, content-type, te) + DATA (END_STREAM)."""
    block = (b"\x83\x86" + hpack_literal(4, path) + hpack_literal(1, authority)
             + hpack_literal(31, "application/grpc") + b"\x00" + vec8(b"te") + vec8(b"trailers"))
    body = protobuf_bytes_field(body)
    msg = b"\x00" + len(body).to_bytes(4, "big") + body  # gRPC length-prefixed message
    return (h2_frame(H2_HEADERS, H2_END_HEADERS, stream, block)
            + h2_frame(H2_DATA, H2_END_STREAM, stream, msg))


def h2c_response(stream: int, body: bytes) -> bytes:
    """gRPC response: HEADERS :status 200, DATA frames of <= 16384 bytes, trailers grpc-status 0."""
    body = protobuf_bytes_field(body)
    msg = b"\x00" + len(body).to_bytes(4, "big") + body
    frames = [h2_frame(H2_HEADERS, H2_END_HEADERS, stream, b"\x88" + hpack_literal(31, "application/grpc"))]
    frames += [h2_frame(H2_DATA, 0, stream, msg[i:i + 16384]) for i in range(0, len(msg), 16384)]
    trailers = b"\x00" + vec8(b"grpc-status") + vec8(b"0")
    frames.append(h2_frame(H2_HEADERS, H2_END_HEADERS | H2_END_STREAM, stream, trailers))
    return b"".join(frames)


H2_CLIENT_SETTINGS = h2_frame(H2_SETTINGS, 0, 0, struct.pack("!HIHI", 0x2, 0, 0x4, 4194304))
H2_SERVER_SETTINGS = h2_frame(H2_SETTINGS, 0, 0, struct.pack("!HIHI", 0x3, 100, 0x5, 16384))
H2_SETTINGS_ACK = h2_frame(H2_SETTINGS, H2_ACK, 0, b"")
H2_WINDOW = h2_frame(H2_WINDOW_UPDATE, 0, 0, struct.pack("!I", 4128769))


def scrape_request(server: Pod) -> bytes:
    return (f"GET /metrics HTTP/1.1\r\nHost: {server.ip}:{PORT_PROXY_ADMIN}\r\n"
            "User-Agent: Prometheus/2.48.1\r\nAccept: text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
            "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n").encode()


def dns_name(name: str) -> bytes:
    return b"".join(vec8(label.encode("ascii")) for label in name.split(".")) + b"\x00"


# ================================================================================================
# Byte streams that bulk payload is sliced from
# ================================================================================================

STREAM_TAIL = MSS_LO + 1  # each template is followed by its own start, so a slice never wraps


class Stream:
    """A cyclic byte template; ``take(n)`` returns zero-copy memoryview slices of it.

    Templates end on a record/line boundary, so reading across the wrap point still yields valid
    TLS records (or text). ``starts`` holds the record boundaries a fresh stream may begin at.
    """

    __slots__ = ("buf", "size", "starts")

    def __init__(self, data: bytes, starts: list[int]):
        self.buf = memoryview(data + data[:STREAM_TAIL])
        self.size = len(data)
        self.starts = starts


def tls_stream(rng: random.Random, pool: bytes, total: int, full_share: float) -> Stream:
    """Back-to-back application_data records: ``full_share`` full-size ones, the rest small."""
    parts, starts, size = [], [], 0
    while size < total:
        n = TLS_MAX_CIPHERTEXT if rng.random() < full_share else rng.randrange(24, 1400)
        starts.append(size)
        parts.append(tls_record(TLS_APPLICATION_DATA, random_slice(rng, pool, n)))
        size += 5 + n
    return Stream(b"".join(parts), starts)


def text_stream(lines: list[bytes]) -> Stream:
    starts, size = [], 0
    for line in lines:
        starts.append(size)
        size += len(line)
    return Stream(b"".join(lines), starts)


def metrics_lines(rng: random.Random, pods: list[Pod], total: int) -> list[bytes]:
    """Prometheus exposition text like a linkerd-proxy /metrics page."""
    lines, size = [], 0
    names = ("request_total", "response_total", "tcp_open_total", "tcp_read_bytes_total",
             "tcp_write_bytes_total", "response_latency_ms_bucket")
    while size < total:
        name = rng.choice(names)
        peer = rng.choice(pods)
        if rng.random() < 0.05:
            line = f"# HELP {name} A counter.\n# TYPE {name} counter\n"
        else:
            le = f',le="{rng.choice((1, 10, 50, 100, 500, 1000))}"' if name.endswith("bucket") else ""
            line = (f'{name}{{direction="outbound",authority="{peer.app}.{peer.ns}.svc.cluster.local:8080",'
                    f'dst_namespace="{peer.ns}",dst_pod="{peer.app}-{rng.randrange(16**8):08x}",'
                    f'tls="true",server_id="{peer.identity}"{le}}} {rng.randrange(10**7)}\n')
        lines.append(line.encode("ascii"))
        size += len(lines[-1])
    return lines


def json_lines(rng: random.Random, total: int) -> list[bytes]:
    """An app's JSON list responses (emojivoto-like)."""
    words = ("joy", "sunglasses", "doughnut", "poop", "rocket", "ghost", "100", "ok_hand", "pizza")
    lines, size = [], 0
    while size < total:
        w = rng.choice(words)
        code, votes = rng.randrange(0x1F300, 0x1FAFF), rng.randrange(9999)
        line = f'{{"shortcode":":{w}:","unicode":"U+{code:X}","votes":{votes}}},\n'
        lines.append(line.encode("ascii"))
        size += len(lines[-1])
    return lines


# ================================================================================================
# Connections: per-direction templates and the per-packet hot path
# ================================================================================================

class Half:
    """One direction of a connection: everything constant is precomputed here."""

    __slots__ = ("link", "link_len", "addrs", "sport", "dport", "seq", "ipid", "csum_base", "tsval",
                 "win", "stream", "pos")

    def __init__(self, link: bytes, src: str, dst: str, sport: int, dport: int, rng: random.Random,
                 proto: int = IPPROTO_TCP):
        self.link = link
        self.link_len = len(link)
        self.addrs = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
        self.sport, self.dport = sport, dport
        self.seq = rng.getrandbits(32)
        self.ipid = rng.getrandbits(16)
        self.tsval = rng.getrandbits(32)
        self.win = rng.choice((502, 509, 1024, 2048))
        # RFC 791/1071 header checksum over the constant words; per packet only the total
        # length and the IP ID are added and the sum folded.
        words = struct.unpack("!4H", self.addrs)
        self.csum_base = 0x4500 + IP_DF + (TTL << 8 | proto) + sum(words)
        self.stream: Stream | None = None
        self.pos = 0


class Conn:
    """One TCP connection (or UDP exchange): two ``Half``s, the truth row, and a packet generator.

    ``seg`` is the hot path: it returns ``(caplen, link, ip_tcp_header, payload)`` for one
    segment and advances the sender's sequence number. The scenario generators in
    ``Generator`` yield those tuples.
    """

    __slots__ = ("halves", "kind", "truth", "localhost", "client", "server", "mss", "drain")

    def __init__(self, kind: str, client: tuple[str, int], server: tuple[str, int],
                 links: tuple[bytes, bytes], rng: random.Random, mss: int, proto: int = IPPROTO_TCP):
        self.kind = kind
        self.client, self.server = client, server
        self.halves = (Half(links[0], client[0], server[0], client[1], server[1], rng, proto),
                       Half(links[1], server[0], client[0], server[1], client[1], rng, proto))
        self.truth = "unknown"  # updated just before the packet that proves the verdict
        self.localhost = client[0] == server[0] or client[0].startswith("127.") or server[0].startswith("127.")
        self.mss = mss
        self.drain = False  # set when the capture is about to end: skip to the close

    def seg(self, d: int, flags: int, payload=b""):
        h = self.halves[d]
        o = self.halves[d ^ 1]
        tot = IPV4_TCP_TS_LEN + len(payload)
        ipid = h.ipid = (h.ipid + 1) & 0xFFFF
        s = h.csum_base + tot + ipid
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        tsval = h.tsval = (h.tsval + 1) & 0xFFFFFFFF
        seq = h.seq
        hdr = IPV4_TCP_TS.pack(0x45, 0, tot, ipid, IP_DF, TTL, IPPROTO_TCP, ~s & 0xFFFF, h.addrs,
                               h.sport, h.dport, seq, o.seq, 0x80, flags, h.win, 0, 0,
                               TCPOPT_TS_PREFIX, tsval, o.tsval)
        if flags & (TCP_SYN | TCP_FIN):
            h.seq = (seq + len(payload) + 1) & 0xFFFFFFFF  # SYN and FIN take one sequence number
        else:
            h.seq = (seq + len(payload)) & 0xFFFFFFFF
        return (h.link_len + tot, h.link, hdr, payload)

    def syn(self, d: int, flags: int, retransmit: bool = False):
        """SYN or SYN-ACK with Linux's options: MSS, SACK_PERM, TS, NOP, WS (RFC 7323)."""
        h = self.halves[d]
        o = self.halves[d ^ 1]
        if retransmit:
            h.seq = (h.seq - 1) & 0xFFFFFFFF
        mss_opt = self.mss + 12  # the option omits the timestamp overhead
        opts = struct.pack("!BBHBBBBIIBBBB", 2, 4, mss_opt, 4, 2, 8, 10, h.tsval,
                           o.tsval if flags & TCP_ACK else 0, 1, 3, 3, WSCALE)
        return self._raw(d, flags, opts, ack=o.seq if flags & TCP_ACK else 0, advance=1)

    def rst(self, d: int):
        """RST+ACK without options, as Linux answers a SYN to a closed port."""
        return self._raw(d, TCP_RST | TCP_ACK, b"", ack=self.halves[d ^ 1].seq, advance=0)

    def _raw(self, d: int, flags: int, opts: bytes, ack: int, advance: int):
        h = self.halves[d]
        tcp = struct.pack("!HHIIBBHHH", h.sport, h.dport, h.seq, ack, (20 + len(opts)) << 2,
                          flags, 64240 if flags & TCP_SYN else 0, 0, 0) + opts
        h.seq = (h.seq + advance) & 0xFFFFFFFF
        h.ipid = (h.ipid + 1) & 0xFFFF
        ip = ip_header(h, 20 + len(tcp), IPPROTO_TCP)
        return (h.link_len + len(ip) + len(tcp), h.link, ip + tcp, b"")

    def udp(self, d: int, payload: bytes):
        h = self.halves[d]
        tot = IPV4_UDP_LEN + len(payload)
        h.ipid = (h.ipid + 1) & 0xFFFF
        ip = ip_header(h, tot, IPPROTO_UDP)
        return (h.link_len + tot, h.link, ip + struct.pack("!HHHH", h.sport, h.dport, tot - 20, 0), payload)


def ip_header(h: Half, tot: int, proto: int) -> bytes:
    s = h.csum_base + tot + h.ipid
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return struct.pack("!BBHHHBBH8s", 0x45, 0, tot, h.ipid, IP_DF, TTL, proto, ~s & 0xFFFF, h.addrs)


# ================================================================================================
# Link headers
# ================================================================================================

def mac_of(ip: str) -> bytes:
    """Kubernetes CNI-style MAC 0a:58:<ip> for pods; a fixed node MAC otherwise."""
    return b"\x0a\x58" + ipaddress.IPv4Address(ip).packed


def link_headers(linktype: int, src: str, dst: str, ifindex: int, loopback: bool) -> tuple[bytes, bytes]:
    """Link headers for (client->server, server->client).

    Ethernet: lo frames carry zero MACs, as Linux writes them. SLL/SLL2: the capture point is the
    client's interface, so client->server frames are PACKET_OUTGOING and replies PACKET_HOST;
    lo frames use ARPHRD_LOOPBACK (772) and, in SLL2, ifindex 1.
    """
    if loopback:
        smac = dmac = bytes(6)
        hatype, ifindex = ARPHRD_LOOPBACK, IFINDEX_LO
    else:
        smac, dmac = mac_of(src), mac_of(dst)
        hatype = ARPHRD_ETHER
    out = []
    for a, b, pkttype in ((smac, dmac, PACKET_OUTGOING), (dmac, smac, PACKET_HOST)):
        if linktype == LINKTYPE_ETHERNET:
            out.append(b + a + u16(ETHERTYPE_IPV4))
        elif linktype == LINKTYPE_LINUX_SLL:
            out.append(struct.pack("!HHH8sH", pkttype, hatype, 6, a + b"\0\0", ETHERTYPE_IPV4))
        else:  # SLL2: protocol, reserved, ifindex, hatype, pkttype, halen, address
            out.append(struct.pack("!HHIHBB8s", ETHERTYPE_IPV4, 0, ifindex, hatype, pkttype, 6, a + b"\0\0"))
    return out[0], out[1]


# ================================================================================================
# Scenarios
# ================================================================================================

# Relative weight of each flow kind when a new flow starts. "dns" is UDP (no truth row).
KIND_WEIGHTS = {
    "tls-app": 22, "tls-4143": 14, "tls-control": 10, "tls-scrape": 4, "tls-failed": 1,
    "http-scrape": 2, "http-probe": 10, "http-app": 5, "h2c": 5,
    "local-http": 8, "local-h2c": 3, "local-outbound": 4,
    "mid-tls": 3, "mid-http": 1,
    "tcp-probe": 4, "refused": 2, "syn-only": 1,
    "dns": 40,
}
KIND_VERDICT = {  # the verdict a flow earns once its evidence packet has been written
    "tls-app": "tls", "tls-4143": "tls", "tls-control": "tls", "tls-scrape": "tls", "tls-failed": "tls",
    "http-scrape": "plaintext", "http-probe": "plaintext", "http-app": "plaintext", "h2c": "plaintext",
    "local-http": "plaintext", "local-h2c": "plaintext", "local-outbound": "plaintext",
    "mid-tls": "tls", "mid-http": "plaintext",
    "tcp-probe": "unknown", "refused": "unknown", "syn-only": "unknown",
}


class Generator:
    """Builds the whole capture: flow scheduling, scenarios, file and truth output."""

    ACTIVE_FLOWS = 256  # concurrent flows; each packet goes to a random one of them
    DRAIN_PER_FLOW = 48  # packets reserved per active flow for closing at the end

    def __init__(self, seed: int, linktype: int):
        self.rng = random.Random(seed)
        self.linktype = linktype
        self.pods = build_pods()
        rng = self.rng
        self.by_app: dict[str, list[Pod]] = {}
        for p in self.pods:
            self.by_app.setdefault(p.app, []).append(p)
        self.meshed = [p for p in self.pods if p.meshed]
        self.pool = rng.randbytes(1 << 22)  # "ciphertext": 4 MiB of seeded random bytes
        self.tls_bulk = tls_stream(rng, self.pool, 6 << 20, full_share=0.6)
        self.tls_small = tls_stream(rng, self.pool, 1 << 20, full_share=0.0)
        self.metrics = text_stream(metrics_lines(rng, self.pods, 2 << 20))
        self.json = text_stream(json_lines(rng, 1 << 20))
        self.next_port: dict[str, int] = {}
        self.conns: list[Conn] = []
        self.kinds = list(KIND_WEIGHTS)
        self.cum_weights = []
        total = 0
        for k in self.kinds:
            total += KIND_WEIGHTS[k]
            self.cum_weights.append(total)

    # --- helpers ---------------------------------------------------------------------------

    def ephemeral(self, ip: str) -> int:
        """Client ports increase per client IP from a random start, so tuples never repeat."""
        rng = self.rng
        port = self.next_port.get(ip)
        if port is None:
            port = rng.randrange(EPHEMERAL_LO, 45000)
        port += rng.randrange(1, 8)
        if port > EPHEMERAL_HI:
            port = EPHEMERAL_LO + (port - EPHEMERAL_HI)
        self.next_port[ip] = port
        return port

    def ifindex(self, ip: str) -> int:
        for i, p in enumerate(self.pods):
            if p.ip == ip:
                return 10 + i
        return 2  # the node's eth0

    def conn(self, kind: str, cip: str, sip: str, sport: int, mss: int = MSS_ETH,
             proto: int = IPPROTO_TCP, loopback: bool = False) -> Conn:
        links = link_headers(self.linktype, cip, sip, self.ifindex(cip), loopback)
        c = Conn(kind, (cip, self.ephemeral(cip)), (sip, sport), links, self.rng, mss, proto)
        if proto == IPPROTO_TCP:
            self.conns.append(c)
        return c

    def start_stream(self, h: Half, stream: Stream, mid: bool = False) -> None:
        h.stream = stream
        h.pos = self.rng.randrange(stream.size) if mid else self.rng.choice(stream.starts)

    def pick(self, app: str) -> Pod:
        return self.rng.choice(self.by_app[app])

    def other(self, pods: list[Pod], not_this: Pod) -> Pod:
        """A pod other than ``not_this`` (a pod talking to its own IP is a loopback flow)."""
        while (p := self.rng.choice(pods)) is not_this:
            pass
        return p

    def size(self, small: tuple[int, int], large: tuple[int, int], p_large: float,
             huge: tuple[int, int] | None = None, p_huge: float = 0.0) -> int:
        """Response sizes: mostly small, some large, rarely huge (bulk transfers)."""
        r = self.rng.random()
        lo, hi = huge if (huge and r < p_huge) else (large if r < p_huge + p_large else small)
        return self.rng.randrange(lo, hi)

    # --- TCP building blocks (generators of segments) ---------------------------------------

    @staticmethod
    def send(c: Conn, d: int, data, cut: bool = True):
        """Segment ``data`` from side ``d``; the receiver ACKs every second full segment.

        Returns (via ``yield from``) how many segments are still unacknowledged, so the caller
        ACKs only when there is something to ACK (a second ACK of the same byte would be a
        duplicate ACK to Wireshark). With ``cut`` the message is abandoned when the capture
        drains (bulk only, never a handshake message, so truth never depends on a cut).
        """
        mv = memoryview(data)
        n = len(mv)
        mss = c.mss
        seg = c.seg
        off = 0
        unacked = 0
        while off < n:
            if cut and c.drain and off:
                break
            end = off + mss
            yield seg(d, TCP_PSH | TCP_ACK if end >= n else TCP_ACK, mv[off:end])
            off = end
            unacked += 1
            if unacked == 2 and off < n:
                yield seg(d ^ 1, TCP_ACK)
                unacked = 0
        return unacked

    @staticmethod
    def send_stream(c: Conn, d: int, n: int, head: bytes = b"", cut: bool = True):
        """Like ``send`` for ``head`` + the next ``n`` bytes of the side's stream (zero-copy)."""
        h = c.halves[d]
        stream = h.stream
        buf, size = stream.buf, stream.size
        mss = c.mss
        seg = c.seg
        pos = h.pos
        unacked = 0
        if head:  # first segment: the header plus the start of the body (copied, small)
            take = min(mss - len(head), n) if len(head) < mss else 0
            payload = head + bytes(buf[pos:pos + take])
            pos += take
            if pos >= size:
                pos -= size
            n -= take
            yield seg(d, TCP_PSH | TCP_ACK if n <= 0 else TCP_ACK, payload)
            unacked = 1
        while n > 0:
            if cut and c.drain:
                break
            take = mss if n > mss else n
            n -= take
            yield seg(d, TCP_PSH | TCP_ACK if n <= 0 else TCP_ACK, buf[pos:pos + take])
            pos += take
            if pos >= size:
                pos -= size
            unacked += 1
            if unacked == 2 and n > 0:
                yield seg(d ^ 1, TCP_ACK)
                unacked = 0
        h.pos = pos
        return unacked

    @staticmethod
    def open(c: Conn):
        yield c.syn(0, TCP_SYN)
        yield c.syn(1, TCP_SYN | TCP_ACK)
        yield c.seg(0, TCP_ACK)

    @staticmethod
    def close(c: Conn, first: int = 0):
        yield c.seg(first, TCP_FIN | TCP_ACK)
        yield c.seg(first ^ 1, TCP_FIN | TCP_ACK)
        yield c.seg(first, TCP_ACK)

    # --- scenarios --------------------------------------------------------------------------

    def tls_flow(self, c: Conn, sni: str, alpn: str | None, exchanges: int, req: tuple[int, int],
                 resp, failed: bool = False):
        """Full TLS 1.3 connection: handshake, ``exchanges`` request/response pairs, close."""
        rng = self.rng
        pq = rng.random() < 0.25
        hello = client_hello(rng, sni, alpn, pq)
        yield from self.open(c)
        if len(hello) > c.mss:
            yield c.seg(0, TCP_ACK, hello[:c.mss])
            c.truth = "tls"
            yield c.seg(0, TCP_PSH | TCP_ACK, hello[c.mss:])
        else:
            c.truth = "tls"
            yield c.seg(0, TCP_PSH | TCP_ACK, hello)
        if failed:  # the server rejects the hello: fatal handshake_failure alert, then close
            yield c.seg(1, TCP_PSH | TCP_ACK, tls_record(TLS_ALERT, b"\x02\x28"))
            yield from self.close(c, first=1)
            return
        yield from self.send(c, 1, server_first_flight(rng, pq, self.pool), cut=False)
        yield c.seg(0, TCP_PSH | TCP_ACK, client_second_flight(rng, self.pool))
        self.start_stream(c.halves[0], self.tls_small)
        self.start_stream(c.halves[1], self.tls_bulk)
        for _ in range(exchanges):
            if c.drain:
                break
            yield from self.tls_exchange(c, rng.randrange(*req), resp())
        yield from self.close(c)

    def http_flow(self, c: Conn, requests: list[bytes], exchanges: int, body: Stream, resp,
                  close_by_server: bool = False):
        """HTTP/1.1 keep-alive: ``exchanges`` requests, each answered with a ``resp()``-byte body."""
        self.start_stream(c.halves[1], body)
        yield from self.open(c)
        for i in range(exchanges):
            if c.drain and i:
                break
            c.truth = "plaintext"
            yield from self.http_exchange(c, requests, resp())
        yield from self.close(c, first=1 if close_by_server else 0)

    def http_exchange(self, c: Conn, requests: list[bytes], n: int):
        yield from self.send(c, 0, self.rng.choice(requests), cut=False)
        head = (f"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {n}\r\ndate: Sat, 28 Nov 2026 08:00:00 GMT\r\n\r\n").encode()
        if (yield from self.send_stream(c, 1, n, head)):
            yield c.seg(0, TCP_ACK)

    def tls_exchange(self, c: Conn, n_req: int, n_resp: int):
        yield from self.send_stream(c, 0, n_req)
        if (yield from self.send_stream(c, 1, n_resp)):
            yield c.seg(0, TCP_ACK)

    def h2c_flow(self, c: Conn, authority: str, exchanges: int, resp):
        rng, pool = self.rng, self.pool
        yield from self.open(c)
        c.truth = "plaintext"
        first = H2_PREFACE + H2_CLIENT_SETTINGS + H2_WINDOW
        stream_id = 1
        for i in range(exchanges):
            if c.drain and i:
                break
            path = rng.choice(("/worker.Jobs/Submit", "/worker.Jobs/Status", "/payments.Ledger/Get"))
            req = h2c_request(stream_id, authority, path, random_slice(rng, pool, rng.randrange(20, 600)))
            yield from self.send(c, 0, first + req, cut=False)
            pre = H2_SERVER_SETTINGS + H2_SETTINGS_ACK if i == 0 else b""
            yield from self.send(c, 1, pre + h2c_response(stream_id, random_slice(rng, pool, resp())))
            if i == 0:
                yield c.seg(0, TCP_PSH | TCP_ACK, H2_SETTINGS_ACK)
            first = b""
            stream_id += 2
        yield from self.close(c)

    def mid_flow(self, c: Conn, stream: Stream, exchanges: int, exchange, verdict: str):
        """Joined mid-stream: no SYN; the server is in the middle of a response (a random byte of
        ``stream``), then ``exchange()`` request/response pairs follow.

        The first data segments are never cut, so the captured bytes always hold several record
        headers (or lines of text) to judge by.
        """
        rng = self.rng
        self.start_stream(c.halves[0], self.tls_small, mid=True)
        self.start_stream(c.halves[1], stream, mid=True)
        yield from self.send_stream(c, 1, c.mss * rng.randrange(1, 4), cut=False)
        c.truth = verdict
        if (yield from self.send_stream(c, 1, c.mss * 2, cut=False)):
            yield c.seg(0, TCP_ACK)
        for _ in range(exchanges):
            if c.drain:
                break
            yield from exchange()
        if rng.random() < 0.5:  # some end with a FIN, others just go idle
            yield from self.close(c)

    def new_flow(self, kind: str):
        """Pick endpoints for ``kind`` and return its packet generator (``None`` for no flow)."""
        rng = self.rng
        size = self.size
        if kind == "tls-app":
            capp, sapp, port = rng.choice(MESH_EDGES)
            client, server = self.pick(capp), self.pick(sapp)
            c = self.conn(kind, client.ip, server.ip, port)
            alpn = ALPN_LINKERD_TRANSPORT if port == PORT_PROXY_INBOUND else None
            return self.tls_flow(c, server.identity, alpn, rng.randrange(1, 10), (150, 900),
                                 lambda: size((200, 4000), (4000, 64000), 0.25, (256_000, 2_000_000), 0.01))
        if kind == "tls-4143":
            capp, sapp, _ = rng.choice([e for e in MESH_EDGES if e[2] == PORT_PROXY_INBOUND])
            client, server = self.pick(capp), self.pick(sapp)
            c = self.conn(kind, client.ip, server.ip, PORT_PROXY_INBOUND)
            return self.tls_flow(c, server.identity, ALPN_LINKERD_TRANSPORT, rng.randrange(2, 25),
                                 (40, 600),
                                 lambda: size((100, 3000), (3000, 40000), 0.3, (200_000, 1_000_000), 0.01))
        if kind == "tls-control":
            app, port = rng.choice(CONTROL_PLANE)
            server = self.pick(app)
            client = self.other(self.meshed, server)
            c = self.conn(kind, client.ip, server.ip, port)
            return self.tls_flow(c, server.identity, None, rng.randrange(1, 30), (100, 1500),
                                 lambda: size((200, 3000), (3000, 20000), 0.2))
        if kind == "tls-scrape":  # meshed viz Prometheus scrapes proxies over mTLS
            client = self.pick("prometheus")
            server = self.other(self.meshed, client)
            c = self.conn(kind, client.ip, server.ip, PORT_PROXY_ADMIN)
            return self.tls_flow(c, server.identity, None, rng.randrange(1, 4), (200, 400),
                                 lambda: rng.randrange(30_000, 200_000))
        if kind == "tls-failed":
            capp, sapp, port = rng.choice(MESH_EDGES)
            client, server = self.pick(capp), self.pick(sapp)
            c = self.conn(kind, client.ip, server.ip, port)
            alpn = ALPN_LINKERD_TRANSPORT if port == PORT_PROXY_INBOUND else None
            return self.tls_flow(c, "stale." + server.identity, alpn, 0, (1, 2), lambda: 0, failed=True)
        if kind == "http-scrape":  # unmeshed Prometheus scrapes in plaintext
            client, server = self.pick("prometheus-legacy"), rng.choice(self.meshed)
            c = self.conn(kind, client.ip, server.ip, PORT_PROXY_ADMIN)
            return self.http_flow(c, [scrape_request(server)], rng.randrange(1, 4), self.metrics,
                                  lambda: rng.randrange(30_000, 200_000))
        if kind == "http-probe":  # kubelet readiness/liveness probes: one request, server closes
            server = rng.choice(self.pods)
            cip = NODE_IPS[server.node]
            port = PORT_PROXY_ADMIN if server.meshed else APP_PORTS.get(server.app, 8080)
            c = self.conn(kind, cip, server.ip, port)
            path = rng.choice(("/ready", "/live")) if server.meshed else "/healthz"
            req = (f"GET {path} HTTP/1.1\r\nHost: {server.ip}:{port}\r\nUser-Agent: kube-probe/1.28\r\n"
                   "Accept: */*\r\nConnection: close\r\n\r\n").encode()
            return self.http_flow(c, [req], 1, self.json, lambda: rng.randrange(2, 40), close_by_server=True)
        if kind == "http-app":  # meshed client, unmeshed server on 8080: plaintext on a "TLS" port
            capp, sapp, port = rng.choice(PLAIN_HTTP_EDGES)
            client, server = self.pick(capp), self.pick(sapp)
            c = self.conn(kind, client.ip, server.ip, port)
            reqs = [(f"{m} {p} HTTP/1.1\r\nHost: batch-api.legacy.svc.cluster.local:8080\r\n"
                     "User-Agent: Go-http-client/1.1\r\nAccept-Encoding: identity\r\n\r\n").encode()
                    for m, p in (("GET", "/v1/jobs"), ("GET", "/v1/jobs/42"), ("DELETE", "/v1/jobs/7"))]
            return self.http_flow(c, reqs, rng.randrange(1, 8), self.json,
                                  lambda: size((100, 3000), (3000, 100_000), 0.2))
        if kind == "h2c":
            capp, sapp, port = rng.choice(H2C_EDGES)
            client, server = self.pick(capp), self.pick(sapp)
            c = self.conn(kind, client.ip, server.ip, port)
            return self.h2c_flow(c, f"grpc-worker.legacy.svc.cluster.local:{port}", rng.randrange(1, 12),
                                 lambda: size((20, 2000), (2000, 60000), 0.2))
        if kind in ("local-http", "local-h2c", "local-outbound"):
            pod = rng.choice([p for p in self.meshed if p.app in APP_PORTS])
            if kind == "local-outbound":  # app -> its proxy's outbound listener, after iptables NAT
                cip, sip, port = pod.ip, "127.0.0.1", PORT_PROXY_OUTBOUND
            elif rng.random() < 0.7:  # proxy -> app: pod IP to itself over lo
                cip, sip, port = pod.ip, pod.ip, APP_PORTS[pod.app]
            else:
                cip, sip, port = "127.0.0.1", "127.0.0.1", APP_PORTS[pod.app]
            c = self.conn(kind, cip, sip, port, mss=MSS_LO, loopback=True)
            if kind == "local-h2c":
                return self.h2c_flow(c, f"127.0.0.1:{port}", rng.randrange(1, 8),
                                     lambda: size((20, 2000), (2000, 60_000), 0.2))
            reqs = [(f"GET {p} HTTP/1.1\r\nhost: {pod.app}.{pod.ns}.svc.cluster.local:80\r\n"
                     f"l5d-client-id: web.emojivoto.{IDENTITY_SUFFIX}\r\n\r\n").encode()
                    for p in ("/api/list", "/api/vote?choice=:joy:", "/books", "/cart/items")]
            return self.http_flow(c, reqs, rng.randrange(1, 8), self.json,
                                  lambda: size((200, 8000), (8000, 120_000), 0.1))
        if kind == "mid-tls":
            capp, sapp, port = rng.choice(MESH_EDGES)
            client, server = self.pick(capp), self.pick(sapp)
            c = self.conn(kind, client.ip, server.ip, port)
            return self.mid_flow(c, self.tls_small, rng.randrange(1, 20), lambda: self.tls_exchange(
                c, rng.randrange(100, 1200), size((200, 5000), (5000, 80000), 0.2)), "tls")
        if kind == "mid-http":
            client, server = self.pick("prometheus-legacy"), rng.choice(self.meshed)
            c = self.conn(kind, client.ip, server.ip, PORT_PROXY_ADMIN)
            reqs = [scrape_request(server)]
            return self.mid_flow(c, self.metrics, rng.randrange(1, 6), lambda: self.http_exchange(
                c, reqs, rng.randrange(20_000, 150_000)), "plaintext")
        if kind == "tcp-probe":  # kubelet tcpSocket probe: connect, close, no payload
            server = rng.choice(self.pods)
            c = self.conn(kind, NODE_IPS[server.node], server.ip, APP_PORTS.get(server.app, 8080))
            return self.handshake_only(c)
        if kind == "refused":
            client = rng.choice(self.meshed)
            server = self.other(self.pods, client)
            c = self.conn(kind, client.ip, server.ip, 9999)
            return self.refused(c)
        if kind == "syn-only":
            client = rng.choice(self.meshed)
            c = self.conn(kind, client.ip, DEAD_POD_IP, 8080)
            return self.syn_only(c)
        if kind == "dns":
            client = rng.choice(self.pods)
            server = self.pick("coredns")
            c = self.conn(kind, client.ip, server.ip, PORT_DNS, proto=IPPROTO_UDP)
            target = rng.choice(self.pods)
            return self.dns(c, f"{target.app}.{target.ns}.svc.cluster.local", target.ip)
        raise ValueError(kind)

    def handshake_only(self, c: Conn):
        yield from self.open(c)
        yield from self.close(c)

    @staticmethod
    def refused(c: Conn):
        yield c.syn(0, TCP_SYN)
        yield c.rst(1)

    @staticmethod
    def syn_only(c: Conn):
        yield c.syn(0, TCP_SYN)
        yield c.syn(0, TCP_SYN, retransmit=True)
        yield c.syn(0, TCP_SYN, retransmit=True)

    def dns(self, c: Conn, name: str, ip: str):
        """A and AAAA queries (RFC 1035 4.1); A answered with the pod IP, AAAA with no data."""
        qname = dns_name(name)
        for qtype in (1, 28):
            qid = self.rng.getrandbits(16)
            question = qname + struct.pack("!HH", qtype, 1)
            yield c.udp(0, struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question)
            if qtype == 1:
                answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + ipaddress.IPv4Address(ip).packed
                yield c.udp(1, struct.pack("!HHHHHH", qid, 0x8580, 1, 1, 0, 0) + question + answer)
            else:
                yield c.udp(1, struct.pack("!HHHHHH", qid, 0x8580, 1, 0, 0, 0) + question)

    # --- the main loop ----------------------------------------------------------------------

    def start_drain(self) -> bool:
        """The packet budget is nearly spent: stop opening flows, let the open ones finish
        their handshakes and close; DNS fills whatever budget is left."""
        for c in self.conns:
            c.drain = True
        return True

    def write(self, path: str, packets: int) -> dict:
        """Write ``packets`` packets to ``path`` and the truth rows to ``path.truth.csv``."""
        rng = self.rng
        rnd = rng.random
        kinds, cum = self.kinds, self.cum_weights
        total_w = cum[-1]
        # Inter-packet gaps: exponential, ~90 us mean (a million packets span ~1.5 minutes).
        gaps = [int(rng.expovariate(1 / 90)) for _ in range(4096)]
        t = 1_795_852_800 * 1_000_000  # 2026-11-28 00:00 UTC, in microseconds

        def spawn():
            return self.new_flow(kinds[bisect.bisect_right(cum, rnd() * total_w)])

        active = [spawn() for _ in range(self.ACTIVE_FLOWS)]
        drain_at = max(0, packets - self.ACTIVE_FLOWS * self.DRAIN_PER_FLOW)
        draining = drain_at == 0 and self.start_drain()
        emitted = 0
        nbytes = 24
        out: list = []
        rec = PCAP_RECORD.pack
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", PCAP_MAGIC_USEC, 2, 4, 0, 0, SNAPLEN, self.linktype))
            while emitted < packets:
                if not active:  # everything drained early: top up with DNS
                    active.append(self.new_flow("dns"))
                i = int(rnd() * len(active))
                item = next(active[i], None)
                if item is None:  # flow finished: replace it (or drop it while draining)
                    if draining:
                        active[i] = active[-1]
                        active.pop()
                    else:
                        active[i] = spawn()
                    continue
                caplen, link, hdr, payload = item
                t += gaps[emitted & 4095]
                sec, usec = divmod(t, 1_000_000)
                out += (rec(sec, usec, caplen, caplen), link, hdr, payload)
                emitted += 1
                nbytes += 16 + caplen
                if not emitted & 4095:
                    f.write(b"".join(out))
                    out.clear()
                    if not draining and emitted >= drain_at:
                        draining = self.start_drain()
            f.write(b"".join(out))
        # Flows still open when the budget ran out keep the truth they had earned so far.
        with open(path + ".truth.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(("client_ip", "client_port", "server_ip", "server_port", "verdict", "localhost", "kind"))
            for c in self.conns:
                w.writerow((c.client[0], c.client[1], c.server[0], c.server[1], c.truth,
                            int(c.localhost), c.kind))
        return {"packets": emitted, "bytes": nbytes, "tcp_flows": len(self.conns)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", required=True, help="pcap file to write (truth goes to PATH.truth.csv)")
    ap.add_argument("--linktype", choices=sorted(LINKTYPES), default="sll2",
                    help="ether (1), sll (113, tshark 4.0 -i any) or sll2 (276, default)")
    ap.add_argument("--packets", type=int, default=1_000_000, help="exact number of packets (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=1, help="random seed; same seed, same bytes (default 1)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    stats = Generator(args.seed, LINKTYPES[args.linktype]).write(args.output, args.packets)
    took = time.perf_counter() - start
    print(f"{args.output}: {stats['packets']:,} packets, {stats['bytes'] / 1e6:,.1f} MB, "
          f"{stats['tcp_flows']:,} TCP flows, {args.linktype}, seed {args.seed}; "
          f"{took:.1f} s ({stats['packets'] / took:,.0f} packets/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
