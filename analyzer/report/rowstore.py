"""Flow rows kept compactly: a list of dicts while few, compressed chunks of tuples past ``IN_MEMORY``.

Role: one capture may hold millions of connections (a SYN flood); a row as a dict costs ~1.7 KiB, as a
tuple in schema order inside a zlib-compressed chunk a few tens of bytes.  ``RowStore`` is appended to
as flows finish and read back as dicts: after ``sort_by_flow_id`` in flow-id order, before it in the
order appended while few and in no particular order past that; a read decompresses one chunk of each
sorted run at a time (below), so it never rebuilds the whole list.

Rules:
  1. Below ``IN_MEMORY`` rows nothing changes: the rows are the dicts appended, in a list.
  2. Rows are flow rows (``schema.FLOW_NAMES`` keys, in that order); values are what ``marshal`` keeps.
  3. Flow-id order without a sort of everything: rows are dealt, as they come, onto sorted runs (the
     first run whose last flow id is smaller, else the last run, whose chunks are each sorted); reading
     merges the runs, one chunk of each at a time.  Flows finish roughly in the order they began, so
     nearly every row lands on the first run or two; only when the last run's chunks overlap are they
     all read at once.
  4. Standard library only.
"""

from __future__ import annotations

import heapq
import operator
from collections import Counter
import marshal
import zlib
from typing import Iterable, Iterator

from .schema import FLOW_NAMES

IN_MEMORY = 20_000  # rows kept as dicts; past this they are compressed
CHUNK = 4096  # rows per compressed chunk
RUNS = 4  # sorted runs rows are dealt onto; the last one takes whatever fits none


class RowStore:
    """Append dicts; iterate dicts.  ``len``, ``bool``, ``==`` a list, and ``[i]`` (slow) work too."""

    def __init__(self, rows: Iterable[dict] = ()) -> None:
        self.rows: list[dict] | None = []  # the dicts, until there are too many
        self.runs: list[_Run] = []
        self.count = 0
        self.by_fid = False
        self.tally: Counter[tuple[bool, str]] = Counter()  # (localhost, verdict) -> rows, once compressed
        self.extend(rows)

    def append(self, row: dict) -> None:
        self.count += 1
        if self.rows is not None:
            self.rows.append(row)
            if len(self.rows) > IN_MEMORY:
                rows, self.rows = self.rows, None
                self.runs = [_Run() for _ in range(RUNS)]
                for r in rows:
                    self._deal(r)
            return
        self._deal(row)

    def _deal(self, row: dict) -> None:
        self.tally[row["localhost"], row["verdict"]] += 1
        fid = row["flow_id"]
        for run in self.runs[:-1]:
            if run.last < fid:
                run.add(fid, tuple(row.values()))
                return
        self.runs[-1].add(fid, tuple(row.values()))

    def extend(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self.append(row)

    @property
    def compact(self) -> bool:
        """The rows are compressed (more than ``IN_MEMORY``)."""
        return self.rows is None

    def sort_by_flow_id(self) -> None:
        if self.rows is not None:
            self.rows.sort(key=lambda r: r["flow_id"])
        self.by_fid = True

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[dict]:
        if self.rows is not None:
            return iter(self.rows)
        runs = [run for run in self.runs if run.last >= 0]
        if not self.by_fid:
            tuples = (t for run in runs for t in run.stored())
        elif len(runs) == 1:
            tuples = runs[0].sorted()
        else:
            tuples = heapq.merge(*(run.sorted() for run in runs), key=_fid)
        return (dict(zip(FLOW_NAMES, values)) for _fid, values in tuples)

    def __getitem__(self, i: int) -> dict:
        if self.rows is not None:
            return self.rows[i]
        if i < 0:
            i += self.count
        for k, row in enumerate(self):
            if k == i:
                return row
        raise IndexError(i)

    def __eq__(self, other) -> bool:
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):  # pickled (a byte range's rows) as its state, not as a list of dicts
        return (_restore, (self.rows, self.runs, self.count, self.by_fid, self.tally))


def _restore(rows, runs, count, by_fid, tally) -> RowStore:
    store = RowStore()
    store.rows, store.runs, store.count, store.by_fid, store.tally = rows, runs, count, by_fid, tally
    return store


class _Run:
    """Rows whose flow ids mostly increase: full chunks compressed, each sorted by flow id."""

    __slots__ = ("chunks", "pending", "last", "in_order")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.pending: list[tuple[int, tuple]] = []
        self.last = -1
        self.in_order = True  # every chunk follows the one before it (no overlap)

    def add(self, fid: int, values: tuple) -> None:
        if fid < self.last:
            self.in_order = False
        self.last = max(self.last, fid)
        self.pending.append((fid, values))
        if len(self.pending) >= CHUNK:
            self.chunks.append(zlib.compress(marshal.dumps(self.pending), 1))
            self.pending = []

    def stored(self) -> Iterator[tuple[int, tuple]]:
        for chunk in self.chunks:
            yield from marshal.loads(zlib.decompress(chunk))
        yield from self.pending

    def sorted(self) -> Iterator[tuple[int, tuple]]:
        """The run in flow-id order: chunk after chunk when they follow each other, else merged."""
        parts = [_sorted_chunk(c) for c in self.chunks] + [iter(sorted(self.pending, key=_fid))]
        if self.in_order:
            for part in parts:
                yield from part
        else:
            yield from heapq.merge(*parts, key=_fid)


def _sorted_chunk(chunk: bytes) -> Iterator[tuple[int, tuple]]:
    """One chunk's rows by flow id, decompressed when first read."""
    yield from sorted(marshal.loads(zlib.decompress(chunk)), key=_fid)


_fid = operator.itemgetter(0)  # a row's flow id, as the sort key
