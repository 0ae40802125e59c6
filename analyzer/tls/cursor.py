"""Bounds-checked reader over one complete TLS structure (a handshake body, an extension's data).

Role: every length read from the wire goes through here, so a short or lying length raises
``TLSParseError`` instead of silently slicing short -- the gap dpkt's ``parse_variable_array`` leaves.
Must not: buffer, wait for more data (callers hand it *complete* messages), or know TLS semantics
beyond the presentation language of RFC 8446 3 (uintN, opaque vectors with a length prefix).
"""

from __future__ import annotations

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

    def _take(self, n: int) -> bytes:
        end = self._pos + n
        if n < 0 or end > len(self._data):
            raise TLSParseError(
                f"truncated {self.what}: need {n} bytes at offset {self._pos}, have {self.remaining}")
        chunk = self._data[self._pos:end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self._take(3), "big")

    def bytes(self, n: int) -> bytes:
        return self._take(n)

    def vector(self, len_size: int, min_len: int = 0) -> bytes:
        """``opaque x<min..2^(8*len_size)-1>``: a ``len_size``-byte big-endian length, then that many bytes.

        RFC 8446 3.4: the length prefix counts bytes, not elements; ``min_len`` enforces the floor
        the RFC declares (e.g. ``CipherSuite cipher_suites<2..2^16-2>``).
        """
        n = int.from_bytes(self._take(len_size), "big")
        if n < min_len:
            raise TLSParseError(f"{self.what}: vector of {n} bytes, at least {min_len} required")
        return self._take(n)

    def u16_list(self, len_size: int, min_len: int = 0) -> tuple[int, ...]:
        """A vector of uint16 values (cipher suites, groups, versions); an odd byte count is malformed."""
        raw = self.vector(len_size, min_len)
        if len(raw) % 2:
            raise TLSParseError(f"{self.what}: list of uint16 has odd length {len(raw)}")
        return tuple(int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2))

    def sub(self, len_size: int, what: str, min_len: int = 0) -> Cursor:
        """A new cursor over the next vector, for nested structures."""
        return Cursor(self.vector(len_size, min_len), what)

    def expect_end(self) -> None:
        """RFC 8446 4: a structure followed by stray bytes is malformed (decode_error)."""
        if not self.at_end:
            raise TLSParseError(f"{self.what}: {self.remaining} unexpected trailing bytes")
