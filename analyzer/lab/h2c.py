"""Just enough HTTP/2 with prior knowledge (RFC 9113) to carry gRPC-style unary calls in the lab.

Frames: DATA, HEADERS, SETTINGS, PING, GOAWAY, WINDOW_UPDATE. Header blocks use one HPACK representation
only, "literal header field without indexing - new name" without Huffman (RFC 7541 section 6.2.2), so
tshark dissects them and no dynamic table is needed. Streams are answered one at a time; flow control is
ignored because every message is far below the 65535-byte initial window. Lab use only.
"""

from __future__ import annotations

import asyncio
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 section 3.4
PREFACE_LINE = b"PRI * HTTP/2.0\r\n"

DATA = 0x0  # RFC 9113 section 6.1
HEADERS = 0x1  # section 6.2
SETTINGS = 0x4  # section 6.5
PING = 0x6  # section 6.7
GOAWAY = 0x7  # section 6.8
WINDOW_UPDATE = 0x8  # section 6.9

END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4

MAX_FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE default


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack("!I", len(payload))[1:] + struct.pack("!BBI", kind, flags, stream_id & 0x7FFFFFFF) + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    """(type, flags, stream_id, payload); raises IncompleteReadError at EOF."""
    head = await reader.readexactly(9)
    length = int.from_bytes(head[:3], "big")
    if length > MAX_FRAME:
        raise ValueError("HTTP/2 frame larger than SETTINGS_MAX_FRAME_SIZE")
    kind, flags, stream_id = struct.unpack_from("!BBI", head, 3)
    return kind, flags, stream_id & 0x7FFFFFFF, await reader.readexactly(length)


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1  # RFC 7541 section 5.1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_str(text: str) -> bytes:
    raw = text.encode("latin-1")
    return _hpack_int(len(raw), 7) + raw  # H bit 0: no Huffman


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    return b"".join(b"\x00" + _hpack_str(name) + _hpack_str(value) for name, value in headers)


def decode_headers(block: bytes) -> list[tuple[str, str]]:
    """Decode blocks made by :func:`encode_headers`; anything else raises ValueError."""
    out, pos = [], 0

    def integer(prefix_bits: int) -> int:
        nonlocal pos
        limit = (1 << prefix_bits) - 1
        value = block[pos] & limit
        pos += 1
        if value < limit:
            return value
        shift = 0
        while True:
            if pos >= len(block):
                raise ValueError("truncated HPACK integer")
            byte = block[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def string() -> str:
        nonlocal pos
        if pos >= len(block) or block[pos] & 0x80:
            raise ValueError("Huffman or truncated HPACK string")
        length = integer(7)
        if pos + length > len(block):
            raise ValueError("truncated HPACK string")
        value = block[pos:pos + length].decode("latin-1")
        pos += length
        return value

    while pos < len(block):
        if block[pos] not in (0x00, 0x10):
            raise ValueError(f"unsupported HPACK representation 0x{block[pos]:02x}")
        pos += 1
        name = string()
        out.append((name, string()))
    return out


def grpc_message(payload: bytes) -> bytes:
    """gRPC length-prefixed message: compressed flag 0 + u32 length (gRPC over HTTP/2 spec)."""
    return b"\x00" + struct.pack("!I", len(payload)) + payload


def proto_string(field_number: int, text: str) -> bytes:
    """A protobuf length-delimited field holding `text` (enough for the lab's tiny messages)."""
    raw = text.encode()
    return bytes([(field_number << 3) | 2, len(raw)]) + raw


class Client:
    """One h2c connection carrying sequential unary gRPC calls."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str):
        self.reader, self.writer, self.authority = reader, writer, authority
        self.next_stream = 1
        self.started = False

    async def call(self, path: str, message: bytes) -> tuple[list[tuple[str, str]], bytes]:
        """Send one unary call; return (trailers, response message bytes)."""
        if not self.started:
            self.writer.write(PREFACE + frame(SETTINGS, 0, 0))
            self.started = True
        stream = self.next_stream
        self.next_stream += 2
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", self.authority),
                   ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "grpc-go/1.64.0")]
        self.writer.write(frame(HEADERS, END_HEADERS, stream, encode_headers(headers))
                          + frame(DATA, END_STREAM, stream, grpc_message(message)))
        await self.writer.drain()
        body = b""
        while True:
            kind, flags, sid, payload = await read_frame(self.reader)
            if kind == SETTINGS and not flags & ACK:
                self.writer.write(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                self.writer.write(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                raise ConnectionResetError("GOAWAY from server")
            elif sid == stream and kind == DATA:
                body += payload
            elif sid == stream and kind == HEADERS and flags & END_STREAM:
                return decode_headers(payload), body

    async def close(self) -> None:
        if self.started:
            self.writer.write(frame(GOAWAY, 0, 0, struct.pack("!II", max(self.next_stream - 2, 0), 0)))
        self.writer.close()


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler) -> None:
    """Serve h2c after the preface's first line was read. ``handler(path, body) -> (message, status)``."""
    rest = await reader.readexactly(len(PREFACE) - len(PREFACE_LINE))
    if rest != PREFACE[len(PREFACE_LINE):]:
        raise ValueError("bad HTTP/2 preface")
    writer.write(frame(SETTINGS, 0, 0, struct.pack("!HI", 0x3, 100)))  # MAX_CONCURRENT_STREAMS 100
    paths: dict[int, str] = {}
    bodies: dict[int, bytes] = {}
    while True:
        try:
            kind, flags, sid, payload = await read_frame(reader)
        except asyncio.IncompleteReadError:
            return
        if kind == SETTINGS and not flags & ACK:
            writer.write(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            writer.write(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            return
        elif kind == HEADERS:
            paths[sid] = dict(decode_headers(payload)).get(":path", "/")
            bodies[sid] = b""
        elif kind == DATA and sid in bodies:
            bodies[sid] += payload
        if kind in (HEADERS, DATA) and flags & END_STREAM and sid in paths:
            message, status = await handler(paths.pop(sid), bodies.pop(sid)[5:])
            writer.write(
                frame(HEADERS, END_HEADERS, sid, encode_headers([(":status", "200"),
                                                                 ("content-type", "application/grpc")]))
                + frame(DATA, 0, sid, grpc_message(message))
                + frame(HEADERS, END_HEADERS | END_STREAM, sid,
                        encode_headers([("grpc-status", str(status)), ("grpc-message", "")])))
        await writer.drain()
