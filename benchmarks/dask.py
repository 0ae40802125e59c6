"""The Dask engine against one process: many captures, and one large capture in byte ranges.

    python benchmarks/dask.py [--dir /tmp/daskbench] [--captures 16] [--packets 100000] [--big 1000000] [--repeat 3]

Writes (once) ``--captures`` generated captures of ``--packets`` packets and one of ``--big`` packets
under ``--dir`` (``gencapture.py``; never in the repository), then times, each in a fresh process:

* one process: ``analyze(files, jobs=1)`` and its pairs;
* ``LocalCluster`` with 1 and with 2 single-threaded worker processes;
* ``dask scheduler`` + 2 ``dask worker`` processes started here on 127.0.0.1 (``--no-nanny``).

A Dask run is what ``analyze --dask --view pairs`` does: read every capture (byte ranges of 64 MiB for a
large file, stitched on the cluster), count the flows, join several captures in keyed parts, reduce the
pairs on the workers; only counts and the pairs come back.  Wall time is the analysis (cluster start and stop are shown apart); peak RSS is the client's
own ``ru_maxrss`` and each worker's (asked from the worker at the end); CPU seconds are the client's and
the workers' (user + system, during the analysis), the work done whatever the load did to the wall time.  Each configuration runs
``--repeat`` times and the fastest counts; the load average before that run is printed with it (this
machine's 2 cores are shared).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This file is named dask.py: its folder must not be on the path, or ``import dask`` would find it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_s() -> float:
    """CPU seconds of this process so far (user + system): the work, whatever the load made the wall."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- one configuration, in this (fresh) process ------------------------------------------------------
def one_process(files: list[str]) -> dict:
    from analyzer import analyze

    t, cpu = time.perf_counter(), _cpu_s()
    report = analyze(files, jobs=1)
    pairs = report.pair_rows
    return {"wall_s": time.perf_counter() - t, "cpu_s": _cpu_s() - cpu, "flows": len(report.flow_rows),
            "pairs": len(pairs), "client_mib": _mib(_peak_rss()), "workers_mib": []}


def on_dask(files: list[str], address, workers: int) -> dict:
    import distributed

    from analyzer.distributed import engine
    from analyzer.distributed.inputs import expand
    from analyzer.join import DEFAULT_CLOCK_SKEW_S

    t0 = time.perf_counter()
    if address:
        client = distributed.Client(address)
        cluster = None
    else:
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
        client = distributed.Client(cluster)
    client.wait_for_workers(workers)
    started = time.perf_counter() - t0
    cpu0 = client.run(_cpu_s)
    t, cpu = time.perf_counter(), _cpu_s()
    run = engine.Run(client, expand(files), frozenset())
    run.read()
    stats = run.tally(False)
    if run.needs_join(None):  # several captures: joined on the workers in keyed parts, as analyze --dask does
        run.join(stats, DEFAULT_CLOCK_SKEW_S, None, False)
    pairs = run.pairs(False)
    wall = time.perf_counter() - t
    cpu = _cpu_s() - cpu + sum(v - cpu0[w] for w, v in client.run(_cpu_s).items())
    rss = client.run(_peak_rss)
    units = run.units
    client.close()
    if cluster is not None:
        cluster.close()
    shown = sum(stats["verdicts"].values())
    return {"wall_s": wall, "cpu_s": cpu, "start_s": started, "flows": shown, "pairs": len(pairs), "units": units,
            "join_parts": stats.get("join_parts", 0),
            "client_mib": _mib(_peak_rss()), "workers_mib": sorted(_mib(v) for v in rss.values())}


def child(args) -> None:
    files = json.loads(args.files)
    out = one_process(files) if args.mode == "one" else on_dask(files, args.address, args.workers)
    print(json.dumps(out))


# -- driver ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fastest(runs: int, configs: list) -> list[tuple[str, dict]]:
    """Each configuration's fastest of ``runs`` fresh runs, taken in turns (one of each, then again), so
    that a spell of load from others falls on all of them alike."""
    seen: dict[str, list[dict]] = {name: [] for name, _ in configs}
    for _ in range(runs):
        for name, measure in configs:
            seen[name].append(measure())
    return [(name, min(seen[name], key=lambda r: r["wall_s"])) for name, _ in configs]


def _run_child(files: list[str], mode: str, workers: int = 0, address: str = "") -> dict:
    load = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--child", mode, "--files", json.dumps(files), "--workers", str(workers),
           "--address", address]
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, check=True, timeout=3600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load"] = load
    return result


def _with_processes(files: list[str]) -> dict:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for n in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                           "--no-nanny", "--no-dashboard", "--name", f"bench{n}"], env=ENV,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return _run_child(files, "dask", 2, address)
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(timeout=30)


def generate(directory: Path, n: int, packets: int, big: int) -> tuple[list[str], str]:
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(1, n + 1):
        p = directory / f"c{i}.pcap"
        if not p.exists():
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gencapture.py"), "-o", str(p), "--packets",
                            str(packets), "--seed", str(i)], check=True, stdout=subprocess.DEVNULL)
        files.append(str(p))
    p = directory / "big.pcap"
    if big and not p.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gencapture.py"), "-o", str(p), "--packets", str(big),
                        "--seed", "99"], check=True, stdout=subprocess.DEVNULL)
    return files, str(p)


def table(title: str, rows: list[tuple[str, dict]]) -> str:
    base = rows[0][1]["wall_s"]
    lines = [f"**{title}**", "",
             "| run | wall s | speed-up | CPU s (all processes) | cluster start s | flows | units | client peak RSS MiB "
             "| workers' peak RSS MiB | load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['wall_s']:.1f} | {base / r['wall_s']:.2f}× | {r['cpu_s']:.1f} | {r.get('start_s', 0):.1f} | "
                     f"{r['flows']} | {r.get('units', '')} | {r['client_mib']} | "
                     f"{', '.join(map(str, r['workers_mib'])) or '-'} | {r['load']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/daskbench"))
    ap.add_argument("--captures", type=int, default=16)
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000, help="packets of the one large capture (0: no such case)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration; the fastest counts (default 3)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--files", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--address", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.mode = args.child
        child(args)
        return
    files, big = generate(args.dir, args.captures, args.packets, args.big)
    results = {}
    cases = [(f"{len(files)} captures of {args.packets} packets", files)] + ([(f"one capture of {args.big} packets", [big])] if args.big else [])
    for title, inputs in cases:
        configs = [("one process (jobs=1)", lambda: _run_child(inputs, "one")),
                   ("LocalCluster, 1 worker", lambda: _run_child(inputs, "dask", 1)),
                   ("LocalCluster, 2 workers", lambda: _run_child(inputs, "dask", 2)),
                   ("scheduler + 2 worker processes", lambda: _with_processes(inputs))]
        rows = fastest(args.repeat, configs)
        results[title] = rows
        print(table(title, rows), end="\n\n", flush=True)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
