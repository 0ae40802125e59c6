"""Live capture: dumpcap (or tshark) writes pcapng, and flows are classified while the file grows.

Role: ``mtls-analyzer capture`` and the sidecar's ``capture``.  The capture process writes the file;
``LiveCapture`` follows it (also across ring-buffer files) with the ordinary ``CaptureReader`` and
``FlowTable`` (or a tshark ``-r -`` pass for ``engine="tshark"``), reports each flow once as soon as its
verdict is settled (``on_flow``), and stops on ``seconds``, ``packets``, SIGINT/SIGTERM or ``stop()``.  The final report is
``api.analyze`` over the finished file(s), exactly what ``analyze`` prints for them.

Rules:
  1. Capture only where asked: ``-i any`` by default, i.e. the network namespace we run in (a pod's, in
     the sidecar).  Every loop here is bounded in time (``seconds`` and ``MAX_RUN_S``) and polls with a
     sleep; nothing spins.
  2. dumpcap is preferred over tshark: it does not dissect, so its memory stays flat on long runs (tshark's
     grows with its dissection state, pyshark#141/#607); ``ring_mb``/``ring_files`` bound the disk.
     Flows that end are finalised and released by the flow table as in ``analyze``.  The tshark engine's
     own ``tshark -r -`` is replaced every ``RESTART_PACKETS`` packets (``engines.tshark.TsharkPipe``).
  3. One reader: ``Follower`` is the growing file (and its ring successors) as a non-seekable stream, so
     ``capture.reader.CaptureReader`` hands out each batch as soon as its bytes are written, and
     ``pipeline.run`` drives the same ``FlowTable`` as ``analyze`` (its ``on_batch`` hook lets us announce
     settled flows, finish quiet ones on time and tick the live view).  Live state is bounded by live
     flows and host pairs, never by the number of flows seen.
  4. Tool missing or capture not permitted: ``BackendUnavailable`` with one line saying what to install
     or which capability is missing.  Standard library only (the sidecar .pyz ships this module).
"""

from __future__ import annotations

import glob
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import AnalyzerError, BackendUnavailable
from .report.escape import text

log = logging.getLogger(__name__)

POLL_S = 0.05  # sleep between looks at a file that has not grown
START_TIMEOUT_S = 15.0  # the capture process must have written its file header by then
STOP_TIMEOUT_S = 15.0  # after SIGINT, the capture process must have exited by then
MAX_RUN_S = 7 * 24 * 3600.0  # hard bound on any run without --seconds
SETTLE_S = 1.0  # a flow with bytes both ways for this long (capture time) has its verdict
SCAN_S = 0.05  # at most this often, live flows are checked for a settled verdict
EVICT_S = 5.0  # this often, closed-and-quiet and idle flows are finished (FlowTable.evict) and released
NO_PERMISSION = re.compile(r"permission|not permitted|Operation not permitted|don't have permission", re.I)
CAPS_HINT = ("capturing needs CAP_NET_RAW and CAP_NET_ADMIN: run as root, or `setcap "
             "cap_net_raw,cap_net_admin=eip $(command -v dumpcap)`; in Kubernetes add them to the container's "
             "securityContext.capabilities (the linkerd-debug sidecar runs as root)")
INSTALL_HINT = "neither dumpcap nor tshark is installed: `apt-get install tshark` (Debian/Ubuntu, as in linkerd-debug)"


# -- the capture process ---------------------------------------------------------------------------
def capture_tool() -> tuple[str, str]:
    """(name, path) of dumpcap, else tshark.  ``$DUMPCAP`` / ``$TSHARK`` override."""
    for name, env in (("dumpcap", "DUMPCAP"), ("tshark", "TSHARK")):
        path = os.environ.get(env) or shutil.which(name)
        if path and os.access(path, os.X_OK):
            return name, path
    raise BackendUnavailable(INSTALL_HINT)


def capture_command(tool: tuple[str, str], output: Path, interface: str = "any", bpf: str | None = None,
                    seconds: float | None = None, packets: int | None = None, ring_mb: int | None = None,
                    ring_files: int | None = None, snaplen: int | None = None) -> list[str]:
    name, path = tool
    cmd = [path, "-i", interface, "-w", str(output), "-q"]
    if name == "tshark":
        cmd.insert(1, "-n")
    if bpf:
        cmd += ["-f", bpf]
    if seconds:
        cmd += ["-a", f"duration:{max(1, int(round(seconds)))}"]
    if packets:
        cmd += ["-c", str(packets)]
    if snaplen:
        cmd += ["-s", str(snaplen)]
    if ring_mb or ring_files:
        cmd += ["-b", f"filesize:{int((ring_mb or 100) * 1000)}", "-b", f"files:{ring_files or 10}"]
    return cmd


def ring_files_of(output: Path) -> list[Path]:
    """dumpcap's ring files for ``-w DIR/NAME.pcapng``: ``DIR/NAME_00001_YYYYmmddHHMMSS.pcapng``, in order."""
    stem, suffix = output.stem, output.suffix
    found = glob.glob(os.path.join(glob.escape(str(output.parent)), f"{glob.escape(stem)}_[0-9][0-9][0-9][0-9][0-9]_*{suffix}"))
    return sorted(Path(p) for p in found)


# -- following a growing pcapng --------------------------------------------------------------------
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


# -- what the live view shows ----------------------------------------------------------------------
VERDICTS = ("tls", "plaintext", "unknown")


class PairSummary:
    """Per host pair verdict counts, bounded by the number of pairs (not flows): the live view's state.

    ``add(row, final=False)`` counts a flow announced before it ended; its final row replaces that count.
    Thread-safe (the tshark engine reports from its reader thread).
    """

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str, bool], list[int]] = {}  # (client, server, localhost) -> tls/plain/unknown
        self.provisional: dict[int, tuple[tuple[str, str, bool], int]] = {}  # live flows counted early
        self.flows = 0
        self.lock = threading.Lock()

    def add(self, row: dict, final: bool = True) -> None:
        key = (str(row["client_ip"]), str(row["server_ip"]), bool(row["localhost"]))
        idx = VERDICTS.index(row["verdict"]) if row["verdict"] in VERDICTS else 2
        with self.lock:
            old = self.provisional.pop(row["flow_id"], None)
            if old is not None:
                self.pairs[old[0]][old[1]] -= 1
            else:
                self.flows += 1
            self.pairs.setdefault(key, [0, 0, 0])[idx] += 1
            if not final:
                self.provisional[row["flow_id"]] = (key, idx)

    def rows(self, include_localhost: bool = False) -> list[dict]:
        """One dict per pair (client_ip, server_ip, flows, tls, plaintext, unknown, status), busiest first."""
        from .report.pairs import pair_status

        merged: dict[tuple[str, str], list[int]] = {}
        with self.lock:
            for (c, s, local), n in self.pairs.items():
                if local and not include_localhost:
                    continue
                m = merged.setdefault((c, s), [0, 0, 0])
                for i in range(3):
                    m[i] += n[i]
        rows = [{"client_ip": c, "server_ip": s, "flows": sum(n), "tls": n[0], "plaintext": n[1], "unknown": n[2],
                 "status": pair_status(*n)} for (c, s), n in merged.items() if sum(n)]
        rows.sort(key=lambda r: (-r["flows"], r["client_ip"], r["server_ip"]))
        return rows


def summary_lines(result: "LiveResult", include_localhost: bool = False, max_rows: int = 20,
                  width: int = 120, elapsed_s: float = 0.0) -> list[str]:
    """The live table: a status line, a header, at most ``max_rows`` pairs and ``+N more``."""
    rows = result.summary.rows(include_localhost)
    v = [sum(r[k] for r in rows) for k in VERDICTS]
    lines = [f"{result.output.name}: {result.packets} packets, {sum(v)} flows (tls {v[0]}, plaintext {v[1]}, "
             f"unknown {v[2]}), {elapsed_s:.0f} s  (Ctrl-C stops)"]
    cw = max([len("CLIENT")] + [len(r["client_ip"]) for r in rows[:max_rows]])
    sw = max([len("SERVER")] + [len(r["server_ip"]) for r in rows[:max_rows]])
    fmt = f"{{:<{cw}}}  {{:<{sw}}}  {{:>5}}  {{:>5}}  {{:>9}}  {{:>7}}  {{}}"
    lines.append(fmt.format("CLIENT", "SERVER", "FLOWS", "TLS", "PLAINTEXT", "UNKNOWN", "STATUS"))
    shown = rows if len(rows) <= max_rows else rows[:max(1, max_rows - 1)]
    for r in shown:
        lines.append(fmt.format(r["client_ip"], r["server_ip"], r["flows"], r["tls"], r["plaintext"], r["unknown"],
                                r["status"]))
    if len(shown) < len(rows):
        lines.append(f"+{len(rows) - len(shown)} more")
    return [line[:width] for line in lines]


TABLE_REFRESH_S = 1.0  # seconds between redraws of the live table or status line


class LiveTable:
    """Redraw a block of lines in place on a terminal (ANSI: cursor up, clear to the end of the screen)."""

    def __init__(self, stream):
        self.stream = stream
        self.height = 0

    def draw(self, lines: list[str]) -> None:
        self.stream.write(self._up() + "".join(line + "\n" for line in lines))
        self.stream.flush()
        self.height = len(lines)

    def clear(self) -> None:
        if self.height:
            self.stream.write(self._up())
            self.stream.flush()
            self.height = 0

    def _up(self) -> str:
        return (f"\033[{self.height}F" if self.height else "\r") + "\033[J"


def terminal_rows() -> tuple[int, int]:
    """(pair rows that fit, columns) for the live table on this terminal."""
    size = shutil.get_terminal_size((120, 24))
    return max(3, min(40, size.lines - 4)), max(40, size.columns - 1)


# -- classification while capturing ----------------------------------------------------------------
class _NativeLive:
    """``CaptureReader`` over the ``Follower`` -> ``FlowTable``, wired by ``pipeline.run``; announces each flow
    once its verdict is settled (before it ends when it can), and counts it in the pair summary."""

    def __init__(self, decode_as, on_flow: Callable[[dict], None] | None):
        from .analysis.hints import parse_decode_as

        self.ports = parse_decode_as(decode_as)
        self.on_flow = on_flow
        self.summary = PairSummary()
        self.announced: set[int] = set()  # live flows already reported (bounded by live flows)
        self.rows: list[dict] = []  # finished flows' rows, handed over by pipeline.run, emptied every batch
        self.table = None
        self.info = None
        self.newest = 0.0  # newest packet time among live flows (capture time)
        self._scan_at = self._evict_at = 0.0
        self._pending = None  # (table, ctx) of a batch whose settle scan was deferred by SCAN_S

    @property
    def packets(self) -> int:
        return self.table.packets if self.table is not None else 0

    def run(self, stream, supervise: Callable[[], None]) -> None:
        from .analysis.inspector import new_inspector
        from .capture.reader import CaptureReader
        from .flows.table import FlowTable
        from .pipeline import Context, run as run_pipeline

        finished: list = []
        table = FlowTable(new_inspector, finished.append)
        self.table = table

        def on_batch(table, ctx) -> None:
            self._batch(table, ctx)
            supervise()

        with CaptureReader(stream) as reader:
            self.info = reader.info
            run_pipeline(reader, table, finished, self.rows, Context(decode_as=self.ports), None, on_batch=on_batch)
        self._finished()
        for w in reader.info.warnings:
            log.info("live: %s", w)

    def _finished(self) -> None:
        for row in self.rows:
            self.summary.add(row, final=True)
            if row["flow_id"] not in self.announced and self.on_flow is not None:
                self.on_flow(row)
            self.announced.discard(row["flow_id"])  # released with the flow: memory stays flat
        self.rows.clear()

    def _batch(self, table, ctx) -> None:
        self._finished()
        now = time.monotonic()
        if now >= self._evict_at and self.newest:
            # Finish closed-and-quiet and idle flows on time (the table itself scans every EVICT_EVERY
            # packets, which a quiet pod may take hours to reach).  "Now" is capture time: the newest
            # packet read, never ahead of the wall clock, so a reader running behind splits no flow.
            self._evict_at = now + EVICT_S
            table.evict(min(self.newest, time.time()))
            self._finished()
        self._pending = (table, ctx)
        if now >= self._scan_at:
            self._scan()

    def idle(self) -> None:
        """While waiting for bytes: run a settle scan a recent batch deferred (a FIN in a quiet pod)."""
        if self._pending is not None and time.monotonic() >= self._scan_at:
            self._scan()

    def _scan(self) -> None:
        from .pipeline import flow_row

        table, ctx = self._pending  # type: ignore[misc]
        self._pending = None
        self._scan_at = time.monotonic() + SCAN_S
        newest = self.newest
        for flow, d in list(table.flows.values()):
            if d != 0:
                continue
            if flow.last_ts > newest:
                newest = flow.last_ts
            if flow.fid in self.announced:
                continue
            both = flow.bytes[0] and flow.bytes[1]
            if flow.closed or not (flow.wants[0] or flow.wants[1]) or (both and flow.last_ts - flow.first_ts >= SETTLE_S):
                row = flow_row(flow, ctx)
                self.announced.add(flow.fid)
                self.summary.add(row, final=False)
                if self.on_flow is not None:
                    self.on_flow(row)
        self.newest = newest


class _TsharkLive:
    """The tshark engine, live: the ``Follower``'s bytes through ``engines.tshark.TsharkPipe`` into one
    ``Aggregator``.

    Memory stays flat on long runs: the pipe replaces tshark every ``RESTART_PACKETS`` packets or
    ``RESTART_BYTES`` bytes (tshark's own state grows with every frame, pyshark#141/#607), open streams
    carry over the restart as one flow, and the Aggregator keeps no finished rows (each is reported once
    here; the final report re-analyses the files) and finishes closed-and-quiet or idle streams every
    ``EVICT_S`` of capture time, releasing them.  ``restarts`` says how often tshark was replaced.
    """

    def __init__(self, decode_as, on_flow: Callable[[dict], None] | None,
                 restart_packets: int | None = None, restart_bytes: int | None = None):
        from .analysis.hints import parse_decode_as
        from .engines import tshark as engine

        self.summary = PairSummary()
        self.on_flow = on_flow
        self.info = None
        tshark = engine.find_tshark()
        self.agg = engine.Aggregator("live", parse_decode_as(decode_as), on_row=self._finished,
                                     on_verdict=self._verdict, keep_rows=False, evict_s=EVICT_S)
        cmd = engine.command(tshark, "-", decode_as)
        cmd.insert(1, "-l")  # flush after each packet: a pipe is not a terminal
        self.pipe = engine.TsharkPipe(self.agg, cmd, max_packets=restart_packets, max_bytes=restart_bytes)

    @property
    def packets(self) -> int:
        return self.agg.packets

    @property
    def restarts(self) -> int:
        return self.pipe.restarts

    def idle(self) -> None:
        pass

    def _verdict(self, row: dict) -> None:
        self.summary.add(row, final=False)
        if self.on_flow is not None:
            self.on_flow(row)

    def _finished(self, row: dict) -> None:
        # Called by the Aggregator before it forgets the flow's id (``announced``).
        first = row["flow_id"] not in self.agg.announced
        self.summary.add(row, final=True)
        if first and self.on_flow is not None:
            self.on_flow(row)

    def run(self, stream, supervise: Callable[[], None]) -> None:
        try:
            while True:
                data = stream.read(1 << 20)
                if not data:
                    break
                self.pipe.feed(data)
                supervise()
        finally:
            stream.close()
            self.pipe.close()
        with self.pipe.lock:
            self.agg.finish()
        if self.pipe.restarts:
            log.info("live: tshark was restarted %d times to bound its memory", self.pipe.restarts)


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class LiveResult:
    files: list[Path]
    command: list[str]
    output: Path = Path()
    packets: int = 0  # packets classified so far
    stopped_by: str = ""  # seconds | packets | signal | stop | exited
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
            sink = (_TsharkLive if self.engine == "tshark" else _NativeLive)(self.decode_as, self.on_flow)
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
        result.packets = sink.packets
        result.files = [p for p in (ring_files_of(self.output) if self.ring else [self.output]) if p.exists()]
        stderr = b"".join(err).decode("utf-8", "replace")
        if self.proc.returncode not in (0, -signal.SIGINT, -signal.SIGTERM) and not result.files:
            raise AnalyzerError(f"{self.tool[0]} failed: {_last_error(stderr)}")
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
                raise AnalyzerError(f"{self.tool[0]} exited before capturing: {_last_error(text)}")
            if self._stop.is_set():
                self._signal_capture()
            time.sleep(POLL_S)
        self._signal_capture()
        raise AnalyzerError(f"{self.tool[0]} wrote no capture within {START_TIMEOUT_S:.0f} s: "
                            f"{_last_error(b''.join(err).decode('utf-8', 'replace'))}")

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


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and "Running as user" not in line and "dangerous" not in line and not line.startswith("Capturing on")]
    return lines[-1] if lines else "no message"


def install_signal_handlers(live: LiveCapture) -> Callable[[], None]:
    """SIGINT/SIGTERM stop the capture in order; returns a function restoring the old handlers."""
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum, _frame):
        live.stop("signal")

    for sig in old:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)
    return restore


def local_addresses() -> frozenset[str]:
    """This network namespace's addresses (``ip -o addr``), for ``proxy=in|out``; empty when unknown."""
    ip = shutil.which("ip")
    if ip is None:
        return frozenset()
    try:
        out = subprocess.run([ip, "-o", "addr"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(m.group(1) for m in re.finditer(r"inet6? ([0-9a-fA-F:.]+)/", out))


def tap_line(row: dict, local: frozenset[str] = frozenset()) -> str:
    """One ``linkerd viz tap``-style line for a flow, escaped (the SNI is the sender's choice)."""
    if row["server_ip"] in local and row["client_ip"] not in local:
        proxy = "in"
    elif row["client_ip"] in local and row["server_ip"] not in local:
        proxy = "out"
    else:
        proxy = "local" if row["localhost"] else "-"
    fmt = "[{}]:{}" if ":" in str(row["client_ip"]) else "{}:{}"
    parts = [f"flow id={row['flow_id']}", f"proxy={proxy}", "src=" + fmt.format(row["client_ip"], row["client_port"]),
             "dst=" + fmt.format(row["server_ip"], row["server_port"]), f"tls={'true' if row['verdict'] == 'tls' else 'false' if row['verdict'] == 'plaintext' else 'unknown'}"]
    if row.get("sni"):
        parts.append(f"sni={row['sni']}")
    if row.get("tls_version"):
        parts.append(f"version={row['tls_version'].replace(' ', '')}")
    parts.append(f"evidence={row['evidence']}")
    if row["localhost"]:
        parts.append("localhost=true")
    return text(" ".join(parts))


def run_live(output: Path, interface: str, bpf: str | None, seconds: float | None, packets: int | None,
             ring_mb: int | None, ring_files: int | None, decode_as, engine: str, follow: bool,
             include_localhost: bool, quiet: bool, out=None, err=None) -> "LiveResult":
    """The terminal side of a live capture, shared by ``mtls-analyzer capture`` and the sidecar .pyz:
    ``--follow`` tap lines on ``out``; otherwise, on a terminal, the live table (both ends a terminal)
    or one status line (stderr only) on ``err``; signal handling; the screen cleaned up at the end."""
    out = out or sys.stdout
    err = err or sys.stderr
    local = local_addresses()
    tty = err.isatty() and not quiet and not follow
    table = LiveTable(err) if tty and out.isatty() else None
    started = time.monotonic()
    last = [0.0]

    def on_flow(row: dict) -> None:
        if follow and (include_localhost or not row["localhost"]):
            print(tap_line(row, local), file=out, flush=True)

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
