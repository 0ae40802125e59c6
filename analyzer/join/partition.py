"""The join of many captures in parts: rows keyed so that each part can be joined alone.

Role: an engine that cannot hold every row in one process (``analyzer.distributed``) splits each
capture's rows into ``n`` parts by ``Keyer``, joins each part with ``join.combine`` as it is, and puts
the parts back together: the rows, the counters and the notes are those of one ``combine`` of all rows.

Rules:
  1. Two rows the join could make one connection get the same key.  The connection join compares rows
     with the same unordered endpoints; the DNAT join a row client -> ClusterIP:port with a row
     client -> pod:targetPort of the same client endpoint.  So a row is keyed by
       - its endpoint that is neither a ClusterIP nor a backend (an address:port an EndpointSlice lists)
         when the other one is: the client of a Service, on both sides of the DNAT;
       - the unordered endpoint pair when neither is;
       - the endpoint with the higher port (then the higher address) when both are: a client whose own
         port is a listed target port, which is then taken for the ephemeral side.
     The key depends on the endpoints and the Service index only, never on the row's orientation or time.
  2. A part keeps the rows of each capture in their order, and every capture (an empty list when it has
     no row there), so the join sees the same captures, names and order as one call.
  3. The note for a capture that saw exactly the connections of an earlier one (one file given twice)
     is decided from per-capture digests of every row, never per part: its endpoints, and per direction
     packets, bytes and initial sequence number.  Each part's own notes are dropped.
  4. Standard library only; stable hashes (never ``hash``, which differs between processes).
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Sequence

from . import combine
from .connections import duplicate_notes

COUNTERS = ("rows_in", "rows_joined", "dnat_joined")
MASK64 = (1 << 64) - 1  # digests add up modulo 2**64


class Keyer:
    """Rule 1 for one Service index (None: no Services, every row keyed by its endpoint pair)."""

    def __init__(self, services=None):
        self.cluster_ip = services.is_cluster_ip if services is not None else (lambda ip: False)
        self.backends = ({(e.ip, e.port) for eps in services.endpoints.values() for e in eps}
                         if services is not None else set())

    def _special(self, end: tuple[str, int]) -> bool:
        return self.cluster_ip(end[0]) or end in self.backends

    def key(self, row: dict) -> tuple:
        a, b = (row["client_ip"], row["client_port"]), (row["server_ip"], row["server_port"])
        sa, sb = self._special(a), self._special(b)
        if sa and sb:
            return max(a, b, key=lambda end: (end[1], end[0]))
        if sa != sb:
            return b if sa else a
        return (a, b) if a <= b else (b, a)

    def part(self, row: dict, n: int) -> int:
        return zlib.crc32(repr(self.key(row)).encode()) % n


def split(rows: Sequence[dict], n: int, services=None) -> list[list[dict]]:
    """One capture's rows in ``n`` parts (Rule 1), each in the rows' order."""
    keyer = Keyer(services)
    out: list[list[dict]] = [[] for _ in range(n)]
    for row in rows:
        out[keyer.part(row, n)].append(row)
    return out


def join_part(parts: Sequence[Sequence[Sequence[dict]]], names: Sequence[str], clock_skew: float, services=None
              ) -> tuple[list[dict], dict]:
    """One part of every capture (``parts[i]``: capture i's rows there, in pieces in their order, one per
    block of the capture) -> (its joined rows, by flow id, and its counters).  ``combine`` as it is; its
    notes are dropped (Rule 3)."""
    stats: dict = {"warnings": []}
    rows = combine([[row for piece in pieces for row in piece] for pieces in parts], names, stats, clock_skew, services)
    rows.sort(key=lambda r: r["flow_id"])
    return rows, {c: stats.get(c, 0) for c in COUNTERS}


def digest(rows: Sequence[dict]) -> tuple[int, int]:
    """(digest, rows) of a capture's rows, or of some of them: digests of parts add up (mod 2**64)."""
    total = 0
    for r in rows:
        ends = sorted(((r["client_ip"], r["client_port"], r["packets_c2s"], r["bytes_c2s"], r["isn_c2s"]),
                       (r["server_ip"], r["server_port"], r["packets_s2c"], r["bytes_s2c"], r["isn_s2c"])))
        total += int.from_bytes(hashlib.blake2b(repr(ends).encode(), digest_size=8).digest(), "little")
    return total & MASK64, len(rows)


def add_digests(digests: Sequence[tuple[int, int]]) -> tuple[int, int]:
    return sum(d for d, _ in digests) & MASK64, sum(n for _, n in digests)


def combine_parts(results: Sequence[dict], digests: Sequence[tuple[int, int]], names: Sequence[str], stats: dict,
                  clock_skew: float) -> None:
    """What ``combine`` records in ``stats``, from the parts' counters and each capture's digest (Rule 3)."""
    stats["clock_skew_s"] = clock_skew
    stats["captures"] = len(names)
    for c in COUNTERS:
        stats[c] = sum(r[c] for r in results)
    stats["warnings"] += duplicate_notes([n for _, n in digests], names, [[d, n] for d, n in digests])
