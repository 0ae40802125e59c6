"""tshark field lines -> per-stream facts -> flow rows, through the same verdict rules as the native engine.

Role: aggregate the packets tshark printed (``tool.FIELD_MAP``) per ``tcp.stream``: what TCP did, and
what Wireshark dissected (a ClientHello/ServerHello, TLS records, a named protocol, ``data``).  A
finished stream's facts (``analysis.verdict``'s ``ConnectionFacts`` and ``HandshakeFacts`` or
``PayloadFacts``) become its row in ``verdict.flow_row``, so the two engines can be compared flow by flow.

Rules:
  1. Streaming: a stream that closed and went quiet is finished and released, as the native flow table
     does (``flows.table``'s idle limits).
  2. Bad traffic is data, never an exception.
"""

from __future__ import annotations

import time
from collections import Counter

from ...analysis.addresses import LOOPBACK_IFACE_NAMES, address_localhost_reason, packed, protocol_name
from ...analysis.hints import SERVER_PORTS
from ...analysis.signatures import ENCRYPTED_NOT_TLS
from ...analysis.verdict import (
    CLIENT,
    SERVER,
    AlertFacts,
    ConnectionFacts,
    HandshakeFacts,
    PayloadFacts,
    RecordFacts,
    client_direction,
    flow_row,
)
from ...capture.frames import clamp_ts
from ...flows.table import CLOSED_IDLE_S, EVICT_EVERY, IDLE_S, TH_ACK, TH_SYN, note_flags
from ...tls.constants import HELLO_RETRY_REQUEST_RANDOM
from .tool import AGGREGATOR, FIELD_MAP

COLUMN = {name: i for i, name in enumerate(FIELD_MAP)}  # our name -> column of a tshark output line
ARPHRD_LOOPBACK = "772"  # linux/if_arp.h: captured on lo
TLS_LAYERS = frozenset({"tls", "ssl", "ssl2"})
# frame.protocols entries that name no application protocol: reassembly bookkeeping, raw data, errors.
NEUTRAL_LAYERS = frozenset({"data", "tcp.segments", "_ws.short", "_ws.malformed", "_ws.expert", "vssmonitoring",
                            "data-text-lines", "media"})
VALID_RECORD_TYPES = frozenset({20, 21, 22, 23, 24})  # RFC 8446 5.1, RFC 6520
SAMPLE_HEX = 1024  # hex digits of payload kept per direction (512 bytes)
HRR_RANDOM = HELLO_RETRY_REQUEST_RANDOM.hex()  # as tshark prints tls.handshake.random, colons dropped
VOICE = "Wireshark: "  # opens the reasons that rest on Wireshark's dissection


class _Stream:
    """What Wireshark showed for one ``tcp.stream``.  Index 0 = orig (first packet's sender), 1 = resp."""

    __slots__ = (
        "fid", "sid", "addrs", "ports", "first_ts", "last_ts", "packets", "bytes", "syn_dir", "synack_dir",
        "fin", "rst", "loopback", "truncated", "lost", "records", "appdata", "ccs", "hello", "hello_dir",
        "server_hello", "hrr", "client_cert", "cert_request", "alert", "apps", "first_kind", "data_sample",
        "tls_dirs", "prefix", "cut_hello", "payload_dirs", "record_bytes", "isn",
    )

    def __init__(self, fid: int, sid: str, src: str, dst: str, sport: int, dport: int, ts: float):
        self.fid, self.sid = fid, sid
        self.addrs = (src, dst)
        self.ports = (sport, dport)
        self.first_ts = self.last_ts = ts
        self.packets = [0, 0]
        self.bytes = [0, 0]
        self.syn_dir: int | None = None
        self.synack_dir: int | None = None
        self.isn: list[int | None] = [None, None]
        self.fin = [False, False]
        self.rst = [False, False]
        self.loopback = False
        self.truncated = 0
        self.lost = 0
        self.records = [0, 0]  # TLS records Wireshark dissected, per direction
        self.appdata = [0, 0]
        self.ccs = [False, False]
        self.hello: dict | None = None  # sni, alpn (ClientHello)
        self.hello_dir: int | None = None
        self.server_hello: dict | None = None  # version, cipher, alpn
        self.hrr = False
        self.client_cert: bool | None = None  # True = non-empty Certificate from the client
        self.cert_request = False
        self.alert: tuple[int, int, bool] | None = None  # (dir, description or -1 when encrypted, fatal)
        self.apps: list[dict[str, str]] = [{}, {}]  # cleartext protocol -> first detail, per direction
        self.first_kind: list[str | None] = [None, None]  # first payload packet: tls | app | data | tcp
        self.data_sample: list[str] = ["", ""]  # hex of the first undissected payload, per direction
        self.tls_dirs = [False, False]
        self.prefix = [0, 0]  # cleartext protocol bytes before the first TLS record, per direction
        self.cut_hello = False  # a hello header seen only in a snaplen-cut packet
        self.payload_dirs = [False, False]
        self.record_bytes = [0, 0]  # header + length of every record dissected, per direction

    @property
    def closed(self) -> bool:
        return self.rst[0] or self.rst[1] or (self.fin[0] and self.fin[1])


def _ints(value: str, base: int = 10) -> list[int]:
    out = []
    for v in value.split(AGGREGATOR):
        try:
            out.append(int(v, base))
        except ValueError:
            continue
    return out


def _first(value: str) -> str:
    return value.split(AGGREGATOR, 1)[0]


def _last(value: str) -> str:
    return value.rsplit(AGGREGATOR, 1)[-1]


def _layers_after_tcp(protocols: str) -> list[str]:
    parts = protocols.split(":")
    try:
        i = len(parts) - 1 - parts[::-1].index("tcp")
    except ValueError:
        return []
    return parts[i + 1:]


class Aggregator:
    """tshark field lines -> finished flow rows.  ``feed(line)`` per packet, ``finish()`` at the end.

    Rows come out in ``self.rows`` in finish order (unless ``keep_rows`` is False: live capture needs each
    row only once, and its final report re-analyses the files); ``on_row`` (if given) is called for each
    one, and ``on_verdict`` once per stream as soon as its verdict is settled (a hello or cleartext seen),
    for ``capture --follow``.  Closed-and-quiet and idle streams are finished every ``EVICT_EVERY``
    packets and, with ``evict_s``, every ``evict_s`` seconds of capture time (a quiet pod takes hours to
    send 65536 packets); finishing a stream releases everything kept for it.

    Restarts (``new_generation``, called by ``TsharkPipe`` between two tshark processes): tcp.stream ids
    start again at 0 in the new tshark, so open streams move to ``carried``, keyed by their two
    (address, port) ends, and the first new tcp.stream with the same ends continues the same flow (one
    row, counts summed).  A bare SYN on those ends is a new connection instead (the carried one is
    finished), unless the carried stream is nothing but that sender's SYN (a retransmission).  A verdict
    settled before the restart stays (a hello or a cleartext protocol is never forgotten).

    Limitation: the new tshark sees a carried connection mid-stream, without what the old one knew of it
    (the bytes of a record it was reassembling, the TLS version, the sequence numbers, the FTP control
    connection that named an ftp-data one).  A flow still undecided at the restart (e.g. a ClientHello
    split across it) is judged from what follows, as a capture starting there would be; and what comes
    from that knowledge -- ``tls_records``, ``app_data_records``, ``gaps``, through them the handshake
    outcome, and a reason quoting them -- can differ from one tshark pass for a connection crossing a
    restart.  Flows, verdicts, evidence, SNI, packet and byte counts did not differ on the bundled
    captures or the corpus with a restart every 30 packets (tests/test_live_tshark_memory.py).
    """

    def __init__(self, capture: str, decode_ports: frozenset[int] = frozenset(), next_fid: int = 0,
                 on_row=None, on_verdict=None, keep_rows: bool = True, evict_s: float | None = None,
                 snaplen: int = 0):
        self.capture = capture
        self.snaplen = snaplen  # the capture's smallest snaplen when known (0: tshark prints none)
        self.decode_ports = decode_ports
        self.server_ports = SERVER_PORTS | decode_ports
        self.next_fid = next_fid
        self.streams: dict[str, _Stream] = {}  # tcp.stream id (of the current tshark) -> open stream
        self.carried: dict[tuple, _Stream] = {}  # open streams of an earlier tshark, by _ends()
        self.generation = 0  # tshark processes before the current one
        self.rows: list[dict] = []
        self.keep_rows = keep_rows
        self.evict_s = evict_s
        self._evict_at = 0.0  # capture time of the next time-based eviction
        self.packets = 0
        self.clamped = 0  # packets whose timestamp was outside capture.frames.TS_MIN..TS_MAX
        self.skipped: Counter[str] = Counter()
        self.not_tcp: Counter[tuple[str, str, str]] = Counter()
        self.not_tcp_loopback: set[tuple[str, str, str]] = set()
        self.on_row = on_row
        self.on_verdict = on_verdict
        self.announced: set[int] = set()
        self._since_evict = 0
        self._now = 0.0

    # -- per packet --------------------------------------------------------------------------------
    def feed(self, line: str) -> None:
        f = line.rstrip("\n").split("\t")
        if len(f) < len(COLUMN):
            f += [""] * (len(COLUMN) - len(f))
        self.packets += 1
        try:
            ts = float(f[COLUMN["ts"]])
        except ValueError:
            ts = self._now
        if ts != clamp_ts(ts):  # as the native reader does (capture.frames.TS_MAX)
            ts = clamp_ts(ts)
            self.clamped += 1
        self._now = ts
        loop = f[COLUMN["hatype"]] == ARPHRD_LOOPBACK or f[COLUMN["iface"]] in LOOPBACK_IFACE_NAMES
        sid = f[COLUMN["stream"]]
        src, dst = self._addresses(f)
        if not sid:
            if src:
                proto = _last(f[COLUMN["ip_proto"]]) if f[COLUMN["ip_src"]] else _last(f[COLUMN["ip6_nxt"]])
                key = (src, dst, protocol_name(proto))
                self.not_tcp[key] += 1
                if loop:
                    self.not_tcp_loopback.add(key)
            else:
                parts = f[COLUMN["protocols"]].split(":")
                self.skipped[f"not IP ({parts[1] if len(parts) > 1 else parts[0] or 'unknown'})"] += 1
            return
        sid = _last(sid)
        sport, dport = int(_last(f[COLUMN["sport"]])), int(_last(f[COLUMN["dport"]]))
        flags = int(_last(f[COLUMN["flags"]]) or "0", 16)
        st = self.streams.get(sid)
        if st is None and self.carried:
            st = self._carry(sid, src, dst, sport, dport, flags)
        if st is None:  # a new tcp.stream (tshark itself starts a new one when a closed tuple is reused)
            st = self.streams[sid] = _Stream(self.next_fid, sid, src, dst, sport, dport, ts)
            self.next_fid += 1
        d = 0 if (src, sport) == (st.addrs[0], st.ports[0]) else 1
        st.last_ts = ts
        st.packets[d] += 1
        if loop:
            st.loopback = True
        note_flags(st, d, flags)
        if flags & TH_SYN and st.isn[d] is None and f[COLUMN["seq_raw"]]:
            st.isn[d] = int(_last(f[COLUMN["seq_raw"]]))  # joining captures tells reused tuples apart by it
        if f[COLUMN["lost"]]:
            st.lost += 1
        tcp_len = int(_last(f[COLUMN["tcp_len"]]) or "0")
        if tcp_len:
            self._payload(st, d, f, tcp_len)
        self._since_evict += 1
        if self._since_evict >= EVICT_EVERY:
            self._since_evict = 0
            self.evict(ts)
        elif self.evict_s is not None and ts >= self._evict_at:
            # Never ahead of the wall clock: a packet stamped in the future must not finish live flows.
            self._evict_at = ts + self.evict_s
            self.evict(min(ts, time.time()))

    @staticmethod
    def _addresses(f: list[str]) -> tuple[str, str]:
        """Innermost IP layer: the one named last in frame.protocols (tunnels, 6in4)."""
        protos = f[COLUMN["protocols"]]
        v4, v6 = f[COLUMN["ip_src"]], f[COLUMN["ip6_src"]]
        if v4 and (not v6 or protos.rfind(":ip:") > protos.rfind(":ipv6:")):
            return _last(v4), _last(f[COLUMN["ip_dst"]])
        if v6:
            return _last(v6), _last(f[COLUMN["ip6_dst"]])
        return "", ""

    def _payload(self, st: _Stream, d: int, f: list[str], tcp_len: int) -> None:
        st.bytes[d] += tcp_len
        st.payload_dirs[d] = True
        try:
            cut = int(f[COLUMN["cap_len"]]) < int(f[COLUMN["frame_len"]])
        except ValueError:
            cut = False
        if cut:
            st.truncated += 1
        layers = _layers_after_tcp(f[COLUMN["protocols"]])
        # The TLS dissector ran but found no record ("Continuation Data", junk on a TLS port): bytes
        # Wireshark could not read, like "data".
        is_tls = any(layer in TLS_LAYERS for layer in layers) and bool(
            f[COLUMN["rec_type"]] or f[COLUMN["opaque_type"]] or f[COLUMN["hs_type"]] or "ssl2" in layers)
        apps = [x for x in layers if x not in TLS_LAYERS and x not in NEUTRAL_LAYERS and not x.startswith("_ws")]
        kind = "tls" if is_tls and not apps else "app" if apps else "data" if "data" in layers else "tcp"
        if st.first_kind[d] is None and kind != "tcp":
            st.first_kind[d] = kind
        if apps:
            app = "http2" if "http2" in apps else apps[0]  # h2c: tshark stacks http:http2
            if app not in st.apps[d]:
                st.apps[d][app] = self._detail(app, f)
            if not st.tls_dirs[d]:
                st.prefix[d] += tcp_len
        elif kind in ("data", "tcp") and not st.data_sample[d]:
            st.data_sample[d] = _first(f[COLUMN["payload"]])[:SAMPLE_HEX]
        if is_tls:
            self._tls(st, d, f, cut)
        if self.on_verdict is not None and st.fid not in self.announced and (st.hello or st.server_hello or apps):
            self.announced.add(st.fid)
            self.on_verdict(self._row(st))

    @staticmethod
    def _detail(app: str, f: list[str]) -> str:
        if app == "http":
            if f[COLUMN["http_method"]]:
                return f"HTTP/1.x request {_first(f[COLUMN['http_method']])} {_first(f[COLUMN['http_uri']])}"
            if f[COLUMN["http_code"]]:
                return f"HTTP/1.x response {_first(f[COLUMN['http_code']])}"
        if app == "http2":
            return "HTTP/2 cleartext (h2c / gRPC without TLS)"
        if app == "ssh" and f[COLUMN["ssh_proto"]]:
            return _first(f[COLUMN["ssh_proto"]])
        return ""

    def _tls(self, st: _Stream, d: int, f: list[str], cut: bool) -> None:
        types = _ints(f[COLUMN["rec_type"]])
        opaque = _ints(f[COLUMN["opaque_type"]])
        versions = _ints(f[COLUMN["rec_version"]], 16)
        valid = [t for t in types if t in VALID_RECORD_TYPES]
        if versions and not any(0x0300 <= v <= 0x0304 for v in versions) and not f[COLUMN["protocols"]].endswith("ssl2"):
            valid = []
        n = len(valid) + len(opaque)
        if not n:
            return
        st.records[d] += n
        st.record_bytes[d] += sum(_ints(f[COLUMN["rec_len"]])) + 5 * n
        st.tls_dirs[d] = True
        st.appdata[d] += valid.count(23) + opaque.count(23)
        if 20 in valid:
            st.ccs[d] = True
        hs = _ints(f[COLUMN["hs_type"]])
        if 21 in valid and st.alert is None:
            desc = _ints(f[COLUMN["alert_desc"]])
            level = _ints(f[COLUMN["alert_level"]])
            if desc:
                st.alert = (d, desc[0], bool(level) and level[0] == 2)  # RFC 8446 6: level 2 is fatal
            else:
                st.alert = (d, -1, False)
        if not hs:
            return
        if cut and (1 in hs or 2 in hs):
            # Only the header of a hello survived the snaplen: record evidence, not a parsed handshake.
            st.cut_hello = True
            return
        if 1 in hs and st.hello is None:
            st.hello = {"sni": _first(f[COLUMN["sni"]]), "alpn": f[COLUMN["alpn"]].replace(AGGREGATOR, ",")}
            st.hello_dir = d
        if 2 in hs:
            randoms = f[COLUMN["hs_random"]].split(AGGREGATOR)
            if any(r.replace(":", "").lower() == HRR_RANDOM for r in randoms):
                st.hrr = True
            elif st.server_hello is None:
                sup = _ints(f[COLUMN["sup_version"]], 16)
                legacy = _ints(f[COLUMN["hs_version"]], 16)
                ciphers = _ints(f[COLUMN["cipher"]], 16)
                st.server_hello = {
                    "version": sup[0] if sup else legacy[0] if legacy else 0,
                    "cipher": ciphers[0] if ciphers else None,
                    "alpn": _first(f[COLUMN["alpn"]]),
                }
        if 11 in hs and st.hello_dir is not None and d == st.hello_dir:
            lens = _ints(f[COLUMN["certs_len"]])
            st.client_cert = bool(lens and lens[-1] > 0)
        if 13 in hs:
            st.cert_request = True

    # -- flow lifecycle ------------------------------------------------------------------------------
    def evict(self, now: float) -> None:
        """Finish streams closed and quiet for ``CLOSED_IDLE_S``, or quiet for ``IDLE_S`` (capture time)."""
        done = [s for streams in (self.streams, self.carried) for s in streams.values()
                if now - s.last_ts > IDLE_S or (s.closed and now - s.last_ts > CLOSED_IDLE_S)]
        for st in done:
            self._finish(st)

    def _finish(self, st: _Stream) -> None:
        if self.streams.get(st.sid) is st:
            del self.streams[st.sid]
        elif self.carried.get(_ends(st.addrs, st.ports)) is st:
            del self.carried[_ends(st.addrs, st.ports)]
        row = self._row(st)
        if self.keep_rows:
            self.rows.append(row)
        if self.on_row is not None:
            self.on_row(row)
        self.announced.discard(st.fid)  # released with the stream: bounded by open streams

    def finish(self) -> list[dict]:
        for st in sorted([*self.streams.values(), *self.carried.values()], key=lambda s: s.fid):
            self._finish(st)
        self.rows.sort(key=lambda r: r["flow_id"])
        return self.rows

    def new_generation(self) -> None:
        """A fresh tshark starts numbering tcp.stream from 0: carry the open streams over by their ends."""
        for st in list(self.streams.values()):  # oldest first: a reused tuple's newer stream wins
            key = _ends(st.addrs, st.ports)
            older = self.carried.get(key)
            if older is not None:
                del self.carried[key]
                self._finish(older)
            self.carried[key] = st
        self.streams = {}
        self.generation += 1

    def _carry(self, sid: str, src: str, dst: str, sport: int, dport: int, flags: int) -> _Stream | None:
        """The carried stream that a new tcp.stream continues, or None (a new connection)."""
        key = _ends((src, dst), (sport, dport))
        st = self.carried.get(key)
        if st is None:
            return None
        if flags & (TH_SYN | TH_ACK) == TH_SYN:
            d = 0 if (src, sport) == (st.addrs[0], st.ports[0]) else 1
            if not (st.syn_dir == d and st.synack_dir is None and not st.packets[1 - d] and not st.bytes[d]):
                self._finish(st)  # a new connection on the same ends (RFC 9293 3.4: a new ISN)
                return None
        del self.carried[key]
        st.sid = sid
        self.streams[sid] = st
        return st

    def not_tcp_rows(self) -> list[dict]:
        return [{"src_ip": src, "dst_ip": dst, "protocol": proto, "packets": count,
                 "localhost": bool(address_localhost_reason(packed(src), packed(dst), (src, dst, proto) in self.not_tcp_loopback)),
                 "capture": self.capture}
                for (src, dst, proto), count in sorted(self.not_tcp.items())]

    # -- the facts -----------------------------------------------------------------------------------
    def _row(self, st: _Stream) -> dict:
        conn = ConnectionFacts(
            capture=self.capture, flow_id=st.fid, addrs=st.addrs, raw_addrs=(packed(st.addrs[0]), packed(st.addrs[1])),
            ports=st.ports, first_ts=st.first_ts, last_ts=st.last_ts, packets=(st.packets[0], st.packets[1]),
            bytes=(st.bytes[0], st.bytes[1]), syn_dir=st.syn_dir, synack_dir=st.synack_dir, hello_dir=st.hello_dir,
            fin=(st.fin[0], st.fin[1]), rst=(st.rst[0], st.rst[1]), loopback=st.loopback, truncated=st.truncated,
            gaps=st.lost, snaplen=self.snaplen, isn=(st.isn[0], st.isn[1]))
        client = client_direction(conn, self.server_ports)
        client_d = client[0]
        if st.hello is not None or st.server_hello is not None:
            facts: HandshakeFacts | PayloadFacts = _handshake(st, client_d)
        else:
            facts = _payload(st, client_d, conn)
        return flow_row(conn, client, facts, self.decode_ports, VOICE)


def _handshake(st: _Stream, client_d: int) -> HandshakeFacts:
    server_d = 1 - client_d
    hello, sh = st.hello, st.server_hello
    cleartext = [app for d in (client_d, server_d) for app in st.apps[d] if app not in ENCRYPTED_NOT_TLS]
    alert = None
    if st.alert is not None:
        alert = AlertFacts(CLIENT if st.alert[0] == client_d else SERVER, st.alert[1], st.alert[2])
    return HandshakeFacts(
        client_hello=hello is not None, sni=hello["sni"] if hello else "",
        alpn=tuple(hello["alpn"].split(",")) if hello and hello["alpn"] else (),
        server_version=sh["version"] if sh else None, cipher_suite=sh["cipher"] if sh else None,
        alpn_selected=sh["alpn"] if sh else "", hrr=st.hrr, client_cert=st.client_cert, cert_request=st.cert_request,
        alert=alert, fatal_alert=alert if alert is not None and alert.fatal else None,
        ccs=(st.ccs[client_d], st.ccs[server_d]), app_data=(st.appdata[client_d], st.appdata[server_d]),
        tls_records=st.records[0] + st.records[1],
        prefix_protocol=cleartext[0] if cleartext else "",
        prefix_bytes=st.prefix[client_d] + st.prefix[server_d] if cleartext else 0,
        server_reply="not-tls" if st.apps[server_d] or st.first_kind[server_d] == "data" else "")


def _payload(st: _Stream, client_d: int, conn: ConnectionFacts) -> PayloadFacts:
    """No hello dissected: TLS records, a protocol Wireshark named, undissected data, or nothing."""
    server_d = 1 - client_d
    counts = {"tls_records": st.records[0] + st.records[1], "app_data_records": st.appdata[0] + st.appdata[1]}
    if not (st.records[0] or st.records[1] or st.apps[0] or st.apps[1] or st.data_sample[0] or st.data_sample[1]):
        return PayloadFacts(0, **counts)  # no bytes, or bytes on the wire none of which were captured
    captured = st.bytes[0] + st.bytes[1]
    dirs = [d for d in (client_d, server_d) if st.payload_dirs[d]]
    midstream = conn.syn_dir is None and conn.synack_dir is None

    def tls_direction(d: int) -> bool:
        if not st.tls_dirs[d] or st.apps[d]:
            return False
        # With the SYN seen, undissected bytes before the first record are a cleartext protocol.
        return midstream or st.first_kind[d] in ("tls", None)

    if dirs and all(tls_direction(d) for d in dirs):
        total = st.records[0] + st.records[1]
        exact = total == 1 and all(st.record_bytes[d] == st.bytes[d] for d in dirs)
        return PayloadFacts(captured, records=RecordFacts(total, total, exact, st.cut_hello), **counts)
    for d, side in ((client_d, CLIENT), (server_d, SERVER)):
        for app, detail in st.apps[d].items():
            return PayloadFacts(captured, protocol=app, protocol_detail=detail, protocol_side=side, **counts)
    d = client_d if st.data_sample[client_d] or not st.data_sample[server_d] else server_d
    return PayloadFacts(captured, sample=_unhex(st.data_sample[d]), sample_side=CLIENT if d == client_d else SERVER,
                        **counts)


def _ends(addrs: tuple[str, str], ports: tuple[int, int]) -> tuple:
    """A connection's two (address, port) ends, the same in either direction."""
    a, b = (addrs[0], ports[0]), (addrs[1], ports[1])
    return (a, b) if a <= b else (b, a)


def _unhex(hexdata: str) -> bytes:
    try:
        return bytes.fromhex(hexdata.replace(":", ""))
    except ValueError:
        return b""
