"""RSS of ``mtls-analyzer capture`` over a long run in a lab pod: does memory stay flat?

Needs root and the lab (network namespaces).  Takes the machine's lab lock (``tests/labutil.lab_lock``),
brings the lab up, and in pod POD runs ``mtls-analyzer capture --seconds S`` while the lab's own traffic
drivers run (``analyzer.lab.control.capture``) plus an extra load of RATE short HTTP connections per second
from the node namespace to the pod's proxy admin port (kubelet-probe style, so thousands of flows start and
end).  Every SAMPLE seconds it reads ``VmRSS`` of the analyzer process and the sum over all its
descendants from /proc: dumpcap, and with ``--engine tshark`` whichever ``tshark -r -`` is running then
(it is replaced every ``RESTART_PACKETS`` packets, and two overlap for a moment at a restart).

    sudo python benchmarks/live_rss.py --seconds 150 --rate 50            # the numbers in README.md
    sudo python benchmarks/live_rss.py --seconds 150 --rate 50 --ring-mb 2 --ring-files 3
    cd tests && python ../benchmarks/live_rss.py --seconds 120 --rate 50 --sample 10 --engine tshark

Prints one line per sample and a JSON summary: for the analyzer and the children, the RSS at warm-up,
the highest after it, the growth (highest minus warm-up) and the least-squares slope after warm-up
(KiB/s: about 0 when flat, a sawtooth of restarts included); flows, packets, tshark processes seen.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

LOAD = r"""
import json, socket, sys, time
ip, port, rate, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
end, n, ok = time.monotonic() + secs, 0, 0
while time.monotonic() < end:
    t = time.monotonic()
    try:
        with socket.create_connection((ip, port), timeout=2) as s:
            s.sendall(b"GET /ready HTTP/1.1\r\nHost: " + ip.encode() + b"\r\nUser-Agent: kube-probe/1.31\r\n"
                      b"Connection: close\r\n\r\n")
            s.settimeout(2)
            while s.recv(65536):
                pass
        ok += 1
    except OSError:
        pass
    n += 1
    time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t)))
print(json.dumps({"connections": n, "ok": ok}))
"""


def rss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Children, their children, ...: every capture-side process (restarted tsharks included)."""
    out, todo = [], children(pid)
    while todo:
        kid = todo.pop()
        out.append(kid)
        todo += children(kid)
    return out


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def trend(samples: list[dict], key: str) -> dict:
    """RSS at warm-up, lowest and highest after it, growth, and the least-squares slope (KiB/s) of ``key``.

    A restarted tshark makes the children's RSS a sawtooth: read its range, and the slope over a run of
    several restarts (over one, the phase of the sawtooth dominates it)."""
    base = samples[0][key]
    high = max(s[key] for s in samples)
    slope = 0.0
    if len(samples) >= 3:
        slope = statistics.linear_regression([s["t"] for s in samples], [s[key] for s in samples]).slope
    return {"kib_at_warmup": base, "kib_min_after_warmup": min(s[key] for s in samples),
            "kib_max_after_warmup": high, "growth_kib": high - base, "kib_last": samples[-1][key],
            "slope_kib_per_s": round(slope, 1)}


def measure(state: Path, model, workdir: Path, seconds: float = 150, rate: float = 50, pod: str = "voting",
            sample_s: float = 3.0, warmup_s: float | None = None, extra: tuple[str, ...] = ()) -> dict:
    """Run the capture in ``pod`` for ``seconds`` under load; sample RSS.  Returns the samples and a summary."""
    from analyzer.lab import control, netns
    from labutil import wait_for_file

    target = model.pod(pod)
    out = workdir / "rss.pcapng"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = ["ip", "netns", "exec", target.netns, sys.executable, "-m", "analyzer", "capture", "--seconds",
           str(seconds), "-w", str(out), "--format", "csv", "--view", "pairs", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if "--ring-mb" in extra:
        from analyzer.live import ring_files_of

        deadline = time.monotonic() + 20
        while not ring_files_of(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    else:
        wait_for_file(out, proc)
    traffic_s = max(5.0, seconds - 8)
    drivers: dict = {}
    lab_traffic = threading.Thread(target=lambda: drivers.update(result=control.capture(
        state, workdir / "reference.pcapng", pod, seconds=traffic_s, max_rounds=10**6)), daemon=True)
    lab_traffic.start()
    load = subprocess.Popen(["ip", "netns", "exec", netns.NODE_NS, sys.executable, "-c", LOAD, target.ip, "4191",
                             str(rate), str(traffic_s)], stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    samples: list[dict] = []
    seen: dict[int, str] = {}  # every capture-side process seen: pid -> name
    while proc.poll() is None and time.monotonic() - t0 < seconds - 1:
        kids = descendants(proc.pid)
        for k in kids:
            seen.setdefault(k, comm(k))
        rss = {k: rss_kib(k) for k in kids}
        samples.append({"t": round(time.monotonic() - t0, 1), "analyzer_kib": rss_kib(proc.pid),
                        "children_kib": sum(rss.values()),
                        "children": {f"{seen[k]}:{k}": v for k, v in rss.items()}})
        print(f"t={samples[-1]['t']:6.1f}s analyzer={samples[-1]['analyzer_kib'] / 1024:7.1f} MiB "
              f"children={samples[-1]['children_kib'] / 1024:6.1f} MiB "
              f"({', '.join(f'{n} {v / 1024:.1f}' for n, v in samples[-1]['children'].items())})",
              file=sys.stderr, flush=True)
        time.sleep(sample_s)
    stdout, stderr = proc.communicate(timeout=seconds + 120)
    load_out, _ = load.communicate(timeout=60)
    lab_traffic.join(timeout=120)
    warm = warmup_s if warmup_s is not None else seconds / 3
    after = [s for s in samples if s["t"] >= warm] or samples
    base = after[0]["analyzer_kib"]
    analyzer, kids = trend(after, "analyzer_kib"), trend(after, "children_kib")
    m = re.search(r"(\d+) packets, (\d+) flows", stderr)
    return {
        "seconds": seconds, "rate": rate, "pod": pod, "extra": list(extra), "returncode": proc.returncode,
        "packets": int(m.group(1)) if m else None, "flows": int(m.group(2)) if m else None,
        "load": json.loads(load_out.strip().splitlines()[-1]) if load_out.strip() else {},
        "drivers": getattr(drivers.get("result"), "drivers", None),
        "warmup_s": warm,
        "analyzer_kib_at_start": samples[0]["analyzer_kib"] if samples else None,
        "analyzer_kib_at_warmup": base,
        "analyzer_kib_max_after_warmup": analyzer["kib_max_after_warmup"],
        "analyzer_growth_kib": analyzer["growth_kib"],
        "analyzer": analyzer,
        "children_kib_at_start": samples[0]["children_kib"] if samples else None,
        "children": kids,
        # [lowest, highest] after warm-up; the name predates the tshark engine (dumpcap was the only child)
        "dumpcap_kib": [min(s["children_kib"] for s in after), max(s["children_kib"] for s in after)],
        "processes_seen": sorted(f"{name}:{pid}" for pid, name in seen.items()),
        "samples": samples, "stderr_tail": stderr.strip().splitlines()[-2:],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=150)
    ap.add_argument("--rate", type=float, default=50, help="extra connections per second (node -> pod:4191)")
    ap.add_argument("--pod", default="voting")
    ap.add_argument("--sample", type=float, default=3.0)
    ap.add_argument("--ring-mb", type=int)
    ap.add_argument("--ring-files", type=int)
    ap.add_argument("--engine", choices=("native", "tshark"), default="native",
                    help="tshark: the capture's children are dumpcap and a tshark -r - replaced every "
                         "RESTART_PACKETS packets")
    ap.add_argument("--warmup", type=float, help="seconds before growth is measured (default: a third of the run)")
    args = ap.parse_args()
    from labutil import lab_unavailable, running_lab

    reason = lab_unavailable()
    if reason:
        sys.exit(f"cannot run: {reason}")
    extra: tuple[str, ...] = ("--engine", args.engine)
    if args.ring_mb:
        extra += ("--ring-mb", str(args.ring_mb), "--ring-files", str(args.ring_files or 3))
    with tempfile.TemporaryDirectory(prefix="live-rss-") as tmp:
        state = Path(tmp) / "lab"
        state.mkdir()
        with running_lab(state) as model:
            res = measure(state, model, Path(tmp), args.seconds, args.rate, args.pod, args.sample, args.warmup,
                          extra=extra)
    res.pop("samples")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
