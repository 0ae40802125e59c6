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


VERDICT_INDEX = {"tls": 0, "plaintext": 1, "unknown": 2}
_unions: dict[tuple[frozenset, object], frozenset] = {}  # shared value sets: most pairs have the same few
MAX_UNIONS = 100_000


def _with(values: frozenset, value) -> frozenset:
    """``values`` with ``value`` added (empty values are not), as a set shared by every pair that has it."""
    if value in values or value in ("", None):
        return values
    out = _unions.get((values, value))
    if out is None:
        if len(_unions) >= MAX_UNIONS:
            _unions.clear()
        out = _unions[(values, value)] = values | {value}
    return out


class _Pair:
    """One host pair's running totals: flow rows are added one by one and not kept."""

    __slots__ = ("counts", "ports", "versions", "snis", "evidence", "first_ts", "last_ts")

    def __init__(self) -> None:
        self.counts = [0, 0, 0, 0, 0, 0]  # flows tls, plaintext, unknown; then their bytes
        self.ports = self.versions = self.snis = self.evidence = frozenset()
        self.first_ts = float("inf")
        self.last_ts = float("-inf")

    def add(self, f: dict) -> None:
        v = VERDICT_INDEX[f["verdict"]]
        self.counts[v] += 1
        self.counts[v + 3] += f["bytes_c2s"] + f["bytes_s2c"]
        self.ports = _with(self.ports, f["server_port"])
        self.versions = _with(self.versions, f["tls_version"])
        self.snis = _with(self.snis, f["sni"])
        self.evidence = _with(self.evidence, f["evidence"])
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
        tls, plaintext, unknown, b_tls, b_plain, b_unknown = p.counts
        rows.append({
            "client_ip": cip,
            "server_ip": sip,
            "flows": tls + plaintext + unknown,
            "tls": tls,
            "plaintext": plaintext,
            "unknown": unknown,
            "bytes": b_tls + b_plain + b_unknown,
            "bytes_tls": b_tls,
            "bytes_plaintext": b_plain,
            "server_ports": _joined(p.ports),
            "tls_versions": _joined(p.versions),
            "snis": _joined(p.snis),
            "evidence": _joined(p.evidence),
            "status": pair_status(tls, plaintext, unknown),
            "first_ts": p.first_ts,
            "last_ts": p.last_ts,
        })
    return rows
