"""The lab's own log of the TCP connections its servers accepted from another address: the truth a
capture's flow counts are checked against.

Every server in the lab (a pod's app, its proxy's inbound and admin listeners) calls :func:`accepted` for
each connection.  A connection from the pod itself or from loopback (the proxy handing a connection to its
app, an app calling its own proxy) never crosses the wire and is not written; every other one is one line
of ``<state>/connections/<pod>.<role>.<pid>.jsonl``: the client address and port as the server saw them,
the address and port the client dialled (before a redirect to the proxy), and the time.
Standard library only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

_log: Path | None = None
_own: str = ""


def start(state: Path, pod_key: str, role: str, pod_ip: str) -> None:
    """Log this process's accepted connections (a server's pod and role)."""
    global _log, _own
    directory = state / "connections"
    directory.mkdir(exist_ok=True)
    _log, _own = directory / f"{pod_key}.{role}.{os.getpid()}.jsonl", pod_ip


def accepted(peer: tuple, dialled: tuple) -> None:
    """One accepted connection from ``peer`` (ip, port) to ``dialled`` (ip, port)."""
    if _log is None or peer[0] == _own or peer[0].startswith("127."):
        return
    line = {"client_ip": peer[0], "client_port": peer[1], "server_ip": dialled[0], "server_port": dialled[1],
            "ts": time.time()}
    with open(_log, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


def read(state: Path, since: float = 0.0) -> list[dict]:
    """Every logged connection accepted at or after ``since`` (epoch seconds)."""
    out = []
    for path in sorted((state / "connections").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if entry["ts"] >= since:
                out.append(entry)
    return out
