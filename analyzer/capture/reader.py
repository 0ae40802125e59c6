"""Capture files -> batches of frames: the public reader, which picks the format by its magic.

Role: ``CaptureReader`` opens a source (``source.py``: path, ``-``, pipe, gzip), checks the magic and
hands the window to ``pcap.py`` or ``pcapng.py``, which yield frame records
``(ts, linktype, off, caplen, wirelen, iface)`` pointing into the window buffer.  Frames come in
batches (one per window) so the per-packet cost stays a tuple, not a generator step.

Rules:
  1. Memory is bounded by one window plus the largest block (``source.Window``).
  2. This layer knows nothing about IP or TCP; ``decode.py`` does.
  3. Damage is not an exception once the file header was read: a truncated or corrupt tail, a read
     error, or a long run of records without captured bytes (``frames.EMPTY_RUN``: 4 GiB of zeros
     would otherwise be hundreds of millions of empty packets) stops the read and is reported in
     ``CaptureInfo.warnings``; only a file we cannot read at all raises ``CaptureFormatError``.
  4. A byte range (``start``/``stop``, for ``analyzer.parallel``) reads the file's header, jumps to the
     first record at or after ``start`` -- found by a chain of ``RESYNC_CHAIN`` well-formed record
     headers -- and stops before the first record at or after ``stop``.  A resync is a guess; the
     caller checks ``start_offset`` against the previous range's ``bytes_read`` and ``section``.
  5. Timestamps out of ``frames.TS_MIN..TS_MAX`` are clamped, counted and reported once as a warning.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO, Callable, Iterator

from ..errors import CaptureFormatError
from .frames import (  # noqa: F401 - re-exported: the names other modules import from here
    FRAME_FIELDS,
    MAX_BLOCK,
    TS_MAX,
    TS_MIN,
    CaptureInfo,
    Frame,
    FrameBatch,
    Interface,
    clamp_times,
    clamped_warning,
    empty_run_end,
)
from .pcap import PCAP_MAGIC, iter_pcap
from .pcapng import (  # noqa: F401 - re-exported
    BT_EPB,
    BT_IDB,
    BT_ISB,
    BT_OPB,
    BT_SHB,
    BT_SPB,
    PCAPNG_BOM,
    PCAPNG_SHB,
    iter_pcapng,
)
from .source import GZIP_MAGIC, WINDOW, Damage, Window, open_source  # noqa: F401 - re-exported

MAX_FILE = 1 << 62  # "no stop"
RESYNC_CHAIN = 16  # consecutive well-formed record headers that mark a record boundary
RESYNC_SPAN = 4 * 1024 * 1024  # how far past ``start`` a boundary is looked for


class CaptureReader:
    """Iterate a capture as batches of frames.  Use as a context manager.

    >>> with CaptureReader("x.pcap") as r:            # doctest: +SKIP
    ...     for buf, frames in r.iter_batches(): ...
    """

    def __init__(self, source: str | os.PathLike | BinaryIO, start: int = 0, stop: int | None = None):
        self.start = start  # a byte range of a plain file (Rule 4)
        self.stop = MAX_FILE if stop is None else stop
        self.stream, name, gz = open_source(source)
        self.info = CaptureInfo(path=name, compressed=gz)
        self.win = Window(self.stream)
        self._empty_run = 0  # records without captured bytes the last batch ended with (Rule 3)
        try:
            self.win.need(4)
            if self.win.end < 4 and self.win.damage:
                raise CaptureFormatError(f"{name}: {self.win.damage}")
            if self.win.end < 4:
                raise CaptureFormatError(f"{name}: empty or too short to be a capture ({self.win.end} bytes)")
            magic = bytes(self.win.buf[:4])
            if magic in PCAP_MAGIC:
                self.info.format = "pcap"
            elif magic == PCAPNG_SHB:
                self.info.format = "pcapng"
            else:
                raise CaptureFormatError(f"{name}: not a pcap or pcapng capture (magic {magic.hex()})")
        except CaptureFormatError:
            self.close()
            raise

    def __enter__(self) -> "CaptureReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()

    def iter_batches(self) -> Iterator[tuple[bytes, FrameBatch]]:
        """Yield ``(buf, frames)``; ``frames`` iterates ``Frame`` tuples, whose bytes are ``buf[off:off+caplen]``."""
        batches = iter_pcap(self) if self.info.format == "pcap" else iter_pcapng(self)
        try:
            yield from batches
        except Damage as exc:
            self._warn(str(exc))
        finally:
            self.info.bytes_read = self.win.offset  # where reading stopped
            if self.info.clamped:
                self.info.warnings.append(clamped_warning(self.info.path, self.info.clamped))

    def _warn(self, msg: str) -> None:
        self.info.truncated = True
        self.info.warnings.append(f"{self.info.path}: {msg} after {self.info.frames} frames; analysed up to the damage")

    def emit(self, buf, flat: list) -> Iterator[tuple[bytes, FrameBatch]]:
        """Hand out one batch (the formats call this once per window); Rules 3 and 5 are kept here."""
        if not flat:
            return
        cut, self._empty_run = empty_run_end(flat, self._empty_run)
        if cut >= 0:
            del flat[cut:]
        self.info.clamped += clamp_times(flat) if flat else 0
        if flat:
            batch = FrameBatch(flat)
            self.info.frames += len(batch)
            yield buf, batch
        if cut >= 0:
            raise Damage(f"{self._empty_run} records in a row without a captured byte (zeros, not packets)")

    def resync(self, step: int, valid: Callable[[bytes, int, int], int]) -> None:
        """Rule 4: jump to the first offset >= ``start`` (a multiple of ``step``) where ``RESYNC_CHAIN``
        records in a row pass ``valid(buf, pos, end) -> next pos | -1``, or where the file ends after fewer."""
        w = self.win
        start = self.start + (-self.start) % step
        w.jump(start)
        w.need(RESYNC_SPAN + 2 * RESYNC_CHAIN * 0x10000)
        buf, end = w.buf, w.end
        if end <= RESYNC_SPAN and w.eof:
            w.pos = end  # no record starts here if none is found before the file ends
        for p in range(0, min(end, RESYNC_SPAN), step):
            q, n = p, 0
            while n < RESYNC_CHAIN and q != end:
                q = valid(buf, q, end)
                if q < 0:
                    break
                n += 1
            if q >= 0 and (n == RESYNC_CHAIN or (q == end and w.eof)):
                w.pos = p
                break
        else:
            if w.pos != end:
                raise CaptureFormatError(f"{self.info.path}: no record boundary found after offset {self.start}")
        self.info.start_offset = w.offset
