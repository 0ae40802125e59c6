"""``mtls-analyzer edges FLOWS --pods pods.json``: judge stored flows against a (new) pod list.

The flows come from ``analyze --view flows --format parquet|jsonl`` (a Parquet dataset folder, one
Parquet file, or JSON Lines); the captures are not read again.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import AnalyzerError
from ..report.render import FORMATS, wide_output
from ..report.schema import EDGE_NAMES, EXPORT_FORMATS, PAIR_NAMES
from .common import InputError, dask_option, dask_target, emit, export, finish_edges


def _options(f):
    from ..cli import pods_options
    from .common import output_options

    return output_options(formats=FORMATS + EXPORT_FORMATS)(pods_options(f))


@click.command(short_help="Judge stored flows (Parquet or JSON Lines from analyze) against a pod list.")
@click.argument("flows", required=False, type=click.Path(path_type=Path))
@click.option("--view", type=click.Choice(("edges", "pairs")), default="edges", show_default=True,
              help="edges: one row per pod (or --resource) pair with a status (needs a pod list); pairs: one row "
                   "per host pair.")
@_options
@click.option("--include-localhost", is_flag=True, help="Keep the localhost hops the stored flows hold.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
@dask_option
def edges(flows, view, fmt, output, wide, pods_file, use_kubectl, context, namespace, all_namespaces, resource,
          trust_unknown_clients, fail_on, include_localhost, quiet, dask_address):
    """Re-judge FLOWS, written by `analyze --view flows --format parquet|jsonl` (a Parquet dataset folder, a
    Parquet file or JSON Lines), against a pod list, without reading the captures again.

    With --dask the workers read the stored files (one task per file; they must see the same paths) and
    reduce the edges or pairs there; only those come back.

    Exit code 0; 3 when a --fail-on gate fails (after the table); 2 on bad input.
    """
    from ..kube.kubectl import load_pod_list
    from ..report.edges import edge_rows
    from ..report.pairs import aggregate_pairs
    from ..report.render import render
    from ..report.stored import load_flow_rows

    if pods_file is not None and use_kubectl:
        raise click.UsageError("give --pods FILE or --kubectl, not both")
    output, width = wide_output(output, wide)
    if (view == "edges" or fail_on) and pods_file is None and not use_kubectl:
        raise click.UsageError("edges and --fail-on need a pod list: --pods FILE or --kubectl")
    given, dask_address = dask_target(dask_address, (flows,) if flows is not None else ())
    if len(given) != 1:
        raise click.UsageError("give one FLOWS table (a folder, a Parquet file or JSON Lines)")
    flows = Path(given[0])
    if not os.path.exists(flows):
        raise click.BadParameter(f"Path '{flows}' does not exist.", param_hint="'FLOWS'")
    try:
        pods = load_pod_list(pods_file, use_kubectl, context, namespace, all_namespaces)
        if dask_address is not None:
            from ..distributed.views import stored_views

            out, judged, stored = stored_views(flows, dask_address, include_localhost, pods, resource, view,
                                               trust_unknown_clients)
        else:
            rows = [r for r in load_flow_rows(flows) if include_localhost or not r["localhost"]]
            judged = (edge_rows(rows, pods, resource, trust_unknown_clients=trust_unknown_clients)
                      if pods is not None else [])
            out, stored = judged if view == "edges" else aggregate_pairs(rows), len(rows)
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    if fmt in EXPORT_FORMATS:
        export(out, view, fmt, output)
    else:
        emit(render(out, EDGE_NAMES if view == "edges" else PAIR_NAMES, fmt, view, width), output)
    if not quiet:
        click.echo(f"{stored} stored flows from {flows}", err=True)
    finish_edges(judged, pods, fail_on, quiet)
