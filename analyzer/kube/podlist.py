"""Reading a pod list: ``kubectl get pods -A -o json`` or ``-o yaml`` (a ``List``/``PodList``, or one ``Pod``,
also with the Services and EndpointSlices of ``kubectl get pods,services,endpointslices``), or the ``-o wide``
text table, into a :class:`~analyzer.kube.pods.PodIndex`.

Rules:
  1. Strict: every field read is type-checked (:class:`_Node`), so a wrong type is one
     :class:`~analyzer.kube.pods.PodsFormatError` naming the source, the item and the field, never a
     traceback; deep nesting is one error too.  A list without pods names the kinds it holds.
  2. The same pod listed twice is one pod, with a note; Services and EndpointSlices go to the Service
     index (``services``); other kinds are counted in a note.
  3. Standard library only; PyYAML is imported for a YAML list only.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from collections import Counter
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .pods import (
    CONTROL_PLANE_LABEL, DEFAULT_TRUST_DOMAIN, IDENTITY_ENV, IDENTITY_MARK, IDENTITY_SVC_ENV, INIT_SKIP_FLAGS,
    PROXY_CONTAINER, PROXY_DEPLOYMENT_LABEL, PROXY_VERSION_KEY, SKIP_INBOUND_ANNOTATION, SKIP_OUTBOUND_ANNOTATION,
    TEMPLATE_HASH_LABEL, TERMINAL_PHASES, Pod, PodIndex, PodsFormatError, Ports, _ip, _pod_key, _ts,
)
from .services import SERVICE_KINDS, parse_services
from ..jsonstream import JSON_CHUNK, read_object
from .streams import (
    EXPECTED_OUTPUT, ITEM, ITEMS, YamlBuilder, YamlFallback, pod_json_stream, yaml_entries, yaml_loader,
)


# -- typed access ----------------------------------------------------------------------------------------
_EXPECTED = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer"}


def _kind_of(value) -> str:
    """What a JSON/YAML value is, in the words of an error line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return _EXPECTED.get(type(value), type(value).__name__)


class _Node:
    """One object inside a pod item: every read checks the type and names the item and the field.

    ``where`` names the item (``pods.json: items[3] (ns/name)``), ``path`` the object inside it
    (``spec.containers[1]``).  A missing or null field is the default; a present one of another type is
    a :class:`PodsFormatError`, never a traceback further down.
    """

    __slots__ = ("data", "where", "parent", "key", "index")

    def __init__(self, data: dict, where: str, parent: _Node | None = None, key: str = "", index: int = -1) -> None:
        self.data, self.where, self.parent, self.key, self.index = data, where, parent, key, index

    @property
    def path(self) -> str:
        """Where this object is in the item, spelt out only for an error: most pods have none."""
        if self.parent is None:
            return ""
        path = self.parent.field(self.key)
        return path if self.index < 0 else f"{path}[{self.index}]"

    def field(self, key: str) -> str:
        path = self.path
        return f"{path}.{key}" if path else key

    def wrong(self, field: str, value, *types: type) -> PodsFormatError:
        expected = " or ".join(_EXPECTED[t] for t in types)
        return PodsFormatError(f"{self.where}: {field} is {_kind_of(value)}, expected {expected}")

    def get(self, key: str, *types: type, default=None):
        value = self.data.get(key)
        if value is None:
            return default
        if value.__class__ not in types and (not isinstance(value, types) or isinstance(value, bool)):
            raise self.wrong(self.field(key), value, *types)
        return value

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        return value if value.__class__ is str else self.get(key, str, default=default)

    def obj(self, key: str) -> _Node:
        return _Node(self.get(key, dict, default={}), self.where, self, key)

    def objs(self, key: str) -> list[_Node]:
        out = []
        for i, item in enumerate(self.get(key, list, default=[])):
            if item.__class__ is not dict and not isinstance(item, dict):
                raise self.wrong(f"{self.field(key)}[{i}]", item, dict)
            out.append(_Node(item, self.where, self, key, i))
        return out

    def texts(self, key: str) -> list[str]:
        values = self.get(key, list, default=[])
        for i, item in enumerate(values):
            if not isinstance(item, str):
                raise self.wrong(f"{self.field(key)}[{i}]", item, str)
        return values

    def text_map(self, key: str) -> dict[str, str]:
        """Labels and annotations: an object of strings."""
        values = self.get(key, dict, default={})
        for k, v in values.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise self.wrong(f"{self.field(key)}[{k!r}]", v if isinstance(k, str) else k, str)
        return values


# -- JSON ----------------------------------------------------------------------------------------------


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


def _container_env(container: _Node, fields: dict[str, str]) -> dict[str, str]:
    """The container's env as the kubelet would set it: literal values (expanded in order) and fieldRefs."""
    env: dict[str, str] = {}
    for entry in container.objs("env"):
        name = entry.text("name")
        value = entry.get("value", str)
        if not name:
            continue
        if value is not None:
            env[name] = _expand(value, env)
        else:
            ref = entry.obj("valueFrom").obj("fieldRef").text("fieldPath")
            if ref in fields:
                env[name] = fields[ref]
    return env


def _skip_from_init(init_containers: list[_Node], where: str) -> tuple[Ports, Ports]:
    inbound: list = []
    outbound: list = []
    for c in init_containers:
        if c.text("name") != "linkerd-init":
            continue
        args = c.texts("args")
        for i, arg in enumerate(args):
            flag, eq, value = arg.partition("=")
            if flag in INIT_SKIP_FLAGS:
                if not eq:
                    value = args[i + 1] if i + 1 < len(args) else ""
                target = inbound if INIT_SKIP_FLAGS[flag] == "in" else outbound
                target.extend(parse_ports(value, f"{where}: linkerd-init {flag}"))
    return tuple(inbound), tuple(outbound)


PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
PROBE_HANDLERS = ("httpGet", "tcpSocket", "grpc")


def _probe_ports(containers: list[_Node]) -> frozenset[int]:
    ports: set[int] = set()
    for c in containers:
        named = {p.text("name"): p.get("containerPort", int) for p in c.objs("ports")}
        for kind in PROBES:
            if c.data.get(kind) is None:  # most containers have one probe or none: skip the rest cheaply
                continue
            probe = c.obj(kind)
            for handler in PROBE_HANDLERS:
                if probe.data.get(handler) is None:
                    continue
                port = probe.obj(handler).get("port", int, str)
                if isinstance(port, str):
                    port = int(port) if port.isdigit() else named.get(port)
                if port is not None:
                    ports.add(port)
    return frozenset(ports)


def _owner(meta: _Node, labels: dict[str, str]) -> tuple[str, str]:
    """Rollup owner: ReplicaSet -> Deployment through pod-template-hash (or the injector's label)."""
    refs = meta.objs("ownerReferences")
    ref = next((r for r in refs if r.get("controller", bool)), refs[0] if refs else None)
    if ref is None:
        deployment = labels.get(PROXY_DEPLOYMENT_LABEL)
        return ("deployment", deployment) if deployment else ("pod", meta.text("name"))
    kind, name = ref.text("kind"), ref.text("name")
    if kind == "ReplicaSet":
        template_hash = labels.get(TEMPLATE_HASH_LABEL)
        if template_hash and name.endswith("-" + template_hash):
            return "deployment", name[: -len(template_hash) - 1]
        deployment = labels.get(PROXY_DEPLOYMENT_LABEL)
        if deployment and name.startswith(deployment + "-"):
            return "deployment", deployment
        return "replicaset", name
    return (kind.lower() or "pod"), name


CONTAINER_STATUSES = ("containerStatuses", "initContainerStatuses")


def _time_at(node: _Node, key: str) -> float | None:
    """A timestamp field (a string, RFC 3339) as epoch seconds; None when absent."""
    return _ts(node.get(key, str), f"{node.where}: {node.field(key)}")


def _end_of_terminal(status: _Node, created: float | None) -> float:
    """When a finished pod let its IP go: its last container's ``finishedAt``; without one (evicted,
    never started, trimmed by the dump), the last time the status knows of; failing that, its creation
    (epoch 0 if unknown).  Linkerd's destination controller ignores terminal pods altogether."""
    containers = [s for key in CONTAINER_STATUSES for s in status.objs(key)]
    finished = [_time_at(s.obj("state").obj("terminated"), "finishedAt") for s in containers]
    known = [_time_at(status, "startTime")]
    for s in containers:
        for state in (s.obj("state"), s.obj("lastState")):
            known += [_time_at(state.obj("terminated"), "startedAt"), _time_at(state.obj("terminated"), "finishedAt"),
                      _time_at(state.obj("running"), "startedAt")]
    known += [_time_at(c, key) for c in status.objs("conditions") for key in ("lastTransitionTime", "lastProbeTime")]
    for times in (finished, known, [created]):
        times = [t for t in times if t is not None]
        if times:
            return max(times)
    return 0.0


def _pod_from_json(obj: dict, where: str, trust_domain: str) -> Pod:
    item = _Node(obj, where)
    meta = item.obj("metadata")
    name = meta.text("name")
    if not name:
        raise PodsFormatError(f"{where}: no metadata.name")
    meta.where = f"{where} ({name})"
    ns = meta.text("namespace") or "default"
    where = item.where = meta.where = f"{where} ({ns}/{name})"
    spec, status = item.obj("spec"), item.obj("status")
    labels = meta.text_map("labels")
    annotations = meta.text_map("annotations")
    containers, inits = spec.objs("containers"), spec.objs("initContainers")
    sa = spec.text("serviceAccountName") or spec.text("serviceAccount") or "default"
    node_name = spec.text("nodeName")

    proxy = next((c for c in containers if c.text("name") == PROXY_CONTAINER), None)
    native = False
    if proxy is None:
        # Native sidecar (Kubernetes 1.29+, Linkerd's default from 2.20): an init container that keeps
        # running because its restartPolicy is Always.  A plain init linkerd-proxy would have exited.
        proxy = next((c for c in inits if c.text("name") == PROXY_CONTAINER and c.text("restartPolicy") == "Always"),
                     None)
        native = proxy is not None
    cp_ns = labels.get(CONTROL_PLANE_LABEL, "")
    meshed = bool(cp_ns) and proxy is not None

    identity = ""
    if proxy is not None and meshed:
        fields = {"metadata.name": name, "metadata.namespace": ns, "spec.serviceAccountName": sa,
                  "spec.nodeName": node_name}
        env = _container_env(proxy, fields)
        local = env.get(IDENTITY_ENV, "")
        if local and "$(" not in local:
            identity = local
        else:
            svc = env.get(IDENTITY_SVC_ENV, "")
            td = svc.partition(f"{IDENTITY_MARK}{cp_ns}.")[2] if IDENTITY_MARK in svc else ""
            identity = f"{sa}.{ns}{IDENTITY_MARK}{cp_ns}.{td or trust_domain}"

    ips = []
    for entry in status.objs("podIPs"):
        if entry.text("ip"):
            ips.append(_ip(entry.text("ip"), f"{where}: status.podIPs"))
    if status.text("podIP"):
        ip = _ip(status.text("podIP"), f"{where}: status.podIP")
        if ip not in ips:
            ips.insert(0, ip)
    host_ip = _ip(status.text("hostIP"), f"{where}: status.hostIP") if status.text("hostIP") else ""

    created, ended = _time_at(meta, "creationTimestamp"), _time_at(meta, "deletionTimestamp")
    phase = status.text("phase")
    if phase in TERMINAL_PHASES:
        # A finished pod keeps status.podIP, but the IP went back to the pool when its sandbox stopped.
        finished = _end_of_terminal(status, created)
        ended = min(ended, finished) if ended is not None else finished

    skip_in, skip_out = _skip_from_init(inits, where)
    ann_in = parse_ports(annotations.get(SKIP_INBOUND_ANNOTATION, ""), f"{where}: {SKIP_INBOUND_ANNOTATION}")
    ann_out = parse_ports(annotations.get(SKIP_OUTBOUND_ANNOTATION, ""), f"{where}: {SKIP_OUTBOUND_ANNOTATION}")
    owner_kind, owner_name = _owner(meta, labels)
    return Pod(
        namespace=ns, name=name, uid=meta.text("uid"), ips=tuple(ips),
        node=node_name, host_ip=host_ip, host_network=spec.get("hostNetwork", bool, default=False),
        phase=phase, created=created, ended=ended, service_account=sa, meshed=meshed, native_sidecar=native,
        identity=identity, control_plane_ns=cp_ns, owner_kind=owner_kind, owner_name=owner_name,
        containers=tuple(c.text("name") for c in containers + inits),
        skip_inbound=skip_in + ann_in, skip_outbound=skip_out + ann_out,
        skip_inbound_annotated=ann_in, skip_outbound_annotated=ann_out,
        probe_ports=_probe_ports(containers + inits),
        proxy_version=str(annotations.get(PROXY_VERSION_KEY) or labels.get(PROXY_VERSION_KEY) or ""), source="json",
    )




class _Items:
    """The items of a list, taken one at a time (so a streamed list is never held whole): pods are read
    into :class:`Pod` at once, Services and EndpointSlices kept for the Service index, other kinds counted."""

    def __init__(self, source: str, trust_domain: str) -> None:
        self.source, self.trust_domain = source, trust_domain
        self.pods: dict[tuple[str, str, str], Pod] = {}
        self.positions: dict[tuple[str, str, str], list[int]] = {}
        self.others: Counter[str] = Counter()
        self.service_items: list[tuple[int, dict]] = []
        self.count = 0

    def add(self, item) -> None:
        i = self.count
        self.count += 1
        if not isinstance(item, dict):
            raise PodsFormatError(f"{self.source}: items[{i}] is not an object")
        kind = item.get("kind", "Pod")
        if not isinstance(kind, str):
            raise _Node(item, f"{self.source}: items[{i}]").wrong("kind", kind, str)
        if kind in SERVICE_KINDS:
            self.service_items.append((i, item))
            return
        if kind != "Pod":
            self.others[kind] += 1
            return
        pod = _pod_from_json(item, f"{self.source}: items[{i}]", self.trust_domain)
        key = _pod_key(pod)
        self.pods[key] = pod  # a later copy of the same pod wins, as in :meth:`PodIndex.merged`
        self.positions.setdefault(key, []).append(i)

    def index(self) -> PodIndex:
        """The same pod listed twice is one pod; a list without pods is an error naming what it holds."""
        pods, source, others = self.pods, self.source, self.others
        if not pods:
            held_kinds = others + Counter(item.get("kind") for _, item in self.service_items)
            held = ", ".join(f"{n} {k}" for k, n in sorted(held_kinds.items())) if held_kinds else "nothing"
            raise PodsFormatError(f"{source}: no pods in the list (it holds {held}); {EXPECTED_OUTPUT}")
        for key, where in self.positions.items():
            if len(where) > 1:
                note = (f"{pods[key].ref} is listed {len(where)} times (items {', '.join(map(str, where))}); "
                        f"read as one pod, the last copy")
                pods[key] = replace(pods[key], notes=pods[key].notes + (note,))
        index = PodIndex(tuple(pods.values()), source)
        if self.service_items:
            index.services = parse_services(self.service_items, source, index)
            index.notes += index.services.notes
        if others:
            index.notes.append(f"{source}: ignored {sum(others.values())} item(s) of other kinds "
                               f"({', '.join(f'{k} {n}' for k, n in sorted(others.items()))})")
        return index


def _index_from_doc(doc, source: str, trust_domain: str, fmt: str, items: _Items | None = None) -> PodIndex:
    """A parsed ``List``/``PodList`` or ``Pod`` -> :class:`PodIndex`.  ``items``: the list's items, already
    taken one by one while the document streamed in (its ``items`` key then holds an empty list)."""
    if not isinstance(doc, dict):
        raise PodsFormatError(f"{source}: expected {fmt} object (kind List or Pod), got {_kind_of(doc)}")
    if doc.get("kind") == "Pod":
        items = _Items(source, trust_domain)
        items.add(doc)
    elif isinstance(doc.get("items"), list):
        if items is None:
            items = _Items(source, trust_domain)
            for item in doc["items"]:
                items.add(item)
    else:
        raise PodsFormatError(f"{source}: no 'items' list (kind {doc.get('kind', 'missing')!r}); {EXPECTED_OUTPUT}")
    return items.index()


def parse_pods_json(text: str, source: str = "pods", trust_domain: str = DEFAULT_TRUST_DOMAIN) -> PodIndex:
    """``kubectl get pods [-A] -o json`` output -> :class:`PodIndex`.  Services and EndpointSlices in a
    List go to its Service index; a list without pods is an error naming what it holds."""
    return _read_json(io.StringIO(text), source, trust_domain)


def _read_json(f, source: str, trust_domain: str) -> PodIndex:
    """A JSON pod list from a text stream: the top-level object key by key, the elements of its ``items``
    list one at a time into :class:`_Items` -- never the whole document in memory."""
    items = None

    def new_items() -> Callable[[object], None]:
        nonlocal items
        items = _Items(source, trust_domain)
        return items.add

    doc = read_object(pod_json_stream(f, source), {"items": new_items})
    return _index_from_doc(doc, source, trust_domain, "a JSON", items)


def parse_pods_yaml(text, source: str = "pods", trust_domain: str = DEFAULT_TRUST_DOMAIN) -> PodIndex:
    """``kubectl get pods [-A] -o yaml`` output (text, or a text stream that can seek) -> :class:`PodIndex`
    (needs PyYAML).

    Timestamps stay strings (as in JSON), so ``creationTimestamp`` is read by the same rule either way.
    The ``items`` list is read one item at a time into :class:`_Items`, so memory is the pods kept, not the
    document as Python objects: line by line when the list is block YAML as kubectl writes it
    (:func:`~analyzer.kube.streams.yaml_entries`), else from the start by the YAML parser's events.
    """
    try:
        import yaml
    except ModuleNotFoundError:
        raise PodsFormatError(f"{source}: reading YAML needs PyYAML (pip install pyyaml); "
                              "or give `kubectl get pods -A -o json` output") from None

    stream = io.StringIO(text) if isinstance(text, str) else text
    try:
        read = _read_yaml_entries(stream, yaml, source, trust_domain)
        if read is None:  # outside the ``try`` that caught the fallback: what it had read is freed by now
            stream.seek(0)
            read = _read_yaml_events(stream, yaml, source, trust_domain)
        doc, items = read
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        if "nesting depth" in problem:  # the libyaml of PyYAML 6.0.4 wheels has its own limit: the same error
            raise PodsFormatError(f"{source}: YAML nested too deeply to be a pod list") from None
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise PodsFormatError(f"{source}: not valid YAML ({problem}{at}); {EXPECTED_OUTPUT}") from None
    except RecursionError:
        raise PodsFormatError(f"{source}: YAML nested too deeply to be a pod list") from None
    return _index_from_doc(doc, source, trust_domain, "a YAML", items)


def _read_yaml_entries(f, yaml, source: str, trust_domain: str) -> tuple | None:
    """(document, items taken as they streamed or None) from the line reader, as :func:`_stream_yaml`
    builds them; None when it cannot read the document (:class:`~analyzer.kube.streams.YamlFallback`)."""
    doc: dict = {}
    items = None
    try:
        for kind, value in yaml_entries(f, yaml):
            if kind is ITEM:
                items.add(value)
            elif kind is ITEMS:
                items = _Items(source, trust_domain)  # a repeated key: the last one counts
                doc["items"] = []
            else:
                for key, entry in value.items():
                    if key == "items" and isinstance(entry, list):  # ``items: []``: streamed, as by the events
                        items = _Items(source, trust_domain)
                        for item in entry:
                            items.add(item)
                        entry = []
                    doc[key] = entry
    except YamlFallback:
        return None
    return doc, items


def _read_yaml_events(f, yaml, source: str, trust_domain: str) -> tuple:
    loader = yaml_loader(yaml)(f)
    try:
        return _stream_yaml(loader, yaml, source, trust_domain)
    finally:
        loader.dispose()


def _stream_yaml(loader, yaml, source: str, trust_domain: str) -> tuple:
    """(document, items taken as they streamed or None): ``yaml.safe_load``, but a top-level mapping is
    built key by key and its ``items`` sequence item by item (:class:`~analyzer.kube.streams.YamlBuilder`)."""
    events = yaml.events
    build = YamlBuilder(loader, yaml)
    loader.get_event()  # StreamStart
    if loader.check_event(events.StreamEndEvent):
        return None, None
    loader.get_event()  # DocumentStart
    items = None
    if not loader.check_event(events.MappingStartEvent) or loader.peek_event().anchor is not None:
        doc = build.value()
    else:
        loader.get_event()
        doc = {}
        while not loader.check_event(events.MappingEndEvent):
            key = build.value()
            if isinstance(key, (dict, list)):
                raise yaml.constructor.ConstructorError("while constructing a mapping", None, "found unhashable key",
                                                        loader.peek_event().start_mark)
            if key == "items" and loader.check_event(events.SequenceStartEvent) and loader.peek_event().anchor is None:
                loader.get_event()
                items = _Items(source, trust_domain)  # a repeated key: the last one counts
                doc[key] = []
                while not loader.check_event(events.SequenceEndEvent):
                    items.add(build.value())
                loader.get_event()
            else:
                doc[key] = build.value()
        loader.get_event()
    loader.get_event()  # DocumentEnd
    if not loader.check_event(events.StreamEndEvent):
        event = loader.get_event()
        raise yaml.composer.ComposerError("expected a single document in the stream", None,
                                          "but found another document", event.start_mark)
    return doc, items


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
        raise PodsFormatError(f"{source}: not `kubectl get pods -o json`, `-o yaml` or `-o wide` output "
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
    """JSON if the text starts with ``{``/``[``, the ``-o wide`` table if it starts with its header, else YAML."""
    fmt = _format_of(text, source)
    if fmt == "json":
        return parse_pods_json(text, source, trust_domain)
    if fmt == "yaml":
        return parse_pods_yaml(text, source, trust_domain)
    return parse_pods_wide(text, source)


def _format_of(start: str, source: str) -> str:
    """json | yaml | wide, from the first characters of a pod list (an empty one is an error)."""
    stripped = start.lstrip()
    if not stripped:
        raise PodsFormatError(f"{source}: empty file; {EXPECTED_OUTPUT}")
    if stripped[0] in "{[":
        return "json"
    if _YAML_START.match(stripped) and not _WIDE_START.match(stripped):
        return "yaml"
    return "wide"


_WIDE_START = re.compile(r"NAME(SPACE)?\s")
_YAML_START = re.compile(r"(---|#|[\w\"'./-]+:(\s|$))")


def load_pods(path: str | Path, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> PodIndex:
    """Read and parse a pod list file; an unreadable file is a :class:`PodsFormatError` too.  JSON is read
    as it streams in (:func:`_read_json`), so a large list costs the pods kept, not its text."""
    source = str(path)
    try:
        with open(path, encoding="utf-8") as f, ExitStack() as stack:
            first = f.read(JSON_CHUNK)
            while first and not first.strip() and (more := f.read(JSON_CHUNK)):
                first += more
            fmt = _format_of(first, source)
            if fmt == "json":
                return _read_json(_Prefixed(first, f), source, trust_domain)
            if fmt == "yaml":
                return parse_pods_yaml(_rewound(first, f, stack), source, trust_domain)
            text = first + f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PodsFormatError(f"{path}: cannot read the pod list: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_pods_wide(text, source)


def _rewound(head: str, f, stack: ExitStack):
    """``f`` from its start, ``head`` being what was read of it: ``f`` itself when it can seek, else (a pipe)
    a temporary file holding the whole stream (closed with ``stack``)."""
    if f.seekable():
        f.seek(0)
        return f
    spool = stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))
    spool.write(head)
    shutil.copyfileobj(f, spool, JSON_CHUNK)
    spool.seek(0)
    return spool


class _Prefixed:
    """A text stream that gives ``head`` back before the rest of ``f``."""

    def __init__(self, head: str, f) -> None:
        self.head, self.f = head, f

    def read(self, n: int) -> str:
        if self.head:
            out, self.head = self.head, ""
            return out
        return self.f.read(n)


# kubectl's resource names and short names -> the owner kinds of :func:`_owner`.
