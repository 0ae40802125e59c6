"""Where capture bytes come from: a path, ``-`` (stdin), a pipe or a file object, plain or gzip.

Role: open a source once (``open_source``) and read it through one sliding window (``Window``) that
the format readers (``pcap.py``, ``pcapng.py``) parse in place.

Rules:
  1. Memory is bounded: the stream is read in windows of ``WINDOW`` bytes (never mmap'd whole, never
     read whole), so a 1 GB capture costs one window plus the largest block.
  2. Nothing is lost from a stream that cannot seek: its first bytes are looked at (gzip and format
     magic) and then replayed.
  3. A path we cannot open is a ``CaptureFormatError`` (one line, no traceback); a read that fails
     after that is ``Damage``, which the reader turns into a warning after what was read before it.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import zlib
from typing import BinaryIO

from ..errors import CaptureFormatError

WINDOW = 4 * 1024 * 1024  # bytes read per window; the largest block may extend it once
GZIP_STEP = 16 * 1024  # decompressed bytes per read from a gzip stream
GZIP_MAGIC = b"\x1f\x8b"  # RFC 1952 ID1 ID2


class Damage(Exception):
    """The stream broke after its header.  The reader turns it into a warning; it never leaks."""


class Window:
    """A sliding window over a binary stream: ``need(n)`` makes ``buf[pos:pos+n]`` valid if the stream has it.

    One ``bytearray`` is reused and filled with ``readinto`` (no per-window allocation, no page faults
    on fresh memory), so the bytes of a batch are valid only until the next batch is asked for: the
    flow table copies what it keeps.
    """

    __slots__ = ("f", "buf", "pos", "end", "eof", "consumed", "damage", "seekable")

    def __init__(self, f: BinaryIO):
        self.f = f
        self.buf = bytearray(WINDOW)
        self.pos = 0
        self.end = 0  # bytes of buf holding data
        self.eof = False
        self.consumed = 0  # bytes of the stream before buf[0]
        self.damage = ""  # why the stream ended early (a read error), reported once its bytes are used
        try:
            self.seekable = f.seekable()
        except (OSError, ValueError):
            self.seekable = False

    @property
    def offset(self) -> int:
        """Stream offset of ``buf[pos]``."""
        return self.consumed + self.pos

    def batch(self, stop: int) -> tuple[bytearray, int, int, int]:
        """The next batch's locals for a format's loop: buffer, position, end of data, and ``stop`` (a
        stream offset) as a buffer offset."""
        return self.buf, self.pos, self.end, stop - self.consumed

    def jump(self, offset: int) -> None:
        """Continue reading at stream ``offset`` (a seekable file only)."""
        self.f.seek(offset)
        self.consumed, self.pos, self.end, self.eof = offset, 0, 0, False

    def need(self, n: int) -> bool:
        """Make ``buf[pos:pos+n]`` available; False when the stream ends first."""
        if self.pos + n <= self.end:
            return True
        if self.eof:
            return False
        rest = self.end - self.pos
        size = max(WINDOW, n)
        if len(self.buf) < size:
            grown = bytearray(size)
            grown[:rest] = self.buf[self.pos:self.end]
            self.buf = grown
        elif rest:
            self.buf[:rest] = self.buf[self.pos:self.end]
        self.consumed += self.pos
        self.pos, self.end = 0, rest
        view = memoryview(self.buf)
        try:
            while self.end < size:
                try:
                    got = _readinto(self.f, view[self.end:size])
                except Damage as exc:  # keep what was read; the reader reports the damage after it
                    self.damage, got = str(exc), 0
                if not got:
                    self.eof = True
                    break
                self.end += got
                # A file fills the window (fewer, larger reads); a pipe -- ``tshark -w - |`` -- is
                # processed as soon as the bytes asked for are there, so memory and progress follow
                # the capture as it runs.
                if self.end >= n and (self.end >= size // 2 or not self.seekable):
                    break
        finally:
            view.release()
        return n <= self.end


def _readinto(f: BinaryIO, view: memoryview) -> int:
    if isinstance(f, gzip.GzipFile):
        # Small steps: a truncated gzip raises on the read that hits the end, and whatever that read
        # had decompressed is lost with it -- so lose at most one small step, not a whole window.
        try:
            chunk = f.read1(min(len(view), GZIP_STEP))
        except (OSError, EOFError, zlib.error) as exc:
            raise Damage(f"read error: {exc}") from None
        view[:len(chunk)] = chunk
        return len(chunk)
    try:
        return f.readinto(view) or 0  # type: ignore[attr-defined]
    except OSError as exc:
        raise Damage(f"read error: {exc.strerror or exc}") from None


def open_source(source: str | os.PathLike | BinaryIO) -> tuple[BinaryIO, str, bool]:
    """Open a path, ``-`` (stdin) or a binary file object; undo gzip by magic.  Returns (stream, name, gz)."""
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if name == "-":
            raw: BinaryIO = sys.stdin.buffer
            name = "<stdin>"
        else:
            raw = _open_path(name)
    else:
        raw, name = source, getattr(source, "name", "<stream>")
    try:
        head, stream = _peek(raw, 2)
    except OSError as exc:
        if raw is not sys.stdin.buffer:
            raw.close()
        raise CaptureFormatError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb"), str(name), True  # type: ignore[return-value]
    return stream, str(name), False


def _open_path(name: str) -> BinaryIO:
    try:
        if os.path.isdir(name):
            raise CaptureFormatError(f"{name}: is a directory, not a capture file")
        return open(name, "rb")  # noqa: SIM115 - closed by the caller via CaptureReader
    except OSError as exc:  # missing, unreadable, or under a directory we may not enter
        raise CaptureFormatError(f"{name}: cannot open: {exc.strerror or exc}") from None


def _peek(raw: BinaryIO, n: int) -> tuple[bytes, BinaryIO]:
    """Look at the first n bytes without losing them, for streams that cannot seek (stdin, pipes)."""
    if hasattr(raw, "peek"):
        try:
            return raw.peek(n)[:n], raw  # type: ignore[attr-defined]
        except ValueError:
            pass
    if _seekable(raw):
        at = raw.tell()
        head = raw.read(n)
        raw.seek(at)
        return head, raw
    head = raw.read(n)
    return head, _Prefixed(head, raw)


def _seekable(raw: BinaryIO) -> bool:
    try:
        return raw.seekable()
    except (AttributeError, ValueError, OSError):
        return False  # type: ignore[return-value]


class _Prefixed(io.RawIOBase):
    """A stream that replays ``head`` before the rest of ``raw``."""

    def __init__(self, head: bytes, raw: BinaryIO):
        self.head, self.raw = head, raw

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head[:n] if n >= 0 else self.head, self.head[n:] if n >= 0 else b""
            return out + (self.raw.read(n - len(out)) if n < 0 or len(out) < n else b"")
        return self.raw.read(n)

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
