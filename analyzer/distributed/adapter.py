"""The one place where the Dask engine calls the one-machine analysis: a work unit in, its result out.

Role: every task of ``engine.py`` that reads bytes or joins the pieces of a connection goes through the
functions below, which call ``parallel.read_range`` (a byte range, or a whole capture as the range
``(0, None)``) and ``parallel.Stitcher`` (connections cut by a range boundary).  Whatever the streaming
loop and the stitching are called, only this module follows them.

Rules:
  1. A task's result is the one-pass result of its unit: the same ``Part`` ``parallel`` would make.
  2. Stitching needs the pieces and live flows of every range of a file, never their rows: a range's
     rows stay with its task and are renumbered where they are (``Renumber``), so no process holds
     the rows of a whole file.
  3. Standard library only; no dask here (the tasks are plain functions).
"""

from __future__ import annotations

import bisect
import os
from collections import Counter
from dataclasses import dataclass, replace

from .. import parallel
from ..pipeline import not_tcp_rows
from ..capture.reader import CaptureInfo

Part = parallel.Part


def read_unit(source, start: int, stop: int | None, ports: frozenset[int], later: bool) -> Part:
    """One unit: the byte range ``[start, stop)`` of ``source`` (a whole capture: ``0, None``).
    ``later``: a range after the first one of its file (its mid-stream pieces may continue flows)."""
    return parallel.read_range(source, start, stop, ports, later)


def plan_ranges(path: str, ranges: int, size: int | None = None) -> list[int]:
    """Cut offsets ``[0, c1, ..., None]``, or [] to read it whole: a local file as ``parallel.plan``
    cuts it; a remote one (``size`` given: known plain, not gzip) as ``parallel.cuts`` would."""
    if size is None:
        return parallel.plan(path, ranges)
    return parallel.cuts(size, ranges) if ranges > 1 else []


def seam(part: Part) -> Part:
    """What the stitching needs of a range: everything but its rows (Rule 2)."""
    return replace(part, rows=[])


@dataclass(frozen=True)
class Renumber:
    """A range's local flow ids -> ids within its file: ``base`` plus the id, less the ids before it
    that continued an earlier range's flow (``absorbed``: their rows are remade by the stitching)."""

    base: int
    absorbed: tuple[int, ...]

    def rows(self, rows: list[dict]) -> list[dict]:
        out = []
        skip = set(self.absorbed)
        for row in rows:
            fid = row["flow_id"]
            if fid not in skip:
                out.append({**row, "flow_id": self.base + fid - bisect.bisect_left(self.absorbed, fid)})
        return out


class _KeyedStitcher(parallel.Stitcher):
    """``parallel.Stitcher`` that remembers which local ids of each range it joined to earlier flows."""

    def __init__(self, ports: frozenset[int], opener=None):
        super().__init__(ports, 0, opener)
        self.absorbed: tuple[int, ...] = ()

    def _join(self, part):
        joined, ended = super()._join(part)
        self.absorbed = tuple(sorted(joined))
        return joined, ended


def stitch(seams: list[Part], ports: frozenset[int], opener=None) -> tuple[Part, list[Renumber]] | None:
    """Join the ranges of one file (their ``seam``s, in file order): the rows of the flows that were
    live at a cut, with ids within the file, and how to renumber each range's own rows.  None when a
    seam does not hold (``parallel`` Rule 2): the file is then read whole.  ``opener``: as
    ``parallel.Stitcher``'s (a remote file is read again through it)."""
    stitcher = _KeyedStitcher(ports, opener)
    renumber = []
    for part in seams:
        base, stitcher.absorbed = stitcher.next_fid, ()
        if not stitcher.add(part):
            return None
        renumber.append(Renumber(base, stitcher.absorbed))
    return stitcher.result(), renumber


@dataclass
class Meta:
    """What a capture contributes to the report besides its rows (small: sent to the client)."""

    info: CaptureInfo
    packets: int
    skipped: Counter
    not_tcp: list[dict]


def meta(part: Part) -> Meta:
    """A whole capture's (or a stitched file's) counters, with its not-TCP rows as the pipeline makes them."""
    not_tcp = not_tcp_rows(part.not_tcp, part.not_tcp_loopback, os.path.basename(part.info.path))
    return Meta(part.info, part.packets, part.skipped, not_tcp)
