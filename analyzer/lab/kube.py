"""Render the lab's pods as ``kubectl get pods -A -o json`` would print them.

What an analyzer reads from it (reference: "Reading mesh membership and identity"): namespace, name,
labels (``linkerd.io/control-plane-ns``, ``linkerd.io/proxy-deployment``, ``pod-template-hash``),
ownerReferences to the ReplicaSet, creationTimestamp, ``spec.serviceAccountName``, the ``linkerd-proxy``
container (in ``spec.initContainers`` with ``restartPolicy: Always`` for native sidecars) and its
``LINKERD2_PROXY_IDENTITY_LOCAL_NAME`` env, ``status.podIP(s)``/``hostIP``, phase Running. Pure function of
the :class:`~analyzer.lab.topology.Lab`; no I/O.
"""

from __future__ import annotations

import json
import uuid

from analyzer.lab.topology import (
    CONTROL_PLANE_NS, INBOUND_SKIP_PORTS, NODE_NAMES, OUTBOUND_SKIP_PORTS, PROXY_ADMIN_PORT, PROXY_INBOUND_PORT,
    PROXY_OUTBOUND_PORT, TRUST_DOMAIN, Lab, Pod,
)

PROXY_VERSION = "edge-25.4.4"
PROXY_IMAGE = "cr.l5d.io/linkerd/proxy"
NODE_NAME = NODE_NAMES[0]


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mtlslab/" + "/".join(parts)))


def _env_field(name: str, path: str) -> dict:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def proxy_container(lab: Lab, pod: Pod, native: bool) -> dict:
    ports = ",".join(str(p) for p in pod.tcp_ports)
    container = {
        "name": "linkerd-proxy",
        "image": f"{PROXY_IMAGE}:{PROXY_VERSION}",
        "imagePullPolicy": "IfNotPresent",
        "env": [
            _env_field("_pod_name", "metadata.name"),
            _env_field("_pod_ns", "metadata.namespace"),
            _env_field("_pod_nodeName", "spec.nodeName"),
            _env_field("_pod_sa", "spec.serviceAccountName"),
            {"name": "LINKERD2_PROXY_INBOUND_LISTEN_ADDR", "value": f"0.0.0.0:{PROXY_INBOUND_PORT}"},
            {"name": "LINKERD2_PROXY_OUTBOUND_LISTEN_ADDR", "value": f"127.0.0.1:{PROXY_OUTBOUND_PORT}"},
            {"name": "LINKERD2_PROXY_ADMIN_LISTEN_ADDR", "value": f"0.0.0.0:{PROXY_ADMIN_PORT}"},
            {"name": "LINKERD2_PROXY_INBOUND_PORTS", "value": ports},
            {"name": "LINKERD2_PROXY_OUTBOUND_TRANSPORT_MODE", "value": lab.mode},
            {"name": "LINKERD2_PROXY_IDENTITY_DIR", "value": "/var/run/linkerd/identity/end-entity"},
            {"name": "LINKERD2_PROXY_IDENTITY_LOCAL_NAME",
             "value": f"$(_pod_sa).$(_pod_ns).serviceaccount.identity.{CONTROL_PLANE_NS}.{TRUST_DOMAIN}"},
            {"name": "LINKERD2_PROXY_IDENTITY_SVC_NAME",
             "value": f"linkerd-identity.{CONTROL_PLANE_NS}.serviceaccount.identity.{CONTROL_PLANE_NS}.{TRUST_DOMAIN}"},
            {"name": "LINKERD2_PROXY_DESTINATION_SVC_NAME",
             "value": f"linkerd-destination.{CONTROL_PLANE_NS}.serviceaccount.identity.{CONTROL_PLANE_NS}.{TRUST_DOMAIN}"},
        ],
        "ports": [{"containerPort": PROXY_INBOUND_PORT, "name": "linkerd-proxy", "protocol": "TCP"},
                  {"containerPort": PROXY_ADMIN_PORT, "name": "linkerd-admin", "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/live", "port": PROXY_ADMIN_PORT, "scheme": "HTTP"},
                          "initialDelaySeconds": 10, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": PROXY_ADMIN_PORT, "scheme": "HTTP"},
                           "initialDelaySeconds": 2, "periodSeconds": 10},
        "securityContext": {"runAsUser": 2102, "runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True},
    }
    if native:
        container["restartPolicy"] = "Always"
    return container


def init_container() -> dict:
    return {
        "name": "linkerd-init",
        "image": "cr.l5d.io/linkerd/proxy-init:v2.4.2",
        "args": ["--ipv6=false", "--incoming-proxy-port", str(PROXY_INBOUND_PORT),
                 "--outgoing-proxy-port", str(PROXY_OUTBOUND_PORT), "--proxy-uid", "2102",
                 "--inbound-ports-to-ignore", ",".join(str(p) for p in INBOUND_SKIP_PORTS),
                 "--outbound-ports-to-ignore", ",".join(str(p) for p in OUTBOUND_SKIP_PORTS)],
        "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}, "runAsUser": 0},
    }


def _status_container(name: str, image: str, started: str) -> dict:
    return {"name": name, "image": image, "ready": True, "restartCount": 0, "started": True,
            "state": {"running": {"startedAt": started}}}


def pod_object(lab: Lab, pod: Pod) -> dict:
    app_image = f"docker.l5d.io/buoyantio/emojivoto-{pod.key}:v11" if pod.namespace == "emojivoto" \
        else f"example.invalid/{pod.container}:1.0"
    app = {"name": pod.container, "image": app_image, "imagePullPolicy": "IfNotPresent",
           "ports": [{"containerPort": p, "name": f"tcp-{p}", "protocol": "TCP"} for p in pod.tcp_ports]
           + [{"containerPort": p, "name": f"udp-{p}", "protocol": "UDP"} for p in pod.udp_ports]}
    if 8080 in pod.tcp_ports or 8181 in pod.tcp_ports:
        port = 8080 if 8080 in pod.tcp_ports else 8181
        app["readinessProbe"] = {"httpGet": {"path": "/ready", "port": port, "scheme": "HTTP"},
                                 "periodSeconds": 10}
    labels = {"app": pod.key, "pod-template-hash": pod.template_hash}
    annotations: dict[str, str] = {}
    containers, init_containers = [app], []
    statuses = [_status_container(app["name"], app_image, lab.created)]
    if pod.meshed:
        labels.update({"linkerd.io/control-plane-ns": CONTROL_PLANE_NS,
                       "linkerd.io/proxy-deployment": pod.key,
                       "linkerd.io/workload-ns": pod.namespace})
        annotations.update({"linkerd.io/inject": "enabled",
                            "linkerd.io/created-by": f"linkerd/proxy-injector {PROXY_VERSION}",
                            "linkerd.io/proxy-version": PROXY_VERSION,
                            "viz.linkerd.io/tap-enabled": "true"})
        init_containers.append(init_container())
        if pod.native_sidecar:
            init_containers.append(proxy_container(lab, pod, native=True))
        else:
            containers.insert(0, proxy_container(lab, pod, native=False))
            statuses.insert(0, _status_container("linkerd-proxy", f"{PROXY_IMAGE}:{PROXY_VERSION}", lab.created))
        if pod.debug_sidecar:
            annotations["config.linkerd.io/enable-debug-sidecar"] = "true"
            containers.append({"name": "linkerd-debug", "image": f"cr.l5d.io/linkerd/debug:{PROXY_VERSION}",
                               "imagePullPolicy": "IfNotPresent"})
            statuses.append(_status_container("linkerd-debug", f"cr.l5d.io/linkerd/debug:{PROXY_VERSION}",
                                              lab.created))
    replicaset = f"{pod.key}-{pod.template_hash}"
    spec = {
        "containers": containers,
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "nodeName": pod.node_name,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "serviceAccount": pod.service_account,
        "serviceAccountName": pod.service_account,
        "terminationGracePeriodSeconds": 30,
    }
    if init_containers:
        spec["initContainers"] = init_containers
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": annotations,
            "creationTimestamp": lab.created,
            "generateName": f"{replicaset}-",
            "labels": labels,
            "name": pod.name,
            "namespace": pod.namespace,
            "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True,
                                 "kind": "ReplicaSet", "name": replicaset, "uid": _uid("rs", replicaset)}],
            "resourceVersion": str(1000 + sum(map(ord, pod.name))),
            "uid": _uid("pod", pod.namespace, pod.name),
        },
        "spec": spec,
        "status": {
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": lab.created}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": statuses,
            "hostIP": pod.node_ip,
            "hostIPs": [{"ip": pod.node_ip}],
            "phase": "Running",
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "qosClass": "BestEffort",
            "startTime": lab.created,
        },
    }


def service_objects(lab: Lab) -> list[dict]:
    """Each lab Service and its EndpointSlice, as ``kubectl get services,endpointslices -o json`` prints them."""
    out = []
    for spec, cluster_ip in lab.services():
        pod = lab.pod(spec.target)
        meta = {"name": spec.name, "namespace": pod.namespace, "uid": _uid("svc", spec.name),
                "creationTimestamp": lab.created}
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {
            "type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "selector": {"app": pod.key},
            "ports": [{"name": spec.port_name, "port": spec.port, "protocol": "TCP", "targetPort": spec.target_port}]}})
        out.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                    "metadata": {"name": f"{spec.name}-{pod.template_hash[:5]}", "namespace": pod.namespace,
                                 "uid": _uid("eps", spec.name), "creationTimestamp": lab.created,
                                 "labels": {"kubernetes.io/service-name": spec.name}},
                    "ports": [{"name": spec.port_name, "port": spec.target_port, "protocol": "TCP"}],
                    "endpoints": [{"addresses": [pod.ip], "conditions": {"ready": True}, "nodeName": NODE_NAME,
                                   "targetRef": {"kind": "Pod", "name": pod.name, "namespace": pod.namespace,
                                                 "uid": _uid("pod", pod.namespace, pod.name)}}]})
    return out


def pods_list(lab: Lab) -> dict:
    """The whole ``kind: List`` document, as ``kubectl get pods,services,endpointslices -A -o json`` prints
    it: the pods sorted by namespace then name, then the Services and their EndpointSlices."""
    items = sorted((pod_object(lab, p) for p in lab.pods),
                   key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))
    items += service_objects(lab)
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def pods_json(lab: Lab) -> str:
    return json.dumps(pods_list(lab), indent=4) + "\n"
