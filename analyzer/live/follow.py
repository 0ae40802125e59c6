"""Following a growing capture file (and dumpcap's ring files after it) as one stream.

Role: ``Follower`` turns the file being written into a non-seekable binary stream that waits for bytes
while the writer lives, so ``capture.reader.CaptureReader`` reads it like a pipe.  Every wait is a
bounded sleep (``POLL_S``, ``MAX_RUN_S``); nothing spins.
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path
from typing import Callable

from .tool import ring_files_of

log = logging.getLogger(__name__)

POLL_S = 0.05  # sleep between looks at a file that has not grown
MAX_RUN_S = 7 * 24 * 3600.0  # hard bound on any run without --seconds


class Follower(io.RawIOBase):
    """The capture file being written (and the ring files after it) as one non-seekable binary stream.

    ``readinto``/``read`` return what is there; at the end of what is written they wait (``POLL_S``
    sleeps, calling ``idle`` between them) while ``alive()`` is true, and return ``0``/``b""`` once the
    writer has exited and everything is read -- or when ``deadline`` (``time.monotonic()``) has passed.
    Ring files are pcapng sections in a row, so ``CaptureReader`` reads them as one multi-section file.
    ``seekable()`` is False: the reader hands out each batch as soon as its bytes are there.
    """

    def __init__(self, first: Path, alive: Callable[[], bool], ring_of: Path | None = None,
                 idle: Callable[[], None] | None = None, deadline: float | None = None, poll_s: float = POLL_S):
        super().__init__()
        self.path = Path(first)
        self.name = str(first)
        self.alive, self.ring_of, self.idle = alive, ring_of, idle
        self.deadline = time.monotonic() + MAX_RUN_S if deadline is None else deadline
        self.poll_s = poll_s
        self.files: list[Path] = [self.path]  # every file opened, in order
        self._f = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._pending = bytearray()  # bytes peek() looked at, served first

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def peek(self, n: int = 1) -> bytes:
        """Up to ``n`` bytes without consuming them (waits for them like ``read``)."""
        while len(self._pending) < n:
            chunk = self._read_some(n - len(self._pending))
            if not chunk:
                break
            self._pending += chunk
        return bytes(self._pending)

    def readinto(self, b) -> int:
        view = memoryview(b).cast("B")
        if self._pending:
            n = min(len(view), len(self._pending))
            view[:n] = self._pending[:n]
            del self._pending[:n]
            return n
        return self._wait(lambda: self._f.readinto(view) or 0)

    def _read_some(self, n: int) -> bytes:
        got = bytearray(n)
        k = self._wait(lambda: self._f.readinto(got) or 0)
        return bytes(got[:k])

    def _wait(self, read: Callable[[], int]) -> int:
        while True:
            got = read()
            if got:
                return got
            if self._next_file():
                continue
            if not self.alive():
                got = read()  # what the writer wrote between our last read and its exit
                if got or not self._next_file():
                    return got
                continue
            if time.monotonic() > self.deadline:
                log.warning("%s: still growing at the deadline; stopped following it", self.path)
                return 0
            if self.idle is not None:
                self.idle()
            time.sleep(self.poll_s)

    def _next_file(self) -> bool:
        """Move to the next ring file once dumpcap has started it (it closes the old one first)."""
        if self.ring_of is None:
            return False
        later = [p for p in ring_files_of(self.ring_of) if p.name > self.path.name]
        if not later:
            return False
        if self._f.tell() < os.fstat(self._f.fileno()).st_size:
            return True  # the old file's last bytes first
        self._f.close()
        self.path = later[0]
        self.files.append(later[0])
        self._f = open(later[0], "rb", buffering=0)  # noqa: SIM115
        return True

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()
