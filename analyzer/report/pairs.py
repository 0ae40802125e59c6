"""Flow rows -> one row per host pair (client IP, server IP).  Standard library only.

Pod pairs (with Kubernetes identities) build on this in a later layer; here a "pair" is two addresses.
"""

from __future__ import annotations

from collections import defaultdict
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


def aggregate_pairs(flows: Iterable[dict]) -> list[dict]:
    """Group flow rows by (client_ip, server_ip); rows come out sorted by pair."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for f in flows:
        groups[(f["client_ip"], f["server_ip"])].append(f)
    rows = []
    for (cip, sip), fs in sorted(groups.items()):
        n = {v: sum(1 for f in fs if f["verdict"] == v) for v in ("tls", "plaintext", "unknown")}
        rows.append({
            "client_ip": cip,
            "server_ip": sip,
            "flows": len(fs),
            **n,
            "bytes": sum(f["bytes_c2s"] + f["bytes_s2c"] for f in fs),
            "bytes_tls": sum(f["bytes_c2s"] + f["bytes_s2c"] for f in fs if f["verdict"] == "tls"),
            "bytes_plaintext": sum(f["bytes_c2s"] + f["bytes_s2c"] for f in fs if f["verdict"] == "plaintext"),
            "server_ports": _joined(f["server_port"] for f in fs),
            "tls_versions": _joined(f["tls_version"] for f in fs),
            "snis": _joined(f["sni"] for f in fs),
            "evidence": _joined(f["evidence"] for f in fs),
            "status": pair_status(n["tls"], n["plaintext"], n["unknown"]),
            "first_ts": min(f["first_ts"] for f in fs),
            "last_ts": max(f["last_ts"] for f in fs),
        })
    return rows
