"""Classification while capturing: the bytes of the followed file into an engine, flows announced early.

Role: ``NativeSink`` (``CaptureReader`` -> ``FlowTable`` through ``pipeline.run``) and ``TsharkSink``
(``engines.tshark.TsharkPipe``) each take the ``Follower`` stream, count every flow in a
``view.PairSummary`` and call ``on_flow`` once per flow, as soon as its verdict is settled.  Live
state is bounded by live flows and host pairs, never by the number of flows seen.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from .view import PairSummary

log = logging.getLogger(__name__)

SETTLE_S = 1.0  # a flow with bytes both ways for this long (capture time) has its verdict
SCAN_S = 0.05  # at most this often, live flows are checked for a settled verdict
EVICT_S = 5.0  # this often, closed-and-quiet and idle flows are finished (FlowTable.evict) and released


class NativeSink:
    """``CaptureReader`` over the ``Follower`` -> ``FlowTable``, wired by ``pipeline.run``; announces each flow
    once its verdict is settled (before it ends when it can), and counts it in the pair summary."""

    def __init__(self, decode_as, on_flow: Callable[[dict], None] | None):
        from ..analysis.hints import parse_decode_as

        self.ports = parse_decode_as(decode_as)
        self.on_flow = on_flow
        self.summary = PairSummary()
        self.announced: set[int] = set()  # live flows already reported (bounded by live flows)
        self.rows: list[dict] = []  # finished flows' rows, handed over by pipeline.run, emptied every batch
        self.table = None
        self.info = None
        self.newest = 0.0  # newest packet time among live flows (capture time)
        self._scan_at = self._evict_at = 0.0
        self._pending = None  # (table, ctx) of a batch whose settle scan was deferred by SCAN_S

    @property
    def packets(self) -> int:
        return self.table.packets if self.table is not None else 0

    def run(self, stream, supervise: Callable[[], None]) -> None:
        from ..capture.reader import CaptureReader
        from ..analysis.inspector import new_inspector
        from ..pipeline import Context, run as run_pipeline
        from ..flows.table import FlowTable

        finished: list = []
        table = FlowTable(new_inspector, finished.append)
        self.table = table

        def on_batch(table, ctx) -> None:
            self._batch(table, ctx)
            supervise()

        with CaptureReader(stream) as reader:
            self.info = reader.info
            run_pipeline(reader, table, finished, self.rows, Context(decode_as=self.ports), None, on_batch=on_batch)
        self._finished()
        for w in reader.info.warnings:
            log.info("live: %s", w)

    def _finished(self) -> None:
        for row in self.rows:
            self.summary.add(row, final=True)
            if row["flow_id"] not in self.announced and self.on_flow is not None:
                self.on_flow(row)
            self.announced.discard(row["flow_id"])  # released with the flow: memory stays flat
        self.rows.clear()

    def _batch(self, table, ctx) -> None:
        self._finished()
        now = time.monotonic()
        if now >= self._evict_at and self.newest:
            # Finish closed-and-quiet and idle flows on time (the table itself scans every EVICT_EVERY
            # packets, which a quiet pod may take hours to reach).  "Now" is capture time: the newest
            # packet read, never ahead of the wall clock, so a reader running behind splits no flow.
            self._evict_at = now + EVICT_S
            table.evict(min(self.newest, time.time()))
            self._finished()
        self._pending = (table, ctx)
        if now >= self._scan_at:
            self._scan()

    def idle(self) -> None:
        """While waiting for bytes: run a settle scan a recent batch deferred (a FIN in a quiet pod)."""
        if self._pending is not None and time.monotonic() >= self._scan_at:
            self._scan()

    def _scan(self) -> None:
        from ..pipeline import flow_row

        table, ctx = self._pending  # type: ignore[misc]
        self._pending = None
        self._scan_at = time.monotonic() + SCAN_S
        newest = self.newest
        for flow, d in list(table.flows.values()):
            if d != 0:
                continue
            if flow.last_ts > newest:
                newest = flow.last_ts
            if flow.fid in self.announced:
                continue
            both = flow.bytes[0] and flow.bytes[1]
            if flow.closed or not (flow.wants[0] or flow.wants[1]) or (both and flow.last_ts - flow.first_ts >= SETTLE_S):
                row = flow_row(flow, ctx)
                self.announced.add(flow.fid)
                self.summary.add(row, final=False)
                if self.on_flow is not None:
                    self.on_flow(row)
        self.newest = newest


class TsharkSink:
    """The tshark engine, live: the ``Follower``'s bytes through ``engines.tshark.TsharkPipe`` into one
    ``Aggregator``.

    Memory stays flat on long runs: the pipe replaces tshark every ``RESTART_PACKETS`` packets or
    ``RESTART_BYTES`` bytes (tshark's own state grows with every frame, pyshark#141/#607), open streams
    carry over the restart as one flow, and the Aggregator keeps no finished rows (each is reported once
    here; the final report re-analyses the files) and finishes closed-and-quiet or idle streams every
    ``EVICT_S`` of capture time, releasing them.  ``restarts`` says how often tshark was replaced.
    """

    def __init__(self, decode_as, on_flow: Callable[[dict], None] | None,
                 restart_packets: int | None = None, restart_bytes: int | None = None):
        from ..analysis.hints import parse_decode_as
        from ..engines import tshark as engine

        self.summary = PairSummary()
        self.on_flow = on_flow
        self.info = None
        tshark = engine.find_tshark()
        self.agg = engine.Aggregator("live", parse_decode_as(decode_as), on_row=self._finished,
                                     on_verdict=self._verdict, keep_rows=False, evict_s=EVICT_S)
        cmd = engine.command(tshark, "-", decode_as)
        cmd.insert(1, "-l")  # flush after each packet: a pipe is not a terminal
        self.pipe = engine.TsharkPipe(self.agg, cmd, max_packets=restart_packets, max_bytes=restart_bytes)

    @property
    def packets(self) -> int:
        return self.agg.packets

    @property
    def restarts(self) -> int:
        return self.pipe.restarts

    def idle(self) -> None:
        pass

    def _verdict(self, row: dict) -> None:
        self.summary.add(row, final=False)
        if self.on_flow is not None:
            self.on_flow(row)

    def _finished(self, row: dict) -> None:
        # Called by the Aggregator before it forgets the flow's id (``announced``).
        first = row["flow_id"] not in self.agg.announced
        self.summary.add(row, final=True)
        if first and self.on_flow is not None:
            self.on_flow(row)

    def run(self, stream, supervise: Callable[[], None]) -> None:
        try:
            while True:
                data = stream.read(1 << 20)
                if not data:
                    break
                self.pipe.feed(data)
                supervise()
        finally:
            stream.close()
            self.pipe.close()
        with self.pipe.lock:
            self.agg.finish()
        if self.pipe.restarts:
            log.info("live: tshark was restarted %d times to bound its memory", self.pipe.restarts)
