"""Services and EndpointSlices -> which Service a ClusterIP:port was at a time, and who stands behind it.

Input: the ``Service`` and ``EndpointSlice`` items of ``kubectl get pods,services,endpointslices -A -o json``
(one ``List``), handed over by :func:`analyzer.kube.pods.parse_pods_json`.

Rules:
  1. A ClusterIP belongs to one Service at a time: from its ``creationTimestamp`` until the next Service
     with that IP was created (the API server never gives one ClusterIP to two live Services).  A flow
     before every listed owner was created is not attributed to any Service.
  2. Headless Services (``clusterIP: None``) own no address: their clients reach the pods directly.
  3. Endpoints come from EndpointSlices (label ``kubernetes.io/service-name``), matched to a Service port
     by port name; a slice port number is the resolved target port (named target ports included).
     Without any slice for a Service its endpoints are unknown: said in a note, never guessed from
     selectors.
  4. An endpoint naming a pod that is not in the list is kept by address; the pod list resolves it (or
     does not) at the flow's time.  Malformed items raise :class:`~analyzer.kube.pods.PodsFormatError`.
  5. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pods import Peer, PodsFormatError, _ip, _ts

SERVICE_KINDS = ("Service", "EndpointSlice")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # EndpointSlice -> its Service
HEADLESS = "None"


@dataclass(frozen=True, slots=True)
class ServicePort:
    name: str
    port: int
    protocol: str = "TCP"
    target: int | str = 0  # targetPort: a number or a container port name


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    cluster_ips: tuple[str, ...] = ()
    ports: tuple[ServicePort, ...] = ()
    created: float | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    port_name: str
    pod_ref: str = ""  # targetRef ns/name when the slice names a Pod


@dataclass
class ServiceIndex:
    """ClusterIP:port -> Service at a time; Service port -> its endpoints.  Build with :func:`parse_services`."""

    services: tuple[Service, ...] = ()
    endpoints: dict[str, list[Endpoint]] = field(default_factory=dict)  # Service ref -> endpoints of its slices
    notes: list[str] = field(default_factory=list)
    _by_ip: dict[str, list[Service]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for svc in self.services:
            for ip in svc.cluster_ips:
                self._by_ip.setdefault(ip, []).append(svc)
        for owners in self._by_ip.values():
            owners.sort(key=lambda s: s.created if s.created is not None else float("-inf"))

    @property
    def has_cluster_ips(self) -> bool:
        return bool(self._by_ip)

    def is_cluster_ip(self, ip: str) -> bool:
        return ip in self._by_ip

    def lookup(self, ip: str, port: int, ts: float | None) -> tuple[Service, ServicePort] | None:
        """The Service and port ``ip:port`` was at ``ts`` (rule 1), or None."""
        owners = self._by_ip.get(ip)
        if not owners:
            return None
        held = [s for s in owners if ts is None or s.created is None or s.created <= ts]
        if not held:
            return None
        svc = held[-1]
        sport = next((p for p in svc.ports if p.port == port and p.protocol == "TCP"), None)
        return (svc, sport) if sport is not None else None

    def backends(self, svc: Service, sport: ServicePort) -> list[Endpoint] | None:
        """Endpoints of one Service port; None when the list has no EndpointSlice for the Service."""
        endpoints = self.endpoints.get(svc.ref)
        if endpoints is None:
            return None
        return [e for e in endpoints if e.port_name == sport.name]

    def allows(self, svc: Service, sport: ServicePort, ip: str, port: int) -> bool:
        """May a connection to ``svc:sport`` have been DNATed to ``ip:port``?  Only an EndpointSlice says so."""
        return any(e.ip == ip and e.port == port for e in self.backends(svc, sport) or ())


def _bad(where: str, what: str):
    return PodsFormatError(f"{where}: {what}")


def _meta(item: dict, where: str) -> tuple[dict, str, str]:
    meta = item.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise _bad(where, "no metadata.name")
    return meta, str(meta.get("namespace") or "default"), str(meta["name"])


def _port(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 65535:
        raise _bad(where, f"bad port {value!r}")
    return value


def _service(item: dict, where: str, ip_of, ts_of) -> Service:
    meta, ns, name = _meta(item, where)
    where = f"{where} (service {ns}/{name})"
    spec = item.get("spec") or {}
    if not isinstance(spec, dict):
        raise _bad(where, "spec must be an object")
    ips = [spec.get("clusterIP")] + list(spec.get("clusterIPs") or ())
    cluster_ips = tuple(dict.fromkeys(ip_of(ip, f"{where}: spec.clusterIP") for ip in ips
                                      if ip not in (None, "", HEADLESS)))
    ports = []
    for i, p in enumerate(spec.get("ports") or ()):
        if not isinstance(p, dict):
            raise _bad(where, f"spec.ports[{i}] is not an object")
        port = _port(p.get("port"), f"{where}: spec.ports[{i}]")
        target = p.get("targetPort", port)
        if not isinstance(target, str):
            target = _port(target, f"{where}: spec.ports[{i}].targetPort")
        ports.append(ServicePort(str(p.get("name") or ""), port, str(p.get("protocol") or "TCP"), target))
    return Service(ns, name, cluster_ips, tuple(ports), ts_of(meta.get("creationTimestamp"),
                                                               f"{where}: metadata.creationTimestamp"))


def _slice(item: dict, where: str, ip_of) -> tuple[str, list[Endpoint]]:
    meta, ns, name = _meta(item, where)
    where = f"{where} (endpointslice {ns}/{name})"
    owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not owner:
        raise _bad(where, f"no {SERVICE_NAME_LABEL} label: which Service it serves is unknown")
    ports = []
    for i, p in enumerate(item.get("ports") or ()):
        if not isinstance(p, dict):
            raise _bad(where, f"ports[{i}] is not an object")
        if (p.get("protocol") or "TCP") == "TCP":
            ports.append((str(p.get("name") or ""), _port(p.get("port"), f"{where}: ports[{i}]")))
    endpoints = []
    for i, e in enumerate(item.get("endpoints") or ()):
        if not isinstance(e, dict) or not isinstance(e.get("addresses") or [], list):
            raise _bad(where, f"endpoints[{i}] is not an object with an addresses list")
        ref = e.get("targetRef") or {}
        pod_ref = f"{ref.get('namespace') or ns}/{ref.get('name')}" if isinstance(ref, dict) and ref.get("kind") == "Pod" else ""
        for address in e.get("addresses") or ():
            ip = ip_of(address, f"{where}: endpoints[{i}].addresses")
            endpoints += [Endpoint(ip, port, port_name, pod_ref) for port_name, port in ports]
    return f"{ns}/{owner}", endpoints


def parse_services(items: list[tuple[int, dict]], source: str, pods) -> ServiceIndex:
    """``(index, item)`` of the List's Service and EndpointSlice items -> :class:`ServiceIndex`.

    ``pods`` (the list's :class:`~analyzer.kube.pods.PodIndex`) only checks that slices name known pods.
    """
    services, endpoints, notes = [], {}, []
    for i, item in items:
        where = f"{source}: items[{i}]"
        if item.get("kind") == "Service":
            services.append(_service(item, where, _ip, _ts))
        else:
            owner, found = _slice(item, where, _ip)
            endpoints.setdefault(owner, []).extend(found)
    known = {f"{p.namespace}/{p.name}" for p in pods.pods}
    unknown = sorted({e.pod_ref for eps in endpoints.values() for e in eps if e.pod_ref and e.pod_ref not in known})
    if unknown:
        notes.append(f"{source}: EndpointSlices name {len(unknown)} pod(s) not in the list ({', '.join(unknown[:3])}"
                     f"{', ...' if len(unknown) > 3 else ''}); their addresses are resolved by IP")
    blind = sorted(s.ref for s in services if s.cluster_ips and s.ref not in endpoints)
    if blind:
        notes.append(f"{source}: no EndpointSlice for {len(blind)} Service(s) ({', '.join(blind[:3])}"
                     f"{', ...' if len(blind) > 3 else ''}): who stands behind them is unknown "
                     "(kubectl get pods,services,endpointslices -A -o json)")
    return ServiceIndex(tuple(services), endpoints, notes)


def service_peer(flow: dict, pods, ts: float, svc: Service, sport: ServicePort):
    """The ``service`` peer a flow to ``svc:sport`` reached.  Its ``pod`` stands for the endpoints when
    that is a fact: the pod the connection was joined with after DNAT, or the one answer all endpoints
    give (same mesh membership and identity); otherwise ``pod`` is None and the note says why."""
    ip = svc.cluster_ips[0]
    peer = dict(kind="service", ip=ip, name=svc.name, namespace=svc.namespace)
    if flow["service_ip"] and flow["server_ip"] != flow["service_ip"]:  # joined with its post-DNAT side
        behind = pods.resolve(flow["server_ip"], ts)
        if behind.kind == "pod":
            return Peer(pod=behind.pod, **peer)
        return Peer(note=f"{svc.ref} reached {flow['server_ip']}, which is not a listed pod", **peer)
    backends = pods.services.backends(svc, sport)
    if backends is None:
        return Peer(note=f"no EndpointSlice for {svc.ref} in the pod list: its endpoints are unknown", **peer)
    resolved = [pods.resolve(e.ip, ts) for e in backends]
    found = [r.pod for r in resolved if r.kind == "pod"]
    if not resolved or len(found) != len(resolved):
        return Peer(note=f"{svc.ref}:{sport.port}: {len(resolved) - len(found)} of {len(resolved)} endpoints "
                         "are not listed pods at the flow's time", **peer)
    answers = {(p.meshed, p.identity) for p in found}
    if len(answers) > 1:
        return Peer(note=f"{svc.ref}:{sport.port}: its endpoints differ in mesh membership or identity", **peer)
    return Peer(pod=min(found, key=lambda p: p.ref), **peer)
