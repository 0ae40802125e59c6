"""What every command shares at the edge: the bad-input exception and writing a rendered table.

Kept apart from ``cli.py`` so that command modules can import it without importing the CLI group
(which imports them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import click

from ..report.escape import text


TRUST_UNKNOWN_CLIENTS_HELP = ("Count TLS with the destination's identity as secured even when the client is not a known "
                              "meshed pod (flat-network multicluster); by default such flows are unverified "
                              "(client_unknown).")


class InputError(click.ClickException):
    """An ``AnalyzerError`` at the edge: one ``Error:`` line, exit code 2, no traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(text(message))


def say(line: str, err: bool = False) -> None:
    """One line for a person, escaped (names, SNIs and reasons in it come from the input)."""
    click.echo(text(line), err=err)


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
