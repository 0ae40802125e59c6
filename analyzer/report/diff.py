"""Two audit documents -> the edges whose status changed between them (``mtls-analyzer diff``).

Role: what a compliance pipeline asks after each audit: which pairs got worse, which got better, which
appeared or disappeared.  Edges are matched on their ``key`` (``src_ns/src -> dst_ns/dst``); pod names
change on every rollout, so audits meant to be compared are best made per workload
(``report --resource deployment``).

Rules: both documents must use the same ``options.resource``, or their keys name different things and
the comparison is refused.  Standard library only; nothing here reads files.
"""

from __future__ import annotations

from ..errors import AnalyzerError
from .schema import EDGE_STATUSES

SECURED, EXPECTED, UNEXPECTED, MIXED, UNVERIFIED = EDGE_STATUSES
# Higher is better.  ``mixed`` never contains unexpected plaintext (edges.edge_status), so it ranks
# above ``unverified`` only in that it contains some flows that were proven.
RANK = {UNEXPECTED: 0, UNVERIFIED: 1, MIXED: 2, EXPECTED: 3, SECURED: 4}
BAD = frozenset({UNEXPECTED, UNVERIFIED, MIXED})
CHANGES = ("changed", "added", "removed")
DIFF_COLUMNS = ("change", "direction", "src_ns", "src", "dst_ns", "dst", "old_status", "new_status", "old_flows",
                "new_flows", "ports", "msg")


def _direction(old: str | None, new: str | None) -> str:
    if old is None:
        return "worse" if new in BAD else "new"
    if new is None:
        return "gone"
    return "worse" if RANK[new] < RANK[old] else "better"


def diff_reports(old: dict, new: dict, include_gone: bool = True) -> list[dict]:
    """Rows (``DIFF_COLUMNS``) for every edge whose status differs, worst news first.

    ``change``: changed | added | removed; ``direction``: worse | better | new (added, not a bad status)
    | gone (removed).  An added edge with a bad status (unexpected plaintext, unverified, mixed) is
    ``worse``.
    """
    r_old, r_new = old["options"]["resource"], new["options"]["resource"]
    if r_old != r_new:
        raise AnalyzerError(f"the reports group edges differently (per {r_old} vs per {r_new}): "
                            "make both with the same --resource")
    before = {e["key"]: e for e in old["edges"]}
    after = {e["key"]: e for e in new["edges"]}
    rows = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a is not None and b is not None and a["status"] == b["status"]:
            continue
        if b is None and not include_gone:
            continue
        edge = b if b is not None else a
        assert edge is not None
        rows.append({
            "change": "changed" if a is not None and b is not None else "added" if a is None else "removed",
            "direction": _direction(a["status"] if a else None, b["status"] if b else None),
            "src_ns": edge["src_ns"], "src": edge["src"], "dst_ns": edge["dst_ns"], "dst": edge["dst"],
            "old_status": a["status"] if a else "", "new_status": b["status"] if b else "",
            "old_flows": a["flows"] if a else 0, "new_flows": b["flows"] if b else 0,
            "ports": edge["ports"], "msg": edge["msg"],
        })
    order = {"worse": 0, "new": 1, "better": 2, "gone": 3}
    rows.sort(key=lambda r: (order[r["direction"]], r["src_ns"], r["src"], r["dst_ns"], r["dst"]))
    return rows


def summary(rows: list[dict]) -> str:
    """One line: how many pairs changed, by direction."""
    counts = {d: sum(1 for r in rows if r["direction"] == d) for d in ("worse", "better", "new", "gone")}
    shown = ", ".join(f"{n} {d}" for d, n in counts.items() if n)
    return f"{len(rows)} pairs changed status" + (f" ({shown})" if shown else "")
