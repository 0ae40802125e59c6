"""Command line: a thin click layer over ``analyzer.api``.  Parses options, calls the API, renders.

Exit codes: 0 success; 2 bad input or usage (one ``Error:`` line on stderr, no traceback);
3 reserved for audit gates (``--fail-on``); 130 interrupted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import __version__
from .api import analyze as run_analysis
from .errors import AnalyzerError
from .report.render import FORMATS, render
from .report.schema import FLOW_NAMES, PAIR_NAMES

VIEWS = {"flows": FLOW_NAMES, "pairs": PAIR_NAMES}


class InputError(click.ClickException):
    """An ``AnalyzerError`` at the edge: one line, exit code 2."""

    exit_code = 2


def output_options(f):
    """Options shared by every command that prints a table."""
    f = click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                     help="Output format.")(f)
    f = click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
                     help="Write the table to PATH instead of standard output.")(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mtls-analyzer")
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr.")
def cli(verbose: int) -> None:
    """Prove from packets whether pod-to-pod traffic is TLS: per-flow verdicts with evidence."""
    logging.basicConfig(level=logging.WARNING - 10 * verbose, format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.argument("captures", nargs=-1, required=True)
@click.option("--view", type=click.Choice(tuple(VIEWS)), default="pairs", show_default=True,
              help="flows: one row per TCP flow; pairs: one row per host pair.")
@output_options
@click.option("--decode-as", "decode_as", multiple=True, metavar="tcp.port==P,tls",
              help="Expect TLS on port P (tshark syntax; repeatable). A hint: payload still decides.")
@click.option("--include-localhost", is_flag=True,
              help="Also list localhost hops (127/8, ::1, lo interface, same IP both ends).")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
def analyze(captures, view, fmt, output, decode_as, include_localhost, quiet):
    """Analyse CAPTURE files (pcap/pcapng, gzip ok; '-' reads standard input)."""
    progress = _progress if sys.stderr.isatty() and not quiet else None
    try:
        report = run_analysis(list(captures), decode_as=decode_as, include_localhost=include_localhost,
                              progress=progress)
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    if progress:
        click.echo("\r\033[K", err=True, nl=False)
    rows = report.flow_rows if view == "flows" else report.pair_rows
    text = render(rows, VIEWS[view], fmt, view)
    if output:
        try:
            output.write_text(text)
        except OSError as exc:
            raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    else:
        click.echo(text, nl=False)
    for warning in report.stats["warnings"]:
        click.echo(f"Warning: {warning}", err=True)
    if not quiet:
        click.echo(report.summary(), err=True)


def _progress(path: str, packets: int, flows: int) -> None:
    click.echo(f"\r\033[K{path}: {packets} packets, {flows} flows", err=True, nl=False)


def _add_lab() -> None:
    try:
        from .lab.cli import lab
    except ModuleNotFoundError as exc:  # the lab is not part of a stripped build (the sidecar .pyz)
        if exc.name not in ("analyzer.lab", "analyzer.lab.cli"):
            raise
        return
    cli.add_command(lab)


_add_lab()


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
