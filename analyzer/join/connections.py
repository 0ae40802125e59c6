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
  3. Sort and merge, never all pairs: each capture's rows are sorted by (endpoints, first packet), the
     sorted runs are merged lazily, and each row is compared only with the connections of its own
     endpoints still open within the skew.
  4. Two captures that saw exactly the same connections with exactly the same packets (one file given
     twice, two captures of one interface) are reported once, as a note; their rows are joined like any.
  5. Standard library only.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

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


def sort_key(row: dict) -> tuple:
    """The order every run must be in: endpoints, then first packet."""
    return endpoints(row), row["first_ts"]


def _entries(ci: int, run: Iterable[dict]) -> Iterator[tuple]:
    """(endpoints, first packet, capture, position, row): compared as tuples in C by the merge; the
    position keeps two rows from ever being compared as dicts."""
    for n, row in enumerate(run):
        yield endpoints(row), row["first_ts"], ci, n, row


def iter_connections(runs: Sequence[Iterable[dict]], skew: float) -> Iterator[list[tuple[int, dict]]]:
    """Rows of each capture (``runs[i]``, each sorted by :func:`sort_key`) -> groups of one connection.

    Streaming (rule 3): the runs are merged lazily, and only the connections of the current endpoints
    that are still open within the skew are held, so memory does not grow with the number of rows.
    """
    return _connections(heapq.merge(*(_entries(ci, run) for ci, run in enumerate(runs))), skew)


def _connections(entries: Iterable[tuple], skew: float) -> Iterator[list[tuple[int, dict]]]:
    """Entries of :func:`_entries` in order -> groups of one connection (rule 1)."""
    ends = None
    open_: list[_Connection] = []
    for key, first, ci, _, row in entries:
        if key != ends:
            for conn in open_:
                yield conn.members
            ends, open_ = key, []
        elif open_:
            # In order of first packet: a connection that ended more than the skew before this row
            # began cannot take it, nor any later row.
            for conn in open_:
                if conn.end + skew < first:
                    yield conn.members
            open_ = [c for c in open_ if c.end + skew >= first]
        isn = isns(row)
        conn = next((c for c in open_ if c.accepts(ci, row, isn, skew)), None)
        if conn is None:
            open_.append(_Connection(ci, row, isn))
        else:
            conn.add(ci, row, isn)
    for conn in open_:
        yield conn.members


def iter_joined(runs: Sequence[Iterable[dict]], names: Sequence[str], skew: float, prints: list[list[int]]
                ) -> Iterator[dict]:
    """One row per connection from sorted runs (see :func:`iter_connections`); ``prints[i]`` collects
    capture i's fingerprint for :func:`duplicate_notes`."""
    return _joined(iter_connections(runs, skew), names, prints)


def _joined(groups: Iterable[list[tuple[int, dict]]], names: Sequence[str], prints: list[list[int]]) -> Iterator[dict]:
    for n, members in enumerate(groups):
        if len(members) == 1:
            yield members[0][1]
            continue
        cis = sorted({ci for ci, _ in members})
        yield merge_rows([r for _, r in members], list(dict.fromkeys(names[ci] for ci in cis)), len(cis))
        for ci, row in members:
            prints[ci][0] = (prints[ci][0] + hash((n, row["packets_c2s"] + row["packets_s2c"],
                                                   row["bytes_c2s"] + row["bytes_s2c"]))) & MASK64
            prints[ci][1] += 1


def join_captures(parts: Sequence[Sequence[dict]], names: Sequence[str],
                  clock_skew: float = DEFAULT_CLOCK_SKEW_S) -> JoinResult:
    """Rows of each capture (``parts[i]`` read from ``names[i]``) -> one row per connection, by flow id."""
    prints = [[0, 0] for _ in parts]  # per capture: fingerprint of what it saw, rows joined
    rows = list(iter_joined([sorted(p, key=sort_key) for p in parts], names, clock_skew, prints))
    rows.sort(key=lambda r: r["flow_id"])
    return JoinResult(rows, sum(len(p) for p in parts), duplicate_notes([len(p) for p in parts], names, prints))


def duplicate_notes(sizes: Sequence[int], names: Sequence[str], prints: list[list[int]]) -> list[str]:
    """Rule 4: captures whose every connection was joined with another's, packet for packet."""
    seen: dict[tuple, int] = {}
    notes = []
    for ci, (fingerprint, joined) in enumerate(prints):
        if not joined or joined != sizes[ci]:
            continue
        first = seen.setdefault((fingerprint, joined), ci)
        if first != ci:
            same = "the same file given twice?" if names[first] == names[ci] else "one interface captured twice?"
            notes.append(f"{names[ci]} saw exactly the {joined} connection(s) of {names[first]}, packet for packet "
                         f"({same}); each connection is counted once")
    return notes
