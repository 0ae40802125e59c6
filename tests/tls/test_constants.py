"""Display names for code points: never raise, unknown codes print as hex."""

import pytest

from analyzer.tls import alert_name, cipher_name, group_name, is_grease, version_name


@pytest.mark.parametrize("code, name", [
    (0x0304, "TLS 1.3"), (0x0303, "TLS 1.2"), (0x0302, "TLS 1.1"), (0x0301, "TLS 1.0"),
    (0x0300, "SSL 3.0"), (0x0002, "SSL 2.0"), (0x7F1C, "TLS 1.3 (draft 28)"), (0x7F12, "TLS 1.3 (draft 18)"),
    (0xFB1A, "TLS 1.3 (draft)"), (0x7E02, "TLS 1.3 (draft)"), (0xFEFD, "DTLS 1.2"),
    (0x0A0A, "GREASE (0x0a0a)"), (0x0305, "0x0305"), (0x1234, "0x1234"),
])
def test_version_name(code, name):
    assert version_name(code) == name


def test_alert_name():
    assert (alert_name(40), alert_name(0), alert_name(116), alert_name(200)) == (
        "handshake_failure", "close_notify", "certificate_required", "0xc8")


def test_group_name():
    assert [group_name(c) for c in (0x001D, 0x0017, 0x11EC, 0x6399, 0x2A2A, 0x4242)] == [
        "x25519", "secp256r1", "X25519MLKEM768", "X25519Kyber768Draft00", "GREASE (0x2a2a)", "0x4242"]


def test_cipher_name():
    assert [cipher_name(c) for c in (0x1301, 0x1303, 0xC02F, 0x9999)] == [
        "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "0x9999"]


def test_is_grease_matches_rfc_8701_exactly():
    grease = {code for code in range(0x10000) if is_grease(code)}
    assert grease == {0x0A0A + 0x1010 * i for i in range(16)}
