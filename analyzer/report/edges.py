"""Flows + pods -> edges: one row per (source, destination) pod, workload or namespace, with one status.

Role: the audit answer.  Like ``linkerd viz edges``, but proven from packets: every flow counts (closed
ones too), out-of-mesh peers are shown, and a pair mixing TLS and plaintext is never hidden.

Rules:
  1. Each flow is judged alone first (:func:`flow_status`): its verdict and SNI, both ends as the pod
     list saw them *at the flow's time*, and the server port.  An edge's status is derived from its
     flows' statuses only (:func:`edge_status`), so rolling pods up to deployments or namespaces never
     changes what a flow was.
  2. Any plaintext flow the mesh should have encrypted makes the edge ``PLAINTEXT-UNEXPECTED``; otherwise
     one status for all flows is the edge's, and different ones make it ``mixed``.
  3. ``secured`` needs TLS with the destination's identity in the SNI, or (SNI not captured: mid-stream,
     short snaplen) TLS records between two meshed pods.  TLS with another SNI, an ambiguous IP or no
     evidence is ``unverified``: encrypted perhaps, but not proven to be the mesh's mTLS.  So is TLS
     with the right SNI from a client that is not a known meshed pod (``client_unknown``: the server's
     proxy may have refused it, and nothing on the wire names the client), unless the operator trusts
     unknown clients (``trust_unknown_clients``: flat-network multicluster, where the clients are
     meshed pods of another cluster's list).
  3a. Identity words cannot contradict themselves: an observed SNI is shortened to ``sa.ns`` only when
     it is exactly the destination's identity; any other SNI, and both identities in a mismatch, are
     written in full (an SNI differing only in the trust domain must not read as equal).
  4. MSG uses Linkerd's reason words where one fits (``no_tls_from_remote``, ``port_skipped``,
     ``loopback``, ``passthru``, ``not_provided_by_service_discovery``) and plain words otherwise.
  5. Standard library only; rows are dicts keyed by ``schema.EDGE_NAMES``.  Nothing here reads files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from ..kube.services import service_peer
from ..kube.pods import (
    SKIP_INBOUND_ANNOTATION,
    SKIP_OUTBOUND_ANNOTATION,
    Peer,
    PodIndex,
    port_in,
    short_identity,
)
from .render import qualified
from .schema import EDGE_STATUSES

SECURED, EXPECTED, UNEXPECTED, MIXED, UNVERIFIED = EDGE_STATUSES
RESOURCES = ("pod", "deployment", "namespace")
GATES = ("unexpected-plaintext", "plaintext", "unverified")
PROXY_PORTS = {4190: "tap", 4191: "admin"}  # linkerd-init always skips them inbound (reference: Ports)
IDENTITY_MARK = ".serviceaccount.identity."
SEVERITY = {UNEXPECTED: 0, UNVERIFIED: 1, EXPECTED: 2, SECURED: 3}
EDGE_ORDER = {s: i for i, s in enumerate((UNEXPECTED, MIXED, UNVERIFIED, EXPECTED, SECURED))}  # worst first
MAX_DETAILS = 2  # distinct details kept per MSG word


@dataclass(frozen=True, slots=True)
class FlowStatus:
    """One flow's place in the audit: a status of ``EDGE_STATUSES`` (never ``mixed``) and why."""

    status: str
    word: str = ""  # Linkerd reason word or plain word; "" for a plain secured flow
    detail: str = ""
    mismatch: bool = False  # an SNI that is not the destination's expected identity


# -- one flow ------------------------------------------------------------------------------------------
def flow_status(flow: dict, src: Peer, dst: Peer, trust_unknown_clients: bool = False) -> FlowStatus:
    """Status of one flow row (``schema.FLOW_COLUMNS``) between two resolved peers."""
    verdict = flow["verdict"]
    if flow.get("vantage_conflict"):  # captures of one connection disagree: never resolved to either reading
        return FlowStatus(UNVERIFIED, "vantage_conflict", "tls in one capture, plaintext in another")
    if dst.kind == "service" and dst.pod is None:
        return FlowStatus(UNVERIFIED, "service_endpoints_unknown", dst.note)
    if verdict == "unknown":
        return FlowStatus(UNVERIFIED, "no_evidence", _first_clause(flow["reason"]))
    if verdict == "tls":
        return _tls_status(flow, src, dst, trust_unknown_clients)
    return _plaintext_status(flow, src, dst)


def expected_identity(peer: Peer) -> str:
    """The full identity a destination must present: its pod's (a Service's: its endpoint pod's), when that
    pod is meshed; else ""."""
    return peer.pod.identity if peer.kind in ("pod", "service") and peer.pod is not None and peer.pod.meshed else ""


def shown_sni(sni: str, dst: Peer) -> str:
    """An observed SNI as the edge shows it: ``sa.ns`` when it is exactly the destination's identity,
    else in full, so that two different identities never read alike (rule 3a)."""
    return short_identity(sni) if sni and sni == expected_identity(dst) else sni


def _tls_status(flow: dict, src: Peer, dst: Peer, trust_unknown_clients: bool) -> FlowStatus:
    sni = flow["sni"] or ""
    dst_pod = dst.pod if dst.kind in ("pod", "service") else None
    expected = expected_identity(dst)
    if sni and expected:
        if sni == expected:
            if src.meshed is True:
                return FlowStatus(SECURED)
            detail = f"the client {_describe(src)} is not a known meshed pod"
            if trust_unknown_clients:
                return FlowStatus(SECURED, "client_unknown", detail + "; trusted by the operator")
            return FlowStatus(UNVERIFIED, "client_unknown", detail)
        if IDENTITY_MARK in sni:
            return FlowStatus(UNVERIFIED, "sni_mismatch",
                              f"SNI {sni} is not {dst_pod.ref}'s identity {expected} "  # type: ignore[union-attr]
                              "(stale SNI to a reused pod IP? linkerd/linkerd2#6147)", True)
        return FlowStatus(UNVERIFIED, "passthru", f"SNI {sni}: the application's own TLS, not mesh mTLS", True)
    if "ambiguous" in (src.kind, dst.kind):
        return _ambiguous(src, dst)
    if sni:
        if dst_pod is not None and dst_pod.meshed is None:
            if IDENTITY_MARK in sni:
                return FlowStatus(SECURED, "identity_not_checked", "the pod list has no pod specs (-o wide)")
            return FlowStatus(UNVERIFIED, "mesh_unknown", f"SNI {sni}; the pod list (-o wide) does not say who is meshed")
        if IDENTITY_MARK in sni:
            return FlowStatus(UNVERIFIED, "sni_mismatch", f"mesh identity {sni} sent to {_describe(dst)}, "
                              "which is not meshed (stale SNI to a reused pod IP? linkerd/linkerd2#6147)", True)
        return FlowStatus(UNVERIFIED, "app_tls", f"TLS outside the mesh (SNI {sni})")
    # No SNI on the wire.  A captured ClientHello without SNI is not Linkerd (its proxy always names the
    # server); without a ClientHello (mid-stream, snaplen) the identity is simply not visible.
    if flow["client_hello"]:
        word = "passthru" if dst.meshed else "app_tls"
        return FlowStatus(UNVERIFIED, word, "ClientHello without SNI: not Linkerd mTLS")
    if src.meshed is True and dst.meshed is True:
        return FlowStatus(SECURED, "identity_not_seen", f"TLS {flow['evidence']} between meshed pods, SNI not captured")
    return FlowStatus(UNVERIFIED, "app_tls", f"TLS {flow['evidence']} with {_describe(src if not src.meshed else dst)}, "
                      "not meshed; no SNI captured")


def _plaintext_status(flow: dict, src: Peer, dst: Peer) -> FlowStatus:
    port = flow["server_port"]
    if flow["localhost"]:
        return FlowStatus(EXPECTED, "loopback", flow["localhost_reason"] or "localhost hop")
    if src.kind == "node":
        probe = dst.kind == "pod" and port in dst.pod.probe_ports  # type: ignore[union-attr]
        return FlowStatus(EXPECTED, "kubelet_probe", "") if probe else FlowStatus(EXPECTED, "node_peer", "from a node IP")
    if dst.kind == "node":
        return FlowStatus(EXPECTED, "node_peer", "to a node IP")
    if "ambiguous" in (src.kind, dst.kind):
        return _ambiguous(src, dst)
    if dst.kind == "external":
        word = "not_provided_by_service_discovery" if src.meshed else "external"
        return FlowStatus(EXPECTED, word, f"{dst.ip} is not in the pod list")
    if src.kind == "external":
        word = "no_tls_from_remote" if dst.meshed else "external"
        return FlowStatus(EXPECTED, word, f"{src.ip} is not in the pod list")
    sp, dp = src.pod, dst.pod
    assert sp is not None and dp is not None
    if sp.meshed is None or dp.meshed is None:
        return FlowStatus(UNVERIFIED, "mesh_unknown", "the pod list (-o wide) does not say which pods are meshed")
    if not sp.meshed and not dp.meshed:
        return FlowStatus(EXPECTED, "not_meshed", "neither pod is meshed")
    if not sp.meshed:
        return FlowStatus(EXPECTED, "no_tls_from_remote", "source not meshed")
    if not dp.meshed:
        return FlowStatus(EXPECTED, "not_provided_by_service_discovery", "destination not meshed")
    # Both ends meshed: plaintext is expected only where the operator opted out.
    if port in PROXY_PORTS:
        return FlowStatus(EXPECTED, "port_skipped", f"proxy {PROXY_PORTS[port]} port")
    if port_in(dp.skip_inbound, port) or port_in(sp.skip_outbound, port):
        if port_in(dp.skip_inbound_annotated, port) or port_in(sp.skip_outbound_annotated, port):
            return FlowStatus(EXPECTED, "port_skipped",
                              f"annotated {SKIP_INBOUND_ANNOTATION} / {SKIP_OUTBOUND_ANNOTATION}")
        # A default skip port (linkerd-init's 4567,4568) that nobody asked for on these pods: the
        # mesh silently carries this traffic in plaintext between two meshed pods - the auditor's case.
        return FlowStatus(UNEXPECTED, "port_skipped", "a default skip port of linkerd-init, not annotated; both pods meshed")
    return FlowStatus(UNEXPECTED, "no_tls_from_remote", "both pods meshed, plaintext on the wire")


def _ambiguous(src: Peer, dst: Peer) -> FlowStatus:
    peer = src if src.kind == "ambiguous" else dst
    return FlowStatus(UNVERIFIED, "ambiguous_ip", peer.note)


def _describe(peer: Peer) -> str:
    if peer.kind == "service":
        return f"service {peer.namespace}/{peer.name}"
    if peer.kind == "pod":
        return peer.pod.ref  # type: ignore[union-attr]
    return f"{peer.kind} {peer.name or peer.ip}"


def _first_clause(reason: str) -> str:
    return (reason or "").split(";")[0].strip()


def destination(flow: dict, pods: PodIndex, ts: float) -> Peer:
    """The flow's server as the audit names it: the Service when it was addressed by ClusterIP, else the
    pod list's answer for the server address."""
    services = pods.services
    if services is not None:
        ip, port = flow.get("service_ip") or flow["server_ip"], flow.get("service_port") or flow["server_port"]
        hit = services.lookup(ip, port, ts)  # type: ignore[attr-defined]
        if hit is not None:
            return service_peer(flow, pods, ts, *hit)
    return pods.resolve(flow["server_ip"], ts)


# -- one edge ------------------------------------------------------------------------------------------
def edge_status(statuses: Iterable[str]) -> str:
    """Unexpected plaintext dominates; one status is the edge's; several different ones are ``mixed``."""
    seen = set(statuses)
    if UNEXPECTED in seen:
        return UNEXPECTED
    if len(seen) == 1:
        return seen.pop()
    return MIXED


def peer_end(peer: Peer, resource: str) -> tuple[str, str, str]:
    """(kind, namespace, name) of the row a peer falls into."""
    if peer.kind == "pod":
        return peer.pod.workload(resource)  # type: ignore[union-attr]
    if peer.kind == "service":
        return ("namespace", peer.namespace, peer.namespace) if resource == "namespace" else ("service", peer.namespace, peer.name)
    if peer.kind == "node":
        return "node", "", peer.name
    return peer.kind, "", peer.ip


def _joined(values: Iterable) -> str:
    return ",".join(str(v) for v in sorted({v for v in values if v not in ("", None)}, key=_sort_key))


def _sort_key(v):
    return (0, v, "") if isinstance(v, int) else (1, 0, str(v))


def _all_same(values: list) -> bool | None:
    states = set(values)
    return states.pop() if len(states) == 1 else None


def _msg(items: list[tuple[dict, Peer, Peer, FlowStatus]]) -> str:
    words: dict[str, tuple[int, set, list]] = {}
    for flow, _, _, fs in items:
        if not fs.word:
            continue
        sev, ports, details = words.setdefault(fs.word, (SEVERITY[fs.status], set(), []))
        words[fs.word] = (min(sev, SEVERITY[fs.status]), ports, details)
        ports.add(flow["server_port"])
        if fs.detail and fs.detail not in details and len(details) < MAX_DETAILS:
            details.append(fs.detail)
    parts = []
    for word, (_, ports, details) in sorted(words.items(), key=lambda kv: (kv[1][0], kv[0])):
        text = f"{word} :{_joined(ports)}"
        parts.append(f"{text} ({'; '.join(details)})" if details else text)
    return "; ".join(parts)


def _edge_row(key, items: list[tuple[dict, Peer, Peer, FlowStatus]]) -> dict:
    (skind, sns, sname), (dkind, dns, dname), _ = key
    flows = [f for f, _, _, _ in items]
    statuses = [fs.status for _, _, _, fs in items]
    status = edge_status(statuses)
    verdicts = Counter(f["verdict"] for f in flows)
    secured_tls = [f for f, _, _, fs in items if fs.status == SECURED and f["verdict"] == "tls"]
    if any(f["mtls"] == "proven" for f in secured_tls):
        mtls = "proven"
    elif secured_tls:
        mtls = "inferred"  # TLS 1.3 encrypts the client Certificate: the client identity is computed, not seen
    else:
        mtls = "unknown" if verdicts["tls"] else "none"
    src_pods = [s.pod for _, s, _, _ in items if s.kind == "pod"]
    dst_pods = [d.pod for _, _, d, _ in items if d.kind in ("pod", "service") and d.pod is not None]
    client = ""
    if mtls in ("proven", "inferred"):
        client = _joined(p.short_identity for _, s, _, fs in items
                         if fs.status == SECURED and s.kind == "pod" and (p := s.pod).meshed)
    mismatch = any(fs.mismatch for _, _, _, fs in items)
    notes = []
    for _, s, d, _ in items:
        for peer in (s, d):
            for note in (peer.note,) + (peer.pod.notes if peer.pod is not None else ()):
                if note and note not in notes:
                    notes.append(note)
    if any(p.source == "wide" for p in src_pods + dst_pods):
        notes.append("pod list from -o wide: no containers, labels or times")
    return {
        "src": sname, "dst": dname, "src_ns": sns, "dst_ns": dns, "src_kind": skind, "dst_kind": dkind,
        "client": client,
        "server": _joined(shown_sni(f["sni"], d) for f, _, d, _ in items if f["verdict"] == "tls"),
        "expected_server": _joined(p.identity if mismatch else p.short_identity for p in dst_pods if p.meshed),
        "identity_mismatch": mismatch,
        "mtls": mtls,
        "secured": status == SECURED,
        "status": status,
        "msg": _msg(items),
        "flows": len(flows),
        "tls": verdicts["tls"],
        "plaintext": verdicts["plaintext"],
        "unknown": verdicts["unknown"],
        "unexpected": statuses.count(UNEXPECTED),
        "unverified": statuses.count(UNVERIFIED),
        "bytes": sum(f["bytes_c2s"] + f["bytes_s2c"] for f in flows),
        "bytes_plaintext": sum(f["bytes_c2s"] + f["bytes_s2c"] for f in flows if f["verdict"] == "plaintext"),
        "tls_versions": _joined(f["tls_version"] for f in flows),
        "evidence": _joined(f["evidence"] for f in flows),
        "ports": _joined(f["server_port"] for f in flows),
        "first_ts": min(f["first_ts"] for f in flows),
        "last_ts": max(f["last_ts"] for f in flows),
        "src_ips": _joined(f["client_ip"] for f in flows),
        "dst_ips": _joined(f["server_ip"] for f in flows),
        "src_meshed": _all_same([s.meshed for _, s, _, _ in items]),
        "dst_meshed": _all_same([d.meshed for _, _, d, _ in items]),
        "notes": "; ".join(notes),
        "unexpected_ports": _joined(f["server_port"] for f, _, _, fs in items if fs.status == UNEXPECTED),
        "unexpected_protocols": _joined(f["app_protocol"] for f, _, _, fs in items
                                        if fs.status == UNEXPECTED and f["app_protocol"] != "unknown"),
        "plaintext_ports": _joined(f["server_port"] for f in flows if f["verdict"] == "plaintext"),
        "unverified_ports": _joined(f["server_port"] for f, _, _, fs in items if fs.status == UNVERIFIED),
    }


# -- all edges -----------------------------------------------------------------------------------------
class EdgeFlow:
    """What an edge keeps of one of its flows: the columns ``_edge_row`` and ``_msg`` read, read as a row is
    (``flow["verdict"]``).  A few dozen bytes where the whole row is ~2 KiB, so that grouping a capture of
    many flows does not hold every flow row."""

    __slots__ = ("verdict", "mtls", "sni", "server_port", "bytes_c2s", "bytes_s2c", "tls_version", "evidence",
                 "first_ts", "last_ts", "client_ip", "server_ip", "app_protocol")

    def __init__(self, flow: dict) -> None:
        for name in self.__slots__:
            setattr(self, name, flow[name])

    def __getitem__(self, name: str):
        return getattr(self, name)


def edge_rows(flow_rows: Iterable[dict], pods: PodIndex, resource: str = "pod", by_port: bool = False,
              trust_unknown_clients: bool = False,
              each: Callable[[dict, tuple, Peer, Peer, FlowStatus], None] | None = None) -> list[dict]:
    """Group flows by (source, destination) at ``resource`` level (and server port with ``by_port``).
    ``trust_unknown_clients``: see rule 3.  ``each(flow, key, src, dst, status)`` is called for every
    flow as it is grouped (the audit ties flows to their edges in the same pass).

    Returns
    -------
    list[dict]
        One dict per edge, keys ``schema.EDGE_NAMES``; in ``sort_edges`` order (worst first).
    """
    if resource not in RESOURCES:
        raise ValueError(f"resource must be one of {RESOURCES}, not {resource!r}")
    groups: dict[tuple, list] = {}
    for flow in flow_rows:
        key, (_, src, dst, status) = flow_edge(flow, pods, resource, by_port, trust_unknown_clients)
        if each is not None:
            each(flow, key, src, dst, status)
        groups.setdefault(key, []).append((EdgeFlow(flow), src, dst, status))
    # Each edge's flows are let go once its row is made: never every flow and every row at once.
    return sort_edges([_edge_row(key, groups.pop(key)) for key in list(groups)])


def flow_edge(flow: dict, pods: PodIndex, resource: str = "pod", by_port: bool = False,
              trust_unknown_clients: bool = False) -> tuple[tuple, tuple]:
    """The edge a flow row falls into (its key: both ends at ``resource`` level, the port with
    ``by_port``) and what the edge keeps of it: (flow, source peer, destination peer, FlowStatus)."""
    ts = flow["first_ts"]  # the connection's start: who held the IP when it was opened
    src, dst = pods.resolve(flow["client_ip"], ts), destination(flow, pods, ts)
    key = (peer_end(src, resource), peer_end(dst, resource), flow["server_port"] if by_port else None)
    return key, (flow, src, dst, flow_status(flow, src, dst, trust_unknown_clients))


def sort_edges(rows: list[dict]) -> list[dict]:
    """Edge rows in their one order, worst first: PLAINTEXT-UNEXPECTED, mixed, unverified,
    plaintext-expected, secured; then source and destination namespace/name, then ports."""
    rows.sort(key=lambda r: (EDGE_ORDER[r["status"]], r["src_ns"], r["src"], r["dst_ns"], r["dst"], r["ports"]))
    return rows


def summary(rows: Sequence[dict]) -> str:
    """One line: edges and the flows behind them, then edges per status that has any, worst first."""
    counts = Counter(r["status"] for r in rows)
    per = ", ".join(f"{s} {counts[s]}" for s in EDGE_ORDER if counts[s])
    return f"{len(rows)} edges from {sum(r['flows'] for r in rows)} flows" + (f": {per}" if per else "")


def _label(row: dict, ports_column: str = "ports") -> str:
    """``ns/src -> ns/dst :ports``, with the ports of ``ports_column`` (the ones that matter here), and the
    cleartext protocol of unexpected plaintext when one is known: ``:4567 (h2c)``."""
    label = f"{qualified(row['src_ns'], row['src'])} -> {qualified(row['dst_ns'], row['dst'])} :{row[ports_column]}"
    protocols = row["unexpected_protocols"] if ports_column == "unexpected_ports" else ""
    return f"{label} ({protocols})" if protocols else label


def _edges(n: int) -> str:
    return f"{n:,} edge{'s' if n != 1 else ''}"


def _named(rows: list[dict], ports_column: str, limit: int = 3) -> str:
    """Up to ``limit`` edges by label, then how many more."""
    more = f", ... (+{len(rows) - limit})" if len(rows) > limit else ""
    return ", ".join(_label(r, ports_column) for r in rows[:limit]) + more


def headline(rows: Sequence[dict]) -> str:
    """One line answering the audit question, the worst finding named first (rows in ``sort_edges`` order)."""
    rows = sort_edges(list(rows))
    unexpected = [r for r in rows if r["unexpected"] > 0]
    unverified = [r for r in rows if r["unverified"] > 0]
    meshed = [r for r in rows if r["status"] in (SECURED, MIXED)]
    expected = sum(r["status"] == EXPECTED for r in rows)
    also = f"; {_edges(expected)} of expected plaintext (probes, unmeshed or external peers)" if expected else ""
    if unexpected:
        verb = "carries" if len(unexpected) == 1 else "carry"
        return (f"NOT fully mTLS: {_edges(len(unexpected))} between meshed pods {verb} plaintext: "
                f"{_named(unexpected, 'unexpected_ports', 1)}")
    if unverified:
        return (f"mTLS not proven on {_edges(len(unverified))}: {_named(unverified, 'unverified_ports', 1)}; "
                "no plaintext between meshed pods")
    if meshed:
        connections = sum(r["tls"] for r in meshed)
        return f"mTLS on every meshed edge ({_edges(len(meshed))}, {connections:,} TLS connections){also}"
    if rows:
        return f"No meshed edge in the captures{also}"
    return "No TCP flows to judge in the captures"


GATE_COLUMNS = {  # gate -> (count column, ports column) of the flows that trip it
    "unexpected-plaintext": ("unexpected", "unexpected_ports"),
    "plaintext": ("plaintext", "plaintext_ports"),
    "unverified": ("unverified", "unverified_ports"),
}
GATE_TESTS = {gate: (lambda r, count=count: r[count] > 0) for gate, (count, _) in GATE_COLUMNS.items()}


def pick_view(view: str | None, pods_file, use_kubectl: bool, fail_on: Iterable[str]) -> str:
    """The view ``analyze`` prints (the CLI and the .pyz): ``--view`` as given, else edges with a pod
    list, else pairs.  Raises ``ValueError`` (a usage error) for two pod lists, or edges and gates
    without one."""
    if pods_file is not None and use_kubectl:
        raise ValueError("give --pods FILE or --kubectl, not both")
    has_pods = pods_file is not None or use_kubectl
    view = view or ("edges" if has_pods else "pairs")
    if (view == "edges" or fail_on) and not has_pods:
        raise ValueError("--view edges and --fail-on need a pod list: --pods FILE or --kubectl")
    return view


def gate_failures(rows: Sequence[dict], fail_on: Iterable[str]) -> list[str]:
    """One line per ``--fail-on`` condition that holds, naming up to three edges; [] when the gate passes."""
    out = []
    for gate in dict.fromkeys(fail_on):
        hits = [r for r in rows if GATE_TESTS[gate](r)]
        if hits:
            out.append(f"--fail-on {gate}: {_edges(len(hits))}: {_named(hits, GATE_COLUMNS[gate][1])}")
    return out
