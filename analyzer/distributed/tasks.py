"""The functions Dask runs on its workers: read a unit, join ranges, and reduce rows where they are.

Role: plain functions of plain arguments (no dask import), so that a worker unpickles them by name.
A *block* is a list of flow rows of one capture, ids counted from 0 within that capture; it stays on
the worker that made it.  What leaves a worker is small: counts, and the rows of pairs and edges, which
are computed by hashing each flow's group key into one of ``n`` buckets, so that every pair or edge is
whole in one bucket and no reduce task holds more than its share of the flows.

Rules: a task's result depends only on its arguments (Dask may run it again on another worker after
one is lost); stable hashing (crc32, not ``hash``, which differs between processes).
"""

from __future__ import annotations

import os
import re
import zlib
from collections import Counter

from . import adapter
from .inputs import Input, open_input

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


# -- reading ---------------------------------------------------------------------------------------------
def read(inp: Input, start: int, stop: int | None, ports: frozenset[int], later: bool) -> adapter.Part:
    """One unit: a whole capture (``0, None``) or one byte range of a local file."""
    return adapter.read_unit(open_input(inp), start, stop, ports, later)


def stitch(seams: list[adapter.Part], ports: frozenset[int], inp: Input):
    """Join the ranges of ``inp`` (``adapter.stitch``); what it reads again, it reads from ``inp``."""
    return adapter.stitch(seams, ports, lambda _path: open_input(inp))


def rows_of(part: adapter.Part, renumber: adapter.Renumber | None = None) -> list[dict]:
    """A unit's rows as a block: all of them (a whole capture), or a range's own, renumbered."""
    return part.rows if renumber is None else renumber.rows(part.rows)


def holds(stitched) -> bool:
    """Did every seam of the file hold (``adapter.stitch``)?"""
    return stitched is not None


def stitched_rows(stitched) -> list[dict]:
    return stitched[0].rows


def renumbering(stitched, i: int) -> adapter.Renumber:
    return stitched[1][i]


def stitched_meta(stitched) -> adapter.Meta:
    return adapter.meta(stitched[0])


def shown(rows: list[dict], include_localhost: bool) -> list[dict]:
    """The rows a report shows: localhost hops only when asked for (like ``Report.flow_rows``)."""
    return rows if include_localhost else [r for r in rows if not r["localhost"]]


def tally(rows: list[dict], include_localhost: bool) -> tuple[int, int, Counter]:
    """(flows, localhost flows, verdicts of the shown flows) of a block."""
    return len(rows), sum(1 for r in rows if r["localhost"]), Counter(r["verdict"] for r in shown(rows, include_localhost))


def offset_rows(rows: list[dict], offset: int) -> list[dict]:
    """A block's rows with flow ids counted across all captures (``offset``: flows of those before)."""
    return [{**r, "flow_id": r["flow_id"] + offset} for r in rows] if offset else rows


def split(rows: list[dict], offset: int, n: int, services, name: str | None = None) -> list[list[dict]]:
    """A block's rows, ids across all captures, in the ``n`` keyed parts of the join (``join.partition``);
    ``name``: the capture's name when its file name alone does not tell it from another's."""
    from ..join.partition import split as split_rows

    rows = offset_rows(rows, offset)
    if name is not None:
        rows = [{**r, "capture": name, "captures": name} for r in rows]
    return split_rows(rows, n, services)


# -- outputs ----------------------------------------------------------------------------------------------
def write_block(rows: list[dict], offset: int, include_localhost: bool, out_dir: str, capture: int,
                name: str, block: int) -> int:
    """One Parquet file of the flows dataset: ``OUT/NNNN_CAPTURE/part-NNNN.parquet``; rows written."""
    from ..report.export import write_parquet
    from ..report.schema import FLOW_COLUMNS

    folder = os.path.join(out_dir, f"{capture:04d}_{SAFE_NAME.sub('_', name)}")
    os.makedirs(folder, exist_ok=True)
    out = offset_rows(shown(rows, include_localhost), offset)
    write_parquet(out, FLOW_COLUMNS, os.path.join(folder, f"part-{block:04d}.parquet"), "flows")
    return len(out)


def write_joined_block(rows: list[dict], include_localhost: bool, out_dir: str, names: list[str], part: int) -> int:
    """A joined part as Parquet files, one in the folder of each capture its rows name (``capture``)."""
    by_capture: dict[str, list[dict]] = {}
    for row in rows:
        by_capture.setdefault(row["capture"], []).append(row)
    return sum(write_block(group, 0, include_localhost, out_dir, names.index(name), name, part)
               for name, group in by_capture.items())


def _bucket(key: tuple, n: int) -> int:
    return zlib.crc32(repr(key).encode()) % n


def pair_buckets(rows: list[dict], n: int, include_localhost: bool) -> list[list[dict]]:
    """A block's shown rows in ``n`` buckets by host pair."""
    out: list[list[dict]] = [[] for _ in range(n)]
    for r in shown(rows, include_localhost):
        out[_bucket((r["client_ip"], r["server_ip"]), n)].append(r)
    return out


def edge_buckets(rows: list[dict], n: int, include_localhost: bool, pods, resource: str) -> list[list[dict]]:
    """A block's shown rows in ``n`` buckets by edge (``edges.flow_edge``'s key)."""
    from ..report.edges import flow_edge

    out: list[list[dict]] = [[] for _ in range(n)]
    for r in shown(rows, include_localhost):
        out[_bucket(flow_edge(r, pods, resource)[0], n)].append(r)
    return out


def pick(buckets: list[list[dict]], i: int) -> list[dict]:
    return buckets[i]


def reduce_pairs(*buckets: list[dict]) -> list[dict]:
    from ..report.pairs import aggregate_pairs

    return aggregate_pairs(r for b in buckets for r in b)


def reduce_edges(pods, resource: str, trust_unknown_clients: bool, *buckets: list[dict]) -> list[dict]:
    from ..report.edges import edge_rows

    return edge_rows((r for b in buckets for r in b), pods, resource, trust_unknown_clients=trust_unknown_clients)
