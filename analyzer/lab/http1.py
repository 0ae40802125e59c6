"""Minimal HTTP/1.1 over asyncio streams for the lab's apps, probes and scrapers (RFC 9112).

Only what the lab sends: request line + headers + Content-Length bodies, keep-alive or ``Connection:
close``. No chunked encoding, no pipelining. Must not be used on untrusted input outside the lab.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_HEAD = 16 * 1024  # bytes of request/status line + headers we accept
MAX_BODY = 1024 * 1024


@dataclass(slots=True)
class Message:
    """A request (method, target) or a response (status); headers are lower-cased names."""

    start: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


async def read_message(reader: asyncio.StreamReader, first_line: bytes = b"") -> Message | None:
    """Read one message; None on a clean EOF before its first byte. `first_line` may be pre-read."""
    try:
        # A pre-read request line is always followed by headers here (we always send Host).
        head = first_line + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial and not first_line:
            return None
        raise
    if len(head) > MAX_HEAD:
        raise ValueError("HTTP head too large")
    lines = head.decode("latin-1").split("\r\n")
    msg = Message(lines[0])
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        msg.headers[name.strip().lower()] = value.strip()
    length = int(msg.headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError("HTTP body too large")
    if length:
        msg.body = await reader.readexactly(length)
    return msg


def encode_request(method: str, target: str, host: str, headers: dict[str, str] | None = None,
                   body: bytes = b"", close: bool = False) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def encode_response(status: int, reason: str, body: bytes, content_type: str = "text/plain",
                    close: bool = False, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, method: str, target: str,
                  host: str, headers: dict[str, str] | None = None, body: bytes = b"",
                  close: bool = False) -> Message:
    """Send one request on an open connection and read its response."""
    writer.write(encode_request(method, target, host, headers, body, close))
    await writer.drain()
    msg = await read_message(reader)
    if msg is None:
        raise ConnectionResetError("connection closed before the response")
    return msg
