"""``mtls-analyzer report CAPTURE... --pods pods.json -o report.html [--json report.json]``: the audit report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import (TRUST_UNKNOWN_CLIENTS_HELP, InputError, clock_skew_option, dask_option, dask_target, exit_on_gates,
                     warn, write_report_files)

from ..errors import AnalyzerError


def _print_schema(ctx: click.Context, _param, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from ..report.audit import schema_text

        click.echo(schema_text(), nl=False)
        ctx.exit(0)


def _gates():
    from ..report.edges import GATES

    return GATES


def _resources():
    from ..report.edges import RESOURCES

    return RESOURCES


@click.command(short_help="Write an HTML/JSON audit report for CAPTURE files.")
@click.argument("captures", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pods", "pods_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="`kubectl get pods -A -o json` (or -o yaml) output (hashed into the report).")
@click.option("--kubectl", "use_kubectl", is_flag=True, help="Fetch the pod list with kubectl instead (not hashed).")
@click.option("--context", metavar="CTX", help="With --kubectl: the kubeconfig context.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the HTML report (one self-contained file) to PATH.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Also write the report as JSON (layout: docs/report.schema.json) for `diff` and pipelines.")
@click.option("--resource", type=click.Choice(_resources()), default="pod", show_default=True,
              help="Edges per pod, per owning workload, or per namespace (use deployment for audits you diff).")
@click.option("--trust-unknown-clients", is_flag=True, help=TRUST_UNKNOWN_CLIENTS_HELP)
@click.option("--fail-on", "fail_on", multiple=True, type=click.Choice(_gates()),
              help="The policy: exit 3 (after writing the report) if any edge has unexpected plaintext / any "
                   "plaintext / unverified flows. Repeatable; shown in the report either way.")
@click.option("--decode-as", "decode_as", multiple=True, metavar="tcp.port==P,tls",
              help="Expect TLS on port P (tshark syntax; repeatable). A hint: payload still decides.")
@click.option("--engine", type=click.Choice(("native", "tshark")), default="native", show_default=True,
              help="native: our parser; tshark: Wireshark's dissectors (its version goes into the report).")
@click.option("--json-schema", is_flag=True, expose_value=False, is_eager=True, callback=_print_schema,
              help="Print the JSON Schema of --json and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
@clock_skew_option
@dask_option
def report(captures, pods_file, use_kubectl, context, output, json_path, resource, trust_unknown_clients, fail_on,
           decode_as, engine, quiet, clock_skew, dask_address):
    """Write an audit report for CAPTURE files: the mesh graph, the edges with their evidence down to each
    flow, capture hashes and metadata, what could not be judged, and the policy result.

    Exit code 0; 3 when a --fail-on gate fails (the report is written first); 2 on bad input.
    """
    from ..api import analyze
    from ..kube.kubectl import load_pod_list
    from ..report.audit import build_audit, load_path_list

    if output is None and json_path is None:
        raise click.UsageError("nothing to write: give -o report.html and/or --json report.json")
    if (pods_file is None) == (not use_kubectl):
        raise click.UsageError("an audit report needs a pod list: --pods FILE or --kubectl (one of them)")
    captures, dask_address = dask_target(dask_address, captures)
    try:
        paths = load_path_list(captures)
        pods = load_pod_list(pods_file, use_kubectl, context)
        result = analyze(paths, decode_as=decode_as, pods=pods, engine=engine, clock_skew=clock_skew,
                         dask=None if dask_address is None else dask_address or True)
        doc = build_audit(result, paths, pods_file, resource, fail_on, engine, decode_as,
                          command=["mtls-analyzer", *sys.argv[1:]], trust_unknown_clients=trust_unknown_clients,
                          streamed=True)
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    write_report_files(doc, output, json_path)
    for warning in result.stats["warnings"]:
        warn(f"Warning: {warning}")
    policy = doc["policy"]
    if not quiet:
        warn(doc["headline"])
        s = doc["summary"]
        per = ", ".join(f"{k} {v}" for k, v in s["edge_statuses"].items())
        warn(f"{s['edges']} edges ({per}) from {s['flows']} flows; policy: {policy['result']}; wrote "
             + " and ".join(str(p) for p in (output, json_path) if p is not None))
    exit_on_gates(doc["edges"], policy["applied"])
