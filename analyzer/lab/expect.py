"""Compare an analyzer's flows with a lab capture's expected edges (the lab's side of the contract).

The analyzer contract: a flows table with ``client_ip``, ``server_ip``, ``server_port``,
``verdict`` (tls/plaintext/unknown) and ``localhost``. Localhost flows are left out; every other flow must
fall on an expected (client, server, port) edge, and every TCP edge must be seen with exactly its expected
verdict. UDP edges (reason ``udp``) are checked only if the analyzer reports them, since it may be TCP-only.
Pure Python over dict rows; no pandas needed.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path


def read_edges(path: Path) -> list[dict]:
    with Path(path).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["dst_port"] = int(row["dst_port"])
    return rows


def edges_path(capture: Path, kind: str = "expected-edges") -> Path:
    """captures/X.pcapng -> captures/X.<kind>.csv"""
    capture = Path(capture)
    return capture.with_name(capture.name.removesuffix(".pcapng").removesuffix(".pcap") + f".{kind}.csv")


def observed_edges(flow_rows) -> dict[tuple[str, str, int], Counter]:
    observed: dict[tuple[str, str, int], Counter] = defaultdict(Counter)
    for flow in flow_rows:
        if bool(flow["localhost"]):
            continue
        observed[(str(flow["client_ip"]), str(flow["server_ip"]), int(flow["server_port"]))][str(flow["verdict"])] += 1
    return observed


def compare(flow_rows, expected: list[dict]) -> list[str]:
    """Problems, one line each; an empty list means the analyzer agrees with the lab's wiring."""
    observed = observed_edges(flow_rows)
    by_key = {(r["src_ip"], r["dst_ip"], r["dst_port"]): r for r in expected}
    problems = []
    for key, row in by_key.items():
        got = observed.get(key)
        label = f"{row['src_pod'] or row['src_ip']} -> {row['dst_pod']}:{row['dst_port']}"
        if not got:
            if row["reason"] != "udp":
                problems.append(f"missing: {label} (expected {row['verdict']}, {row['status']})")
        elif set(got) != {row["verdict"]}:
            problems.append(f"verdict: {label} expected {row['verdict']} ({row['status']}), got {dict(got)}")
    for key, got in sorted(observed.items()):
        if key not in by_key:
            problems.append(f"unexpected: {key[0]} -> {key[1]}:{key[2]} {dict(got)} (not wired by the lab)")
    return problems
