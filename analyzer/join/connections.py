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

from heapq import heapify, heappop, heapreplace
from itertools import chain, groupby
from operator import itemgetter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from .merge import merge_rows

DEFAULT_CLOCK_SKEW_S = 5.0


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
    """Rows found so far for one connection: their captures, time span and the ISN each end sent (``isn_a``
    of the lower endpoint of the key, ``isn_b`` of the upper one; None until a SYN of that end is seen)."""

    __slots__ = ("members", "cis", "start", "end", "isn_a", "isn_b")

    def __init__(self, ci: int, row: dict, isn_a, isn_b):
        self.members = [(ci, row)]
        self.cis = {ci}
        self.start, self.end = row["first_ts"], row["last_ts"]
        self.isn_a, self.isn_b = isn_a, isn_b

    def accepts(self, ci: int, row: dict, isn_a, isn_b, skew: float) -> bool:
        return ci not in self.cis and _same(self.start, self.end, self.isn_a, self.isn_b, row, isn_a, isn_b, skew)

    def add(self, ci: int, row: dict, isn_a, isn_b) -> None:
        self.members.append((ci, row))
        self.cis.add(ci)
        if row["first_ts"] < self.start:
            self.start = row["first_ts"]
        if row["last_ts"] > self.end:
            self.end = row["last_ts"]
        if self.isn_a is None:
            self.isn_a = isn_a
        if self.isn_b is None:
            self.isn_b = isn_b


def _same(start: float, end: float, isn_a, isn_b, row: dict, row_isn_a, row_isn_b, skew: float) -> bool:
    """Rule 1 for a row of another capture: its time overlaps [start, end] within the skew, and each end's
    ISN is the same where both saw that end's SYN."""
    return (start - skew <= row["last_ts"] and row["first_ts"] <= end + skew
            and (row_isn_a is None or isn_a is None or row_isn_a == isn_a)
            and (row_isn_b is None or isn_b is None or row_isn_b == isn_b))


def endpoints(row: dict) -> tuple:
    """The connection's key: its two endpoints, lower first, as one flat (ip, port, ip, port) tuple."""
    a, b = (row["client_ip"], row["client_port"]), (row["server_ip"], row["server_port"])
    return a + b if a <= b else b + a


def isns(row: dict, key: tuple) -> tuple:
    """(ISN the key's lower endpoint sent, ISN its upper endpoint sent), each None where no SYN was captured."""
    if row["client_port"] == key[1] and row["client_ip"] == key[0]:
        return row["isn_c2s"], row["isn_s2c"]
    return row["isn_s2c"], row["isn_c2s"]


def sort_key(row: dict) -> tuple:
    """The order every run must be in: endpoints, then first packet."""
    return endpoints(row), row["first_ts"]


def _entries(ci: int, run: Iterable[dict]) -> Iterator[tuple]:
    """(endpoints, first packet, capture, position, row): compared as tuples in C by the merge; the
    position keeps two rows from ever being compared as dicts.  (``endpoints`` inlined: once per row.)"""
    for n, row in enumerate(run):
        a, b = (row["client_ip"], row["client_port"]), (row["server_ip"], row["server_port"])
        yield (a + b if a <= b else b + a), row["first_ts"], ci, n, row


def _merge(runs: Sequence[Iterable[dict]]) -> Iterator[tuple]:
    """The entries of every run in one order: a k-way merge on a heap of the entries themselves (tuples
    compared in C; one frame less per row than ``heapq.merge``)."""
    heap, nexts = [], []
    for ci, run in enumerate(runs):
        entries = _entries(ci, run)
        nexts.append(entries.__next__)
        entry = next(entries, None)
        if entry is not None:
            heap.append(entry)
    heapify(heap)
    while heap:
        entry = heap[0]
        try:
            heapreplace(heap, nexts[entry[2]]())
        except StopIteration:
            heappop(heap)
        yield entry


def iter_joined(runs: Sequence[Iterable[dict]], skew: float, prints: list[list[int]]) -> Iterator[dict]:
    """Rows of each capture (``runs[i]``, each sorted by :func:`sort_key`) -> one row per connection;
    ``prints[i]`` collects capture i's fingerprint for :func:`duplicate_notes`.

    Streaming (rule 3): the runs are merged lazily and taken one endpoint pair at a time.  A pair seen
    in one row only, or in two rows of one connection (the common cases), is done at once, with no
    connection object made; otherwise only the connections still open within the skew are held.
    """
    joined = 0
    for key, same in groupby(_merge(runs), itemgetter(0)):
        one = next(same)
        two = next(same, None)
        if two is None:
            yield one[4]
            continue
        three = next(same, None)
        if three is None and one[2] != two[2]:  # two rows: one connection, or two
            a, b = one[4], two[4]
            if _same(a["first_ts"], a["last_ts"], *isns(a, key), b, *isns(b, key), skew):
                joined += 1
                yield _merged(((one[2], a), (two[2], b)), joined, prints)
                continue
        for members in _open(key, chain((one, two) if three is None else (one, two, three), same), skew):
            if len(members) == 1:
                yield members[0][1]
            else:
                joined += 1
                yield _merged(members, joined, prints)


def _open(key: tuple, entries: Iterable[tuple], skew: float) -> Iterator[list[tuple[int, dict]]]:
    """Entries of one endpoint pair, in order of first packet -> (capture, row) of each connection (rule
    1).  Only the connections still open within the skew are held."""
    open_: list[_Connection] = []
    for _, first, ci, _, row in entries:
        if open_ and any(c.end + skew < first for c in open_):
            # A connection that ended more than the skew before this row began cannot take it, nor
            # any later row.
            for conn in open_:
                if conn.end + skew < first:
                    yield conn.members
            open_ = [c for c in open_ if c.end + skew >= first]
        isn_a, isn_b = isns(row, key)
        for conn in open_:
            if conn.accepts(ci, row, isn_a, isn_b, skew):
                conn.add(ci, row, isn_a, isn_b)
                break
        else:
            open_.append(_Connection(ci, row, isn_a, isn_b))
    for conn in open_:
        yield conn.members


def _merged(members: Sequence[tuple[int, dict]], n: int, prints: list[list[int]]) -> dict:
    """The ``n``-th joined connection's row; each member's capture adds it to its fingerprint."""
    rows = []
    for ci, row in members:  # never two rows of one capture (rule 2)
        rows.append(row)
        seen = prints[ci]
        seen[0] += hash((n, row["packets_c2s"] + row["packets_s2c"], row["bytes_c2s"] + row["bytes_s2c"]))
        seen[1] += 1
    # The captures that saw it, in input order: each row names its own (a row may already be a join of
    # several); one file given twice is one vantage point.
    seen_by = list(dict.fromkeys([c for _, row in sorted(members, key=itemgetter(0))
                                  for c in row["captures"].split(",")]))
    return merge_rows(rows, seen_by, len(seen_by))


def join_captures(parts: Sequence[Sequence[dict]], names: Sequence[str],
                  clock_skew: float = DEFAULT_CLOCK_SKEW_S) -> JoinResult:
    """Rows of each capture (``parts[i]`` read from ``names[i]``) -> one row per connection, by flow id."""
    prints = [[0, 0] for _ in parts]  # per capture: fingerprint of what it saw, rows joined
    rows = list(iter_joined([sorted(p, key=sort_key) for p in parts], clock_skew, prints))
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
