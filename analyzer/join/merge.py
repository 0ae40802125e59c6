"""Several capture rows of one TCP connection -> one flow row.

Role: decide what the joined row says, given rows (``schema.FLOW_COLUMNS`` dicts) that
:mod:`analyzer.join.connections` found to be the same connection seen from several vantage points.

Rules:
  1. One orientation: the client is the one the best-placed vantage point saw open the connection
     (``client_basis`` syn > synack > hello > port > first-packet); every row is turned to it first.
  2. Packets, bytes, times, gaps: those of the vantage point that saw the most packets, never sums (two
     captures of one connection saw the same packets twice, not twice as many).
  3. The verdict columns come from the strongest evidence (handshake > records > payload > none); a
     decided verdict (tls, plaintext) beats ``unknown`` from any evidence.
  4. TLS in one capture and plaintext in another is never resolved to ``tls``: the row is ``unknown``,
     ``vantage_conflict`` is set and the reason carries both readings.
  5. Standard library only; rows are never modified in place.
"""

from __future__ import annotations

from typing import Sequence

EVIDENCE_RANK = {"handshake": 3, "records": 2, "payload": 1, "none": 0}
BASIS_RANK = {"syn": 4, "synack": 3, "hello": 2, "port": 1, "first-packet": 0}
CONFLICT_WORD = "vantage_conflict"
# What the payload said: taken together from the row with the strongest evidence.
VERDICT_COLUMNS = (
    "verdict", "evidence", "reason", "app_protocol", "sni", "identity", "alpn", "alpn_selected", "tls_version",
    "cipher_suite", "handshake", "client_hello", "handshake_detail", "mtls", "mesh", "port_hint", "hint_conflict",
    "plaintext_prefix_bytes", "tls_records", "app_data_records", "alert",
)
# Direction pairs swapped when a row is turned around.
SWAPPED = (("client_ip", "server_ip"), ("client_port", "server_port"), ("packets_c2s", "packets_s2c"),
           ("bytes_c2s", "bytes_s2c"), ("isn_c2s", "isn_s2c"))


def turned(row: dict, client: tuple[str, int]) -> dict:
    """``row`` with ``client`` as its client end (the same dict when it already is)."""
    if (row["client_ip"], row["client_port"]) == client:
        return row
    out = dict(row)
    for a, b in SWAPPED:
        out[a], out[b] = row[b], row[a]
    return out


def _packets(row: dict) -> int:
    return row["packets_c2s"] + row["packets_s2c"]


def _strongest(rows: Sequence[dict]) -> dict:
    return max(rows, key=lambda r: (EVIDENCE_RANK[r["evidence"]], _packets(r)))


def _reading(row: dict) -> str:
    return f"{row['capture']}: {row['verdict']} ({row['evidence']}) {row['reason']}".rstrip()


def merge_rows(rows: Sequence[dict], names: Sequence[str], vantages: int) -> dict:
    """One row for a connection seen in ``rows`` (at least one; ``names``: the captures, in input order)."""
    first = rows[0]
    cip, cport, verdict, evidence = first["client_ip"], first["client_port"], first["verdict"], first["evidence"]
    simple = True  # one orientation and one reading (the common case)
    base, most, basis, rank = first, -1, "", -1
    flow_id, pre = first["flow_id"], None
    for r in rows:  # plain loops: this runs once per joined connection
        if r["client_port"] != cport or r["client_ip"] != cip or r["verdict"] != verdict or r["evidence"] != evidence:
            simple = False
        packets = r["packets_c2s"] + r["packets_s2c"]
        if packets > most:
            base, most = r, packets
        if BASIS_RANK[r["client_basis"]] > rank:
            basis, rank = r["client_basis"], BASIS_RANK[r["client_basis"]]
        if r["flow_id"] < flow_id:
            flow_id = r["flow_id"]
        if pre is None and r["service_ip"]:
            pre = r
    if simple:
        # Rules 1-4 at less cost: nothing to turn, and the verdict columns are the base row's own.
        out = dict(base)
        out["client_basis"] = basis
    else:
        out, base, rows = _resolved(rows)
    for r in rows:
        if r is not base:
            if out["isn_c2s"] is None:
                out["isn_c2s"] = r["isn_c2s"]
            if out["isn_s2c"] is None:
                out["isn_s2c"] = r["isn_s2c"]
            out["syn_seen"] = out["syn_seen"] or r["syn_seen"]
            out["fin_seen"] = out["fin_seen"] or r["fin_seen"]
            out["rst_seen"] = out["rst_seen"] or r["rst_seen"]
    out["midstream"] = not out["syn_seen"]
    if not out["service_ip"] and pre is not None:
        out["service_ip"], out["service_port"] = pre["service_ip"], pre["service_port"]
    out["flow_id"] = flow_id
    out["captures"] = ",".join(names)
    out["vantages"] = vantages
    return out


def _resolved(rows: Sequence[dict]) -> tuple[dict, dict, list[dict]]:
    """Rules 1-4 in full: (the joined row so far, the row its counts are from, the rows turned to one client)."""
    lead = max(rows, key=lambda r: (BASIS_RANK[r["client_basis"]], _packets(r)))
    client = (lead["client_ip"], lead["client_port"])
    rows = [turned(r, client) for r in rows]
    base = max(rows, key=_packets)
    out = dict(base)
    out["client_basis"] = lead["client_basis"]
    decided = [r for r in rows if r["verdict"] != "unknown"]
    verdicts = {r["verdict"] for r in decided}
    best = _strongest(decided or rows)
    if best is not base:
        out.update({column: best[column] for column in VERDICT_COLUMNS})
    if len(verdicts) > 1:
        readings = list(dict.fromkeys(_reading(_strongest([r for r in decided if r["verdict"] == v]))
                                      for v in sorted(verdicts)))
        out.update(verdict="unknown", mtls="unknown", vantage_conflict=True,
                   reason=f"{CONFLICT_WORD}: the captures disagree: " + " | ".join(readings))
    return out, base, rows
