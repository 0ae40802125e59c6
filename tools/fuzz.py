"""Mutation fuzzing of the whole analysis: captures, pod lists and TLS bytes, through the real code.

    python tools/fuzz.py --cases 100000                     # seeds: captures/ (+ the public corpus if present)
    python tools/fuzz.py --cases 5000 --target pods --seed 7
    python tools/fuzz.py --replay tests/data/fuzz           # rerun kept findings

Each case mutates one seed (bit flips, interesting 8/16/32-bit values at a random offset -- block and
record lengths are where readers loop --, truncation, chunk duplication, deletion, insertion, splicing of
two seeds) and runs it through the public entry point of its target:

* ``capture``: ``analyze(path)`` on the mutated file, then every view rendered as a table;
* ``pods``:    ``parse_pods`` on a mutated pod list (JSON text);
* ``tls``:     a ``TLSParser`` per role fed the mutated bytes in random chunks.

The only outcomes allowed are a result or the documented input errors (``AnalyzerError`` and its
subclasses; ``TLSParseError`` inside the TLS parser).  Anything else is a *crash*; a case over
``--hang-s`` seconds is a *hang*; a process that grows past ``--max-rss-mib`` is *memory*.  Each finding is
written to ``--keep`` (default ``tests/data/fuzz/``) as ``<target>-<kind>-<sha1>.<ext>``, where
``tests/test_fuzz_regressions.py`` replays it on every test run.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzer import analyze  # noqa: E402  (after the path set-up above)
from analyzer.errors import AnalyzerError  # noqa: E402
from analyzer.kube.podlist import parse_pods  # noqa: E402
from analyzer.report.export import export_view  # noqa: E402
from analyzer.report.render import FORMATS, render  # noqa: E402
from analyzer.report.schema import FLOW_NAMES, PAIR_NAMES  # noqa: E402
from analyzer.tls import NEED_DATA, TLSParser, TLSParseError  # noqa: E402

INTERESTING_8 = (0, 1, 0x7F, 0x80, 0xFF)
INTERESTING_16 = (0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x0100)
INTERESTING_32 = (0, 1, 4, 12, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x0A0D0D0A, 0x1A2B3C4D, 0xA1B2C3D4)
EXTENSIONS = {"capture": "pcapng", "pods": "json", "tls": "bin"}
MAX_SEED_BYTES = 256 * 1024


class Hang(Exception):
    """A case ran past ``--hang-s``."""


def mutate(data: bytes, rng: random.Random, other: bytes) -> bytes:
    """One to four stacked mutations of ``data`` (``other``: a second seed for splicing)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf += rng.randbytes(rng.randint(1, 64))
            continue
        at = rng.randrange(len(buf))
        op = rng.randrange(9)
        if op == 0:
            buf[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at] = rng.choice(INTERESTING_8)
        elif op == 2 and at + 2 <= len(buf):
            buf[at:at + 2] = rng.choice(INTERESTING_16).to_bytes(2, rng.choice(("big", "little")))
        elif op == 3 and at + 4 <= len(buf):
            buf[at:at + 4] = rng.choice(INTERESTING_32).to_bytes(4, rng.choice(("big", "little")))
        elif op == 4:
            del buf[at:]  # truncation
        elif op == 5:
            size = rng.randint(1, min(4096, len(buf) - at))
            buf[at:at] = buf[at:at + size] * rng.randint(1, 8)  # duplicated chunk: repeated blocks
        elif op == 6:
            del buf[at:at + rng.randint(1, 256)]
        elif op == 7:
            buf[at:at] = rng.randbytes(rng.randint(1, 64))
        elif other:
            cut = rng.randrange(len(other))
            buf[at:] = other[cut:]  # splice: the tail of another seed
    return bytes(buf)


def mutate_json(data: bytes, rng: random.Random) -> bytes:
    """Replace one node of a JSON document by a value of another type (what a hand-edited or hostile pod
    list holds: labels as a list, a probe as a string, a port as text, a huge or nested value)."""
    doc = json.loads(data)
    nodes = []

    def walk(node, depth=0):
        if depth > 12:
            return
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            nodes.append((node, key))
            walk(value, depth + 1)

    walk(doc)
    if not nodes:
        return data
    for _ in range(rng.randint(1, 3)):
        parent, key = rng.choice(nodes)
        parent[key] = rng.choice([None, True, 0, -1, 2**64, 1.5, "", "x" * 70000, "\x1b]0;t\x07", [], {},
                                  ["a"], {"a": "b"}, "2026-13-45T99:99:99Z", "10.0.0.1", "::1", "not an ip",
                                  [[[[[[]]]]]]])
    return json.dumps(doc).encode()


def next_case(target: str, seeds: list[bytes], rng: random.Random) -> bytes:
    """One mutated input for ``target``: pod lists are mutated structurally most of the time."""
    seed = rng.choice(seeds)
    if target == "pods" and rng.random() < 0.7:
        return mutate_json(seed, rng)
    return mutate(seed, rng, rng.choice(seeds))


def run_capture(data: bytes, scratch: Path) -> None:
    """``analyze`` the bytes (gzip-compressed for one case in eight), then write every view in every format."""
    path = scratch / "case.pcapng"
    path.write_bytes(gzip.compress(data, 1) if data[:1] and data[-1] % 8 == 0 else data)
    try:
        report = analyze(str(path), jobs=1)
    except AnalyzerError:
        return
    for view, rows, names in (("flows", report.flow_rows, FLOW_NAMES), ("pairs", report.pair_rows, PAIR_NAMES)):
        for fmt in FORMATS:
            render(rows, names, fmt, view)
        export_view(rows, view, "jsonl", None, io.StringIO())
    report.summary()


def run_pods(data: bytes, scratch: Path) -> None:
    try:
        parse_pods(data.decode("utf-8", "replace"), "fuzz")
    except AnalyzerError:
        return


def run_tls(data: bytes, scratch: Path) -> None:
    rng = random.Random(data[:16])
    for max_buffer in (64 * 1024, 256):
        parser = TLSParser(max_buffer=max_buffer)
        pos = 0
        try:
            while pos < len(data):
                step = rng.randint(1, 512)
                parser.receive_data(data[pos:pos + step])
                pos += step
                while parser.next_event() is not NEED_DATA:
                    pass
            parser.receive_data(b"")
            while parser.next_event() is not NEED_DATA:
                pass
        except TLSParseError:
            continue


TARGETS = {"capture": run_capture, "pods": run_pods, "tls": run_tls}


def seeds_for(target: str) -> list[bytes]:
    if target == "capture":
        paths = sorted((ROOT / "captures").glob("*.pcap*"))
        corpus = Path(os.environ.get("MTLS_CORPUS", ROOT.parent / "shared" / "corpus")) / "files"
        paths += sorted(corpus.glob("*.pcap*")) if corpus.is_dir() else []
        return [p.read_bytes() for p in paths if p.stat().st_size <= MAX_SEED_BYTES]
    if target == "pods":
        return [p.read_bytes() for p in sorted((ROOT / "captures").glob("*.pods.json"))[:1]]
    sys.path.insert(0, str(ROOT / "tests"))
    from tlsbytes import tls12_exchange, tls13_exchange  # the project's TLS byte builders

    return [b"".join(side) for exchange in (tls13_exchange(), tls13_exchange(pq=True), tls12_exchange())
            for side in exchange]


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_case(target: str, data: bytes, scratch: Path, hang_s: float) -> tuple[str, str] | None:
    """None, or (kind, detail) for a finding."""
    def on_alarm(signum, frame):
        raise Hang()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, hang_s)
    try:
        TARGETS[target](data, scratch)
    except Hang:
        return "hang", f"over {hang_s:g} s"
    except RecursionError:
        return "crash", traceback.format_exc(limit=-3)
    except Exception:  # noqa: BLE001 -- a fuzzer's job is to catch what the code did not mean to raise
        return "crash", traceback.format_exc(limit=-3)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return None


def keep(target: str, kind: str, data: bytes, keep_dir: Path) -> Path:
    keep_dir.mkdir(parents=True, exist_ok=True)
    path = keep_dir / f"{target}-{kind}-{hashlib.sha1(data).hexdigest()[:12]}.{EXTENSIONS[target]}"
    path.write_bytes(data)
    return path


def campaign(args) -> int:
    rng = random.Random(args.seed)
    findings: dict[str, int] = {}
    started = time.monotonic()
    done = 0
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for target in args.target:
            seeds = seeds_for(target)
            cases = args.cases // len(args.target)
            for _ in range(cases):
                data = next_case(target, seeds, rng)
                found = run_case(target, data, scratch, args.hang_s)
                if found is None and rss_mib() > args.max_rss_mib:
                    found = ("memory", f"RSS {rss_mib():.0f} MiB")
                done += 1
                if found:
                    kind, detail = found
                    path = keep(target, kind, data, Path(args.keep))
                    key = f"{target}/{kind}/{detail.strip().splitlines()[-1][:120]}"
                    if key not in findings:
                        print(f"{kind}: {path.name}: {detail.strip().splitlines()[-1]}", flush=True)
                    findings[key] = findings.get(key, 0) + 1
                    if kind == "memory":
                        break
                if done % 1000 == 0:
                    print(f"{done} cases, {len(findings)} distinct findings, "
                          f"{done / (time.monotonic() - started):.0f} cases/s, RSS {rss_mib():.0f} MiB", flush=True)
    summary = {"cases": done, "seconds": round(time.monotonic() - started, 1), "seed": args.seed,
               "targets": args.target, "distinct_findings": len(findings), "findings": findings}
    print(json.dumps(summary, indent=1))
    return 1 if findings else 0


def replay(directory: Path, hang_s: float) -> int:
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(directory.iterdir()):
            target = path.name.split("-", 1)[0]
            if target not in TARGETS:
                continue
            found = run_case(target, path.read_bytes(), Path(tmp), hang_s)
            print(f"{path.name}: {'ok' if found is None else found[0]}")
            failures += found is not None
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--target", action="append", choices=sorted(TARGETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hang-s", type=float, default=10.0)
    parser.add_argument("--max-rss-mib", type=float, default=1024.0)
    parser.add_argument("--keep", default=str(ROOT / "tests" / "data" / "fuzz"))
    parser.add_argument("--replay", type=Path, help="Rerun every kept finding in this folder instead.")
    args = parser.parse_args()
    if args.replay:
        return replay(args.replay, args.hang_s)
    args.target = args.target or sorted(TARGETS)
    return campaign(args)


if __name__ == "__main__":
    sys.exit(main())
