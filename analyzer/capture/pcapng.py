"""pcapng (draft-ietf-opsawg-pcapng): sections of blocks, each section with its byte order and interfaces.

Role: ``iter_pcapng(reader)`` turns the reader's window into flat frame batches (EPB, obsolete PB,
SPB; IDB and ISB update the interfaces); ``read_head`` and ``block_check`` serve a byte range that
starts mid-file (``reader.CaptureReader.resync``).

Rules:
  1. The first Section Header Block is the file header: cut or malformed, the file is not a capture
     (``CaptureFormatError``, as for a cut pcap header).  Sections without packets are empty, not damage.
  2. Linear in the file size whatever the structure: every block is looked at once, the window only
     moves forward, and no block longer than ``MAX_BLOCK`` is buffered.
  3. Timestamps are 64-bit ticks of ``if_tsresol``: out of range ones are clamped by the reader
     (``frames.clamp_times``), so a bad resolution cannot break an output.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable, Iterator

from ..errors import CaptureFormatError
from .frames import MAX_BLOCK, FrameBatch, Interface
from .source import Damage

if TYPE_CHECKING:
    from .reader import CaptureReader

PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"  # Section Header Block type, palindromic
PCAPNG_BOM = 0x1A2B3C4D  # byte-order magic
BOM_LE = b"\x4d\x3c\x2b\x1a"
BOM_BE = b"\x1a\x2b\x3c\x4d"
SHB_MIN = 28  # type, length, byte-order magic, version major/minor, section length, trailing length

# pcapng block types (draft-ietf-opsawg-pcapng)
BT_SHB = 0x0A0D0D0A  # Section Header Block: PCAPNG_SHB as a number, the same in either byte order
BT_IDB = 0x00000001  # Interface Description Block
BT_OPB = 0x00000002  # obsolete Packet Block
BT_SPB = 0x00000003  # Simple Packet Block
BT_NRB = 0x00000004  # Name Resolution Block
BT_ISB = 0x00000005  # Interface Statistics Block
BT_EPB = 0x00000006  # Enhanced Packet Block
BT_KNOWN = frozenset({BT_SHB, BT_IDB, BT_OPB, BT_SPB, BT_NRB, BT_ISB, BT_EPB,
                      0x0000000A,  # Decryption Secrets Block
                      0x00000BAD, 0x40000BAD})  # Custom Blocks
OPT_IF_NAME = 2
OPT_IF_TSRESOL = 9
OPT_ISB_IFDROP = 5
_EPB = {bo: struct.Struct(bo + "7I").unpack_from for bo in "<>"}  # type, length, iface, ts hi/lo, caplen, wirelen
_U32 = {bo: struct.Struct(bo + "I").unpack_from for bo in "<>"}


def byte_order(bom) -> str:
    """``<`` or ``>`` from a section's byte-order magic, ``""`` when it is neither."""
    return "<" if bom == BOM_LE else ">" if bom == BOM_BE else ""


def file_header(rd: "CaptureReader") -> str:
    """Check the first section header (Rule 1); its byte order."""
    w, path = rd.win, rd.info.path
    if not w.need(SHB_MIN):
        raise CaptureFormatError(f"{path}: pcapng section header truncated ({w.end} bytes)")
    bo = byte_order(bytes(w.buf[8:12]))
    if not bo:
        raise CaptureFormatError(f"{path}: pcapng section header has a bad byte-order magic")
    blen = _U32[bo](w.buf, 4)[0]
    if blen < SHB_MIN or blen % 4 or blen > MAX_BLOCK:
        raise CaptureFormatError(f"{path}: pcapng section header is corrupt (length {blen})")
    if not w.need(blen):
        raise CaptureFormatError(f"{path}: pcapng section header truncated ({w.end} of {blen} bytes)")
    return bo


def iter_pcapng(rd: "CaptureReader") -> Iterator[tuple[bytes, FrameBatch]]:
    """Batches of ``(ts, linktype, off, caplen, wirelen, iface)`` from ``rd``'s window, up to ``rd.stop``."""
    w, info = rd.win, rd.info
    bo = file_header(rd)
    ifaces: list[Interface] = []  # interfaces of the current section
    units: list[tuple[float, int]] = []  # (seconds per tick, link type) per interface, for the hot path
    base = 0  # index of this section's first interface in info.interfaces
    if rd.start > 0:
        ifaces = read_head(rd, bo)
        units = [(i.ts_unit, i.linktype) for i in ifaces]
        info.interfaces += ifaces
        rd.resync(4, block_check(_U32[bo], len(ifaces)))  # blocks are 32-bit aligned
        info.start_section = section_key(bo, ifaces)
    stop = rd.stop
    while True:
        frames: list = []  # flat, see FrameBatch
        add = frames.extend
        buf, pos, end, lim = w.batch(stop)
        last = min(end - 12, lim - 1)
        damage = ""
        epb, u32 = _EPB[bo], _U32[bo]
        while pos <= last:
            if pos + 28 <= end:
                # Hot path: an Enhanced Packet Block, its header and fields in one call.
                btype, blen, iid, hi, lo, caplen, wirelen = epb(buf, pos)
                if (btype == BT_EPB and pos + blen <= end and iid < len(units) and 32 + caplen <= blen
                        and not blen % 4 and u32(buf, pos + blen - 4)[0] == blen):
                    unit, linktype = units[iid]
                    add((((hi << 32) | lo) * unit, linktype, pos + 28, caplen, wirelen, base + iid))
                    pos += blen
                    continue
            # Any other block, or an EPB that failed a check: the general path names the damage.
            btype = u32(buf, pos)[0]
            if btype == BT_SHB:  # a new section; its byte order may differ (palindromic type)
                bo = byte_order(bytes(buf[pos + 8:pos + 12]))
                if not bo:
                    damage = "corrupt section header (bad byte-order magic)"
                    break
                epb, u32 = _EPB[bo], _U32[bo]
                ifaces, units, base = [], [], len(info.interfaces)
            blen = u32(buf, pos + 4)[0]
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                damage = f"corrupt block (type 0x{btype:08x}, length {blen})"
                break
            if pos + blen > end:
                break
            if u32(buf, pos + blen - 4)[0] != blen:
                damage = f"corrupt block (type 0x{btype:08x}: trailing length differs)"
                break
            if btype == BT_EPB or btype == BT_OPB:
                if btype == BT_EPB:
                    iid, hi, lo, caplen, wirelen = struct.unpack_from(bo + "IIIII", buf, pos + 8)
                else:
                    iid, _drops, hi, lo, caplen, wirelen = struct.unpack_from(bo + "HHIIII", buf, pos + 8)
                if iid >= len(ifaces) or 32 + caplen > blen:
                    damage = f"corrupt packet block (interface {iid}, caplen {caplen})"
                    break
                unit, linktype = units[iid]
                add((((hi << 32) | lo) * unit, linktype, pos + 28, caplen, wirelen, base + iid))
            elif btype == BT_SPB:
                if not ifaces:
                    damage = "simple packet block before any interface"
                    break
                wirelen = u32(buf, pos + 8)[0]
                caplen = min(wirelen, blen - 16, ifaces[0].snaplen or wirelen)
                add((0.0, ifaces[0].linktype, pos + 12, caplen, wirelen, base))
            elif btype == BT_IDB:
                itf = _idb(buf, pos, blen, bo)
                ifaces.append(itf)
                units.append((itf.ts_unit, itf.linktype))
                info.interfaces.append(itf)
            elif btype == BT_ISB:
                iid = u32(buf, pos + 8)[0]
                drops = _option(buf, pos + 20, pos + blen - 4, bo, OPT_ISB_IFDROP)
                if iid < len(ifaces) and drops is not None and len(drops) >= 8:
                    ifaces[iid].drops = struct.unpack(bo + "Q", drops[:8])[0]
            pos += blen
        w.pos = pos
        info.section = section_key(bo, ifaces)
        yield from rd.emit(buf, frames)
        if damage:
            raise Damage(damage)
        if pos >= lim:
            return
        if not w.need(12):
            if w.pos < w.end or w.damage:
                raise Damage(w.damage or "capture ends inside a block header")
            return
        head = bytes(w.buf[w.pos:w.pos + 12])
        if head[:4] == PCAPNG_SHB:
            bo = byte_order(head[8:12]) or bo  # a bad magic is named by the loop above
        blen = struct.unpack_from(bo + "I", head, 4)[0]
        if 12 <= blen <= MAX_BLOCK and not w.need(blen):
            raise Damage(w.damage or "capture ends inside a block")


def read_head(rd: "CaptureReader", bo: str) -> list[Interface]:
    """The interfaces the first section describes before its first other block, for a byte range
    that starts later (the window is still at offset 0).  The window moves forward past each block,
    so a head of many interfaces costs its size once (Rule 2)."""
    w, u32 = rd.win, _U32[bo]
    ifaces: list[Interface] = []
    first = True
    while w.need(12):
        btype, blen = u32(w.buf, w.pos)[0], u32(w.buf, w.pos + 4)[0]
        if (not first and btype != BT_IDB) or blen < 12 or blen % 4 or blen > MAX_BLOCK or not w.need(blen):
            break
        if btype == BT_IDB:
            ifaces.append(_idb(w.buf, w.pos, blen, bo))
        w.pos += blen
        first = False
    return ifaces


def block_check(u32, n_ifaces: int) -> Callable[[bytes, int, int], int]:
    """``valid(buf, q, end)``: the offset after a plausible block at ``q``, or -1."""
    def valid(buf, q: int, end: int) -> int:
        if q + 12 > end:
            return -1
        btype, blen = u32(buf, q)[0], u32(buf, q + 4)[0]
        if (btype not in BT_KNOWN or blen < 12 or blen % 4 or blen > MAX_BLOCK or q + blen > end
                or u32(buf, q + blen - 4)[0] != blen):
            return -1
        if btype == BT_EPB and (blen < 32 or u32(buf, q + 8)[0] >= n_ifaces or 32 + u32(buf, q + 20)[0] > blen):
            return -1
        return q + blen
    return valid


def section_key(bo: str, ifaces: list[Interface]) -> tuple:
    """What two byte ranges must agree on to be read as one section: byte order and interfaces."""
    return bo, tuple((i.linktype, i.snaplen, i.ts_unit, i.name) for i in ifaces)


def _idb(buf, pos: int, blen: int, bo: str) -> Interface:
    linktype, _res, snaplen = struct.unpack_from(bo + "HHI", buf, pos + 8)
    itf = Interface(linktype, snaplen)
    _idb_options(itf, buf, pos + 16, pos + blen - 4, bo)
    return itf


def _iter_options(buf: bytes, pos: int, end: int, bo: str) -> Iterator[tuple[int, bytes]]:
    """pcapng options: (code u16, length u16, value padded to 32 bits) until opt_endofopt or end."""
    while pos + 4 <= end:
        code, length = struct.unpack_from(bo + "HH", buf, pos)
        if code == 0:
            return
        yield code, buf[pos + 4:min(pos + 4 + length, end)]
        pos += 4 + ((length + 3) & ~3)


def _option(buf: bytes, pos: int, end: int, bo: str, want: int) -> bytes | None:
    for code, value in _iter_options(buf, pos, end, bo):
        if code == want:
            return value
    return None


def _idb_options(itf: Interface, buf: bytes, pos: int, end: int, bo: str) -> None:
    for code, value in _iter_options(buf, pos, end, bo):
        if code == OPT_IF_NAME:
            itf.name = value.rstrip(b"\x00").decode("utf-8", "backslashreplace")
        elif code == OPT_IF_TSRESOL and value:
            r = value[0]
            # high bit set: negative power of two, else negative power of ten (pcapng 4.2)
            itf.ts_unit = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
