"""Orchestration overhead of ``kubectl mtls audit`` with many targets: time, threads, processes, memory.

No lab and no root needed: the kubectl stand-in (``tests/bin/kubectl``) in its synthetic mode serves
TARGETS generated pods (20 namespaces, 10 nodes), and each ``exec ... tshark -a duration:S`` waits S
seconds and streams a tiny pcapng.  What is left is the audit's own cost: listing, planning, the
``kubectl debug`` / ``get pod`` / ``exec`` calls per target (each a stand-in process, as each would be a
kubectl process), files, manifest, and the analysis of TARGETS captures.

    python benchmarks/audit.py --targets 500 --parallel 8 --seconds 1
    python benchmarks/audit.py --targets 500 --parallel 64 --seconds 2 --via node

The ideal wall time is ceil(TARGETS / PARALLEL) x SECONDS (every capture back to back, zero overhead).
Every SAMPLE seconds it reads the audit process's threads and VmRSS and counts its descendant processes
from /proc.  Prints a JSON summary: wall time, ideal, overhead in total and per target, the CPU time of
the audit process itself (its own orchestration and analysis) and of everything (with every stand-in
process), the highest thread count, process count and RSS, and how many targets were captured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _status(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = value.strip()
    except OSError:
        pass
    return out


def _descendants(pid: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _status(int(entry)).get("PPid")
            if ppid and ppid.isdigit():
                children.setdefault(int(ppid), []).append(int(entry))
    seen, todo = 0, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            seen += 1
            todo.append(child)
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=500)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=1)
    ap.add_argument("--via", choices=("ephemeral", "node"), default="ephemeral")
    ap.add_argument("--sample", type=float, default=0.5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        env = {**os.environ, "PYTHONPATH": str(REPO), "MTLSLAB_STATE": str(state),
               "KUBECTL_STANDIN_SYNTHETIC": str(args.targets),
               "PATH": f"{REPO / 'tests' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
        env.pop("KUBECTL_STANDIN_FAIL", None)
        out = Path(tmp) / "out"
        argv = [sys.executable, "-m", "analyzer.kubectl_mtls", "audit", "-A", "--via", args.via, "--seconds",
                str(args.seconds), "--parallel", str(args.parallel), "--output-dir", str(out), "--format", "json", "-q"]
        peak = {"threads": 0, "processes": 0, "rss_kib": 0, "cpu_s": 0.0}
        tick = os.sysconf("SC_CLK_TCK")
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(args.sample):
                status = _status(proc.pid)
                peak["threads"] = max(peak["threads"], int(status.get("Threads", "0") or 0))
                peak["rss_kib"] = max(peak["rss_kib"], int((status.get("VmRSS") or "0 kB").split()[0]))
                peak["processes"] = max(peak["processes"], _descendants(proc.pid))
                try:  # utime + stime of the audit process itself (not its kubectl children): the last sample
                    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    peak["cpu_s"] = (int(fields[11]) + int(fields[12])) / tick
                except (OSError, IndexError, ValueError):
                    pass
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, stderr = proc.communicate()
        wall = time.monotonic() - started
        children = os.times()  # every kubectl stand-in and the audit itself, as reaped
        all_cpu = children.children_user + children.children_system
        done.set()
        sampler.join()
        manifest = json.loads((out / "manifest.json").read_text())
        targets = len(manifest["captures"])
        captured = sum(1 for c in manifest["captures"] if c["path"])
    ideal = math.ceil(targets / args.parallel) * args.seconds
    print(json.dumps({
        "targets": targets, "captured": captured, "via": args.via, "parallel": args.parallel, "seconds": args.seconds,
        "exit": proc.returncode, "wall_s": round(wall, 1), "ideal_s": ideal, "overhead_s": round(wall - ideal, 1),
        "overhead_per_target_ms": round(1000 * (wall - ideal) / max(1, targets), 1),
        "audit_cpu_s": round(peak["cpu_s"], 1), "all_cpu_s": round(all_cpu, 1),
        "audit_cpu_per_target_ms": round(1000 * peak["cpu_s"] / max(1, targets), 1),
        "peak_threads": peak["threads"], "peak_child_processes": peak["processes"], "peak_rss_mib": round(peak["rss_kib"] / 1024, 1),
        "stderr": stderr.strip()[-300:],
    }, indent=2))


if __name__ == "__main__":
    main()
