"""A capture and a pod list whose every attacker-chosen string is hostile, built from code.

Whoever sends a ClientHello chooses its SNI and ALPN; whoever sends cleartext chooses the HTTP request
line; whoever can create a workload chooses pod, namespace, owner and service-account names.
``write_case(dir)`` writes one capture with a flow per hostile value (its SNI, its ALPN, and an HTTP
request line carrying it) and a pod list whose names carry them too, so that every output column a
person reads has one of them in it.

======================  ==============================================================
``HOSTILE`` key         what it tries
======================  ==============================================================
osc_title               retitle the terminal (OSC 0 ... BEL)
osc_link                plant a terminal hyperlink (OSC 8)
csi                     clear the screen, move the cursor (CSI)
crlf                    split a table row, a CSV record or a Markdown row
nul                     NUL byte
c1                      C1 control (8-bit CSI) and DEL
bidi                    right-to-left override and a zero-width space (look-alike text)
html                    an element with an event handler
script                  a script element
md_link                 a Markdown link to javascript:
autolink                a bare URL, www. and an address (GFM autolinks)
formula_eq ... _tab     spreadsheet formula prefixes
invalid_utf8            bytes that are not UTF-8
======================  ==============================================================

``LONG`` is a 64 KiB pod name (the table must stay bounded).  Standard library + the test builders.
"""

from __future__ import annotations

from pathlib import Path

import kube_builders as kb
import pcapgen as pg
import tlsbytes as tb
from pcapgen import Endpoint
from report_case import write_files

HOSTILE: dict[str, bytes] = {
    "osc_title": b"\x1b]0;pwned\x07x",
    "osc_link": b"\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "csi": b"\x1b[2J\x1b[1;1Hx",
    "crlf": b"a\r\nb\rc\nd",
    "nul": b"a\x00b",
    "c1": b"a\xc2\x9b2Jb\x7f",
    "bidi": "a\u202eb\u200bc".encode(),
    "html": b"<img src=x onerror=alert(1)>",
    "script": b"</script><script>alert(1)</script>",
    "md_link": b"[x](javascript:alert(1))",
    "autolink": b"http://evil.example www.evil.example a@evil.example",
    "formula_eq": b'=HYPERLINK("http://evil.example","x")',
    "formula_plus": b"+1+cmd|' /C calc'!A0",
    "formula_minus": b"-2+3",
    "formula_at": b"@SUM(1+1)",
    "formula_tab": b"\t=1+1",
    "invalid_utf8": b"a\xff\xfe\xc3(b",
}
LONG = "p" * 65536  # a 64 KiB name
INTERFACE = "eth0<svg onload=alert(3)>\x1b[31m"  # the capture's interface name reaches the HTML report
CONTROL_BYTES = frozenset(range(0x20)) - {0x0A} | {0x7F}  # what no text output may contain (LF ends lines)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

NS = "emojivoto"
CLIENT_IP, SERVER_IP, LONG_IP, ALIEN_IP = "10.42.0.11", "10.42.0.12", "10.42.0.13", "10.42.0.14"
HTTP_PORT, TLS_PORT = 8080, 4143


def _text(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


def flows() -> list:
    """One TLS flow (hostile SNI and ALPN) and one HTTP flow (hostile request target) per value."""
    out, t = [], pg.T0_NS
    for i, value in enumerate(HOSTILE.values()):
        hello = tb.handshake_record(tb.client_hello(sni=value, alpn=(value, b"h2")))
        server = tb.handshake_record(tb.server_hello()) + tb.ccs() + tb.app_data(200, seed=i)
        out.append(pg.tcp_flow([("c", hello), ("s", server), ("c", tb.app_data(100, seed=100 + i))],
                               client=Endpoint(CLIENT_IP, 41000 + i), server=Endpoint(SERVER_IP, TLS_PORT), t0_ns=t))
        request = b"GET /" + value.replace(b"\r\n", b"%0d%0a") + b" HTTP/1.1\r\nHost: web\r\n\r\n"
        out.append(pg.tcp_flow([("c", request), ("s", pg.HTTP_RESPONSE)],
                               client=Endpoint(LONG_IP, 42000 + i), server=Endpoint(SERVER_IP, HTTP_PORT),
                               t0_ns=t + 10_000_000))
        t += 50_000_000
    return out


def capture_bytes() -> bytes:
    frames = pg.encap(pg.merge(*flows()), "ether")
    return pg.pcapng_bytes([pg.Section([pg.Interface(pg.LINKTYPE_ETHERNET, name=INTERFACE, tsresol=9)],
                                       [("epb", 0, f) for f in frames])])


def pods_json() -> str:
    """The client's pod name, namespace-free names and owner carry hostile text; one pod name is 64 KiB."""
    hostile = "|".join(_text(v) for v in HOSTILE.values())
    return kb.pods_doc(
        kb.pod(f"vote-bot-{hostile}", CLIENT_IP, namespace=NS, sa=f"sa-{_text(HOSTILE['osc_title'])}",
               owner=("StatefulSet", f"=owner{_text(HOSTILE['crlf'])}")),
        kb.pod("web", SERVER_IP, namespace=NS, sa="web"),
        kb.pod(LONG, LONG_IP, namespace=NS, meshed=False),
    )


def write_case(directory: Path) -> tuple[Path, Path]:
    """(hostile.pcapng, hostile.pods.json) in ``directory``."""
    return write_files(directory, "hostile", capture_bytes(), pods_json())
