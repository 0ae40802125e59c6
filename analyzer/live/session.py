"""One live run: start the capture process, follow its file into a sink, stop it in order, report.

Role: ``LiveCapture`` (the process and the stop rules: ``seconds``, ``packets``, SIGINT/SIGTERM,
``stop()``) and ``run_live``, the terminal side shared by ``mtls-analyzer capture`` and the sidecar.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import AnalyzerError, BackendUnavailable
from ..report.render import table_width
from .follow import MAX_RUN_S, POLL_S, Follower
from .sinks import NativeSink, TsharkSink
from .tool import CAPS_HINT, NO_PERMISSION, START_TIMEOUT_S, STOP_TIMEOUT_S, capture_command, capture_tool, last_error, ring_files_of
from .view import TABLE_REFRESH_S, LiveTable, PairSummary, local_addresses, summary_lines, tap_line, terminal_rows

log = logging.getLogger(__name__)


@dataclass
class LiveResult:
    files: list[Path]
    command: list[str]
    output: Path = Path()
    packets: int = 0  # packets classified so far
    stopped_by: str = ""  # seconds | packets | signal | stop | exited
    interrupted: bool = False  # the signal was SIGINT (Ctrl-C): the command exits 130 after its report
    summary: PairSummary = field(default_factory=PairSummary)  # per host pair counts


def default_output(directory: Path = Path("captures")) -> Path:
    return directory / time.strftime("live-%Y%m%dT%H%M%S.pcapng", time.gmtime())


class LiveCapture:
    """Start the capture process, classify while it writes, stop cleanly.  ``run()`` blocks until done."""

    def __init__(self, output: Path, interface: str = "any", bpf: str | None = None, seconds: float | None = None,
                 packets: int | None = None, ring_mb: int | None = None, ring_files: int | None = None,
                 decode_as=(), engine: str = "native", on_flow: Callable[[dict], None] | None = None,
                 on_tick: Callable[[LiveResult], None] | None = None, snaplen: int | None = None):
        self.output = Path(output)
        self.ring = bool(ring_mb or ring_files)
        self.tool = capture_tool()
        self.command = capture_command(self.tool, self.output, interface, bpf, seconds, packets, ring_mb, ring_files,
                                       snaplen)
        self.seconds = seconds
        self.decode_as = decode_as
        self.engine = engine
        self.on_flow = on_flow
        self.on_tick = on_tick
        self._stop = threading.Event()
        self._stopped_by = ""
        self.interrupted = False
        self.proc: subprocess.Popen | None = None

    def stop(self, why: str = "stop") -> None:
        """Ask the capture to end (safe from a signal handler or another thread)."""
        if not self._stopped_by:
            self._stopped_by = why
        self._stop.set()

    def run(self) -> LiveResult:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        if not self.ring:
            self.output.unlink(missing_ok=True)
        log.info("capture: %s", " ".join(self.command))
        # Own session: a Ctrl-C on the terminal reaches us, and we stop the capture process in order.
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        err: list[bytes] = []
        drain = threading.Thread(target=lambda: err.extend(self.proc.stderr), daemon=True)  # type: ignore[union-attr,arg-type]
        drain.start()
        try:
            first = self._wait_for_file(err)
            sink = (TsharkSink if self.engine == "tshark" else NativeSink)(self.decode_as, self.on_flow)
            result = LiveResult([], self.command, self.output, summary=sink.summary)
            deadline = time.monotonic() + min(MAX_RUN_S, (self.seconds or MAX_RUN_S) + STOP_TIMEOUT_S)

            def supervise() -> None:
                """Between reads and batches: stop the capture when asked or overdue; tick the view."""
                if (self._stop.is_set() or time.monotonic() > deadline) and self.proc.poll() is None:  # type: ignore[union-attr]
                    self._signal_capture()
                if self.on_tick is not None:
                    result.packets = sink.packets
                    self.on_tick(result)

            def idle() -> None:
                sink.idle()
                supervise()

            stream = Follower(first, lambda: self.proc.poll() is None, self.output if self.ring else None,  # type: ignore[union-attr]
                              idle=idle, deadline=deadline + 2 * STOP_TIMEOUT_S)
            sink.run(stream, supervise)
        finally:
            if self.proc.poll() is None:
                self._signal_capture()
            drain.join(timeout=5)
        if not self._stopped_by:
            self._stopped_by = "seconds" if self.seconds else "exited"
        result.stopped_by = self._stopped_by
        result.interrupted = self.interrupted
        result.packets = sink.packets
        result.files = [p for p in (ring_files_of(self.output) if self.ring else [self.output]) if p.exists()]
        stderr = b"".join(err).decode("utf-8", "replace")
        if self.proc.returncode not in (0, -signal.SIGINT, -signal.SIGTERM) and not result.files:
            raise AnalyzerError(f"{self.tool[0]} failed: {last_error(stderr)}")
        for p in result.files:
            try:
                p.chmod(0o644)  # dumpcap creates 0600 files; the report and capinfos may run as another user
            except OSError:
                pass
        return result

    def _wait_for_file(self, err: list[bytes]) -> Path:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            files = ring_files_of(self.output) if self.ring else ([self.output] if self.output.exists() else [])
            if files and files[0].stat().st_size > 0:
                return files[0]
            if self.proc.poll() is not None:  # type: ignore[union-attr]
                time.sleep(0.1)
                text = b"".join(err).decode("utf-8", "replace")
                if NO_PERMISSION.search(text):
                    raise BackendUnavailable(f"{self.tool[0]} may not capture on this interface: {CAPS_HINT}")
                raise AnalyzerError(f"{self.tool[0]} exited before capturing: {last_error(text)}")
            if self._stop.is_set():
                self._signal_capture()
            time.sleep(POLL_S)
        self._signal_capture()
        raise AnalyzerError(f"{self.tool[0]} wrote no capture within {START_TIMEOUT_S:.0f} s: "
                            f"{last_error(b''.join(err).decode('utf-8', 'replace'))}")

    def _signal_capture(self) -> None:
        """SIGINT lets dumpcap/tshark write the last blocks; SIGKILL only if it does not exit in time."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored SIGINT; killing it", self.tool[0])
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def install_signal_handlers(live: LiveCapture) -> Callable[[], None]:
    """SIGINT/SIGTERM stop the capture in order; returns a function restoring the old handlers."""
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, _frame):
        live.interrupted = live.interrupted or signum == signal.SIGINT
        live.stop("signal")

    for sig in old:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)
    return restore


def run_live(output: Path, interface: str, bpf: str | None, seconds: float | None, packets: int | None,
             ring_mb: int | None, ring_files: int | None, decode_as, engine: str, follow: bool,
             include_localhost: bool, quiet: bool, out=None, err=None, wide: bool = False) -> "LiveResult":
    """The terminal side of a live capture, shared by ``mtls-analyzer capture`` and the sidecar .pyz:
    ``--follow`` tap lines on ``out``; otherwise, on a terminal, the live table (both ends a terminal)
    or one status line (stderr only) on ``err``; signal handling; the screen cleaned up at the end."""
    out = out or sys.stdout
    err = err or sys.stderr
    local = local_addresses()
    width = table_width(wide, terminal=out.isatty())  # of the --follow lines
    tty = err.isatty() and not quiet and not follow
    table = LiveTable(err) if tty and out.isatty() else None
    started = time.monotonic()
    last = [0.0]

    def on_flow(row: dict) -> None:
        if follow and (include_localhost or not row["localhost"]):
            print(tap_line(row, local, width), file=out, flush=True)

    def on_tick(result) -> None:
        if not tty or time.monotonic() - last[0] < TABLE_REFRESH_S:
            return
        last[0] = time.monotonic()
        if table is not None:
            rows, width = terminal_rows()
            table.draw(summary_lines(result, include_localhost, rows, width, last[0] - started))
        else:
            print("\r\033[K" + summary_lines(result, include_localhost, 0)[0], end="", file=err, flush=True)

    live = LiveCapture(output, interface, bpf, seconds, packets, ring_mb, ring_files, decode_as, engine, on_flow, on_tick)
    restore = install_signal_handlers(live)
    try:
        result = live.run()
    finally:
        restore()
    if table is not None:
        table.clear()
    elif tty:
        print("\r\033[K", end="", file=err, flush=True)
    return result
