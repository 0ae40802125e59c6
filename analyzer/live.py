"""Live capture: dumpcap (or tshark) writes pcapng, and flows are classified while the file grows.

Role: ``mtls-analyzer capture`` and the sidecar's ``capture``.  The capture process writes the file;
``LiveCapture`` tails it (also across ring-buffer files), feeds the native flow table (or a tshark
``-r -`` pass for ``engine="tshark"``), reports each flow once as soon as its verdict is settled
(``on_flow``), and stops on ``seconds``, ``packets``, SIGINT/SIGTERM or ``stop()``.  The final report is
``api.analyze`` over the finished file(s), exactly what ``analyze`` prints for them.

Rules:
  1. Capture only where asked: ``-i any`` by default, i.e. the network namespace we run in (a pod's, in
     the sidecar).  Every loop here is bounded in time (``seconds`` and ``MAX_RUN_S``) and polls with a
     sleep; nothing spins.
  2. dumpcap is preferred over tshark: it does not dissect, so its memory stays flat on long runs (tshark's
     grows with its dissection state, pyshark#141/#607); ``ring_mb``/``ring_files`` bound the disk.
     Flows that end are finalised and released by the flow table as in ``analyze``.
  3. The tail reader below is a small incremental pcapng block parser: ``capture.reader`` fills 2 MB
     windows before it hands out a batch (right for files, far too late for a line per flow), so the
     live path reads block by block and hands the same frame tuples to the same ``FlowTable``.
  4. Tool missing or capture not permitted: ``BackendUnavailable`` with one line saying what to install
     or which capability is missing.  Standard library only (the sidecar .pyz ships this module).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .capture.reader import OPT_IF_NAME, OPT_IF_TSRESOL, Interface
from .errors import AnalyzerError, BackendUnavailable

log = logging.getLogger(__name__)

POLL_S = 0.05  # sleep between looks at a file that has not grown
START_TIMEOUT_S = 15.0  # the capture process must have written its file header by then
STOP_TIMEOUT_S = 15.0  # after SIGINT, the capture process must have exited by then
MAX_RUN_S = 7 * 24 * 3600.0  # hard bound on any run without --seconds
SETTLE_S = 1.0  # a flow with bytes both ways for this long (capture time) has its verdict
LOOPBACK_IFACE_NAMES = frozenset({"lo", "lo0", "loopback"})
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


# -- tailing a growing pcapng ----------------------------------------------------------------------
class _Tail:
    """Bytes of a file being written (and of the ring files after it); ``read`` never blocks."""

    def __init__(self, first: Path | None, ring_of: Path | None):
        self.ring_of = ring_of
        self.path = first
        self.f = open(first, "rb") if first is not None else None  # noqa: SIM115 - closed in close()
        self.opened: list[Path] = [first] if first is not None else []

    def read(self, n: int = 1 << 20) -> bytes:
        if self.f is None:
            if not self._advance():
                return b""
        data = self.f.read(n)  # type: ignore[union-attr]
        if data:
            return data
        if self.ring_of is not None and self._advance():
            return self.f.read(n)  # type: ignore[union-attr]
        return b""

    def _advance(self) -> bool:
        """Open the next ring file, if dumpcap has started one.  The old one is complete by then."""
        if self.ring_of is None:
            return False
        files = [p for p in ring_files_of(self.ring_of) if p not in self.opened]
        if not files:
            return False
        if self.f is not None:
            rest = self.f.read()
            if rest:  # the writer finished this file after our last read: keep its tail first
                self.f.seek(-len(rest), os.SEEK_CUR)
                return True
            self.f.close()
        self.path = files[0]
        self.opened.append(files[0])
        self.f = open(files[0], "rb")  # noqa: SIM115
        return True

    def close(self) -> None:
        if self.f is not None:
            self.f.close()


class PcapngBlocks:
    """Incremental pcapng parser: ``feed(bytes)`` -> frame batches for ``FlowTable.process``.

    Frames are ``(ts, linktype, off, caplen, wirelen, iface)`` into the returned buffer, as
    ``capture.reader`` produces them.  Sections (one per ring file) restart the interface list.
    """

    def __init__(self) -> None:
        self.buf = bytearray()
        self.bo = "<"
        self.ifaces: list[Interface] = []  # every interface seen, across sections
        self.base = 0  # index of this section's first interface
        self.section_ifaces = 0
        self.frames = 0
        self.bad = ""

    def feed(self, data: bytes) -> tuple[bytes, list[tuple]]:
        self.buf += data
        buf = bytes(self.buf)
        frames: list[tuple] = []
        pos = 0
        end = len(buf)
        while pos + 12 <= end and not self.bad:
            btype = struct.unpack_from("<I", buf, pos)[0]
            if btype == 0x0A0D0D0A:  # Section Header Block: byte order from its magic
                if pos + 12 > end:
                    break
                bom = buf[pos + 8:pos + 12]
                self.bo = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else ""
                if not self.bo:
                    self.bad = "not a pcapng stream (bad byte-order magic)"
                    break
                self.base, self.section_ifaces = len(self.ifaces), 0
            blen = struct.unpack_from(self.bo + "I", buf, pos + 4)[0]
            if blen < 12 or blen % 4:
                self.bad = f"corrupt pcapng block (length {blen})"
                break
            if pos + blen > end:
                break
            bt = struct.unpack_from(self.bo + "I", buf, pos)[0]
            if bt == 6:  # Enhanced Packet Block
                iid, hi, lo, caplen, wirelen = struct.unpack_from(self.bo + "IIIII", buf, pos + 8)
                if iid < self.section_ifaces:
                    itf = self.ifaces[self.base + iid]
                    frames.append((((hi << 32) | lo) * itf.ts_unit, itf.linktype, pos + 28, caplen, wirelen,
                                   self.base + iid))
            elif bt == 1:  # Interface Description Block
                linktype, _res, snaplen = struct.unpack_from(self.bo + "HHI", buf, pos + 8)
                itf = Interface(linktype, snaplen)
                self._options(itf, buf, pos + 16, pos + blen - 4)
                self.ifaces.append(itf)
                self.section_ifaces += 1
            pos += blen
        del self.buf[:pos]
        self.frames += len(frames)
        return buf, frames

    def _options(self, itf: Interface, buf: bytes, pos: int, end: int) -> None:
        while pos + 4 <= end:
            code, length = struct.unpack_from(self.bo + "HH", buf, pos)
            if code == 0:
                return
            value = buf[pos + 4:pos + 4 + length]
            if code == OPT_IF_NAME:
                itf.name = value.rstrip(b"\x00").decode("utf-8", "backslashreplace")
            elif code == OPT_IF_TSRESOL and value:
                r = value[0]
                itf.ts_unit = 2.0 ** -(r & 0x7F) if r & 0x80 else 10.0 ** -r
            pos += 4 + ((length + 3) & ~3)


# -- classification while capturing ----------------------------------------------------------------
class _NativeLive:
    """The native pipeline, fed block by block; announces each flow once its verdict is settled."""

    def __init__(self, decode_as, on_flow: Callable[[dict], None] | None):
        from .api import parse_decode_as
        from .classify import SERVER_PORTS, Context, new_inspector
        from .flows.table import FlowTable

        self.ports = parse_decode_as(decode_as)
        self.server_ports = SERVER_PORTS | self.ports
        self.ctx = Context(decode_as=self.ports)
        self.finished: list = []
        self.table = FlowTable(new_inspector, self.finished.append)
        self.blocks = PcapngBlocks()
        self.on_flow = on_flow
        self.announced: set[int] = set()
        self.rows: dict[int, dict] = {}  # latest row per announced-or-finished flow (for the summary)
        self.seen_ifaces = 0

    def feed(self, data: bytes) -> None:
        buf, frames = self.blocks.feed(data)
        ifaces = self.blocks.ifaces
        if len(ifaces) != self.seen_ifaces:
            self.table.add_loopback_ifaces(i for i in range(self.seen_ifaces, len(ifaces))
                                           if ifaces[i].name in LOOPBACK_IFACE_NAMES)
            self.seen_ifaces = len(ifaces)
        if frames:
            self.table.process(buf, frames)
        self._settle(final=False)

    def _row(self, flow) -> dict:
        from .classify import classify

        client_d, basis = flow.client_dir(self.server_ports)
        return classify(flow, self.ctx, client_d, basis)

    def _settle(self, final: bool) -> None:
        for flow in self.finished:
            row = self._row(flow)
            self.rows[flow.fid] = _brief(row)
            if flow.fid not in self.announced and self.on_flow is not None:
                self.on_flow(row)
            self.announced.discard(flow.fid)  # released with the flow: memory stays flat
        self.finished.clear()
        if final:
            return
        for flow, d in list(self.table.flows.values()):
            if d != 0 or flow.fid in self.announced:
                continue
            both = flow.bytes[0] and flow.bytes[1]
            if flow.closed or not (flow.wants[0] or flow.wants[1]) or (both and flow.last_ts - flow.first_ts >= SETTLE_S):
                row = self._row(flow)
                self.announced.add(flow.fid)
                self.rows[flow.fid] = _brief(row)
                if self.on_flow is not None:
                    self.on_flow(row)

    def finish(self) -> None:
        self.table.finish_all()
        self._settle(final=True)


class _TsharkLive:
    """``tshark -l -r -`` over the growing file: the tshark engine, live."""

    def __init__(self, decode_as, on_flow: Callable[[dict], None] | None):
        from .api import parse_decode_as
        from .engines import tshark as engine

        self.rows: dict[int, dict] = {}
        self.on_flow = on_flow
        tshark = engine.find_tshark()
        self.agg = engine.Aggregator("live", parse_decode_as(decode_as), on_row=self._finished,
                                     on_verdict=self._verdict)
        cmd = engine.command(tshark, "-", decode_as)
        cmd.insert(1, "-l")  # flush after each packet: a pipe is not a terminal
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=False)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.lock = threading.Lock()
        self.reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:  # type: ignore[union-attr]
            with self.lock:
                self.agg.feed(raw.decode("utf-8", "backslashreplace"))

    def _verdict(self, row: dict) -> None:
        self.rows[row["flow_id"]] = _brief(row)
        if self.on_flow is not None:
            self.on_flow(row)

    def _finished(self, row: dict) -> None:
        first = row["flow_id"] not in self.agg.announced
        self.rows[row["flow_id"]] = _brief(row)
        self.agg.announced.discard(row["flow_id"])
        if first and self.on_flow is not None:
            self.on_flow(row)

    def feed(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            pass

    def finish(self) -> None:
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        self.reader.join(timeout=120)
        self.proc.wait(timeout=30)
        with self.lock:
            self.agg.finish()


def _brief(row: dict) -> dict:
    return {"verdict": row["verdict"], "localhost": row["localhost"]}


# -- the run ---------------------------------------------------------------------------------------
@dataclass
class LiveResult:
    files: list[Path]
    command: list[str]
    packets: int = 0
    stopped_by: str = ""  # seconds | packets | signal | stop | exited
    flows: dict = field(default_factory=dict)  # flow_id -> brief row


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
        first = self._wait_for_file(err)
        sink = (_TsharkLive if self.engine == "tshark" else _NativeLive)(self.decode_as, self.on_flow)
        tail = _Tail(first, self.output if self.ring else None)
        result = LiveResult([], self.command)
        deadline = time.monotonic() + min(MAX_RUN_S, (self.seconds or MAX_RUN_S) + STOP_TIMEOUT_S)
        try:
            while True:
                data = tail.read()
                if data:
                    sink.feed(data)
                    continue
                if self.proc.poll() is not None:
                    data = tail.read()
                    while data:  # everything written before the exit
                        sink.feed(data)
                        data = tail.read()
                    break
                if self._stop.is_set() or time.monotonic() > deadline:
                    self._signal_capture()
                if self.on_tick is not None:
                    result.flows = sink.rows
                    self.on_tick(result)
                time.sleep(POLL_S)
        finally:
            if self.proc.poll() is None:
                self._signal_capture()
            drain.join(timeout=5)
            tail.close()
        sink.finish()
        if not self._stopped_by:
            self._stopped_by = "seconds" if self.seconds else "exited"
        result.stopped_by = self._stopped_by
        result.flows = sink.rows
        result.packets = getattr(getattr(sink, "blocks", None), "frames", 0) or getattr(getattr(sink, "agg", None), "packets", 0)
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

    def _wait_for_file(self, err: list[bytes]) -> Path | None:
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
    """One ``linkerd viz tap``-style line for a flow."""
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
    return " ".join(parts)
