"""``analyze()``: picks the engine for each capture and assembles the ``Report``.

The native engine reads a capture in one pass (``pipeline.read_capture``) or, for a large plain file,
in byte ranges at once (``parallel``); the tshark engine (``engines.tshark``) asks Wireshark.  Either
way each capture becomes a ``CaptureRun``, and ``Report.assemble`` counts the stats once for all.

Rules: standard library only; pandas is imported only when a DataFrame property of the ``Report`` is
read.  A capture that cannot be read raises ``CaptureFormatError``; a damaged tail is a warning and
everything before it is still reported.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterable, Sequence

from . import parallel, pipeline
from .analysis.hints import parse_decode_as
from .engines import ENGINES
from .errors import AnalyzerError
from .join import DEFAULT_CLOCK_SKEW_S
from .report.result import CaptureRun, Report

Source = pipeline.Source

__all__ = ["analyze", "parse_decode_as", "Report"]


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
    A named pipe, process substitution (``<(cat x.pcapng)``) or device is read as one stream.
    """
    if engine not in ENGINES:
        raise AnalyzerError(f"engine must be {' or '.join(ENGINES)}, not {engine!r}")
    if clock_skew < 0:
        raise AnalyzerError(f"clock skew must be 0 or more seconds, not {clock_skew}")
    if pods is not None:
        from .kube.podlist import load_pods
        from .kube.pods import PodIndex

        pods = pods if isinstance(pods, PodIndex) else load_pods(pods)
    if dask is not None and dask is not False:  # the same rows, computed on a Dask cluster
        from .distributed.engine import analyze as on_dask

        return on_dask(sources, parse_decode_as(decode_as), include_localhost, pods, dask, progress, engine,
                       clock_skew=clock_skew)
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        sources = [sources]  # type: ignore[list-item]
    ports = parse_decode_as(decode_as)
    label = ""
    if engine == "tshark":
        from .engines import tshark

        tool = tshark.find_tshark()
        label = f"tshark {tool.version_text}"

        def read(source: Source, first_fid: int) -> CaptureRun:
            return tshark.read_capture(source, decode_as, first_fid, tool, progress=progress)
    else:
        def read(source: Source, first_fid: int) -> CaptureRun:
            return _native(source, ports, jobs, progress, first_fid)

    runs: list[CaptureRun] = []
    started = time.perf_counter()
    for source in sources:  # type: ignore[union-attr]
        runs.append(read(source, sum(len(run.rows) for run in runs)))
    return Report.assemble(runs, include_localhost, time.perf_counter() - started, label, pods, clock_skew)


def _native(source: Source, ports: frozenset[int], jobs: int | None, progress, first_fid: int) -> CaptureRun:
    """A large plain file in byte ranges when that holds (``parallel``), else one pass."""
    cuts = parallel.plan(source, jobs)
    if cuts:
        part = parallel.analyze_file(source, cuts, ports, first_fid, progress)
        if part is not None:
            return part.capture_run(processes=len(cuts) - 1)
    return pipeline.read_capture(source, ports, progress, first_fid)
