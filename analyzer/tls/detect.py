"""Finding TLS in bytes that do not start with a handshake: mid-stream captures and STARTTLS prefixes.

Role: Zeek-DPD-style signatures as compiled bytes regexes plus a record-chain check. ``find_record_run``
answers "is this a TLS stream joined mid-way?" (evidence ``records``); ``find_client_hello`` answers
"where does the TLS start after a cleartext prefix?" (STARTTLS, HTTP CONNECT, SOCKS).
Must not: parse record bodies (that is ``TLSParser``'s job, from the offset found here), keep state,
or loop over every byte in Python -- the regexes pick candidate offsets at C speed, so 16 KiB of
random binary costs microseconds.

Why a *chain* and not one header: a candidate like ``17 03 03`` turns up in random bytes about once per
670 KB, and often in compressed or binary protocols; requiring every header to sit exactly where the
previous length points, up to the end of the data, makes a false run practically impossible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analyzer.tls.constants import HANDSHAKE, MAX_RECORD_LEN, RECORD_HEADER_LEN
from analyzer.tls.records import is_record_header

__all__ = ["RecordChain", "RecordRun", "find_client_hello", "find_record_run", "find_server_hello", "is_record_header"]

# Type 20..24, version 3.0..3.4 (RFC 8446 5.1). A lookahead, so overlapping candidates are all seen.
_RECORD_START = re.compile(rb"(?=[\x14-\x18]\x03[\x00-\x04])")
# Handshake record, then handshake type 1 with a u24 length < 64 KiB, then client_version 3.x
# (RFC 8446 4.1.2) -- the same bytes the Linkerd proxy peeks at (linkerd/tls/src/server/client_hello.rs).
_CLIENT_HELLO = re.compile(rb"(?=\x16\x03[\x00-\x04]..\x01\x00..\x03[\x00-\x04])", re.DOTALL)
_SERVER_HELLO = re.compile(rb"(?=\x16\x03[\x00-\x04]..\x02\x00..\x03[\x00-\x04])", re.DOTALL)
_MIN_CLIENT_HELLO_BODY = 41  # version, random, empty session_id, one suite, one compression method


@dataclass(frozen=True, slots=True)
class RecordRun:
    """A chain of record headers from ``offset`` through the end of the data."""

    offset: int
    count: int  # complete headers in the chain (the last record's body may be cut)
    content_types: tuple[int, ...]
    versions: tuple[int, ...]
    complete: int  # records whose body is wholly inside the data
    exact: bool  # the last record ends exactly at the end of the data


def _plausible_tail(data, off: int) -> bool:
    """A header cut by the end of the data (1..4 bytes) must still be a valid prefix of one."""
    tail = data[off:off + 4]
    if not 0x14 <= tail[0] <= 0x18:
        return False
    if len(tail) > 1 and tail[1] != 3:
        return False
    if len(tail) > 2 and tail[2] > 4:
        return False
    return len(tail) < 4 or tail[3] <= MAX_RECORD_LEN >> 8


def _walk(data, off: int, dead: set) -> tuple[list[int], list[int], int] | None:
    """Follow record lengths from ``off`` to the end; None if a header in the chain is invalid.

    Chains are deterministic, so every offset of a broken chain is added to ``dead`` and later walks
    that land on one stop at once: the scan stays linear on long streams of small records.
    """
    end = len(data)
    types, versions, visited = [], [], []
    while off + RECORD_HEADER_LEN <= end:
        if off in dead or not is_record_header(data, off):
            dead.update(visited)
            return None
        visited.append(off)
        types.append(data[off])
        versions.append((data[off + 1] << 8) | data[off + 2])
        off += RECORD_HEADER_LEN + ((data[off + 3] << 8) | data[off + 4])
    if off < end and not _plausible_tail(data, off):
        dead.update(visited)
        return None
    return types, versions, off - end  # <0: a cut header follows; 0: exact; >0: the last body is cut


def find_record_run(data, min_records: int = 2, max_scan: int = 4096) -> RecordRun | None:
    """The smallest offset below ``max_scan`` where at least ``min_records`` valid record headers chain
    by their lengths through the end of ``data`` (the last record may be cut), or None.

    Use it on a direction's first captured bytes when no handshake was seen (mid-stream join): a run
    is TLS with evidence ``records``; its absence says opaque binary or plaintext.
    """
    dead: set[int] = set()
    for match in _RECORD_START.finditer(data, 0, min(len(data), max(max_scan, 1) + 2)):
        off = match.start()
        if off >= max_scan and off:  # offset 0 is always tried
            break
        chain = _walk(data, off, dead)
        if chain is not None and len(chain[0]) >= min_records:
            n = len(chain[0])
            return RecordRun(off, n, tuple(chain[0]), tuple(chain[1]), n - (chain[2] > 0), chain[2] == 0)
    return None


def find_client_hello(data, start: int = 0) -> int | None:
    """Offset of the first record header at or after ``start`` that opens a ClientHello, or None.

    The record must be a handshake record of sane length whose body starts with handshake type 1, a
    plausible u24 length and client_version 3.x. The hello itself may continue past ``data``.
    """
    for match in _CLIENT_HELLO.finditer(data, start):
        off = match.start()
        record_len = (data[off + 3] << 8) | data[off + 4]
        body_len = int.from_bytes(data[off + 6:off + 9], "big")
        if (data[off] == HANDSHAKE and 6 <= record_len <= MAX_RECORD_LEN
                and body_len >= _MIN_CLIENT_HELLO_BODY):
            return off
    return None


def find_server_hello(data, start: int = 0) -> int | None:
    """Offset of the first handshake record at or after ``start`` that opens a ServerHello, or None.

    The server-side twin of ``find_client_hello``, for the reply after a STARTTLS prefix.
    """
    for match in _SERVER_HELLO.finditer(data, start):
        off = match.start()
        if 6 <= ((data[off + 3] << 8) | data[off + 4]) <= MAX_RECORD_LEN:
            return off
    return None


SEQ_MASK = 0xFFFFFFFF  # TCP sequence numbers are 32-bit and wrap (RFC 9293 3.4)
SEQ_HALF = 0x80000000


class RecordChain:
    """Record headers followed by TCP sequence number across segments the capture cut short.

    A snaplen keeps each segment's first bytes and its sequence number.  A header at seq ``S`` with
    length ``L`` says the next header starts at ``S + 5 + L``; when that position is among a later
    segment's captured bytes, a valid header there *confirms* the record (it is as good as a whole
    record in ``find_record_run``), and an invalid one *breaks* the chain: the direction is not TLS
    framing, for good.  A predicted position that was never captured (inside a cut tail, or in a
    segment that was lost) puts the chain out of step; it picks up again only at a segment that
    starts with a header, which itself proves nothing until a later header confirms it.
    """

    __slots__ = ("first", "next", "end", "segments", "headers", "confirmed", "broken")

    def __init__(self) -> None:
        self.first: int | None = None  # seq of the first header in step
        self.next: int | None = None  # seq where the next header must start; None: out of step
        self.end: int | None = None  # seq just past the furthest segment seen
        self.segments = 0  # segments added
        self.headers = 0  # headers read, confirmed or not
        self.confirmed = 0  # headers found exactly where the previous one's length said
        self.broken = False

    def add(self, seq: int, data, wire_len: int) -> None:
        """One segment: its seq, the ``data`` captured of it and the ``wire_len`` it carried."""
        self.segments += 1
        if self.broken:
            return
        if self.end is not None and (seq - self.end) & SEQ_MASK >= SEQ_HALF:
            return  # a retransmission or a late segment: its place in the chain has passed
        self.end = (seq + wire_len) & SEQ_MASK
        nxt = self.next
        if nxt is not None and (nxt - seq) & SEQ_MASK >= SEQ_HALF:
            nxt = None  # the header was due in bytes this capture never saw
        fresh = nxt is None
        if fresh:
            if not is_record_header(data, 0):
                self.next = None
                return
            nxt = seq
        while (off := (nxt - seq) & SEQ_MASK) < wire_len:
            if off + RECORD_HEADER_LEN > len(data):
                nxt = None  # due in bytes the snaplen cut (or in the next segment)
                break
            if not is_record_header(data, off):
                self.broken = True
                return
            if fresh:
                fresh = False
                if self.first is None:
                    self.first = nxt
            else:
                self.confirmed += 1
            self.headers += 1
            nxt = (nxt + RECORD_HEADER_LEN + ((data[off + 3] << 8) | data[off + 4])) & SEQ_MASK
        self.next = nxt
