"""Peek at a connection's first bytes and tell TLS from plaintext, like linkerd2-proxy's detection.

linkerd2-proxy (``linkerd/tls/src/server/client_hello.rs``) peeks up to 512 bytes, buffers up to 8192,
accepts record type 22 with version 0x0301/0x0303 and a ClientHello, and reads the SNI (extension 0).
This module does the same on a non-blocking socket with ``MSG_PEEK`` so nothing is consumed: the socket
is handed on untouched to the TLS stack or to the plaintext forwarder. Lab use only.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass

PEEK_MAX = 8192
HANDSHAKE = 22  # RFC 8446 section 5.1 ContentType.handshake
CLIENT_HELLO = 1  # section 4 HandshakeType.client_hello
EXT_SERVER_NAME = 0  # RFC 6066 section 3


@dataclass(frozen=True, slots=True)
class Detected:
    tls: bool
    sni: str | None = None
    eof: bool = False


def looks_like_tls(data: bytes) -> bool:
    return len(data) >= 3 and data[0] == HANDSHAKE and data[1] == 3 and data[2] in (1, 3)


def parse_sni(data: bytes) -> tuple[bool, str | None]:
    """(complete, sni) from the first TLS record; complete=False means more bytes are needed."""
    if len(data) < 5:
        return False, None
    record_len = struct.unpack_from("!H", data, 3)[0]
    if len(data) < 5 + record_len:
        return False, None
    body = data[5:5 + record_len]
    try:
        if body[0] != CLIENT_HELLO:
            return True, None
        pos = 4 + 2 + 32  # handshake header, client_version, random
        pos += 1 + body[pos]  # session_id
        pos += 2 + struct.unpack_from("!H", body, pos)[0]  # cipher_suites
        pos += 1 + body[pos]  # compression_methods
        end = pos + 2 + struct.unpack_from("!H", body, pos)[0]
        pos += 2
        while pos + 4 <= min(end, len(body)):
            ext_type, ext_len = struct.unpack_from("!HH", body, pos)
            pos += 4
            if ext_type == EXT_SERVER_NAME:
                # server_name_list length (2), name_type (1), host_name length (2), host_name
                name_len = struct.unpack_from("!H", body, pos + 3)[0]
                return True, body[pos + 5:pos + 5 + name_len].decode("ascii", "backslashreplace")
            pos += ext_len
    except (IndexError, struct.error):
        pass  # a ClientHello spread over several records: no SNI found, still TLS
    return True, None


async def detect(sock: socket.socket, timeout_s: float) -> Detected:
    """Wait (bounded by `timeout_s`) for enough bytes to classify the connection; consumes nothing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            data = sock.recv(PEEK_MAX, socket.MSG_PEEK)
        except BlockingIOError:
            data = None
        except OSError:
            return Detected(False, eof=True)
        if data == b"":
            return Detected(False, eof=True)
        if data:
            if not looks_like_tls(data):
                return Detected(False)
            complete, sni = parse_sni(data)
            if complete or len(data) >= PEEK_MAX:
                return Detected(True, sni)
        remaining = deadline - loop.time()
        if remaining <= 0:
            # Linkerd treats a silent client as plaintext after the detect timeout.
            return Detected(bool(data) and looks_like_tls(data))
        if data:
            await asyncio.sleep(0.005)  # partial ClientHello: the socket stays readable, so poll gently
        else:
            await _readable(loop, sock, remaining)


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout_s: float) -> None:
    ready = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await asyncio.wait_for(ready, timeout_s)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(sock.fileno())
