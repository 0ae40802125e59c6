"""Kubernetes side of the audit: who each IP is, whether it is meshed, what identity it must present.

``podlist`` reads ``kubectl get pods -o json`` (``-o yaml``, or ``-o wide`` text) into the ``pods`` model, a
:class:`PodIndex` that answers "which pod held this IP at that time?"; ``services`` adds Services; ``kubectl`` runs the kubectl binary. Standard library only: no
pandas, no Kubernetes client library (the pod list is whatever ``kubectl`` prints).
"""

from .podlist import load_pods, parse_pods, parse_pods_json, parse_pods_wide, parse_pods_yaml
from .pods import DEBUG_CONTAINER, PROXY_CONTAINER, Peer, Pod, PodIndex, PodsFormatError, short_identity

__all__ = [
    "DEBUG_CONTAINER", "PROXY_CONTAINER", "Peer", "Pod", "PodIndex", "PodsFormatError", "load_pods", "parse_pods",
    "parse_pods_json", "parse_pods_wide", "parse_pods_yaml", "short_identity",
]
