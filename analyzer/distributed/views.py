"""``analyze --dask``: the table a command asked for, computed on the cluster, with its summary.

Role: between the CLI and ``engine.Run``.  Only what the view needs comes back to the client: the
flows of a flows table (or none, when they go to a Parquet dataset the workers write), the pairs or
the edges reduced on the workers, and counts for the summary.  Several captures are first joined into
one row per connection on the workers (``Run.join``, in keyed parts); the views are made from those.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

from ..errors import AnalyzerError
from ..join import DEFAULT_CLOCK_SKEW_S
from .engine import Run, check_dataset_folder, cluster, summary
from .inputs import expand
from .tasks import shown


class Views(NamedTuple):
    rows: list[dict] | None  # the view's rows; None when the workers wrote them (flows to a dataset)
    edges: list[dict]  # with a pod list, for the summary and the gates
    warnings: list[str]
    summary: str
    written: int  # flow rows the workers wrote


def analyze_views(captures, address, ports: frozenset[int], include_localhost: bool, pods, resource: str,
                  view: str, dataset: str | None, progress: Callable[[str], None] | None = None,
                  range_bytes: int | None = None, trust_unknown_clients: bool = False,
                  clock_skew: float = DEFAULT_CLOCK_SKEW_S) -> Views:
    """Run the captures on the cluster at ``address``; ``dataset``: write the flows there as Parquet.
    Raises ``AnalyzerError`` when no capture could be read (each failure on its own line)."""
    inputs = expand(captures)
    if dataset is not None:
        check_dataset_folder(dataset)
    with cluster(address) as client:
        run = Run(client, inputs, ports, range_bytes, progress)
        run.read()
        if not run.good:
            raise AnalyzerError("no capture could be analysed:\n" + "\n".join(run.failures))
        stats = run.tally(include_localhost)
        rows, written = None, 0
        if run.needs_join(pods):  # several captures: joined in keyed parts, on the workers
            run.join(stats, clock_skew, pods, include_localhost)
        if view == "flows" and dataset is not None:
            written = run.write_dataset(dataset, include_localhost)
        elif view == "flows":
            rows = shown(run.rows(), include_localhost)
        elif view == "pairs":
            rows = run.pairs(include_localhost)
        edges = run.edges(include_localhost, pods, resource, trust_unknown_clients) if pods is not None else []
        if view == "edges":
            rows = edges
    warnings = stats["warnings"] + [f"not analysed: {f}" for f in stats["failures"]]
    line = summary(stats, include_localhost) + (f"; {written} flows written to {dataset}" if dataset and view == "flows" else "")
    return Views(rows, edges, warnings, line, written)


def stored_views(flows: str, address, include_localhost: bool, pods, resource: str, view: str,
                 trust_unknown_clients: bool = False) -> tuple[list[dict], list[dict], int]:
    """``edges FLOWS --dask``: (the view's rows, the edges, flows stored) of a stored flows table, one
    task per file, the pairs or edges reduced on the workers."""
    from ..report.stored import flow_files

    files = [os.path.abspath(f) for f in flow_files(flows)]
    with cluster(address) as client:
        run = Run(client, [], frozenset())
        stored = run.load_stored(files, include_localhost)
        edges = run.edges(include_localhost, pods, resource, trust_unknown_clients) if pods is not None else []
        rows = edges if view == "edges" else run.pairs(include_localhost)
    return rows, edges, stored
