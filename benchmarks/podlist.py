"""Generate a large pod list and measure what reading it costs: ``load_pods`` alone, and ``analyze --pods``
on the demo capture, each in a fresh process (wall time and peak RSS).

    python3 benchmarks/podlist.py --pods 50000 --format json -o /tmp/pods50k.json     # write only
    python3 benchmarks/podlist.py --pods 50000 --format yaml --measure                # write, then measure
    python3 benchmarks/podlist.py --megabytes 200 --format json --measure
    python3 benchmarks/podlist.py --pods 50000 -o /tmp/pods50k.json --measure     # measure a list written before
    python3 benchmarks/podlist.py --pods 50000 --format yaml -o /tmp/pods50k.yaml --measure --yaml-events

Pods are shaped like the Linkerd proxy injector's output (``tests/kube_builders.injected_pod``: labels,
annotations, linkerd-init, the proxy's env, probes, conditions, container statuses), written as kubectl
writes them (JSON with a 4-space indent, YAML block style); IPs are unique across the list, and one in
a hundred pods is a finished one whose IP was reused.  ``--megabytes`` repeats pods until the file holds
that many MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kube_builders import evicted_status, injected_pod  # noqa: E402  (the tests' pod builder)

DEMO = ROOT / "captures" / "demo-transparent.pcapng"
NAMESPACES = ("emojivoto", "payments", "search", "checkout", "monitoring", "ingress", "batch", "auth")


def pod_items(n: int):
    """``n`` pods, each a JSON-ready dict (generated one at a time)."""
    for i in range(n):
        ns = NAMESPACES[i % len(NAMESPACES)]
        deployment = f"svc-{i // 20:05d}"
        ip = f"10.{64 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}"
        if i % 100 == 99:  # a pod that finished; its IP went to pod i+1's namesake later
            yield injected_pod(f"{deployment}-old-{i:06d}", ip, ns, deployment=deployment, phase="Failed",
                               status_extra=evicted_status("2024-05-01T11:00:00Z"))
        yield injected_pod(f"{deployment}-{i:06d}", ip, ns, sa=deployment, deployment=deployment)


def write_json(path: Path, items) -> None:
    """kubectl's ``-o json``: a List, 4-space indent, written item by item."""
    with path.open("w") as out:
        out.write('{\n    "apiVersion": "v1",\n    "items": [\n')
        for k, item in enumerate(items):
            text = json.dumps(item, indent=4)
            out.write((",\n" if k else "") + "\n".join("        " + line for line in text.splitlines()))
        out.write('\n    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n')


def write_yaml(path: Path, items) -> None:
    """kubectl's ``-o yaml``: block style, items as a sequence at column 0."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    with path.open("w") as out:
        out.write("apiVersion: v1\nitems:\n")
        for item in items:
            out.write(yaml.dump([item], Dumper=dumper, default_flow_style=False, sort_keys=True))
        out.write('kind: List\nmetadata:\n  resourceVersion: ""\n')


def sized(megabytes: float, fmt: str) -> int:
    """How many pods make ``megabytes`` MB in ``fmt`` (from the size of a sample of 200)."""
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample"
        (write_json if fmt == "json" else write_yaml)(sample, pod_items(200))
        per_pod = sample.stat().st_size / (200 * 1.01)
    return int(megabytes * 1e6 / per_pod)


MEASURE_LOAD = """
import sys, time, resource
from analyzer.kube import podlist
if sys.argv[2:] == ["events"]:  # YAML by the parser's events from the start, as a list the line reader leaves
    podlist._read_yaml_entries = lambda *args: None
t, cpu = time.perf_counter(), time.process_time()
index = podlist.load_pods(sys.argv[1])
print(len(index.pods), round(time.perf_counter() - t, 2), round(time.process_time() - cpu, 2),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def measure(path: Path, events: bool = False) -> dict:
    """Wall and CPU seconds and peak RSS (MiB) of ``analyze --pods`` and of ``load_pods``, each in a fresh
    process (CPU seconds are the figure to compare on a shared machine).  ``events``: ``load_pods`` only,
    a YAML list read by the parser's events alone (what a list the line reader leaves costs)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = {"file_mb": round(path.stat().st_size / 1e6, 1)}
    if not events:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(DEMO), "--pods", str(path), "-j", "1",
                        "--format", "csv", "-o", os.devnull], env=env, check=True)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the only child so far
        result |= {"analyze_s": round(time.perf_counter() - start, 2),
                   "analyze_cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                   "analyze_peak_rss_mib": usage.ru_maxrss // 1024}
    out = subprocess.run([sys.executable, "-c", MEASURE_LOAD, str(path), *(["events"] if events else [])], env=env,
                         check=True, capture_output=True, text=True).stdout.split()
    return result | {"pods": int(out[0]), "load_s": float(out[1]), "load_cpu_s": float(out[2]),
                     "load_peak_rss_mib": int(out[3]), **({"read_by": "events"} if events else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--pods", type=int, help="Running pods to write (plus one finished pod per hundred).")
    size.add_argument("--megabytes", type=float, help="Write pods until the file holds this many MB.")
    parser.add_argument("--format", choices=("json", "yaml"), default="json")
    parser.add_argument("-o", "--output", type=Path, help="Where to write it (default: a temporary file).")
    parser.add_argument("--measure", action="store_true", help="Measure load_pods and analyze --pods on it.")
    parser.add_argument("--yaml-events", action="store_true",
                        help="With --measure: load_pods only, the YAML read by the parser's events alone.")
    args = parser.parse_args()
    if args.output and args.output.is_file() and args.measure and args.output.stat().st_size:
        print(json.dumps({"format": args.format, **measure(args.output, args.yaml_events)}))  # written before
        return
    n = args.pods if args.pods else sized(args.megabytes, args.format)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.output or Path(tmp) / f"pods.{args.format}"
        (write_json if args.format == "json" else write_yaml)(path, pod_items(n))
        print(f"{path}: {n} running pods, {path.stat().st_size / 1e6:.1f} MB", file=sys.stderr)
        if args.measure:
            print(json.dumps({"format": args.format, **measure(path, args.yaml_events)}))


if __name__ == "__main__":
    main()
