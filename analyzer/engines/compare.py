"""Cross-check: pair the flows of two engines and list every flow where they disagree, with both reasons.

Flows are paired by capture, the two endpoints (in either order) and the first packet's time; a flow
only one engine reports is a disagreement of its own.  Two flows agree when every column in
``COMPARED`` is equal.  Standard library only.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

# What a verdict rests on.  Counters (packets, records) and reasons are engine-specific and are shown,
# not compared; the client side is compared through the endpoint columns.
COMPARED = ("verdict", "evidence", "localhost", "client_ip", "client_port", "sni", "tls_version", "mesh")
DISAGREEMENT_COLUMNS = ("capture", "flow_id", "other_flow_id", "client_ip", "client_port", "server_ip",
                        "server_port", "columns", "native", "tshark", "native_reason", "tshark_reason")
TIME_SLACK_S = 1e-3  # tshark prints epoch seconds as text; the native reader computes them as floats


def _key(row: dict) -> tuple:
    ends = sorted([(str(row["client_ip"]), int(row["client_port"])), (str(row["server_ip"]), int(row["server_port"]))])
    return (row["capture"], ends[0], ends[1])


def pair_flows(left: Sequence[dict], right: Sequence[dict]) -> list[tuple[dict | None, dict | None]]:
    """Pairs (left_row, right_row); None where one engine has no such flow."""
    pending: dict[tuple, list[dict]] = defaultdict(list)
    for r in right:
        pending[_key(r)].append(r)
    pairs: list[tuple[dict | None, dict | None]] = []
    for row in left:
        candidates = pending.get(_key(row), [])
        best = None
        for cand in candidates:
            if abs(float(cand["first_ts"]) - float(row["first_ts"])) <= TIME_SLACK_S:
                best = cand
                break
        if best is None and candidates:
            best = min(candidates, key=lambda c: abs(float(c["first_ts"]) - float(row["first_ts"])))
            if abs(float(best["first_ts"]) - float(row["first_ts"])) > 1.0:
                best = None
        if best is not None:
            candidates.remove(best)
        pairs.append((row, best))
    pairs += [(None, r) for rows in pending.values() for r in rows]
    return pairs


def _norm(column: str, value) -> object:
    if value is None:
        return ""
    if column == "client_port":
        return int(value)
    if isinstance(value, bool) or column in ("localhost", "mesh"):
        return bool(value) and value not in ("False", "false", "0")
    return str(value)


def differing(a: dict, b: dict, columns: Sequence[str] = COMPARED) -> list[str]:
    return [c for c in columns if _norm(c, a.get(c)) != _norm(c, b.get(c))]


def disagreements(native: Sequence[dict], tshark: Sequence[dict], columns: Sequence[str] = COMPARED) -> list[dict]:
    """One row per flow on which the engines differ (``DISAGREEMENT_COLUMNS``)."""
    out = []
    for a, b in pair_flows(native, tshark):
        ref = a or b
        assert ref is not None
        if a is None or b is None:
            cols = ["missing in native" if a is None else "missing in tshark"]
        else:
            cols = differing(a, b, columns)
            if not cols:
                continue
        out.append({
            "capture": ref["capture"],
            "flow_id": a["flow_id"] if a else "",
            "other_flow_id": b["flow_id"] if b else "",
            "client_ip": ref["client_ip"], "client_port": ref["client_port"],
            "server_ip": ref["server_ip"], "server_port": ref["server_port"],
            "columns": ",".join(cols),
            "native": _summary(a, cols), "tshark": _summary(b, cols),
            "native_reason": a["reason"] if a else "", "tshark_reason": b["reason"] if b else "",
        })
    return out


def _summary(row: dict | None, cols: Sequence[str]) -> str:
    if row is None:
        return "-"
    shown = [c for c in cols if c in row]
    base = f"{row['verdict']}/{row['evidence']}"
    extra = [f"{c}={row[c]}" for c in shown if c not in ("verdict", "evidence")]
    return " ".join([base, *extra])


def agreement(native: Sequence[dict], tshark: Sequence[dict]) -> dict:
    """Counts for a report line: flows paired, agreeing, disagreeing, unpaired."""
    pairs = pair_flows(native, tshark)
    both = [(a, b) for a, b in pairs if a is not None and b is not None]
    agree = sum(1 for a, b in both if not differing(a, b))
    return {"paired": len(both), "agree": agree, "disagree": len(both) - agree,
            "only_native": sum(1 for a, b in pairs if b is None), "only_tshark": sum(1 for a, b in pairs if a is None)}
