"""``mtls-analyzer diff OLD.json NEW.json``: pairs whose status changed between two audit reports."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import InputError, emit

from ..errors import AnalyzerError
from ..report.render import wide_output
from .common import wide_option
from ..report.render import FORMATS, render


@click.command(short_help="List the pairs whose status changed between two report JSON files.")
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--worse-only", is_flag=True, help="Only pairs that got worse (or appeared with a bad status).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="Write the table to PATH (-o wide: --wide).")
@click.option("-q", "--quiet", is_flag=True, help="No summary line on stderr.")
@wide_option
def diff(old, new, worse_only, fmt, output, quiet, wide):
    """List the pairs whose status changed between two `report --json` files: worse, better, new, gone.

    Exit code 0 when no listed pair changed, 1 when some did, 2 on bad input.
    """
    from ..report.diff import DIFF_COLUMNS, diff_reports, summary
    from ..report.export import load_report_json

    output, width = wide_output(output, wide)
    try:
        rows = diff_reports(load_report_json(old, skip=("flows",)), load_report_json(new, skip=("flows",)))
    except AnalyzerError as exc:
        raise InputError(str(exc)) from None
    if worse_only:
        rows = [r for r in rows if r["direction"] == "worse"]
    text = render(rows, DIFF_COLUMNS, fmt, "diff", width) if rows or fmt != "table" else ""
    if output or text:
        emit(text, output)
    if not quiet:
        click.echo(summary(rows), err=True)
    sys.exit(1 if rows else 0)
