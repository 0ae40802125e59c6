"""Flow rows -> one row per host pair (client IP, server IP).  Standard library only.

Pod pairs (with Kubernetes identities) build on this in a later layer; here a "pair" is two addresses.
"""

from __future__ import annotations

from typing import Iterable


def pair_status(tls: int, plaintext: int, unknown: int) -> str:
    """One status per pair: any plaintext flow dominates, an all-TLS pair is the only clean one."""
    if plaintext:
        return "plaintext-present"
    if tls and unknown:
        return "mixed"
    if tls:
        return "all-tls"
    return "unknown-only"


def _joined(values: Iterable) -> str:
    return ",".join(str(v) for v in sorted({v for v in values if v not in ("", None)}, key=str))


class _Pair:
    """One host pair's running totals: flow rows are added one by one and not kept."""

    __slots__ = ("n", "bytes", "ports", "versions", "snis", "evidence", "first_ts", "last_ts")

    def __init__(self) -> None:
        self.n = {"tls": 0, "plaintext": 0, "unknown": 0}
        self.bytes = {"tls": 0, "plaintext": 0, "unknown": 0}
        self.ports: set = set()
        self.versions: set = set()
        self.snis: set = set()
        self.evidence: set = set()
        self.first_ts = float("inf")
        self.last_ts = float("-inf")

    def add(self, f: dict) -> None:
        verdict = f["verdict"]
        self.n[verdict] += 1
        self.bytes[verdict] += f["bytes_c2s"] + f["bytes_s2c"]
        self.ports.add(f["server_port"])
        self.versions.add(f["tls_version"])
        self.snis.add(f["sni"])
        self.evidence.add(f["evidence"])
        self.first_ts = min(self.first_ts, f["first_ts"])
        self.last_ts = max(self.last_ts, f["last_ts"])


def aggregate_pairs(flows: Iterable[dict]) -> list[dict]:
    """Group flow rows by (client_ip, server_ip), as they come (one pass, no row kept); rows come out
    sorted by pair."""
    groups: dict[tuple[str, str], _Pair] = {}
    for f in flows:
        key = (f["client_ip"], f["server_ip"])
        pair = groups.get(key)
        if pair is None:
            pair = groups[key] = _Pair()
        pair.add(f)
    rows = []
    for (cip, sip), p in sorted(groups.items()):
        n = p.n
        rows.append({
            "client_ip": cip,
            "server_ip": sip,
            "flows": sum(n.values()),
            **n,
            "bytes": sum(p.bytes.values()),
            "bytes_tls": p.bytes["tls"],
            "bytes_plaintext": p.bytes["plaintext"],
            "server_ports": _joined(p.ports),
            "tls_versions": _joined(p.versions),
            "snis": _joined(p.snis),
            "evidence": _joined(p.evidence),
            "status": pair_status(n["tls"], n["plaintext"], n["unknown"]),
            "first_ts": p.first_ts,
            "last_ts": p.last_ts,
        })
    return rows
