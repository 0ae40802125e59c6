"""TLS code points and their display names (IANA "TLS Parameters" registries).

Role: the single place for numeric codes the parser compares against, and the ``*_name`` helpers the
report uses. Must not: parse bytes, hold state, or import anything but the standard library. The name
helpers never raise: an unknown code prints as ``0x%04x`` (or ``0x%02x`` for one-byte codes).
"""

from __future__ import annotations

# Record layer ContentType (RFC 8446 5.1; heartbeat RFC 6520).
CHANGE_CIPHER_SPEC = 20  # RFC 5246 7.1
ALERT = 21  # RFC 8446 6
HANDSHAKE = 22  # RFC 8446 4
APPLICATION_DATA = 23  # RFC 8446 5.2 (also every TLS 1.3 encrypted record)
HEARTBEAT = 24  # RFC 6520

RECORD_HEADER_LEN = 5  # type u8, legacy_record_version u16, length u16 (RFC 8446 5.1)
# RFC 5246 6.2.3: TLSCiphertext.length MUST NOT exceed 2^14 + 2048 (RFC 8446 5.2 is tighter: +256).
MAX_RECORD_LEN = 2**14 + 2048
MIN_RECORD_VERSION = 0x0300  # SSL 3.0 (RFC 6101)
MAX_RECORD_VERSION = 0x0304  # never sent in practice (RFC 8446 5.1 freezes it at 0x0303) but legal

# HandshakeType (RFC 8446 4, RFC 5246 7.4).
HELLO_REQUEST = 0  # RFC 5246 7.4.1.1
CLIENT_HELLO = 1  # RFC 8446 4.1.2
SERVER_HELLO = 2  # RFC 8446 4.1.3 (also HelloRetryRequest)
NEW_SESSION_TICKET = 4  # RFC 8446 4.6.1
END_OF_EARLY_DATA = 5  # RFC 8446 4.5
ENCRYPTED_EXTENSIONS = 8  # RFC 8446 4.3.1
CERTIFICATE = 11  # RFC 8446 4.4.2, RFC 5246 7.4.2
SERVER_KEY_EXCHANGE = 12  # RFC 5246 7.4.3
CERTIFICATE_REQUEST = 13  # RFC 8446 4.3.2, RFC 5246 7.4.4
SERVER_HELLO_DONE = 14  # RFC 5246 7.4.5
CERTIFICATE_VERIFY = 15  # RFC 8446 4.4.3
CLIENT_KEY_EXCHANGE = 16  # RFC 5246 7.4.7
FINISHED = 20  # RFC 8446 4.4.4
KEY_UPDATE = 24  # RFC 8446 4.6.3
MESSAGE_HASH = 254  # RFC 8446 4.4.1 (synthetic, never on the wire)

HANDSHAKE_HEADER_LEN = 4  # msg_type u8 + length u24 (RFC 8446 4)

# ExtensionType (IANA TLS ExtensionType Values).
EXT_SERVER_NAME = 0  # RFC 6066 3
EXT_STATUS_REQUEST = 5  # RFC 6066 8
EXT_SUPPORTED_GROUPS = 10  # RFC 8446 4.2.7 (ex elliptic_curves, RFC 8422)
EXT_EC_POINT_FORMATS = 11  # RFC 8422 5.1.2
EXT_SIGNATURE_ALGORITHMS = 13  # RFC 8446 4.2.3
EXT_HEARTBEAT = 15  # RFC 6520
EXT_ALPN = 16  # RFC 7301 3.1
EXT_SCT = 18  # RFC 6962
EXT_PADDING = 21  # RFC 7685
EXT_ENCRYPT_THEN_MAC = 22  # RFC 7366
EXT_EXTENDED_MASTER_SECRET = 23  # RFC 7627
EXT_COMPRESS_CERTIFICATE = 27  # RFC 8879
EXT_RECORD_SIZE_LIMIT = 28  # RFC 8449
EXT_SESSION_TICKET = 35  # RFC 5077
EXT_PRE_SHARED_KEY = 41  # RFC 8446 4.2.11
EXT_EARLY_DATA = 42  # RFC 8446 4.2.10
EXT_SUPPORTED_VERSIONS = 43  # RFC 8446 4.2.1
EXT_COOKIE = 44  # RFC 8446 4.2.2
EXT_PSK_KEY_EXCHANGE_MODES = 45  # RFC 8446 4.2.9
EXT_CERTIFICATE_AUTHORITIES = 47  # RFC 8446 4.2.4
EXT_POST_HANDSHAKE_AUTH = 49  # RFC 8446 4.2.6
EXT_SIGNATURE_ALGORITHMS_CERT = 50  # RFC 8446 4.2.3
EXT_KEY_SHARE = 51  # RFC 8446 4.2.8
EXT_APPLICATION_SETTINGS = 0x4469  # draft-vvv-tls-alps (Chrome)
EXT_ENCRYPTED_CLIENT_HELLO = 0xFE0D  # draft-ietf-tls-esni
EXT_RENEGOTIATION_INFO = 0xFF01  # RFC 5746

SERVER_NAME_HOST_NAME = 0  # NameType host_name, RFC 6066 3

# RFC 8446 4.1.3: ServerHello.random of a HelloRetryRequest is SHA-256("HelloRetryRequest").
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

# AlertLevel (RFC 5246 7.2; RFC 8446 6 keeps it but makes severity implicit in the description).
ALERT_WARNING = 1
ALERT_FATAL = 2

_VERSIONS = {
    0x0002: "SSL 2.0",  # RFC 6101 E.1 (SSLv2-format ClientHello)
    0x0300: "SSL 3.0",  # RFC 6101
    0x0301: "TLS 1.0",  # RFC 2246
    0x0302: "TLS 1.1",  # RFC 4346
    0x0303: "TLS 1.2",  # RFC 5246
    0x0304: "TLS 1.3",  # RFC 8446
    0xFEFF: "DTLS 1.0",  # RFC 4347
    0xFEFD: "DTLS 1.2",  # RFC 6347
    0xFEFC: "DTLS 1.3",  # RFC 9147
}

_ALERTS = {  # AlertDescription, RFC 8446 6 and RFC 5246 7.2
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
    22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure",
    41: "no_certificate", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
    51: "decrypt_error", 60: "export_restriction", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
    90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
    110: "unsupported_extension", 111: "certificate_unobtainable", 112: "unrecognized_name",
    113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
    115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
    121: "ech_required",
}

_GROUPS = {  # IANA TLS Supported Groups
    0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1",  # RFC 8422
    0x001D: "x25519", 0x001E: "x448",  # RFC 8422 / RFC 7748
    0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096",  # RFC 7919
    0x0103: "ffdhe6144", 0x0104: "ffdhe8192",
    0x0200: "MLKEM512", 0x0201: "MLKEM768", 0x0202: "MLKEM1024",  # draft-connolly-tls-mlkem-key-agreement
    0x11EB: "SecP256r1MLKEM768", 0x11EC: "X25519MLKEM768",  # draft-kwiatkowski-tls-ecdhe-mlkem
    0x11ED: "SecP384r1MLKEM1024",
    0x6399: "X25519Kyber768Draft00", 0x639A: "SecP256r1Kyber768Draft00",  # draft-tls-westerbaan-xyber768d00
}

_CIPHERS = {  # IANA TLS Cipher Suites, the ones seen in practice
    0x1301: "TLS_AES_128_GCM_SHA256", 0x1302: "TLS_AES_256_GCM_SHA384",  # RFC 8446 B.4
    0x1303: "TLS_CHACHA20_POLY1305_SHA256", 0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",  # RFC 5289
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",  # RFC 7905
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",  # RFC 5288
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA", 0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",  # RFC 5246
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",  # RFC 5746 3.3
    0x5600: "TLS_FALLBACK_SCSV",  # RFC 7507
}


def is_grease(code: int) -> bool:
    """True for the RFC 8701 GREASE values 0x0a0a, 0x1a1a, ... 0xfafa (two equal 0x?a bytes)."""
    return (code & 0x0F0F) == 0x0A0A and (code >> 8) == (code & 0xFF)


def version_name(code: int) -> str:
    """'TLS 1.3' for 0x0304, 'TLS 1.3 (draft 28)' for 0x7f1c, '0x%04x' when unknown."""
    if code in _VERSIONS:
        return _VERSIONS[code]
    if code >> 8 == 0x7F:  # draft-ietf-tls-tls13-NN used 0x7f00 | NN (RFC 8446 D)
        return f"TLS 1.3 (draft {code & 0xFF})"
    if code >> 8 in (0x7E, 0xFB):  # Google 0x7eXX experiments, Facebook 0xfbXX drafts
        return "TLS 1.3 (draft)"
    if is_grease(code):
        return f"GREASE (0x{code:04x})"
    return f"0x{code:04x}"


def alert_name(code: int) -> str:
    """'handshake_failure' for 40, '0x%02x' when unknown."""
    return _ALERTS.get(code, f"0x{code:02x}")


def group_name(code: int) -> str:
    """'x25519' for 0x001d, 'X25519MLKEM768' for 0x11ec, '0x%04x' when unknown."""
    if code in _GROUPS:
        return _GROUPS[code]
    return f"GREASE (0x{code:04x})" if is_grease(code) else f"0x{code:04x}"


def cipher_name(code: int) -> str:
    """IANA name of a common cipher suite, '0x%04x' otherwise."""
    if code in _CIPHERS:
        return _CIPHERS[code]
    return f"GREASE (0x{code:04x})" if is_grease(code) else f"0x{code:04x}"
