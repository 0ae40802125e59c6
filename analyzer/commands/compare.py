"""``mtls-analyzer compare CAPTURE...`` (and ``analyze --engine both``): both engines, every disagreement."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import InputError, clock_skew_option, emit

from ..errors import AnalyzerError
from ..report.render import wide_output
from .common import wide_option
from ..report.render import FORMATS, WIDTH_NOT_A_TERMINAL, render


def run_compare(captures, decode_as=(), include_localhost: bool = True, clock_skew: float | None = None
                ) -> tuple[list[dict], dict]:
    """Analyse with both engines; (disagreement rows, agreement counts).  Raises AnalyzerError."""
    from ..api import analyze
    from ..engines.compare import agreement, disagreements

    skew = {} if clock_skew is None else {"clock_skew": clock_skew}
    native = analyze(list(captures), decode_as=decode_as, include_localhost=True, **skew)
    tshark = analyze(list(captures), decode_as=decode_as, include_localhost=True, engine="tshark", **skew)
    a = native.all_flow_rows if include_localhost else native.flow_rows
    b = tshark.all_flow_rows if include_localhost else tshark.flow_rows
    counts = agreement(a, b)
    counts["native_s"] = round(native.stats["elapsed_s"], 3)
    counts["tshark_s"] = round(tshark.stats["elapsed_s"], 3)
    return disagreements(a, b), counts


def echo_compare(captures, decode_as, include_localhost: bool, fmt: str, output: Path | None, quiet: bool,
                 clock_skew: float | None = None, width: int | None = WIDTH_NOT_A_TERMINAL) -> int:
    """Print the disagreements (a table within ``width``, None: in full); returns the exit code (0 agree,
    1 some flow disagrees)."""
    from ..engines.compare import DISAGREEMENT_COLUMNS

    try:
        rows, counts = run_compare(captures, decode_as, include_localhost, clock_skew)
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    text = render(rows, DISAGREEMENT_COLUMNS, fmt, "disagreements", width) if rows or fmt != "table" else ""
    if output or text:
        emit(text, output)
    if not quiet:
        click.echo(f"engines: {counts['agree']} of {counts['paired']} paired flows agree, {counts['disagree']} "
                   f"disagree, {counts['only_native']} only native, {counts['only_tshark']} only tshark "
                   f"(native {counts['native_s']:.2f} s, tshark {counts['tshark_s']:.2f} s)", err=True)
    return 0 if not rows else 1


@click.command(short_help="List the flows where the native and tshark engines disagree.")
@click.argument("captures", nargs=-1, required=True)
@click.option("--decode-as", "decode_as", multiple=True, metavar="tcp.port==P,tls",
              help="Passed to both engines (tshark: -d).")
@click.option("--include-localhost/--no-localhost", default=True, show_default=True,
              help="Compare localhost hops too.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the table to PATH (-o wide: --wide).")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
@clock_skew_option
@wide_option
def compare(captures, decode_as, include_localhost, fmt, output, quiet, clock_skew, wide):
    """Run the native and the tshark engine; list every flow where they disagree, with both reasons.

    Exit code 0 when every flow agrees, 1 when some flow disagrees, 2 on bad input or missing tshark.
    """
    output, width = wide_output(output, wide)
    sys.exit(echo_compare(captures, decode_as, include_localhost, fmt, output, quiet, clock_skew, width))
