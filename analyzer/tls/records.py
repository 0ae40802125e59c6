"""Record framing: the 5-byte TLS record header and the receive buffer records are cut from.

Role: decide whether bytes at an offset form a valid record header (RFC 8446 5.1) or an SSLv2-format
ClientHello header (RFC 5246 E.2), and hold not-yet-consumed input with O(1) amortised consumption.
Must not: interpret record bodies, track handshake state, or wait for a whole record when the caller
only wants to skip it -- ``RecordBuffer.skip`` drops bytes as they arrive so application data never
accumulates.
"""

from __future__ import annotations

from analyzer.errors import TLSParseError
from analyzer.tls.constants import (CHANGE_CIPHER_SPEC, HEARTBEAT, MAX_RECORD_LEN, MAX_RECORD_VERSION,
                                    MIN_RECORD_VERSION, RECORD_HEADER_LEN)

SSLV2_HEADER_LEN = 2  # 2-byte form, high bit set, no padding (RFC 6101 E.1 / SSLv2 spec 1.2)
SSLV2_MSG_CLIENT_HELLO = 1
# RFC 5246 E.2 / RFC 6101 E.1: "version" in an SSLv2-format hello is the highest version offered.
SSLV2_HELLO_VERSIONS = frozenset((0x0002, 0x0300, 0x0301, 0x0302, 0x0303))


def is_record_header(buf, off: int = 0) -> bool:
    """True if ``buf[off:off+5]`` is a plausible TLSPlaintext/TLSCiphertext header.

    Type 20..24, version 0x0300..0x0304, length 1..2^14+2048 (RFC 5246 6.2.3). Zero is excluded: only
    plaintext application data may be empty (RFC 8446 5.1), nobody sends that, and encrypted records
    always carry a MAC or tag -- while allowing it would let runs of zero bytes pass for TLS.
    """
    if len(buf) < off + RECORD_HEADER_LEN:
        return False
    length = (buf[off + 3] << 8) | buf[off + 4]
    return (CHANGE_CIPHER_SPEC <= buf[off] <= HEARTBEAT and buf[off + 1] == 3
            and buf[off + 2] <= MAX_RECORD_VERSION & 0xFF and 0 < length <= MAX_RECORD_LEN)


def parse_record_header(buf, off: int = 0) -> tuple[int, int, int]:
    """(content_type, legacy_record_version, length) of the header at ``off``, or raise TLSParseError.

    The caller guarantees 5 bytes; the message is meant for a human reading a flow's ``reason``.
    """
    ctype = buf[off]
    version = (buf[off + 1] << 8) | buf[off + 2]
    length = (buf[off + 3] << 8) | buf[off + 4]
    if not (CHANGE_CIPHER_SPEC <= ctype <= HEARTBEAT
            and MIN_RECORD_VERSION <= version <= MAX_RECORD_VERSION):
        raise TLSParseError(f"not a TLS record: type 0x{ctype:02x} version 0x{version:04x}")
    if not 0 < length <= MAX_RECORD_LEN:
        raise TLSParseError(f"TLS record length {length} outside 1..{MAX_RECORD_LEN} (type {ctype})")
    return ctype, version, length


def sslv2_hello_length(buf) -> int | None:
    """Message length of an SSLv2-format ClientHello whose first 5 bytes are ``buf``, else None.

    RFC 5246 E.2: msg_length has its high bit set, then msg_type 1 and the offered version.
    """
    if not buf[0] & 0x80 or buf[2] != SSLV2_MSG_CLIENT_HELLO:
        return None
    if (buf[3] << 8) | buf[4] not in SSLV2_HELLO_VERSIONS:
        return None
    return ((buf[0] & 0x7F) << 8) | buf[1]


class RecordBuffer:
    """Input bytes not yet consumed, with a read offset so consuming a prefix does not copy the rest.

    The consumed prefix is dropped on the next ``feed`` (h11's ``ReceiveBuffer`` does the same), so
    memory is the unconsumed tail plus at most one chunk.
    """

    __slots__ = ("_data", "_start", "consumed")

    def __init__(self) -> None:
        self._data = bytearray()
        self._start = 0
        self.consumed = 0  # bytes taken or skipped since the start of the stream

    def __len__(self) -> int:
        return len(self._data) - self._start

    def feed(self, data) -> None:
        if self._start:
            del self._data[:self._start]
            self._start = 0
        self._data += data

    def peek(self, n: int) -> bytes | None:
        """The next ``n`` bytes without consuming them, or None if fewer are buffered."""
        if len(self._data) - self._start < n:
            return None
        return bytes(self._data[self._start:self._start + n])

    def take(self, n: int) -> bytes | None:
        chunk = self.peek(n)
        if chunk is not None:
            self._start += n
            self.consumed += n
        return chunk

    def skip(self, n: int) -> int:
        """Drop up to ``n`` buffered bytes; returns how many were dropped."""
        n = min(n, len(self._data) - self._start)
        self._start += n
        self.consumed += n
        if self._start == len(self._data):  # nothing left: release the memory now
            self._data.clear()
            self._start = 0
        return n

    def clear(self) -> None:
        self._data.clear()
        self._start = 0
