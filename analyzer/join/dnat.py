"""The two sides of a Service's DNAT -> one connection.

A client addresses a Service's ClusterIP; kube-proxy rewrites the destination to one endpoint pod on the
node.  A capture in the client pod sees client -> ClusterIP, one in the server pod client -> pod, and a
node capture may see both.  They are one connection.

Rules:
  1. A row to a ClusterIP:port the Service index knows gets ``service_ip``/``service_port``.
  2. It is joined with a row client -> pod when the client address and port are the same, the client's
     ISN is the same where both saw the SYN, the times overlap within the clock skew, and an
     EndpointSlice of that Service port lists the pod address and port.  Nothing else: without a slice
     there is no join (the Service's endpoints are unknown).
  3. The joined row keeps the pod as ``server_ip``/``server_port`` and the ClusterIP in ``service_ip``/
     ``service_port``; rows of one capture may join here (a node capture holds both sides).
  4. Lookups by client endpoint, never all pairs.  Standard library only.
"""

from __future__ import annotations

from .merge import merge_rows


def _overlap(a: dict, b: dict, skew: float) -> bool:
    return a["first_ts"] <= b["last_ts"] + skew and b["first_ts"] <= a["last_ts"] + skew


def _to_service(row: dict, services) -> tuple[dict, tuple] | None:
    """The row turned so that its server is the ClusterIP end, with the Service hit; None if no ClusterIP."""
    for row_ in (row, _reversed(row)):
        hit = services.lookup(row_["server_ip"], row_["server_port"], row_["first_ts"])
        if hit is not None:
            return row_, hit
    return None


def _reversed(row: dict) -> dict:
    from .merge import turned

    return turned(row, (row["server_ip"], row["server_port"]))


def join_dnat(rows: list[dict], services, skew: float) -> tuple[list[dict], int]:
    """Rows (one per connection so far) -> (rows with the DNAT sides joined, how many were joined)."""
    pre: list[tuple[int, dict, tuple]] = []
    by_client: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        if services.is_cluster_ip(row["server_ip"]) or services.is_cluster_ip(row["client_ip"]):
            found = _to_service(row, services)
            if found is not None:
                pre.append((i, *found))
                continue
        by_client.setdefault((row["client_ip"], row["client_port"]), []).append(i)
    out = list(rows)
    taken: set[int] = set()
    for i, row, (svc, sport) in pre:
        named = dict(row, service_ip=row["server_ip"], service_port=row["server_port"])
        out[i] = named
        match = next((j for j in by_client.get((row["client_ip"], row["client_port"]), ())
                      if j not in taken and _dnat_of(named, rows[j], svc, sport, services, skew)), None)
        if match is None:
            continue
        taken.add(match)
        post = rows[match]
        side = dict(named, server_ip=post["server_ip"], server_port=post["server_port"])
        names = list(dict.fromkeys(c for r in (side, post) for c in r["captures"].split(",")))
        out[i] = merge_rows([side, post], names, len(names))
        out[match] = None  # type: ignore[call-overload]
    return [r for r in out if r is not None], len(taken)


def _dnat_of(pre: dict, post: dict, svc, sport, services, skew: float) -> bool:
    if not services.allows(svc, sport, post["server_ip"], post["server_port"]) or not _overlap(pre, post, skew):
        return False
    return pre["isn_c2s"] is None or post["isn_c2s"] is None or pre["isn_c2s"] == post["isn_c2s"]
