"""Kubernetes side of the audit: who each IP is, whether it is meshed, what identity it must present.

``pods`` parses ``kubectl get pods -o json`` (or ``-o wide`` text) into a :class:`PodIndex` that answers
"which pod held this IP at that time?"; ``kubectl`` runs the kubectl binary. Standard library only: no
pandas, no Kubernetes client library (the pod list is whatever ``kubectl`` prints).
"""

from .pods import (
    DEBUG_CONTAINER,
    PROXY_CONTAINER,
    Peer,
    Pod,
    PodIndex,
    PodsFormatError,
    load_pods,
    parse_pods,
    parse_pods_json,
    parse_pods_wide,
    short_identity,
)

__all__ = [
    "DEBUG_CONTAINER", "PROXY_CONTAINER", "Peer", "Pod", "PodIndex", "PodsFormatError", "load_pods", "parse_pods",
    "parse_pods_json", "parse_pods_wide", "short_identity",
]
