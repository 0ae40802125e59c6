"""What ports suggest, and who a Linkerd identity names: hints, never verdicts.

Role: the ``--decode-as`` option (tshark's ``tcp.port==8080,tls``), the ports Linkerd and common servers
listen on, and the identity a Linkerd proxy puts in its SNI.

Rule 1 of the verdict holds here too: a port never decides alone.  ``apply_port_hint`` only names the
hint, flags a payload that contradicts it, and says so when a flow without evidence sits on such a port.
"""

from __future__ import annotations

import re
from typing import Iterable

from ..errors import AnalyzerError

DECODE_AS_RE = re.compile(r"^tcp\.port==(\d{1,5})(?:-(\d{1,5}))?,(tls|ssl)$")

# Linkerd identity in SNI: <sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>
IDENTITY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.serviceaccount\.identity\.([a-z0-9-]+)\.(.+)$")
L5D_TRANSPORT_ALPN = "transport.l5d.io/v1"

# Ports whose traffic is expected to be TLS, and what they are (linkerd-on-the-wire.md).
PORT_HINTS: dict[int, tuple[str, bool]] = {
    4143: ("linkerd-proxy inbound", True),
    4140: ("linkerd-proxy outbound", False),
    4190: ("linkerd-proxy tap", True),
    4191: ("linkerd-proxy admin", False),
    8086: ("linkerd destination", True),
    8090: ("linkerd policy", True),
    8443: ("linkerd webhook", True),
    9443: ("linkerd webhook", True),
    443: ("https", True),
}
# Ports that name the server of a connection whose SYN was not captured (with ports below 1024).
SERVER_PORTS = frozenset(PORT_HINTS) | {8080, 8000, 8443, 5432, 3306, 6379, 9090, 9100}


def parse_decode_as(specs: Iterable[str]) -> frozenset[int]:
    """tshark's ``tcp.port==8080,tls`` (or a range ``8000-8080``, or ``ssl``) -> the set of ports."""
    ports: set[int] = set()
    for spec in specs:
        match = DECODE_AS_RE.match(spec.strip().replace(" ", ""))
        if not match:
            raise AnalyzerError(f"--decode-as {spec!r}: expected tshark's form tcp.port==PORT,tls (or PORT-PORT)")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if not (0 < low <= high <= 65535):
            raise AnalyzerError(f"--decode-as {spec!r}: ports must be 1-65535, low to high")
        ports.update(range(low, high + 1))
    return frozenset(ports)


def port_hint(port: int, decode_as: frozenset[int]) -> tuple[str, bool]:
    """What a server port suggests, and whether it expects TLS (``--decode-as`` first, then Linkerd's ports)."""
    if port in decode_as:
        return f"decode-as tls (port {port})", True
    return PORT_HINTS.get(port, ("", False))


def apply_port_hint(row: dict, port: int, decode_as: frozenset[int]) -> None:
    """The hint goes into ``port_hint``; a payload that contradicts a TLS port is flagged, and a flow
    without evidence on such a port says so -- the port itself never changes the verdict."""
    name, expects_tls = port_hint(port, decode_as)
    row["port_hint"] = name
    if not expects_tls:
        return
    if row["verdict"] == "plaintext":
        row["hint_conflict"] = True
        row["reason"] += f"; port {port} ({name}) expects TLS, the payload says otherwise"
    elif row["verdict"] == "unknown" and row["evidence"] == "none":
        row["reason"] += f"; port {port} ({name}) suggests TLS, but a port proves nothing"


def parse_identity(sni: str) -> tuple[str, str] | None:
    """``sa.ns`` and the control-plane namespace from a Linkerd identity SNI, else None."""
    match = IDENTITY_RE.match(sni)
    return (f"{match.group(1)}.{match.group(3)}", match.group(5)) if match else None


def is_mesh(identity: tuple[str, str] | None, alpn: Iterable[str]) -> bool:
    """A Linkerd proxy spoke: its identity in SNI, or its transport ALPN."""
    return identity is not None or L5D_TRANSPORT_ALPN in alpn
