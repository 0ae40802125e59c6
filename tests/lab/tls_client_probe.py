"""Run inside a lab namespace by test_lab_e2e: try TLS clients against a meshed pod's proxy, print JSON.

usage: python tls_client_probe.py CERT_DIR IP PORT SNI GOOD_CERT_NAME
"""

import json
import socket
import ssl
import sys
from pathlib import Path

certs, ip, port, sni, good = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]


def attempt(ctx):
    try:
        with socket.create_connection((ip, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=sni) as tls:
            tls.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = tls.recv(100)  # a refused TLS 1.3 client certificate surfaces here
            return {"ok": bool(data), "version": tls.version(), "first": data[:15].decode("latin-1")}
    except (OSError, ssl.SSLError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def context(cert=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs / "trust-anchor.crt")
    if cert:
        ctx.load_cert_chain(certs / f"{cert}.crt", certs / f"{cert}.key")
    if max_version:
        ctx.maximum_version = max_version
    return ctx


print(json.dumps({
    "with_cert": attempt(context(good)),
    "without_cert": attempt(context()),
    "tls12_only": attempt(context(good, ssl.TLSVersion.TLSv1_2)),
}))
