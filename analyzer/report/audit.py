"""Analysis -> the audit document: one JSON-ready dict shared by the HTML report, ``--json`` and ``diff``.

Role: gather what an auditor must be able to check and nothing more: each capture file's size, SHA-256,
time span, packets, interfaces, link types and drops; the tool, its engine and tshark's version; the pod
list's hash; the policy (``--fail-on`` gates) and its result; the edges with a link down to each of their
flows; and what could not be judged, and why.  ``report/html.py`` renders this document and only this
document, so the page an auditor reads and the ``report.json`` a pipeline diffs cannot disagree.

Rules:
  1. Plain JSON values only (str, int, float, bool, None, list, dict); times are ISO 8601 UTC strings.
     The one exception is memory's: a ``streamed`` document's ``flows`` is a :class:`DocumentFlows`,
     which yields such rows, made again from the analysis's rows, so that every flow is never held.
  2. The layout is versioned: ``REPORT_SCHEMA_VERSION`` changes when a key is renamed or removed or a
     value changes meaning; adding keys or columns keeps it.  ``json_schema()`` describes the layout and
     ``docs/report.schema.json`` is that description, checked by a test.  Readers ignore unknown keys.
  3. Nothing is decided here: a flow's place in its edge comes from ``edges.flow_status``, an edge's
     status from ``edges.edge_rows``, gate results from ``edges.GATE_TESTS``.
  4. Standard library only.  Input files are read here (hashes, time span): a second, cheap pass over
     each capture that does not depend on the engine that judged it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import platform
from array import array
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..capture.reader import CaptureReader
from ..errors import CaptureFormatError
from ..join.vantage import capture_names, capture_vantages, sides
from ..kube.pods import Peer
from .edges import GATE_TESTS, GATES, RESOURCES, UNVERIFIED, FlowStatus, edge_rows, headline
from .render import iso
from .result import RELEASE_KEYS
from .schema import CATEGORIES, EDGE_COLUMNS, EDGE_STATUSES, FLOW_COLUMNS, Column

REPORT_SCHEMA = "mtls-analyzer/report"
REPORT_SCHEMA_VERSION = 1
HASH_CHUNK = 1 << 20  # bytes per read while hashing
MAX_LISTED_IDS = 50  # flow ids listed per "could not be judged" item (the count is always complete)

# tcpdump.org link-layer header types (LINKTYPE_*) the analyzer meets; others print as their number.
LINKTYPE_NAMES = {
    0: "NULL (BSD loopback)", 1: "EN10MB (Ethernet)", 101: "RAW (IP)", 105: "IEEE802_11",
    108: "LOOP (OpenBSD loopback)", 113: "LINUX_SLL (Linux cooked v1)", 127: "IEEE802_11_RADIOTAP",
    228: "IPV4", 229: "IPV6", 239: "NFLOG", 276: "LINUX_SLL2 (Linux cooked v2)",
}

# Columns added to each flow and edge row of the document (beside schema.FLOW_COLUMNS / EDGE_COLUMNS).
FLOW_EXTRA_COLUMNS: tuple[Column, ...] = (
    Column("edge", "string", "id of the edge (``edges[].id``) the flow belongs to"),
    Column("flow_status", "string",
           "the flow's own status: secured | plaintext-expected | PLAINTEXT-UNEXPECTED | unverified"),
    Column("status_word", "string", "why, in Linkerd's reason words where one fits (see edges.msg)"),
    Column("status_detail", "string", "the detail behind status_word"),
)
EDGE_EXTRA_COLUMNS: tuple[Column, ...] = (
    Column("id", "string", "edge id within this document: e1, e2, ... (anchors in the HTML report)"),
    Column("key", "string", "src_ns/src -> dst_ns/dst: what ``diff`` matches edges on"),
    Column("flow_ids", "list", "flow_id of every flow of the edge"),
    Column("seen_one_side", "Int64", "connections captured in the client pod or the server pod, not both"),
    Column("seen_both_sides", "Int64", "connections captured in both the client pod and the server pod"),
    Column("seen_from_node", "Int64", "connections captured on a node"),
)


# -- inputs ------------------------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes as stored (a gzip capture is hashed compressed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def capture_facts(path: str | os.PathLike) -> dict:
    """What an audit records about one capture file: identity (size, hash), time span, interfaces, loss.

    ``drops`` per interface is the pcapng Interface Statistics Block's ``isb_ifdrop`` (packets the
    capturing kernel or NIC dropped); ``None`` when the file does not say (every classic pcap).
    """
    path = os.fspath(path)
    first = last = None
    with CaptureReader(path) as reader:
        for _, frames in reader.iter_batches():
            if frames:
                lo, hi = min(f[0] for f in frames), max(f[0] for f in frames)
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
        info = reader.info
    interfaces = [
        {"index": i, "name": itf.name, "linktype": itf.linktype,
         "linktype_name": LINKTYPE_NAMES.get(itf.linktype, f"LINKTYPE {itf.linktype}"),
         "snaplen": itf.snaplen, "drops": itf.drops}
        for i, itf in enumerate(info.interfaces)
    ]
    reported = [itf["drops"] for itf in interfaces if itf["drops"] is not None]
    return {
        "file": os.path.basename(path),
        "path": path,
        "size_bytes": os.path.getsize(path),
        "sha256": file_sha256(path),
        "format": info.format + (" (gzip)" if info.compressed else ""),
        "start": iso(first) if first is not None else None,
        "end": iso(last) if last is not None else None,
        "duration_s": round(last - first, 6) if first is not None else None,
        "packets": info.frames,
        "interfaces": interfaces,
        "drops": sum(reported) if reported else None,
        "truncated": info.truncated,
        "warnings": list(info.warnings),
    }


def pods_facts(pods, path: str | os.PathLike | None) -> dict | None:
    """The pod list's identity (file, hash) and what it held; None without a pod list."""
    if pods is None:
        return None
    listed = pods.pods
    facts = {
        "file": os.path.basename(os.fspath(path)) if path is not None else None,
        "path": os.fspath(path) if path is not None else None,
        "size_bytes": os.path.getsize(path) if path is not None else None,
        "sha256": file_sha256(path) if path is not None else None,
        "source": getattr(pods, "source", "") or None,
        "pods": len(listed),
        "meshed": sum(1 for p in listed if p.meshed),
        "namespaces": len({p.namespace for p in listed}),
        "format": "wide" if any(p.source == "wide" for p in listed) else "json",
    }
    return facts


# -- flows and edges ---------------------------------------------------------------------------------------
def edge_key(src_ns: str, src: str, dst_ns: str, dst: str) -> str:
    """``ns/name -> ns/name`` (a peer without namespace is its bare name); stable across documents."""
    left = f"{src_ns}/{src}" if src_ns else src
    right = f"{dst_ns}/{dst}" if dst_ns else dst
    return f"{left} -> {right}"


class FlowLinks:
    """Each flow's edge and own status, gathered in the pass that groups the flows into edges.

    Per flow only two small numbers are kept (its edge key's and its status's, in ``array``s), so that
    the document's flows can be read again from the report's rows (:class:`DocumentFlows`) instead of
    being held; per edge key, its flow ids and where its connections were seen.  ``tally`` counts what
    could not be judged as the flows go by.
    """

    def __init__(self, vantages: dict) -> None:
        self.vantages = vantages
        self.keys: dict[str, int] = {}  # edge key -> its number here
        self.flow_ids: list[list[int]] = []  # per edge key number
        self.seen: list[list[int]] = []  # per edge key number: one side, both sides, from a node
        self.statuses: dict[FlowStatus, int] = {}  # distinct flow statuses -> number
        self.key_of = array("I")  # per flow: its edge key number
        self.status_of = array("I")  # per flow: its status number
        self.tally = _Tally()

    def add(self, flow: dict, key: tuple, src: Peer, dst: Peer, status: FlowStatus) -> None:
        (_, sns, sname), (_, dns, dname), _ = key
        number = self.keys.setdefault(edge_key(sns, sname, dns, dname), len(self.keys))
        if number == len(self.flow_ids):
            self.flow_ids.append([])
            self.seen.append([0, 0, 0])
        self.flow_ids[number].append(flow["flow_id"])
        client, server, node = sides(flow, _ref(src), _ref(dst), self.vantages)
        seen = self.seen[number]
        seen[0] += client != server
        seen[1] += client and server
        seen[2] += node
        self.key_of.append(number)
        self.status_of.append(self.statuses.setdefault(status, len(self.statuses)))
        self.tally.add(flow, status)


def link_flows(flow_rows: Iterable[dict], pods, resource: str, trust_unknown_clients: bool = False,
               vantages: dict | None = None) -> tuple[list[dict], "DocumentFlows"]:
    """The edges of ``flow_rows`` (``edges.edge_rows``), numbered ``e1``..., each flow tied to its edge with
    the flow's own status in the same pass; with the captures' ``vantages`` (``analyzer.join.vantage``),
    counted per edge where its connections were seen.

    Returns (edges, flows): the edge rows as the document holds them (``EDGE_COLUMNS`` then
    ``EDGE_EXTRA_COLUMNS``, times ISO 8601) and the flows as :class:`DocumentFlows`, read again from
    ``flow_rows`` on each pass (which must give the same rows in the same order each time).
    """
    links = FlowLinks(vantages or {})
    rows = edge_rows(flow_rows, pods, resource, trust_unknown_clients=trust_unknown_clients, each=links.add)
    # An edge key names the edge the flows of that key belong to (the last edge of that key, as a dict
    # keyed by it would have it).
    numbered = {edge_key(r["src_ns"], r["src"], r["dst_ns"], r["dst"]): i for i, r in enumerate(rows)}
    edges = []
    for i, row in enumerate(rows):
        edges.append({**_plain(row, EDGE_COLUMNS), "id": f"e{i + 1}",
                      "key": edge_key(row["src_ns"], row["src"], row["dst_ns"], row["dst"]), "flow_ids": [],
                      "seen_one_side": 0, "seen_both_sides": 0, "seen_from_node": 0})
        rows[i] = {}  # one copy of an edge at a time
    edge_of = [""] * len(links.keys)
    for key, number in links.keys.items():
        edge = edges[numbered[key]]
        edge_of[number] = edge["id"]
        edge["flow_ids"] = links.flow_ids[number]
        edge["seen_one_side"], edge["seen_both_sides"], edge["seen_from_node"] = links.seen[number]
    links.keys, links.flow_ids, links.seen = {}, [], []  # in the edges now
    return edges, DocumentFlows(flow_rows, links, edge_of)


class DocumentFlows:
    """The document's ``flows``: each flow row (``FLOW_COLUMNS``, times ISO 8601) with its edge and its own
    status (``FLOW_EXTRA_COLUMNS``), made again from the report's rows on each pass, never all held.

    Reads like a list (``len``, iteration, ``[i]``, ``==``); ``list(...)`` makes one.  ``json`` cannot
    write it: ``export.write_report_json`` writes it row by row.
    """

    def __init__(self, rows: Iterable[dict], links: FlowLinks, edge_of: list[str]) -> None:
        self.rows, self.links, self.edge_of = rows, links, edge_of
        self.statuses = list(links.statuses)

    def __len__(self) -> int:
        return len(self.links.key_of)

    def __iter__(self) -> Iterator[dict]:
        edge_of, statuses = self.edge_of, self.statuses
        for flow, number, status in zip(self.rows, self.links.key_of, self.links.status_of, strict=True):
            fs = statuses[status]
            yield {**_plain(flow, FLOW_COLUMNS), "edge": edge_of[number], "flow_status": fs.status,
                   "status_word": fs.word, "status_detail": fs.detail}

    def __getitem__(self, i: int) -> dict:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return next(itertools.islice(self, i, None))

    def __eq__(self, other) -> bool:
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


def _ref(peer) -> str:
    return peer.pod.ref if peer.pod is not None else ""


# -- policy and what could not be judged ------------------------------------------------------------------
def policy_result(edges: Sequence[dict], fail_on: Iterable[str]) -> dict:
    """Every gate evaluated; the ``applied`` ones (``--fail-on``) decide ``result``: pass | fail | none."""
    applied = list(dict.fromkeys(fail_on))
    gates = []
    for gate in GATES:
        hits = [e["id"] for e in edges if GATE_TESTS[gate](e)]
        gates.append({"gate": gate, "applied": gate in applied, "passed": not hits, "edges": hits})
    if not applied:
        result = "none"
    else:
        result = "fail" if any(not g["passed"] for g in gates if g["applied"]) else "pass"
    return {"applied": applied, "result": result, "gates": gates}


def _first_clause(reason: str) -> str:
    return (reason or "").split(";")[0].strip() or "(no reason given)"


class _Listed:
    """How many flows, and the ids of the first ``MAX_LISTED_IDS``."""

    __slots__ = ("flows", "ids")

    def __init__(self) -> None:
        self.flows = 0
        self.ids: list[int] = []

    def add(self, flow_id: int) -> None:
        self.flows += 1
        if len(self.ids) < MAX_LISTED_IDS:
            self.ids.append(flow_id)


def _grouped(groups: dict[str, _Listed]) -> list[dict]:
    """[{reason, flows, flow_ids}] per reason, most frequent first."""
    return [{"reason": k, "flows": g.flows, "flow_ids": g.ids}
            for k, g in sorted(groups.items(), key=lambda kv: (-kv[1].flows, kv[0]))]


class _Tally:
    """The summary's verdict counts and what could not be judged, counted flow by flow (bounded: counts
    and the first ids of each item)."""

    def __init__(self) -> None:
        self.verdicts: Counter = Counter()
        self.unknown: dict[str, _Listed] = {}  # by the first clause of the reason
        self.unverified: dict[str, _Listed] = {}  # by word: detail
        self.cut, self.gaps, self.midstream, self.unseen = _Listed(), _Listed(), _Listed(), _Listed()
        self.truncated_packets = 0

    def add(self, flow: dict, status: FlowStatus) -> None:
        fid = flow["flow_id"]
        self.verdicts[flow["verdict"]] += 1
        if flow["verdict"] == "unknown":
            self.unknown.setdefault(_first_clause(flow["reason"]), _Listed()).add(fid)
        if status.status == UNVERIFIED:
            self.unverified.setdefault(f"{status.word}: {status.detail}".rstrip(": "), _Listed()).add(fid)
        if flow["truncated_packets"]:
            self.cut.add(fid)
            self.truncated_packets += flow["truncated_packets"]
        if flow["gaps"]:
            self.gaps.add(fid)
        if flow["midstream"]:
            self.midstream.add(fid)
        if status.word in ("identity_not_seen", "identity_not_checked"):
            self.unseen.add(fid)


def unjudged(report, tally: _Tally, edges: Sequence[dict], captures: Sequence[dict]) -> dict:
    """What the analysis could not judge, or judged on less than the whole conversation, and why."""
    stats = report.stats
    localhost = Counter(r["localhost_reason"] or "localhost" for r in report.all_flow_rows if r["localhost"])
    not_tcp = Counter()
    for row in stats.get("not_tcp", []):
        if not row["localhost"]:
            not_tcp[row["protocol"]] += row["packets"]
    reported_drops = [c["drops"] for c in captures if c["drops"] is not None]
    return {
        "unknown_flows": sum(g.flows for g in tally.unknown.values()),
        "unknown_by_reason": _grouped(tally.unknown),
        "unverified_flows": sum(g.flows for g in tally.unverified.values()),
        "unverified_by_reason": _grouped(tally.unverified),
        "unverified_edges": sum(1 for e in edges if e["unverified"]),
        "flows_with_truncated_packets": tally.cut.flows,
        "truncated_packets": tally.truncated_packets,
        "truncated_flow_ids": tally.cut.ids,
        "flows_with_gaps": tally.gaps.flows,
        "gap_flow_ids": tally.gaps.ids,
        "midstream_flows": tally.midstream.flows,
        "midstream_flow_ids": tally.midstream.ids,
        "identity_not_seen_flows": tally.unseen.flows,
        "identity_not_seen_flow_ids": tally.unseen.ids,
        "excluded_localhost": sum(localhost.values()),
        "localhost_by_reason": dict(localhost.most_common()),
        "frames_not_analysed": dict(Counter(stats.get("frames_unsupported", {})).most_common()),
        "not_tcp_packets": dict(not_tcp.most_common()),
        "released_early": {key: stats.get(key, 0) for key in RELEASE_KEYS},
        "capture_drops": sum(reported_drops) if reported_drops else None,
        "truncated_captures": [c["file"] for c in captures if c["truncated"]],
        "warnings": list(stats.get("warnings", [])),
    }


# -- the document -----------------------------------------------------------------------------------------
TIME_NAMES = frozenset(c.name for c in FLOW_COLUMNS + EDGE_COLUMNS if c.dtype.startswith("datetime"))


def _plain(row: dict, columns: Sequence[Column]) -> dict:
    """The row's ``columns``, in their order, times (epoch seconds) as ISO 8601 UTC strings."""
    plain = {c.name: row[c.name] for c in columns}
    for name in TIME_NAMES:
        if isinstance(plain.get(name), (int, float)):
            plain[name] = iso(plain[name])
    return plain


def build_audit(report, captures: Sequence[str | os.PathLike], pods_path: str | os.PathLike | None = None,
                resource: str = "pod", fail_on: Iterable[str] = (), engine: str = "native",
                decode_as: Sequence[str] = (), command: Sequence[str] | None = None,
                generated_at: datetime | None = None, trust_unknown_clients: bool = False,
                streamed: bool = False) -> dict:
    """The audit document for ``report`` (``analyzer.analyze(..., pods=...)``) of the files ``captures``.

    ``pods_path`` is the pod list file to hash (None when it came from kubectl).  ``streamed``: the
    document's ``flows`` is a :class:`DocumentFlows`, made again from the report's rows whenever it is
    read (what ``report`` writes: memory stays bounded however many flows), not a list of every flow.
    Raises ``AnalyzerError`` when the report has no pod list (edges need one) or a capture cannot be
    re-read.
    """
    from .. import __version__
    from ..errors import AnalyzerError

    if report.pods is None:
        raise AnalyzerError("an audit report needs a pod list: analyze(..., pods='pods.json')")
    if resource not in RESOURCES:
        raise AnalyzerError(f"resource must be one of {RESOURCES}, not {resource!r}")
    vantages, vantage_notes = capture_vantages(captures, report.pods)
    edges, flows = link_flows(report.flow_rows, report.pods, resource, trust_unknown_clients, vantages)
    facts = []
    for path, name in zip(captures, capture_names(captures)):
        try:
            facts.append({**capture_facts(path), "file": name, "vantage": vantages[name].as_dict()})
        except OSError as exc:
            raise CaptureFormatError(f"{path}: cannot read the capture again: {exc.strerror or exc}") from None
    report.stats["warnings"] += [n for n in vantage_notes if n not in report.stats["warnings"]]
    engine_text = report.stats.get("engine", engine)
    tshark_version = engine_text.split(" ", 1)[1] if engine_text.startswith("tshark ") else None
    verdicts = flows.links.tally.verdicts
    statuses = Counter(e["status"] for e in edges)
    when = generated_at or datetime.now(timezone.utc)
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": iso(when.timestamp()),
        "tool": {"name": "mtls-analyzer", "version": __version__, "engine": engine_text.split(" ", 1)[0],
                 "tshark_version": tshark_version, "python": platform.python_version(),
                 "command": list(command) if command is not None else None},
        "options": {"resource": resource, "decode_as": list(decode_as), "include_localhost": report.include_localhost,
                    "clock_skew_s": report.stats.get("clock_skew_s")},
        "captures": facts,
        "pods": pods_facts(report.pods, pods_path),
        "headline": headline(edges),
        "policy": policy_result(edges, fail_on),
        "summary": {
            "packets": report.stats["packets"],
            "flows": len(flows),
            "verdicts": {v: verdicts[v] for v in CATEGORIES["verdict"]},
            "edges": len(edges),
            "edge_statuses": {s: statuses[s] for s in EDGE_STATUSES},
            "bytes": sum(e["bytes"] for e in edges),
            "bytes_plaintext": sum(e["bytes_plaintext"] for e in edges),
            "excluded_localhost": report.stats["excluded_localhost"],
        },
        "unjudged": unjudged(report, flows.links.tally, edges, facts),
        "edges": edges,
        "flows": flows if streamed else list(flows),
    }


# -- the documented layout --------------------------------------------------------------------------------
_NULLABLE = {"string": "string", "Int64": "integer", "UInt8": "integer", "UInt16": "integer",
             "Float64": "number", "boolean": "boolean"}


def _column_schema(column: Column, enums: dict[str, Sequence[str]]) -> dict:
    """Types only: the meaning of each column is in ``docs/columns.md`` (so that rewording a column's
    description does not change the report's schema)."""
    if column.name in enums:
        return {"enum": [*enums[column.name], None]}
    if column.dtype.startswith("datetime"):
        return {"type": ["string", "null"], "format": "date-time"}
    if column.dtype == "list":
        return {"type": "array", "items": {"type": "integer"}}
    return {"type": [_NULLABLE[column.dtype], "null"]}


def _row_schema(columns: Sequence[Column], enums: dict[str, Sequence[str]]) -> dict:
    return {"type": "object", "required": [c.name for c in columns],
            "properties": {c.name: _column_schema(c, enums) for c in columns}}


def _obj(required: Sequence[str], properties: dict, description: str = "") -> dict:
    out = {"type": "object", "required": list(required), "properties": properties}
    if description:
        out["description"] = description
    return out


def json_schema() -> dict:
    """JSON Schema (draft 2020-12) of the audit document; ``docs/report.schema.json`` is this, printed."""
    num, text, count = {"type": ["number", "null"]}, {"type": ["string", "null"]}, {"type": "integer"}
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    ids = {"type": "array", "items": {"type": "integer"}}
    grouped = {"type": "array", "items": _obj(("reason", "flows", "flow_ids"),
                                             {"reason": {"type": "string"}, "flows": count, "flow_ids": ids})}
    flow_enums = {k: v for k, v in CATEGORIES.items() if k != "status"}
    flow_enums["flow_status"] = tuple(s for s in EDGE_STATUSES if s != "mixed")
    edge_enums = {"mtls": CATEGORIES["mtls"], "status": EDGE_STATUSES}
    interface = _obj(("index", "name", "linktype", "linktype_name", "snaplen", "drops"), {
        "index": count, "name": {"type": "string"}, "linktype": count, "linktype_name": {"type": "string"},
        "snaplen": count, "drops": {"type": ["integer", "null"], "description": "pcapng isb_ifdrop; null: not reported"}})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{REPORT_SCHEMA}/v{REPORT_SCHEMA_VERSION}",
        "title": "mtls-analyzer audit report",
        "description": "Written by `mtls-analyzer report --json`.  schema_version changes only when a key is "
                       "renamed or removed or changes meaning; readers must ignore keys they do not know.",
        **_obj(("schema", "schema_version", "generated_at", "tool", "options", "captures", "pods", "headline",
                "policy", "summary", "unjudged", "edges", "flows"), {
            "schema": {"const": REPORT_SCHEMA},
            "schema_version": {"const": REPORT_SCHEMA_VERSION},
            "headline": {"type": "string", "description": "one line answering the audit question, the worst finding named"},
            "generated_at": {"type": "string", "format": "date-time"},
            "tool": _obj(("name", "version", "engine", "tshark_version", "python", "command"), {
                "name": {"const": "mtls-analyzer"}, "version": {"type": "string"},
                "engine": {"enum": ["native", "tshark"]}, "tshark_version": text, "python": {"type": "string"},
                "command": {"type": ["array", "null"], "items": {"type": "string"}}}),
            "options": _obj(("resource", "decode_as", "include_localhost"), {
                "resource": {"enum": list(RESOURCES)}, "decode_as": {"type": "array", "items": {"type": "string"}},
                "include_localhost": {"type": "boolean"},
                "clock_skew_s": {**num, "description": "seconds two captures' clocks may differ by when joined"}}),
            "captures": {"type": "array", "items": _obj(
                ("file", "path", "size_bytes", "sha256", "format", "start", "end", "duration_s", "packets",
                 "interfaces", "drops", "truncated", "warnings", "vantage"), {
                    "file": {"type": "string"}, "path": {"type": "string"}, "size_bytes": count,
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "format": {"type": "string"},
                    "start": {**text, "format": "date-time"}, "end": {**text, "format": "date-time"},
                    "duration_s": num, "packets": count, "interfaces": {"type": "array", "items": interface},
                    "drops": {"type": ["integer", "null"]}, "truncated": {"type": "boolean"},
                    "warnings": {"type": "array", "items": {"type": "string"}},
                    "vantage": _obj(("kind", "pod", "node", "source"), {
                        "kind": {"enum": ["pod", "node", "unknown"]}, "pod": text, "node": text,
                        "source": {"enum": ["manifest", "name", None]}},
                        "where the capture was taken: from manifest.json beside it, or its file name")})},
            "pods": {"oneOf": [{"type": "null"}, _obj(
                ("file", "sha256", "pods", "meshed", "namespaces", "format"), {
                    "file": text, "path": text, "size_bytes": {"type": ["integer", "null"]},
                    "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"}, "source": text,
                    "pods": count, "meshed": count, "namespaces": count, "format": {"enum": ["json", "wide"]}})]},
            "policy": _obj(("applied", "result", "gates"), {
                "applied": {"type": "array", "items": {"enum": list(GATES)}},
                "result": {"enum": ["pass", "fail", "none"]},
                "gates": {"type": "array", "items": _obj(("gate", "applied", "passed", "edges"), {
                    "gate": {"enum": list(GATES)}, "applied": {"type": "boolean"}, "passed": {"type": "boolean"},
                    "edges": {"type": "array", "items": {"type": "string"}}})}}),
            "summary": _obj(("packets", "flows", "verdicts", "edges", "edge_statuses", "bytes", "bytes_plaintext",
                             "excluded_localhost"), {
                "packets": count, "flows": count, "verdicts": counts, "edges": count, "edge_statuses": counts,
                "bytes": count, "bytes_plaintext": count, "excluded_localhost": count}),
            "unjudged": _obj(("unknown_flows", "unknown_by_reason", "unverified_flows", "unverified_by_reason",
                              "unverified_edges", "flows_with_truncated_packets", "truncated_packets",
                              "flows_with_gaps", "midstream_flows", "identity_not_seen_flows", "excluded_localhost",
                              "localhost_by_reason",
                              "frames_not_analysed", "not_tcp_packets", "released_early", "capture_drops",
                              "truncated_captures", "warnings"), {
                "unknown_flows": count, "unknown_by_reason": grouped, "unverified_flows": count,
                "unverified_by_reason": grouped, "unverified_edges": count, "flows_with_truncated_packets": count,
                "truncated_packets": count, "truncated_flow_ids": ids, "flows_with_gaps": count, "gap_flow_ids": ids,
                "midstream_flows": count, "midstream_flow_ids": ids, "identity_not_seen_flows": count,
                "identity_not_seen_flow_ids": ids, "excluded_localhost": count,
                "localhost_by_reason": counts, "frames_not_analysed": counts, "not_tcp_packets": counts,
                "released_early": _obj(RELEASE_KEYS, dict.fromkeys(RELEASE_KEYS, count)),
                "capture_drops": {"type": ["integer", "null"]},
                "truncated_captures": {"type": "array", "items": {"type": "string"}},
                "warnings": {"type": "array", "items": {"type": "string"}}},
                "listed flow ids stop after 50 per item; the counts are complete"),
            "edges": {"type": "array", "items": _row_schema(EDGE_COLUMNS + EDGE_EXTRA_COLUMNS, edge_enums),
                      "description": "EDGE_COLUMNS (docs/columns.md) + id, key, flow_ids, seen_one_side, "
                                     "seen_both_sides, seen_from_node; times as ISO 8601 UTC"},
            "flows": {"type": "array", "items": _row_schema(FLOW_COLUMNS + FLOW_EXTRA_COLUMNS, flow_enums),
                      "description": "FLOW_COLUMNS (docs/columns.md) + edge, flow_status, status_word, "
                                     "status_detail; times as ISO 8601 UTC"},
        }),
    }


def schema_text() -> str:
    """``json_schema()`` as the text of ``docs/report.schema.json``."""
    import json

    return json.dumps(json_schema(), indent=2) + "\n"


def load_path_list(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Capture paths as strings, refusing standard input: an audit hashes files it can read twice."""
    out = []
    for p in paths:
        text = os.fspath(p)
        if text == "-":
            raise CaptureFormatError("an audit report needs capture files, not standard input (-): save the capture first")
        if not Path(text).is_file():
            raise CaptureFormatError(f"{text}: no such capture file")
        out.append(text)
    return out
