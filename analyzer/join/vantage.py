"""Where a capture was taken: in a pod, on a node, or unknown.

Role: provenance.  The audit names every capture with its vantage point and counts, per edge, the
connections seen from one side only, from both sides and from a node.

Rules:
  1. A manifest beside the captures wins: ``manifest.json`` in the capture's directory, holding
     ``{"captures": [{"file": NAME, "vantage": "pod"|"node", "pod": "NS/NAME", "node": NODE}, ...]}``
     (``pod`` may also be ``NAME`` with a ``namespace`` key).  A manifest that cannot be read or parsed is
     ignored and said in a note, never fatal: the captures are still analysed.
  2. Otherwise the file name, as the tools that capture name them: ``kubectl mtls capture`` writes
     ``POD-YYYYmmddTHHMMSSZ.pcapng`` (a pod of the list with that name, in one namespace only), the lab
     ``NAME.pod-POD.pcapng`` (POD: a pod, or a workload with one pod) and ``NAME.node[-NODE].pcapng``;
     ``node-NODE...`` is a node too.
  3. Anything else is ``unknown``: no guess.  Standard library only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

MANIFEST = "manifest.json"
KINDS = ("pod", "node", "unknown")
_KUBECTL_MTLS = re.compile(r"^(?P<pod>[a-z0-9]([-a-z0-9.]*[a-z0-9])?)-\d{8}T\d{6}Z\.pcapng(\.gz)?$")
_LAB_POD = re.compile(r"\.pod-(?P<pod>[^.]+)\.pcap(ng)?(\.gz)?$")
_LAB_NODE = re.compile(r"(^node-(?P<a>[^.]+)|\.node(-(?P<b>[^.]+))?)\.?.*\.pcap(ng)?(\.gz)?$")


@dataclass(frozen=True, slots=True)
class Vantage:
    kind: str  # pod | node | unknown
    pod: str = ""  # ns/name for a pod vantage ("" if the name matched no single listed pod)
    node: str = ""
    source: str = ""  # manifest | name | ""

    def as_dict(self) -> dict:
        return {"kind": self.kind, "pod": self.pod or None, "node": self.node or None, "source": self.source or None}


def _pod_ref(name: str, namespace: str, pods) -> str:
    if "/" in name or namespace:
        return name if "/" in name else f"{namespace}/{name}"
    listed = getattr(pods, "pods", ())
    found = {p.ref for p in listed if p.name == name} or {p.ref for p in listed if p.owner_name == name}
    return found.pop() if len(found) == 1 else ""  # the pod, or the one pod of a workload of that name


def _from_manifest(path: str, pods, notes: list[str]) -> Vantage | None:
    manifest = os.path.join(os.path.dirname(os.path.abspath(path)), MANIFEST)
    if not os.path.isfile(manifest):
        return None
    try:
        with open(manifest, encoding="utf-8") as f:
            doc = json.load(f)
        entries = doc["captures"]
        entry = next((e for e in entries if os.path.basename(str(e.get("file") or e.get("path") or ""))
                      == os.path.basename(path)), None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        note = f"{manifest}: not a capture manifest ({type(exc).__name__}); vantages from file names"
        if note not in notes:
            notes.append(note)
        return None
    if entry is None:
        return None
    kind = str(entry.get("vantage") or entry.get("kind") or "unknown")
    kind = kind if kind in KINDS else "unknown"
    pod = _pod_ref(str(entry.get("pod") or ""), str(entry.get("namespace") or ""), pods) if entry.get("pod") else ""
    return Vantage(kind, pod if kind == "pod" else "", str(entry.get("node") or ""), "manifest")


def _from_name(path: str, pods) -> Vantage:
    name = os.path.basename(path)
    if m := _LAB_POD.search(name):
        return Vantage("pod", _pod_ref(m.group("pod"), "", pods), source="name")
    if m := _LAB_NODE.search(name):
        return Vantage("node", node=m.group("a") or m.group("b") or "", source="name")
    if m := _KUBECTL_MTLS.match(name):
        ref = _pod_ref(m.group("pod"), "", pods)
        if ref:
            return Vantage("pod", ref, source="name")
    return Vantage("unknown")


def capture_names(paths) -> list[str]:
    """The name each capture goes by (``captures`` column, vantages, notes): its file name, or where two
    different files have the same name (``ns1/web.pcapng``, ``ns2/web.pcapng``), the shortest end of each
    one's path that tells it from the others.  The same file given twice has one name."""
    full = [os.path.abspath(os.fspath(p)).split(os.sep) for p in paths]
    distinct = {tuple(parts) for parts in full}
    names = []
    for parts in full:
        depth = 1
        while depth < len(parts) and any(other[-depth:] == tuple(parts[-depth:]) and other != tuple(parts)
                                         for other in distinct):
            depth += 1
        names.append("/".join(parts[-depth:]))
    return names


def capture_vantages(paths, pods=None) -> tuple[dict[str, Vantage], list[str]]:
    """Capture name (:func:`capture_names`) -> its vantage (rules 1-3), and notes about manifests that
    could not be read."""
    notes: list[str] = []
    out = {}
    for path, name in zip(paths, capture_names(paths)):
        path = os.fspath(path)
        out[name] = _from_manifest(path, pods, notes) or _from_name(path, pods)
    return out, notes


def sides(flow: dict, src_pod: str, dst_pod: str, vantages: dict[str, Vantage]) -> tuple[bool, bool, bool]:
    """(seen in the client pod, seen in the server pod, seen on a node) for one flow row."""
    client = server = node = False
    for name in (flow.get("captures") or flow["capture"]).split(","):
        v = vantages.get(name)
        if v is None:
            continue
        if v.kind == "node":
            node = True
        elif v.kind == "pod" and v.pod:
            client = client or v.pod == src_pod
            server = server or v.pod == dst_pod
    return client, server, node
