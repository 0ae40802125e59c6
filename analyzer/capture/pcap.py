"""The classic libpcap format: a 24-byte file header, then 16-byte record headers each before its packet.

Role: ``iter_pcap(reader)`` turns the reader's window into flat frame batches; ``record_check`` tells
a record header from other bytes when a byte range starts mid-file (``reader.CaptureReader.resync``).
Timestamps need no clamp here: unsigned 32-bit seconds end in 2106.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable, Iterator

from ..errors import CaptureFormatError
from .frames import MAX_BLOCK, FrameBatch, Interface
from .source import Damage

if TYPE_CHECKING:
    from .reader import CaptureReader

PCAP_MAGIC = {  # magic bytes -> (byte order, fraction scale), libpcap file format
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),  # nanosecond pcap
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
FILE_HEADER = 24  # magic, version major/minor, thiszone, sigfigs, snaplen, network
RECORD_HEADER = 16  # ts_sec, ts_frac, caplen, wirelen
MAX_WIRE = 1 << 20  # a record claiming a longer packet is not a record header (resync only)
RESYNC_TS_S = 10 * 365 * 86400  # nor one timestamped this far from the first packet (merged captures span years)


def iter_pcap(rd: "CaptureReader") -> Iterator[tuple[bytes, FrameBatch]]:
    """Batches of ``(ts, linktype, off, caplen, wirelen, 0)`` from ``rd``'s window, up to ``rd.stop``."""
    w = rd.win
    if not w.need(FILE_HEADER):
        raise CaptureFormatError(f"{rd.info.path}: pcap header truncated ({w.end} bytes)")
    bo, scale = PCAP_MAGIC[bytes(w.buf[:4])]
    _vmaj, _vmin, _tz, _sig, snaplen, network = struct.unpack_from(bo + "HHiIII", w.buf, 4)
    linktype = network & 0x03FFFFFF  # upper bits carry FCS length (pcap-linktype)
    rd.info.interfaces.append(Interface(linktype, snaplen))
    w.pos = FILE_HEADER
    rec = struct.Struct(bo + "IIII").unpack_from
    if rd.start > FILE_HEADER:
        sec0 = rec(w.buf, FILE_HEADER)[0] if w.need(FILE_HEADER + RECORD_HEADER) else 0
        rd.resync(1, record_check(rec, max(snaplen, 0x40000), 1e6 if scale > 1e-9 else 1e9, sec0))
    stop = rd.stop
    while True:
        frames: list = []  # flat, see FrameBatch
        add = frames.extend
        buf, pos, end, lim = w.batch(stop)
        last = min(end - 16, lim - 1)  # the last offset a record header may start at in this batch
        damage = ""
        while pos <= last:
            sec, frac, caplen, wirelen = rec(buf, pos)
            nxt = pos + 16 + caplen
            if nxt > end:  # the record runs past the window (a corrupt length always does)
                if caplen > MAX_BLOCK:
                    damage = f"corrupt record header (caplen {caplen})"
                break
            add((sec + frac * scale, linktype, pos + 16, caplen, wirelen, 0))
            pos = nxt
        w.pos = pos
        yield from rd.emit(buf, frames)
        if damage:
            raise Damage(damage)
        if pos >= lim:
            return
        if not w.need(RECORD_HEADER):
            if w.pos < w.end:
                raise Damage(w.damage or "capture ends inside a record header")
            if w.damage:
                raise Damage(w.damage)
            return
        caplen = rec(w.buf, w.pos)[2]
        if caplen <= MAX_BLOCK and not w.need(RECORD_HEADER + caplen):
            raise Damage(w.damage or "capture ends inside a packet")


def record_check(rec, max_cap: int, frac_limit: float, sec0: int) -> Callable[[bytes, int, int], int]:
    """``valid(buf, q, end)``: the offset after a plausible record header at ``q``, or -1."""
    def valid(buf, q: int, end: int) -> int:
        if q + 16 > end:
            return -1
        sec, frac, caplen, wirelen = rec(buf, q)
        if (caplen > max_cap or caplen > wirelen or wirelen > MAX_WIRE or frac >= frac_limit
                or abs(sec - sec0) > RESYNC_TS_S or q + 16 + caplen > end):
            return -1
        return q + 16 + caplen
    return valid
