"""One frame -> a transport tuple, or the reason it carries nothing we analyse.

Role: strip link layers (Ethernet with 802.1Q/QinQ, MPLS, PPPoE, Linux cooked SLL/SLL2, BSD null/loop,
raw IP, NFLOG, 802.11 with or without radiotap) and IPv4/IPv6 (options, extension headers) down to TCP
or another IP protocol, looking inside VXLAN and Geneve overlays (what a node capture of a Kubernetes
overlay network holds).

Rules:
  1. This is the hot path: one call per packet.  Locals, ``struct.unpack_from`` and tuples only; no
     objects, no exceptions for ordinary traffic.  Anything unusual takes the slow path below.
  2. Every frame gets an answer: a tuple, or a ``SKIP_*`` code the caller counts.  Nothing raises.
  3. No flow state here: ``flows/table.py`` owns that.

Return shapes (``decode_frame``):
  TCP:   (6, src, dst, sport, dport, seq, ack, flags, payload_off, captured_len, wire_len, loopback)
  other: (proto, src, dst, loopback)           -- UDP, ICMP, SCTP...: counted per host pair
  int:   a SKIP_* code
``src``/``dst`` are the raw 4- or 16-byte addresses; ``loopback`` is True when the link layer says the
frame crossed a loopback interface (ARPHRD_LOOPBACK in SLL/SLL2).
"""

from __future__ import annotations

import struct

# Skip reasons, indexes into SKIP_NAMES.
SKIP_NOT_IP = 0
SKIP_LINKTYPE = 1
SKIP_FRAGMENT = 2
SKIP_TUNNEL = 3
SKIP_SHORT = 4
SKIP_MALFORMED = 5
SKIP_NAMES = ("not IP", "unsupported link type", "IP fragment", "tunnel not decoded", "headers cut short", "malformed")

# Link types (tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in host byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  # OpenBSD loopback: family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_NFLOG = 239
LINKTYPE_LINUX_SLL2 = 276
RAW_LINKTYPES = {LINKTYPE_RAW, 12, 14}  # DLT_RAW has had three numbers across platforms

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = {0x8100, 0x88A8, 0x9100}  # 802.1Q, 802.1ad (QinQ), legacy QinQ
ETH_MPLS = {0x8847, 0x8848}
ETH_PPPOE_SESSION = 0x8864
ARPHRD_LOOPBACK = 772  # linux/if_arp.h
AF_INET6_VALUES = {10, 24, 28, 30}  # Linux, NetBSD/OpenBSD, FreeBSD, macOS

IPPROTO_TCP = 6
IPPROTO_UDP = 17
TUNNEL_PROTOS = {4, 41, 47, 50}  # IP-in-IP, IPv6-in-IPv4, GRE, ESP: addresses inside are not ours to see
IPV6_EXT_HEADERS = {0, 43, 60, 51}  # hop-by-hop, routing, destination options, AH (RFC 8200 4.1)
IPV6_FRAGMENT = 44
UDP_VXLAN = 4789  # RFC 7348
UDP_GENEVE = 6081  # RFC 8926
GENEVE_ETHERNET = 0x6558  # Transparent Ethernet Bridging
LINKTYPE_IEEE802_11 = 105
LINKTYPE_RADIOTAP = 127

_u16 = struct.Struct("!H").unpack_from
_tcp = struct.Struct("!HHIIBB").unpack_from  # sport dport seq ack offset flags
_ipv4 = struct.Struct("!BxH2xHxB2x4s4s").unpack_from  # ver_ihl tot_len frag proto src dst (RFC 791)
_sll2 = struct.Struct("!H6xH").unpack_from  # protocol, ARPHRD type (SLL2 header)
_addr4 = struct.Struct("4s4s").unpack_from  # bytes (hashable) even when buf is a bytearray
_addr6 = struct.Struct("16s16s").unpack_from
_sll = struct.Struct("!2xH10xH").unpack_from  # ARPHRD type, protocol (SLL header)


# The flow table's inlined fast path (flows/table.py ``process``): for a link type with a fixed-size
# header, one ``unpack_from`` at the frame start reads the link layer, an option-less IPv4 header and
# the TCP header.  Fields: (a, b, ver_ihl, tot_len, frag, proto, key, seq, data_offset, flags), where
# ``key`` is the 12 bytes src, dst, sport, dport -- contiguous only when IHL is 5, which the caller
# checks -- and (a, b) is (ethertype, ARPHRD) for SLL2, (ARPHRD, ethertype) for SLL and (junk,
# ethertype) for Ethernet.  Anything the fast path does not accept goes to ``decode_frame``.
_TCP4 = "BxH2xHxB2x12sI4xBB"  # IPv4 (RFC 791) then TCP up to the flags (RFC 9293 3.1)
TCP4_FAST = {  # link type -> (unpack_from, IP offset, ethertype is field a, ARPHRD meaning loopback)
    LINKTYPE_LINUX_SLL2: (struct.Struct("!H6xH10x" + _TCP4).unpack_from, 20, True, ARPHRD_LOOPBACK),
    LINKTYPE_LINUX_SLL: (struct.Struct("!2xH10xH" + _TCP4).unpack_from, 16, False, ARPHRD_LOOPBACK),
    LINKTYPE_ETHERNET: (struct.Struct("!10xHH" + _TCP4).unpack_from, 14, False, -1),  # no ARPHRD
}


def decode_frame(buf: bytes, off: int, caplen: int, wirelen: int, linktype: int):
    """Decode one frame at ``buf[off:off+caplen]``.  See the module docstring for the return shapes.

    The common case -- SLL2, Ethernet or SLL carrying an unfragmented IPv4 TCP segment -- is decoded
    inline with two ``unpack_from`` calls; every other shape goes through ``decode_ip`` and friends.
    """
    end = off + caplen
    if linktype == LINKTYPE_LINUX_SLL2:
        if caplen < 20:
            return SKIP_SHORT
        etype, arphrd = _sll2(buf, off)
        loop = arphrd == ARPHRD_LOOPBACK
        ip = off + 20
    elif linktype == LINKTYPE_ETHERNET:
        if caplen < 14:
            return SKIP_SHORT
        etype = _u16(buf, off + 12)[0]
        loop = False
        ip = off + 14
    elif linktype == LINKTYPE_LINUX_SLL:
        if caplen < 16:
            return SKIP_SHORT
        arphrd, etype = _sll(buf, off)
        loop = arphrd == ARPHRD_LOOPBACK
        ip = off + 16
    else:
        return _decode_other_link(buf, off, end, wirelen, linktype)
    if etype != ETH_IPV4 or ip + 40 > end:
        if etype == ETH_IPV6:
            return decode_ip(buf, ip, end, loop, off + wirelen)
        return _decode_ethertype(buf, ip, end, etype, loop, off + wirelen)
    ver_ihl, total, frag, proto, src, dst = _ipv4(buf, ip)
    if ver_ihl != 0x45 or proto != IPPROTO_TCP or frag & 0x3FFF or total < 40:
        return decode_ip(buf, ip, end, loop, off + wirelen)  # options, fragments, BIG TCP, not TCP
    sport, dport, seq, ack, doff, flags = _tcp(buf, ip + 20)
    poff = ip + 20 + (doff >> 4) * 4
    l4_end = ip + total
    if poff > l4_end or doff < 0x50:
        return SKIP_MALFORMED
    cap_end = end if end < l4_end else l4_end
    return (IPPROTO_TCP, src, dst, sport, dport, seq, ack, flags, poff,
            cap_end - poff if cap_end > poff else 0, l4_end - poff, loop)


def decode_ip(buf: bytes, ip: int, end: int, loop: bool, wire_end: int):
    """Decode from an IP header at ``ip``.  ``wire_end`` is where the frame ended on the wire."""
    if ip >= end:
        return SKIP_SHORT
    ver = buf[ip] >> 4
    if ver == 4:
        ihl = (buf[ip] & 0x0F) * 4
        if ihl < 20 or ip + ihl > end:
            return SKIP_SHORT if ihl >= 20 else SKIP_MALFORMED
        total = _u16(buf, ip + 2)[0]
        if total == 0:  # BIG TCP / TSO: the kernel leaves tot_len 0; the frame length is the truth
            total = wire_end - ip
        elif total < ihl:
            return SKIP_MALFORMED
        if _u16(buf, ip + 6)[0] & 0x3FFF:  # MF flag or a fragment offset (RFC 791)
            return SKIP_FRAGMENT
        proto = buf[ip + 9]
        src, dst = _addr4(buf, ip + 12)
        l4 = ip + ihl
        l4_end = ip + total
    elif ver == 6:
        if ip + 40 > end:
            return SKIP_SHORT
        plen = _u16(buf, ip + 4)[0]
        proto = buf[ip + 6]
        src, dst = _addr6(buf, ip + 8)
        l4 = ip + 40
        l4_end = l4 + plen if plen else wire_end  # 0 = jumbogram (RFC 2675) or BIG TCP
        if proto != IPPROTO_TCP:
            proto, l4 = _skip_ipv6_ext(buf, proto, l4, end)
            if proto < 0:
                return -proto - 1
    else:
        return SKIP_MALFORMED
    if proto == IPPROTO_TCP:
        if l4 + 20 > end:
            return SKIP_SHORT
        sport, dport, seq, ack, doff, flags = _tcp(buf, l4)
        poff = l4 + (doff >> 4) * 4
        if poff > l4_end or (doff >> 4) < 5:
            return SKIP_MALFORMED
        wire_len = l4_end - poff
        cap_end = end if end < l4_end else l4_end
        cap_len = cap_end - poff if cap_end > poff else 0
        return (IPPROTO_TCP, src, dst, sport, dport, seq, ack, flags, poff, cap_len, wire_len, loop)
    if proto in TUNNEL_PROTOS:
        return SKIP_TUNNEL
    if proto == IPPROTO_UDP and l4 + 8 <= end:
        dport = _u16(buf, l4 + 2)[0]
        if dport == UDP_VXLAN or dport == UDP_GENEVE:  # overlay networks (flannel, Calico, Cilium)
            inner = _decode_overlay(buf, l4 + 8, end, dport, loop, wire_end)
            if inner is not None:
                return inner
    return (proto, src, dst, loop)


def _skip_ipv6_ext(buf: bytes, proto: int, pos: int, end: int) -> tuple[int, int]:
    """Walk IPv6 extension headers.  Returns (protocol, offset) or (-(SKIP_code+1), 0)."""
    for _ in range(8):  # a bound: a real packet has a handful at most
        if proto == IPV6_FRAGMENT:
            if pos + 8 > end:
                return -(SKIP_SHORT + 1), 0
            # An "atomic fragment" (offset 0, M=0, RFC 6946) is a whole packet; anything else is a piece.
            if _u16(buf, pos + 2)[0] & 0xFFF9:
                return -(SKIP_FRAGMENT + 1), 0
            proto, pos = buf[pos], pos + 8
        elif proto in IPV6_EXT_HEADERS:
            if pos + 2 > end:
                return -(SKIP_SHORT + 1), 0
            size = (buf[pos + 1] + 2) * 4 if proto == 51 else (buf[pos + 1] + 1) * 8
            proto, pos = buf[pos], pos + size
        else:
            return proto, pos
    return -(SKIP_MALFORMED + 1), 0


def _decode_ethertype(buf: bytes, pos: int, end: int, etype: int, loop: bool, wire_end: int):
    """Slow path after an Ethernet-style type field: VLAN tags, MPLS, PPPoE."""
    for _ in range(8):
        if etype == ETH_IPV4 or etype == ETH_IPV6:
            return decode_ip(buf, pos, end, loop, wire_end)
        if etype in ETH_VLAN:
            if pos + 4 > end:
                return SKIP_SHORT
            etype, pos = _u16(buf, pos + 2)[0], pos + 4
        elif etype in ETH_MPLS:
            while True:  # pop labels to bottom of stack, then guess IPv4/IPv6 by the version nibble
                if pos + 4 > end:
                    return SKIP_SHORT
                bos = buf[pos + 2] & 1
                pos += 4
                if bos:
                    break
            return decode_ip(buf, pos, end, loop, wire_end) if pos < end and buf[pos] >> 4 in (4, 6) else SKIP_TUNNEL
        elif etype == ETH_PPPOE_SESSION:
            if pos + 8 > end:
                return SKIP_SHORT
            ppp = _u16(buf, pos + 6)[0]
            etype = ETH_IPV4 if ppp == 0x0021 else ETH_IPV6 if ppp == 0x0057 else -1
            pos += 8
        else:
            return SKIP_NOT_IP
    return SKIP_MALFORMED


def _decode_overlay(buf: bytes, pos: int, end: int, port: int, loop: bool, wire_end: int):
    """The Ethernet frame inside VXLAN or Geneve, decoded like any other; None if it is not one."""
    if port == UDP_VXLAN:
        inner = pos + 8
    else:
        if pos + 8 > end or _u16(buf, pos + 2)[0] != GENEVE_ETHERNET:
            return None
        inner = pos + 8 + (buf[pos] & 0x3F) * 4  # option length in 4-byte words
    if inner + 14 > end:
        return None
    return _decode_ethertype(buf, inner + 14, end, _u16(buf, inner + 12)[0], loop, wire_end)


def _decode_80211(buf: bytes, pos: int, end: int, wire_end: int):
    """An 802.11 data frame carrying LLC/SNAP: skip the MAC header, then decode the SNAP ethertype."""
    if pos + 24 > end:
        return SKIP_SHORT
    fc0, fc1 = buf[pos], buf[pos + 1]
    if (fc0 >> 2) & 3 != 2 or fc0 & 0x40 or fc1 & 0x40:  # not data, a null frame, or encrypted
        return SKIP_NOT_IP
    hdr = 24 + (6 if fc1 & 3 == 3 else 0)  # four addresses when both ToDS and FromDS (802.11-2020 9.3.2.1)
    if fc0 & 0x80:  # QoS data subtypes carry a 2-byte QoS control, then HT control if "order" is set
        hdr += 2 + (4 if fc1 & 0x80 else 0)
    snap = pos + hdr
    if snap + 8 > end or buf[snap:snap + 3] != b"\xaa\xaa\x03":
        return SKIP_NOT_IP
    return _decode_ethertype(buf, snap + 8, end, _u16(buf, snap + 6)[0], False, wire_end)


def _decode_other_link(buf: bytes, off: int, end: int, wirelen: int, linktype: int):
    """Slow path for the less common link types."""
    wire_end = off + wirelen
    if linktype in RAW_LINKTYPES or linktype == LINKTYPE_IPV4 or linktype == LINKTYPE_IPV6:
        return decode_ip(buf, off, end, False, wire_end)
    if linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if off + 4 > end:
            return SKIP_SHORT
        fam = struct.unpack_from("!I" if linktype == LINKTYPE_LOOP else "<I", buf, off)[0]
        if fam > 0xFFFF:  # written on a big-endian host
            fam = struct.unpack_from(">I", buf, off)[0]
        if fam == 2 or fam in AF_INET6_VALUES:
            return decode_ip(buf, off + 4, end, False, wire_end)
        return SKIP_NOT_IP
    if linktype == LINKTYPE_NFLOG:
        return _decode_nflog(buf, off, end)
    if linktype == LINKTYPE_RADIOTAP:
        if off + 4 > end:
            return SKIP_SHORT
        return _decode_80211(buf, off + struct.unpack_from("<H", buf, off + 2)[0], end, wire_end)
    if linktype == LINKTYPE_IEEE802_11:
        return _decode_80211(buf, off, end, wire_end)
    return SKIP_LINKTYPE


def _decode_nflog(buf: bytes, off: int, end: int):
    """NFLOG: 4-byte header, then TLVs (length, type little-endian, 4-aligned); type 9 is the packet."""
    pos = off + 4
    while pos + 4 <= end:
        tlv_len, tlv_type = struct.unpack_from("<HH", buf, pos)
        if tlv_len < 4:
            return SKIP_MALFORMED
        if tlv_type == 9:  # NFULA_PAYLOAD
            return decode_ip(buf, pos + 4, min(end, pos + tlv_len), False, pos + tlv_len)
        pos += (tlv_len + 3) & ~3
    return SKIP_NOT_IP
