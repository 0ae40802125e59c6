"""Handshake reassembly and the hello / Certificate decoders, on complete message bodies."""

import pytest

from analyzer.errors import TLSParseError
from analyzer.tls import Certificate, CertificateRequest, HandshakeMessage
from analyzer.tls.handshake import (
    HandshakeBuffer,
    parse_certificate,
    parse_client_hello,
    parse_message,
    parse_server_hello,
    parse_sslv2_client_hello,
)
from tests.tlsbytes import (
    CLIENT_RANDOM,
    DEFAULT_SNI,
    HRR_RANDOM,
    SERVER_RANDOM,
    certificate,
    client_hello,
    extension,
    handshake_msg,
    server_hello,
    sslv2_client_hello,
    u8,
    u16,
    u24,
    vec8,
    vec16,
    vec24,
)


def body(msg: bytes) -> bytes:
    """Strip the 4-byte handshake header the builders add."""
    assert int.from_bytes(msg[1:4], "big") == len(msg) - 4
    return msg[4:]


class TestClientHello:
    def test_default_hello_every_field(self):
        msg = client_hello()
        ch = parse_client_hello(body(msg), record_version=0x0301)
        assert ch.legacy_version == 0x0303
        assert ch.random == CLIENT_RANDOM
        assert ch.session_id == bytes(range(32))
        assert ch.cipher_suites == (0x1301, 0x1302, 0x1303)
        assert ch.compression_methods == b"\x00"
        assert ch.extensions == (0, 10, 13, 43, 51)
        assert ch.sni == DEFAULT_SNI
        assert ch.alpn == ()
        assert ch.supported_versions == (0x0304, 0x0303)
        assert ch.supported_groups == (0x001D, 0x0017)
        assert ch.key_share_groups == (0x001D,)
        assert ch.record_version == 0x0301
        assert ch.length == len(msg) - 4
        assert ch.sslv2 is False
        assert ch.offered_max_version == 0x0304

    def test_alpn_and_pq_key_shares(self):
        ch = parse_client_hello(body(client_hello(
            alpn=("transport.l5d.io/v1", b"h2"), groups=(0x11EC, 0x001D),
            key_share_groups=(0x11EC, 0x001D))))
        assert ch.alpn == ("transport.l5d.io/v1", "h2")
        assert ch.extensions == (0, 10, 13, 16, 43, 51)
        assert ch.key_share_groups == (0x11EC, 0x001D)
        assert ch.length > 1200

    def test_without_sni_and_versions_the_legacy_version_is_the_offer(self):
        ch = parse_client_hello(body(client_hello(sni=None, versions=(), legacy_version=0x0302)))
        assert (ch.sni, ch.supported_versions, ch.offered_max_version) == (None, (), 0x0302)
        assert ch.extensions == (10, 13, 51)

    def test_grease_is_kept_but_not_offered(self):
        ch = parse_client_hello(body(client_hello(
            versions=(0x7A7A, 0x0304, 0x0303), groups=(0x2A2A, 0x001D), cipher_suites=(0x0A0A, 0x1301),
            extra_extensions=((0x1A1A, b""),))))
        assert ch.supported_versions == (0x7A7A, 0x0304, 0x0303)
        assert ch.offered_max_version == 0x0304  # 0x7a7a is larger but GREASE (RFC 8701)
        assert ch.supported_groups == (0x2A2A, 0x001D)
        assert ch.cipher_suites == (0x0A0A, 0x1301)
        assert ch.extensions[-1] == 0x1A1A

    def test_only_grease_versions_fall_back_to_legacy(self):
        ch = parse_client_hello(body(client_hello(versions=(0xFAFA,))))
        assert ch.offered_max_version == 0x0303

    def test_non_ascii_names_are_escaped_not_raised(self):
        ch = parse_client_hello(body(client_hello(sni="bücher.example", alpn=(b"\xff\x00h2", "h2"))))
        assert ch.sni == "b\\xc3\\xbccher.example"
        assert ch.alpn == ("\\xff\\x00h2", "h2")  # ASCII controls are escaped too

    def test_padding_reaches_exact_size(self):
        ch = parse_client_hello(body(client_hello(pad_to=512)))
        assert (ch.length, ch.extensions[-1]) == (512, 21)

    def test_hello_without_extensions_block(self):
        # RFC 5246 7.4.1.2: extensions may be absent entirely.
        raw = u16(0x0301) + CLIENT_RANDOM + vec8(b"") + vec16(u16(0x002F)) + vec8(b"\x00")
        ch = parse_client_hello(raw)
        assert (ch.extensions, ch.sni, ch.cipher_suites, ch.session_id) == ((), None, (0x002F,), b"")

    def test_every_truncation_raises_except_at_the_end_of_the_fixed_part(self):
        raw = body(client_hello())
        fixed_end = 2 + 32 + 33 + 8 + 2  # version, random, session_id, 3 suites, compression
        for cut in range(len(raw)):
            if cut == fixed_end:
                assert parse_client_hello(raw[:cut]).extensions == ()
            else:
                with pytest.raises(TLSParseError):
                    parse_client_hello(raw[:cut])

    @pytest.mark.parametrize("ext_type, data, message", [
        (0, vec16(u8(0) + u16(16) + b"ab"), "truncated server_name list"),
        (0, vec16(b""), "server_name extension: vector of 0 bytes"),
        (0, vec16(u8(0) + vec16(b"a")) + b"x", "server_name extension: 1 unexpected trailing"),
        (16, vec16(vec8(b"h2") + b"\x00"), "ALPN protocol list: vector of 0 bytes"),
        (16, vec16(b""), "ALPN extension: vector of 0 bytes, at least 2"),
        (43, vec8(b"\x03\x04\x03"), "odd length 3"),
        (43, vec8(b""), "supported_versions extension: vector of 0 bytes"),
        (10, vec16(b"\x00\x1d") + b"\x00", "supported_groups extension: 1 unexpected trailing"),
        (51, vec16(u16(0x1D) + vec16(b"")), "client_shares: vector of 0 bytes"),
    ])
    def test_malformed_extension_makes_the_hello_invalid(self, ext_type, data, message):
        msg = client_hello(sni=None, versions=(), groups=(), key_share_groups=(),
                           extra_extensions=((ext_type, data),))
        with pytest.raises(TLSParseError, match=message):
            parse_client_hello(body(msg))

    def test_duplicate_extension_raises(self):
        msg = client_hello(extra_extensions=((43, vec8(u16(0x0304))),))
        with pytest.raises(TLSParseError, match="ClientHello: duplicate extension 43"):
            parse_client_hello(body(msg))

    def test_extension_overrunning_the_block_raises(self):
        raw = bytearray(body(client_hello(sni=None, versions=(), groups=(), key_share_groups=())))
        raw[-10:-8] = u16(0x0100)  # signature_algorithms now claims 256 bytes
        with pytest.raises(TLSParseError, match="truncated ClientHello extensions"):
            parse_client_hello(bytes(raw))

    def test_bytes_after_extensions_raise(self):
        with pytest.raises(TLSParseError, match="ClientHello: 1 unexpected trailing bytes"):
            parse_client_hello(body(client_hello()) + b"\x00")

    def test_oversized_session_id_raises(self):
        with pytest.raises(TLSParseError, match="session_id of 33 bytes"):
            parse_client_hello(body(client_hello(session_id=bytes(33))))

    def test_no_cipher_suites_raises(self):
        with pytest.raises(TLSParseError, match="vector of 0 bytes, at least 2"):
            parse_client_hello(body(client_hello(cipher_suites=())))


class TestServerHello:
    def test_tls13(self):
        sh = parse_server_hello(body(server_hello()), record_version=0x0303)
        assert sh.legacy_version == 0x0303
        assert sh.random == SERVER_RANDOM
        assert sh.session_id == bytes(range(32))
        assert (sh.cipher_suite, sh.compression_method) == (0x1301, 0)
        assert sh.extensions == (43, 51)
        assert (sh.supported_version, sh.version) == (0x0304, 0x0304)
        assert (sh.key_share_group, sh.alpn) == (0x001D, None)
        assert sh.is_hello_retry_request is False
        assert sh.record_version == 0x0303

    def test_pq_key_share(self):
        assert parse_server_hello(body(server_hello(key_share_group=0x11EC))).key_share_group == 0x11EC

    def test_hello_retry_request(self):
        sh = parse_server_hello(body(server_hello(hrr=True, key_share_group=0x0017)))
        assert sh.random == HRR_RANDOM
        assert (sh.is_hello_retry_request, sh.key_share_group, sh.version) == (True, 0x0017, 0x0304)

    def test_tls12_without_extensions_uses_legacy_version(self):
        sh = parse_server_hello(body(server_hello(version=None, cipher_suite=0xC02F)))
        assert (sh.extensions, sh.supported_version, sh.version) == ((), None, 0x0303)
        assert sh.key_share_group is None

    def test_tls12_alpn(self):
        sh = parse_server_hello(body(server_hello(version=None, alpn="h2")))
        assert (sh.alpn, sh.extensions) == ("h2", (16,))

    def test_record_version_0303_with_tls10_legacy(self):
        assert parse_server_hello(body(server_hello(version=None, legacy_version=0x0301))).version == 0x0301

    def test_alpn_must_select_exactly_one(self):
        raw = body(server_hello(version=None)) + vec16(extension(16, vec16(vec8(b"h2") + vec8(b"x"))))
        with pytest.raises(TLSParseError, match="ServerHello ALPN lists 2 protocols, not 1"):
            parse_server_hello(raw)

    def test_hrr_shaped_key_share_in_a_server_hello_raises(self):
        raw = body(server_hello(version=None)) + vec16(extension(43, u16(0x0304)) + extension(51, u16(0x1D)))
        with pytest.raises(TLSParseError, match="truncated ServerHello key_share"):
            parse_server_hello(raw)

    def test_supported_versions_list_in_server_hello_raises(self):
        raw = body(server_hello(version=None)) + vec16(extension(43, u16(0x0304) + u16(0x0303)))
        with pytest.raises(TLSParseError, match="ServerHello supported_versions: 2 unexpected trailing"):
            parse_server_hello(raw)

    def test_truncated_random_raises(self):
        with pytest.raises(TLSParseError, match="truncated ServerHello"):
            parse_server_hello(body(server_hello())[:20])


class TestCertificate:
    def test_lengths(self):
        assert parse_certificate(body(certificate((b"a" * 500, b"b" * 30)))) == Certificate((500, 30))

    def test_empty_client_certificate(self):
        cert = parse_certificate(body(certificate(())))
        assert (cert.cert_lengths, cert.is_empty) == ((), True)
        assert not parse_certificate(body(certificate())).is_empty

    def test_zero_length_certificate_raises(self):
        with pytest.raises(TLSParseError, match="vector of 0 bytes, at least 1"):
            parse_certificate(vec24(vec24(b"")))

    def test_lying_list_length_raises(self):
        with pytest.raises(TLSParseError, match="truncated Certificate"):
            parse_certificate(u24(600) + vec24(b"x" * 10))


class TestSSLv2:
    def test_fields(self):
        ch = parse_sslv2_client_hello(sslv2_client_hello(challenge=bytes(range(1, 17)))[2:])
        assert ch.legacy_version == 0x0301
        assert ch.cipher_suites == (0x010080, 0x000004)
        assert ch.random == bytes(16) + bytes(range(1, 17))
        assert (ch.session_id, ch.sslv2, ch.record_version, ch.length) == (b"", True, 0x0002, 30)
        assert (ch.sni, ch.extensions, ch.offered_max_version) == (None, (), 0x0301)

    def test_cipher_spec_length_must_be_a_multiple_of_3(self):
        msg = bytearray(sslv2_client_hello()[2:])
        msg[3:5] = u16(5)
        with pytest.raises(TLSParseError, match="cipher_spec_length 5"):
            parse_sslv2_client_hello(bytes(msg))

    def test_short_challenge_raises(self):
        with pytest.raises(TLSParseError, match="bad session_id or challenge length"):
            parse_sslv2_client_hello(sslv2_client_hello(challenge=bytes(8))[2:])


class TestHandshakeBuffer:
    def test_two_messages_in_one_record(self):
        hb = HandshakeBuffer()
        hb.feed(handshake_msg(14, b"") + handshake_msg(16, b"xyz"), 0x0303)
        assert hb.maybe_message() == (14, b"", 0x0303)
        assert hb.maybe_message() == (16, b"xyz", 0x0303)
        assert hb.maybe_message() is None
        assert hb.buffered == 0

    def test_message_across_records_carries_its_first_record_version(self):
        msg = handshake_msg(1, bytes(100))
        hb = HandshakeBuffer()
        hb.feed(handshake_msg(14, b"") + msg[:2], 0x0301)
        assert hb.maybe_message() == (14, b"", 0x0301)
        assert hb.maybe_message() is None
        hb.feed(msg[2:50], 0x0303)
        assert (hb.maybe_message(), hb.buffered) == (None, 50)
        hb.feed(msg[50:] + handshake_msg(14, b""), 0x0302)
        assert hb.maybe_message() == (1, bytes(100), 0x0301)
        assert hb.maybe_message() == (14, b"", 0x0302)

    def test_oversize_raises_from_the_header_alone(self):
        hb = HandshakeBuffer()
        hb.feed(b"\x0b" + u24(64 * 1024 + 1), 0x0303)
        with pytest.raises(TLSParseError, match="^handshake message exceeds 64 KiB$"):
            hb.maybe_message()

    def test_exactly_the_limit_is_accepted(self):
        hb = HandshakeBuffer(max_message=1024)
        hb.feed(handshake_msg(99, bytes(1024)), 0x0303)
        assert hb.maybe_message() == (99, bytes(1024), 0x0303)
        hb.feed(handshake_msg(99, bytes(1025)), 0x0303)
        with pytest.raises(TLSParseError, match="^handshake message exceeds 1 KiB$"):
            hb.maybe_message()

    def test_limit_not_in_whole_kib_is_reported_in_bytes(self):
        hb = HandshakeBuffer(max_message=1000)
        hb.feed(handshake_msg(99, bytes(1001)), 0x0303)
        with pytest.raises(TLSParseError, match="^handshake message exceeds 1000 bytes$"):
            hb.maybe_message()


def test_parse_message_dispatch():
    assert parse_message(13, b"abc") == CertificateRequest(3)
    assert parse_message(14, b"") == HandshakeMessage(14, 0)
    assert parse_message(11, body(certificate(()))) == Certificate(())
    assert parse_message(1, body(client_hello()), 0x0301).record_version == 0x0301
    assert parse_message(2, body(server_hello())).version == 0x0304
