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
from .rowstore import RowStore
from .schema import FLOW_COLUMNS, PAIR_COLUMNS

# Columns ``Report.flows_with_pods`` adds to the flows (described in schema.EDGE_COLUMNS / audit.FLOW_EXTRA_COLUMNS).
PEER_NAMES = ("src_ns", "src", "src_kind", "src_meshed", "dst_ns", "dst", "dst_kind", "dst_meshed",
              "flow_status", "status_word", "status_detail")

# Early releases past the memory limits (``flows.table.FlowTable.released``): the flows judged before
# their end, the streams whose out-of-order bytes were given up, the not-TCP packets counted as ``*``.
RELEASE_KEYS = ("flows_released_early", "streams_released_early", "not_tcp_packets_folded")


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
    released: Counter = field(default_factory=Counter)  # early releases past the memory limits


@dataclass
class Report:
    """Result of an analysis.  Rows are plain dicts (schema column names); frames are built on demand."""

    all_flow_rows: list[dict] | RowStore  # a RowStore (read as dicts) when one capture had very many
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
        released: Counter = Counter(dict.fromkeys(RELEASE_KEYS, 0))
        for run in runs:
            unsupported.update(run.unsupported)
            released.update(run.released)
        stats = {
            "packets": sum(run.packets for run in runs),
            "frames_unsupported": unsupported,
            "not_tcp": not_tcp,
            "warnings": list(getattr(pods, "notes", None) or []) + [w for run in runs for w in run.warnings],
            "processes": max((run.processes for run in runs), default=1),
            **{key: released[key] for key in RELEASE_KEYS},
        }
        names = capture_names([str(run.path) for run in runs])
        for run, name in zip(runs, names):
            if name != os.path.basename(str(run.path)):  # two files of one name: told apart by their paths
                run.rows = list(run.rows)  # (a compressed store's rows are read-only)
                for row in run.rows:
                    row["capture"] = row["captures"] = name
        rows = combine([run.rows for run in runs], names, stats, clock_skew, getattr(pods, "services", None))
        if isinstance(rows, RowStore):  # one capture's own rows: compressed when there are many
            rows.sort_by_flow_id()
            rows = rows if rows.compact else rows.rows
        else:
            rows.sort(key=lambda r: r["flow_id"])
        stats.update({
            "flows": len(rows),
            "excluded_localhost": sum(n for (localhost, _), n in verdict_tally(rows).items() if localhost),
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
        if isinstance(self.all_flow_rows, RowStore):
            return NotLocalhost(self.all_flow_rows)
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

    def flows_with_pods(self, resource: str = "pod", trust_unknown_clients: bool = False):
        """``flows`` with both ends named from the pod list (needs ``pods=``) and each flow's own status.

        Returns
        -------
        pandas.DataFrame
            The ``flows`` columns, then ``src_ns``, ``src``, ``src_kind``, ``src_meshed``, ``dst_ns``,
            ``dst``, ``dst_kind``, ``dst_meshed`` (named as in ``edges``, at ``resource`` level: pod,
            deployment or namespace) and ``flow_status``, ``status_word``, ``status_detail`` (the flow's
            place in its edge: secured, plaintext-expected, PLAINTEXT-UNEXPECTED or unverified, and why).
        """
        from .audit import FLOW_EXTRA_COLUMNS
        from .edges import flow_edge
        from .frames import to_frame
        from .schema import EDGE_COLUMNS

        if self.pods is None:
            raise AnalyzerError("flows with pod names need a pod list: analyze(..., pods='pods.json')")
        rows = []
        for flow in self.flow_rows:
            ((skind, sns, sname), (dkind, dns, dname), _), (_, src, dst, status) = flow_edge(
                flow, self.pods, resource, False, trust_unknown_clients)  # type: ignore[arg-type]
            rows.append({**flow, "src_ns": sns, "src": sname, "src_kind": skind, "src_meshed": src.meshed,
                         "dst_ns": dns, "dst": dname, "dst_kind": dkind, "dst_meshed": dst.meshed,
                         "flow_status": status.status, "status_word": status.word, "status_detail": status.detail})
        by_name = {c.name: c for c in EDGE_COLUMNS + FLOW_EXTRA_COLUMNS}
        peers = [by_name[n] for n in PEER_NAMES]
        return to_frame(rows, FLOW_COLUMNS + tuple(peers))

    def audit(self, captures: Sequence[str | os.PathLike] | None = None, fail_on: Sequence[str] = (),
              resource: str = "pod", pods_path: str | os.PathLike | None = None,
              trust_unknown_clients: bool = False) -> dict:
        """The audit document (what ``mtls-analyzer report --json`` writes and the HTML report renders):
        provenance of every input, the policy result of the ``fail_on`` gates (every gate evaluated),
        the headline, the edges with their flows, and what could not be judged.

        ``captures``: the files analysed, to hash (default: those this report read, when it read files).
        ``pods_path``: the pod list file to hash (default: the one ``analyze(pods=...)`` loaded).
        Raises ``AnalyzerError`` without a pod list or when a capture cannot be read again."""
        from .audit import build_audit

        if captures is None:
            captures = self._capture_paths()
        if pods_path is None and self.pods is not None and os.path.isfile(getattr(self.pods, "source", "") or ""):
            pods_path = self.pods.source  # type: ignore[union-attr]
        return build_audit(self, list(captures), pods_path, resource=resource, fail_on=fail_on,
                           trust_unknown_clients=trust_unknown_clients)

    def evidence(self, flow_id: int, limit: int = 256):
        """The first ``limit`` bytes each side of flow ``flow_id`` sent (``analyzer.evidence.Evidence``:
        ``.client``, ``.server``), read again from the capture it came from: for a plaintext flow, the
        cleartext itself (an HTTP request line, the HTTP/2 preface).  One pass over that capture, bounded."""
        from ..evidence import first_bytes

        row = next((r for r in self.all_flow_rows if r["flow_id"] == flow_id), None)
        if row is None:
            raise AnalyzerError(f"no flow {flow_id} in this report")
        names = set((row.get("captures") or row["capture"]).split(","))
        paths = [p for p in self._capture_paths() if os.path.basename(p) in names]
        if not paths:
            raise AnalyzerError(f"flow {flow_id}: its capture ({row['capture']}) was not read from a file "
                                "(a pipe or standard input): analyze the file itself to read its bytes again")
        return first_bytes(paths[0], row, limit)

    def _capture_paths(self) -> list[str]:
        """The capture files this report read (the native engine records them)."""
        return [str(info.path) for info in self.captures if os.path.isfile(str(getattr(info, "path", "")))]

    def summary(self) -> str:
        stats = self.stats
        verdicts: Counter[str] = Counter()
        for (localhost, verdict), n in verdict_tally(self.all_flow_rows).items():
            if self.include_localhost or not localhost:
                verdicts[verdict] += n
        unsupported = sum(stats["frames_unsupported"].values())
        return (
            f"{stats['packets']} packets, {verdicts.total()} flows (tls {verdicts['tls']}, plaintext {verdicts['plaintext']}, "
            f"unknown {verdicts['unknown']}), {stats['excluded_localhost']} localhost flows "
            f"{'included' if self.include_localhost else 'excluded'}, {stats['not_tcp_packets']} not-TCP packets, "
            f"{unsupported} frames not analysed, {stats['elapsed_s']:.2f} s"
            + (f" ({stats['processes']} processes)" if stats.get("processes", 1) > 1 else "")
            + (f"; {stats['captures']} captures: {stats['rows_in']} capture rows are "
               f"{stats['rows_in'] - stats['rows_joined']} connections (clock skew {stats['clock_skew_s']:g} s)"
               if stats.get("captures", 1) > 1 else "")
            + (f"; {stats['dnat_joined']} joined with their side before a Service's DNAT"
               if stats.get("dnat_joined") else "")
            + released_note(stats)
        )


class NotLocalhost:
    """The rows of a ``RowStore`` that are not localhost hops, read again on each pass (never kept)."""

    def __init__(self, rows: RowStore):
        self.rows = rows
        self.count: int | None = None

    def __iter__(self):
        return (r for r in self.rows if not r["localhost"])

    def __len__(self) -> int:
        if self.count is None:
            self.count = sum(n for (localhost, _), n in verdict_tally(self.rows).items() if not localhost)
        return self.count


def verdict_tally(rows: list[dict] | RowStore) -> Counter[tuple[bool, str]]:
    """(localhost, verdict) -> flows, without reading a compressed store's rows again."""
    if isinstance(rows, RowStore) and rows.compact:  # counted as they were compressed (read-only since)
        return rows.tally
    return Counter((r["localhost"], r["verdict"]) for r in rows)


def released_note(stats: dict) -> str:
    """What the memory limits made the analysis give up early ("" when nothing)."""
    flows, streams, folded = (stats.get(key, 0) for key in RELEASE_KEYS)
    parts = ([f"{flows} flows judged early at the open-flow limit"] if flows else []) + (
        [f"{streams} streams' out-of-order bytes dropped at the buffer limit"] if streams else []) + (
        [f"{folded} not-TCP packets of host pairs past the limit counted as * to *"] if folded else [])
    return "; memory limits: " + ", ".join(parts) if parts else ""
