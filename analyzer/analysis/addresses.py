"""Address rules: IP text for rows, and which flows are localhost hops (Linkerd's proxy <-> app hop).

Rule: one localhost rule for every engine and for not-TCP traffic; engines that see addresses as text
(tshark) convert them with ``packed`` and ask the same function.
"""

from __future__ import annotations

import ipaddress

IP_CACHE_MAX = 100_000  # distinct addresses remembered as text before the cache starts again
IPV6_LOOPBACK = b"\x00" * 15 + b"\x01"  # ::1, RFC 4291 2.5.3
IPV4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"  # ::ffff:0:0/96, RFC 4291 2.5.5.2

_ip_cache: dict[bytes, str] = {}


def ip_text(raw: bytes) -> str:
    """Packed IPv4/IPv6 address -> its text form (cached: a capture has few distinct addresses)."""
    text = _ip_cache.get(raw)
    if text is None:
        text = _ip_cache[raw] = str(ipaddress.ip_address(raw))
        if len(_ip_cache) > IP_CACHE_MAX:
            _ip_cache.clear()
    return text


def packed(text: str) -> bytes:
    """IP text -> packed bytes; b"" for text that is not an address."""
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return b""


def address_localhost_reason(a: bytes, b: bytes, loopback_iface: bool = False) -> str:
    """Why traffic between two raw addresses is a localhost hop ("" when it is not)."""
    if loopback_iface:
        return "loopback interface"
    for raw in (a, b):
        if len(raw) == 4 and raw[0] == 127:
            return "127.0.0.0/8"
        if raw == IPV6_LOOPBACK:
            return "::1"
        if len(raw) == 16 and raw[:12] == IPV4_MAPPED_PREFIX and raw[12] == 127:
            return "IPv4-mapped loopback"
    if a == b:
        return "same IP both ends (proxy-app hop)"
    return ""


# Interface names that capture loopback traffic (Linux, BSD/macOS, Npcap).
LOOPBACK_IFACE_NAMES = frozenset({"lo", "lo0", "loopback", "Loopback", "\\Device\\NPF_Loopback"})
IP_PROTOCOL_NAMES = {1: "icmp", 17: "udp", 58: "icmpv6", 132: "sctp"}  # IANA protocol numbers


def protocol_name(number: int | str) -> str:
    """The name of an IP protocol number (as a number or as tshark prints it); the number itself otherwise."""
    try:
        return IP_PROTOCOL_NAMES.get(int(number), str(number))
    except ValueError:
        return str(number)
