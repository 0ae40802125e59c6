"""A tiny DNS (RFC 1035) A-record resolver and query helper over UDP, for the lab's `coredns` pod.

Answers A queries for the lab's service names from a fixed table, NXDOMAIN otherwise. No recursion, no
TCP, no compression beyond the one pointer to the question name. Lab use only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct

TYPE_A = 1  # RFC 1035 section 3.2.2
CLASS_IN = 1  # section 3.2.4
FLAGS_QUERY_RD = 0x0100  # standard query, recursion desired
FLAGS_RESPONSE = 0x8180  # QR, RD, RA, NOERROR
RCODE_NXDOMAIN = 3
TTL_S = 5


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.rstrip(".").split(".")) + b"\0"


def encode_query(query_id: int, name: str) -> bytes:
    return struct.pack("!HHHHHH", query_id, FLAGS_QUERY_RD, 1, 0, 0, 0) + encode_name(name) + struct.pack(
        "!HH", TYPE_A, CLASS_IN)


def parse_question(packet: bytes) -> tuple[int, str, int, bytes]:
    """(id, qname, qtype, raw question) of a query; ValueError if malformed."""
    if len(packet) < 12:
        raise ValueError("short DNS header")
    query_id, _flags, qdcount = struct.unpack_from("!HHH", packet)
    if qdcount != 1:
        raise ValueError("expected one question")
    pos, labels = 12, []
    while True:
        if pos >= len(packet):
            raise ValueError("truncated QNAME")
        length = packet[pos]
        pos += 1
        if length == 0:
            break
        if length > 63 or pos + length > len(packet):
            raise ValueError("bad label")
        labels.append(packet[pos:pos + length].decode("ascii", "replace"))
        pos += length
    if pos + 4 > len(packet):
        raise ValueError("truncated question")
    qtype, _qclass = struct.unpack_from("!HH", packet, pos)
    return query_id, ".".join(labels), qtype, packet[12:pos + 4]


def encode_answer(packet: bytes, table: dict[str, str]) -> bytes:
    query_id, name, qtype, question = parse_question(packet)
    address = table.get(name.lower().rstrip("."))
    if address is None or qtype != TYPE_A:
        flags = FLAGS_RESPONSE | (RCODE_NXDOMAIN if address is None else 0)
        return struct.pack("!HHHHHH", query_id, flags, 1, 0, 0, 0) + question
    answer = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL_S, 4) + ipaddress.IPv4Address(address).packed
    return struct.pack("!HHHHHH", query_id, FLAGS_RESPONSE, 1, 1, 0, 0) + question + answer


def parse_a_answer(packet: bytes) -> str | None:
    """The first A record's address in a response built by :func:`encode_answer`."""
    _id, flags, _qd, ancount = struct.unpack_from("!HHHH", packet)
    if flags & 0xF or ancount == 0:
        return None
    return str(ipaddress.IPv4Address(packet[-4:]))


class Responder(asyncio.DatagramProtocol):
    """The resolver: one datagram in, one datagram out."""

    def __init__(self, table: dict[str, str]):
        self.table = {k.lower(): v for k, v in table.items()}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            self.transport.sendto(encode_answer(data, self.table), addr)
        except (ValueError, struct.error):
            pass  # malformed query: drop it, as a resolver under attack would


async def resolve(server: str, name: str, query_id: int, timeout_s: float = 1.0) -> str | None:
    """Ask `server`:53 for `name` once; None on timeout or NXDOMAIN."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_sendto(sock, encode_query(query_id & 0xFFFF, name), (server, 53))
        data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 512), timeout_s)
        return parse_a_answer(data)
    except (TimeoutError, OSError, struct.error):
        return None
    finally:
        sock.close()
