"""Flow bytes -> one verdict: ``tls``, ``plaintext`` or ``unknown``, with its evidence and a reason.

Role: the analyzer layer (Zeek's ``SSL_Analyzer`` plus DPD).  ``FlowInspector`` receives each
direction's in-order bytes from the flow table and runs one ``TLSParser`` per direction over them;
``classify()`` turns what it saw into a row of the flows table (``report/schema.py``).

Rules:
  1. ``tls`` and ``plaintext`` rest on bytes seen on the wire.  A port never decides alone; it is a hint
     that shows up in ``port_hint`` and, when the payload disagrees, in ``hint_conflict``.
  2. A flow is ``tls`` only when a handshake message parses (``handshake``) or every direction that
     carried bytes is a consistent chain of TLS record headers (``records``).  One direction speaking
     a cleartext protocol is enough to refuse the ``records`` verdict.  When in doubt: ``unknown``.
  3. Bad traffic is data: ``TLSParseError`` is caught per direction and becomes evidence.
  4. Standard library only; no pandas here (rows are plain dicts).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from . import protocols
from .errors import TLSParseError
from .flows.table import Flow
from .tls import (
    NEED_DATA,
    Alert,
    ApplicationData,
    Certificate,
    CertificateRequest,
    ChangeCipherSpec,
    ClientHello,
    ServerHello,
    TLSParser,
)
from .tls.constants import alert_name, cipher_name, version_name
from .tls.detect import RecordRun, find_client_hello, find_record_run, find_server_hello, is_record_header

HEAD_KEEP = 4096  # bytes kept per direction for cleartext signatures and STARTTLS search
HEAD_MIN = 512  # bytes kept when the direction is TLS from its first byte, or plain HTTP
PARSE_LIMIT = 64 * 1024  # bytes fed to a direction's TLS parser at most
APPDATA_ENOUGH = 1  # encrypted records per direction after which the handshake is settled
MAX_EVENTS = 64  # handshake-level events kept per direction
STRONG_RUN = 3  # whole records one way that excuse a record fragment the other way (mid-stream)
MIN_PAYLOAD_TO_JUDGE = 8  # fewer unrecognised bytes than this are no evidence either way

# Linkerd identity in SNI: <sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>
IDENTITY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.serviceaccount\.identity\.([a-z0-9-]+)\.(.+)$")
L5D_TRANSPORT_ALPN = "transport.l5d.io/v1"

# Ports whose traffic is expected to be TLS, and what they are (linkerd-on-the-wire.md).
PORT_HINTS: dict[int, tuple[str, bool]] = {
    4143: ("linkerd-proxy inbound", True),
    4140: ("linkerd-proxy outbound", False),
    4190: ("linkerd-proxy tap", True),
    4191: ("linkerd-proxy admin", False),
    8086: ("linkerd destination", True),
    8090: ("linkerd policy", True),
    8443: ("linkerd webhook", True),
    9443: ("linkerd webhook", True),
    443: ("https", True),
}
SERVER_PORTS = frozenset(PORT_HINTS) | {8080, 8000, 8443, 5432, 3306, 6379, 9090, 9100}


@dataclass(frozen=True)
class Context:
    """Per-analysis settings the classifier needs."""

    decode_as: frozenset[int] = frozenset()  # ports the user said carry TLS
    snaplen: int = 0  # smallest snaplen among the capture's interfaces (0 = unknown)


class FlowInspector:
    """Per-flow payload analyzer.  ``feed(direction, data)`` returns True while it wants more bytes.

    Per direction it runs a ``TLSParser`` from the first byte.  When that fails -- cleartext, or a
    capture that joined mid-record -- it keeps the first ``HEAD_KEEP`` bytes, then looks there for a
    chain of record headers and, if one starts at offset ``o``, follows the stream from ``o`` with a
    second parser (``resync``), so records of any size are counted past the head.
    """

    __slots__ = ("parsers", "events", "errors", "heads", "fed", "appdata", "records", "resync", "plain")

    def __init__(self) -> None:
        # Created on a direction's first bytes (feed): many directions never carry any.  None after
        # that means the parser failed; ``classify`` only looks at it for a direction with bytes.
        self.parsers: list[TLSParser | None] = [None, None]
        self.events: tuple[list, list] = ([], [])
        self.errors: list[tuple[int, str] | None] = [None, None]  # (offset, message) of the parse failure
        self.heads = [bytearray(), bytearray()]
        self.fed = [0, 0]
        self.appdata = [0, 0]
        self.records = [0, 0]
        self.resync: list[tuple[int, TLSParser] | None | bool] = [None, None]  # (offset, parser); False: none
        self.plain = False  # a direction opened with a cleartext request that never turns into TLS

    def feed(self, d: int, data: bytes) -> bool:
        head = self.heads[d]
        # The head is for cleartext signatures, STARTTLS and mid-stream record search: once the
        # parser has framed a record from offset 0, the first HEAD_MIN bytes are plenty.
        keep = HEAD_MIN if self.records[d] else HEAD_KEEP
        rest = data
        if len(head) < keep:
            room = keep - len(head)
            head += data[:room]
            rest = data[room:]
        p = self.parsers[d]
        if p is None and not self.fed[d]:
            p = self.parsers[d] = TLSParser()
        self.fed[d] += len(data)
        if p is not None:
            p.receive_data(data)
            events = self.events[d]
            try:
                while (ev := p.next_event()) is not NEED_DATA:
                    if ev.__class__ is ApplicationData:
                        self.appdata[d] += 1
                    elif len(events) < MAX_EVENTS:
                        events.append(ev)
            except TLSParseError as exc:
                # The parser keeps the error it raised (its Rule 4), and the error's traceback holds the
                # parser's frame: a reference cycle that only the cyclic GC frees, and that through
                # f_back also pins the flow table's frame and its frame batch.  Dropping the traceback
                # lets the flow's objects go by reference counting (1M-packet benchmark: generation-2
                # collections 11 -> 9 and 0.79 -> 0.52 s, with no uncollected garbage left).
                exc.__traceback__ = None
                self.errors[d] = (p.consumed, str(exc))
                self.parsers[d] = p = None
            else:
                self.records[d] = p.records
            if p is not None:
                return self.appdata[d] < APPDATA_ENOUGH and self.fed[d] < PARSE_LIMIT
        if len(head) < HEAD_KEEP:
            # Not TLS from the first byte.  Only a protocol that can turn into TLS later (STARTTLS,
            # CONNECT, SOCKS, binary we do not know) is worth reading on; plain HTTP and h2c are not.
            # A request head or the h2c preface is whole at its blank line; a response is not judged
            # before HEAD_MIN bytes (a 200 to a CONNECT is followed by the tunnel's TLS).
            # Once one side is such a request, the other's first HEAD_MIN bytes are enough (an h2c
            # server's binary frames are never identified, and would be read to HEAD_KEEP).
            whole = len(head) >= HEAD_MIN
            if whole and self.plain:
                return False
            if whole or b"\r\n\r\n" in head:
                first = bytes(head[:HEAD_MIN])
                request = protocols.identify(first, "orig")
                found = request or (whole and protocols.identify(first, "resp"))
                if found and found[0] in protocols.NO_UPGRADE and not head.startswith(b"CONNECT "):
                    self.plain = self.plain or request is not None
                    return False
            return True
        return self._follow_records(d, bytes(head), rest)

    def _follow_records(self, d: int, head: bytes, rest: bytes) -> bool:
        """Past a full head: count records from the first chain of headers found in it."""
        sync = self.resync[d]
        if sync is None:
            run = find_record_run(head, min_records=1)
            if run is None:
                self.resync[d] = False
                return False
            sync = self.resync[d] = (run.offset, TLSParser())
            rest = head[run.offset:] + rest
        if sync is False:
            return False
        parser = sync[1]
        parser.receive_data(rest)
        try:
            while parser.next_event() is not NEED_DATA:
                pass
        except TLSParseError as exc:
            exc.__traceback__ = None  # no parser <-> traceback cycle (see feed)
            self.resync[d] = False
            return False
        return parser.records < STRONG_RUN and self.fed[d] < PARSE_LIMIT

    def client_hint(self) -> int | None:
        for d in (0, 1):
            if any(ev.__class__ is ClientHello for ev in self.events[d]):
                return d
        return None


def new_inspector(_sport: int, _dport: int) -> FlowInspector:
    return FlowInspector()


# -- addresses ----------------------------------------------------------------------------------

_ip_cache: dict[bytes, str] = {}


def ip_text(raw: bytes) -> str:
    s = _ip_cache.get(raw)
    if s is None:
        s = _ip_cache[raw] = str(ipaddress.ip_address(raw))
        if len(_ip_cache) > 100_000:
            _ip_cache.clear()
    return s


def localhost_reason(flow: Flow) -> str:
    """Why a flow is a localhost hop ("" when it is not): Linkerd's proxy<->app hop is one."""
    return address_localhost_reason(*flow.addrs, flow.loopback)


def address_localhost_reason(a: bytes, b: bytes, loopback_iface: bool = False) -> str:
    """The localhost rule for any pair of raw addresses (TCP flows and not-TCP traffic alike)."""
    if loopback_iface:
        return "loopback interface"
    for raw in (a, b):
        if len(raw) == 4 and raw[0] == 127:
            return "127.0.0.0/8"
        if raw == b"\x00" * 15 + b"\x01":
            return "::1"
        if len(raw) == 16 and raw[:12] == b"\x00" * 10 + b"\xff\xff" and raw[12] == 127:
            return "IPv4-mapped loopback"
    if a == b:
        return "same IP both ends (proxy-app hop)"
    return ""


# -- the verdict --------------------------------------------------------------------------------


@dataclass
class _Tls:
    """What the two TLS parsers (or a STARTTLS re-parse) found, in client/server terms."""

    hello: ClientHello | None = None
    server_hello: ServerHello | None = None
    hrr: bool = False
    client_cert: Certificate | None = None
    cert_request: bool = False
    alerts: list[tuple[str, Alert]] = field(default_factory=list)
    ccs: list[bool] = field(default_factory=lambda: [False, False])  # client, server
    appdata: list[int] | None = None  # client, server; None: take the inspector's counts
    records: int | None = None


def _collect(events_c: list, events_s: list) -> _Tls:
    t = _Tls()
    for side, events in (("client", events_c), ("server", events_s)):
        for ev in events:
            cls = ev.__class__
            if cls is ClientHello and t.hello is None:
                t.hello = ev
            elif cls is ServerHello:
                if ev.is_hello_retry_request:
                    t.hrr = True
                elif t.server_hello is None:
                    t.server_hello = ev
            elif cls is Certificate and side == "client":
                t.client_cert = ev
            elif cls is CertificateRequest:
                t.cert_request = True
            elif cls is Alert:
                t.alerts.append((side, ev))
            elif cls is ChangeCipherSpec:
                t.ccs[0 if side == "client" else 1] = True
    return t


def _reparse(data: bytes) -> tuple[list, int, int]:
    """Events, records and app-data records of a fresh parser over ``data`` (after a cleartext prefix)."""
    p = TLSParser()
    p.receive_data(data)
    out, appdata = [], 0
    try:
        while (ev := p.next_event()) is not NEED_DATA and len(out) < MAX_EVENTS:
            if ev.__class__ is ApplicationData:
                appdata += 1
            else:
                out.append(ev)
    except TLSParseError:
        pass
    return out, p.records, appdata


def classify(flow: Flow, ctx: Context, client_d: int, basis: str) -> dict:
    """One row of the flows table for a finished flow."""
    c, s = client_d, 1 - client_d
    ins: FlowInspector = flow.inspector
    heads = (bytes(ins.heads[c]), bytes(ins.heads[s]))
    server_port = flow.ports[s]
    row = _base_row(flow, ctx, c, s, basis)

    t = _collect(ins.events[c], ins.events[s])
    prefix = 0
    app = ""
    if t.hello is None and t.server_hello is None:
        # STARTTLS, HTTP CONNECT, SOCKS: cleartext first, then a ClientHello on the same connection.
        k = find_client_hello(heads[0])
        if k is not None and k > 0:
            ks = find_server_hello(heads[1])
            events_c, records_c, appdata_c = _reparse(heads[0][k:])
            events_s, records_s, appdata_s = _reparse(heads[1][ks:]) if ks is not None else ([], 0, 0)
            t = _collect(events_c, events_s)
            if t.hello is not None:
                t.appdata = [appdata_c, appdata_s]
                t.records = records_c + records_s
                prefix = k + (ks or 0)
                found = protocols.identify(heads[0], "orig") or protocols.identify(heads[1], "resp")
                app = (found[0] if found else "cleartext") + "+starttls"
    row["plaintext_prefix_bytes"] = prefix
    row["tls_records"] = ins.records[c] + ins.records[s] if t.records is None else t.records
    row["app_data_records"] = ins.appdata[c] + ins.appdata[s] if t.appdata is None else sum(t.appdata)

    if t.hello is not None or t.server_hello is not None:
        _tls_row(row, t, flow, c, s, heads, app or "tls", prefix)
    else:
        _non_handshake_row(row, flow, ctx, c, s, heads)
    apply_port_hint(row, server_port, ctx.decode_as)
    return row


def _base_row(flow: Flow, ctx: Context, c: int, s: int, basis: str) -> dict:
    streams = flow.streams
    return {
        "capture": flow.capture,
        "flow_id": flow.fid,
        "client_ip": ip_text(flow.addrs[c]),
        "client_port": flow.ports[c],
        "server_ip": ip_text(flow.addrs[s]),
        "server_port": flow.ports[s],
        "client_basis": basis,
        "ip_version": 4 if len(flow.addrs[0]) == 4 else 6,
        "first_ts": flow.first_ts,
        "last_ts": flow.last_ts,
        "duration_s": round(flow.last_ts - flow.first_ts, 6),
        "packets_c2s": flow.packets[c],
        "packets_s2c": flow.packets[s],
        "bytes_c2s": flow.bytes[c],
        "bytes_s2c": flow.bytes[s],
        "syn_seen": flow.syn_dir is not None or flow.synack_dir is not None,
        "fin_seen": flow.fin[0] or flow.fin[1],
        "rst_seen": flow.rst[0] or flow.rst[1],
        "midstream": flow.syn_dir is None and flow.synack_dir is None,
        "gaps": streams[0].gaps + streams[1].gaps + flow.jumps,
        "truncated_packets": flow.truncated,
        "localhost": bool(localhost_reason(flow)),
        "localhost_reason": localhost_reason(flow),
        "verdict": "unknown",
        "evidence": "none",
        "reason": "",
        "app_protocol": "",
        "sni": "",
        "identity": "",
        "alpn": "",
        "alpn_selected": "",
        "tls_version": "",
        "cipher_suite": "",
        "handshake": "not-seen",
        "client_hello": False,
        "handshake_detail": "",
        "mtls": "none",
        "mesh": False,
        "port_hint": "",
        "hint_conflict": False,
        "plaintext_prefix_bytes": 0,
        "tls_records": 0,
        "app_data_records": 0,
        "alert": "",
        "isn_c2s": flow.isn[c],
        "isn_s2c": flow.isn[s],
        "captures": flow.capture,
        "vantages": 1,
        "vantage_conflict": False,
        "service_ip": "",
        "service_port": None,
    }


def port_hint(port: int, decode_as: frozenset[int]) -> tuple[str, bool]:
    """What a server port suggests, and whether it expects TLS (``--decode-as`` first, then Linkerd's ports)."""
    if port in decode_as:
        return f"decode-as tls (port {port})", True
    return PORT_HINTS.get(port, ("", False))


def apply_port_hint(row: dict, port: int, decode_as: frozenset[int]) -> None:
    """Rule 1: the hint goes into ``port_hint``; a payload that contradicts a TLS port is flagged, and a
    flow without evidence on such a port says so -- the port itself never changes the verdict."""
    name, expects_tls = port_hint(port, decode_as)
    row["port_hint"] = name
    if not expects_tls:
        return
    if row["verdict"] == "plaintext":
        row["hint_conflict"] = True
        row["reason"] += f"; port {port} ({name}) expects TLS, the payload says otherwise"
    elif row["verdict"] == "unknown" and row["evidence"] == "none":
        row["reason"] += f"; port {port} ({name}) suggests TLS, but a port proves nothing"


def parse_identity(sni: str) -> tuple[str, str] | None:
    """``sa.ns`` and the control-plane namespace from a Linkerd identity SNI, else None."""
    m = IDENTITY_RE.match(sni)
    return (f"{m.group(1)}.{m.group(3)}", m.group(5)) if m else None


def _tls_row(row: dict, t: _Tls, flow: Flow, c: int, s: int, heads: tuple[bytes, bytes], app: str, prefix: int) -> None:
    hello, sh = t.hello, t.server_hello
    row.update(verdict="tls", evidence="handshake", app_protocol=app, client_hello=hello is not None)
    parts = []
    if hello is not None:
        row["sni"] = hello.sni or ""
        row["alpn"] = ",".join(hello.alpn)
        ident = parse_identity(hello.sni or "")
        if ident:
            row["identity"] = ident[0]
        row["mesh"] = bool(ident) or L5D_TRANSPORT_ALPN in hello.alpn
        parts.append(f"ClientHello SNI {hello.sni}" if hello.sni else "ClientHello without SNI")
        if hello.alpn:
            parts.append(f"ALPN {','.join(hello.alpn)}")
    else:
        parts.append("ServerHello (ClientHello not captured)")
    if sh is not None:
        version = sh.version
        row["tls_version"] = version_name(version)
        row["cipher_suite"] = cipher_name(sh.cipher_suite)
        row["alpn_selected"] = sh.alpn or ""
        parts.append(f"{version_name(version)} negotiated")
    elif t.hrr:
        parts.append("HelloRetryRequest, no final ServerHello captured")
    if prefix:
        parts[0] = f"{app.split('+')[0]} cleartext ({prefix} bytes) then {parts[0]}"
    row["handshake"], row["handshake_detail"] = _outcome(t, flow, c, s, heads)
    if t.alerts:
        side, al = t.alerts[0]
        row["alert"] = f"{'fatal' if al.fatal else 'warning'} {alert_name(al.description)} ({al.description}) from {side}" if not al.encrypted else f"encrypted alert from {side}"
    row["mtls"] = _mtls(t, row)
    if row["handshake"] != "completed":
        parts.append(f"handshake {row['handshake']}" + (f": {row['handshake_detail']}" if row["handshake_detail"] else ""))
    row["reason"] = ", ".join(parts)


def _outcome(t: _Tls, flow: Flow, c: int, s: int, heads: tuple[bytes, bytes]) -> tuple[str, str]:
    """completed | failed | incomplete, and which side ended it."""
    for side, al in t.alerts:
        if not al.encrypted and al.fatal:
            return "failed", f"{side} sent fatal alert {alert_name(al.description)}"
    ins: FlowInspector = flow.inspector
    appdata = t.appdata or [ins.appdata[c], ins.appdata[s]]
    sh = t.server_hello
    if sh is None:
        if flow.rst[s]:
            return "failed", "server reset the connection after ClientHello"
        if flow.rst[c]:
            return "failed", "client reset the connection before ServerHello"
        err = ins.errors[s]
        if heads[1] and err is not None and err[0] == 0 and not ins.events[s]:
            return "failed", f"server answered without TLS: {protocols.escape(heads[1], 24)}"
        if err is not None:
            return "incomplete", f"server's reply did not parse as TLS: {err[1]}"
        if flow.fin[s]:
            return "failed", "server closed the connection after ClientHello"
        return "incomplete", "no ServerHello captured"
    if sh.version >= 0x0304 or sh.version >> 8 == 0x7F:
        # TLS 1.3: everything after ServerHello is type-23; one such record each way means both
        # sides got past the hello (the client's Finished is encrypted too).
        if appdata[0] and appdata[1]:
            return "completed", ""
    elif (t.ccs[0] and t.ccs[1]) or (appdata[0] and appdata[1]):
        return "completed", ""
    if flow.rst[0] or flow.rst[1]:
        return "failed", f"{'server' if flow.rst[s] else 'client'} reset the connection during the handshake"
    return "incomplete", "capture ended before both sides finished"


def _mtls(t: _Tls, row: dict) -> str:
    """proven (a TLS 1.2 client Certificate on the wire) | inferred (TLS 1.3 mesh identity) | none | unknown."""
    if t.client_cert is not None:
        return "none" if t.client_cert.is_empty else "proven"
    sh = t.server_hello
    if sh is not None and sh.version < 0x0304 and sh.version >> 8 != 0x7F:
        return "unknown" if t.cert_request else "none"
    return "inferred" if row["mesh"] else "unknown"


def _record_verdict(flow: Flow, ctx: Context, row: dict, dirs: tuple[int, int], heads: tuple[bytes, bytes]) -> dict | None:
    """TLS from record framing alone (no hello parsed), or None when the framing does not settle it.

    Every direction that carried bytes must be a chain of valid record headers through the end of
    its captured bytes, starting at offset 0 (or anywhere when the capture joined mid-stream).  Then:
    two or more whole records, or one whole record that is exactly all the bytes, is ``tls``; a chain
    that starts with a hello record but was cut by the snaplen is ``tls`` too; anything thinner is
    ``unknown`` -- never ``plaintext``, since those bytes are TLS framing.
    """
    ins: FlowInspector = flow.inspector
    runs = []
    for d, head in zip(dirs, heads):
        if not head:
            continue
        p = ins.parsers[d]
        sync = ins.resync[d]
        if p is not None and (ins.records[d] or (p.partial and is_record_header(head))):
            # The incremental parser framed everything from offset 0 (its records may run past the head).
            run = RecordRun(0, ins.records[d] + p.partial, (), (), ins.records[d], not p.partial)
        elif sync:
            offset, sp = sync
            run = RecordRun(offset, sp.records + sp.partial, (), (), sp.records, not sp.partial)
        else:
            run = find_record_run(head, min_records=1)
        if run is None or not (run.offset == 0 or row["midstream"]):
            if not (row["midstream"] and _record_fragment(head)):
                return None
            run = RecordRun(len(head), 0, (), (), 0, False)  # the tail of a record begun before the capture
        runs.append((d, head, run))
    complete = sum(r.complete for _, _, r in runs)
    if any(r.offset == len(h) for _, h, r in runs) and max(r.complete for _, _, r in runs) < STRONG_RUN:
        return None  # a fragment is only excused beside a long, unmistakable run the other way
    where = "mid-stream, " if row["midstream"] else ""
    if complete >= 2 or (complete == 1 and all(r.exact and r.offset == 0 for _, _, r in runs)):
        return {"verdict": "tls", "evidence": "records", "app_protocol": "tls",
                "reason": f"{where}{complete} whole TLS records with consistent headers, no handshake captured"}
    cut = any(flow.streams[d].truncated for d, _, _ in runs)
    hello = any(r.offset == 0 and len(h) > 5 and h[0] == 22 and h[5] in (1, 2) for _, h, r in runs)
    if cut and hello and all(r.offset == 0 for _, _, r in runs):
        snap = f"snaplen {ctx.snaplen}" if ctx.snaplen else "the snaplen"
        return {"verdict": "tls", "evidence": "records", "app_protocol": "tls",
                "reason": f"TLS hello record headers open the stream; {snap} cut the handshake itself"}
    n = sum(r.count for _, _, r in runs)
    return {"verdict": "unknown", "evidence": "records", "app_protocol": "",
            "reason": f"{where}{n} TLS record header(s) but too few whole records captured to be sure"}


def _record_fragment(head: bytes) -> bool:
    """Bytes that could be the end of a TLS record whose header came before the capture started:
    shorter than one record, not a known cleartext protocol, and not text."""
    if len(head) > 16384 + 256 or protocols.identify(head, "orig") or protocols.identify(head, "resp"):
        return False
    printable = sum(1 for b in head[:256] if 0x20 <= b < 0x7F or b in (9, 10, 13))
    return printable < 0.75 * min(len(head), 256)


def _non_handshake_row(row: dict, flow: Flow, ctx: Context, c: int, s: int, heads: tuple[bytes, bytes]) -> None:
    """No hello parsed: TLS records mid-stream, a cleartext protocol, opaque bytes, or nothing at all."""
    if not heads[0] and not heads[1]:
        row["reason"] = _no_payload_reason(flow, ctx)
        return
    verdict = _record_verdict(flow, ctx, row, (c, s), heads)
    if verdict is not None:
        row.update(verdict)
        return
    for role, head in (("orig", heads[0]), ("resp", heads[1])):
        found = protocols.identify(head, role) if head else None
        if found:
            name, detail = found
            if name == "ssh":
                row.update(verdict="unknown", evidence="payload", app_protocol="ssh",
                           reason=f"{detail}: encrypted by SSH, not TLS")
            else:
                row.update(verdict="plaintext", evidence="payload", app_protocol=name, reason=detail)
            return
    sample_d, sample = (c, heads[0]) if heads[0] else (s, heads[1])
    side = "client" if sample_d == c else "server"
    if row["midstream"] and protocols.looks_opaque(sample):
        row.update(verdict="unknown", evidence="payload",
                   reason=f"mid-stream opaque bytes from {side}, no TLS record boundary found: {protocols.escape(sample, 24)}")
        return
    if len(heads[0]) + len(heads[1]) < MIN_PAYLOAD_TO_JUDGE:
        row.update(verdict="unknown", evidence="payload",
                   reason=f"only {len(heads[0]) + len(heads[1])} payload bytes, too few to tell (keep-alive?): {protocols.escape(sample, 8)}")
        return
    what = "opaque bytes, encrypted or compressed by the application" if protocols.looks_opaque(sample) else "unrecognised cleartext"
    row.update(verdict="plaintext", evidence="payload", app_protocol="unknown",
               reason=f"not TLS framing ({what}); {side} sent {protocols.escape(sample, 24)}")


def _no_payload_reason(flow: Flow, ctx: Context) -> str:
    if flow.bytes[0] or flow.bytes[1]:
        if flow.truncated:
            snap = f"snaplen {ctx.snaplen}" if ctx.snaplen else "snaplen"
            return f"no payload captured ({snap} cut {flow.truncated} packets)"
        return "payload not reassembled (a gap before the first byte)"
    if flow.syn_dir is not None and not (flow.packets[0] and flow.packets[1]):
        return "no payload: SYN without answer"
    return "no payload captured (TCP control packets only)"
