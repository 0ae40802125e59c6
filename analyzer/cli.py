"""Command line: a thin click layer over ``analyzer.api``.  Parses options, calls the API, renders.

Exit codes: 0 success; 2 bad input or usage (one ``Error:`` line on stderr, no traceback);
3 reserved for audit gates (``--fail-on``); 130 interrupted.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import click

from . import __version__
from .api import analyze as run_analysis
from .commands.common import (TRUST_UNKNOWN_CLIENTS_HELP, InputError, clock_skew_option, dask_option, dask_target,
                              emit, emit_lines, export, finish_edges, output_options, warn)
from .errors import AnalyzerError
from .join import DEFAULT_CLOCK_SKEW_S
from .report.schema import EXPORT_FORMATS
from .report.escape import text
from .report.render import FORMATS, render, render_lines, wide_output
from .report.schema import EDGE_NAMES, FLOW_NAMES, PAIR_NAMES

VIEWS = {"flows": FLOW_NAMES, "pairs": PAIR_NAMES, "edges": EDGE_NAMES}


class LazyGroup(click.Group):
    """Subcommands imported when they run or are listed, so ``analyze`` does not pay for the lab, the
    reports or the drill-down (~0.1 s of imports per run).  ``lazy``: name -> "module:attribute"; a
    module missing from a stripped build (the lab in the sidecar .pyz) is no command."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(n for n in {*self.commands, *self.lazy} if self.get_command(ctx, n) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.lazy:
            module, attr = self.lazy[name].split(":")
            try:
                command = getattr(importlib.import_module(module, __package__), attr)
            except ModuleNotFoundError as exc:
                if not (exc.name or "").startswith(f"{__package__}.lab"):
                    raise
                return None
            self.add_command(command, name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             lazy={"lab": ".lab.cli:lab", "compare": ".commands.compare:compare", "show": ".commands.show:show",
                   "capture": ".commands.capture:capture", "report": ".commands.report:report",
                   "diff": ".commands.diff:diff", "edges": ".commands.edges:edges"})
@click.version_option(__version__, prog_name="mtls-analyzer")
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr.")
def cli(verbose: int) -> None:
    """Prove from packets whether pod-to-pod traffic is TLS: per-flow verdicts with evidence."""
    logging.basicConfig(level=logging.WARNING - 10 * verbose, format="%(levelname)s %(name)s: %(message)s")


def pods_options(f):
    """Where the pod list comes from, how edges roll up, and the audit gate."""
    from .report.edges import GATES, RESOURCES

    f = click.option("--fail-on", "fail_on", multiple=True, type=click.Choice(GATES),
                     help="Exit 3 (after the table) if any edge has unexpected plaintext / any plaintext / "
                          "unverified flows. Repeatable.")(f)
    f = click.option("--trust-unknown-clients", is_flag=True, help=TRUST_UNKNOWN_CLIENTS_HELP)(f)
    f = click.option("--resource", type=click.Choice(RESOURCES), default="pod", show_default=True,
                     help="Edges per pod, per owning workload (deployment, statefulset, ...) or per namespace.")(f)
    f = click.option("-A", "--all-namespaces", is_flag=True, help="With --kubectl: pods of every namespace (the default).")(f)
    f = click.option("-n", "--namespace", metavar="NS", help="With --kubectl: only the pods of NS.")(f)
    f = click.option("--context", metavar="CTX", help="With --kubectl: the kubeconfig context.")(f)
    f = click.option("--kubectl", "use_kubectl", is_flag=True,
                     help="Fetch the pod list with `kubectl get pods -o json`.")(f)
    f = click.option("--pods", "pods_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="`kubectl get pods -A -o json` (or -o yaml, -o wide) output: IP -> pod, meshed, identity.")(f)
    return f


@cli.command(short_help="Classify every TCP flow of CAPTURE files as TLS, plaintext or unknown.")
@click.argument("captures", nargs=-1, required=True)
@click.option("--view", type=click.Choice(tuple(VIEWS)), default=None,
              help="flows: one row per TCP flow; pairs: one row per host pair; edges: one row per pod "
                   "(or --resource) pair with a status (needs --pods or --kubectl).  [default: edges with a "
                   "pod list, else pairs]")
@output_options(formats=FORMATS + EXPORT_FORMATS, dataset=True)
@pods_options
@click.option("--decode-as", "decode_as", multiple=True, metavar="tcp.port==P,tls",
              help="Expect TLS on port P (tshark syntax; repeatable). A hint: payload still decides.")
@click.option("--include-localhost", is_flag=True,
              help="Also list localhost hops (127/8, ::1, lo interface, same IP both ends).")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
@click.option("--engine", type=click.Choice(("native", "tshark", "both")), default="native", show_default=True,
              help="native: our parser; tshark: Wireshark's dissectors; both: list the flows where they disagree.")
@click.option("-j", "--jobs", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Processes per capture file (native engine; byte ranges, flows joined at the cuts). "
                   "0: one per CPU for a plain file of 64 MiB or more, else 1.")
@clock_skew_option
@dask_option
def analyze(captures, view, fmt, output, wide, decode_as, include_localhost, quiet, pods_file, use_kubectl, context,
            namespace, all_namespaces, resource, trust_unknown_clients, fail_on, engine, jobs, clock_skew, dask_address):
    """Analyse CAPTURE files (pcap/pcapng, gzip ok; '-' reads standard input).  With --dask, CAPTURE may
    also be a glob, a directory or a URL (http(s)://, s3://, gs://), and --view flows --format parquet
    -o DIR writes a Parquet dataset."""
    from .kube.kubectl import load_pod_list
    from .report.edges import edge_rows, headline, pick_view

    try:
        view = pick_view(view, pods_file, use_kubectl, fail_on)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    output, width = wide_output(output, wide)
    if dask_address is not None and engine != "native":
        raise click.UsageError("--dask runs the native engine")
    if engine == "both":
        if pods_file is not None or use_kubectl or fail_on or view == "edges":
            raise click.UsageError("--engine both compares the engines flow by flow; it takes no pod list, "
                                   "--view edges or --fail-on (run each engine for those)")
        from .commands.compare import echo_compare

        sys.exit(echo_compare(captures, decode_as, include_localhost, fmt, output, quiet, clock_skew, width))
    progress = _progress if sys.stderr.isatty() and not quiet else None
    try:
        pods = load_pod_list(pods_file, use_kubectl, context, namespace, all_namespaces)
        if dask_address is not None:
            rows, edges, warnings, summary_line = _on_dask(captures, dask_address, decode_as, include_localhost,
                                                           pods, resource, view, fmt, output, progress,
                                                           trust_unknown_clients, clock_skew)
        else:
            report = run_analysis(list(captures), decode_as=decode_as, include_localhost=include_localhost,
                                  progress=progress, pods=pods, engine=engine, jobs=jobs or None,
                                  clock_skew=clock_skew)
            edges = (edge_rows(report.flow_rows, pods, resource, trust_unknown_clients=trust_unknown_clients)
                     if pods is not None else [])
            rows = report.flow_rows if view == "flows" else report.pair_rows if view == "pairs" else edges
            warnings, summary_line = report.stats["warnings"], report.summary()
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    if progress:
        click.echo("\r\033[K", err=True, nl=False)
    if not quiet and pods is not None:
        warn(headline(edges))
    if rows is None:
        pass  # the workers wrote the flows dataset
    elif fmt in EXPORT_FORMATS:  # parquet, jsonl
        export(rows, view, fmt, output)
    elif fmt == "csv":  # written as it is made: the flows view may hold millions of rows
        emit_lines(render_lines(rows, VIEWS[view], fmt, view), output)
    else:
        emit(render(rows, VIEWS[view], fmt, view, width), output)
    for warning in warnings:
        warn(f"Warning: {warning}")
    if not quiet:
        warn(summary_line)
    finish_edges(edges, pods, fail_on, quiet)


def _on_dask(captures, address: str, decode_as, include_localhost: bool, pods, resource: str, view: str,
             fmt: str, output, progress, trust_unknown_clients: bool = False, clock_skew: float = DEFAULT_CLOCK_SKEW_S) -> tuple:
    """``--dask``: the view's rows (None when the workers wrote a flows dataset to ``output``)."""
    from .api import parse_decode_as
    from .distributed.views import analyze_views

    captures, address = dask_target(address, captures)
    dataset = None
    if view == "flows" and fmt == "parquet":
        if output is None:
            raise click.UsageError("--dask --view flows --format parquet writes a dataset: give -o DIR")
        dataset = str(output)
    line = (lambda text: click.echo(f"\r\033[K{text}", err=True, nl=False)) if progress else None
    views = analyze_views(list(captures), address, parse_decode_as(decode_as), include_localhost, pods, resource,
                          view, dataset, line, trust_unknown_clients=trust_unknown_clients, clock_skew=clock_skew)
    return views.rows, views.edges, views.warnings, views.summary


def _progress(path: str, packets: int, flows: int) -> None:
    click.echo(f"\r\033[K{text(path)}: {packets} packets, {flows} flows", err=True, nl=False)


def run_group(group: click.Group, args: list[str] | None = None) -> None:
    """Run a click group as a console script: Ctrl-C is one line and exit 130, never a traceback.

    Click's standalone mode turns Ctrl-C into ``Abort`` ("Aborted!", exit 1, which here means "the
    engines disagree"), so the group runs in non-standalone mode and the exits are mapped here."""
    try:
        code = group.main(args=args, standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): nothing more to say
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    run_group(cli)


if __name__ == "__main__":
    main()
