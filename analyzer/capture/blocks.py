"""A pcap/pcapng byte stream in chunks of any size -> whole blocks, and the header a fresh reader needs.

Role: cut a live capture stream at block boundaries so it can be handed to a new reader mid-way
(the tshark engine restarts tshark this way).  Standard library only; knows blocks, not packets.
"""

from __future__ import annotations

import logging
import struct

from .reader import BT_EPB, BT_IDB, BT_OPB, BT_SHB, BT_SPB, PCAP_MAGIC, PCAPNG_BOM, PCAPNG_SHB

log = logging.getLogger(__name__)

PACKET_BLOCKS = frozenset({BT_OPB, BT_SPB, BT_EPB})  # the pcapng blocks that carry a packet
PCAP_HEADER, PCAP_RECORD = 24, 16  # classic pcap file header, record header
PCAPNG_BOM_SWAPPED = 0x4D3C2B1A  # the byte-order magic read in the other byte order
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
                    if bom not in (PCAPNG_BOM, PCAPNG_BOM_SWAPPED):
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
