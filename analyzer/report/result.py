"""``Report``: what an analysis returns, whichever engine read the captures.

Role: every engine hands back one ``CaptureRun`` per capture (its rows and counters); ``Report.assemble``
joins them and builds ``stats`` once, the same keys for every engine.  Rows are plain dicts (schema
column names); DataFrames are built on demand, so pandas is imported only when one is asked for.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from ..errors import AnalyzerError
from ..join import DEFAULT_CLOCK_SKEW_S, combine
from ..join.vantage import capture_names
from .pairs import aggregate_pairs
from .schema import FLOW_COLUMNS, PAIR_COLUMNS


@dataclass
class CaptureRun:
    """What one engine produced for one capture."""

    path: str
    rows: list[dict] = field(default_factory=list)
    packets: int = 0
    unsupported: Counter = field(default_factory=Counter)  # frames not analysed, by reason
    not_tcp: list[dict] = field(default_factory=list)  # per (src, dst, protocol) counts
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False  # the capture ended in damage
    info: object = None  # capture.reader.CaptureInfo when the native reader read it
    processes: int = 1


@dataclass
class Report:
    """Result of an analysis.  Rows are plain dicts (schema column names); frames are built on demand."""

    all_flow_rows: list[dict]
    include_localhost: bool
    stats: dict = field(default_factory=dict)
    captures: list = field(default_factory=list)  # CaptureInfo per input (native engine)
    pods: object = None  # analyzer.kube.PodIndex when analyze(pods=...) was given one (edges need it)

    @classmethod
    def assemble(cls, runs: Sequence[CaptureRun], include_localhost: bool, elapsed_s: float, engine: str = "",
                 pods=None, clock_skew: float = DEFAULT_CLOCK_SKEW_S) -> "Report":
        """One report from the runs of one engine: rows in flow-id order, ``stats`` counted here only.

        This is where the rows of several captures meet: a connection seen by several becomes one row
        (``join.combine``; one capture without Services passes through untouched).  The pod list's own
        notes lead the warnings."""
        not_tcp = [entry for run in runs for entry in run.not_tcp]
        unsupported: Counter = Counter()
        for run in runs:
            unsupported.update(run.unsupported)
        stats = {
            "packets": sum(run.packets for run in runs),
            "frames_unsupported": unsupported,
            "not_tcp": not_tcp,
            "warnings": list(getattr(pods, "notes", None) or []) + [w for run in runs for w in run.warnings],
            "processes": max((run.processes for run in runs), default=1),
        }
        names = capture_names([str(run.path) for run in runs])
        for run, name in zip(runs, names):
            if name != os.path.basename(str(run.path)):  # two files of one name: told apart by their paths
                for row in run.rows:
                    row["capture"] = row["captures"] = name
        rows = combine([run.rows for run in runs], names, stats, clock_skew, getattr(pods, "services", None))
        rows.sort(key=lambda r: r["flow_id"])
        stats.update({
            "flows": len(rows),
            "excluded_localhost": sum(1 for r in rows if r["localhost"]),
            "not_tcp_packets": sum(entry["packets"] for entry in not_tcp),
            "truncated": any(run.truncated for run in runs),
            "elapsed_s": elapsed_s,
        })
        if engine:
            stats["engine"] = engine
        return cls(rows, include_localhost, stats, [run.info for run in runs if run.info is not None], pods)

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
        from .frames import to_frame

        return to_frame(self.flow_rows, FLOW_COLUMNS)

    @property
    def all_flows(self):
        """Like ``flows`` but always including localhost hops."""
        from .frames import to_frame

        return to_frame(self.all_flow_rows, FLOW_COLUMNS)

    @property
    def pairs(self):
        """pandas DataFrame of host pairs; columns and dtypes from ``report.schema.PAIR_COLUMNS``."""
        from .frames import to_frame

        return to_frame(self.pair_rows, PAIR_COLUMNS)

    def edge_rows_by(self, resource: str = "pod", by_port: bool = False, trust_unknown_clients: bool = False) -> list[dict]:
        """Edges rolled up to ``pod`` / ``deployment`` / ``namespace`` (see ``analyzer.report.edges``)."""
        from .edges import edge_rows

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
        from .frames import to_frame
        from .schema import EDGE_COLUMNS

        return to_frame(self.edge_rows, EDGE_COLUMNS)

    def summary(self) -> str:
        stats = self.stats
        shown = self.flow_rows
        verdicts = Counter(r["verdict"] for r in shown)
        unsupported = sum(stats["frames_unsupported"].values())
        return (
            f"{stats['packets']} packets, {len(shown)} flows (tls {verdicts['tls']}, plaintext {verdicts['plaintext']}, "
            f"unknown {verdicts['unknown']}), {stats['excluded_localhost']} localhost flows "
            f"{'included' if self.include_localhost else 'excluded'}, {stats['not_tcp_packets']} not-TCP packets, "
            f"{unsupported} frames not analysed, {stats['elapsed_s']:.2f} s"
            + (f" ({stats['processes']} processes)" if stats.get("processes", 1) > 1 else "")
            + (f"; {stats['captures']} captures: {stats['rows_in']} capture rows are "
               f"{stats['rows_in'] - stats['rows_joined']} connections (clock skew {stats['clock_skew_s']:g} s)"
               if stats.get("captures", 1) > 1 else "")
            + (f"; {stats['dnat_joined']} joined with their side before a Service's DNAT"
               if stats.get("dnat_joined") else "")
        )
