"""Facts -> one row of the flows table: the verdict rules, once, for every engine.

Role: an engine (the native inspector, Wireshark through the tshark engine) fills the small fact types
below -- what the connection did (``ConnectionFacts``), and either what the TLS handshake showed
(``HandshakeFacts``) or what the payload looked like without one (``PayloadFacts``) -- and ``flow_row``
turns them into the row, starting from the schema's empty row.

Rules:
  1. ``tls`` and ``plaintext`` rest on bytes seen on the wire.  A port never decides alone; it is a hint
     (``hints.apply_port_hint``).
  2. A flow is ``tls`` only when a handshake message parsed, or when every direction that carried bytes
     is TLS record framing with enough whole records.  When in doubt: ``unknown``.
  3. Encrypted protocols that are not TLS (``signatures.ENCRYPTED_NOT_TLS``) are ``unknown``: never
     ``plaintext`` (they are encrypted), never ``tls`` (they are not).
  4. Standard library only; rows are plain dicts keyed by ``report.schema.FLOW_NAMES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..report.schema import empty_flow_row
from ..tls.constants import alert_name, cipher_name, version_name
from .addresses import address_localhost_reason
from .hints import apply_port_hint, is_mesh, parse_identity
from .signatures import ENCRYPTED_NOT_TLS, escape, looks_opaque

# The fact types are slots dataclasses, read-only by convention: a few are built per flow, and a frozen
# dataclass would pay one object.__setattr__ call per field for each of them (ten times the plain init).
CLIENT, SERVER = 0, 1  # indexes of the per-side tuples in the handshake and payload facts
SIDES = ("client", "server")
MIN_PAYLOAD_TO_JUDGE = 8  # fewer unrecognised bytes than this are no evidence either way
TLS13 = 0x0304  # RFC 8446 4.2.1
DRAFT_PREFIX = 0x7F  # 0x7fNN: a TLS 1.3 draft version (RFC 8446 drafts)


@dataclass(slots=True)
class ConnectionFacts:
    """What TCP showed of one connection.  Pairs are per direction: 0 = orig (first packet's sender)."""

    capture: str
    flow_id: int
    addrs: tuple[str, str]
    raw_addrs: tuple[bytes, bytes]  # packed, for the localhost rule and the IP version
    ports: tuple[int, int]
    first_ts: float
    last_ts: float
    packets: tuple[int, int]
    bytes: tuple[int, int]  # TCP payload bytes on the wire
    syn_dir: int | None  # sent a SYN without ACK
    synack_dir: int | None
    hello_dir: int | None  # sent a ClientHello
    fin: tuple[bool, bool]
    rst: tuple[bool, bool]
    loopback: bool  # a frame crossed a loopback interface
    truncated: int  # packets whose payload the snaplen cut
    gaps: int
    snaplen: int = 0  # the capture's smallest snaplen (0 = not known)
    isn: tuple[int | None, int | None] = (None, None)  # initial sequence numbers of the SYNs seen


@dataclass(slots=True)
class AlertFacts:
    side: int  # CLIENT or SERVER
    description: int  # RFC 8446 6; -1 when the alert was encrypted
    fatal: bool

    @property
    def encrypted(self) -> bool:
        return self.description < 0


@dataclass(slots=True)
class HandshakeFacts:
    """What the TLS handshake showed.  Pairs are per TLS side: ``CLIENT``, ``SERVER``."""

    client_hello: bool
    sni: str = ""
    alpn: tuple[str, ...] = ()
    server_version: int | None = None  # negotiated version; None: no final ServerHello
    cipher_suite: int | None = None
    alpn_selected: str = ""
    hrr: bool = False  # a HelloRetryRequest was seen
    client_cert: bool | None = None  # a client Certificate: True non-empty, False empty, None not seen
    cert_request: bool = False
    alert: AlertFacts | None = None  # the first alert
    fatal_alert: AlertFacts | None = None  # the first cleartext fatal alert
    ccs: tuple[bool, bool] = (False, False)
    app_data: tuple[int, int] = (0, 0)  # encrypted records after the hellos
    tls_records: int = 0
    prefix_protocol: str = ""  # a cleartext protocol before the ClientHello (STARTTLS, CONNECT)
    prefix_bytes: int = 0
    server_reply: str = ""  # "" | "not-tls" (the server answered without TLS) | "unparsed"
    server_reply_detail: str = ""


@dataclass(slots=True)
class RecordFacts:
    """Every direction that carried bytes is a chain of TLS record headers (no hello parsed)."""

    whole: int  # whole records
    headers: int  # record headers, whole or cut
    exact: bool  # one record that is exactly all the bytes
    cut_hello: bool  # a hello record header opens the stream and the snaplen cut the rest
    chained: int = 0  # of ``whole``: records framed by sequence number across segments the snaplen cut


@dataclass(slots=True)
class PayloadFacts:
    """What the payload showed without a TLS handshake."""

    captured: int  # payload bytes captured, both directions
    records: RecordFacts | None = None
    protocol: str = ""  # a named protocol (signature or dissector); "" none
    protocol_detail: str = ""
    protocol_side: int = CLIENT
    sample: bytes = b""  # the first unrecognised bytes
    sample_side: int = CLIENT
    tls_records: int = 0
    app_data_records: int = 0


def client_direction(conn: ConnectionFacts, server_ports: frozenset[int]) -> tuple[int, str]:
    """Which direction is the TLS client, and on what basis: SYN, SYN-ACK, ClientHello, ports, in that order."""
    if conn.syn_dir is not None:
        return conn.syn_dir, "syn"
    if conn.synack_dir is not None:
        return 1 - conn.synack_dir, "synack"
    if conn.hello_dir is not None:
        return conn.hello_dir, "hello"
    p0, p1 = conn.ports
    s0, s1 = p0 in server_ports or p0 < 1024, p1 in server_ports or p1 < 1024
    if s0 != s1:
        return (1 if s0 else 0), "port"
    return 0, "first-packet"


def flow_row(conn: ConnectionFacts, client: tuple[int, str], facts: HandshakeFacts | PayloadFacts,
             decode_as: frozenset[int], voice: str = "") -> dict:
    """The flows-table row.  ``voice`` opens every reason that rests on the engine's own view
    (``"Wireshark: "`` for the tshark engine)."""
    client_d, basis = client
    server_d = 1 - client_d
    row = connection_row(conn, client_d, basis)
    if isinstance(facts, HandshakeFacts):
        _handshake_row(row, conn, facts, client_d, voice)
    else:
        _payload_row(row, conn, facts, voice)
    apply_port_hint(row, conn.ports[server_d], decode_as)
    return row


def connection_row(conn: ConnectionFacts, client_d: int, basis: str) -> dict:
    """The row's connection columns; the verdict columns stay as in the schema's empty row."""
    server_d = 1 - client_d
    local = address_localhost_reason(*conn.raw_addrs, conn.loopback)
    row = empty_flow_row()
    row.update(
        capture=conn.capture, flow_id=conn.flow_id,
        client_ip=conn.addrs[client_d], client_port=conn.ports[client_d],
        server_ip=conn.addrs[server_d], server_port=conn.ports[server_d], client_basis=basis,
        ip_version=4 if len(conn.raw_addrs[0]) == 4 else 6, first_ts=conn.first_ts, last_ts=conn.last_ts,
        duration_s=round(conn.last_ts - conn.first_ts, 6), packets_c2s=conn.packets[client_d],
        packets_s2c=conn.packets[server_d], bytes_c2s=conn.bytes[client_d], bytes_s2c=conn.bytes[server_d],
        syn_seen=conn.syn_dir is not None or conn.synack_dir is not None, fin_seen=conn.fin[0] or conn.fin[1],
        rst_seen=conn.rst[0] or conn.rst[1], midstream=conn.syn_dir is None and conn.synack_dir is None,
        gaps=conn.gaps, truncated_packets=conn.truncated, localhost=bool(local), localhost_reason=local,
        # What joining the captures of several vantage points needs (``analyzer.join``): one capture so far.
        isn_c2s=conn.isn[client_d], isn_s2c=conn.isn[server_d], captures=conn.capture, vantages=1,
        service_port=None,
    )
    return row


# -- with a handshake ------------------------------------------------------------------------------
def _handshake_row(row: dict, conn: ConnectionFacts, hs: HandshakeFacts, client_d: int, voice: str) -> None:
    app = f"{hs.prefix_protocol}+starttls" if hs.prefix_bytes else "tls"
    row.update(verdict="tls", evidence="handshake", app_protocol=app, client_hello=hs.client_hello,
               plaintext_prefix_bytes=hs.prefix_bytes, tls_records=hs.tls_records,
               app_data_records=hs.app_data[CLIENT] + hs.app_data[SERVER])
    parts = []
    if hs.client_hello:
        identity = parse_identity(hs.sni)
        row.update(sni=hs.sni, alpn=",".join(hs.alpn), identity=identity[0] if identity else "",
                   mesh=is_mesh(identity, hs.alpn))
        parts.append(f"ClientHello SNI {hs.sni}" if hs.sni else "ClientHello without SNI")
        if hs.alpn:
            parts.append(f"ALPN {','.join(hs.alpn)}")
    else:
        parts.append("ServerHello (ClientHello not captured)")
    if hs.server_version is not None:
        row.update(tls_version=version_name(hs.server_version), alpn_selected=hs.alpn_selected,
                   cipher_suite=cipher_name(hs.cipher_suite) if hs.cipher_suite is not None else "")
        parts.append(f"{version_name(hs.server_version)} negotiated")
    elif hs.hrr:
        parts.append("HelloRetryRequest, no final ServerHello captured")
    if hs.prefix_bytes:
        parts[0] = f"{hs.prefix_protocol} cleartext ({hs.prefix_bytes} bytes) then {parts[0]}"
    row["handshake"], row["handshake_detail"] = handshake_outcome(conn, hs, client_d)
    if hs.alert is not None:
        row["alert"] = f"{alert_text(hs.alert)} from {SIDES[hs.alert.side]}"
    row["mtls"] = _mtls(hs, row["mesh"])
    if row["handshake"] != "completed":
        parts.append(f"handshake {row['handshake']}" + (f": {row['handshake_detail']}" if row["handshake_detail"] else ""))
    row["reason"] = voice + ", ".join(parts)


def alert_text(alert: AlertFacts) -> str:
    if alert.encrypted:
        return "encrypted alert"
    return f"{'fatal' if alert.fatal else 'warning'} {alert_name(alert.description)} ({alert.description})"


def is_tls13(version: int) -> bool:
    return version >= TLS13 or version >> 8 == DRAFT_PREFIX


def handshake_outcome(conn: ConnectionFacts, hs: HandshakeFacts, client_d: int) -> tuple[str, str]:
    """completed | failed | incomplete, and which side ended it."""
    server_d = 1 - client_d
    if hs.fatal_alert is not None:
        return "failed", f"{SIDES[hs.fatal_alert.side]} sent fatal alert {alert_name(hs.fatal_alert.description)}"
    if hs.server_version is None:
        if conn.rst[server_d]:
            return "failed", "server reset the connection after ClientHello"
        if conn.rst[client_d]:
            return "failed", "client reset the connection before ServerHello"
        if hs.server_reply == "not-tls":
            return "failed", "server answered without TLS" + (f": {hs.server_reply_detail}" if hs.server_reply_detail else "")
        if hs.server_reply == "unparsed":
            return "incomplete", f"server's reply did not parse as TLS: {hs.server_reply_detail}"
        if conn.fin[server_d]:
            return "failed", "server closed the connection after ClientHello"
        return "incomplete", "no ServerHello captured"
    both_app_data = bool(hs.app_data[CLIENT] and hs.app_data[SERVER])
    if is_tls13(hs.server_version):
        # Everything after ServerHello is type-23; one such record each way means both sides got past
        # the hello (the client's Finished is encrypted too).
        if both_app_data:
            return "completed", ""
    elif (hs.ccs[CLIENT] and hs.ccs[SERVER]) or both_app_data:
        return "completed", ""
    if conn.rst[0] or conn.rst[1]:
        return "failed", f"{'server' if conn.rst[server_d] else 'client'} reset the connection during the handshake"
    return "incomplete", "capture ended before both sides finished"


def _mtls(hs: HandshakeFacts, mesh: bool) -> str:
    """proven (a TLS 1.2 client Certificate on the wire) | inferred (TLS 1.3 mesh identity) | none | unknown."""
    if hs.client_cert is not None:
        return "proven" if hs.client_cert else "none"
    if hs.server_version is not None and not is_tls13(hs.server_version):
        return "unknown" if hs.cert_request else "none"
    return "inferred" if mesh else "unknown"


# -- without a handshake ---------------------------------------------------------------------------
def _payload_row(row: dict, conn: ConnectionFacts, pf: PayloadFacts, voice: str) -> None:
    """TLS records mid-stream, a named protocol, opaque bytes, or nothing at all."""
    row.update(tls_records=pf.tls_records, app_data_records=pf.app_data_records)
    if not pf.captured:
        row["reason"] = no_payload_reason(conn)
        return
    where = "mid-stream, " if row["midstream"] else ""
    if pf.records is not None:
        rec = pf.records
        enough = rec.whole >= 2 or rec.exact
        if rec.cut_hello and (rec.chained or not enough):
            after = f"; {rec.chained} records after it framed by sequence number" if rec.chained else ""
            row.update(verdict="tls", evidence="records", app_protocol="tls",
                       reason=f"{voice}TLS hello record headers open the stream; {_snaplen(conn)} cut the handshake itself{after}")
        elif enough:
            how = (f" ({rec.chained} of them framed by sequence number across segments {_snaplen(conn)} cut)"
                   if rec.chained else "")
            row.update(verdict="tls", evidence="records", app_protocol="tls",
                       reason=f"{voice}{where}{rec.whole} whole TLS records with consistent headers{how}, no handshake captured")
        else:
            row.update(verdict="unknown", evidence="records",
                       reason=f"{voice}{where}{rec.headers} TLS record header(s) but too few whole records captured to be sure")
        return
    if pf.protocol:
        name = pf.protocol
        if name in ENCRYPTED_NOT_TLS:
            row.update(verdict="unknown", evidence="payload", app_protocol=name,
                       reason=f"{voice}{pf.protocol_detail or name}: encrypted by {name.upper()}, not TLS")
        else:
            row.update(verdict="plaintext", evidence="payload", app_protocol=name,
                       reason=voice + (pf.protocol_detail or f"cleartext {name} from the {SIDES[pf.protocol_side]}"))
        return
    side = SIDES[pf.sample_side]
    if row["midstream"] and looks_opaque(pf.sample):
        row.update(verdict="unknown", evidence="payload",
                   reason=f"{voice}mid-stream opaque bytes from {side}, no TLS record boundary found: {escape(pf.sample, 24)}")
        return
    if pf.captured < MIN_PAYLOAD_TO_JUDGE:
        row.update(verdict="unknown", evidence="payload",
                   reason=f"only {pf.captured} payload bytes, too few to tell (keep-alive?): {escape(pf.sample, 8)}")
        return
    what = "opaque bytes, encrypted or compressed by the application" if looks_opaque(pf.sample) else "unrecognised cleartext"
    row.update(verdict="plaintext", evidence="payload", app_protocol="unknown",
               reason=f"{voice}not TLS framing ({what}); {side} sent {escape(pf.sample, 24)}")


def _snaplen(conn: ConnectionFacts) -> str:
    return f"snaplen {conn.snaplen}" if conn.snaplen else "the snaplen"


def no_payload_reason(conn: ConnectionFacts) -> str:
    """Why a flow has no payload to judge: none sent, cut by the snaplen, or lost before the first byte."""
    if conn.bytes[0] or conn.bytes[1]:
        if conn.truncated:
            return f"no payload captured ({_snaplen(conn)} cut {conn.truncated} packets)"
        return "payload not reassembled (a gap before the first byte)"
    if conn.syn_dir is not None and not (conn.packets[0] and conn.packets[1]):
        return "no payload: SYN without answer"
    return "no payload captured (TCP control packets only)"
