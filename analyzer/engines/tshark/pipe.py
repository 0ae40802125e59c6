"""A long capture byte stream through a chain of restarted ``tshark -r -`` processes.

tshark's own memory grows with every frame it reads (pyshark#141, #607), so on a live capture a fresh
tshark takes over every ``RESTART_PACKETS`` packets / ``RESTART_BYTES`` bytes, at a block boundary
(``capture.blocks.BlockSplitter``), and the ``Aggregator`` carries open streams across the restart.
"""

from __future__ import annotations

import logging
import subprocess
import threading

from ...capture.blocks import BlockSplitter
from .aggregator import Aggregator

log = logging.getLogger(__name__)

# A live tshark is replaced after this many packets or bytes: tshark grows with every frame it keeps
# state for, and a restart costs the loading of its dissectors again, so the bound trades one for the
# other (``benchmarks/live_rss.py`` measures both).  The byte bound is for bulk traffic (full-size frames).
RESTART_PACKETS = 20_000
RESTART_BYTES = 32 << 20


class TsharkPipe:
    """A long capture byte stream through a chain of ``tshark -r -`` processes into one ``Aggregator``.

    tshark keeps state for every frame of the file it reads, so on a live capture its memory grows for as
    long as it runs (pyshark#141, #607).  Here, before the first packet after ``max_packets`` packets or
    ``max_bytes`` bytes (defaults ``RESTART_PACKETS``, ``RESTART_BYTES``), at a block boundary
    (``BlockSplitter``), the running tshark's stdin is closed -- it reads to the end and exits -- and a
    fresh tshark is started and fed the saved header blocks, then the packets that follow.  ``restarts``
    counts them.

    Rules:
      1. Lines reach the Aggregator in packet order: each tshark's reader thread first waits for the one
         before it to end, then calls ``Aggregator.new_generation()`` (streams carry over by their ends).
      2. Every Aggregator call is made under ``lock`` (the caller finishes the Aggregator under it too).
      3. A tshark that dies early loses packets until the next restart (logged), never the run.
    """

    def __init__(self, agg: Aggregator, cmd: list[str], lock: threading.Lock | None = None,
                 max_packets: int | None = None, max_bytes: int | None = None):
        self.agg, self.cmd = agg, cmd
        self.lock = lock or threading.Lock()
        self.max_packets = max_packets or RESTART_PACKETS
        self.max_bytes = max_bytes or RESTART_BYTES
        self.splitter = BlockSplitter()
        self.restarts = 0
        self.proc: subprocess.Popen | None = None
        self.reader: threading.Thread | None = None
        self._packets = self._bytes = 0  # fed to the current tshark
        self._start(b"")

    def feed(self, data: bytes) -> None:
        """Hand over the next bytes of the capture (any chunking); restarts tshark when it is due."""
        run: list[bytes] = []
        for block, is_packet in self.splitter.feed(data):
            if is_packet:
                if (self._packets >= self.max_packets or self._bytes >= self.max_bytes) and self.splitter.header:
                    self._write(b"".join(run))
                    run = []
                    self._restart()
                self._packets += 1
            self._bytes += len(block)
            run.append(block)
        if run:
            self._write(b"".join(run))

    def close(self, timeout: float = 120.0) -> None:
        """End of the stream: the last tshark reads what is left and exits; waits for its last line."""
        self._write(bytes(self.splitter.buf))  # a cut last block: tshark reports it as tshark does for a file
        self._close_stdin()
        assert self.reader is not None
        self.reader.join(timeout)
        if self.reader.is_alive():
            log.warning("tshark did not finish within %.0f s; stopped it", timeout)
            self.proc.kill()  # type: ignore[union-attr]
            self.reader.join(10)

    def _restart(self) -> None:
        log.info("tshark: restarting after %d packets, %d bytes (restart %d), to bound its memory",
                 self._packets, self._bytes, self.restarts + 1)
        self._close_stdin()
        self.restarts += 1
        self._start(self.splitter.header)

    def _start(self, header: bytes) -> None:
        log.debug("running %s", " ".join(self.cmd))
        proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        reader = threading.Thread(target=self._read, args=(proc, self.reader), daemon=True,
                                  name=f"tshark-{self.restarts}")
        self.proc, self.reader = proc, reader
        self._packets = self._bytes = 0
        self._dead_logged = False
        reader.start()
        if header:
            self._write(header)
            self._bytes += len(header)

    def _read(self, proc: subprocess.Popen, before: threading.Thread | None) -> None:
        if before is not None:
            before.join()
            with self.lock:
                self.agg.new_generation()
        done = False
        try:
            for raw in proc.stdout:  # type: ignore[union-attr]
                line = raw.decode("utf-8", "backslashreplace")
                with self.lock:
                    self.agg.feed(line)
            done = True
        finally:
            if not done:
                proc.kill()  # the loop above failed: do not leave tshark blocked on a full pipe
            proc.stdout.close()  # type: ignore[union-attr]
            proc.wait()

    def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.proc.stdin.write(data)  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError, ValueError):
            if not self._dead_logged:
                self._dead_logged = True
                log.warning("tshark exited early (restart %d); packets are lost until the next restart",
                            self.restarts)

    def _close_stdin(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass
