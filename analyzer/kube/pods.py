"""Pod lists -> who held an IP at a given time, whether it is meshed, and the identity it must present.

Input is what ``kubectl get pods -A -o json`` prints (a ``List``/``PodList``, or one ``Pod``); as a
fallback, the ``-o wide`` text table, which names pods and IPs but carries no containers, labels or
times, so mesh membership and identities stay unknown (``None``) rather than guessed.

Rules:
  1. Never guess an owner for an IP.  Pod IPs are reused, so an IP maps to the pod that held it *at the
     flow's time*: from ``creationTimestamp`` until ``deletionTimestamp`` or, for a finished pod
     (phase Succeeded/Failed), until its last container's ``finishedAt``.  Two holders at that time, or
     none the list knows of, is reported as ``ambiguous`` with the candidates - never resolved by picking.
  2. Node IPs (``status.hostIP``) and host-network pods are ``node`` peers (kubelet probes come from
     there); an IP nobody in the list holds is ``external``.
  3. Meshed = label ``linkerd.io/control-plane-ns`` *and* a ``linkerd-proxy`` container, either in
     ``spec.containers`` or, as a native sidecar, in ``spec.initContainers`` with ``restartPolicy: Always``.
  4. Expected identity = the proxy's ``LINKERD2_PROXY_IDENTITY_LOCAL_NAME`` after Kubernetes ``$(VAR)``
     expansion (``$(_pod_sa).$(_pod_ns)...``); without it,
     ``<serviceAccountName or default>.<ns>.serviceaccount.identity.<cp-ns>.<trust-domain>``.
  5. Standard library only.  A malformed list raises :class:`PodsFormatError` naming the source and the
     first problem, in one line.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..capture.frames import clamp_ts
from ..errors import AnalyzerError

PROXY_CONTAINER = "linkerd-proxy"
DEBUG_CONTAINER = "linkerd-debug"
CONTROL_PLANE_LABEL = "linkerd.io/control-plane-ns"
PROXY_DEPLOYMENT_LABEL = "linkerd.io/proxy-deployment"  # set by the proxy injector from the owner
TEMPLATE_HASH_LABEL = "pod-template-hash"  # Deployment -> ReplicaSet "<deployment>-<hash>"
DEBUG_ANNOTATION = "config.linkerd.io/enable-debug-sidecar"
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
    source: str = "json"  # "json" or "wide": how much the list could say

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

    @property
    def meshed(self) -> bool | None:
        """True/False for pods; False for nodes and external IPs; ambiguous: agreed by all candidates, else None."""
        if self.kind == "pod":
            return self.pod.meshed  # type: ignore[union-attr]
        if self.kind == "ambiguous":
            states = {c.meshed for c in self.candidates}
            return states.pop() if len(states) == 1 else None
        return False


@dataclass
class PodIndex:
    """IP -> pod as of a time, plus node IPs.  Build with :func:`parse_pods` / :func:`load_pods`."""

    pods: tuple[Pod, ...]
    source: str = ""
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
        def key(p: Pod) -> tuple[str, str, str]:
            return (p.uid, "", "") if p.uid else ("", p.namespace, p.name)
        pods = {key(p): p for p in self.pods}
        pods.update({key(p): p for p in newer.pods})
        return PodIndex(tuple(pods.values()), newer.source or self.source)


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


# -- JSON ----------------------------------------------------------------------------------------------
def _ip(value, where: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise PodsFormatError(f"{where}: bad IP address {value!r}") from None


def parse_ports(text: str, where: str) -> Ports:
    """``"4567,4568"`` / ``"1-1024, 8080"`` -> ranges; an empty string -> ()."""
    ranges = []
    for part in re.split(r"[,\s]+", str(text).strip()):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise PodsFormatError(f"{where}: bad port list {text!r}") from None
        if not (0 <= a <= b <= 65535):
            raise PodsFormatError(f"{where}: bad port range {part!r}")
        ranges.append((a, b))
    return tuple(ranges)


_VAR_RE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables are replaced, unknown ones kept, ``$$`` is ``$``."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR_RE.sub(sub, value)


def _container_env(container: dict, fields: dict[str, str]) -> dict[str, str]:
    """The container's env as the kubelet would set it: literal values (expanded in order) and fieldRefs."""
    env: dict[str, str] = {}
    for entry in container.get("env") or ():
        if not isinstance(entry, dict) or "name" not in entry:
            continue
        if "value" in entry:
            env[entry["name"]] = _expand(str(entry["value"]), env)
        else:
            ref = ((entry.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
            if ref in fields:
                env[entry["name"]] = fields[ref]
    return env


def _skip_from_init(init_containers: list[dict], where: str) -> tuple[Ports, Ports]:
    inbound: list = []
    outbound: list = []
    for c in init_containers:
        if c.get("name") != "linkerd-init":
            continue
        args = [str(a) for a in (c.get("args") or ())]
        for i, arg in enumerate(args):
            flag, eq, value = arg.partition("=")
            if flag in INIT_SKIP_FLAGS:
                if not eq:
                    value = args[i + 1] if i + 1 < len(args) else ""
                target = inbound if INIT_SKIP_FLAGS[flag] == "in" else outbound
                target.extend(parse_ports(value, f"{where}: linkerd-init {flag}"))
    return tuple(inbound), tuple(outbound)


def _probe_ports(containers: list[dict]) -> frozenset[int]:
    ports: set[int] = set()
    for c in containers:
        named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or () if isinstance(p, dict)}
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = c.get(kind) or {}
            for handler in ("httpGet", "tcpSocket", "grpc"):
                port = (probe.get(handler) or {}).get("port")
                port = named.get(port, port) if isinstance(port, str) and not port.isdigit() else port
                try:
                    ports.add(int(port))
                except (TypeError, ValueError):
                    continue
    return frozenset(ports)


def _owner(meta: dict, labels: dict) -> tuple[str, str]:
    """Rollup owner: ReplicaSet -> Deployment through pod-template-hash (or the injector's label)."""
    refs = [r for r in meta.get("ownerReferences") or () if isinstance(r, dict)]
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if ref is None:
        deployment = labels.get(PROXY_DEPLOYMENT_LABEL)
        return ("deployment", deployment) if deployment else ("pod", meta.get("name", ""))
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    if kind == "ReplicaSet":
        template_hash = labels.get(TEMPLATE_HASH_LABEL)
        if template_hash and name.endswith("-" + template_hash):
            return "deployment", name[: -len(template_hash) - 1]
        deployment = labels.get(PROXY_DEPLOYMENT_LABEL)
        if deployment and name.startswith(deployment + "-"):
            return "deployment", deployment
        return "replicaset", name
    return (kind.lower() or "pod"), name


def _pod_from_json(obj: dict, where: str, trust_domain: str) -> Pod:
    meta, spec, status = obj.get("metadata"), obj.get("spec") or {}, obj.get("status") or {}
    if not isinstance(meta, dict) or not meta.get("name"):
        raise PodsFormatError(f"{where}: no metadata.name")
    if not isinstance(spec, dict) or not isinstance(status, dict):
        raise PodsFormatError(f"{where}: spec and status must be objects")
    name, ns = str(meta["name"]), str(meta.get("namespace") or "default")
    where = f"{where} ({ns}/{name})"
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    containers = [c for c in spec.get("containers") or () if isinstance(c, dict)]
    inits = [c for c in spec.get("initContainers") or () if isinstance(c, dict)]
    sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")

    proxy = next((c for c in containers if c.get("name") == PROXY_CONTAINER), None)
    native = False
    if proxy is None:
        # Native sidecar (Kubernetes 1.29+, Linkerd's default from 2.20): an init container that keeps
        # running because its restartPolicy is Always.  A plain init linkerd-proxy would have exited.
        proxy = next((c for c in inits if c.get("name") == PROXY_CONTAINER and c.get("restartPolicy") == "Always"), None)
        native = proxy is not None
    cp_ns = str(labels.get(CONTROL_PLANE_LABEL) or "")
    meshed = bool(cp_ns) and proxy is not None

    identity = ""
    if meshed:
        fields = {"metadata.name": name, "metadata.namespace": ns, "spec.serviceAccountName": sa,
                  "spec.nodeName": str(spec.get("nodeName") or "")}
        env = _container_env(proxy, fields)  # type: ignore[arg-type]
        local = env.get(IDENTITY_ENV, "")
        if local and "$(" not in local:
            identity = local
        else:
            svc = env.get(IDENTITY_SVC_ENV, "")
            td = svc.partition(f"{IDENTITY_MARK}{cp_ns}.")[2] if IDENTITY_MARK in svc else ""
            identity = f"{sa}.{ns}{IDENTITY_MARK}{cp_ns}.{td or trust_domain}"

    ips = []
    for entry in status.get("podIPs") or ():
        if isinstance(entry, dict) and entry.get("ip"):
            ips.append(_ip(entry["ip"], f"{where}: status.podIPs"))
    if status.get("podIP"):
        ip = _ip(status["podIP"], f"{where}: status.podIP")
        if ip not in ips:
            ips.insert(0, ip)
    host_ip = _ip(status["hostIP"], f"{where}: status.hostIP") if status.get("hostIP") else ""

    created = _ts(meta.get("creationTimestamp"), f"{where}: metadata.creationTimestamp")
    ended = _ts(meta.get("deletionTimestamp"), f"{where}: metadata.deletionTimestamp")
    phase = str(status.get("phase") or "")
    if phase in TERMINAL_PHASES:
        # A finished pod keeps status.podIP, but the IP went back to the pool when its sandbox stopped.
        finished = [_ts(((s.get("state") or {}).get("terminated") or {}).get("finishedAt"), f"{where}: finishedAt")
                    for key in ("containerStatuses", "initContainerStatuses")
                    for s in status.get(key) or () if isinstance(s, dict)]
        finished = [t for t in finished if t is not None]
        if finished:
            ended = min(ended, max(finished)) if ended is not None else max(finished)

    skip_in, skip_out = _skip_from_init(inits, where)
    ann_in = parse_ports(annotations.get(SKIP_INBOUND_ANNOTATION, ""), f"{where}: {SKIP_INBOUND_ANNOTATION}")
    ann_out = parse_ports(annotations.get(SKIP_OUTBOUND_ANNOTATION, ""), f"{where}: {SKIP_OUTBOUND_ANNOTATION}")
    owner_kind, owner_name = _owner(meta, labels)
    return Pod(
        namespace=ns, name=name, uid=str(meta.get("uid") or ""), ips=tuple(ips),
        node=str(spec.get("nodeName") or ""), host_ip=host_ip, host_network=bool(spec.get("hostNetwork")),
        phase=phase, created=created, ended=ended, service_account=sa, meshed=meshed, native_sidecar=native,
        identity=identity, control_plane_ns=cp_ns, owner_kind=owner_kind, owner_name=owner_name,
        containers=tuple(str(c.get("name")) for c in containers + inits),
        skip_inbound=skip_in + ann_in, skip_outbound=skip_out + ann_out,
        skip_inbound_annotated=ann_in, skip_outbound_annotated=ann_out,
        probe_ports=_probe_ports(containers + inits), source="json",
    )


def parse_pods_json(text: str, source: str = "pods", trust_domain: str = DEFAULT_TRUST_DOMAIN) -> PodIndex:
    """``kubectl get pods [-A] -o json`` output -> :class:`PodIndex`.  Non-Pod items of a List are skipped."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PodsFormatError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
                              "expected `kubectl get pods -A -o json` output") from None
    if not isinstance(doc, dict):
        raise PodsFormatError(f"{source}: expected a JSON object (kind List or Pod), got {type(doc).__name__}")
    if doc.get("kind") == "Pod":
        items = [doc]
    elif isinstance(doc.get("items"), list):
        items = doc["items"]
    else:
        raise PodsFormatError(f"{source}: no 'items' list (kind {doc.get('kind', 'missing')!r}); "
                              "expected `kubectl get pods -A -o json` output")
    pods = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PodsFormatError(f"{source}: items[{i}] is not an object")
        if item.get("kind", "Pod") != "Pod":
            continue
        pods.append(_pod_from_json(item, f"{source}: items[{i}]", trust_domain))
    return PodIndex(tuple(pods), source)


# -- -o wide -------------------------------------------------------------------------------------------
_HEADER_CELL = re.compile(r"\S+(?: \S+)*")  # kubectl's tabwriter pads columns with >= 3 spaces


def parse_pods_wide(text: str, source: str = "pods", namespace: str = "default") -> PodIndex:
    """``kubectl get pods [-A] -o wide`` text -> :class:`PodIndex` (names, IPs, nodes; mesh unknown).

    Columns are cut at the header's positions, since cells such as ``RESTARTS`` (``2 (3h ago)``) and
    headers such as ``NOMINATED NODE`` contain single spaces.  Without ``NAMESPACE`` (no ``-A``) every
    pod is in ``namespace``.
    """
    lines = [line.rstrip("\n") for line in text.splitlines() if line.strip()]
    if not lines:
        raise PodsFormatError(f"{source}: empty pod list")
    header = [(m.start(), m.group(0)) for m in _HEADER_CELL.finditer(lines[0])]
    names = [h for _, h in header]
    if "NAME" not in names or "IP" not in names:
        raise PodsFormatError(f"{source}: not `kubectl get pods -o json` or `-o wide` output "
                              f"(first line {lines[0][:60]!r})")
    starts = [s for s, _ in header] + [None]
    pods = []
    for n, line in enumerate(lines[1:], start=2):
        cells = {h: line[starts[i]:starts[i + 1]].strip() for i, (_, h) in enumerate(header)}
        name = cells.get("NAME", "")
        if not name or " " in name:
            raise PodsFormatError(f"{source}: line {n}: cannot read the NAME column: {line[:60]!r}")
        ip_cell = cells.get("IP", "")
        ips = () if ip_cell in ("", "<none>") else (_ip(ip_cell, f"{source}: line {n}"),)
        node = cells.get("NODE", "")
        pods.append(Pod(namespace=cells.get("NAMESPACE") or namespace, name=name, ips=ips,
                        node="" if node == "<none>" else node, phase=cells.get("STATUS", ""), meshed=None,
                        service_account="", source="wide"))
    return PodIndex(tuple(pods), source)


# -- entry points --------------------------------------------------------------------------------------
def parse_pods(text: str, source: str = "pods", trust_domain: str = DEFAULT_TRUST_DOMAIN) -> PodIndex:
    """JSON if the text starts with ``{``, else the ``-o wide`` table."""
    stripped = text.lstrip()
    if not stripped:
        raise PodsFormatError(f"{source}: empty file; expected `kubectl get pods -A -o json` output")
    if stripped[0] in "{[":
        return parse_pods_json(text, source, trust_domain)
    return parse_pods_wide(text, source)


def load_pods(path: str | Path, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> PodIndex:
    """Read and parse a pod list file; an unreadable file is a :class:`PodsFormatError` too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PodsFormatError(f"{path}: cannot read the pod list: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_pods(text, str(path), trust_domain)


# kubectl's resource names and short names -> the owner kinds of :func:`_owner`.
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
