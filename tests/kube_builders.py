"""Builders for crafted ``kubectl get pods -o json`` documents (the pods side of edges tests).

Each pod is built from keyword arguments into the JSON shape the API server returns, so tests state
only what they are about (an IP reused at another time, a native sidecar, an annotation). Times are
RFC 3339 strings or epoch seconds. Standard library only; independent of ``analyzer``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

CP_NS = "linkerd"
TD = "cluster.local"
NODE_IP = "10.42.0.1"
NODE_NAME = "node-a"


def rfc3339(ts: float | str | None) -> str | None:
    if ts is None or isinstance(ts, str):
        return ts
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def proxy_container(native: bool = False, identity_env: str | None = "default", env: list | None = None) -> dict:
    """``linkerd-proxy`` with the injector's env; ``identity_env=None`` leaves LOCAL_NAME out."""
    entries = [
        {"name": "_pod_name", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "_pod_ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "_pod_sa", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
    ]
    if identity_env == "default":
        identity_env = f"$(_pod_sa).$(_pod_ns).serviceaccount.identity.{CP_NS}.{TD}"
    if identity_env is not None:
        entries.append({"name": "LINKERD2_PROXY_IDENTITY_LOCAL_NAME", "value": identity_env})
    entries += env or []
    container = {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-25.4.4", "env": entries,
                 "livenessProbe": {"httpGet": {"path": "/live", "port": 4191}},
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": 4191}}}
    if native:
        container["restartPolicy"] = "Always"
    return container


def pod(name: str, ip: str | None, namespace: str = "emojivoto", *, meshed: bool = True, native: bool = False,
        sa: str | None = None, created: float | str | None = "2020-01-01T00:00:00Z",
        deleted: float | str | None = None, phase: str = "Running", finished: float | str | None = None,
        owner: tuple[str, str] | None = None, template_hash: str | None = None, labels: dict | None = None,
        annotations: dict | None = None, host_network: bool = False, host_ip: str = NODE_IP,
        debug: bool = False, identity_env: str | None = "default", proxy_env: list | None = None,
        app_port: int = 8080, init_skip: str | None = "4190,4191,4567,4568", uid: str | None = None,
        proxy_label: bool | None = None) -> dict:
    """One pod object. ``meshed`` adds the control-plane label and the proxy (``native``: as an init
    container with restartPolicy Always); ``proxy_label`` overrides whether the label is set."""
    labels = dict(labels or {})
    if template_hash:
        labels["pod-template-hash"] = template_hash
    if (meshed if proxy_label is None else proxy_label):
        labels["linkerd.io/control-plane-ns"] = CP_NS
    app = {"name": "app", "image": "example.invalid/app:1",
           "ports": [{"containerPort": app_port, "name": "http"}],
           "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}}}
    containers, inits = [app], []
    if meshed:
        inits.append({"name": "linkerd-init", "args": ["--inbound-ports-to-ignore", init_skip or "",
                                                       "--outbound-ports-to-ignore", "4567,4568"]}
                     if init_skip is not None else {"name": "linkerd-init", "args": []})
        proxy = proxy_container(native, identity_env, proxy_env)
        if native:
            inits.append(proxy)
        else:
            containers.insert(0, proxy)
    if debug:
        containers.append({"name": "linkerd-debug", "image": "cr.l5d.io/linkerd/debug:edge-25.4.4"})
    meta = {"name": name, "namespace": namespace, "uid": uid or f"uid-{namespace}-{name}",
            "creationTimestamp": rfc3339(created), "labels": labels, "annotations": dict(annotations or {})}
    if deleted is not None:
        meta["deletionTimestamp"] = rfc3339(deleted)
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "controller": True}]
    spec = {"containers": containers, "nodeName": NODE_NAME}
    if inits:
        spec["initContainers"] = inits
    if sa is not None:
        spec["serviceAccountName"] = sa
    if host_network:
        spec["hostNetwork"] = True
    status = {"phase": phase, "hostIP": host_ip}
    if ip is not None:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    if finished is not None:
        status["containerStatuses"] = [{"name": "app", "state": {"terminated": {"finishedAt": rfc3339(finished),
                                                                                "exitCode": 0}}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def pods_doc(*pods: dict) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(pods), "metadata": {"resourceVersion": ""}},
                      indent=2)


def write_pods(path: Path, *pods: dict) -> Path:
    path.write_text(pods_doc(*pods))
    return path
