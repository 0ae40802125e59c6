"""What every command shares at the edge: the bad-input exception and writing a rendered table.

Kept apart from ``cli.py`` so that command modules can import it without importing the CLI group
(which imports them).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Iterable

import click

from ..errors import AnalyzerError

from ..report.escape import text
from ..report.render import FORMATS, for_terminal


TRUST_UNKNOWN_CLIENTS_HELP = ("Count TLS with the destination's identity as secured even when the client is not a known "
                              "meshed pod (flat-network multicluster); by default such flows are unverified "
                              "(client_unknown).")


class InputError(click.ClickException):
    """An ``AnalyzerError`` at the edge: one ``Error:`` line, exit code 2, no traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(text(message))


def say(line: str, err: bool = False) -> None:
    """One line for a person, escaped (names, SNIs and reasons in it come from the input); on a terminal,
    wrapped to its width."""
    click.echo(for_terminal(text(line), sys.stderr if err else sys.stdout), err=err)


def warn(line: str) -> None:
    """One line on stderr: a warning, a summary or a gate."""
    say(line, err=True)


CLOCK_SKEW_HELP = ("Seconds the clocks of two captures may differ by when their flows are joined into "
                   "connections (captures from several pods or nodes).")


def clock_skew_option(f):
    """``--clock-skew SECONDS``: how far apart two captures' clocks may be (``analyzer.join``)."""
    from ..join import DEFAULT_CLOCK_SKEW_S

    return click.option("--clock-skew", "clock_skew", type=click.FloatRange(min=0, max=3600), metavar="SECONDS",
                        default=DEFAULT_CLOCK_SKEW_S, show_default=True, help=CLOCK_SKEW_HELP)(f)


def emit_lines(lines: Iterable[str], output: Path | None) -> None:
    """Rendered text to ``output`` or standard output as it is made, piece by piece."""
    if output is None:
        for line in lines:
            click.echo(line, nl=False)
        return
    try:
        with open(output, "w") as f:
            f.writelines(lines)
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None


def emit(text: str, output: Path | None) -> None:
    """A rendered table to ``output`` or standard output; a path that cannot be written is bad input."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None


# ``--dask [ADDRESS]``: what looks like a scheduler's address.  Anything else, and any existing path, is a
# capture that click gave the option as its optional value (``--dask a.pcap``).
DASK_LOCAL = "local"
_DASK_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss|inproc)://\S+|\[[0-9A-Fa-f:.]+\]:\d+|[A-Za-z0-9.-]+:\d+)$")


def is_dask_address(value: str) -> bool:
    """``tcp://HOST:PORT``, ``tls://...``, ``HOST:PORT`` or ``local`` -- and not an existing path."""
    return not os.path.exists(value) and (value == DASK_LOCAL or bool(_DASK_ADDRESS.match(value)))


def dask_target(address: str | None, captures: tuple) -> tuple[tuple, str | None]:
    """(captures, address) of ``--dask [ADDRESS] CAPTURE...``: a value that is not an address is given back
    to the captures, in front; ``local`` and no value are the local cluster ("")."""
    if not address:
        return captures, address
    if not is_dask_address(address):
        return (type(captures[0])(address) if captures else address, *captures), ""
    return captures, "" if address == DASK_LOCAL else address


def dask_option(f):
    """``--dask [ADDRESS]``: run on a Dask cluster (``analyzer.distributed``)."""
    return click.option("--dask", "dask_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
                        help="Run on a Dask cluster: tcp://HOST:8786 (or tls://..., HOST:PORT), or no address (or "
                             "'local') for a local one (one worker per core) started and stopped with the "
                             "command. A value that is not an address, or is an existing path, is a capture. "
                             "Needs mtls-analyzer[dask].")(f)


def export(rows, view: str, fmt: str, output) -> None:
    """A table as Parquet or JSON Lines (``report.export``) to ``output`` or standard output."""
    from ..report.export import export_view

    try:
        export_view(rows, view, fmt, output, sys.stdout)
    except OSError as exc:
        raise InputError(f"{output or 'standard output'}: cannot write: {exc.strerror or exc}") from None
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None


def finish_edges(edges: list[dict], pods, fail_on, quiet: bool) -> None:
    """After the table: the edges' summary line (with a pod list, unless quiet) and the ``--fail-on``
    gates, one line each that fails, then exit 3 if any did."""
    from ..report.edges import summary

    if not quiet and pods is not None:
        warn(summary(edges))
    exit_on_gates(edges, fail_on)


def write_report_files(doc: dict, html_path, json_path) -> None:
    """The audit document as the HTML page and/or the JSON document (each written as it is made)."""
    from ..report.export import write_report_json
    from ..report.html import write_html

    for target, write in ((html_path, write_html), (json_path, write_report_json)):
        if target is None:
            continue
        try:
            write(doc, target)
        except OSError as exc:
            raise InputError(f"{target}: cannot write: {exc.strerror or exc}") from None


def exit_on_gates(edges, fail_on) -> None:
    """After the table: one stderr line per ``--fail-on`` condition that holds, then exit 3 if any does."""
    from ..report.edges import gate_failures

    failures = gate_failures(edges, fail_on)
    for line in failures:
        warn(line)
    if failures:
        sys.exit(3)


def output_options(f=None, *, formats=FORMATS, dataset: bool = False):
    """Options shared by every command that prints a table (``formats``: the --format choices;
    ``dataset``: -o may name a folder, for ``--dask``'s Parquet dataset)."""
    def add(f):
        f = click.option("--format", "fmt", type=click.Choice(formats), default="table", show_default=True,
                         help="Output format (parquet needs -o and pyarrow).")(f)
        f = click.option("-o", "--output", type=click.Path(dir_okay=dataset, writable=True, path_type=Path),
                         help="Write the table to PATH instead of standard output"
                              + (" (--dask --view flows --format parquet: a new or empty folder)" if dataset else "")
                              + "; -o wide is --wide (as kubectl; a file named wide: -o ./wide).")(f)
        return wide_option(f)
    return add(f) if f is not None else add


def wide_option(f):
    """``--wide``: every table column, nothing shortened (default: the table fits the terminal)."""
    return click.option("--wide", is_flag=True,
                        help="Table: every column, names unshortened (default: fit the terminal's width, "
                             "100 columns on a pipe or file).")(f)
