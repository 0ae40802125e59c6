"""Bounds-checked reader over one complete TLS structure (a handshake body, an extension's data).

Role: every length read from the wire goes through here, so a short or lying length raises
``TLSParseError`` instead of silently slicing short -- the gap dpkt's ``parse_variable_array`` leaves.
Must not: buffer, wait for more data (callers hand it *complete* messages), or know TLS semantics
beyond the presentation language of RFC 8446 3 (uintN, opaque vectors with a length prefix).
"""

from __future__ import annotations

import struct

from analyzer.errors import TLSParseError


class Cursor:
    """A read position over immutable bytes; ``what`` names the structure in error messages."""

    __slots__ = ("_data", "_pos", "what")

    def __init__(self, data: bytes, what: str = "message") -> None:
        self._data = bytes(data)
        self._pos = 0
        self.what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    @property
    def at_end(self) -> bool:
        return self._pos >= len(self._data)

    def _short(self, n: int) -> TLSParseError:
        return TLSParseError(
            f"truncated {self.what}: need {n} bytes at offset {self._pos}, have {self.remaining}")

    # The readers below are written out rather than built on one ``_take``: a ClientHello is a few
    # hundred reads, and a call layer per read doubled the parse time (measured in benchmarks/).
    def _take(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        if n < 0 or end > len(self._data):
            raise self._short(n)
        self._pos = end
        return self._data[pos:end]

    def u8(self) -> int:
        pos = self._pos
        if pos >= len(self._data):
            raise self._short(1)
        self._pos = pos + 1
        return self._data[pos]

    def u16(self) -> int:
        pos = self._pos
        if pos + 2 > len(self._data):
            raise self._short(2)
        self._pos = pos + 2
        data = self._data
        return (data[pos] << 8) | data[pos + 1]

    def u24(self) -> int:
        return int.from_bytes(self._take(3), "big")

    def bytes(self, n: int) -> bytes:
        return self._take(n)

    def vector(self, len_size: int, min_len: int = 0) -> bytes:
        """``opaque x<min..2^(8*len_size)-1>``: a ``len_size``-byte big-endian length, then that many bytes.

        RFC 8446 3.4: the length prefix counts bytes, not elements; ``min_len`` enforces the floor
        the RFC declares (e.g. ``CipherSuite cipher_suites<2..2^16-2>``).
        """
        data, pos = self._data, self._pos
        start = pos + len_size
        if start > len(data):
            raise self._short(len_size)
        n = data[pos] if len_size == 1 else int.from_bytes(data[pos:start], "big")
        if n < min_len:
            raise TLSParseError(f"{self.what}: vector of {n} bytes, at least {min_len} required")
        end = start + n
        if end > len(data):
            self._pos = start
            raise self._short(n)
        self._pos = end
        return data[start:end]

    def u16_list(self, len_size: int, min_len: int = 0) -> tuple[int, ...]:
        """A vector of uint16 values (cipher suites, groups, versions); an odd byte count is malformed."""
        raw = self.vector(len_size, min_len)
        if len(raw) % 2:
            raise TLSParseError(f"{self.what}: list of uint16 has odd length {len(raw)}")
        return struct.unpack(f">{len(raw) // 2}H", raw)

    def sub(self, len_size: int, what: str, min_len: int = 0) -> Cursor:
        """A new cursor over the next vector, for nested structures."""
        return Cursor(self.vector(len_size, min_len), what)

    def expect_end(self) -> None:
        """RFC 8446 4: a structure followed by stray bytes is malformed (decode_error)."""
        if not self.at_end:
            raise TLSParseError(f"{self.what}: {self.remaining} unexpected trailing bytes")
