"""Live capture: dumpcap (or tshark) writes pcapng, and flows are classified while the file grows.

Layers: ``tool`` (dumpcap/tshark as programs), ``follow`` (the growing file as a stream), ``sinks``
(an engine fed while capturing), ``view`` (pair counts, the terminal table, tap lines), ``session``
(one run, start to stop, and its terminal side ``run_live``).

Role: ``mtls-analyzer capture`` and the sidecar's ``capture``.  The capture process writes the file;
``session.LiveCapture`` follows it (also across ring-buffer files) with the ordinary ``CaptureReader`` and
``FlowTable`` (or a tshark ``-r -`` pass for ``engine="tshark"``), reports each flow once as soon as its
verdict is settled (``on_flow``), and stops on ``seconds``, ``packets``, SIGINT/SIGTERM or ``stop()``.  The final report is
``api.analyze`` over the finished file(s), exactly what ``analyze`` prints for them.

Rules:
  1. Capture only where asked: ``-i any`` by default, i.e. the network namespace we run in (a pod's, in
     the sidecar).  Every loop here is bounded in time (``seconds`` and ``MAX_RUN_S``) and polls with a
     sleep; nothing spins.
  2. dumpcap is preferred over tshark: it does not dissect, so its memory stays flat on long runs (tshark's
     grows with its dissection state, pyshark#141/#607); ``ring_mb``/``ring_files`` bound the disk.
     Flows that end are finalised and released by the flow table as in ``analyze``.  The tshark engine's
     own ``tshark -r -`` is replaced every ``RESTART_PACKETS`` packets (``engines.tshark.TsharkPipe``).
  3. One reader: ``Follower`` is the growing file (and its ring successors) as a non-seekable stream, so
     ``capture.reader.CaptureReader`` hands out each batch as soon as its bytes are written, and
     ``pipeline.run`` drives the same ``FlowTable`` as ``analyze`` (its ``on_batch`` hook lets us announce
     settled flows, finish quiet ones on time and tick the live view).  Live state is bounded by live
     flows and host pairs, never by the number of flows seen.
  4. Tool missing or capture not permitted: ``BackendUnavailable`` with one line saying what to install
     or which capability is missing.  Standard library only (the sidecar .pyz ships this package).
"""

from __future__ import annotations

from .follow import MAX_RUN_S, POLL_S, Follower
from .session import LiveCapture, LiveResult, default_output, install_signal_handlers, run_live
from .sinks import EVICT_S, SCAN_S, SETTLE_S, NativeSink, TsharkSink
from .tool import capture_command, capture_tool, ring_files_of
from .view import LiveTable, PairSummary, local_addresses, summary_lines, tap_line, terminal_rows

__all__ = ["EVICT_S", "MAX_RUN_S", "POLL_S", "SCAN_S", "SETTLE_S", "Follower", "LiveCapture", "LiveResult",
           "LiveTable", "NativeSink", "PairSummary", "TsharkSink", "capture_command", "capture_tool",
           "default_output", "install_signal_handlers", "local_addresses", "ring_files_of", "run_live",
           "summary_lines", "tap_line", "terminal_rows"]
