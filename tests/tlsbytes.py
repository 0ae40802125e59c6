"""Deterministic TLS byte builders for tests: handshake messages, records and whole exchanges.

Role: produce exact wire bytes (RFC 8446 / RFC 5246 layouts) so tests never carry inline hex.
Must not: import anything outside the standard library, touch the network, use unseeded randomness,
or depend on ``analyzer`` (the builders are the independent side of every parser test).  The
benchmark generator (``benchmarks/gencapture.py``) builds its TLS bytes from these same primitives.

Handshake builders return a handshake *message* (type + u24 length + body); wrap them with
``handshake_record`` to get records. Key shares have real sizes, so a post-quantum ClientHello
(X25519MLKEM768) is > 1.2 KB, like the ones Linkerd proxies send (v2.314+).
"""

from __future__ import annotations

import random
import struct

DEFAULT_SNI = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"

# RFC 8446 4.1.3: the SHA-256 of "HelloRetryRequest", sent as ServerHello.random.
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
CLIENT_RANDOM = bytes(range(0x40, 0x60))
SERVER_RANDOM = bytes(range(0x80, 0xA0))

# Client key_share sizes (RFC 8446 4.2.8.2, draft-kwiatkowski-tls-ecdhe-mlkem): x25519, P-256
# (uncompressed point), P-384, P-521, x448, Kyber draft, the MLKEM hybrids.
CLIENT_SHARE_LEN = {0x001D: 32, 0x0017: 65, 0x0018: 97, 0x0019: 133, 0x001E: 56,
                    0x6399: 1216, 0x11EC: 1216, 0x11EB: 1249, 0x11ED: 1665}
# Server shares differ for KEMs: the ciphertext (1088 for ML-KEM-768) replaces the public key.
SERVER_SHARE_LEN = {**CLIENT_SHARE_LEN, 0x6399: 1120, 0x11EC: 1120, 0x11EB: 1153, 0x11ED: 1665}

EXT_SERVER_NAME, EXT_SUPPORTED_GROUPS, EXT_SIGNATURE_ALGORITHMS, EXT_ALPN = 0, 10, 13, 16
EXT_PADDING, EXT_SUPPORTED_VERSIONS, EXT_KEY_SHARE = 21, 43, 51


def u8(n: int) -> bytes:
    return struct.pack("!B", n)


def u16(n: int) -> bytes:
    return struct.pack("!H", n)


def u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def vec8(data: bytes) -> bytes:
    return u8(len(data)) + data


def vec16(data: bytes) -> bytes:
    return u16(len(data)) + data


def vec24(data: bytes) -> bytes:
    return u24(len(data)) + data


def extension(ext_type: int, data: bytes) -> bytes:
    """One Extension: type u16 + opaque extension_data<0..2^16-1> (RFC 8446 4.2)."""
    return u16(ext_type) + vec16(data)


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _key(group: int, size: int) -> bytes:
    return bytes((group + i) & 0xFF for i in range(size))


def sni_ext_data(name: str | bytes) -> bytes:
    """ServerNameList with one host_name entry (RFC 6066 3)."""
    return vec16(u8(0) + vec16(_as_bytes(name)))


def alpn_ext_data(protocols) -> bytes:
    """ProtocolNameList (RFC 7301 3.1)."""
    return vec16(b"".join(vec8(_as_bytes(p)) for p in protocols))


def handshake_msg(msg_type: int, body: bytes) -> bytes:
    """Handshake header: msg_type u8 + length u24, then the body (RFC 8446 4)."""
    return u8(msg_type) + u24(len(body)) + body


def client_hello(sni=DEFAULT_SNI, alpn=(), versions=(0x0304, 0x0303), groups=(0x001D, 0x0017),
                 key_share_groups=(0x001D,), cipher_suites=(0x1301, 0x1302, 0x1303),
                 session_id=bytes(range(32)), legacy_version=0x0303, pad_to=None,
                 extra_extensions=()) -> bytes:
    """ClientHello handshake message (type 1, RFC 8446 4.1.2).

    ``sni=None`` omits server_name, ``versions=()`` omits supported_versions, empty ``groups`` /
    ``key_share_groups`` / ``alpn`` omit theirs. ``pad_to`` appends a padding extension (RFC 7685)
    so that the *body* is exactly that long.
    """
    exts = []
    if sni is not None:
        exts.append(extension(EXT_SERVER_NAME, sni_ext_data(sni)))
    if groups:
        exts.append(extension(EXT_SUPPORTED_GROUPS, vec16(b"".join(u16(g) for g in groups))))
    # rsa_pss_rsae_sha256, ecdsa_secp256r1_sha256, ed25519: realistic filler, not decoded.
    exts.append(extension(EXT_SIGNATURE_ALGORITHMS, vec16(u16(0x0804) + u16(0x0403) + u16(0x0807))))
    if alpn:
        exts.append(extension(EXT_ALPN, alpn_ext_data(alpn)))
    if versions:
        exts.append(extension(EXT_SUPPORTED_VERSIONS, vec8(b"".join(u16(v) for v in versions))))
    if key_share_groups:
        shares = b"".join(u16(g) + vec16(_key(g, CLIENT_SHARE_LEN.get(g, 32))) for g in key_share_groups)
        exts.append(extension(EXT_KEY_SHARE, vec16(shares)))
    exts.extend(extension(t, d) for t, d in extra_extensions)
    head = (u16(legacy_version) + CLIENT_RANDOM + vec8(session_id)
            + vec16(b"".join(u16(c) for c in cipher_suites)) + vec8(b"\x00"))
    if pad_to is not None:
        missing = pad_to - (len(head) + 2 + sum(map(len, exts))) - 4
        if missing < 0:
            raise ValueError(f"ClientHello body already exceeds pad_to={pad_to}")
        exts.append(extension(EXT_PADDING, bytes(missing)))
    return handshake_msg(1, head + vec16(b"".join(exts)))


def server_hello(version=0x0304, cipher_suite=0x1301, hrr=False, alpn=None, key_share_group=0x001D,
                 session_id=bytes(range(32)), legacy_version=0x0303) -> bytes:
    """ServerHello handshake message (type 2, RFC 8446 4.1.3).

    ``version=None`` builds a TLS <= 1.2 ServerHello: no supported_versions, no key_share, and no
    extensions block at all unless ``alpn`` is given. ``hrr=True`` uses the HelloRetryRequest random
    and the HRR key_share form (the selected group only, RFC 8446 4.2.8).
    """
    exts = []
    if version is not None:
        exts.append(extension(EXT_SUPPORTED_VERSIONS, u16(version)))
        if key_share_group is not None:
            share = u16(key_share_group)
            if not hrr:
                share += vec16(_key(key_share_group, SERVER_SHARE_LEN.get(key_share_group, 32)))
            exts.append(extension(EXT_KEY_SHARE, share))
    if alpn is not None:
        exts.append(extension(EXT_ALPN, alpn_ext_data((alpn,))))
    body = (u16(legacy_version) + (HRR_RANDOM if hrr else SERVER_RANDOM) + vec8(session_id)
            + u16(cipher_suite) + u8(0))
    if exts:
        body += vec16(b"".join(exts))
    return handshake_msg(2, body)


def certificate(certs=(b"\x30\x82" + bytes(500),)) -> bytes:
    """TLS 1.2 Certificate message (type 11, RFC 5246 7.4.2); ``certs=()`` is an empty client Certificate."""
    return handshake_msg(11, vec24(b"".join(vec24(c) for c in certs)))


def certificate_request() -> bytes:
    """TLS 1.2 CertificateRequest (type 13, RFC 5246 7.4.4): rsa_sign/ecdsa_sign, two sig algs, no CAs."""
    return handshake_msg(13, vec8(b"\x01\x40") + vec16(u16(0x0403) + u16(0x0804)) + vec16(b""))


def server_hello_done() -> bytes:
    """ServerHelloDone (type 14, RFC 5246 7.4.5): empty body."""
    return handshake_msg(14, b"")


def client_key_exchange() -> bytes:
    """ECDHE ClientKeyExchange (type 16, RFC 8422 5.7): one uncompressed P-256 point."""
    return handshake_msg(16, vec8(b"\x04" + _key(0x17, 64)))


def record(content_type: int, fragment: bytes, version=0x0303) -> bytes:
    """One record, whatever the fragment's length (RFC 8446 5.1: type, legacy_record_version, length)."""
    return u8(content_type) + u16(version) + u16(len(fragment)) + fragment


def records(content_type: int, payload: bytes, version=0x0303, max_fragment=16384) -> bytes:
    """Frame ``payload`` into records of at most ``max_fragment`` bytes (RFC 8446 5.1).

    An empty payload gives one zero-length record (invalid for the parser, useful in tests).
    """
    chunks = [payload[i:i + max_fragment] for i in range(0, len(payload), max_fragment)] or [b""]
    return b"".join(record(content_type, c, version) for c in chunks)


def handshake_record(*msgs: bytes, version=0x0301, max_fragment=16384) -> bytes:
    return records(22, b"".join(msgs), version=version, max_fragment=max_fragment)


def alert(level=2, description=40, version=0x0303) -> bytes:
    """One plaintext Alert record (RFC 8446 6); default fatal handshake_failure."""
    return records(21, u8(level) + u8(description), version=version)


def ccs(version=0x0303) -> bytes:
    """One ChangeCipherSpec record carrying the single byte 0x01 (RFC 5246 7.1, RFC 8446 D.4)."""
    return records(20, b"\x01", version=version)


def app_data(n: int, version=0x0303, seed=0) -> bytes:
    """One application_data record (type 23) with ``n`` seeded pseudo-random bytes."""
    return record(23, random.Random(seed).randbytes(n), version)


def sslv2_client_hello(cipher_specs=(0x010080, 0x000004), challenge=bytes(16), version=0x0301,
                       session_id=b"") -> bytes:
    """SSLv2-format compatible ClientHello with a 2-byte header (RFC 5246 E.2, RFC 6101 E.1)."""
    specs = b"".join(c.to_bytes(3, "big") for c in cipher_specs)
    msg = (u8(1) + u16(version) + u16(len(specs)) + u16(len(session_id)) + u16(len(challenge))
           + specs + session_id + challenge)
    return u16(0x8000 | len(msg)) + msg


def tls13_exchange(sni=DEFAULT_SNI, alpn=(), pq=False) -> tuple[list[bytes], list[bytes]]:
    """A TLS 1.3 full handshake as rustls sends it (middlebox compat), then application data.

    Returns (client chunks, server chunks), each in send order:
    client: [ClientHello record, CCS + encrypted Finished, app data];
    server: [ServerHello + CCS + encrypted EE..Finished, app data].
    """
    if pq:
        hello = client_hello(sni=sni, alpn=alpn, groups=(0x11EC, 0x001D, 0x0017, 0x0018),
                             key_share_groups=(0x11EC, 0x001D))
        group = 0x11EC
    else:
        hello = client_hello(sni=sni, alpn=alpn)
        group = 0x001D
    client = [handshake_record(hello), ccs() + app_data(53, seed=1), app_data(120, seed=2)]
    server = [handshake_record(server_hello(key_share_group=group), version=0x0303) + ccs()
              + app_data(32, seed=3) + app_data(900, seed=4) + app_data(286, seed=5)
              + app_data(69, seed=6),
              app_data(400, seed=7)]
    return client, server


def tls12_exchange(sni=DEFAULT_SNI, client_cert=True) -> tuple[list[bytes], list[bytes]]:
    """A TLS 1.2 ECDHE handshake with a CertificateRequest.

    ``client_cert=False`` makes the client answer with an *empty* Certificate (RFC 5246 7.4.6).
    client: [ClientHello, Certificate + ClientKeyExchange + CCS + encrypted Finished, app data];
    server: [ServerHello + Certificate + CertificateRequest + ServerHelloDone, CCS + Finished, app data].
    """
    hello = client_hello(sni=sni, versions=(), key_share_groups=(),
                         cipher_suites=(0xC02F, 0xC02B, 0xC030, 0x009C))
    client_certs = (b"\x30\x82" + bytes(300),) if client_cert else ()
    client = [handshake_record(hello),
              handshake_record(certificate(client_certs), client_key_exchange(), version=0x0303)
              + ccs() + records(22, random.Random(8).randbytes(40)),
              app_data(150, seed=9)]
    server = [handshake_record(server_hello(version=None, cipher_suite=0xC02F), certificate(),
                               certificate_request(), server_hello_done(), version=0x0303),
              ccs() + records(22, random.Random(10).randbytes(40)),
              app_data(250, seed=11)]
    return client, server
