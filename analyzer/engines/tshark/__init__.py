"""The tshark engine: the flows table from Wireshark's own dissectors, as a cross-check of the native one.

Role: run ONE streaming ``tshark -n -r FILE -T fields`` pass (``tool``), aggregate the packets per
``tcp.stream`` into the same facts the native engine gathers, and turn them into rows with the same
verdict rules (``aggregator``, ``analysis.verdict``).  Long live streams go through restarted tsharks
(``pipe``).  Standard library only; never imports ``api``.
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO, Iterable

from ...analysis.hints import parse_decode_as
from ...capture.blocks import BlockSplitter
from ...capture.frames import clamped_warning
from ...capture.inputs import is_regular_file, open_input
from ...capture.reader import CaptureReader
from ...errors import CaptureFormatError
from ...flows.table import CLOSED_IDLE_S, IDLE_S
from ...report.result import CaptureRun
from .aggregator import Aggregator
from .pipe import RESTART_BYTES, RESTART_PACKETS, TsharkPipe
from .tool import (
    FIELD_MAP,
    HEURISTIC_ARGS,
    HEURISTIC_FIRST_ARGS,
    MIN_VERSION,
    REASSEMBLY_ARGS,
    TShark,
    command,
    decode_as_args,
    find_tshark,
    iter_lines,
)

__all__ = [
    "Aggregator", "BlockSplitter", "CLOSED_IDLE_S", "FIELD_MAP", "HEURISTIC_ARGS", "HEURISTIC_FIRST_ARGS", "IDLE_S",
    "MIN_VERSION", "REASSEMBLY_ARGS", "RESTART_BYTES", "RESTART_PACKETS", "TShark", "TsharkPipe", "analyze_source",
    "command", "decode_as_args", "find_tshark", "read_capture",
]


def analyze_source(source, decode_as: Iterable[str] = (), next_fid: int = 0, tshark: TShark | None = None,
                   heuristics: bool = True, on_row=None, on_verdict=None) -> Aggregator:
    """Run the tshark pass over one capture (path, ``-``, or a binary stream) and aggregate it.

    A regular file is given to tshark by name; a named pipe or device is opened once and streamed to
    tshark's standard input, like ``-``."""
    tshark = tshark or find_tshark()
    ports = parse_decode_as(decode_as)
    stdin: BinaryIO | None = None
    snaplen = 0
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if name == "-":
            stdin, target, label = sys.stdin.buffer, "-", "<stdin>"
        elif is_regular_file(name):
            target, label, snaplen = name, os.path.basename(name), _snaplen(name)
        elif os.path.exists(name) and not os.path.isdir(name):
            stdin, target, label = open_input(name), "-", os.path.basename(name)
        else:
            raise CaptureFormatError(f"{name}: no such capture file")
    else:
        stdin, target = source, "-"
        label = os.path.basename(str(getattr(source, "name", "<stream>")))
    agg = Aggregator(label, ports, next_fid, on_row=on_row, on_verdict=on_verdict, snaplen=snaplen)
    try:
        for line in iter_lines(command(tshark, target, decode_as, heuristics), stdin, label):
            agg.feed(line)
    finally:
        if stdin is not None and stdin is not sys.stdin.buffer and source is not stdin:
            stdin.close()
    agg.finish()
    return agg


def _snaplen(path: str) -> int:
    """The smallest snaplen a capture file declares (0 when unknown or unreadable): tshark prints none."""
    try:
        with CaptureReader(path) as reader:
            for _ in reader.iter_batches():
                break
            snaplens = [i.snaplen for i in reader.info.interfaces if i.snaplen]
    except CaptureFormatError:
        return 0
    return min(snaplens, default=0)


def read_capture(source, decode_as: Iterable[str] = (), next_fid: int = 0, tshark: TShark | None = None,
                 heuristics: bool = True, progress=None) -> CaptureRun:
    """One capture through tshark, as a ``CaptureRun`` for ``Report.assemble``."""
    agg = analyze_source(source, decode_as, next_fid, tshark, heuristics)
    if progress is not None:
        progress(agg.capture, agg.packets, len(agg.rows))
    warnings = [clamped_warning(agg.capture, agg.clamped)] if agg.clamped else []
    return CaptureRun(agg.capture, agg.rows, agg.packets, agg.skipped, agg.not_tcp_rows(), warnings)
