"""A sidecar that behaves like linkerd2-proxy *on the wire* (asyncio + the ``ssl`` module).

Listeners, as in a meshed pod (the pod's nftables rules, see ``netns.py``, play linkerd-init):

* inbound ``0.0.0.0:4143``: every inbound TCP connection is redirected here except ports 4190, 4191 and
  the ignored ports. The original destination comes from ``SO_ORIGINAL_DST``. Like the real proxy it peeks
  the first bytes (``hello.detect``): a ClientHello whose SNI is our identity is terminated with mTLS
  (TLS 1.3 only, client certificate REQUIRED - stricter than Linkerd, which only requests it); a
  ClientHello for another name passes through untouched; anything else is forwarded as plaintext
  (``no_tls_from_remote``). Connections to 4143 itself must carry ALPN ``transport.l5d.io/v1`` and an
  opaque transport header naming the target port (transport-header mode).
* outbound ``127.0.0.1:4140``: every outbound TCP connection of the app (except to ignored ports) is
  redirected here. A destination that is a meshed pod gets mTLS with SNI = its identity: to the same port
  and no ALPN in ``transparent`` mode, to port 4143 with ALPN and a transport header in
  ``transport-header`` mode (admin port 4191 is always dialled directly). Other destinations: plaintext.
* admin ``0.0.0.0:4191``: ``/ready``, ``/live``, ``/metrics``; plaintext, or mTLS when the client starts
  a TLS handshake (the admin server detects TLS too).

The proxy's own sockets carry ``SO_MARK 0x2102`` so the nftables output chain leaves them alone (the
real proxy is exempted by its uid 2102). Every connection is bounded by handshake and idle timeouts and
the process by a maximum lifetime. What this is not: an HTTP-aware proxy (no pooling, no retries) - each
app connection maps to exactly one upstream connection, which is what a capture needs to be predictable.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import ssl
import struct
from pathlib import Path

from analyzer.lab import connlog, hello, http1
from analyzer.lab.pki import LeafFiles
from analyzer.lab.topology import (
    PROXY_ADMIN_PORT, PROXY_INBOUND_PORT, PROXY_MARK, PROXY_OUTBOUND_PORT, PROXY_TAP_PORT, TRANSPORT_ALPN,
    Lab, Pod,
)

log = logging.getLogger(__name__)

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
HANDSHAKE_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 3.0
DETECT_TIMEOUT_S = 10.0  # linkerd2-proxy's inbound detect timeout
ADMIN_DETECT_TIMEOUT_S = 1.0  # and its admin server's
IDLE_TIMEOUT_S = 60.0
TRANSPORT_PREFACE = b"transport.l5d.io/v1"  # linkerd/proxy/transport-header


# -- TLS contexts ----------------------------------------------------------------------------------------
def server_context(files: LeafFiles, anchor: Path, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """TLS 1.3 only; a client certificate chaining to the lab anchor is required; no session tickets."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(files.chain, files.key)
    ctx.load_verify_locations(anchor)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.num_tickets = 0  # linkerd2-proxy never resumes: every connection is a full handshake
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def client_context(files: LeafFiles, anchor: Path, alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """TLS 1.3 only; verifies the server's one DNS SAN against the SNI (= expected identity)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(files.chain, files.key)
    ctx.load_verify_locations(anchor)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def peer_identity(writer: asyncio.StreamWriter) -> str:
    cert = writer.get_extra_info("peercert") or {}
    names = [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]
    return names[0] if names else ""


# -- opaque transport header -----------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode_transport_header(port: int) -> bytes:
    """Preface + u32 length + protobuf ``TransportHeader{port = 1}`` (sent inside the TLS session)."""
    message = b"\x08" + _varint(port)
    return TRANSPORT_PREFACE + struct.pack("!I", len(message)) + message


async def read_transport_header(reader: asyncio.StreamReader) -> int:
    preface = await reader.readexactly(len(TRANSPORT_PREFACE))
    if preface != TRANSPORT_PREFACE:
        raise ValueError("missing transport header preface")
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    message = await reader.readexactly(min(length, 1024))
    if not message or message[0] != 0x08:
        raise ValueError("transport header without port")
    port, shift = 0, 0
    for byte in message[1:]:
        port |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return port
    raise ValueError("truncated transport header port")


# -- sockets -------------------------------------------------------------------------------------------
def original_dst(sock: socket.socket) -> tuple[str, int]:
    """Where the client meant to go before nftables redirected it; the local address if not redirected."""
    try:
        raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:
        return sock.getsockname()[:2]
    return socket.inet_ntoa(raw[4:8]), struct.unpack_from("!H", raw, 2)[0]


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def connect(ip: str, port: int, *, ssl_ctx: ssl.SSLContext | None = None, server_hostname: str | None = None,
                  mark: bool = True) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a (marked) connection, optionally TLS; bounded by CONNECT/HANDSHAKE timeouts."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    if mark:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, PROXY_MARK)
    streams = None
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (ip, port)), CONNECT_TIMEOUT_S)
        streams = await asyncio.wait_for(
            asyncio.open_connection(sock=sock, ssl=ssl_ctx, server_hostname=server_hostname if ssl_ctx else None,
                                    ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if ssl_ctx else None),
            HANDSHAKE_TIMEOUT_S + 1)
        return streams
    finally:
        if streams is None:
            sock.close()  # failed or cancelled: do not leak the descriptor


async def accept_stream(sock: socket.socket, ssl_ctx: ssl.SSLContext | None = None
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Wrap an accepted socket in streams, doing the server side of a TLS handshake if `ssl_ctx`."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await asyncio.wait_for(
        loop.connect_accepted_socket(lambda: protocol, sock, ssl=ssl_ctx,
                                     ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if ssl_ctx else None),
        HANDSHAKE_TIMEOUT_S + 1)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT_S):
            writer.write(data)
            await writer.drain()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        pass
    finally:
        # Half-close plaintext peers (TCP FIN); a TLS peer cannot half-close, so close it (close_notify).
        if writer.can_write_eof() and not writer.is_closing():
            try:
                writer.write_eof()
            except OSError:
                writer.close()
        else:
            writer.close()


async def splice(a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 b: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    """Copy bytes both ways until both directions ended, then close both."""
    await asyncio.gather(_pump(a[0], b[1]), _pump(b[0], a[1]))
    for writer in (a[1], b[1]):
        writer.close()


# -- the proxy -----------------------------------------------------------------------------------------
class Proxy:
    """One pod's sidecar. `run()` serves until `lifetime_s` elapses or the task is cancelled."""

    def __init__(self, lab: Lab, pod: Pod, files: LeafFiles, anchor: Path):
        self.lab, self.pod = lab, pod
        inbound_alpn = (TRANSPORT_ALPN,) if lab.mode == "transport-header" else ()
        self.inbound_ctx = server_context(files, anchor, inbound_alpn)
        self.admin_ctx = server_context(files, anchor)
        self.client_ctx = client_context(files, anchor)
        self.transport_ctx = client_context(files, anchor, (TRANSPORT_ALPN,))
        self.metrics: collections.Counter[tuple] = collections.Counter()
        self.tasks: set[asyncio.Task] = set()

    async def run(self, lifetime_s: float, on_ready=None) -> None:
        listeners = [
            (listen("0.0.0.0", PROXY_INBOUND_PORT), self.inbound),
            (listen("127.0.0.1", PROXY_OUTBOUND_PORT), self.outbound),
            (listen("0.0.0.0", PROXY_ADMIN_PORT), self.admin),
        ]
        if on_ready:
            on_ready()
        accept_loops = [asyncio.create_task(self._accept(sock, handler)) for sock, handler in listeners]
        try:
            await asyncio.sleep(lifetime_s)
        finally:
            for task in accept_loops + list(self.tasks):
                task.cancel()
            for sock, _ in listeners:
                sock.close()

    async def _accept(self, lsock: socket.socket, handler) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, peer = await loop.sock_accept(lsock)
            sock.setblocking(False)
            connlog.accepted(peer, original_dst(sock))
            task = asyncio.create_task(self._guard(handler, sock, peer))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _guard(self, handler, sock: socket.socket, peer) -> None:
        try:
            await handler(sock, peer)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            log.info("%s: connection from %s ended: %s", handler.__name__, peer, exc)
            sock.close()

    # inbound ------------------------------------------------------------------------------------------
    async def inbound(self, sock: socket.socket, peer) -> None:
        _, port = original_dst(sock)
        seen = await hello.detect(sock, DETECT_TIMEOUT_S)
        if seen.eof:
            sock.close()
            return
        if seen.tls and seen.sni == self.pod.identity:
            client = await accept_stream(sock, self.inbound_ctx)
            alpn = client[1].get_extra_info("ssl_object").selected_alpn_protocol()
            if port == PROXY_INBOUND_PORT:
                if alpn != TRANSPORT_ALPN:
                    raise ValueError("TLS to 4143 without the transport ALPN")
                port = await read_transport_header(client[0])
            self.metrics["inbound", "true", peer_identity(client[1]), ""] += 1
        else:
            if port == PROXY_INBOUND_PORT:
                raise ValueError("plaintext connection to the inbound port itself")
            reason = "passthru" if seen.tls else "no_tls_from_remote"
            self.metrics["inbound", "false", "", reason] += 1
            client = await accept_stream(sock)
        if port in (PROXY_INBOUND_PORT, PROXY_OUTBOUND_PORT, PROXY_ADMIN_PORT, PROXY_TAP_PORT):
            raise ValueError(f"refusing to forward to proxy port {port}")
        # proxy -> app over lo: pod IP -> pod IP (linkerd2-proxy dials the pod IP, not 127.0.0.1).
        app = await connect(self.pod.ip, port)
        await splice(client, app)

    # outbound -----------------------------------------------------------------------------------------
    async def outbound(self, sock: socket.socket, peer) -> None:
        dst_ip, dst_port = original_dst(sock)
        if (dst_ip, dst_port) == ("127.0.0.1", PROXY_OUTBOUND_PORT):
            raise ValueError("direct connection to the outbound port (not redirected)")
        app = await accept_stream(sock)
        target = self.lab.pod_by_ip(dst_ip)
        if target is not None and target.meshed and target.key != self.pod.key:
            if self.lab.mode == "transport-header" and dst_port != PROXY_ADMIN_PORT:
                upstream = await connect(dst_ip, PROXY_INBOUND_PORT, ssl_ctx=self.transport_ctx,
                                         server_hostname=target.identity)
                upstream[1].write(encode_transport_header(dst_port))
            else:
                upstream = await connect(dst_ip, dst_port, ssl_ctx=self.client_ctx, server_hostname=target.identity)
            self.metrics["outbound", "true", target.identity, ""] += 1
        else:
            upstream = await connect(dst_ip, dst_port)
            self.metrics["outbound", "false", "", "not_provided_by_service_discovery"] += 1
        await splice(app, upstream)

    # admin --------------------------------------------------------------------------------------------
    async def admin(self, sock: socket.socket, peer) -> None:
        seen = await hello.detect(sock, ADMIN_DETECT_TIMEOUT_S)
        if seen.eof:
            sock.close()
            return
        reader, writer = await accept_stream(sock, self.admin_ctx if seen.tls else None)
        try:
            while (request := await asyncio.wait_for(http1.read_message(reader), IDLE_TIMEOUT_S)) is not None:
                path = request.start.split(" ")[1] if " " in request.start else "/"
                if path == "/metrics":
                    status, body = 200, self.render_metrics().encode()
                elif path in ("/ready", "/live"):
                    status, body = 200, path[1:].encode() + b"\n"
                else:
                    status, body = 404, b"not found\n"
                writer.write(http1.encode_response(status, "OK" if status == 200 else "Not Found", body,
                                                   "text/plain; version=0.0.4", close=not request.keep_alive))
                await writer.drain()
                if not request.keep_alive:
                    break
        finally:
            writer.close()

    def render_metrics(self) -> str:
        lines = ["# HELP tcp_open_total Total count of opened connections",
                 "# TYPE tcp_open_total counter"]
        for (direction, tls, peer_id, reason), count in sorted(self.metrics.items()):
            labels = f'direction="{direction}",tls="{tls}"'
            if peer_id:
                labels += f',{"client_id" if direction == "inbound" else "server_id"}="{peer_id}"'
            if reason:
                labels += f',no_tls_reason="{reason}"'
            lines.append(f"tcp_open_total{{{labels}}} {count}")
        lines.append(f'identity_cert_expiration_timestamp_seconds{{identity="{self.pod.identity}"}} 0')
        return "\n".join(lines) + "\n"
