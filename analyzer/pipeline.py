"""The streaming loop of the native engine: reader batches -> flow table -> inspection -> verdicts -> rows.

Role: ``run`` drives one ``CaptureReader`` through one ``FlowTable``; flows are turned into rows as
they finish (``flow_row``: the inspector's facts through ``analysis.verdict``), so their state is freed.
``read_part`` sets that up for one reader (a whole capture, or a byte range for ``parallel``);
``read_capture`` is the one-pass read of a whole capture, which opens its input exactly once.

Rules:
  1. This module never imports ``api`` or ``parallel``; both call it.
  2. Standard library only: the sidecar's bare python3 runs it.
  3. A capture that cannot be read raises ``CaptureFormatError``; a damaged tail is a warning in the
     reader's ``CaptureInfo`` and everything before it is still reported.
"""

from __future__ import annotations

import functools
import gc
import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable

from .analysis.addresses import LOOPBACK_IFACE_NAMES, address_localhost_reason, ip_text, protocol_name
from .analysis.hints import SERVER_PORTS
from .analysis.inspector import connection_facts, evidence_facts, new_inspector
from .analysis.verdict import client_direction, flow_row as verdict_row
from .capture.inputs import open_input
from .capture.reader import CaptureInfo, CaptureReader
from .flows.table import FOLDED, Flow, FlowTable
from .report.result import CaptureRun
from .report.rowstore import RowStore

PROGRESS_EVERY_S = 0.5
GC_THRESHOLD = 200_000  # allocations between young-generation passes of the cyclic GC during a run
ROWS_EVERY = 1024  # finished flows held before their rows are made, within a batch

Source = str | os.PathLike | BinaryIO
BatchHook = Callable[[FlowTable, "Context"], None]


@dataclass(frozen=True)
class Context:
    """Per-capture settings the verdicts need."""

    decode_as: frozenset[int] = frozenset()  # ports the user said carry TLS
    snaplen: int = 0  # smallest snaplen among the capture's interfaces (0 = unknown)

    @functools.cached_property
    def server_ports(self) -> frozenset[int]:  # computed once per context, not once per flow
        return SERVER_PORTS | self.decode_as


def context_for(interfaces, decode_as: frozenset[int]) -> Context:
    """The context of a capture: the ``--decode-as`` ports and its smallest snaplen."""
    snaplens = [i.snaplen for i in interfaces if i.snaplen]
    return Context(decode_as=decode_as, snaplen=min(snaplens) if snaplens else 0)


def flow_row(flow: Flow, ctx: Context) -> dict:
    """One row of the flows table for a finished flow."""
    conn = connection_facts(flow, ctx.snaplen)
    client = client_direction(conn, ctx.server_ports)
    return verdict_row(conn, client, evidence_facts(flow, client[0]), ctx.decode_as)


def rows_of(finished: list[Flow], rows: RowStore | list[dict], ctx: Context,
            on_row: Callable[[Flow], None] | None = None) -> None:
    """Append the rows of the finished flows (``on_row`` sees each flow once its row is made), and
    forget the flows."""
    for flow in finished:
        rows.append(flow_row(flow, ctx))
        if on_row is not None:
            on_row(flow)
    finished.clear()


@dataclass
class Part:
    """What reading one capture (or one byte range of it) produced; pickled back from a range's process."""

    info: CaptureInfo
    rows: RowStore = field(default_factory=RowStore)  # flows finished inside the range
    pieces: list[Flow] = field(default_factory=list)  # finished mid-stream pieces (``parallel``)
    live: list[Flow] = field(default_factory=list)  # flows still live at the range's end, whole
    fids: int = 0  # flows created in the range (local ids 0..fids-1)
    packets: int = 0
    skipped: Counter = field(default_factory=Counter)
    not_tcp: Counter = field(default_factory=Counter)
    not_tcp_loopback: set = field(default_factory=set)
    released: Counter = field(default_factory=Counter)  # early releases (``FlowTable.released``)
    overflow: bool = False

    def capture_run(self, processes: int = 1) -> CaptureRun:
        info = self.info
        return CaptureRun(info.path, self.rows, self.packets, self.skipped,
                          not_tcp_rows(self.not_tcp, self.not_tcp_loopback, os.path.basename(info.path)),
                          list(info.warnings), info.truncated, info, processes, self.released)


def read_part(reader: CaptureReader, ports: frozenset[int], progress=None, first_fid: int = 0,
              on_finish: Callable[[Flow], None] | None = None, on_batch: BatchHook | None = None,
              finish: bool = True, track: bool = False, flow_share: int = 1) -> Part:
    """Read everything ``reader`` yields into a ``Part``: rows of the flows that finished, and (with
    ``finish=False``) the flows still live at the end.  ``on_finish`` sees each finished flow once its
    row is made (in finishing order)."""
    finished: list[Flow] = []
    part = Part(reader.info)
    table = FlowTable(new_inspector, finished.append)
    table.capture = os.path.basename(reader.info.path)
    table.next_fid = first_fid
    table.track = track
    table.max_flows //= flow_share  # several ranges read at once share the live-flow limit
    run(reader, table, finished, part.rows, Context(decode_as=ports), progress, on_batch=on_batch, finish=finish,
        on_row=on_finish)
    part.live = list({id(f): f for f, _ in table.flows.values()}.values())
    part.fids, part.packets, part.skipped = table.next_fid, table.packets, table.skipped
    part.not_tcp, part.not_tcp_loopback = table.not_tcp, table.not_tcp_loopback
    part.released = table.released
    return part


def read_capture(source: Source, ports: frozenset[int], progress=None, first_fid: int = 0) -> CaptureRun:
    """One pass over a whole capture: a path (opened once; a pipe is read as a stream), ``-`` or a
    binary file object."""
    if isinstance(source, (str, os.PathLike)) and os.fspath(source) != "-":
        source = open_input(source)
    with CaptureReader(source) as reader:
        return read_part(reader, ports, progress, first_fid).capture_run()


def run(reader: CaptureReader, table: FlowTable, finished: list, rows: RowStore | list, ctx: Context, progress,
        on_batch: BatchHook | None = None, finish: bool = True, on_row: Callable[[Flow], None] | None = None) -> None:
    """Stream the capture through the table; make each flow's row as it finishes so its state is freed.

    ``on_batch(table, ctx)`` runs after each batch, its finished flows already in ``rows`` (live capture).
    ``finish=False`` leaves the flows still live at the end in the table (a byte range's end).
    """
    with fewer_gc_passes():
        _run_batches(reader, table, finished, rows, ctx, progress, on_batch, finish, on_row)


@contextmanager
def fewer_gc_passes():
    """The flow table's objects form no reference cycles (reference counting frees them), but with
    CPython's default threshold of 700 allocations the cyclic GC's generational passes walk every live
    flow again and again (at 50,000 they still took a third of a SYN flood's table time).  The threshold
    is raised for the run and restored after; cycles are still collected."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _run_batches(reader: CaptureReader, table: FlowTable, finished: list, rows: RowStore | list, ctx: Context, progress,
                 on_batch: BatchHook | None, finish: bool, on_row: Callable[[Flow], None] | None) -> None:
    seen_ifaces = 0
    last = time.perf_counter()
    current = [ctx]
    finish_one = table.on_finish

    def on_finish(flow: Flow) -> None:
        # A batch may finish tens of thousands of flows (the table's open-flow limit): their rows are
        # made every ``ROWS_EVERY`` flows, not all held to the batch's end.
        finish_one(flow)
        if len(finished) >= ROWS_EVERY:
            rows_of(finished, rows, current[0], on_row)

    table.on_finish = on_finish
    for buf, frames in reader.iter_batches():
        ifaces = reader.info.interfaces
        if len(ifaces) != seen_ifaces:
            table.add_loopback_ifaces(i for i in range(seen_ifaces, len(ifaces)) if ifaces[i].name in LOOPBACK_IFACE_NAMES)
            ctx = current[0] = context_for(ifaces, ctx.decode_as)
            seen_ifaces = len(ifaces)
        table.process(buf, frames)
        if finished:
            rows_of(finished, rows, ctx, on_row)
        if progress is not None and time.perf_counter() - last > PROGRESS_EVERY_S:
            last = time.perf_counter()
            progress(reader.info.path, table.packets, len(rows) + len(table.flows) // 2)
        if on_batch is not None:
            on_batch(table, ctx)
    if finish:
        table.finish_all()
    rows_of(finished, rows, ctx, on_row)


FOLDED_ROW = {"src_ip": "*", "dst_ip": "*", "protocol": "other host pairs", "localhost": False}


def not_tcp_rows(not_tcp: Counter, loopback: Iterable, capture: str) -> list[dict]:
    """Per (source, destination, protocol) packet counts of traffic that is not TCP; the host pairs past
    the table's limit are one row, ``*`` to ``*``."""
    loopback = set(loopback)
    return [
        {**FOLDED_ROW, "packets": count, "capture": capture} if key == FOLDED else
        {"src_ip": ip_text(key[0]), "dst_ip": ip_text(key[1]), "protocol": protocol_name(key[2]),
         "packets": count, "localhost": bool(address_localhost_reason(key[0], key[1], key in loopback)),
         "capture": capture}
        for key, count in sorted(not_tcp.items())
    ]
