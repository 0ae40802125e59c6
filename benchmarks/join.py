"""How fast and how small is joining the flows of many captures into connections (``analyzer.join``)?

The scene: ``--captures`` pod captures (default 100) of ``--flows`` rows each (default 10,000), as
``kubectl mtls capture --all-pods`` gives them: every connection runs between two captured pods, so it
is in the client's capture and in the server's capture, and each pod's clock is off by up to 1.5 s.
Each capture's rows (all schema columns) are written, sorted, to a run file first (not timed); the timed
child process reads the runs, joins them with ``analyzer.join.connections.iter_joined`` and counts the
rows out without keeping them.  Its wall time and peak RSS are printed, with rows in and out, and the
join is checked: every connection once, seen by exactly its two captures.

    python benchmarks/join.py [--captures 100] [--flows 10000] [--skew 5]
"""

from __future__ import annotations

import argparse
import marshal
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from analyzer.join.connections import duplicate_notes, iter_joined, sort_key  # noqa: E402
from analyzer.report.schema import FLOW_NAMES  # noqa: E402

T0 = 1_700_000_000.0
SERVER_PORT = 8080
CHUNK = 1000  # rows per marshal record of a run file


def ip(i: int) -> str:
    return f"10.42.{i // 250}.{i % 250 + 2}"


def template() -> dict:
    row = dict.fromkeys(FLOW_NAMES, "")
    row.update(client_basis="syn", ip_version=4, packets_c2s=12, packets_s2c=10, bytes_c2s=2400, bytes_s2c=5100,
               syn_seen=True, fin_seen=True, rst_seen=False, midstream=False, gaps=0, truncated_packets=0,
               localhost=False, verdict="tls", evidence="handshake", reason="ClientHello SNI x, TLSv1.3 negotiated",
               app_protocol="tls", handshake="completed", client_hello=True, mtls="inferred", mesh=True,
               hint_conflict=False, plaintext_prefix_bytes=0, tls_records=9, app_data_records=5, vantages=1,
               vantage_conflict=False, service_port=None, duration_s=0.5)
    return row


def rows_of(capture: int, captures: int, per_client: int):
    """Capture ``capture``'s rows: its connections as a client, then those where it is the server."""
    skew = (capture % 7 - 3) * 0.5  # this pod's clock error
    name = f"pod-{capture}.pcapng"
    base = template()

    def row(client: int, k: int, fid: int) -> dict:
        server = (client + 1 + k % (captures - 1)) % captures
        first = T0 + k * 0.01 + skew
        return dict(base, capture=name, captures=name, flow_id=fid, client_ip=ip(client), client_port=10000 + k,
                    server_ip=ip(server), server_port=SERVER_PORT, first_ts=first, last_ts=first + 0.5,
                    isn_c2s=(client * 7919 + k * 104729) % 2**32, isn_s2c=(server * 15485863 + k) % 2**32)

    fid = capture * 10 * per_client
    out = []
    for k in range(per_client):
        out.append(row(capture, k, fid))
        fid += 1
    for client in range(captures):
        if client == capture:
            continue
        r = (capture - client - 1) % captures  # k % (captures - 1) must be r
        for k in range(r, per_client, captures - 1):
            out.append(row(client, k, fid))
            fid += 1
    return out


def prepare(directory: Path, captures: int, flows: int) -> int:
    per_client = flows // 2
    total = 0
    for c in range(captures):
        rows = sorted(rows_of(c, captures, per_client), key=sort_key)
        total += len(rows)
        with open(directory / f"run-{c}", "wb") as f:
            for i in range(0, len(rows), CHUNK):
                marshal.dump([tuple(row[n] for n in FLOW_NAMES) for row in rows[i:i + CHUNK]], f)
    return total


def read_run(path: Path):
    with open(path, "rb") as f:
        while True:
            try:
                chunk = marshal.load(f)
            except EOFError:
                return
            for values in chunk:
                yield dict(zip(FLOW_NAMES, values))


def run(directory: Path, captures: int, skew: float) -> None:
    names = [f"pod-{c}.pcapng" for c in range(captures)]
    prints = [[0, 0] for _ in range(captures)]
    sizes = [0] * captures

    def counted(c: int):
        for row in read_run(directory / f"run-{c}"):
            sizes[c] += 1
            yield row

    t0, c0 = time.perf_counter(), time.process_time()
    for c in range(captures):  # reading alone, to tell the join's time from the run files' decoding
        for _ in read_run(directory / f"run-{c}"):
            pass
    read_s, read_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    rows_out = 0
    vantages: dict[int, int] = {}
    for row in iter_joined([counted(c) for c in range(captures)], skew, prints):
        rows_out += 1
        vantages[row["vantages"]] = vantages.get(row["vantages"], 0) + 1
    notes = duplicate_notes(sizes, names, prints)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows_in={sum(sizes)} rows_out={rows_out} vantages={dict(sorted(vantages.items()))} "
          f"duplicate_notes={len(notes)} read_and_join_s={elapsed:.2f} read_only_s={read_s:.2f} "
          f"join_s={elapsed - read_s:.2f} join_cpu_s={cpu - read_cpu:.2f} peak_rss_mib={peak:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=100)
    parser.add_argument("--flows", type=int, default=10_000, help="rows per capture (about)")
    parser.add_argument("--skew", type=float, default=5.0, help="clock skew allowed, seconds")
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run, args.captures, args.skew)
        return
    with tempfile.TemporaryDirectory(prefix="joinbench-") as tmp:
        t0 = time.perf_counter()
        total = prepare(Path(tmp), args.captures, args.flows)
        print(f"prepared {args.captures} runs, {total} rows, in {time.perf_counter() - t0:.1f} s", flush=True)
        out = subprocess.run([sys.executable, __file__, "--run", tmp, "--captures", str(args.captures),
                              "--skew", str(args.skew)], capture_output=True, text=True, check=True).stdout
        print(out, end="")
        stats = dict(part.split("=", 1) for part in out.split() if "=" in part and not part.startswith("vantages"))
        expected = total // 2
        ok = int(stats["rows_out"]) == expected and out.count("{2: ") == 1
        print(f"check: {expected} connections expected, each seen by 2 captures: {'ok' if ok else 'FAILED'}")
        if not ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
