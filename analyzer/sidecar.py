"""The sidecar entry point: ``analyze`` and ``capture`` with argparse, for a python3 with no pip packages.

Role: ``mtls-analyzer.pyz`` (``tools/build_pyz.py``) runs this inside the ``linkerd-debug`` container,
whose python3 has the standard library only: no click, no pandas, no pyshark.  It offers the same
options as the click commands for what the sidecar needs (``analyze`` and ``capture``; table, JSON, CSV
or markdown output) and calls the same library code (``analyzer.api``, ``analyzer.live``,
``analyzer.report.render``), so its output is byte for byte what ``mtls-analyzer`` prints.

Rules: standard library only, and only modules the .pyz ships (a test runs it under ``python3 -I -S``).
Exit codes as the CLI's: 0, 2 (bad input: one ``Error:`` line), 130 (interrupted).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .errors import AnalyzerError
from .report.escape import text
from .report.render import FORMATS, render
from .report.schema import FLOW_NAMES, PAIR_NAMES

VIEWS = {"flows": FLOW_NAMES, "pairs": PAIR_NAMES}
SIDECAR_FORMATS = (*FORMATS, "jsonl")  # jsonl: one row per line, what `kubectl mtls audit --analyze-in-pod` reads


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--view", choices=[*VIEWS, "edges"], default="pairs", help="flows, pairs (default) or edges (needs --pods)")
    p.add_argument("--format", dest="fmt", choices=SIDECAR_FORMATS, default="table", help="output format (default table)")
    p.add_argument("-o", "--output", type=Path, help="write the report to PATH")
    p.add_argument("--decode-as", dest="decode_as", action="append", default=[], metavar="tcp.port==P,tls",
                   help="expect TLS on port P (repeatable); a hint, the payload still decides")
    p.add_argument("--include-localhost", action="store_true", help="also list localhost hops")
    p.add_argument("--pods", type=Path, help="kubectl get pods -A -o json output (for --view edges)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line on stderr")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mtls-analyzer.pyz",
                                  description="Prove from packets whether pod-to-pod traffic is TLS (sidecar build).")
    top.add_argument("--version", action="version", version=f"mtls-analyzer {__version__} (pyz)")
    top.add_argument("-v", "--verbose", action="count", default=0)
    sub = top.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", help="analyse pcap/pcapng files ('-' reads standard input)")
    a.add_argument("captures", nargs="+")
    a.add_argument("--engine", choices=("native", "tshark"), default="native",
                   help="native (default) or tshark (Wireshark's dissectors; needs tshark)")
    a.add_argument("-j", "--jobs", type=int, default=0,
                   help="processes per capture file (0, the default: one per CPU for files of 64 MiB or more)")
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


def _report(report, args) -> str:
    if args.view == "edges":
        from .report.schema import EDGE_NAMES

        rows, columns = report.edge_rows, EDGE_NAMES
    else:
        rows = report.flow_rows if args.view == "flows" else report.pair_rows
        columns = VIEWS[args.view]
    if args.fmt == "jsonl":
        from .report.export import iter_jsonl

        return "".join(iter_jsonl(rows, columns))
    return render(rows, columns, args.fmt, args.view)


def _emit(text: str, args) -> None:
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def run(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * args.verbose, format="%(levelname)s %(name)s: %(message)s")
    if args.view == "edges" and args.pods is None:
        print("Error: --view edges needs --pods FILE", file=sys.stderr)
        return 2
    try:
        if args.command == "analyze":
            from .api import analyze

            report = analyze(args.captures, decode_as=args.decode_as, include_localhost=args.include_localhost,
                             pods=args.pods, engine=args.engine, jobs=args.jobs or None)
            _emit(_report(report, args), args)
        else:
            report, result = _capture(args)
            if args.follow and not args.output:
                sys.stdout.write("\n")
            _emit(_report(report, args), args)
            if not args.quiet:
                print(text(f"capture stopped by {result.stopped_by}: {', '.join(map(str, result.files))}"), file=sys.stderr)
    except AnalyzerError as exc:
        print(text(f"Error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    for warning in report.stats.get("warnings", ()):
        print(text(f"Warning: {warning}"), file=sys.stderr)
    if not args.quiet:
        print(report.summary(), file=sys.stderr)
    return 0


def _capture(args):
    from .api import analyze
    from .live import default_output, run_live

    result = run_live(args.write or default_output(), args.interface, args.bpf, args.seconds, args.packets,
                      args.ring_mb, args.ring_files, args.decode_as, args.engine, args.follow,
                      args.include_localhost, args.quiet)
    report = analyze([str(p) for p in result.files], decode_as=args.decode_as,
                     include_localhost=args.include_localhost, pods=args.pods)
    return report, result


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
