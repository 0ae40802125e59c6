"""``analyze()``: the one place that wires the stages together.

capture bytes -> ``CaptureReader`` batches -> ``FlowTable`` (decode, flows, reassembly) ->
``FlowInspector`` (TLS parsers) -> ``classify`` rows -> host pairs -> ``Report``.  ``_run`` drives one
reader through one table; ``parallel.read_range`` sets that up for one byte range of a capture (the
whole of it for one pass), ``parallel.analyze_file`` for several at once.

Rules: the stages are standard library; pandas is imported only when a DataFrame property of the
``Report`` is read.  A capture that cannot be read raises ``CaptureFormatError``; a damaged tail is a
warning and everything before it is still reported.
"""

from __future__ import annotations

import gc
import os
import re
import time
from contextlib import contextmanager
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Sequence

from . import parallel
from .classify import Context, address_localhost_reason, classify, ip_text
from .errors import AnalyzerError
from .flows.table import Flow, FlowTable
from .join import DEFAULT_CLOCK_SKEW_S, combine
from .report.pairs import aggregate_pairs
from .report.schema import FLOW_COLUMNS, PAIR_COLUMNS

LOOPBACK_IFACE_NAMES = frozenset({"lo", "lo0", "loopback", "Loopback", "\\Device\\NPF_Loopback"})
DECODE_AS_RE = re.compile(r"^tcp\.port==(\d{1,5})(?:-(\d{1,5}))?,(tls|ssl)$")
PROGRESS_EVERY_S = 0.5

Source = str | os.PathLike | BinaryIO


def parse_decode_as(specs: Iterable[str]) -> frozenset[int]:
    """tshark's ``tcp.port==8080,tls`` (or a range ``8000-8080``, or ``ssl``) -> the set of ports."""
    ports: set[int] = set()
    for spec in specs:
        m = DECODE_AS_RE.match(spec.strip().replace(" ", ""))
        if not m:
            raise AnalyzerError(f"--decode-as {spec!r}: expected tshark's form tcp.port==PORT,tls (or PORT-PORT)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if not (0 < lo <= hi <= 65535):
            raise AnalyzerError(f"--decode-as {spec!r}: ports must be 1-65535, low to high")
        ports.update(range(lo, hi + 1))
    return frozenset(ports)


@dataclass
class Report:
    """Result of an analysis.  Rows are plain dicts (schema column names); frames are built on demand."""

    all_flow_rows: list[dict]
    include_localhost: bool
    stats: dict = field(default_factory=dict)
    captures: list = field(default_factory=list)  # CaptureInfo per input
    pods: object = None  # analyzer.kube.PodIndex when analyze(pods=...) was given one (edges need it)

    @property
    def flow_rows(self) -> list[dict]:
        """Flows shown by default: localhost hops only with ``include_localhost``."""
        if self.include_localhost:
            return self.all_flow_rows
        return [r for r in self.all_flow_rows if not r["localhost"]]

    @property
    def pair_rows(self) -> list[dict]:
        return aggregate_pairs(self.flow_rows)

    @property
    def flows(self):
        """pandas DataFrame of ``flow_rows``; columns and dtypes from ``report.schema.FLOW_COLUMNS``."""
        from .report.frames import to_frame

        return to_frame(self.flow_rows, FLOW_COLUMNS)

    @property
    def all_flows(self):
        """Like ``flows`` but always including localhost hops."""
        from .report.frames import to_frame

        return to_frame(self.all_flow_rows, FLOW_COLUMNS)

    @property
    def pairs(self):
        """pandas DataFrame of host pairs; columns and dtypes from ``report.schema.PAIR_COLUMNS``."""
        from .report.frames import to_frame

        return to_frame(self.pair_rows, PAIR_COLUMNS)

    def edge_rows_by(self, resource: str = "pod", by_port: bool = False, trust_unknown_clients: bool = False) -> list[dict]:
        """Edges rolled up to ``pod`` / ``deployment`` / ``namespace`` (see ``analyzer.report.edges``)."""
        from .report.edges import edge_rows

        if self.pods is None:
            raise AnalyzerError("edges need a pod list: analyze(..., pods='pods.json')")
        return edge_rows(self.flow_rows, self.pods, resource, by_port, trust_unknown_clients)  # type: ignore[arg-type]

    @property
    def edge_rows(self) -> list[dict]:
        """One dict per pod pair with its status (needs ``pods=``); keys ``schema.EDGE_COLUMNS``."""
        return self.edge_rows_by("pod")

    @property
    def edges(self):
        """pandas DataFrame of ``edge_rows``; columns and dtypes from ``report.schema.EDGE_COLUMNS``."""
        from .report.frames import to_frame
        from .report.schema import EDGE_COLUMNS

        return to_frame(self.edge_rows, EDGE_COLUMNS)

    def summary(self) -> str:
        s = self.stats
        shown = self.flow_rows
        v = Counter(r["verdict"] for r in shown)
        unsupported = sum(s["frames_unsupported"].values())
        return (
            f"{s['packets']} packets, {len(shown)} flows (tls {v['tls']}, plaintext {v['plaintext']}, "
            f"unknown {v['unknown']}), {s['excluded_localhost']} localhost flows "
            f"{'included' if self.include_localhost else 'excluded'}, {s['not_tcp_packets']} not-TCP packets, "
            f"{unsupported} frames not analysed, {s['elapsed_s']:.2f} s"
            + (f" ({s['processes']} processes)" if s.get("processes", 1) > 1 else "")
            + (f"; {s['captures']} captures: {s['rows_in']} capture rows are {s['rows_in'] - s['rows_joined']} "
               f"connections (clock skew {s['clock_skew_s']:g} s)" if s.get("captures", 1) > 1 else "")
            + (f"; {s['dnat_joined']} joined with their side before a Service's DNAT" if s.get("dnat_joined") else "")
        )


def analyze(
    sources: Source | Sequence[Source],
    decode_as: Iterable[str] = (),
    include_localhost: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    pods=None,
    engine: str = "native",
    jobs: int | None = None,
    clock_skew: float = DEFAULT_CLOCK_SKEW_S,
    dask=None,
) -> Report:
    """Analyse one or more captures (paths, ``"-"`` for stdin, or binary file objects).

    Returns
    -------
    Report
        ``.flows`` / ``.all_flows`` / ``.pairs`` DataFrames (columns in ``analyzer.report.schema``),
        ``.flow_rows`` / ``.pair_rows`` as dicts, ``.stats`` counters, ``.summary()`` one line.

    Raises ``CaptureFormatError`` for an input that is not a readable capture.
    ``pods``: a ``kubectl get pods -A -o json`` (or ``-o wide``) file path or an ``analyzer.kube.PodIndex``;
    it enables ``.edges`` / ``.edge_rows``.  A bad pod list raises ``PodsFormatError`` before any capture is read.
    ``engine``: ``native`` (default) or ``tshark`` (``analyzer.engines.tshark``: same rows from Wireshark's
    dissectors; raises ``BackendUnavailable`` when tshark is missing or too old).
    ``jobs``: processes per capture file (``analyzer.parallel``); None = one per CPU for a plain file of
    at least ``parallel.MIN_BYTES``, 1 = one pass.  The rows are those of one pass.
    ``clock_skew``: seconds two captures' clocks may differ by; rows of several captures that are one TCP
    connection become one row (``analyzer.join``), and ``stats["clock_skew_s"]`` reports the skew used.
    ``dask``: run on a Dask cluster (``analyzer.distributed``; ``pip install 'mtls-analyzer[dask]'``):
    ``True`` starts a local one, ``"tcp://host:8786"`` or a ``distributed.Client`` uses that one.  The
    rows are those of one machine; sources may also be globs, directories and fsspec URLs.
    """
    if clock_skew < 0:
        raise AnalyzerError(f"clock skew must be 0 or more seconds, not {clock_skew}")
    if pods is not None:
        from .kube.pods import PodIndex, load_pods

        pods = pods if isinstance(pods, PodIndex) else load_pods(pods)
    if dask is not None and dask is not False:  # the same rows, computed on a Dask cluster
        from .distributed.engine import analyze as on_dask

        return on_dask(sources, parse_decode_as(decode_as), include_localhost, pods, dask, progress, engine,
                       clock_skew=clock_skew)
    notes = list(pods.notes) if pods is not None else []  # what the pod list could not say
    if engine != "native":  # ``engine="tshark"``: the same rows from Wireshark's dissectors
        if engine != "tshark":
            raise AnalyzerError(f"engine must be native or tshark, not {engine!r}")
        from .engines.tshark import analyze as tshark_analyze

        report = tshark_analyze(sources, decode_as, include_localhost, progress, clock_skew=clock_skew,
                                services=getattr(pods, "services", None))
        report.pods = pods
        report.stats["warnings"][:0] = notes
        return report
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        sources = [sources]  # type: ignore[list-item]
    ctx_ports = parse_decode_as(decode_as)
    first_fid = 0
    parts: list[list[dict]] = []
    stats: dict = {"packets": 0, "frames_unsupported": Counter(), "not_tcp": [], "warnings": notes, "processes": 1}
    infos = []
    t0 = time.perf_counter()
    for src in sources:  # type: ignore[union-attr]
        split, part = parallel.plan(src, jobs), None
        if split:
            with _fewer_gc_passes():  # receiving and stitching the ranges allocate as much as reading
                part = parallel.analyze_file(src, split, ctx_ports, first_fid, progress)
        if part is not None:
            stats["processes"] = max(stats["processes"], len(split) - 1)
        else:  # one pass: the whole capture as one range
            part = parallel.read_range(src, 0, None, ctx_ports, False, progress, first_fid=first_fid)
        infos.append(part.info)
        parts.append(part.rows)
        first_fid += len(part.rows)
        stats["packets"] += part.packets
        stats["frames_unsupported"].update(part.skipped)
        stats["not_tcp"] += _not_tcp_rows(part.not_tcp, part.not_tcp_loopback, os.path.basename(part.info.path))
        stats["warnings"] += part.info.warnings
    # The one place where the rows of the captures meet: connections seen by several become one row.
    rows = combine(parts, [os.path.basename(i.path) for i in infos], stats, clock_skew,
                   getattr(pods, "services", None))
    rows.sort(key=lambda r: r["flow_id"])
    stats["flows"] = len(rows)
    stats["excluded_localhost"] = sum(1 for r in rows if r["localhost"])
    stats["not_tcp_packets"] = sum(r["packets"] for r in stats["not_tcp"])
    stats["truncated"] = any(i.truncated for i in infos)
    stats["elapsed_s"] = time.perf_counter() - t0
    return Report(rows, include_localhost, stats, infos, pods)


def _run(reader, table: FlowTable, finished: list, rows: list, ctx: Context, server_ports, progress,
         on_batch: Callable[[FlowTable, Context], None] | None = None, finish: bool = True) -> None:
    """Stream the capture through the table; classify flows as they finish so their state is freed.

    ``on_batch(table, ctx)`` runs after each batch, its finished flows already in ``rows`` (live capture).
    ``finish=False`` leaves the flows still live at the end in the table (a byte range's end).
    """
    with _fewer_gc_passes():
        _run_batches(reader, table, finished, rows, ctx, server_ports, progress, on_batch, finish)


GC_THRESHOLD = 50_000  # allocations between young-generation passes of the cyclic GC during a run


@contextmanager
def _fewer_gc_passes():
    """The flow table's objects form no reference cycles (reference counting frees them), but with
    CPython's default threshold of 700 allocations the cyclic GC's generational passes walk every live
    flow again and again: ~0.6 s per million packets on the benchmark (18 %; ``benchmarks/README.md``).
    The threshold is raised for the run and restored after; cycles are still collected."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _run_batches(reader, table: FlowTable, finished: list, rows: list, ctx: Context, server_ports, progress,
                 on_batch, finish: bool) -> None:
    seen_ifaces = 0
    last = time.perf_counter()
    for buf, frames in reader.iter_batches():
        ifaces = reader.info.interfaces
        if len(ifaces) != seen_ifaces:
            table.add_loopback_ifaces(i for i in range(seen_ifaces, len(ifaces)) if ifaces[i].name in LOOPBACK_IFACE_NAMES)
            ctx = context_for(ifaces, ctx.decode_as)
            seen_ifaces = len(ifaces)
        table.process(buf, frames)
        if finished:
            _classify_all(finished, rows, ctx, server_ports)
        if progress is not None and time.perf_counter() - last > PROGRESS_EVERY_S:
            last = time.perf_counter()
            progress(reader.info.path, table.packets, len(rows) + len(table.flows) // 2)
        if on_batch is not None:
            on_batch(table, ctx)
    if finish:
        table.finish_all()
    _classify_all(finished, rows, ctx, server_ports)


def context_for(interfaces, decode_as: frozenset[int]) -> Context:
    """The classification context of a capture: the ``--decode-as`` ports and its smallest snaplen."""
    snaplens = [i.snaplen for i in interfaces if i.snaplen]
    return Context(decode_as=decode_as, snaplen=min(snaplens) if snaplens else 0)


def _classify_all(finished: list[Flow], rows: list[dict], ctx: Context, server_ports) -> None:
    for flow in finished:
        client_d, basis = flow.client_dir(server_ports)
        rows.append(classify(flow, ctx, client_d, basis))
    finished.clear()


def _not_tcp_rows(not_tcp: Counter, loopback: set, capture: str) -> list[dict]:
    names = {1: "icmp", 17: "udp", 58: "icmpv6", 132: "sctp"}
    return [
        {"src_ip": ip_text(s), "dst_ip": ip_text(d), "protocol": names.get(p, str(p)), "packets": n,
         "localhost": bool(address_localhost_reason(s, d, (s, d, p) in loopback)),
         "capture": capture}
        for (s, d, p), n in sorted(not_tcp.items())
    ]
