"""One flow, in full: its packets, Wireshark's dissection of its handshake, both engines' evidence.

Role: what an auditor attaches to a finding (``mtls-analyzer show CAPTURE --flow ID``).  The flow is
found by the native engine's ``flow_id``; its packets are selected in tshark by a display filter on the
two endpoints and the flow's time window (``flow_filter``), which also writes ``--export out.pcap``.

Rules:
  1. pyshark dissects only this flow's packets, at most ``max_packets`` of them: it is the slow path.
  2. pyshark runs its own asyncio loop; inside Jupyter a loop is already running and
     ``run_until_complete`` would fail, so every pyshark call runs in a worker thread with no loop.
  3. Missing tshark or pyshark raises ``BackendUnavailable``; a flow id that does not exist raises
     ``AnalyzerError``.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import os
import subprocess
from dataclasses import dataclass, field

from ..errors import AnalyzerError, BackendUnavailable
from ..report.schema import FLOW_NAMES
from ..analysis.hints import parse_decode_as
from ..pipeline import read_capture
from . import tshark
from .compare import pair_flows
from .tshark import HEURISTIC_ARGS, HEURISTIC_FIRST_ARGS, REASSEMBLY_ARGS, decode_as_args, find_tshark

TIME_SLACK_S = 1e-3  # the window is widened by this much: timestamps travel as decimal text
PYSHARK_TIMEOUT_S = 300.0
# Layers below these are transport: the dissection printed for a handshake starts at the first of them.
TRANSPORT_LAYERS = ("sll", "eth", "ip", "ipv6", "tcp", "vlan", "null", "loop", "raw", "_ws.short", "mpls", "pppoes", "ppp")


@dataclass
class Drilldown:
    native: dict
    tshark: dict | None
    display_filter: str
    packets: list[dict] = field(default_factory=list)  # number, time_s, direction, flags, length, summary
    dissections: list[tuple[int, str]] = field(default_factory=list)  # (frame number, text)
    truncated: bool = False  # more packets than max_packets


def flow_filter(row: dict) -> str:
    """A tshark display filter selecting exactly this flow's packets (endpoints + time window)."""
    a, b = row["client_ip"], row["server_ip"]
    fam = "ipv6" if ipaddress.ip_address(a).version == 6 else "ip"
    first, last = float(row["first_ts"]) - TIME_SLACK_S, float(row["last_ts"]) + TIME_SLACK_S
    ports = f"tcp.port=={int(row['client_port'])} && tcp.port=={int(row['server_port'])}"
    if a == b:
        ends = f"{fam}.src=={a} && {fam}.dst=={b}"
    else:
        ends = f"{fam}.addr=={a} && {fam}.addr=={b}"
    return f"{ends} && {ports} && frame.time_epoch >= {first:.6f} && frame.time_epoch <= {last:.6f}"


def find_flow(capture: str, flow_id: int, decode_as=()) -> tuple[dict, dict | None]:
    """(native row, tshark row or None) for the native ``flow_id`` of ``capture``."""
    native = read_capture(capture, parse_decode_as(decode_as)).rows
    row = next((r for r in native if r["flow_id"] == flow_id), None)
    if row is None:
        n = len(native)
        raise AnalyzerError(f"{capture}: no flow {flow_id} (flow ids are 0..{n - 1}; see `analyze --view flows "
                            f"--include-localhost`)")
    try:
        other = tshark.read_capture(capture, decode_as).rows
    except BackendUnavailable:
        return row, None
    mine = [r for r in other if {(r["client_ip"], r["client_port"]), (r["server_ip"], r["server_port"])}
            == {(row["client_ip"], row["client_port"]), (row["server_ip"], row["server_port"])}]
    pairs = pair_flows([row], mine)
    return row, pairs[0][1]


def export_flow(capture: str, row: dict, out: str) -> int:
    """Write the flow's packets to ``out`` (pcap, or pcapng when the name says so); returns the packet count."""
    tshark = find_tshark()
    fmt = "pcapng" if str(out).endswith(".pcapng") else "pcap"
    cmd = [tshark.path, "-n", "-r", str(capture), "-Y", flow_filter(row), "-w", str(out), "-F", fmt]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AnalyzerError(f"tshark could not export the flow: {proc.stderr.strip().splitlines()[-1:]}")
    count = subprocess.run([tshark.path, "-n", "-r", str(out), "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True, timeout=600)
    return len(count.stdout.split())


def _use_pidfd_child_watcher(loop) -> None:
    """pyshark waits for tshark through asyncio's child watcher.  The default (threaded) watcher
    loses the race when something else in the process reaps children -- Jupyter's kernel, another
    thread's ``subprocess`` -- and pyshark then reports "Unknown child process ... returncode 255" as
    a tshark crash (seen in 2-5 of 12 notebook runs).  A pidfd watcher waits on that one pid only.
    Python 3.12+ picks pidfd by itself; on 3.11 it has to be asked for (Linux >= 5.3)."""
    import asyncio
    import os
    import sys
    import warnings

    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open") or not hasattr(asyncio, "PidfdChildWatcher"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)  # 3.11's pidfd watcher serves the loop it is attached to
        asyncio.get_event_loop_policy().set_child_watcher(watcher)


def _pyshark_packets(capture: str, display_filter: str, decode_as, client: tuple[str, int], max_packets: int,
                     full: bool) -> tuple[list[dict], list[tuple[int, str]], bool]:
    """Runs in a worker thread (no running asyncio loop there): the flow's packets via pyshark."""
    import asyncio

    import pyshark

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _use_pidfd_child_watcher(loop)
    decode = {}
    args = decode_as_args(decode_as)
    for spec in args[1::2]:
        key, proto = spec.rsplit(",", 1)
        decode[key] = proto
    # The same dissection settings as the tshark engine: -n, out-of-order reassembly, the tls_tcp heuristic.
    cap = pyshark.FileCapture(capture, display_filter=display_filter, keep_packets=False, decode_as=decode or None,
                              eventloop=loop, custom_parameters=["-n", *REASSEMBLY_ARGS, *HEURISTIC_FIRST_ARGS,
                                                                 *HEURISTIC_ARGS])
    packets: list[dict] = []
    dissections: list[tuple[int, str]] = []
    payload_shown = 0
    truncated = False
    t0 = None
    try:
        for pkt in cap:
            if len(packets) >= max_packets:
                truncated = True
                break
            ts = float(pkt.sniff_timestamp)
            t0 = ts if t0 is None else t0
            net = pkt.ipv6 if hasattr(pkt, "ipv6") else pkt.ip
            src = (net.src, int(pkt.tcp.srcport))
            names = [layer.layer_name for layer in pkt.layers]
            upper = [n for n in names if n not in TRANSPORT_LAYERS]
            flags = str(pkt.tcp.get_field_value("flags_str") or "").replace("\u00b7", ".")
            packets.append({"number": int(pkt.number), "time_s": f"{ts - t0:.6f}",
                            "direction": "c->s" if src == client else "s->c", "flags": flags,
                            "tcp_len": int(pkt.tcp.len), "protocols": ":".join(upper) or "tcp"})
            is_hs = hasattr(pkt, "tls") and pkt.tls.get_field_value("handshake_type") is not None
            if is_hs or (upper and payload_shown < 2 and not any(n == "tls" for n in names)):
                if not is_hs:
                    payload_shown += 1
                shown = pkt.layers if full else [layer for layer in pkt.layers if layer.layer_name not in TRANSPORT_LAYERS]
                dissections.append((int(pkt.number), "\n".join(str(layer) for layer in shown)))
    finally:
        cap.close()
        # Let tshark's subprocess transport finish on this loop before it closes (a capture left early
        # otherwise warns "Event loop is closed" when the transport is collected).
        del cap
        import gc

        gc.collect()
        loop.run_until_complete(asyncio.sleep(0.05))
        loop.close()
    return packets, dissections, truncated


def drilldown(capture: str, flow_id: int, decode_as=(), max_packets: int = 200, full: bool = False) -> Drilldown:
    """Everything ``show`` prints for one flow.  Safe to call from Jupyter (pyshark runs in a thread)."""
    if not os.path.isfile(capture):
        raise AnalyzerError(f"{capture}: no such capture file")
    find_tshark()
    try:
        import pyshark  # noqa: F401
    except ImportError:
        raise BackendUnavailable("show needs pyshark: python3 -m pip install pyshark") from None
    native, tshark_row = find_flow(capture, flow_id, decode_as)
    flt = flow_filter(native)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(_pyshark_packets, capture, flt, decode_as, (native["client_ip"], native["client_port"]),
                          max_packets, full)
        packets, dissections, truncated = fut.result(timeout=PYSHARK_TIMEOUT_S)
    return Drilldown(native, tshark_row, flt, packets, dissections, truncated)


def side_by_side(native: dict, tshark: dict | None) -> list[dict]:
    """Rows ``column | native | tshark | same`` over every flow column."""
    out = []
    for name in FLOW_NAMES:
        a = _text(native.get(name, ""))
        b = "" if tshark is None else _text(tshark.get(name, ""))
        out.append({"column": name, "native": a, "tshark": "(tshark unavailable)" if tshark is None else b,
                    "same": "" if tshark is None else ("yes" if str(a) == str(b) else "NO")})
    return out


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.6f}"
    return "" if value is None else str(value)
