"""Flow rows of several captures -> one row per TCP connection.

Role: the one place where vantage points meet.  Each capture was analysed alone; here the rows that are
the same connection (seen in the client pod, the server pod, on the node) become one row
(:func:`analyzer.join.merge.merge_rows`), so that every count above this layer counts connections.

Rules:
  1. Same connection = same unordered endpoints and ports, from different captures, overlapping in time
     within ``clock_skew`` seconds (captures from different nodes have different clocks), and - where
     both saw a SYN of a direction - the same initial sequence number.  A tuple reused later (another
     ISN, or no overlap) is a new connection, as within one capture.
  2. Rows of one capture are never joined with each other: that capture's flow table already told its
     connections apart.  (The DNAT join of :mod:`analyzer.join.dnat` is the one exception.)
  3. Sort and merge, never all pairs: rows are sorted by (endpoints, first packet) and each row is
     compared only with the connections of its own endpoints still open within the skew.
  4. Two captures that saw exactly the same connections with exactly the same packets (one file given
     twice, two captures of one interface) are reported once, as a note; their rows are joined like any.
  5. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Sequence

from .merge import merge_rows

DEFAULT_CLOCK_SKEW_S = 5.0
MASK64 = (1 << 64) - 1


@dataclass
class JoinResult:
    rows: list[dict]
    rows_in: int
    notes: list[str] = field(default_factory=list)
    dnat_joined: int = 0  # connections to a ClusterIP joined with their post-DNAT side

    @property
    def joined(self) -> int:
        """Rows folded into another (rows in - rows out)."""
        return self.rows_in - len(self.rows)


class _Connection:
    """Rows found so far for one connection: their captures, time span and ISNs by endpoint."""

    __slots__ = ("members", "cis", "start", "end", "isn")

    def __init__(self, ci: int, row: dict, isn: dict):
        self.members = [(ci, row)]
        self.cis = {ci}
        self.start, self.end = row["first_ts"], row["last_ts"]
        self.isn = isn

    def accepts(self, ci: int, row: dict, isn: dict, skew: float) -> bool:
        if ci in self.cis or row["first_ts"] > self.end + skew or row["last_ts"] < self.start - skew:
            return False
        return all(self.isn.get(ep, value) == value for ep, value in isn.items())

    def add(self, ci: int, row: dict, isn: dict) -> None:
        self.members.append((ci, row))
        self.cis.add(ci)
        self.start, self.end = min(self.start, row["first_ts"]), max(self.end, row["last_ts"])
        for ep, value in isn.items():
            self.isn.setdefault(ep, value)


def endpoints(row: dict) -> tuple:
    a, b = (row["client_ip"], row["client_port"]), (row["server_ip"], row["server_port"])
    return (a, b) if a <= b else (b, a)


def isns(row: dict) -> dict:
    """Endpoint -> the ISN of the SYN it sent, where one was captured."""
    out = {}
    if row["isn_c2s"] is not None:
        out[(row["client_ip"], row["client_port"])] = row["isn_c2s"]
    if row["isn_s2c"] is not None:
        out[(row["server_ip"], row["server_port"])] = row["isn_s2c"]
    return out


def group_connections(entries: Sequence[tuple[int, dict]], skew: float) -> list[list[tuple[int, dict]]]:
    """(capture index, row) pairs -> groups of the same connection (rule 1), sorted by endpoints then time."""
    ordered = sorted(entries, key=lambda e: (endpoints(e[1]), e[1]["first_ts"], e[0]))
    groups: list[list[tuple[int, dict]]] = []
    for _, same_ends in groupby(ordered, key=lambda e: endpoints(e[1])):
        open_: list[_Connection] = []
        for ci, row in same_ends:
            # Rows come in order of first packet: a connection that ended more than the skew before this
            # row began cannot take it, nor any later row.
            groups.extend(c.members for c in open_ if c.end + skew < row["first_ts"])
            open_ = [c for c in open_ if c.end + skew >= row["first_ts"]]
            isn = isns(row)
            conn = next((c for c in open_ if c.accepts(ci, row, isn, skew)), None)
            if conn is None:
                open_.append(_Connection(ci, row, isn))
            else:
                conn.add(ci, row, isn)
        groups.extend(c.members for c in open_)
    return groups


def join_captures(parts: Sequence[Sequence[dict]], names: Sequence[str],
                  clock_skew: float = DEFAULT_CLOCK_SKEW_S) -> JoinResult:
    """Rows of each capture (``parts[i]`` read from ``names[i]``) -> one row per connection, by flow id."""
    entries = [(ci, row) for ci, rows in enumerate(parts) for row in rows]
    rows, prints = [], [[0, 0] for _ in parts]  # per capture: fingerprint of what it saw, rows joined
    for n, members in enumerate(group_connections(entries, clock_skew)):
        if len(members) == 1:
            rows.append(members[0][1])
            continue
        cis = sorted({ci for ci, _ in members})
        rows.append(merge_rows([r for _, r in members], list(dict.fromkeys(names[ci] for ci in cis)), len(cis)))
        for ci, row in members:
            prints[ci][0] = (prints[ci][0] + hash((n, row["packets_c2s"] + row["packets_s2c"],
                                                   row["bytes_c2s"] + row["bytes_s2c"]))) & MASK64
            prints[ci][1] += 1
    rows.sort(key=lambda r: r["flow_id"])
    return JoinResult(rows, len(entries), duplicate_notes(parts, names, prints))


def duplicate_notes(parts, names, prints) -> list[str]:
    """Rule 4: captures whose every connection was joined with another's, packet for packet."""
    seen: dict[tuple, int] = {}
    notes = []
    for ci, (fingerprint, joined) in enumerate(prints):
        if not joined or joined != len(parts[ci]):
            continue
        first = seen.setdefault((fingerprint, joined), ci)
        if first != ci:
            same = "the same file twice" if names[first] == names[ci] else "the same traffic twice"
            notes.append(f"{names[ci]} saw exactly the connections of {names[first]} ({joined}, packet for packet: "
                         f"{same}, e.g. one interface captured twice); each connection is counted once")
    return notes
