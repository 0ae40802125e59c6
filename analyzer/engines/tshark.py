"""The tshark engine: the flows table from Wireshark's own dissectors, as a cross-check of the native one.

Role: run ONE streaming ``tshark -n -r FILE -T fields`` pass with the fields in ``FIELD_MAP`` (ja4's
``keymap`` idea), aggregate the packets per ``tcp.stream`` and turn each stream into a row with exactly
the columns of ``report.schema.FLOW_COLUMNS``.  ``verdict``/``evidence``/``reason`` come from what
Wireshark dissected (a ClientHello/ServerHello, TLS records, a named cleartext protocol, ``data``), with
the same rules as ``classify.py`` so that the two engines can be compared flow by flow.

Rules:
  1. Name resolution is off (``-n``): a slow ja4 run was caused by leaving it on (ja4#145).
  2. The ``tls_tcp`` heuristic is on, so TLS on odd ports is found without ``--decode-as``; the user's
     ``--decode-as`` is passed on as ``-d``.  A port still never decides a verdict.
  3. Streaming: tshark's stdout is read line by line; a stream that closed and went quiet is finished
     and released, as the native flow table does.  No pyshark in this path: its per-packet parsing is
     ~100x too slow for bulk work (benchmarks/README.md) and its asyncio loop clashes with Jupyter's.
     pyshark, when installed, only helps to locate tshark and read its version.
  4. Standard library only (the sidecar .pyz may ship this module); tshark missing or older than
     ``MIN_VERSION`` raises ``BackendUnavailable``.  Bad traffic is data, never an exception.
  5. Long live streams (``TsharkPipe``): tshark's own memory grows with every frame it reads (pyshark#141,
     #607), so a fresh tshark takes over every ``RESTART_PACKETS`` packets / ``RESTART_BYTES`` bytes, and
     the ``Aggregator`` carries open streams across the restart (``new_generation``).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from .. import protocols
from ..capture.frames import clamp_ts, clamped_warning
from ..capture.reader import BT_EPB, BT_IDB, BT_OPB, BT_SHB, BT_SPB, PCAP_MAGIC, PCAPNG_BOM, PCAPNG_SHB
from ..classify import L5D_TRANSPORT_ALPN, SERVER_PORTS, apply_port_hint, parse_identity
from ..errors import AnalyzerError, BackendUnavailable
from ..report.schema import FLOW_NAMES
from ..tls.constants import alert_name, cipher_name, version_name

log = logging.getLogger(__name__)

MIN_VERSION = (3, 0, 0)  # tls.* field names (ssl.* before 3.0), tls.record.opaque_type
AGGREGATOR = "\x1f"  # ASCII unit separator between occurrences of one field: never in SNI/ALPN text
HEURISTIC_ARGS = ("--enable-heuristic", "tls_tcp")
# Try heuristics before port tables: TLS on 8080 (Linkerd transparent mode) would otherwise go to the
# HTTP dissector; the corpus shows no cleartext flow lost to it (tests/data/engine_disagreements.csv).
HEURISTIC_FIRST_ARGS = ("-o", "tcp.try_heuristic_first:TRUE")
# Reassemble out-of-order segments too (off by default in 4.0): a ServerHello that arrives after a
# later segment is otherwise never dissected (zeek's tls/hrr.pcap).
REASSEMBLY_ARGS = ("-o", "tcp.reassemble_out_of_order:TRUE")
INSTALL_HINT = "install it with `apt-get install tshark` (Debian/Ubuntu) or `dnf install wireshark-cli`"

# Our name -> tshark field.  The order is the order of the -e arguments and of the output columns.
FIELD_MAP: dict[str, str] = {
    "ts": "frame.time_epoch",
    "frame_len": "frame.len",
    "cap_len": "frame.cap_len",
    "iface": "frame.interface_name",
    "hatype": "sll.hatype",  # ARPHRD_* of Linux cooked captures (SLL and SLL2)
    "protocols": "frame.protocols",
    "ip_src": "ip.src",
    "ip_dst": "ip.dst",
    "ip_proto": "ip.proto",
    "ip6_src": "ipv6.src",
    "ip6_dst": "ipv6.dst",
    "ip6_nxt": "ipv6.nxt",
    "stream": "tcp.stream",
    "sport": "tcp.srcport",
    "dport": "tcp.dstport",
    "flags": "tcp.flags",
    "tcp_len": "tcp.len",
    "lost": "tcp.analysis.lost_segment",
    "rec_type": "tls.record.content_type",
    "opaque_type": "tls.record.opaque_type",
    "rec_version": "tls.record.version",
    "rec_len": "tls.record.length",
    "hs_type": "tls.handshake.type",
    "hs_random": "tls.handshake.random",
    "sni": "tls.handshake.extensions_server_name",
    "alpn": "tls.handshake.extensions_alpn_str",
    "sup_version": "tls.handshake.extensions.supported_version",
    "hs_version": "tls.handshake.version",
    "cipher": "tls.handshake.ciphersuite",
    "certs_len": "tls.handshake.certificates_length",
    "alert_level": "tls.alert_message.level",
    "alert_desc": "tls.alert_message.desc",
    "http_method": "http.request.method",
    "http_uri": "http.request.uri",
    "http_code": "http.response.code",
    "ssh_proto": "ssh.protocol",
    # The payload's first bytes, for the sample in a reason and the mid-stream opacity test.  Costs ~10%
    # of tshark's time (measured on the corpus); tshark prints nothing else for a payload it could not
    # hand to any dissector (a snaplen-cut segment, a one-sided stream).
    "payload": "tcp.payload",
}
F = {name: i for i, name in enumerate(FIELD_MAP)}  # our name -> column index

TH_FIN, TH_SYN, TH_RST, TH_ACK = 0x01, 0x02, 0x04, 0x10  # RFC 9293 3.1
ARPHRD_LOOPBACK = "772"  # linux/if_arp.h: captured on lo
LOOPBACK_IFACE_NAMES = frozenset({"lo", "lo0", "loopback", "Loopback", "\\Device\\NPF_Loopback"})
HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"  # RFC 8446 4.1.3
TLS_LAYERS = frozenset({"tls", "ssl", "ssl2"})
# frame.protocols entries that name no application protocol: reassembly bookkeeping, raw data, errors.
NEUTRAL_LAYERS = frozenset({"data", "tcp.segments", "_ws.short", "_ws.malformed", "_ws.expert", "vssmonitoring",
                            "data-text-lines", "media"})
# Encrypted, but not TLS: the flow is `unknown`, never `plaintext` (truth.py in ../shared/corpus agrees).
ENCRYPTED_NOT_TLS = frozenset({"ssh", "openvpn", "skype", "kerberos-gss-wrapped"})
VALID_RECORD_TYPES = frozenset({20, 21, 22, 23, 24})  # RFC 8446 5.1, RFC 6520
CLOSED_IDLE_S = 30.0  # as flows/table.py: a closed stream quiet this long is finished
IDLE_S = 600.0
EVICT_EVERY = 1 << 16  # packets between scans for finished streams
# A live tshark is replaced after this many packets or bytes (TsharkPipe).  In the lab (benchmarks/
# live_rss.py: ~550 packets/s, 50 new connections/s) tshark starts at ~145 MiB and grows ~1 KiB per
# frame, so 20k packets cap it at ~+20 MiB.  A restart costs ~0.3 s of CPU (loading the dissectors):
# every ~36 s there, every 2 s at 10k packets/s.  The byte bound is for bulk traffic (full-size frames).
RESTART_PACKETS = 20_000
RESTART_BYTES = 32 << 20
MIN_PAYLOAD_TO_JUDGE = 8  # as classify.py: fewer unrecognised bytes are no evidence either way
SAMPLE_HEX = 1024  # hex digits of payload kept per direction (512 bytes)
PROTO_NAMES = {"1": "icmp", "17": "udp", "58": "icmpv6", "132": "sctp"}


# -- locating tshark -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TShark:
    path: str
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def find_tshark(path: str | None = None) -> TShark:
    """Locate tshark and check its version.  ``BackendUnavailable`` says what to install.

    ``path`` or ``$TSHARK`` win; then ``PATH``; then, on Windows and macOS, pyshark's search (config file,
    install directories), when pyshark is installed.
    """
    candidate = path or os.environ.get("TSHARK") or shutil.which("tshark")
    if candidate is None and sys.platform in ("win32", "darwin"):
        # Wireshark's installers there put tshark off PATH; pyshark knows where.  On Linux PATH is the truth.
        candidate = _pyshark_path()
    if candidate is None or not os.access(candidate, os.X_OK):
        raise BackendUnavailable(f"tshark not found (PATH={os.environ.get('PATH', '')}): {INSTALL_HINT}")
    return _checked(candidate)


def _pyshark_path() -> str | None:
    try:
        from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path
    except ImportError:  # pyshark is optional here (the sidecar has no pip packages)
        return None
    try:
        found = get_process_path()
    except TSharkNotFoundException:
        return None
    # pyshark falls back to a fixed list of paths; only trust one that exists.
    return found if found and os.access(found, os.X_OK) else None


@functools.lru_cache(maxsize=8)
def _checked(path: str) -> TShark:
    try:
        proc = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailable(f"{path}: cannot run tshark: {exc}") from None
    m = re.search(r"TShark \(Wireshark\) (\d+)\.(\d+)\.(\d+)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise BackendUnavailable(f"{path}: not a working tshark ({(proc.stderr or proc.stdout).strip()[:200]})")
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if version < MIN_VERSION:
        raise BackendUnavailable(f"tshark {'.'.join(map(str, version))} at {path} is too old; the tshark "
                                 f"engine needs {'.'.join(map(str, MIN_VERSION))} or newer: {INSTALL_HINT}")
    return TShark(path, version)


def decode_as_args(specs: Iterable[str]) -> list[str]:
    """``--decode-as tcp.port==8080,tls`` -> ``-d tcp.port==8080,tls`` (validated, ``ssl`` -> ``tls``)."""
    from ..api import parse_decode_as  # validation is shared with the native engine

    out: list[str] = []
    for spec in specs:
        parse_decode_as([spec])
        out += ["-d", re.sub(r",ssl$", ",tls", spec.strip().replace(" ", ""))]
    return out


def command(tshark: TShark, source: str, decode_as: Iterable[str] = (), heuristics: bool = True,
            fields: Iterable[str] = FIELD_MAP.values()) -> list[str]:
    """The one tshark invocation: ``source`` is a path or ``-`` (standard input)."""
    cmd = [tshark.path, "-n", "-r", source, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
           "-E", f"aggregator={AGGREGATOR}", "-E", "quote=n", "-E", "header=n"]
    cmd += REASSEMBLY_ARGS
    if heuristics:
        cmd += [*HEURISTIC_FIRST_ARGS, *HEURISTIC_ARGS]
    cmd += decode_as_args(decode_as)
    for f in fields:
        cmd += ["-e", f]
    return cmd


# -- one TCP stream --------------------------------------------------------------------------------
class _Stream:
    """What Wireshark showed for one ``tcp.stream``.  Index 0 = orig (first packet's sender), 1 = resp."""

    __slots__ = (
        "fid", "sid", "addrs", "ports", "first_ts", "last_ts", "packets", "bytes", "syn_dir", "synack_dir",
        "fin", "rst", "loopback", "truncated", "lost", "records", "appdata", "ccs", "hello", "hello_dir",
        "server_hello", "hrr", "client_cert", "cert_request", "alert", "apps", "first_kind", "data_sample",
        "tls_dirs", "prefix", "cut_hello", "payload_dirs", "record_bytes",
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
        self.alert: tuple[int, str, bool, int] | None = None  # (dir, level/desc text, fatal, desc code)
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
    captures or the corpus with a restart every 30 packets (tests/live/test_live_tshark_memory.py).
    """

    def __init__(self, capture: str, decode_ports: frozenset[int] = frozenset(), next_fid: int = 0,
                 on_row=None, on_verdict=None, keep_rows: bool = True, evict_s: float | None = None):
        self.capture = capture
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
        if len(f) < len(F):
            f += [""] * (len(F) - len(f))
        self.packets += 1
        try:
            ts = float(f[F["ts"]])
        except ValueError:
            ts = self._now
        if ts != clamp_ts(ts):  # as the native reader does (capture.frames.TS_MAX)
            ts = clamp_ts(ts)
            self.clamped += 1
        self._now = ts
        loop = f[F["hatype"]] == ARPHRD_LOOPBACK or f[F["iface"]] in LOOPBACK_IFACE_NAMES
        sid = f[F["stream"]]
        src, dst = self._addresses(f)
        if not sid:
            if src:
                proto = _last(f[F["ip_proto"]]) if f[F["ip_src"]] else _last(f[F["ip6_nxt"]])
                key = (src, dst, PROTO_NAMES.get(proto, proto))
                self.not_tcp[key] += 1
                if loop:
                    self.not_tcp_loopback.add(key)
            else:
                parts = f[F["protocols"]].split(":")
                self.skipped[f"not IP ({parts[1] if len(parts) > 1 else parts[0] or 'unknown'})"] += 1
            return
        sid = _last(sid)
        sport, dport = int(_last(f[F["sport"]])), int(_last(f[F["dport"]]))
        flags = int(_last(f[F["flags"]]) or "0", 16)
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
        if flags & TH_SYN:
            if flags & TH_ACK:
                if st.synack_dir is None:
                    st.synack_dir = d
            elif st.syn_dir is None:
                st.syn_dir = d
        if flags & TH_FIN:
            st.fin[d] = True
        if flags & TH_RST:
            st.rst[d] = True
        if f[F["lost"]]:
            st.lost += 1
        tcp_len = int(_last(f[F["tcp_len"]]) or "0")
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
        protos = f[F["protocols"]]
        v4, v6 = f[F["ip_src"]], f[F["ip6_src"]]
        if v4 and (not v6 or protos.rfind(":ip:") > protos.rfind(":ipv6:")):
            return _last(v4), _last(f[F["ip_dst"]])
        if v6:
            return _last(v6), _last(f[F["ip6_dst"]])
        return "", ""

    def _payload(self, st: _Stream, d: int, f: list[str], tcp_len: int) -> None:
        st.bytes[d] += tcp_len
        st.payload_dirs[d] = True
        try:
            cut = int(f[F["cap_len"]]) < int(f[F["frame_len"]])
        except ValueError:
            cut = False
        if cut:
            st.truncated += 1
        layers = _layers_after_tcp(f[F["protocols"]])
        # The TLS dissector ran but found no record ("Continuation Data", junk on a TLS port): bytes
        # Wireshark could not read, like "data".
        is_tls = any(layer in TLS_LAYERS for layer in layers) and bool(
            f[F["rec_type"]] or f[F["opaque_type"]] or f[F["hs_type"]] or "ssl2" in layers)
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
            st.data_sample[d] = _first(f[F["payload"]])[:SAMPLE_HEX]
        if is_tls:
            self._tls(st, d, f, cut)
        if self.on_verdict is not None and st.fid not in self.announced and (st.hello or st.server_hello or apps):
            self.announced.add(st.fid)
            self.on_verdict(self._row(st))

    @staticmethod
    def _detail(app: str, f: list[str]) -> str:
        if app == "http":
            if f[F["http_method"]]:
                return f"HTTP/1.x request {_first(f[F['http_method']])} {_first(f[F['http_uri']])}"
            if f[F["http_code"]]:
                return f"HTTP/1.x response {_first(f[F['http_code']])}"
        if app == "http2":
            return "HTTP/2 cleartext (h2c / gRPC without TLS)"
        if app == "ssh" and f[F["ssh_proto"]]:
            return _first(f[F["ssh_proto"]])
        return ""

    def _tls(self, st: _Stream, d: int, f: list[str], cut: bool) -> None:
        types = _ints(f[F["rec_type"]])
        opaque = _ints(f[F["opaque_type"]])
        versions = _ints(f[F["rec_version"]], 16)
        valid = [t for t in types if t in VALID_RECORD_TYPES]
        if versions and not any(0x0300 <= v <= 0x0304 for v in versions) and not f[F["protocols"]].endswith("ssl2"):
            valid = []
        n = len(valid) + len(opaque)
        if not n:
            return
        st.records[d] += n
        st.record_bytes[d] += sum(_ints(f[F["rec_len"]])) + 5 * n
        st.tls_dirs[d] = True
        st.appdata[d] += valid.count(23) + opaque.count(23)
        if 20 in valid:
            st.ccs[d] = True
        hs = _ints(f[F["hs_type"]])
        if 21 in valid and st.alert is None:
            desc = _ints(f[F["alert_desc"]])
            level = _ints(f[F["alert_level"]])
            if desc:
                fatal = bool(level) and level[0] == 2
                st.alert = (d, f"{'fatal' if fatal else 'warning'} {alert_name(desc[0])} ({desc[0]})", fatal, desc[0])
            else:
                st.alert = (d, "encrypted alert", False, -1)
        if not hs:
            return
        if cut and (1 in hs or 2 in hs):
            # Only the header of a hello survived the snaplen: record evidence, not a parsed handshake.
            st.cut_hello = True
            return
        if 1 in hs and st.hello is None:
            st.hello = {"sni": _first(f[F["sni"]]), "alpn": f[F["alpn"]].replace(AGGREGATOR, ",")}
            st.hello_dir = d
        if 2 in hs:
            randoms = f[F["hs_random"]].split(AGGREGATOR)
            if any(r.replace(":", "").lower() == HRR_RANDOM for r in randoms):
                st.hrr = True
            elif st.server_hello is None:
                sup = _ints(f[F["sup_version"]], 16)
                legacy = _ints(f[F["hs_version"]], 16)
                ciphers = _ints(f[F["cipher"]], 16)
                st.server_hello = {
                    "version": sup[0] if sup else legacy[0] if legacy else 0,
                    "cipher": ciphers[0] if ciphers else None,
                    "alpn": _first(f[F["alpn"]]),
                }
        if 11 in hs and st.hello_dir is not None and d == st.hello_dir:
            lens = _ints(f[F["certs_len"]])
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
        return [{"src_ip": s, "dst_ip": d, "protocol": p, "packets": n,
                 "localhost": (s, d, p) in self.not_tcp_loopback or s == d or _loopback_ip(s) != "",
                 "capture": self.capture}
                for (s, d, p), n in sorted(self.not_tcp.items())]

    # -- the verdict ---------------------------------------------------------------------------------
    def _client_dir(self, st: _Stream) -> tuple[int, str]:
        if st.syn_dir is not None:
            return st.syn_dir, "syn"
        if st.synack_dir is not None:
            return 1 - st.synack_dir, "synack"
        if st.hello_dir is not None:
            return st.hello_dir, "hello"
        p0, p1 = st.ports
        s0, s1 = p0 in self.server_ports or p0 < 1024, p1 in self.server_ports or p1 < 1024
        if s0 != s1:
            return (1 if s0 else 0), "port"
        return 0, "first-packet"

    def _row(self, st: _Stream) -> dict:
        c, basis = self._client_dir(st)
        s = 1 - c
        why_local = _localhost_reason(st)
        row = dict.fromkeys(FLOW_NAMES, "")
        row.update(
            capture=self.capture, flow_id=st.fid, client_ip=st.addrs[c], client_port=st.ports[c],
            server_ip=st.addrs[s], server_port=st.ports[s], client_basis=basis,
            ip_version=6 if ":" in st.addrs[0] else 4, first_ts=st.first_ts, last_ts=st.last_ts,
            duration_s=round(st.last_ts - st.first_ts, 6), packets_c2s=st.packets[c], packets_s2c=st.packets[s],
            bytes_c2s=st.bytes[c], bytes_s2c=st.bytes[s],
            syn_seen=st.syn_dir is not None or st.synack_dir is not None, fin_seen=st.fin[0] or st.fin[1],
            rst_seen=st.rst[0] or st.rst[1], midstream=st.syn_dir is None and st.synack_dir is None,
            gaps=st.lost, truncated_packets=st.truncated, localhost=bool(why_local), localhost_reason=why_local,
            verdict="unknown", evidence="none", handshake="not-seen", client_hello=False, mtls="none", mesh=False,
            hint_conflict=False, plaintext_prefix_bytes=0, tls_records=st.records[0] + st.records[1],
            app_data_records=st.appdata[0] + st.appdata[1],
        )
        if st.hello is not None or st.server_hello is not None:
            self._tls_row(row, st, c, s)
        else:
            self._other_row(row, st, c, s)
        apply_port_hint(row, st.ports[s], self.decode_ports)
        return row

    def _tls_row(self, row: dict, st: _Stream, c: int, s: int) -> None:
        hello, sh = st.hello, st.server_hello
        cleartext = [a for d in (c, s) for a in st.apps[d] if a not in ENCRYPTED_NOT_TLS]
        prefix = st.prefix[c] + st.prefix[s] if cleartext else 0
        row.update(verdict="tls", evidence="handshake", app_protocol=f"{cleartext[0]}+starttls" if prefix else "tls",
                   plaintext_prefix_bytes=prefix, client_hello=hello is not None)
        parts = []
        if hello is not None:
            sni, alpn = hello["sni"], hello["alpn"]
            ident = parse_identity(sni)
            row.update(sni=sni, alpn=alpn, identity=ident[0] if ident else "",
                       mesh=bool(ident) or L5D_TRANSPORT_ALPN in alpn.split(","))
            parts.append(f"Wireshark: ClientHello SNI {sni}" if sni else "Wireshark: ClientHello without SNI")
            if alpn:
                parts.append(f"ALPN {alpn}")
        else:
            parts.append("Wireshark: ServerHello (ClientHello not captured)")
        if sh is not None:
            row.update(tls_version=version_name(sh["version"]), alpn_selected=sh["alpn"],
                       cipher_suite=cipher_name(sh["cipher"]) if sh["cipher"] is not None else "")
            parts.append(f"{version_name(sh['version'])} negotiated")
        elif st.hrr:
            parts.append("HelloRetryRequest, no final ServerHello captured")
        if prefix:
            parts.insert(0, f"{cleartext[0]} cleartext ({prefix} bytes) then")
        row["handshake"], row["handshake_detail"] = self._outcome(st, c, s)
        if st.alert is not None:
            row["alert"] = f"{st.alert[1]} from {'client' if st.alert[0] == c else 'server'}"
        row["mtls"] = self._mtls(st, row)
        if row["handshake"] != "completed":
            parts.append(f"handshake {row['handshake']}" + (f": {row['handshake_detail']}" if row["handshake_detail"] else ""))
        row["reason"] = ", ".join(parts)

    @staticmethod
    def _outcome(st: _Stream, c: int, s: int) -> tuple[str, str]:
        if st.alert is not None and st.alert[2]:
            side = "client" if st.alert[0] == c else "server"
            return "failed", f"{side} sent fatal alert {alert_name(st.alert[3])}"
        sh = st.server_hello
        if sh is None:
            if st.rst[s]:
                return "failed", "server reset the connection after ClientHello"
            if st.rst[c]:
                return "failed", "client reset the connection before ServerHello"
            if st.apps[s] or st.first_kind[s] == "data":
                return "failed", "server answered without TLS"
            if st.fin[s]:
                return "failed", "server closed the connection after ClientHello"
            return "incomplete", "no ServerHello captured"
        v = sh["version"]
        if v >= 0x0304 or v >> 8 == 0x7F:
            if st.appdata[c] and st.appdata[s]:
                return "completed", ""
        elif (st.ccs[c] and st.ccs[s]) or (st.appdata[c] and st.appdata[s]):
            return "completed", ""
        if st.rst[0] or st.rst[1]:
            return "failed", f"{'server' if st.rst[s] else 'client'} reset the connection during the handshake"
        return "incomplete", "capture ended before both sides finished"

    @staticmethod
    def _mtls(st: _Stream, row: dict) -> str:
        if st.client_cert is not None:
            return "proven" if st.client_cert else "none"
        sh = st.server_hello
        if sh is not None and sh["version"] < 0x0304 and sh["version"] >> 8 != 0x7F:
            return "unknown" if st.cert_request else "none"
        return "inferred" if row["mesh"] else "unknown"

    def _other_row(self, row: dict, st: _Stream, c: int, s: int) -> None:
        """No hello dissected: TLS records, a cleartext protocol Wireshark named, opaque data, or nothing."""
        if not (st.bytes[0] or st.bytes[1]):
            row["reason"] = _no_payload_reason(st)
            return
        if not (st.records[0] or st.records[1] or st.apps[0] or st.apps[1] or st.data_sample[0] or st.data_sample[1]):
            row["reason"] = _no_payload_reason(st)  # bytes on the wire, none of them captured
            return
        dirs = [d for d in (c, s) if st.payload_dirs[d]]
        midstream = row["midstream"]

        def tls_direction(d: int) -> bool:
            if not st.tls_dirs[d] or st.apps[d]:
                return False
            # With the SYN seen, undissected bytes before the first record are a cleartext protocol.
            return midstream or st.first_kind[d] in ("tls", None)

        total = st.records[0] + st.records[1]
        if dirs and all(tls_direction(d) for d in dirs):
            # As classify._record_verdict: two whole records, or one that is exactly all the bytes, is
            # tls; a hello header cut by the snaplen is tls; anything thinner is unknown, not plaintext.
            where = "mid-stream, " if midstream else ""
            exact = total == 1 and all(st.record_bytes[d] == st.bytes[d] for d in dirs)
            if total >= 2 or exact or st.cut_hello:
                cut = " (the snaplen cut the hello)" if st.cut_hello else ""
                row.update(verdict="tls", evidence="records", app_protocol="tls",
                           reason=f"Wireshark: {where}{total} TLS records{cut}, no handshake dissected")
            else:
                row.update(verdict="unknown", evidence="records",
                           reason=f"Wireshark: {where}{total} TLS record(s), too few to be sure")
            return
        for d, role in ((c, "client"), (s, "server")):
            for app, detail in st.apps[d].items():
                if app in ENCRYPTED_NOT_TLS:
                    row.update(verdict="unknown", evidence="payload", app_protocol=app,
                               reason=f"Wireshark: {app.upper()} {detail}".rstrip() + f": encrypted by {app.upper()}, not TLS")
                else:
                    row.update(verdict="plaintext", evidence="payload", app_protocol=app,
                               reason=detail or f"Wireshark dissected cleartext {app} from the {role}")
                return
        d = c if st.data_sample[c] or not st.data_sample[s] else s
        side = "client" if d == c else "server"
        raw = _unhex(st.data_sample[d])
        sample = protocols.escape(raw, 32)
        if midstream and protocols.looks_opaque(raw):
            # Wireshark has no verdict on undissected bytes; the byte statistic that separates opaque
            # from cleartext is the native engine's own, so both engines draw that line in one place.
            row.update(verdict="unknown", evidence="payload",
                       reason=f"Wireshark: mid-stream opaque {side} bytes, no TLS record and no protocol found: {sample}")
            return
        if st.bytes[0] + st.bytes[1] < MIN_PAYLOAD_TO_JUDGE:
            row.update(verdict="unknown", evidence="payload",
                       reason=f"only {st.bytes[0] + st.bytes[1]} payload bytes, too few to tell: {protocols.escape(raw, 8)}")
            return
        row.update(verdict="plaintext", evidence="payload", app_protocol="unknown",
                   reason=f"Wireshark: no TLS record (tls_tcp heuristic on) and no protocol; {side} sent {sample}")


def _ends(addrs: tuple[str, str], ports: tuple[int, int]) -> tuple:
    """A connection's two (address, port) ends, the same in either direction."""
    a, b = (addrs[0], ports[0]), (addrs[1], ports[1])
    return (a, b) if a <= b else (b, a)


def _unhex(hexdata: str) -> bytes:
    try:
        return bytes.fromhex(hexdata.replace(":", ""))
    except ValueError:
        return b""


def _no_payload_reason(st: _Stream) -> str:
    if st.bytes[0] or st.bytes[1]:
        if st.truncated:
            return f"no payload captured (snaplen cut {st.truncated} packets)"
        return "payload not reassembled (a gap before the first byte)"
    if st.syn_dir is not None and not (st.packets[0] and st.packets[1]):
        return "no payload: SYN without answer"
    return "no payload captured (TCP control packets only)"


def _loopback_ip(text: str) -> str:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if ip.version == 4 and ip.is_loopback:
        return "127.0.0.0/8"
    if ip.version == 6:
        if ip == ipaddress.IPv6Address("::1"):
            return "::1"
        if ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback:
            return "IPv4-mapped loopback"
    return ""


def _localhost_reason(st: _Stream) -> str:
    if st.loopback:
        return "loopback interface"
    for addr in st.addrs:
        why = _loopback_ip(addr)
        if why:
            return why
    if st.addrs[0] == st.addrs[1]:
        return "same IP both ends (proxy-app hop)"
    return ""


# -- running tshark ----------------------------------------------------------------------------------
def iter_lines(cmd: list[str], stdin: BinaryIO | None = None, name: str = "") -> Iterator[str]:
    """tshark's stdout, line by line.  A non-zero exit with no packets read becomes an AnalyzerError."""
    log.debug("running %s", " ".join(cmd))
    pipe_in = subprocess.PIPE if stdin is not None and not _is_real_file(stdin) else stdin
    proc = subprocess.Popen(cmd, stdin=pipe_in, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="backslashreplace", bufsize=1 << 16)
    pump = None
    if pipe_in is subprocess.PIPE:
        pump = threading.Thread(target=_pump, args=(stdin, proc.stdin), daemon=True)
        pump.start()
    err_lines: list[str] = []
    drain = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    lines = 0
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines += 1
            yield line
    finally:
        if proc.poll() is None:
            proc.terminate()
        rc = proc.wait()
        drain.join(timeout=5)
        if pump is not None:
            pump.join(timeout=5)
    errors = [e.strip() for e in err_lines if e.strip() and "Running as user" not in e and "This could be dangerous" not in e]
    if rc != 0 and rc != -15:
        message = "; ".join(errors[-3:]) or f"exit code {rc}"
        if lines == 0:
            raise AnalyzerError(f"{name}: tshark could not read the capture: {message}")
        log.warning("%s: tshark stopped early (%s); analysed what it read", name, message)
    elif errors:
        log.info("%s: tshark: %s", name, "; ".join(errors[-3:]))


def _is_real_file(stream) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _pump(src: BinaryIO, dst) -> None:
    try:
        while True:
            chunk = src.read(1 << 16)
            if not chunk:
                break
            dst.write(chunk)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            dst.close()
        except OSError:
            pass


# -- a long stream through restarted tsharks --------------------------------------------------------
PACKET_BLOCKS = frozenset({BT_OPB, BT_SPB, BT_EPB})  # the pcapng blocks that carry a packet
PCAP_HEADER, PCAP_RECORD = 24, 16  # classic pcap file header, record header
MAX_BLOCK = 16 << 20  # a longer block or record is corruption, not a packet (tshark's limit is 256 KiB)


class BlockSplitter:
    """A pcapng (or classic pcap) byte stream, in chunks of any size -> whole blocks.

    ``feed(data)`` returns ``[(block_bytes, is_packet), ...]`` for every block the data completed; the
    rest waits for the next chunk.  ``header`` is what a fresh reader must see first to read the blocks
    that follow: for pcapng the current section's SHB and every IDB since it (a new SHB starts a new
    section: each ring file begins with its own SHB and IDBs), for classic pcap the file header.  Classic
    pcap is one file: a second file header in the stream is not recognised (live capture writes pcapng).

    Rule: a stream that is neither (or a block length that cannot be right) sets ``broken``; from then on
    ``feed`` hands the bytes through as one non-packet block, and ``header`` is empty (no restart).
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.header = b""
        self.broken = False
        self._fmt = ""  # "pcapng" | "pcap" once the first bytes are known
        self._endian = "<"

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        if self.broken:
            return [(bytes(data), False)] if data else []
        buf = self.buf
        buf += data
        out: list[tuple[bytes, bool]] = []
        pos, n = 0, len(buf)
        while True:
            if not self._fmt:
                if n - pos < 4:
                    break
                if not self._start(buf, pos):
                    return self._give_up(out, pos)
            if self._fmt == "pcap":
                if not self.header:
                    if n - pos < PCAP_HEADER:
                        break
                    self.header = bytes(buf[pos:pos + PCAP_HEADER])
                    out.append((self.header, False))
                    pos += PCAP_HEADER
                    continue
                if n - pos < PCAP_RECORD:
                    break
                size = PCAP_RECORD + struct.unpack_from(self._endian + "I", buf, pos + 8)[0]
                btype = 0x6  # a record is a packet
            else:
                if n - pos < 12:
                    break
                btype = struct.unpack_from(self._endian + "I", buf, pos)[0]
                if btype == BT_SHB:
                    bom = struct.unpack_from("<I", buf, pos + 8)[0]
                    if bom not in (PCAPNG_BOM, 0x4D3C2B1A):
                        return self._give_up(out, pos)
                    self._endian = "<" if bom == PCAPNG_BOM else ">"
                size = struct.unpack_from(self._endian + "I", buf, pos + 4)[0]
                if size < 12 or size % 4:
                    return self._give_up(out, pos)
            if size > MAX_BLOCK:
                return self._give_up(out, pos)
            if n - pos < size:
                break
            block = bytes(buf[pos:pos + size])
            pos += size
            if self._fmt == "pcapng":
                if btype == BT_SHB:
                    self.header = block
                elif btype == BT_IDB:
                    self.header += block
            out.append((block, btype in PACKET_BLOCKS))
        del buf[:pos]
        return out

    def _start(self, buf: bytearray, pos: int) -> bool:
        magic = bytes(buf[pos:pos + 4])
        if magic == PCAPNG_SHB:
            self._fmt = "pcapng"
        elif magic in PCAP_MAGIC:
            self._fmt, self._endian = "pcap", PCAP_MAGIC[magic][0]
        return bool(self._fmt)

    def _give_up(self, out: list[tuple[bytes, bool]], pos: int) -> list[tuple[bytes, bool]]:
        log.warning("not a pcapng/pcap block stream at byte %d of a chunk; tshark gets it as is, without restarts", pos)
        self.broken, self.header = True, b""
        out.append((bytes(self.buf[pos:]), False))
        self.buf = bytearray()
        return out


class TsharkPipe:
    """A long capture byte stream through a chain of ``tshark -r -`` processes into one ``Aggregator``.

    tshark keeps state for every frame of the file it reads, so on a live capture its memory grows for as
    long as it runs (pyshark#141, #607).  Here, before the first packet after ``max_packets`` packets or
    ``max_bytes`` bytes (defaults ``RESTART_PACKETS``, ``RESTART_BYTES``), at a block boundary
    (``BlockSplitter``), the running tshark's stdin is closed -- it reads to the end and exits -- and a
    fresh tshark is started and fed the saved header blocks, then the packets that follow.  ``restarts``
    counts them.

    Rules:
      1. Lines reach the Aggregator in packet order: each tshark's reader thread first waits for the one
         before it to end, then calls ``Aggregator.new_generation()`` (streams carry over by their ends).
      2. Every Aggregator call is made under ``lock`` (the caller finishes the Aggregator under it too).
      3. A tshark that dies early loses packets until the next restart (logged), never the run.
    """

    def __init__(self, agg: Aggregator, cmd: list[str], lock: threading.Lock | None = None,
                 max_packets: int | None = None, max_bytes: int | None = None):
        self.agg, self.cmd = agg, cmd
        self.lock = lock or threading.Lock()
        self.max_packets = max_packets or RESTART_PACKETS
        self.max_bytes = max_bytes or RESTART_BYTES
        self.splitter = BlockSplitter()
        self.restarts = 0
        self.proc: subprocess.Popen | None = None
        self.reader: threading.Thread | None = None
        self._packets = self._bytes = 0  # fed to the current tshark
        self._start(b"")

    def feed(self, data: bytes) -> None:
        """Hand over the next bytes of the capture (any chunking); restarts tshark when it is due."""
        run: list[bytes] = []
        for block, is_packet in self.splitter.feed(data):
            if is_packet:
                if (self._packets >= self.max_packets or self._bytes >= self.max_bytes) and self.splitter.header:
                    self._write(b"".join(run))
                    run = []
                    self._restart()
                self._packets += 1
            self._bytes += len(block)
            run.append(block)
        if run:
            self._write(b"".join(run))

    def close(self, timeout: float = 120.0) -> None:
        """End of the stream: the last tshark reads what is left and exits; waits for its last line."""
        self._write(bytes(self.splitter.buf))  # a cut last block: tshark reports it as tshark does for a file
        self._close_stdin()
        assert self.reader is not None
        self.reader.join(timeout)
        if self.reader.is_alive():
            log.warning("tshark did not finish within %.0f s; stopped it", timeout)
            self.proc.kill()  # type: ignore[union-attr]
            self.reader.join(10)

    def _restart(self) -> None:
        log.info("tshark: restarting after %d packets, %d bytes (restart %d), to bound its memory",
                 self._packets, self._bytes, self.restarts + 1)
        self._close_stdin()
        self.restarts += 1
        self._start(self.splitter.header)

    def _start(self, header: bytes) -> None:
        log.debug("running %s", " ".join(self.cmd))
        proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        reader = threading.Thread(target=self._read, args=(proc, self.reader), daemon=True,
                                  name=f"tshark-{self.restarts}")
        self.proc, self.reader = proc, reader
        self._packets = self._bytes = 0
        self._dead_logged = False
        reader.start()
        if header:
            self._write(header)
            self._bytes += len(header)

    def _read(self, proc: subprocess.Popen, before: threading.Thread | None) -> None:
        if before is not None:
            before.join()
            with self.lock:
                self.agg.new_generation()
        done = False
        try:
            for raw in proc.stdout:  # type: ignore[union-attr]
                line = raw.decode("utf-8", "backslashreplace")
                with self.lock:
                    self.agg.feed(line)
            done = True
        finally:
            if not done:
                proc.kill()  # the loop above failed: do not leave tshark blocked on a full pipe
            proc.stdout.close()  # type: ignore[union-attr]
            proc.wait()

    def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.proc.stdin.write(data)  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError, ValueError):
            if not self._dead_logged:
                self._dead_logged = True
                log.warning("tshark exited early (restart %d); packets are lost until the next restart",
                            self.restarts)

    def _close_stdin(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass


def analyze_source(source, decode_as: Iterable[str] = (), next_fid: int = 0, tshark: TShark | None = None,
                   heuristics: bool = True, on_row=None, on_verdict=None) -> Aggregator:
    """Run the tshark pass over one capture (path, ``-``, or a binary stream) and aggregate it."""
    from ..api import parse_decode_as

    tshark = tshark or find_tshark()
    ports = parse_decode_as(decode_as)
    stdin: BinaryIO | None = None
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if name == "-":
            stdin = sys.stdin.buffer
            target, label = "-", "<stdin>"
        else:
            if not os.path.isfile(name):
                from ..errors import CaptureFormatError

                raise CaptureFormatError(f"{name}: no such capture file")
            target, label = name, os.path.basename(name)
    else:
        stdin, target = source, "-"
        label = os.path.basename(str(getattr(source, "name", "<stream>")))
    agg = Aggregator(label, ports, next_fid, on_row=on_row, on_verdict=on_verdict)
    cmd = command(tshark, target, decode_as, heuristics)
    for line in iter_lines(cmd, stdin, label):
        agg.feed(line)
    agg.finish()
    return agg


def analyze(sources, decode_as: Iterable[str] = (), include_localhost: bool = False, progress=None,
            heuristics: bool = True):
    """Same contract as ``analyzer.api.analyze`` (returns its ``Report``), from Wireshark's dissectors."""
    from ..api import Report

    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        sources = [sources]
    tshark = find_tshark()
    t0 = time.perf_counter()
    rows: list[dict] = []
    unsupported: Counter[str] = Counter()
    # The native engine's stats keys; the core renamed frames_skipped -> frames_unsupported, so both
    # names point at the same Counter until every reader uses the new one.
    stats: dict = {"packets": 0, "frames_unsupported": unsupported, "frames_skipped": unsupported,
                   "not_tcp": [], "warnings": [], "truncated": False, "engine": f"tshark {tshark.version_text}"}
    for src in sources:
        agg = analyze_source(src, decode_as, len(rows), tshark, heuristics)
        rows += agg.rows
        stats["packets"] += agg.packets
        unsupported.update(agg.skipped)
        stats["not_tcp"] += agg.not_tcp_rows()
        if agg.clamped:
            stats["warnings"].append(clamped_warning(agg.capture, agg.clamped))
        if progress is not None:
            progress(agg.capture, agg.packets, len(rows))
    rows.sort(key=lambda r: r["flow_id"])
    stats["flows"] = len(rows)
    stats["excluded_localhost"] = sum(1 for r in rows if r["localhost"])
    stats["not_tcp_packets"] = sum(r["packets"] for r in stats["not_tcp"])
    stats["elapsed_s"] = time.perf_counter() - t0
    return Report(rows, include_localhost, stats, [])
