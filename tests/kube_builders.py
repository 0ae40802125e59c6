"""Builders for crafted ``kubectl get pods -o json`` documents (the pods side of edges tests).

Each pod is built from keyword arguments into the JSON shape the API server returns, so tests state
only what they are about (an IP reused at another time, a native sidecar, an annotation). Times are
RFC 3339 strings or epoch seconds. Standard library only; independent of ``analyzer``.
"""

from __future__ import annotations

import json
import zlib
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


# -- pods as a real Linkerd install writes them ----------------------------------------------------------
def injected_pod(name: str, ip: str, namespace: str = "emojivoto", *, sa: str = "default",
                 deployment: str | None = None, template_hash: str = "6d8f9c7b5d", trust_domain: str = TD,
                 phase: str = "Running", created: str = "2024-05-01T10:00:00Z", status_extra: dict | None = None) -> dict:
    """A pod shaped like the proxy injector's output (Linkerd 2.14+ ``linkerd inject``): ``_l5d_ns`` and
    ``_l5d_trustdomain`` env values that the identity variables expand, the ``linkerd.io/*`` labels and
    annotations, ``linkerd-init`` with its skip ports, probes on the proxy admin port, and a status with
    conditions, container statuses and ``podIPs``."""
    owner = f"{deployment}-{template_hash}" if deployment else None
    labels = {"linkerd.io/control-plane-ns": CP_NS, "linkerd.io/workload-ns": namespace}
    if deployment:
        labels |= {"app": deployment, "pod-template-hash": template_hash, "linkerd.io/proxy-deployment": deployment}
    env = [
        {"name": "_pod_name", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
        {"name": "_pod_ns", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
        {"name": "_pod_nodeName", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
        {"name": "_pod_sa", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.serviceAccountName"}}},
        {"name": "_l5d_ns", "value": CP_NS},
        {"name": "_l5d_trustdomain", "value": trust_domain},
        {"name": "LINKERD2_PROXY_IDENTITY_DIR", "value": "/var/run/linkerd/identity/end-entity"},
        {"name": "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
         "value": "$(_pod_sa).$(_pod_ns).serviceaccount.identity.$(_l5d_ns).$(_l5d_trustdomain)"},
        {"name": "LINKERD2_PROXY_IDENTITY_SVC_NAME",
         "value": "linkerd-identity.$(_l5d_ns).serviceaccount.identity.$(_l5d_ns).$(_l5d_trustdomain)"},
        {"name": "LINKERD2_PROXY_INBOUND_PORTS", "value": "8080"},
    ]
    probe = {"failureThreshold": 3, "httpGet": {"path": "/ready", "port": 4191, "scheme": "HTTP"},
             "initialDelaySeconds": 2, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1}
    proxy = {"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:stable-2.14.10", "env": env,
             "ports": [{"containerPort": 4143, "name": "linkerd-proxy", "protocol": "TCP"},
                       {"containerPort": 4191, "name": "linkerd-admin", "protocol": "TCP"}],
             "livenessProbe": {**probe, "httpGet": {**probe["httpGet"], "path": "/live"}}, "readinessProbe": probe,
             "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsUser": 2102}}
    app = {"name": deployment or name, "image": "docker.l5d.io/buoyantio/emojivoto-web:v11",
           "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
           "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5}}
    init = {"name": "linkerd-init", "image": "cr.l5d.io/linkerd/proxy-init:v2.2.3",
            "args": ["--incoming-proxy-port", "4143", "--outgoing-proxy-port", "4140", "--proxy-uid", "2102",
                     "--inbound-ports-to-ignore", "4190,4191,4567,4568", "--outbound-ports-to-ignore", "4567,4568"]}
    meta = {"name": name, "namespace": namespace, "uid": f"0b6d-{zlib.crc32(f'{namespace}/{name}'.encode()):08x}",
            "creationTimestamp": created, "labels": labels, "resourceVersion": "123456",
            "annotations": {"linkerd.io/created-by": "linkerd/proxy-injector stable-2.14.10",
                            "linkerd.io/inject": "enabled", "linkerd.io/proxy-version": "stable-2.14.10",
                            "linkerd.io/trust-root-sha256": "4f2d3f6c2c5e8a1b"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True,
                                    "kind": "ReplicaSet", "name": owner, "uid": "7e2a"}]
    status = {"phase": phase, "hostIP": NODE_IP, "podIP": ip, "podIPs": [{"ip": ip}], "qosClass": "Burstable",
              "startTime": created,
              "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": created}
                             for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
              "containerStatuses": [{"name": c, "ready": True, "restartCount": 0, "started": True,
                                     "state": {"running": {"startedAt": created}}} for c in ("linkerd-proxy", app["name"])]}
    status |= status_extra or {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [proxy, app], "initContainers": [init], "nodeName": NODE_NAME,
                     "serviceAccountName": sa, "serviceAccount": sa, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
            "status": status}


def evicted_status(at: str) -> dict:
    """What an evicted pod's status looks like: Failed, a reason, no finishedAt anywhere."""
    return {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory.",
            "conditions": [{"type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": at}],
            "containerStatuses": []}


def pods_yaml(*pods: dict) -> str:
    """The same ``List`` as :func:`pods_doc`, as ``kubectl get pods -o yaml`` prints it (needs PyYAML)."""
    import yaml

    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(pods),
                           "metadata": {"resourceVersion": ""}}, sort_keys=True)
