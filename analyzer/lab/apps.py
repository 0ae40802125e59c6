"""The emojivoto-like applications that run inside the pods, plus the client calls they share with drivers.

* ``web`` (HTTP/1.1 on 8080): ``/api/vote`` resolves and calls ``emoji`` (HTTP/1.1 ``/api/list``),
  ``voting`` (gRPC over h2c on 8080) and ``voting``'s stats port 4567 (gRPC over h2c, a linkerd skip port);
  ``/ready`` for kubelet.
* ``emoji`` (HTTP/1.1 on 8080), ``voting`` (h2c gRPC + HTTP/1.1 ``/ready`` on 8080, h2c on 4567).
* ``coredns``: the UDP resolver on 53 and HTTP ``/ready`` on 8181.

Apps dial the *real* destination (pod IP and port): in a meshed pod nftables redirects the connection to
the sidecar, exactly as linkerd-init's iptables rules do, so app code is mesh-unaware. Each outbound call
opens a fresh connection so that every call shows a full handshake in a capture. Lab use only.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket

from analyzer.lab import connlog, dns, h2c, http1
from analyzer.lab.topology import Lab, Pod

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
EMOJI = (":doughnut:", ":rocket:", ":unicorn:", ":crab:", ":tada:", ":pizza:")
VOTE_PATH = "/emojivoto.v1.VotingService/VoteDoughnut"
RESULTS_PATH = "/emojivoto.v1.VotingService/Results"
_query_ids = itertools.count(0x4000)


async def open_tcp(ip: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An ordinary app connection (unmarked, so a meshed pod's nftables sends it to its proxy)."""
    return await asyncio.wait_for(asyncio.open_connection(ip, port), CALL_TIMEOUT_S)


async def lookup(lab: Lab, key: str) -> str:
    """Resolve `key`'s service name through the lab resolver; fall back to the lab table (logged)."""
    name = lab.service_name(key)
    address = await dns.resolve(lab.pod("coredns").ip, name, next(_query_ids))
    if address is None:
        log.warning("DNS lookup of %s failed; using the lab table", name)
        address = lab.pod(key).ip
    return address


async def http_get(ip: str, port: int, path: str, host: str, headers: dict[str, str] | None = None) -> int:
    """One GET on a fresh connection with ``Connection: close``; returns the status code."""
    reader, writer = await open_tcp(ip, port)
    try:
        response = await asyncio.wait_for(http1.request(reader, writer, "GET", path, host, headers, close=True),
                                          CALL_TIMEOUT_S)
        return int(response.start.split(" ")[1])
    finally:
        writer.close()


async def grpc_call(ip: str, port: int, authority: str, path: str, message: bytes) -> int:
    """One unary gRPC call over a fresh h2c connection; returns grpc-status."""
    reader, writer = await open_tcp(ip, port)
    client = h2c.Client(reader, writer, authority)
    try:
        trailers, _ = await asyncio.wait_for(client.call(path, message), CALL_TIMEOUT_S)
        return int(dict(trailers).get("grpc-status", "2"))
    finally:
        await client.close()


# -- servers -------------------------------------------------------------------------------------------
class App:
    """Serves one pod's app ports until cancelled."""

    def __init__(self, lab: Lab, pod: Pod):
        self.lab, self.pod = lab, pod
        self.votes: dict[str, int] = {}
        self.servers: list = []

    async def start(self) -> None:
        for port in self.pod.tcp_ports:
            self.servers.append(await asyncio.start_server(
                lambda r, w, port=port: self._connection(r, w, port), "0.0.0.0", port, reuse_address=True))
        if self.pod.app == "coredns":
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: dns.Responder(self.lab.service_names()), local_addr=("0.0.0.0", 53),
                family=socket.AF_INET)
            self.servers.append(transport)

    def close(self) -> None:
        for server in self.servers:
            server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        connlog.accepted(writer.get_extra_info("peername")[:2], writer.get_extra_info("sockname")[:2])
        try:
            first = await asyncio.wait_for(reader.readline(), 30)
            if first == h2c.PREFACE_LINE:
                await h2c.serve(reader, writer, self._grpc)
                return
            while first:
                request = await http1.read_message(reader, first)
                if request is None:
                    break
                status, body, ctype = await self._http(request)
                writer.write(http1.encode_response(status, "OK" if status == 200 else "Error", body, ctype,
                                                   close=not request.keep_alive))
                await writer.drain()
                if not request.keep_alive:
                    break
                first = await asyncio.wait_for(reader.readline(), 30)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.info("%s:%d connection ended: %s", self.pod.key, port, exc)
        finally:
            writer.close()

    async def _http(self, request: http1.Message) -> tuple[int, bytes, str]:
        target = request.start.split(" ")[1]
        path, _, query = target.partition("?")
        if path in ("/ready", "/live", "/health"):
            return 200, b"ok\n", "text/plain"
        if self.pod.app == "emoji" and path == "/api/list":
            body = json.dumps([{"shortcode": e, "unicode": "?"} for e in EMOJI]).encode()
            return 200, body, "application/json"
        if self.pod.app == "web" and path in ("/api/vote", "/api/list"):
            return await self._web(path, query)
        return 404, b"not found\n", "text/plain"

    async def _web(self, path: str, query: str) -> tuple[int, bytes, str]:
        """web's handler: emoji over HTTP/1.1, voting over gRPC, and the stats call on skip port 4567."""
        emoji_ip = await lookup(self.lab, "emoji")
        status = await http_get(emoji_ip, 8080, "/api/list", f"{self.lab.service_name('emoji')}:8080",
                                {"User-Agent": "emojivoto-web/1.0", "Accept": "application/json"})
        result = {"emoji_status": status}
        if path == "/api/vote":
            voting_ip = await lookup(self.lab, "voting")
            choice = query.partition("=")[2] or EMOJI[0]
            authority = f"{self.lab.service_name('voting')}:8080"
            result["vote"] = await grpc_call(voting_ip, 8080, authority, VOTE_PATH, h2c.proto_string(1, choice))
            # Results come from voting's stats port 4567, a linkerd default skip port: plaintext on the wire.
            result["results"] = await grpc_call(voting_ip, 4567, f"{self.lab.service_name('voting')}:4567",
                                                RESULTS_PATH, b"")
        return 200, json.dumps(result).encode(), "application/json"

    async def _grpc(self, path: str, message: bytes) -> tuple[bytes, int]:
        if path == VOTE_PATH:
            choice = message[2:].decode("utf-8", "replace") or EMOJI[0]
            self.votes[choice] = self.votes.get(choice, 0) + 1
            return b"", 0
        if path == RESULTS_PATH:
            return b"".join(h2c.proto_string(1, f"{k}={v}") for k, v in sorted(self.votes.items())[:8]), 0
        return b"", 12  # UNIMPLEMENTED
