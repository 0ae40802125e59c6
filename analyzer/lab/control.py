"""The lab's library API: :func:`up`, :func:`capture`, :func:`down`, :func:`status`. The CLI only calls these.

State directory (default ``/run/mtlslab``)::

    lab.json               the Lab (mode, pods, IPs, edges) every agent reads
    pods.json              kubectl get pods -A -o json
    expected-edges.csv     every edge of every scenario, as a full node-level view
    expected-localhost.csv the proxy <-> app hops over lo
    certs/                 trust anchor, issuer, one leaf (chain + key) per meshed pod
    pids/ ready/ logs/ run/  runtime bookkeeping (PIDs for `down`, readiness markers, logs, go files)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from analyzer.lab import kube, netns, traffic
from analyzer.lab.netns import LabError, LabRequestError
from analyzer.lab.topology import NODE, NODE_NAMES, SCENARIOS, Lab, expected_rows, localhost_rows, rows_to_csv

log = logging.getLogger(__name__)

DEFAULT_STATE = Path("/run/mtlslab")
READY_TIMEOUT_S = 30.0
DRIVER_READY_TIMEOUT_S = 30.0
TSHARK_START_TIMEOUT_S = 15.0
TAIL_S = 1.0  # keep capturing after the drivers exit so FIN/ACK and close_notify make it into the file


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


NOT_UP = "the lab is not up: run `mtls-analyzer lab up`"


def load(state: Path) -> Lab:
    """The running lab of ``state``; :class:`LabRequestError` when it is not up (no state, or torn down)."""
    lab = _recorded(state)
    if lab is None:
        raise LabRequestError(NOT_UP)
    return lab


def _recorded(state: Path) -> Lab | None:
    """The lab recorded in ``state`` while its namespaces exist; None once it is down."""
    path = state / "lab.json"
    return Lab.load(path) if path.exists() and netns.lab_namespaces() else None


# -- up / down -----------------------------------------------------------------------------------------
def up(state: Path, mode: str, lifetime_s: float = 3600.0) -> Lab:
    """Tear down leftovers, then create namespaces, certificates, pods.json and start proxies and apps."""
    down(state)
    state.mkdir(parents=True, exist_ok=True)
    for stale in ("ready", "run", "logs", "certs", "standin"):  # standin: the kubectl stand-in's debug containers
        shutil.rmtree(state / stale, ignore_errors=True)
    lab = Lab.build(mode, _now())
    lab.save(state / "lab.json")
    (state / "pods.json").write_text(kube.pods_json(lab))
    (state / "expected-edges.csv").write_text(rows_to_csv(expected_rows(lab)))
    (state / "expected-localhost.csv").write_text(rows_to_csv(localhost_rows(lab)))
    from analyzer.lab.pki import Authority  # cryptography costs ~0.1 s to import: only `lab up` needs it

    authority = Authority(state / "certs")
    for pod in lab.pods:
        if pod.meshed:
            authority.issue(pod.key, pod.identity)
    netns.setup_network(lab)
    netns.setup_services(lab)
    expected = []
    for pod in lab.pods:
        # The proxy first, as with native sidecars: the app's first connection must find it listening.
        if pod.meshed:
            netns.spawn(state, f"{pod.key}.proxy",
                        netns.agent_command(pod.netns, "proxy", "--state", str(state), "--pod", pod.key,
                                            "--lifetime", str(lifetime_s)))
            expected.append(f"{pod.key}.proxy")
        if pod.app:
            netns.spawn(state, f"{pod.key}.app",
                        netns.agent_command(pod.netns, "app", "--state", str(state), "--pod", pod.key,
                                            "--lifetime", str(lifetime_s)))
            expected.append(f"{pod.key}.app")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        missing = [name for name in expected if not (state / "ready" / name).exists()]
        if not missing:
            return lab
        time.sleep(0.05)
    tails = "; ".join(f"{name}: {_tail(state / 'logs' / (name + '.log'))}" for name in missing)
    raise LabError(f"not ready after {READY_TIMEOUT_S:.0f} s: {tails} (run `lab down`)")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def down(state: Path | None) -> dict:
    result = netns.teardown(state)
    if state is not None:
        for runtime in ("ready", "run"):
            shutil.rmtree(state / runtime, ignore_errors=True)
    return result


# -- capture -------------------------------------------------------------------------------------------
class _Lines:
    """Collect a pipe's lines in a thread; signal when a line starting with `marker` arrives."""

    def __init__(self, stream, marker: str):
        self.lines: list[str] = []
        self.marker = marker
        self.seen = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n") if isinstance(raw, bytes) else raw.rstrip("\n")
            self.lines.append(line)
            if self.marker in line:
                self.seen.set()


@dataclass
class CaptureResult:
    output: Path
    command: list[str]
    drivers: list[dict] = field(default_factory=list)
    size_bytes: int = 0
    files: list[Path] = field(default_factory=list)


def tshark_command(netns_name: str, interface: str, output: Path, snaplen: int | None, sll2: bool) -> list[str]:
    """tshark in a namespace until ``capture`` stops it (SIGINT, once the traffic ran and the tail passed:
    no ``-a duration``, so the command shown is the one that ran, for the time asked)."""
    command = ["ip", "netns", "exec", netns_name, "tshark", "-i", interface, "-w", str(output)]
    if snaplen:
        command += ["-s", str(snaplen)]
    if sll2:
        command += ["-y", "LINUX_SLL2"]
    return command


NODE2 = "node2"  # capture point of the second node's namespace


def _vantage(lab: Lab, pod: str | None, node_any: bool = False) -> tuple[str, str, str]:
    """(key, netns, interface) of a capture point: a pod's netns with ``-i any``, or a node's bridge (``node``,
    ``node2``; ``node_any``: the node's netns with ``-i any``, which also sees the client's side of a Service's
    DNAT when the client runs on that node)."""
    if pod is None or pod == NODE:
        return NODE, netns.NODE_NS, "any" if node_any else netns.BRIDGE
    if pod == NODE2:
        return NODE2, NODE_NAMES[1], "any" if node_any else netns.BRIDGE.removesuffix("0") + "1"
    try:
        target = lab.pod(pod)
    except KeyError:
        raise LabRequestError(f"no pod {pod!r}; pods: {', '.join(p.key for p in lab.pods)}") from None
    return target.key, target.netns, "any"


def vantage_path(output: Path, key: str) -> Path:
    """Where one vantage point of a several-point capture goes: ``NAME.pod-KEY.pcapng``, ``NAME.node.pcapng``
    (the names ``analyzer.join.vantage`` reads)."""
    stem = output.name.removesuffix(".pcapng")
    if key == NODE2:
        return output.with_name(f"{stem}.node-{NODE_NAMES[1]}.pcapng")
    return output.with_name(f"{stem}.node.pcapng" if key == NODE else f"{stem}.pod-{key}.pcapng")


def _start_tshark(state: Path, name: str, command: list[str]):
    (state / "logs" / f"{name}.log").unlink(missing_ok=True)  # an earlier run's "Capturing on" must not count
    tshark = netns.spawn(state, name, command, stdout=subprocess.DEVNULL)
    # spawn() sends stderr to the log; watch the log for tshark's "Capturing on" line.
    deadline = time.monotonic() + TSHARK_START_TIMEOUT_S
    log_path = state / "logs" / f"{name}.log"
    while "Capturing on" not in log_path.read_text(errors="replace"):
        if tshark.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"tshark did not start: {_tail(log_path)}")
        time.sleep(0.05)
    return tshark


def _stop_tshark(state: Path, name: str, tshark) -> None:
    tshark.send_signal(signal.SIGINT)
    try:
        tshark.wait(timeout=15)
    except subprocess.TimeoutExpired:
        netns.terminate([tshark.pid])
    netns.forget(state, name)


def capture(state: Path, output: Path, pod: str | None, seconds: float, snaplen: int | None = None,
            sll2: bool = False, scenario: str = "steady", max_rounds: int = 1000,
            also: tuple[str, ...] = (), node_any: bool = False) -> CaptureResult:
    """Capture like the linkerd-debug sidecar (tshark -i any in the pod's netns) while traffic flows.

    Order: drivers prepare (midconn: open their connections) -> tshark starts -> go file -> drivers run
    `seconds` -> TAIL_S -> tshark stops (SIGINT, so the pcapng is complete). `pod=None` captures on the
    node's bridge instead.  ``also``: more vantage points (pod keys, or ``node``) captured at the same
    time; then each goes to :func:`vantage_path` and the expected edges are those any of them sees.
    ``node_any``: the node is captured with ``-i any`` in its namespace (Linux cooked v2, so each packet's
    interface is recorded): the client's veth before a Service's DNAT, the bridge and the server's veth after.
    """
    if scenario not in SCENARIOS:
        raise LabError(f"scenario must be one of {SCENARIOS}")
    lab = load(state)
    if shutil.which("tshark") is None:
        raise LabError("tshark not found: apt-get install tshark")
    points = list(dict.fromkeys(_vantage(lab, p, node_any) for p in (pod, *also)))
    capture_key = points[0][0]
    output = output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    outputs = [output] if len(points) == 1 else [vantage_path(output, key) for key, _, _ in points]
    for path in outputs:
        path.unlink(missing_ok=True)
    run_dir = state / "run"
    run_dir.mkdir(exist_ok=True)
    go_file = run_dir / f"go-{time.time_ns()}"

    drivers = []
    tsharks: list = []
    try:
        for key in traffic.drivers_for(lab, scenario):
            ns = netns.NODE_NS if key == NODE else lab.pod(key).netns
            proc = netns.spawn(state, f"driver.{key}", netns.agent_command(
                ns, "driver", "--state", str(state), "--pod", key, "--scenario", scenario,
                "--seconds", str(seconds), "--max-rounds", str(max_rounds), "--go", str(go_file)),
                stdout=subprocess.PIPE)
            drivers.append((key, proc, _Lines(proc.stdout, "READY")))
        for key, proc, lines in drivers:
            if not lines.seen.wait(DRIVER_READY_TIMEOUT_S):
                raise LabError(f"driver {key} not ready: {_tail(state / 'logs' / f'driver.{key}.log')}")

        commands = [tshark_command(where, interface, path, snaplen, sll2 or (node_any and key in (NODE, NODE2)))
                    for (key, where, interface), path in zip(points, outputs)]
        names = ["tshark" if len(points) == 1 else f"tshark.{key}" for key, _, _ in points]
        for name, command in zip(names, commands):
            tsharks.append((name, _start_tshark(state, name, command)))
        time.sleep(0.3)  # dumpcap is reading packets once it printed the line; a margin costs nothing
        go_file.touch()

        result = CaptureResult(output, commands[0])
        for key, proc, lines in drivers:
            try:
                proc.wait(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                log.warning("driver %s overran; terminating", key)
                netns.terminate([proc.pid])
            lines.thread.join(timeout=5)
            summary = next((line for line in reversed(lines.lines) if line.startswith("{")), None)
            result.drivers.append(json.loads(summary) if summary else {"pod": key, "error": proc.returncode})
            netns.forget(state, f"driver.{key}")
        time.sleep(TAIL_S)
        while tsharks:
            _stop_tshark(state, *tsharks.pop())
    finally:
        for name, tshark in tsharks:  # a failed start: stop the ones already running
            _stop_tshark(state, name, tshark)
        for key, proc, _ in drivers:
            if proc.poll() is None:
                netns.terminate([proc.pid])
            netns.forget(state, f"driver.{key}")
        go_file.unlink(missing_ok=True)

    for path, name in zip(outputs, names):
        if not path.exists() or path.stat().st_size == 0:
            raise LabError(f"tshark wrote no capture: {_tail(state / 'logs' / f'{name}.log')}")
        path.chmod(0o644)  # dumpcap creates 0600 files; the bundled captures must be readable by anyone
    result.size_bytes = sum(path.stat().st_size for path in outputs)
    base = output.with_suffix("")
    pods_path = base.with_name(base.name + ".pods.json")
    edges_path = base.with_name(base.name + ".expected-edges.csv")
    pods_path.write_text((state / "pods.json").read_text())
    expected = {tuple(r.values()): r for key, _, _ in points
                for r in expected_rows(lab, scenario, NODE if key == NODE2 else key)}
    edges_path.write_text(rows_to_csv(sorted(expected.values(), key=_row_order)))
    result.files = [*outputs, pods_path, edges_path]
    if len(points) == 1 and capture_key not in (NODE, NODE2):
        local_path = base.with_name(base.name + ".expected-localhost.csv")
        local_path.write_text(rows_to_csv(localhost_rows(lab, scenario, capture_key)))
        result.files.append(local_path)
    return result


def _row_order(row: dict) -> tuple:
    return ipaddress.ip_address(row["src_ip"]), ipaddress.ip_address(row["dst_ip"]), row["dst_port"]


# -- status --------------------------------------------------------------------------------------------
def status(state: Path) -> dict:
    namespaces = netns.lab_namespaces()
    lab = _recorded(state) if namespaces else None
    processes = []
    for ns in namespaces:
        for pid in netns.netns_pids(ns):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            processes.append({"netns": ns, "pid": pid, "cmdline": cmdline})
    recorded = netns.recorded_pids(state)
    return {
        "state": str(state),
        "mode": lab.mode if lab else None,
        "namespaces": namespaces,
        "pods": [{"key": p.key, "namespace": p.namespace, "name": p.name, "ip": p.ip, "meshed": p.meshed,
                  "identity": p.identity if p.meshed else ""} for p in lab.pods] if lab else [],
        "node_ip": lab.node_ip if lab else None,
        "processes": processes,
        "recorded_pids": recorded,
    }
