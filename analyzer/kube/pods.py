"""Pod lists -> who held an IP at a given time, whether it is meshed, and the identity it must present.

Input is what ``kubectl get pods -A -o json`` or ``-o yaml`` prints (a ``List``/``PodList``, or one
``Pod``); as a fallback, the ``-o wide`` text table, which names pods and IPs but carries no containers, labels or
times, so mesh membership and identities stay unknown (``None``) rather than guessed.

Rules:
  1. Never guess an owner for an IP.  Pod IPs are reused, so an IP maps to the pod that held it *at the
     flow's time*: from ``creationTimestamp`` until ``deletionTimestamp`` or, for a finished pod
     (phase Succeeded/Failed), until its last container's ``finishedAt`` (without one, the last time
     its status names).  The same pod listed twice is one pod, with a note.  Two holders at that time, or
     none the list knows of, is reported as ``ambiguous`` with the candidates - never resolved by picking.
  2. Node IPs (``status.hostIP``) and host-network pods are ``node`` peers (kubelet probes come from
     there); an IP nobody in the list holds is ``external``.
  3. Meshed = label ``linkerd.io/control-plane-ns`` *and* a ``linkerd-proxy`` container, either in
     ``spec.containers`` or, as a native sidecar, in ``spec.initContainers`` with ``restartPolicy: Always``.
  4. Expected identity = the proxy's ``LINKERD2_PROXY_IDENTITY_LOCAL_NAME`` after Kubernetes ``$(VAR)``
     expansion (``$(_pod_sa).$(_pod_ns)...``); without it,
     ``<serviceAccountName or default>.<ns>.serviceaccount.identity.<cp-ns>.<trust-domain>``.
  5. Standard library only.  Reading a list (JSON, YAML, ``-o wide``; strictly type-checked) is
     ``podlist``'s; this module is the model it fills and the questions the audit asks of it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..capture.frames import clamp_ts
from ..errors import AnalyzerError

PROXY_CONTAINER = "linkerd-proxy"
DEBUG_CONTAINER = "linkerd-debug"
CONTROL_PLANE_LABEL = "linkerd.io/control-plane-ns"
PROXY_DEPLOYMENT_LABEL = "linkerd.io/proxy-deployment"  # set by the proxy injector from the owner
TEMPLATE_HASH_LABEL = "pod-template-hash"  # Deployment -> ReplicaSet "<deployment>-<hash>"
DEBUG_ANNOTATION = "config.linkerd.io/enable-debug-sidecar"
PROXY_VERSION_KEY = "linkerd.io/proxy-version"  # annotation (and label) the proxy injector sets
SKIP_INBOUND_ANNOTATION = "config.linkerd.io/skip-inbound-ports"
SKIP_OUTBOUND_ANNOTATION = "config.linkerd.io/skip-outbound-ports"
IDENTITY_ENV = "LINKERD2_PROXY_IDENTITY_LOCAL_NAME"
IDENTITY_SVC_ENV = "LINKERD2_PROXY_IDENTITY_SVC_NAME"  # linkerd-identity.<cp>.serviceaccount.identity.<cp>.<td>
DEFAULT_TRUST_DOMAIN = "cluster.local"
# linkerd-init (proxy-init ``pkg/iptables``) flags naming the ports it leaves alone.
INIT_SKIP_FLAGS = {"--inbound-ports-to-ignore": "in", "--outbound-ports-to-ignore": "out"}
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
IDENTITY_MARK = ".serviceaccount.identity."

Ports = tuple[tuple[int, int], ...]  # inclusive ranges, as the annotations write them ("4567,4568", "1-1024")


class PodsFormatError(AnalyzerError):
    """The pod list is neither ``kubectl get pods -o json`` nor ``-o wide`` output, or is damaged."""


def short_identity(identity: str) -> str:
    """``sa.ns.serviceaccount.identity.cp.td`` -> ``sa.ns`` (as ``linkerd viz edges`` prints it); else unchanged."""
    head, mark, _ = identity.partition(IDENTITY_MARK)
    return head if mark else identity


def port_in(ranges: Ports, port: int) -> bool:
    return any(lo <= port <= hi for lo, hi in ranges)


@dataclass(frozen=True, slots=True)
class Pod:
    """One pod as far as the audit needs it.  ``meshed is None`` means the list could not tell."""

    namespace: str
    name: str
    uid: str = ""
    ips: tuple[str, ...] = ()
    node: str = ""
    host_ip: str = ""
    host_network: bool = False
    phase: str = ""
    created: float | None = None  # epoch seconds; None: unknown (``-o wide``)
    ended: float | None = None  # epoch seconds after which the pod no longer holds its IP; None: still running
    service_account: str = "default"
    meshed: bool | None = None
    native_sidecar: bool = False  # linkerd-proxy is an initContainer with restartPolicy Always
    identity: str = ""  # expected Linkerd identity (full); "" when unmeshed or unknown
    control_plane_ns: str = ""
    owner_kind: str = "pod"  # deployment, statefulset, daemonset, replicaset, job, ... or pod
    owner_name: str = ""
    containers: tuple[str, ...] = ()  # containers and init containers, by name
    skip_inbound: Ports = ()  # every inbound port the proxy never sees (linkerd-init args + annotation)
    skip_outbound: Ports = ()
    skip_inbound_annotated: Ports = ()  # ... of which the operator asked for explicitly (annotation)
    skip_outbound_annotated: Ports = ()
    probe_ports: frozenset[int] = frozenset()  # kubelet probe ports of any container
    proxy_version: str = ""  # the injected proxy's version (linkerd.io/proxy-version), "" when not meshed
    source: str = "json"  # "json" or "wide": how much the list could say
    notes: tuple[str, ...] = ()  # what the list itself said oddly about this pod (listed twice, ...)

    @property
    def short_identity(self) -> str:
        return short_identity(self.identity)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def holds_at(self, ts: float) -> bool:
        """Did this pod own its IP at ``ts``?  Unknown bounds are open (a ``-o wide`` pod always does)."""
        if self.created is not None and ts < self.created:
            return False
        return self.ended is None or ts < self.ended

    def has_container(self, name: str) -> bool:
        return name in self.containers

    def workload(self, resource: str) -> tuple[str, str, str]:
        """(kind, namespace, name) of the row this pod rolls up into for ``--resource``."""
        if resource == "namespace":
            return "namespace", self.namespace, self.namespace
        if resource == "deployment" and self.owner_kind != "pod":
            return self.owner_kind, self.namespace, self.owner_name
        return "pod", self.namespace, self.name


@dataclass(frozen=True, slots=True)
class Peer:
    """One end of a flow as the pod list sees it at the flow's time.

    ``kind``: ``pod`` (``pod`` set), ``node`` (a node IP or host-network pod; ``name`` is the node),
    ``external`` (no pod or node in the list has the IP) or ``ambiguous`` (``candidates``, ``note``).
    """

    kind: str
    ip: str
    pod: Pod | None = None
    name: str = ""
    candidates: tuple[Pod, ...] = ()
    note: str = ""
    namespace: str = ""  # a ``service`` peer's namespace (``pod``: an endpoint standing for it, or None)

    @property
    def meshed(self) -> bool | None:
        """True/False for pods; False for nodes and external IPs; ambiguous: agreed by all candidates, else None."""
        if self.kind == "pod":
            return self.pod.meshed  # type: ignore[union-attr]
        if self.kind == "service":
            return self.pod.meshed if self.pod is not None else None
        if self.kind == "ambiguous":
            states = {c.meshed for c in self.candidates}
            return states.pop() if len(states) == 1 else None
        return False


@dataclass
class PodIndex:
    """IP -> pod as of a time, plus node IPs.  Build with :func:`parse_pods` / :func:`load_pods`."""

    pods: tuple[Pod, ...]
    source: str = ""
    services: object = None  # analyzer.kube.services.ServiceIndex when the list held Services
    notes: list[str] = field(default_factory=list)  # what the list could not say (printed as warnings)
    _by_ip: dict[str, list[Pod]] = field(default_factory=dict, repr=False)
    _nodes: dict[str, str] = field(default_factory=dict, repr=False)  # node IP -> node name

    def __post_init__(self) -> None:
        self._by_ip.clear()
        self._nodes.clear()
        for pod in self.pods:
            if pod.host_ip:
                self._nodes.setdefault(pod.host_ip, pod.node)
            for ip in pod.ips:
                if pod.host_network:
                    self._nodes.setdefault(ip, pod.node)
                else:
                    self._by_ip.setdefault(ip, []).append(pod)

    def __len__(self) -> int:
        return len(self.pods)

    def find(self, namespace: str, name: str) -> Pod | None:
        return next((p for p in self.pods if p.namespace == namespace and p.name == name), None)

    def node_ips(self) -> dict[str, str]:
        return dict(self._nodes)

    def resolve(self, ip: str, ts: float | None = None) -> Peer:
        """Who ``ip`` was at ``ts`` (epoch seconds; None: ignore time).  See the module rules."""
        candidates = self._by_ip.get(ip)
        if candidates:
            alive = candidates if ts is None else [p for p in candidates if p.holds_at(ts)]
            if len(alive) == 1:
                return Peer("pod", ip, alive[0], alive[0].name)
            # Notes leave out the flow's time so that one edge's notes stay one line, not one per flow.
            if alive:
                spans = ", ".join(f"{p.ref} {_span(p)}" for p in alive)
                return Peer("ambiguous", ip, name=ip, candidates=tuple(alive),
                            note=f"{ip} was held by {len(alive)} listed pods at once: {spans}")
            spans = ", ".join(f"{p.ref} {_span(p)}" for p in candidates)
            return Peer("ambiguous", ip, name=ip, candidates=tuple(candidates),
                        note=f"no listed pod held {ip} at the flow's time: {spans}")
        if ip in self._nodes:
            return Peer("node", ip, name=self._nodes[ip] or "node")
        return Peer("external", ip, name=ip)

    def merged(self, newer: PodIndex) -> PodIndex:
        """Union of two lists (e.g. before and after a capture); ``newer`` wins for the same pod."""
        pods = {_pod_key(p): p for p in self.pods}
        pods.update({_pod_key(p): p for p in newer.pods})
        return PodIndex(tuple(pods.values()), newer.source or self.source, newer.services or self.services,
                        newer.notes or self.notes)


def _pod_key(p: Pod) -> tuple[str, str, str]:
    return (p.uid, "", "") if p.uid else ("", p.namespace, p.name)


# -- time ----------------------------------------------------------------------------------------------
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _span(pod: Pod) -> str:
    start = _iso(pod.created) if pod.created is not None else "?"
    end = _iso(pod.ended) if pod.ended is not None else "running"
    return f"{start}..{end}"


def _ts(value, where: str) -> float | None:
    """RFC 3339 (Kubernetes ``metav1.Time``, e.g. ``2024-05-01T10:00:00Z``) -> epoch seconds."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PodsFormatError(f"{where}: timestamp {value!r} is not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PodsFormatError(f"{where}: bad timestamp {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return clamp_ts(parsed.timestamp())  # year 9999 is valid RFC 3339 but past what outputs can show

def _ip(value, where: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise PodsFormatError(f"{where}: bad IP address {value!r}") from None


TARGET_KINDS = {
    "po": "pod", "pod": "pod", "pods": "pod",
    "deploy": "deployment", "deployment": "deployment", "deployments": "deployment",
    "sts": "statefulset", "statefulset": "statefulset", "statefulsets": "statefulset",
    "ds": "daemonset", "daemonset": "daemonset", "daemonsets": "daemonset",
    "rs": "replicaset", "replicaset": "replicaset", "replicasets": "replicaset",
    "job": "job", "jobs": "job",
}


def select_pods(index: PodIndex, namespace: str, target: str) -> list[Pod]:
    """Running pods named by a kubectl-style target (``deploy/web``, ``pod/NAME``, ``NAME``), by name.

    Raises :class:`~analyzer.errors.AnalyzerError` naming what exists when nothing matches.
    """
    kind_text, slash, name = target.partition("/")
    if not slash:
        kind_text, name = "pod", target
    kind = TARGET_KINDS.get(kind_text.lower())
    if kind is None or not name:
        raise AnalyzerError(f"target {target!r}: expected KIND/NAME with KIND one of "
                            "deploy, sts, ds, rs, job, pod (or a bare pod name)")
    in_ns = [p for p in index.pods if p.namespace == namespace]
    if kind == "pod":
        found = [p for p in in_ns if p.name == name]
    else:
        found = [p for p in in_ns if p.owner_kind == kind and p.owner_name == name]
    if not found:
        names = sorted({f"{p.owner_kind}/{p.owner_name}" if p.owner_kind != "pod" else f"pod/{p.name}" for p in in_ns})
        have = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "none"
        raise AnalyzerError(f"no pods for {kind}/{name} in namespace {namespace!r} (there: {have})")
    running = sorted((p for p in found if p.phase == "Running" and p.ended is None), key=lambda p: p.name)
    if not running:
        states = ", ".join(f"{p.name} {p.phase or '?'}" for p in found)
        raise AnalyzerError(f"no running pod for {kind}/{name} in namespace {namespace!r} ({states})")
    return running


def merge_pod_lists(*texts: str) -> str:
    """Several ``kubectl get pods -o json`` outputs -> one ``List``; later lists win for the same pod (uid).

    Used around a capture: pods that were deleted while it ran stay known, with their deletion time.
    """
    items: dict[str, dict] = {}
    for text in texts:
        index_doc = json.loads(text)
        docs = [index_doc] if index_doc.get("kind") == "Pod" else index_doc.get("items") or []
        for item in docs:
            meta = item.get("metadata") or {}
            key = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
            items[key] = item
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items.values()),
                       "metadata": {"resourceVersion": ""}}, indent=2) + "\n"
