"""The sidecar entry point: ``analyze`` and ``capture`` with argparse, for a python3 with no pip packages.

Role: ``mtls-analyzer.pyz`` (``tools/build_pyz.py``) runs this inside the ``linkerd-debug`` container,
whose python3 has the standard library only: no click, no pandas, no pyshark.  It takes the options of
``mtls-analyzer analyze`` (all but ``--engine both`` and ``--dask``, which need the full install) and
calls the same library code (``analyzer.api``, ``analyzer.live``, the pod list loader, ``report.edges``'
edge rows, headline, summary and gates, ``report.render``), so its output is byte for byte what
``mtls-analyzer`` prints.  ``capture`` also takes a pod list, so a capture in a pod can end on its edges.

Rules: standard library only, and only modules the .pyz ships (a test runs it under ``python3 -I -S``).
Exit codes as the CLI's: 0, 2 (bad input or usage: one ``Error:`` line, no usage text), 3 (a ``--fail-on``
gate holds, after the table), 130 (interrupted: one ``Interrupted.`` line).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from . import __version__
from .errors import AnalyzerError
from .join import DEFAULT_CLOCK_SKEW_S
from .report.edges import GATES, RESOURCES, pick_view
from .report.escape import text
from .report.render import FORMATS, for_terminal, render, wide_output
from .report.schema import EDGE_NAMES, EXPORT_FORMATS, FLOW_NAMES, PAIR_NAMES

VIEWS = {"flows": FLOW_NAMES, "pairs": PAIR_NAMES, "edges": EDGE_NAMES}


class UsageError(Exception):
    """A bad command line: one ``Error:`` line and exit 2, as the click CLI's usage errors."""


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's manners: no abbreviated options, and an error is one line (no usage dump)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        raise UsageError(click_words(message))


def click_words(message: str) -> str:
    """argparse's message for a bad command line in the words click uses for the same mistake."""
    if message.startswith("unrecognized arguments: "):
        first = message.split(": ", 1)[1].split()[0]
        return f"No such option '{first}'." if first.startswith("-") else f"Got unexpected extra argument ({first})"
    missing = re.fullmatch(r"the following arguments are required: (\w+).*", message)
    if missing:
        return "Missing command." if missing[1] == "command" else f"Missing argument '{missing[1].upper()}...'."
    bad = re.fullmatch(r"argument (\S+): (?:invalid choice: (.*) \(choose from (.*)\)|(.*))", message)
    if bad is None:
        return message
    if bad[1] == "command" and bad[2]:
        return f"No such command {bad[2]}."
    name = " / ".join(f"'{o}'" for o in bad[1].split("/"))
    return f"Invalid value for {name}: " + (f"{bad[2]} is not one of {bad[3]}." if bad[2] else f"{bad[4]}.")


def in_range(kind, low, high):
    """An argparse type: ``kind`` of ``value`` within [low, high], as click's IntRange/FloatRange."""
    def parse(value: str):
        try:
            n = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid {'integer' if kind is int else 'float'} "
                                             "range") from None
        if not low <= n <= high:
            raise argparse.ArgumentTypeError(f"{n} is not in the range {low}<=x<={high}")
        return n
    return parse


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--view", choices=tuple(VIEWS), default=None,
                   help="flows, pairs or edges (needs a pod list); default: edges with a pod list, else pairs")
    p.add_argument("--format", dest="fmt", choices=(*FORMATS, *EXPORT_FORMATS), default="table",
                   help="output format (default table; parquet needs -o and pyarrow)")
    p.add_argument("-o", "--output", type=Path,
                   help="write the table to PATH instead of standard output; -o wide is --wide")
    p.add_argument("--wide", action="store_true",
                   help="table: every column, names unshortened (default: fit the terminal, 100 columns on a pipe)")
    p.add_argument("--decode-as", dest="decode_as", action="append", default=[], metavar="tcp.port==P,tls",
                   help="expect TLS on port P (repeatable); a hint, the payload still decides")
    p.add_argument("--include-localhost", action="store_true", help="also list localhost hops")
    p.add_argument("--pods", type=Path, help="`kubectl get pods -A -o json` output: IP -> pod, meshed, identity")
    p.add_argument("--kubectl", dest="use_kubectl", action="store_true",
                   help="fetch the pod list with `kubectl get pods -o json`")
    p.add_argument("--context", metavar="CTX", help="with --kubectl: the kubeconfig context")
    p.add_argument("-n", "--namespace", metavar="NS", help="with --kubectl: only the pods of NS")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="with --kubectl: every namespace (the default)")
    p.add_argument("--resource", choices=RESOURCES, default="pod",
                   help="edges per pod (default), per owning workload or per namespace")
    p.add_argument("--trust-unknown-clients", action="store_true",
                   help="count TLS with the destination's identity as secured even when the client is not a "
                        "known meshed pod")
    p.add_argument("--fail-on", dest="fail_on", action="append", default=[], choices=GATES,
                   help="exit 3 (after the table) if any edge has unexpected plaintext / any plaintext / "
                        "unverified flows (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary lines on stderr")


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="mtls-analyzer.pyz",
                 description="Prove from packets whether pod-to-pod traffic is TLS (sidecar build).")
    top.add_argument("--version", action="version", version=f"mtls-analyzer {__version__} (pyz)")
    top.add_argument("-v", "--verbose", action="count", default=0)
    sub = top.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyse pcap/pcapng files ('-' reads standard input)")
    a.add_argument("captures", nargs="+")
    a.add_argument("--engine", choices=("native", "tshark"), default="native",
                   help="native (default) or tshark (Wireshark's dissectors; needs tshark)")
    a.add_argument("-j", "--jobs", type=in_range(int, 0, 64), default=0,
                   help="processes per capture file (0, the default: one per CPU for files of 64 MiB or more)")
    a.add_argument("--clock-skew", dest="clock_skew", type=in_range(float, 0, 3600), default=DEFAULT_CLOCK_SKEW_S,
                   metavar="SECONDS",
                   help="seconds the clocks of two captures may differ by when their flows are joined")
    _common(a)
    c = sub.add_parser("capture", help="capture live (-i any), classify while capturing, report at the end")
    c.add_argument("-i", "--interface", default="any")
    c.add_argument("-f", "--bpf", metavar="FILTER", help="capture filter (libpcap syntax)")
    c.add_argument("--seconds", type=float, help="stop after N seconds")
    c.add_argument("--packets", type=int, help="stop after N packets")
    c.add_argument("--ring-mb", type=int, help="ring buffer: a new file every N MB")
    c.add_argument("--ring-files", type=int, help="ring buffer: keep N files")
    c.add_argument("-w", "--write", type=Path, help="pcapng to write (default captures/live-<time>.pcapng)")
    c.add_argument("--follow", action="store_true", help="one tap-style line per flow as soon as its verdict is known")
    c.add_argument("--engine", choices=("native", "tshark"), default="native")
    _common(c)
    return top


def say(line: str) -> None:
    print(for_terminal(text(line), sys.stderr), file=sys.stderr)


def _view(args) -> str:
    """The CLI's rule (``report.edges.pick_view``), as a usage error."""
    try:
        return pick_view(args.view, args.pods, args.use_kubectl, args.fail_on)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _emit(rows: list[dict], view: str, args) -> None:
    """The view's rows as the CLI writes them: rendered text, or JSON Lines / Parquet (``report.export``)."""
    if args.fmt in EXPORT_FORMATS:
        from .report.export import export_view

        try:
            export_view(rows, view, args.fmt, args.output, sys.stdout)
        except OSError as exc:
            raise AnalyzerError(f"{args.output or 'standard output'}: cannot write: {exc.strerror or exc}") from None
        sys.stdout.flush()
        return
    out = render(rows, VIEWS[view], args.fmt, view, args.width)
    if args.output is None:
        sys.stdout.write(out)
        sys.stdout.flush()
        return
    try:
        args.output.write_text(out)
    except OSError as exc:
        raise AnalyzerError(f"{args.output}: cannot write: {exc.strerror or exc}") from None


def _answer(report, pods, view: str, args, after_table=()) -> int:
    """What ``mtls-analyzer analyze`` prints, in its order: the headline (with a pod list), the table, the
    warnings, the summary line, ``after_table`` lines, the edges' summary, the gates; the exit code."""
    from .report.edges import edge_rows, gate_failures, headline, summary

    edges = (edge_rows(report.flow_rows, pods, args.resource, trust_unknown_clients=args.trust_unknown_clients)
             if pods is not None else [])
    if not args.quiet and pods is not None:
        say(headline(edges))
    _emit({"flows": report.flow_rows, "pairs": report.pair_rows, "edges": edges}[view], view, args)
    for warning in report.stats.get("warnings", ()):
        say(f"Warning: {warning}")
    if not args.quiet:
        for line in after_table:
            say(line)
        say(report.summary())
        if pods is not None:
            say(summary(edges))
    failures = gate_failures(edges, args.fail_on)
    for line in failures:
        say(line)
    return 3 if failures else 0


def run(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        view = _view(args)
        args.output, args.width = wide_output(args.output, args.wide)
    except UsageError as exc:
        say(f"Error: {exc}")
        return 2
    logging.basicConfig(level=logging.WARNING - 10 * args.verbose, format="%(levelname)s %(name)s: %(message)s")
    try:
        from .api import analyze
        from .kube.kubectl import load_pod_list

        pods = load_pod_list(args.pods, args.use_kubectl, args.context, args.namespace, args.all_namespaces)
        if args.command == "analyze":
            report = analyze(args.captures, decode_as=args.decode_as, include_localhost=args.include_localhost,
                             pods=pods, engine=args.engine, jobs=args.jobs or None, clock_skew=args.clock_skew)
            return _answer(report, pods, view, args)
        return _capture(args, pods, view)
    except AnalyzerError as exc:
        say(f"Error: {exc}")
        return 2


def _capture(args, pods, view: str) -> int:
    from .api import analyze
    from .live import default_output, run_live

    result = run_live(args.write or default_output(), args.interface, args.bpf, args.seconds, args.packets,
                      args.ring_mb, args.ring_files, args.decode_as, args.engine, args.follow,
                      args.include_localhost, args.quiet)
    report = analyze([str(p) for p in result.files], decode_as=args.decode_as,
                     include_localhost=args.include_localhost, pods=pods)
    if args.follow and not args.output:
        sys.stdout.write("\n")
    stopped = f"capture stopped by {result.stopped_by}: {', '.join(map(str, result.files))}"
    code = _answer(report, pods, view, args, after_table=[stopped])
    if result.interrupted:
        raise KeyboardInterrupt  # after the report, as the CLI: "Interrupted." and exit 130
    return code


def main() -> None:
    """Exit with ``run``'s code; Ctrl-C anywhere (even while starting) is one line and 130."""
    try:
        code = run()
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): nothing more to say
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
