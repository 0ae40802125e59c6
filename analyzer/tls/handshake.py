"""Handshake layer: reassemble messages from record bodies, decode the ones the verdict needs.

Role: ``HandshakeBuffer`` joins a message fragmented over several records and splits several messages
coalesced into one record (RFC 8446 5.1 allows both; dpkt's ``TLSHandshake`` docstring warns about
them). The ``parse_*`` decoders take one *complete* message body and return an event or raise
``TLSParseError``: every length goes through ``Cursor``, and a malformed extension inside a
well-framed hello makes the hello invalid.
Must not: look at record headers, buffer anything but unfinished handshake messages, or decode
extensions the analyzer does not report (they are listed by type only).
"""

from __future__ import annotations

import re

from analyzer.errors import TLSParseError
from analyzer.tls.constants import (CERTIFICATE, CERTIFICATE_REQUEST, CLIENT_HELLO, EXT_ALPN, EXT_KEY_SHARE,
                                    EXT_SERVER_NAME, EXT_SUPPORTED_GROUPS, EXT_SUPPORTED_VERSIONS,
                                    HANDSHAKE_HEADER_LEN, HELLO_RETRY_REQUEST_RANDOM, SERVER_HELLO,
                                    SERVER_NAME_HOST_NAME)
from analyzer.tls.cursor import Cursor
from analyzer.tls.events import (Certificate, CertificateRequest, ClientHello, Event, HandshakeMessage,
                                 ServerHello)

MAX_SESSION_ID_LEN = 32  # opaque legacy_session_id<0..32> (RFC 8446 4.1.2)
SSLV2_VERSION = 0x0002


class HandshakeBuffer:
    """Bytes of handshake records (before ChangeCipherSpec) until they form whole messages.

    A message's record version is that of the record carrying its first byte. Declared lengths above
    ``max_message`` raise at once, from the 4-byte header, without waiting for the body (h11's
    ``max_incomplete_event_size``): a lying length must not make us buffer.
    """

    __slots__ = ("_data", "_version", "_next_version", "max_message")

    def __init__(self, max_message: int = 64 * 1024) -> None:
        self._data = bytearray()
        self._version = self._next_version = 0
        self.max_message = max_message

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished message; while non-zero a ChangeCipherSpec is a protocol error."""
        return len(self._data)

    def feed(self, fragment: bytes, record_version: int) -> None:
        """Add one handshake record body; collect messages with ``maybe_message``."""
        if not self._data:
            self._version = record_version
        self._data += fragment
        self._next_version = record_version

    def maybe_message(self) -> tuple[int, bytes, int] | None:
        """The next complete ``(msg_type, body, record_version)``, or None until more is fed.

        One message at a time (h11 ``maybe_extract_*``), so messages completed before a malformed one
        still reach the caller.
        """
        if len(self._data) < HANDSHAKE_HEADER_LEN:
            return None
        length = int.from_bytes(self._data[1:4], "big")
        if length > self.max_message:
            limit = self.max_message
            raise TLSParseError("handshake message exceeds "
                                + (f"{limit // 1024} KiB" if limit % 1024 == 0 else f"{limit} bytes"))
        end = HANDSHAKE_HEADER_LEN + length
        if len(self._data) < end:
            return None
        message = (self._data[0], bytes(self._data[HANDSHAKE_HEADER_LEN:end]), self._version)
        del self._data[:end]
        # Whatever follows began inside the latest record, so it carries that record's version.
        self._version = self._next_version
        return message


def parse_message(msg_type: int, body: bytes, record_version: int = 0) -> Event:
    """The event for one complete plaintext handshake message."""
    if msg_type == CLIENT_HELLO:
        return parse_client_hello(body, record_version)
    if msg_type == SERVER_HELLO:
        return parse_server_hello(body, record_version)
    if msg_type == CERTIFICATE:
        return parse_certificate(body)
    if msg_type == CERTIFICATE_REQUEST:
        return CertificateRequest(len(body))
    return HandshakeMessage(msg_type, len(body))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def decode_name(raw: bytes) -> str:
    """SNI and ALPN are ASCII on the wire, but a peer may send anything: never raise (ja4 non-ASCII
    ALPN).  Control characters are escaped too, so a name can go into a CSV cell or a terminal as is."""
    text = raw.decode("ascii", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text) if _CONTROL.search(text) else text


def _extensions(c: Cursor, what: str) -> list[tuple[int, bytes]]:
    """``Extension extensions<0..2^16-1>`` at the end of a hello; absent is legal for TLS <= 1.2
    (RFC 5246 7.4.1.2), duplicates are not (RFC 8446 4.2)."""
    if c.at_end:
        return []
    # A peer that frames the hello well but breaks an extension would get decode_error from any real
    # stack (RFC 8446 6.2), so the whole hello is rejected rather than half-reported.
    exts = c.sub(2, f"{what} extensions")
    c.expect_end()
    out, seen = [], set()
    while not exts.at_end:
        ext_type = exts.u16()
        if ext_type in seen:
            raise TLSParseError(f"{what}: duplicate extension {ext_type}")
        seen.add(ext_type)
        out.append((ext_type, exts.vector(2)))
    return out


def _session_id(c: Cursor, what: str) -> bytes:
    # 32 random bytes from rustls (middlebox compat, RFC 8446 D.4) -- not a sign of resumption.
    session_id = c.vector(1)
    if len(session_id) > MAX_SESSION_ID_LEN:
        raise TLSParseError(f"{what}: session_id of {len(session_id)} bytes (max 32)")
    return session_id


def _alpn_list(data: bytes) -> tuple[str, ...]:
    # ProtocolName protocol_name_list<2..2^16-1>, each ProtocolName <1..2^8-1> (RFC 7301 3.1).
    c = Cursor(data, "ALPN extension")
    names = c.sub(2, "ALPN protocol list", min_len=2)
    c.expect_end()
    out = []
    while not names.at_end:
        out.append(decode_name(names.vector(1, min_len=1)))
    return tuple(out)


def _server_name(data: bytes) -> str | None:
    # ServerName server_name_list<1..2^16-1>; the first host_name entry is the SNI (RFC 6066 3).
    c = Cursor(data, "server_name extension")
    names = c.sub(2, "server_name list", min_len=1)
    c.expect_end()
    sni = None
    while not names.at_end:
        name_type = names.u8()
        name = names.vector(2, min_len=1)
        if name_type == SERVER_NAME_HOST_NAME and sni is None:
            sni = decode_name(name)
    return sni


def _client_key_share_groups(data: bytes) -> tuple[int, ...]:
    # KeyShareEntry client_shares<0..2^16-1>; entry = group u16 + key_exchange<1..2^16-1> (RFC 8446 4.2.8).
    c = Cursor(data, "key_share extension")
    shares = c.sub(2, "client_shares")
    c.expect_end()
    groups = []
    while not shares.at_end:
        groups.append(shares.u16())
        shares.vector(2, min_len=1)
    return tuple(groups)


def _u16_list_ext(data: bytes, len_size: int, what: str) -> tuple[int, ...]:
    c = Cursor(data, what)
    values = c.u16_list(len_size, min_len=2)
    c.expect_end()
    return values


def parse_client_hello(body: bytes, record_version: int = 0) -> ClientHello:
    """Decode a ClientHello body (RFC 8446 4.1.2; RFC 5246 7.4.1.2 for hellos without extensions).

    ``record_version`` is copied into the event (0 when unknown).
    """
    c = Cursor(body, "ClientHello")
    legacy_version = c.u16()
    random = c.bytes(32)
    session_id = _session_id(c, "ClientHello")
    cipher_suites = c.u16_list(2, min_len=2)  # CipherSuite cipher_suites<2..2^16-2>
    compression_methods = c.vector(1, min_len=1)  # opaque legacy_compression_methods<1..2^8-1>
    # Only what verdicts and reports use is decoded; every other extension is kept by type, in order
    # (enough for a JA4-style fingerprint later), including GREASE types (RFC 8701).
    sni, alpn, versions, groups, share_groups = None, (), (), (), ()
    exts = _extensions(c, "ClientHello")
    for ext_type, data in exts:
        if ext_type == EXT_SERVER_NAME:
            sni = _server_name(data)
        elif ext_type == EXT_ALPN:
            alpn = _alpn_list(data)
        elif ext_type == EXT_SUPPORTED_VERSIONS:  # ProtocolVersion versions<2..254> (RFC 8446 4.2.1)
            versions = _u16_list_ext(data, 1, "supported_versions extension")
        elif ext_type == EXT_SUPPORTED_GROUPS:  # NamedGroup named_group_list<2..2^16-1> (4.2.7)
            groups = _u16_list_ext(data, 2, "supported_groups extension")
        elif ext_type == EXT_KEY_SHARE:  # X25519MLKEM768 here is what makes Linkerd's hello > 1.2 KB
            share_groups = _client_key_share_groups(data)
    return ClientHello(
        legacy_version=legacy_version, random=random, session_id=session_id,
        cipher_suites=cipher_suites, compression_methods=compression_methods,
        extensions=tuple(t for t, _ in exts), sni=sni, alpn=alpn, supported_versions=versions,
        supported_groups=groups, key_share_groups=share_groups, record_version=record_version,
        length=len(body))


def parse_server_hello(body: bytes, record_version: int = 0) -> ServerHello:
    """Decode a ServerHello or HelloRetryRequest body (RFC 8446 4.1.3, 4.1.4; RFC 5246 7.4.1.3)."""
    c = Cursor(body, "ServerHello")
    legacy_version = c.u16()
    random = c.bytes(32)
    if legacy_version >> 8 == 0x7F and (legacy_version & 0xFF) < 22:
        # TLS 1.3 drafts before -22 put the version here and had neither session_id nor compression
        # (draft-ietf-tls-tls13-21 4.1.3); middlebox compatibility brought both back in draft 22.
        session_id, cipher_suite, compression_method = b"", c.u16(), 0
    else:
        session_id = _session_id(c, "ServerHello")
        cipher_suite = c.u16()
        compression_method = c.u8()
    # RFC 8446 4.1.3: an HRR is a ServerHello whose random is this fixed value.
    is_hrr = random == HELLO_RETRY_REQUEST_RANDOM
    version = alpn = group = None
    exts = _extensions(c, "ServerHello")
    for ext_type, data in exts:
        if ext_type == EXT_SUPPORTED_VERSIONS:  # selected_version, a single u16 (RFC 8446 4.2.1)
            e = Cursor(data, "ServerHello supported_versions")
            version = e.u16()
            e.expect_end()
        elif ext_type == EXT_KEY_SHARE:
            # HRR carries only selected_group; a ServerHello one KeyShareEntry (RFC 8446 4.2.8).
            e = Cursor(data, "ServerHello key_share")
            group = e.u16()
            if not is_hrr:
                e.vector(2, min_len=1)
            e.expect_end()
        elif ext_type == EXT_ALPN:
            names = _alpn_list(data)
            if len(names) != 1:  # RFC 7301 3.1: the server selects exactly one protocol
                raise TLSParseError(f"ServerHello ALPN lists {len(names)} protocols, not 1")
            alpn = names[0]
    return ServerHello(
        legacy_version=legacy_version, random=random, session_id=session_id,
        cipher_suite=cipher_suite, compression_method=compression_method,
        extensions=tuple(t for t, _ in exts), supported_version=version, alpn=alpn,
        key_share_group=group, is_hello_retry_request=is_hrr, record_version=record_version)


def parse_certificate(body: bytes) -> Certificate:
    """Decode a TLS <= 1.2 Certificate body: ``ASN.1Cert certificate_list<0..2^24-1>``, each cert
    ``<1..2^24-1>`` (RFC 5246 7.4.2). TLS 1.3 sends Certificate encrypted, so its form never shows."""
    c = Cursor(body, "Certificate")
    certs = c.sub(3, "certificate_list")
    c.expect_end()
    lengths = []
    while not certs.at_end:
        lengths.append(len(certs.vector(3, min_len=1)))
    return Certificate(tuple(lengths))


def parse_sslv2_client_hello(msg: bytes) -> ClientHello:
    """Decode an SSLv2-format ClientHello from its msg_type byte on (RFC 5246 E.2, RFC 6101 E.1).

    Old clients (and some scanners) open with it to reach both SSLv2 and SSLv3/TLS servers. It has no
    extensions, so no SNI: the event says ``sslv2=True``.
    """
    c = Cursor(msg, "SSLv2 ClientHello")
    if c.u8() != CLIENT_HELLO:
        raise TLSParseError("SSLv2 record is not a ClientHello")
    version = c.u16()
    spec_len, session_id_len, challenge_len = c.u16(), c.u16(), c.u16()
    if spec_len == 0 or spec_len % 3:  # V2CipherSpec is 3 bytes
        raise TLSParseError(f"SSLv2 ClientHello: cipher_spec_length {spec_len} is not a multiple of 3")
    if session_id_len not in (0, 16) or not 16 <= challenge_len <= 32:
        raise TLSParseError("SSLv2 ClientHello: bad session_id or challenge length")
    specs = c.bytes(spec_len)
    session_id = c.bytes(session_id_len)
    challenge = c.bytes(challenge_len)
    c.expect_end()
    return ClientHello(
        legacy_version=version,
        random=challenge.rjust(32, b"\x00"),  # "right-justified" into ClientHello.random (E.2)
        session_id=session_id,
        # A TLS suite is V2CipherSpec 0x00XXXX, so its int value is the 16-bit code unchanged.
        cipher_suites=tuple(int.from_bytes(specs[i:i + 3], "big") for i in range(0, spec_len, 3)),
        compression_methods=b"\x00", extensions=(), sni=None, alpn=(), supported_versions=(),
        supported_groups=(), key_share_groups=(), record_version=SSLV2_VERSION,
        length=len(msg) - 1, sslv2=True)
