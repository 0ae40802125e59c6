"""Benchmark ``mtls-analyzer analyze`` against tshark, ndpiReader, pyshark and a bare-Python floor.

Role: one command that generates the benchmark captures (``gencapture.py``: the same flows as Linux
cooked v2 and v1), then, on those same files, times each tool and records its peak RSS, checks
``analyze`` against the ground truth, and writes a markdown report to
``benchmarks/results/<date>.md`` (also printed).

What is measured (wall time and peak RSS of the child process, from ``os.wait4``; for pyshark
the RSS is the largest of the Python process and the tshark it drives, not their sum):

- ``mtls-analyzer analyze FILE --view pairs --format csv -o /dev/null`` -- the whole pipeline --
  on the SLL2 file (what ``tshark -i any`` writes today) and on the SLL file (for nDPI);
- ``tshark -n -r FILE -d tcp.port==8080,tls -T fields -e ...`` with the fields the job needs,
  written to /dev/null, on the SLL2 file;
- ``ndpiReader -q -i FILE -w SUMMARY`` on the SLL file (nDPI 4.2 refuses SLL2); ``-q`` silences
  the report, ``-w`` writes the per-protocol summary used to confirm every packet was read;
- pyshark ``FileCapture`` (default and ``use_ek=True``, ``keep_packets=False``) iterating a
  10,000-packet ``editcap`` slice of the SLL2 file;
- ``floor.py``: mmap + ``struct.unpack_from`` building a flow dict, for orientation.

Targets: analyze at least as fast as ndpiReader on the same file, at least 10x the
tshark-fields packet rate, peak RSS under 300 MiB.

Must not: write captures into the repository (they go to ``--workdir``, default under /tmp), or
touch anything outside ``benchmarks/results/``.

Usage::

    python benchmarks/run.py                 # 1,000,000 packets (~950 MB per file)
    python benchmarks/run.py --quick         # 100,000 packets, a smoke run
    python benchmarks/run.py --skip-pyshark --repeat 3
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import gencapture  # noqa: E402  (benchmarks/ is not a package)

MIB = 1024 * 1024
RSS_SAMPLE_S = 0.05
PYSHARK_SLICE = 10_000
TARGET_VS_NDPI = 1.0  # analyze packets/s >= ndpiReader's on the SLL file
TARGET_VS_TSHARK = 10.0  # analyze packets/s >= 10x tshark-fields on the SLL2 file
TARGET_RSS_MIB = 300

# The fields the job needs, in tshark's names.
TSHARK_FIELDS = ("frame.time_epoch", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "tcp.stream",
                 "tcp.len", "tls.record.content_type", "tls.handshake.type",
                 "tls.handshake.extensions_server_name", "tls.handshake.extensions.supported_version",
                 "http.request.method")

# Runs in a child interpreter so that its RSS (and its tshark's) is measured alone.
PYSHARK_CHILD = """
import json, sys, time
import pyshark
path, use_ek = sys.argv[1], sys.argv[2] == "ek"
start = time.perf_counter()
cap = pyshark.FileCapture(path, keep_packets=False, use_ek=use_ek, decode_as={"tcp.port==8080": "tls"})
n = 0
for pkt in cap:
    pkt.highest_layer  # touch the parsed packet
    n += 1
cap.close()
print(json.dumps({"packets": n, "seconds": time.perf_counter() - start}))
"""


@dataclass
class Result:
    """One measured command."""

    name: str
    file: str  # "sll2", "sll" or "slice"
    packets: int
    wall_s: float | None = None
    rss_mib: float | None = None
    note: str = ""
    ok: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def pps(self) -> float | None:
        return self.packets / self.wall_s if self.ok and self.wall_s else None


def tree_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, from /proc (0 for a process already gone).  Walks
    /proc/PID/task/*/children, so a sample reads a few files, not every process's status."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        vm = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(vm.group(1)) if vm else 0
    return total


class TreeRss(threading.Thread):
    """Samples the summed RSS of a process tree every ``RSS_SAMPLE_S`` until ``stop()``."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(RSS_SAMPLE_S):
            self.peak = max(self.peak, tree_rss_kib(self.pid))

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def measure(cmd: list[str], stdout=subprocess.DEVNULL, cwd: Path | None = None) -> tuple[float, float, int, str]:
    """Run ``cmd``; return (wall seconds, peak RSS MiB, exit code, stderr tail).

    Peak RSS is the larger of the summed RSS of the process tree sampled every ``RSS_SAMPLE_S``
    (analyze's range processes, pyshark's tshark all count) and ``os.wait4``'s largest single
    resident set in the tree (which catches a peak between samples), never counting this script.
    """
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=err, cwd=cwd)
        sampler = TreeRss(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        tree_kib = sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-2000:].decode(errors="replace")
    return wall, max(usage.ru_maxrss, tree_kib) / 1024, proc.returncode, tail  # both KiB on Linux


def best_of(repeat: int, cmd: list[str], **kw) -> tuple[float, float, int, str]:
    """Fastest wall time and highest peak RSS over ``repeat`` runs; stops at the first failure."""
    runs = []
    for _ in range(repeat):
        runs.append(measure(cmd, **kw))
        if runs[-1][2] != 0:
            return runs[-1]
    return min(r[0] for r in runs), max(r[1] for r in runs), 0, runs[-1][3]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- captures -----------------------------------------------------------------------------------

def ensure_capture(workdir: Path, linktype: str, packets: int, seed: int) -> tuple[Path, float | None]:
    """Generate (or reuse: the generator is deterministic) one capture; return (path, seconds)."""
    path = workdir / f"bench-{packets}-s{seed}.{linktype}.pcap"
    truth = Path(str(path) + ".truth.csv")
    if path.exists() and truth.exists():
        log(f"reusing {path}")
        return path, None
    log(f"generating {path}")
    start = time.perf_counter()
    gencapture.main(["-o", str(path), "--linktype", linktype, "--packets", str(packets), "--seed", str(seed)])
    return path, time.perf_counter() - start


def warm(path: Path) -> None:
    """Read the file once so every tool starts from the page cache, not the disk."""
    with open(path, "rb") as f:
        while f.read(16 * MIB):
            pass


# --- tools --------------------------------------------------------------------------------------

def analyze_command(override: str | None) -> list[str] | None:
    """The analyzer's command line, or None when it is not installed/runnable yet.  By default the
    interpreter running this script (so ``/usr/bin/python3 benchmarks/run.py`` measures Debian's)."""
    candidates = [shlex.split(override)] if override else []
    candidates.append([sys.executable, "-m", "analyzer"])
    if shutil.which("mtls-analyzer"):
        candidates.append(["mtls-analyzer"])
    for cmd in candidates:
        probe = subprocess.run(cmd + ["analyze", "--help"], cwd=REPO, capture_output=True, text=True)
        if probe.returncode == 0:
            return cmd
    return None


def run_analyze(cmd: list[str], path: Path, label: str, packets: int, repeat: int, jobs: int = 0) -> Result:
    """``jobs`` 0: the default (one process per CPU for a file this size); 1: one process."""
    name = "analyze" if not jobs else f"analyze --jobs {jobs}"
    full = cmd + ["analyze", str(path), "--view", "pairs", "--format", "csv", "-o", os.devnull, "--jobs", str(jobs)]
    log(f"{name} {label}")
    wall, rss, rc, err = best_of(repeat, full, cwd=REPO)
    if rc:
        return Result(name, label, packets, ok=False, note=f"exit {rc}: {last_line(err)}")
    processes = re.search(r"\((\d+) processes\)", err)
    return Result(name, label, packets, wall, rss, note=f"{processes.group(1)} processes" if processes else "")


def run_tshark(path: Path, packets: int, repeat: int) -> Result:
    cmd = ["tshark", "-n", "-r", str(path), "-d", "tcp.port==8080,tls", "-T", "fields"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    log("tshark fields")
    wall, rss, rc, err = best_of(repeat, cmd)
    if rc:
        return Result("tshark -T fields", "sll2", packets, ok=False, note=f"exit {rc}: {last_line(err)}")
    return Result("tshark -T fields", "sll2", packets, wall, rss)


def run_ndpi(path: Path, packets: int, repeat: int, workdir: Path) -> Result:
    summary = workdir / "ndpi-summary.txt"
    cmd = ["ndpiReader", "-q", "-i", str(path), "-w", str(summary)]
    log("ndpiReader")
    wall, rss, rc, err = best_of(repeat, cmd)
    # ndpiReader exits 0 even when it skips a file ("Unsupported datalink"): check what it read.
    seen = ndpi_packets(summary)
    if rc or seen != packets:
        return Result("ndpiReader", "sll", packets, ok=False,
                      note=f"exit {rc}, {seen} of {packets} packets: {last_line(err)}")
    return Result("ndpiReader", "sll", packets, wall, rss)


def ndpi_packets(summary: Path) -> int:
    """Sum the per-protocol packet counts of an ``ndpiReader -w`` summary (name, packets, bytes, flows)."""
    if not summary.exists():
        return 0
    total = 0
    for line in summary.read_text().splitlines():
        cols = line.split("\t")
        if len(cols) == 4 and cols[1].isdigit():
            total += int(cols[1])
    return total


def run_pyshark(slice_path: Path, mode: str) -> Result:
    name = f"pyshark ({'use_ek=True' if mode == 'ek' else 'default'})"
    log(name)
    out = slice_path.with_suffix(f".{mode}.json")
    with open(out, "wb") as f:
        wall, rss, rc, err = measure([sys.executable, "-c", PYSHARK_CHILD, str(slice_path), mode], stdout=f)
    if rc:
        return Result(name, "slice", PYSHARK_SLICE, ok=False, note=f"exit {rc}: {last_line(err)}")
    info = json.loads(out.read_text())
    res = Result(name, "slice", info["packets"], wall, rss)
    if info["packets"] != PYSHARK_SLICE:
        res.note = f"iterated {info['packets']} packets"
    return res


def run_floor(path: Path, packets: int, repeat: int, workdir: Path) -> Result:
    log("bare-Python floor")
    out = workdir / "floor.json"
    cmd = [sys.executable, str(HERE / "floor.py"), str(path)]
    runs = []
    for _ in range(repeat):
        with open(out, "wb") as f:
            runs.append(measure(cmd, stdout=f))
        if runs[-1][2]:
            return Result("floor: mmap + unpack_from", "sll2", packets, ok=False, note=last_line(runs[-1][3]))
    info = json.loads(out.read_text())
    return Result("floor: mmap + unpack_from", "sll2", info["packets"], min(r[0] for r in runs),
                  max(r[1] for r in runs), note=f"{info['flows']:,} flow keys")


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


# --- correctness ----------------------------------------------------------------------------------

def check_truth(cmd: list[str], path: Path, workdir: Path) -> str:
    """Run ``analyze --view flows`` once (untimed) and compare verdicts with the truth sidecar."""
    out = workdir / "analyze-flows.csv"
    base = cmd + ["analyze", str(path), "--view", "flows", "--format", "csv", "-o", str(out)]
    log("analyze --view flows (correctness, untimed)")
    proc = subprocess.run(base + ["--include-localhost"], cwd=REPO, capture_output=True, text=True)
    localhost_note = ""
    if proc.returncode:
        proc = subprocess.run(base, cwd=REPO, capture_output=True, text=True)
        localhost_note = " (without --include-localhost: loopback flows are expected to be missing)"
    if proc.returncode:
        return f"Correctness not checked: `analyze --view flows` exited {proc.returncode}: {last_line(proc.stderr)}"
    truth = {}
    for row in csv.DictReader(open(str(path) + ".truth.csv")):
        truth[flow_key(row)] = row
    confusion: collections.Counter = collections.Counter()
    swapped = 0
    found = set()
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        need = {"client_ip", "client_port", "server_ip", "server_port", "verdict"}
        if not need <= set(reader.fieldnames or ()):
            return f"Correctness not checked: flows CSV lacks {sorted(need - set(reader.fieldnames or ()))}"
        for row in reader:
            key = flow_key(row)
            t = truth.get(key)
            if t is None:
                confusion[("(not in truth)", row["verdict"])] += 1
                continue
            found.add(key)
            confusion[(t["verdict"], row["verdict"])] += 1
            swapped += row["client_ip"] != t["client_ip"] or row["client_port"] != t["client_port"]
    for key, t in truth.items():
        if key not in found:
            confusion[(t["verdict"], "(missing)")] += 1
    got = sorted({g for _, g in confusion})
    lines = [f"Verdicts of `analyze --view flows` against `{path.name}.truth.csv`{localhost_note}:", "",
             "| truth \\ analyze | " + " | ".join(got) + " |", "|---|" + "---|" * len(got)]
    for t in sorted({t for t, _ in confusion}):
        lines.append(f"| {t} | " + " | ".join(str(confusion[(t, g)]) for g in got) + " |")
    agree = sum(n for (t, g), n in confusion.items() if t == g)
    lines += ["", f"{agree:,} of {len(truth):,} truth flows agree; client/server swapped on {swapped:,}."]
    bad = confusion[("plaintext", "tls")] + confusion[("unknown", "tls")]
    if bad:
        lines.append(f"**{bad} flow(s) called tls that the truth says are not.**")
    return "\n".join(lines)


def flow_key(row: dict) -> tuple:
    a = (row["client_ip"], str(row["client_port"]))
    b = (row["server_ip"], str(row["server_port"]))
    return tuple(sorted((a, b)))


# --- report -------------------------------------------------------------------------------------

def fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def versions() -> dict:
    def first(cmd: list[str], pattern: str) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True).stdout
        except FileNotFoundError:
            return "not installed"
        m = re.search(pattern, out)
        return m.group(1) if m else "?"

    try:
        pyshark = importlib.metadata.version("pyshark")
    except importlib.metadata.PackageNotFoundError:
        pyshark = "not installed"
    cpu = "?"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "python": f"{platform.python_version()} ({sys.executable})",
        "tshark": first(["tshark", "--version"], r"TShark \(Wireshark\) (\S+)"),
        "nDPI": first(["ndpiReader", "-h"], r"nDPI ([\d.]+)"),
        "pyshark": pyshark,
    }


def report(results: list[Result], meta: dict, correctness: str) -> str:
    by = {(r.name, r.file): r for r in results}
    a_sll2, a_sll = by.get(("analyze", "sll2")), by.get(("analyze", "sll"))

    def analyze_for(r: Result) -> Result | None:
        return a_sll if r.file == "sll" else a_sll2

    lines = [f"# Benchmark {meta['date']}", ""]
    lines += [f"- machine: {meta['cpu']}; Python {meta['python']}",
              f"- tools: tshark {meta['tshark']}, nDPI {meta['nDPI']}, pyshark {meta['pyshark']}",
              f"- captures: `gencapture.py --packets {meta['packets']} --seed {meta['seed']}`, "
              f"{meta['size_mb']:.0f} MB each, {meta['flows']:,} TCP flows; "
              f"sll2 = Linux cooked v2, sll = v1 (for nDPI); pyshark reads the first {PYSHARK_SLICE:,} "
              f"packets of the sll2 file",
              f"- each figure is the fastest of {meta['repeat']} run(s), files in the page cache; "
              "peak RSS is the process tree's (analyze's range processes, pyshark's tshark: summed)",
              "- analyze runs with its default `--jobs` (one process per CPU for a file this size: "
              "byte ranges stitched into the one-pass rows); `--jobs 1` is one process; ndpiReader and "
              "tshark read one pcap file on one thread",
              f"- load average before the run: {meta['load']} (other work on the machine skews timings)"]
    if meta.get("gen"):
        lines.append(f"- generator: {meta['gen']}")
    lines += ["", "| tool | file | packets | wall s | packets/s | peak RSS MiB | analyze is ×faster |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        a = analyze_for(r)
        ratio = a.pps / r.pps if (a and a.pps and r.pps and not r.name.startswith("analyze")) else None
        name = r.name + (f" ({r.note})" if r.note else "")
        lines.append(f"| {name} | {r.file} | {r.packets:,} | {fmt(r.wall_s if r.ok else None, '.2f')} | "
                     f"{fmt(r.pps, ',.0f')} | {fmt(r.rss_mib if r.ok else None, '.0f')} | {fmt(ratio, '.2f')} |")
    lines += ["", "Targets:", ""]
    nd, ts = by.get(("ndpiReader", "sll")), by.get(("tshark -T fields", "sll2"))

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    r1 = a_sll.pps / nd.pps if (a_sll and a_sll.pps and nd and nd.pps) else None
    r2 = a_sll2.pps / ts.pps if (a_sll2 and a_sll2.pps and ts and ts.pps) else None
    rss = max((r.rss_mib for r in (a_sll, a_sll2) if r and r.ok), default=None)
    lines += [f"- analyze ≥ ndpiReader on the SLL file: {fmt(r1, '.2f')}× → "
              f"{verdict(None if r1 is None else r1 >= TARGET_VS_NDPI)}",
              f"- analyze ≥ 10× tshark fields on the SLL2 file: {fmt(r2, '.1f')}× → "
              f"{verdict(None if r2 is None else r2 >= TARGET_VS_TSHARK)}",
              f"- analyze peak RSS < {TARGET_RSS_MIB} MiB: {fmt(rss, '.0f')} MiB → "
              f"{verdict(None if rss is None else rss < TARGET_RSS_MIB)}",
              "", correctness, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets per capture (default 1,000,000)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 100,000 packets")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mtls-bench",
                    help="where captures and scratch files go (default /tmp/mtls-bench; never the repo)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per full-file tool; the fastest counts")
    ap.add_argument("--analyze-cmd", help="analyzer command (default: mtls-analyzer, else python -m analyzer)")
    ap.add_argument("--results", type=Path, default=HERE / "results", help="directory for <date>.md")
    for tool in ("analyze", "tshark", "ndpi", "pyshark", "floor"):
        ap.add_argument(f"--skip-{tool}", action="store_true", help=f"do not run {tool}")
    args = ap.parse_args(argv)
    packets = 100_000 if args.quick else args.packets
    workdir = args.workdir.resolve()
    if REPO in workdir.parents or workdir == REPO:
        ap.error("--workdir must be outside the repository")
    workdir.mkdir(parents=True, exist_ok=True)

    sll2, gen2 = ensure_capture(workdir, "sll2", packets, args.seed)
    sll, gen1 = ensure_capture(workdir, "sll", packets, args.seed)
    with open(str(sll2) + ".truth.csv") as f:
        flows = sum(1 for _ in f) - 1
    meta = {"date": dt.date.today().isoformat(), "packets": packets, "seed": args.seed, "repeat": args.repeat,
            "size_mb": sll2.stat().st_size / 1e6, "flows": flows, **versions(),
            "load": " / ".join(f"{x:.2f}" for x in os.getloadavg())}
    if gen2 is not None:
        meta["gen"] = f"{packets:,} packets (SLL2) written in {gen2:.1f} s ({packets / gen2:,.0f} packets/s)"
    for p in (sll2, sll):
        warm(p)

    results: list[Result] = []
    correctness = "Correctness not checked: analyze skipped."
    cmd = None if args.skip_analyze else analyze_command(args.analyze_cmd)
    if not args.skip_analyze and cmd is None:
        correctness = ("Correctness not checked: the analyzer is not runnable yet "
                       "(`mtls-analyzer analyze --help` failed).")
        results.append(Result("analyze", "sll2", packets, ok=False, note="not runnable yet"))
    if cmd:
        results.append(run_analyze(cmd, sll2, "sll2", packets, args.repeat))
        results.append(run_analyze(cmd, sll, "sll", packets, args.repeat))
        results.append(run_analyze(cmd, sll2, "sll2", packets, args.repeat, jobs=1))
        results.append(run_analyze(cmd, sll, "sll", packets, args.repeat, jobs=1))
        correctness = check_truth(cmd, sll2, workdir)
    if not args.skip_tshark:
        results.append(run_tshark(sll2, packets, args.repeat))
    if not args.skip_ndpi:
        results.append(run_ndpi(sll, packets, args.repeat, workdir))
    if not args.skip_pyshark:
        slice_path = workdir / f"slice-{PYSHARK_SLICE}.pcap"
        subprocess.run(["editcap", "-r", str(sll2), str(slice_path), f"1-{PYSHARK_SLICE}"], check=True)
        results.append(run_pyshark(slice_path, "default"))
        results.append(run_pyshark(slice_path, "ek"))
    if not args.skip_floor:
        results.append(run_floor(sll2, packets, args.repeat, workdir))

    text = report(results, meta, correctness)
    args.results.mkdir(parents=True, exist_ok=True)
    suffix = "" if packets == 1_000_000 else f"-{packets // 1000}k"
    out = args.results / f"{meta['date']}{suffix}.md"
    out.write_text(text)
    print(text)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
