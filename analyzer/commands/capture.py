"""``mtls-analyzer capture``: capture live (dumpcap/tshark ``-i any``), classify while capturing, report."""

from __future__ import annotations

from pathlib import Path

import click

from .common import InputError, emit, warn
from ..report.render import wide_output
from .common import wide_option

from ..errors import AnalyzerError
from ..report.render import FORMATS, render
from ..report.schema import FLOW_NAMES, PAIR_NAMES

VIEWS = {"flows": FLOW_NAMES, "pairs": PAIR_NAMES}


@click.command(short_help="Capture live traffic and classify its flows while capturing.")
@click.option("-i", "--interface", default="any", show_default=True, help="Interface to capture on.")
@click.option("-f", "--bpf", metavar="FILTER", help="Capture filter (libpcap syntax), e.g. 'tcp'.")
@click.option("--seconds", type=click.FloatRange(min=1, max=7 * 24 * 3600), help="Stop after this many seconds.")
@click.option("--packets", type=click.IntRange(min=1), help="Stop after this many packets.")
@click.option("--ring-mb", type=click.IntRange(min=1), help="Ring buffer: start a new file every N MB.")
@click.option("--ring-files", type=click.IntRange(min=2), help="Ring buffer: keep at most N files (default 10).")
@click.option("-w", "--write", "write", type=click.Path(dir_okay=False, path_type=Path),
              help="pcapng to write (default captures/live-<UTC time>.pcapng).")
@click.option("--follow", is_flag=True, help="One tap-style line per flow as soon as its verdict is known.")
@click.option("--engine", type=click.Choice(("native", "tshark")), default="native", show_default=True,
              help="Which engine classifies while capturing (the final report is the same analyze run).")
@click.option("--decode-as", "decode_as", multiple=True, metavar="tcp.port==P,tls", help="As for analyze.")
@click.option("--view", type=click.Choice(tuple(VIEWS)), default="pairs", show_default=True, help="Final report view.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Final report format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the final report to PATH (-o wide: --wide).")
@click.option("--include-localhost", is_flag=True, help="Also list localhost hops.")
@click.option("-q", "--quiet", is_flag=True, help="No summary lines on stderr.")
@wide_option
def capture(interface, bpf, seconds, packets, ring_mb, ring_files, write, follow, engine, decode_as, view, fmt,
            output, include_localhost, quiet, wide):
    """Capture live traffic (default: -i any, i.e. this pod's network namespace), classify flows while the
    capture runs, and print the full report at the end (time, --packets, Ctrl-C or SIGTERM; after Ctrl-C the
    exit code is 130)."""
    from ..api import analyze
    from ..live import default_output, run_live

    output, width = wide_output(output, wide)
    try:
        result = run_live(write or default_output(), interface, bpf, seconds, packets, ring_mb, ring_files,
                          decode_as, engine, follow, include_localhost, quiet, wide=width is None)
        report = analyze([str(p) for p in result.files], decode_as=decode_as, include_localhost=include_localhost)
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    rows = report.flow_rows if view == "flows" else report.pair_rows
    text = render(rows, VIEWS[view], fmt, view, width)
    if follow and not output:
        click.echo("")
    emit(text, output)
    if not quiet:
        files = ", ".join(str(p) for p in result.files)
        warn(f"capture stopped by {result.stopped_by}: {files}")
        warn(report.summary())
    if result.interrupted:
        raise KeyboardInterrupt  # after the report: "Interrupted." and exit 130, as for any Ctrl-C
