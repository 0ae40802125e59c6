"""Payload inspection: each direction's in-order bytes -> TLS events, record counts and a head of bytes.

Role: the analyzer layer (Zeek's ``SSL_Analyzer`` plus DPD) of the native engine.  ``FlowInspector``
receives each direction's in-order bytes from the flow table and runs one ``TLSParser`` per direction
over them; ``connection_facts`` and ``evidence_facts`` then say what a finished flow showed, in the fact
types that ``verdict.flow_row`` turns into a row (the tshark engine fills the same types).

Rules:
  1. This module reads bytes; it decides no verdict (``verdict.py`` does).
  2. A flow's evidence is ``HandshakeFacts`` when a hello parsed (from the first byte, or after a
     cleartext prefix: STARTTLS, CONNECT, SOCKS), else ``PayloadFacts``.  Record framing counts as
     evidence only when every direction that carried bytes is a chain of record headers (``_records``).
  3. Bad traffic is data: ``TLSParseError`` is caught per direction and becomes evidence.
  4. Standard library only; no pandas here.
"""

from __future__ import annotations

from ..errors import TLSParseError
from ..flows.table import Flow
from ..tls import (
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
from ..tls.detect import SEQ_MASK, RecordChain, RecordRun, find_client_hello, find_record_run, find_server_hello, is_record_header
from .addresses import ip_text
from .signatures import NO_UPGRADE, escape, identify
from .verdict import CLIENT, SERVER, AlertFacts, ConnectionFacts, HandshakeFacts, PayloadFacts, RecordFacts

HEAD_KEEP = 4096  # bytes kept per direction for cleartext signatures and STARTTLS search
HEAD_MIN = 512  # bytes kept when the direction is TLS from its first byte, or plain HTTP
PARSE_LIMIT = 64 * 1024  # bytes fed to a direction's TLS parser at most
APPDATA_ENOUGH = 1  # encrypted records per direction after which the handshake is settled
MAX_EVENTS = 64  # handshake-level events kept per direction
CHAIN_SEGMENTS = 1024  # segments per direction a record chain is followed past a snaplen cut, at most
STRONG_RUN = 3  # whole records one way that excuse a record fragment the other way (mid-stream)
MAX_RECORD = 16384 + 256  # RFC 8446 5.2: the longest TLSCiphertext fragment
HANDSHAKE = 22  # RFC 8446 5.1 ContentType
CLIENT_HELLO, SERVER_HELLO = 1, 2  # RFC 8446 4 HandshakeType


class FlowInspector:
    """Per-flow payload analyzer.  ``feed(direction, data)`` returns True while it wants more bytes.

    Per direction it runs a ``TLSParser`` from the first byte.  When that fails -- cleartext, or a
    capture that joined mid-record -- it keeps the first ``HEAD_KEEP`` bytes, then looks there for a
    chain of record headers and, if one starts at offset ``o``, follows the stream from ``o`` with a
    second parser (``resync``), so records of any size are counted past the head.
    """

    __slots__ = ("parsers", "events", "errors", "heads", "fed", "appdata", "records", "resync", "plain", "chains")

    def __init__(self) -> None:
        # Created on a direction's first bytes (feed): many directions never carry any.  None after
        # that means the parser failed; ``evidence_facts`` only looks at it for a direction with bytes.
        self.parsers: list[TLSParser | None] = [None, None]
        self.events: tuple[list, list] = ([], [])
        self.errors: list[tuple[int, str] | None] = [None, None]  # (offset, message) of the parse failure
        self.heads = [bytearray(), bytearray()]
        self.fed = [0, 0]
        self.appdata = [0, 0]
        self.records = [0, 0]
        self.resync: list[tuple[int, TLSParser] | None | bool] = [None, None]  # (offset, parser); False: none
        self.plain = False  # a direction opened with a cleartext request that never turns into TLS
        self.chains: list[RecordChain | None] = [None, None]  # record headers followed past a snaplen cut

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
                # lets the flow's objects go by reference counting, so fewer full collections run and
                # none of them finds garbage left behind.
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
                request = identify(first, "orig")
                found = request or (whole and identify(first, "resp"))
                if found and found[0] in NO_UPGRADE and not head.startswith(b"CONNECT "):
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

    def segment(self, d: int, seq: int, data: bytes, wire_len: int) -> bool:
        """A segment of a direction whose in-order bytes ended at a snaplen cut (the cut one, then every
        later one): record headers are followed by sequence number (``RecordChain``).  True while it
        wants more: until the chain breaks, has confirmed ``STRONG_RUN`` records, or ran ``CHAIN_SEGMENTS``."""
        chain = self.chains[d]
        if chain is None:
            chain = self.chains[d] = RecordChain()
        chain.add(seq, data, wire_len)
        return not chain.broken and chain.confirmed < STRONG_RUN and chain.segments < CHAIN_SEGMENTS

    def client_hint(self) -> int | None:
        for d in (0, 1):
            if any(ev.__class__ is ClientHello for ev in self.events[d]):
                return d
        return None




def new_inspector(_sport: int, _dport: int) -> FlowInspector:
    return FlowInspector()


# -- what a finished flow showed ------------------------------------------------------------------
NO_PAYLOAD = PayloadFacts(0)  # the evidence of a flow that carried no payload


def connection_facts(flow: Flow, snaplen: int = 0) -> ConnectionFacts:
    streams = flow.streams  # None: no payload ever came
    return ConnectionFacts(
        capture=flow.capture, flow_id=flow.fid, addrs=(ip_text(flow.addrs[0]), ip_text(flow.addrs[1])),
        raw_addrs=flow.addrs, ports=flow.ports, first_ts=flow.first_ts, last_ts=flow.last_ts,
        packets=tuple(flow.packets), bytes=tuple(flow.bytes), syn_dir=flow.syn_dir,  # type: ignore[arg-type]
        synack_dir=flow.synack_dir, hello_dir=_hello_dir(flow), fin=tuple(flow.fin),  # type: ignore[arg-type]
        rst=tuple(flow.rst), loopback=flow.loopback, truncated=flow.truncated,  # type: ignore[arg-type]
        gaps=(streams[0].gaps + streams[1].gaps if streams else 0) + flow.jumps, snaplen=snaplen, isn=(flow.isn[0], flow.isn[1]),
    )


def _hello_dir(flow: Flow) -> int | None:
    # Only asked when no SYN or SYN-ACK names the client (``verdict.client_direction``): most flows have one.
    if flow.syn_dir is not None or flow.synack_dir is not None:
        return None
    return flow.inspector.client_hint() if flow.inspector is not None else None


def evidence_facts(flow: Flow, client_d: int) -> HandshakeFacts | PayloadFacts:
    """What the inspector saw of a finished flow, in client/server terms (``client_d``: the client direction)."""
    ins: FlowInspector | None = flow.inspector
    if ins is None:  # no payload segment ever came
        return NO_PAYLOAD
    server_d = 1 - client_d
    heads = (bytes(ins.heads[client_d]), bytes(ins.heads[server_d]))
    events_c, events_s = ins.events[client_d], ins.events[server_d]
    if _has_hello(events_c) or _has_hello(events_s):
        return _handshake(events_c, events_s, (ins.appdata[client_d], ins.appdata[server_d]),
                          ins.records[client_d] + ins.records[server_d], **_server_reply(ins, server_d, heads[1]))
    starttls = _after_cleartext(heads, ins, server_d)
    if starttls is not None:
        return starttls
    counts = {"tls_records": ins.records[client_d] + ins.records[server_d],
              "app_data_records": ins.appdata[client_d] + ins.appdata[server_d]}
    captured = len(heads[0]) + len(heads[1])
    if not captured:
        return PayloadFacts(0, **counts)
    midstream = flow.syn_dir is None and flow.synack_dir is None
    records = _records(flow, (client_d, server_d), heads, midstream)
    if records is not None:
        return PayloadFacts(captured, records=records, **counts)
    for side, role, head in ((CLIENT, "orig", heads[0]), (SERVER, "resp", heads[1])):
        found = identify(head, role) if head else None
        if found:
            return PayloadFacts(captured, protocol=found[0], protocol_detail=found[1], protocol_side=side, **counts)
    sample_side = CLIENT if heads[0] else SERVER
    return PayloadFacts(captured, sample=heads[sample_side], sample_side=sample_side, **counts)


def _has_hello(events: list) -> bool:
    """A ClientHello, or a ServerHello that is not a HelloRetryRequest, among a direction's events."""
    for event in events:
        cls = event.__class__
        if cls is ClientHello or (cls is ServerHello and not event.is_hello_retry_request):
            return True
    return False


def _server_reply(ins: FlowInspector, server_d: int, head: bytes) -> dict[str, str]:
    """Did the server answer a ClientHello with something that is not TLS?  (``HandshakeFacts`` fields.)"""
    err = ins.errors[server_d]
    if err is None:
        return {}
    if head and err[0] == 0 and not ins.events[server_d]:
        return {"server_reply": "not-tls", "server_reply_detail": escape(head, 24)}
    return {"server_reply": "unparsed", "server_reply_detail": err[1]}


def _handshake(events_c: list, events_s: list, app_data: tuple[int, int], tls_records: int, **extra) -> HandshakeFacts:
    hello = server_hello = client_cert = alert = fatal = None
    hrr = cert_request = False
    ccs = [False, False]
    for side, events in ((CLIENT, events_c), (SERVER, events_s)):
        for ev in events:
            cls = ev.__class__
            if cls is ClientHello and hello is None:
                hello = ev
            elif cls is ServerHello:
                if ev.is_hello_retry_request:
                    hrr = True
                elif server_hello is None:
                    server_hello = ev
            elif cls is Certificate and side == CLIENT:
                client_cert = ev
            elif cls is CertificateRequest:
                cert_request = True
            elif cls is Alert:
                facts = AlertFacts(side, -1 if ev.encrypted else ev.description, ev.fatal)
                alert = alert or facts
                if fatal is None and ev.fatal and not ev.encrypted:
                    fatal = facts
            elif cls is ChangeCipherSpec:
                ccs[side] = True
    return HandshakeFacts(
        client_hello=hello is not None, sni=(hello.sni or "") if hello else "", alpn=tuple(hello.alpn) if hello else (),
        server_version=server_hello.version if server_hello else None,
        cipher_suite=server_hello.cipher_suite if server_hello else None,
        alpn_selected=(server_hello.alpn or "") if server_hello else "", hrr=hrr,
        client_cert=None if client_cert is None else not client_cert.is_empty, cert_request=cert_request,
        alert=alert, fatal_alert=fatal, ccs=(ccs[0], ccs[1]), app_data=app_data, tls_records=tls_records, **extra)


def _after_cleartext(heads: tuple[bytes, bytes], ins: FlowInspector, server_d: int) -> HandshakeFacts | None:
    """STARTTLS, HTTP CONNECT, SOCKS: cleartext first, then a ClientHello on the same connection."""
    at = find_client_hello(heads[0])
    if not at:
        return None
    server_at = find_server_hello(heads[1])
    events_c, records_c, app_c = _reparse(heads[0][at:])
    events_s, records_s, app_s = _reparse(heads[1][server_at:]) if server_at is not None else ([], 0, 0)
    if not any(ev.__class__ is ClientHello for ev in events_c + events_s):
        return None
    found = identify(heads[0], "orig") or identify(heads[1], "resp")
    return _handshake(events_c, events_s, (app_c, app_s), records_c + records_s,
                      prefix_protocol=found[0] if found else "cleartext", prefix_bytes=at + (server_at or 0),
                      **_server_reply(ins, server_d, heads[1]))


def _reparse(data: bytes) -> tuple[list, int, int]:
    """Events, records and app-data records of a fresh parser over ``data`` (after a cleartext prefix)."""
    parser = TLSParser()
    parser.receive_data(data)
    events, appdata = [], 0
    try:
        while (ev := parser.next_event()) is not NEED_DATA and len(events) < MAX_EVENTS:
            if ev.__class__ is ApplicationData:
                appdata += 1
            else:
                events.append(ev)
    except TLSParseError:
        pass
    return events, parser.records, appdata


def _records(flow: Flow, dirs: tuple[int, int], heads: tuple[bytes, bytes], midstream: bool) -> RecordFacts | None:
    """Record framing of every direction that carried bytes, or None when it does not hold.

    Each such direction must be a chain of valid record headers through the end of its captured
    bytes, starting at offset 0 (or anywhere when the capture joined mid-stream; mid-stream, the tail
    of a record begun before the capture is excused beside a long run the other way).
    """
    ins: FlowInspector = flow.inspector
    runs = []
    chained = 0
    for d, head in zip(dirs, heads):
        if not head:
            continue
        parser, sync = ins.parsers[d], ins.resync[d]
        if parser is not None and (ins.records[d] or (parser.partial and is_record_header(head))):
            # The incremental parser framed everything from offset 0 (its records may run past the head).
            run = RecordRun(0, ins.records[d] + parser.partial, (), (), ins.records[d], not parser.partial)
        elif sync:
            offset, resync_parser = sync
            run = RecordRun(offset, resync_parser.records + resync_parser.partial, (), (), resync_parser.records,
                            not resync_parser.partial)
        else:
            run = find_record_run(head, min_records=1)
        chain = ins.chains[d]
        if chain is not None and chain.broken:
            return None  # past the snaplen cut, a header was due where the bytes are not one
        if chain is not None and chain.headers:
            run = _chained(run, chain, flow.streams[d].base, head)
            chained += chain.confirmed
        if run is None or not (run.offset == 0 or midstream):
            if not (midstream and _record_fragment(head)):
                return None
            run = RecordRun(len(head), 0, (), (), 0, False)  # the tail of a record begun before the capture
        runs.append((d, head, run))
    whole = sum(run.complete for _, _, run in runs)
    if any(run.offset == len(head) for _, head, run in runs) and max(run.complete for _, _, run in runs) < STRONG_RUN:
        return None  # a fragment is only excused beside a long, unmistakable run the other way
    from_start = all(run.offset == 0 for _, _, run in runs)
    cut = any(flow.streams[d].truncated for d, _, _ in runs)
    hello = any(run.offset == 0 and len(head) > 5 and head[0] == HANDSHAKE and head[5] in (CLIENT_HELLO, SERVER_HELLO)
                for _, head, run in runs)
    return RecordFacts(whole=whole, headers=sum(run.count for _, _, run in runs),
                       exact=whole == 1 and all(run.exact and run.offset == 0 for _, _, run in runs),
                       cut_hello=cut and hello and from_start, chained=chained)


def _chained(run: RecordRun | None, chain: RecordChain, base: int, head: bytes) -> RecordRun | None:
    """A direction's run of records from its in-order bytes, extended by the headers its ``RecordChain``
    followed past the snaplen cut.  Without such a run the in-order bytes must be the tail of a record
    begun before them (``_record_fragment``), and the chain's first header is where the framing starts."""
    if run is not None:
        return RecordRun(run.offset, run.count + chain.headers, (), (), run.complete + chain.confirmed, False)
    if not _record_fragment(head):
        return None
    return RecordRun((chain.first - base) & SEQ_MASK, chain.headers, (), (), chain.confirmed, False)


def _record_fragment(head: bytes) -> bool:
    """Bytes that could be the end of a TLS record whose header came before the capture started:
    shorter than one record, not a known cleartext protocol, and not text."""
    if len(head) > MAX_RECORD or identify(head, "orig") or identify(head, "resp"):
        return False
    printable = sum(1 for b in head[:256] if 0x20 <= b < 0x7F or b in (9, 10, 13))
    return printable < 0.75 * min(len(head), 256)
