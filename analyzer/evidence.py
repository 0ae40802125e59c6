"""The first bytes of one flow, as they were on the wire: the evidence behind a plaintext verdict.

Role: read a capture once through the same flow table and payload inspector as the analysis (so the bytes
are the in-order bytes the verdict was made on, retransmissions and reordering resolved) and keep the
head of each direction of the one connection asked for.  ``Report.evidence(flow_id)`` is the public door.

Rules: standard library only; memory bounded by the inspector's head (``HEAD_KEEP`` bytes per direction)
for one connection, whatever the capture's size; the read stops as soon as the connection has finished.
A connection is found by its endpoints and its first packet's time, not by a flow id, so the answer does
not depend on how the captures were numbered or joined.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .analysis.addresses import ip_text
from .analysis.inspector import new_inspector
from .capture.inputs import open_input
from .capture.reader import CaptureReader
from .errors import AnalyzerError
from .flows.table import Flow, FlowTable

SAME_START_S = 1e-6  # first-packet times that are one connection's (rows keep microseconds)
DEFAULT_LIMIT = 256  # bytes returned per direction


@dataclass(frozen=True)
class Evidence:
    """The first bytes each side sent: ``client`` (client -> server) and ``server`` (server -> client)."""

    flow_id: int
    capture: str
    client: bytes
    server: bytes

    def __str__(self) -> str:
        return (f"flow {self.flow_id} in {os.path.basename(self.capture)}\n"
                f"client -> server: {self.client!r}\nserver -> client: {self.server!r}")


def first_bytes(capture: str | os.PathLike, row: dict, limit: int = DEFAULT_LIMIT) -> Evidence:
    """The first ``limit`` bytes of each direction of the connection of flow ``row`` (a flows-table row:
    ``client_ip``/``client_port``, ``server_ip``/``server_port``, ``first_ts``) in ``capture``.

    Raises ``AnalyzerError`` when the capture does not hold that connection, ``CaptureFormatError``
    when it cannot be read."""
    client = (row["client_ip"], int(row["client_port"]))
    server = (row["server_ip"], int(row["server_port"]))
    best: list = []  # [(time difference, flow)]: the closest connection with these endpoints so far

    def finished(flow: Flow) -> None:
        ends = [(ip_text(flow.addrs[d]), flow.ports[d]) for d in (0, 1)]
        if sorted(ends) == sorted([client, server]):
            gap = abs(flow.first_ts - float(row["first_ts"]))
            if not best or gap < best[0][0]:
                best[:] = [(gap, flow)]

    table = FlowTable(new_inspector, finished)
    with CaptureReader(open_input(capture)) as reader:
        for buf, frames in reader.iter_batches():
            table.process(buf, frames)
            if best and best[0][0] < SAME_START_S:
                break
        else:
            table.finish_all()
    if not best:
        raise AnalyzerError(f"{capture}: no connection {client[0]}:{client[1]} -> {server[0]}:{server[1]}")
    flow = best[0][1]
    d = 0 if (ip_text(flow.addrs[0]), flow.ports[0]) == client else 1
    heads = flow.inspector.heads if flow.inspector is not None else (b"", b"")
    return Evidence(int(row["flow_id"]), os.fspath(capture), bytes(heads[d][:limit]), bytes(heads[1 - d][:limit]))
