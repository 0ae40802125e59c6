"""The lab's wiring: which pods exist, who talks to whom, on which port, and what the wire must show.

This module is the single source of truth for both sides of the lab:

* the runtime (``netns``, ``proxy``, ``apps``, ``traffic``) reads a :class:`Lab` to decide addresses,
  identities, nftables skip ports and which connections to open;
* :func:`expected_rows` derives, from the same declarations, the verdict a correct analyzer must give for
  every (client pod, server pod, server port) - never from an analyzer's output.

Rules it must keep: no I/O except :meth:`Lab.save`/:meth:`Lab.load`; no knowledge of sockets or processes.

The expected verdicts follow what Linkerd puts on the wire: meshed -> meshed on an intercepted
port is mTLS (app port in ``transparent`` mode, 4143 with ALPN ``transport.l5d.io/v1`` in ``transport-header``
mode); kubelet probes, unmeshed peers, skip ports and UDP/DNS are plaintext; the proxy <-> app hop over ``lo``
is listed separately (:func:`localhost_rows`) because analyzers exclude it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import ipaddress
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

PREFIX = "mtlslab-"  # every namespace, link and nft table the lab creates starts with this
NODE = "node"  # pod key of the node namespace (kubelet probes come from its IP)
SUBNET = ipaddress.ip_network("10.244.0.0/24")  # lives only inside the lab's namespaces
NODE_IP = "10.244.0.1"
FIRST_POD_HOST = 10  # pods get 10.244.<node>.10, .11, ... by their place in PODS
# Two nodes, each a network namespace with its own bridge and pod subnet, routed to each other over a
# transit veth. A node's Kubernetes name is its namespace's name (what `kubectl debug node/NAME` targets).
NODE_NAMES = (PREFIX + NODE, PREFIX + NODE + "2")
NODE_SUBNETS = (SUBNET, ipaddress.ip_network("10.244.1.0/24"))
NODE_IPS = tuple(str(net.network_address + 1) for net in NODE_SUBNETS)
PODS_SUPERNET = ipaddress.ip_network("10.244.0.0/16")  # what pods route via their node
TRANSIT = ("10.244.255.1/30", "10.244.255.2/30")  # node <-> node2

CONTROL_PLANE_NS = "linkerd"
TRUST_DOMAIN = "cluster.local"

MODES = ("transparent", "transport-header")
# services: an unmeshed client calls a meshed pod through a Service's ClusterIP (DNAT on the node).
SCENARIOS = ("steady", "midconn", "services")
SERVICE_SUBNET = ipaddress.ip_network("10.96.0.0/16")  # ClusterIPs, routed to the node namespace only
FIRST_SERVICE_HOST = 10

# linkerd2-proxy ports (reference: "Ports and where traffic goes").
PROXY_INBOUND_PORT = 4143
PROXY_OUTBOUND_PORT = 4140
PROXY_ADMIN_PORT = 4191
PROXY_TAP_PORT = 4190
TRANSPORT_ALPN = "transport.l5d.io/v1"
# linkerd-init defaults: inbound skips 4190, 4191 and the ignored ports; outbound skips the ignored ports.
IGNORED_PORTS = (4567, 4568)
INBOUND_SKIP_PORTS = (PROXY_TAP_PORT, PROXY_ADMIN_PORT) + IGNORED_PORTS
OUTBOUND_SKIP_PORTS = IGNORED_PORTS
PROXY_MARK = 0x2102  # SO_MARK on proxy-originated sockets; stands in for linkerd-init's proxy uid 2102

# Verdict vocabulary of expected-edges.csv.
TLS = "tls"
PLAINTEXT = "plaintext"
SECURED = "secured"
PLAINTEXT_EXPECTED = "plaintext-expected"
PLAINTEXT_UNEXPECTED = "PLAINTEXT-UNEXPECTED"
LOCALHOST = "localhost"

EDGE_COLUMNS = (
    "src_ns", "src_pod", "src_ip", "dst_ns", "dst_pod", "dst_ip", "dst_port", "verdict", "status", "reason",
)


@dataclass(frozen=True, slots=True)
class PodSpec:
    """One Deployment with one replica: the static part of a pod."""

    key: str  # short handle: netns suffix and `lab capture --pod KEY`
    namespace: str  # Kubernetes namespace
    service_account: str
    meshed: bool
    app: str  # app role run in the pod ("web", "emoji", "voting", "coredns") or "" for pure clients
    tcp_ports: tuple[int, ...] = ()  # ports the app listens on
    udp_ports: tuple[int, ...] = ()
    native_sidecar: bool = False  # linkerd-proxy as an initContainer with restartPolicy Always
    debug_sidecar: bool = False  # linkerd-debug container (config.linkerd.io/enable-debug-sidecar)
    container: str = ""  # app container name; defaults to key
    node: int = 0  # index into NODE_NAMES

    @property
    def deployment(self) -> str:
        return self.key


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    """Traffic the lab generates: `src` opens connections to `dst`:`port` in the listed scenarios."""

    src: str  # pod key or NODE
    dst: str  # pod key
    port: int  # destination port as the client app dials it (before any proxy rewrite)
    kind: str  # app | probe | scrape | dns
    proto: str = "tcp"
    scenarios: tuple[str, ...] = ("steady",)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A ClusterIP Service in front of one lab pod: ``port`` on the ClusterIP -> the pod's ``target_port``."""

    name: str
    target: str  # pod key
    port: int
    target_port: int
    port_name: str = "http"


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("emoji-svc", "emoji", 80, 8080),
    ServiceSpec("voting-svc", "voting", 8080, 8080, "grpc"),
)


# The emojivoto-like application plus the traffic that must stay plaintext.
PODS: tuple[PodSpec, ...] = (
    PodSpec("web", "emojivoto", "web", True, "web", (8080,), debug_sidecar=True, container="web-svc"),
    PodSpec("emoji", "emojivoto", "emoji", True, "emoji", (8080,), container="emoji-svc"),
    # voting: gRPC on 8080 and a plaintext "stats" gRPC port on 4567, a default linkerd skip port.
    PodSpec("voting", "emojivoto", "voting", True, "voting", (8080, 4567), native_sidecar=True,
            debug_sidecar=True, container="voting-svc"),
    PodSpec("vote-bot", "emojivoto", "default", True, "", container="vote-bot"),
    PodSpec("prometheus", "linkerd-viz", "prometheus", True, "", container="prometheus"),
    # The unmeshed clients run on the second node: their traffic crosses nodes, every edge still has an end
    # on the first node (whose bridge capture therefore sees every edge), and the kubelet's probes (meshed
    # pods and coredns) all come from the first node's IP.
    PodSpec("prometheus-server", "monitoring", "prometheus-server", False, "", container="prometheus-server", node=1),
    PodSpec("legacy", "legacy", "default", False, "", container="legacy-client", node=1),
    PodSpec("coredns", "kube-system", "coredns", False, "coredns", (8181,), (53,), container="coredns"),
)

_MESHED = tuple(p.key for p in PODS if p.meshed)
_BOTH = ("steady", "midconn")

EDGES: tuple[EdgeSpec, ...] = (
    # The application: vote-bot -> web -> emoji (HTTP/1.1) and voting (gRPC over h2c), all meshed.
    EdgeSpec("vote-bot", "web", 8080, "app"),
    EdgeSpec("web", "emoji", 8080, "app"),
    EdgeSpec("web", "voting", 8080, "app", scenarios=_BOTH),
    # The misconfiguration an auditor must catch: meshed web -> meshed voting on skip port 4567.
    EdgeSpec("web", "voting", 4567, "app", scenarios=_BOTH),
    # An unmeshed client of a meshed service: plaintext, no_tls_from_remote.
    EdgeSpec("legacy", "voting", 8080, "app", scenarios=_BOTH),
    # DNS over UDP to the resolver pod.
    EdgeSpec("vote-bot", "coredns", 53, "dns", "udp"),
    EdgeSpec("web", "coredns", 53, "dns", "udp"),
    EdgeSpec("legacy", "coredns", 53, "dns", "udp"),
    # kubelet probes from the node IP: app readiness and the proxy's /live and /ready on 4191.
    EdgeSpec(NODE, "web", 8080, "probe"),
    EdgeSpec(NODE, "emoji", 8080, "probe"),
    EdgeSpec(NODE, "voting", 8080, "probe"),
    EdgeSpec(NODE, "coredns", 8181, "probe"),
    *(EdgeSpec(NODE, key, PROXY_ADMIN_PORT, "probe") for key in _MESHED),
    # Scrapes of the proxies' admin port: meshed viz Prometheus over mTLS, unmeshed Prometheus in plaintext.
    *(EdgeSpec("prometheus", key, PROXY_ADMIN_PORT, "scrape",
               scenarios=_BOTH if key == "voting" else ("steady",)) for key in _MESHED if key != "prometheus"),
    *(EdgeSpec("prometheus-server", key, PROXY_ADMIN_PORT, "scrape",
               scenarios=_BOTH if key == "voting" else ("steady",)) for key in _MESHED),
    # An unmeshed client of a meshed pod through its Service's ClusterIP (port = the Service port).
    EdgeSpec("legacy", "emoji", 80, "service", scenarios=("services",)),
)


def identity(service_account: str, namespace: str) -> str:
    """The Linkerd identity: SNI of the server and the one DNS SAN of its certificate."""
    return f"{service_account}.{namespace}.serviceaccount.identity.{CONTROL_PLANE_NS}.{TRUST_DOMAIN}"


def _k8s_suffix(seed: str, length: int) -> str:
    # Kubernetes' SafeEncodeString alphabet (no vowels, no 0/1/3); deterministic so reruns give stable names.
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


@dataclass(frozen=True, slots=True)
class Pod:
    """A PodSpec placed in the lab: IP, generated names, identity and the netns that holds it."""

    key: str
    name: str
    namespace: str
    service_account: str
    meshed: bool
    app: str
    ip: str
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]
    template_hash: str
    native_sidecar: bool
    debug_sidecar: bool
    container: str
    node: int = 0  # index into NODE_NAMES

    @property
    def netns(self) -> str:
        return PREFIX + self.key

    @property
    def node_name(self) -> str:
        return NODE_NAMES[self.node]

    @property
    def node_ip(self) -> str:
        return NODE_IPS[self.node]

    @property
    def identity(self) -> str:
        return identity(self.service_account, self.namespace)


@dataclass(frozen=True, slots=True)
class Lab:
    """Everything the runtime and the expected-edges writer need, saved as ``lab.json`` in the state dir."""

    mode: str
    created: str  # RFC 3339 UTC, the pods' creationTimestamp
    pods: tuple[Pod, ...]
    node_ip: str = NODE_IP
    edges: tuple[EdgeSpec, ...] = field(default=EDGES)

    @classmethod
    def build(cls, mode: str, created: str) -> Lab:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        pods = []
        for index, spec in enumerate(PODS):
            template_hash = _k8s_suffix("rs/" + spec.key, 10)
            pods.append(Pod(
                key=spec.key,
                name=f"{spec.key}-{template_hash}-{_k8s_suffix('pod/' + spec.key, 5)}",
                namespace=spec.namespace,
                service_account=spec.service_account,
                meshed=spec.meshed,
                app=spec.app,
                ip=str(NODE_SUBNETS[spec.node].network_address + FIRST_POD_HOST + index),
                tcp_ports=spec.tcp_ports,
                udp_ports=spec.udp_ports,
                template_hash=template_hash,
                native_sidecar=spec.native_sidecar,
                debug_sidecar=spec.debug_sidecar,
                container=spec.container or spec.key,
                node=spec.node,
            ))
        return cls(mode=mode, created=created, pods=tuple(pods))

    # -- lookups ---------------------------------------------------------------------------------------
    def pod(self, key: str) -> Pod:
        """Find a pod by key, deployment or full pod name."""
        for pod in self.pods:
            if key in (pod.key, pod.name):
                return pod
        raise KeyError(key)

    def pod_by_ip(self, ip: str) -> Pod | None:
        return next((p for p in self.pods if p.ip == ip), None)

    def edges_from(self, src: str, scenario: str) -> list[EdgeSpec]:
        return [e for e in self.edges if e.src == src and scenario in e.scenarios]

    def service_names(self) -> dict[str, str]:
        """DNS name -> pod IP for the resolver (no ClusterIPs: names resolve straight to the pod)."""
        return {f"{p.key}-svc.{p.namespace}.svc.{TRUST_DOMAIN}": p.ip for p in self.pods}

    def services(self) -> list[tuple[ServiceSpec, str]]:
        """Every Service with its ClusterIP (assigned in declaration order from SERVICE_SUBNET)."""
        return [(spec, str(SERVICE_SUBNET.network_address + FIRST_SERVICE_HOST + i)) for i, spec in enumerate(SERVICES)]

    def service_for(self, edge: EdgeSpec) -> tuple[ServiceSpec, str]:
        """The Service a ``service`` edge dials (its pod and Service port), with its ClusterIP."""
        return next((s, ip) for s, ip in self.services() if s.target == edge.dst and s.port == edge.port)

    def service_name(self, key: str) -> str:
        pod = self.pod(key)
        return f"{pod.key}-svc.{pod.namespace}.svc.{TRUST_DOMAIN}"

    # -- persistence -----------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: Path) -> Lab:
        raw = json.loads(path.read_text())
        pods = tuple(Pod(**{**p, "tcp_ports": tuple(p["tcp_ports"]), "udp_ports": tuple(p["udp_ports"])})
                     for p in raw["pods"])
        edges = tuple(EdgeSpec(**{**e, "scenarios": tuple(e["scenarios"])}) for e in raw["edges"])
        return cls(mode=raw["mode"], created=raw["created"], pods=pods, node_ip=raw["node_ip"], edges=edges)


# -- expected verdicts ---------------------------------------------------------------------------------
def wire_port(lab: Lab, edge: EdgeSpec) -> int:
    """The destination port seen on the wire for `edge` (the proxy may rewrite it to 4143)."""
    if edge.proto == "tcp" and _is_mtls(lab, edge) and edge.port != PROXY_ADMIN_PORT:
        if lab.mode == "transport-header":
            return PROXY_INBOUND_PORT
    return edge.port


def _is_mtls(lab: Lab, edge: EdgeSpec) -> bool:
    if edge.proto != "tcp" or edge.src == NODE:
        return False
    src, dst = lab.pod(edge.src), lab.pod(edge.dst)
    if not (src.meshed and dst.meshed):
        return False
    if edge.port == PROXY_ADMIN_PORT:
        return True  # the admin server terminates mTLS itself although 4191 is not redirected
    return edge.port not in OUTBOUND_SKIP_PORTS and edge.port not in INBOUND_SKIP_PORTS


def classify_edge(lab: Lab, edge: EdgeSpec) -> tuple[str, str, str]:
    """(verdict, status, reason) for one edge, from the wiring alone."""
    if edge.proto != "tcp":
        return PLAINTEXT, PLAINTEXT_EXPECTED, "udp"
    if edge.src == NODE:
        return PLAINTEXT, PLAINTEXT_EXPECTED, "kubelet_probe"
    if _is_mtls(lab, edge):
        reason = "mtls_transport_header" if wire_port(lab, edge) == PROXY_INBOUND_PORT else "mtls"
        return TLS, SECURED, reason
    src, dst = lab.pod(edge.src), lab.pod(edge.dst)
    if src.meshed and dst.meshed:
        return PLAINTEXT, PLAINTEXT_UNEXPECTED, "port_skipped"
    if dst.meshed:
        return PLAINTEXT, PLAINTEXT_EXPECTED, "no_tls_from_remote"
    return PLAINTEXT, PLAINTEXT_EXPECTED, "unmeshed"


def _endpoint(lab: Lab, key: str) -> tuple[str, str, str]:
    if key == NODE:
        return "", NODE, lab.node_ip
    pod = lab.pod(key)
    return pod.namespace, pod.name, pod.ip


def visible(edge: EdgeSpec, capture_pod: str | None) -> bool:
    """Does a capture in `capture_pod`'s netns see this edge? None: everything; NODE: the node's bridge."""
    return capture_pod in (None, NODE) or capture_pod in (edge.src, edge.dst)


def expected_rows(lab: Lab, scenario: str | None = None, capture_pod: str | None = None) -> list[dict]:
    """One row per (client pod, server pod, wire port), sorted; see EDGE_COLUMNS."""
    rows = {}
    for edge in lab.edges:
        if scenario is not None and scenario not in edge.scenarios:
            continue
        if not visible(edge, capture_pod):
            continue
        verdict, status, reason = classify_edge(lab, edge)
        src_ns, src_pod, src_ip = _endpoint(lab, edge.src)
        dst_ns, dst_pod, dst_ip = _endpoint(lab, edge.dst)
        for dst_name, dst_ip, port in _wire_ends(lab, edge, capture_pod, dst_pod, dst_ip):
            rows[(src_ip, dst_ip, port)] = dict(
                src_ns=src_ns, src_pod=src_pod, src_ip=src_ip, dst_ns=dst_ns, dst_pod=dst_name, dst_ip=dst_ip,
                dst_port=port, verdict=verdict, status=status, reason=reason,
            )
    return [rows[k] for k in sorted(rows, key=lambda k: (ipaddress.ip_address(k[0]), ipaddress.ip_address(k[1]), k[2]))]


def _wire_ends(lab: Lab, edge: EdgeSpec, capture_pod: str | None, dst_pod: str, dst_ip: str) -> list[tuple]:
    """(destination name, IP, port) as a capture at ``capture_pod`` sees the edge: a ``service`` edge is
    client -> ClusterIP:port before the node's DNAT (client pod) and client -> pod:target port after it
    (server pod); the node sees both."""
    if edge.kind != "service":
        return [(dst_pod, dst_ip, wire_port(lab, edge))]
    spec, cluster_ip = lab.service_for(edge)
    ends = []
    if capture_pod in (None, NODE, edge.src):
        ends.append((spec.name, cluster_ip, spec.port))
    if capture_pod in (None, NODE, edge.dst):
        ends.append((dst_pod, dst_ip, spec.target_port))
    return ends


def localhost_rows(lab: Lab, scenario: str | None = None, capture_pod: str | None = None) -> list[dict]:
    """The proxy <-> app hops over ``lo`` that meshed TCP edges cause (analyzers must mark them localhost).

    Outbound: client app -> 127.0.0.1:4140 (nftables REDIRECT, source = pod IP). The replies of that hop
    are un-NATed before ``lo`` sees them, so they read *original destination* -> pod IP: a half-flow whose
    addresses look exactly like the real pod-to-pod edge (reason ``outbound_redirect_reply``); only the
    interface (ARPHRD_LOOPBACK 772 in SLL/SLL2) tells them apart. Linkerd's iptables REDIRECT does the same.
    Inbound: proxy -> app at pod IP -> pod IP:<port> (transport-header mode: the port from the header).
    """
    rows = {}
    for edge in lab.edges:
        if edge.proto != "tcp" or edge.src == NODE or (scenario is not None and scenario not in edge.scenarios):
            continue
        src_pod = lab.pod(edge.src)
        dst_pod = lab.pod(edge.dst)
        hops = []
        if src_pod.meshed and edge.port not in OUTBOUND_SKIP_PORTS:
            hops.append((src_pod, src_pod, "127.0.0.1", PROXY_OUTBOUND_PORT, "app_to_proxy"))
            hops.append((src_pod, dst_pod, dst_pod.ip, edge.port, "outbound_redirect_reply"))
        inbound_port = lab.service_for(edge)[0].target_port if edge.kind == "service" else edge.port
        if dst_pod.meshed and inbound_port not in INBOUND_SKIP_PORTS:
            hops.append((dst_pod, dst_pod, dst_pod.ip, inbound_port, "proxy_to_app"))
        for pod, peer, dst_ip, port, reason in hops:
            if capture_pod is not None and capture_pod != pod.key:
                continue  # lo is only visible from inside the pod, never on the bridge
            rows[(pod.ip, dst_ip, port)] = dict(
                src_ns=pod.namespace, src_pod=pod.name, src_ip=pod.ip, dst_ns=peer.namespace, dst_pod=peer.name,
                dst_ip=dst_ip, dst_port=port, verdict=PLAINTEXT, status=LOCALHOST, reason=reason,
            )
    return [rows[k] for k in sorted(rows, key=lambda k: (ipaddress.ip_address(k[0]), ipaddress.ip_address(k[1]), k[2]))]


def rows_to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EDGE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
