"""TLSParser end to end on builder bytes; every case is fed whole, byte by byte and with trailing bytes."""

import dataclasses

import pytest

from analyzer.tls import (
    NEED_DATA,
    Alert,
    ApplicationData,
    Certificate,
    CertificateRequest,
    ChangeCipherSpec,
    ClientHello,
    EncryptedHandshake,
    HandshakeMessage,
    Heartbeat,
    ServerHello,
    TLSParseError,
    TLSParser,
)
from analyzer.tls.handshake import parse_client_hello, parse_server_hello
from tests.tlsbytes import (
    DEFAULT_SNI,
    alert,
    app_data,
    ccs,
    client_hello,
    client_key_exchange,
    handshake_msg,
    handshake_record,
    records,
    server_hello,
    sslv2_client_hello,
    tls12_exchange,
    tls13_exchange,
)


def hello_event(msg: bytes, record_version=0x0301):
    parse = parse_client_hello if msg[0] == 1 else parse_server_hello
    return parse(msg[4:], record_version)


class TestTLS13:
    def test_client_side(self, feed):
        client, _ = tls13_exchange()
        events, p = feed(b"".join(client))
        assert events == [hello_event(client_hello()), ChangeCipherSpec(), ApplicationData(53),
                          ApplicationData(120)]
        assert (p.records, p.encrypted, p.first_record_version) == (4, True, 0x0301)
        assert (p.consumed, p.buffered) == (len(b"".join(client)), feed.extra)

    def test_server_side(self, feed):
        _, server = tls13_exchange()
        events, p = feed(b"".join(server))
        assert events == [hello_event(server_hello(), 0x0303), ChangeCipherSpec(),
                          ApplicationData(32), ApplicationData(900), ApplicationData(286),
                          ApplicationData(69), ApplicationData(400)]
        assert events[0].version == 0x0304 and events[0].record_version == 0x0303
        assert (p.records, p.encrypted, p.first_record_version) == (7, True, 0x0303)

    def test_sni_alpn_versions_groups(self, feed):
        msg = client_hello(alpn=("transport.l5d.io/v1",), versions=(0x0304,),
                           groups=(0x001D, 0x0017, 0x0018), key_share_groups=(0x001D, 0x0017))
        (ch,), _ = feed(handshake_record(msg))
        assert ch.sni == DEFAULT_SNI
        assert ch.alpn == ("transport.l5d.io/v1",)
        assert ch.supported_versions == (0x0304,)
        assert ch.supported_groups == (0x001D, 0x0017, 0x0018)
        assert ch.key_share_groups == (0x001D, 0x0017)
        assert ch.record_version == 0x0301

    def test_pq_hello_split_over_records(self, feed):
        msg = client_hello(groups=(0x11EC, 0x001D), key_share_groups=(0x11EC, 0x001D))
        data = handshake_record(msg, max_fragment=500)
        events, p = feed(data + ccs())
        assert len(msg) > 1200
        assert events == [hello_event(msg), ChangeCipherSpec()]
        assert events[0].key_share_groups == (0x11EC, 0x001D)
        assert p.records == 4  # 500 + 500 + 448 bytes of hello, then the CCS

    @pytest.mark.parametrize("cuts", [(600, 1200), (3, 4, 5, 505, 506), (1449,)])
    def test_pq_exchange_in_tcp_sized_segments(self, cuts):
        client, _ = tls13_exchange(pq=True)
        data = b"".join(client)
        bounds = (0, *cuts, len(data))
        p, events = TLSParser(), []
        for a, b in zip(bounds, bounds[1:]):
            p.receive_data(data[a:b])
            while (event := p.next_event()) is not NEED_DATA:
                events.append(event)
        assert [type(e) for e in events] == [ClientHello, ChangeCipherSpec, ApplicationData, ApplicationData]
        assert events[0].key_share_groups == (0x11EC, 0x001D)
        assert events[0].length > 1200

    def test_hello_retry_request_server(self, feed):
        hrr = server_hello(hrr=True, key_share_group=0x0017)
        sh = server_hello(key_share_group=0x0017)
        # RFC 8446 D.4: the fake CCS follows the HRR; the real ServerHello is still plaintext.
        data = handshake_record(hrr, version=0x0303) + ccs() + handshake_record(sh, version=0x0303)
        events, p = feed(data + app_data(40))
        assert events == [hello_event(hrr, 0x0303), ChangeCipherSpec(), hello_event(sh, 0x0303),
                          ApplicationData(40)]
        assert [e.is_hello_retry_request for e in (events[0], events[2])] == [True, False]
        assert (events[0].key_share_group, events[2].key_share_group) == (0x0017, 0x0017)

    def test_hello_retry_request_client(self, feed):
        first = client_hello(key_share_groups=(0x001D,))
        second = client_hello(key_share_groups=(0x0017,))
        data = handshake_record(first) + ccs() + handshake_record(second, version=0x0303) + app_data(53)
        events, _ = feed(data)
        assert events == [hello_event(first), ChangeCipherSpec(), hello_event(second, 0x0303),
                          ApplicationData(53)]

    def test_retried_pq_hello_spanning_records_after_ccs(self, feed):
        first = client_hello()
        second = client_hello(groups=(0x11EC,), key_share_groups=(0x11EC,))
        data = handshake_record(first) + ccs() + handshake_record(second, version=0x0303, max_fragment=600)
        events, p = feed(data + app_data(53))
        assert events == [hello_event(first), ChangeCipherSpec(), hello_event(second, 0x0303),
                          ApplicationData(53)]
        assert p.records == 6

    def test_third_hello_after_ccs_is_ciphertext(self, feed):
        # Only one retry exists (RFC 8446 4.1.4); later handshake records are encrypted.
        hello = handshake_record(client_hello())
        events, _ = feed(hello + ccs() + hello + hello)
        assert events[2:] == [hello_event(client_hello()), EncryptedHandshake(len(hello) - 5)]


class TestTLS12:
    def test_client_with_certificate(self, feed):
        client, _ = tls12_exchange()
        events, p = feed(b"".join(client))
        assert events[1:] == [Certificate((302,)), HandshakeMessage(16, 66), ChangeCipherSpec(),
                              EncryptedHandshake(40), ApplicationData(150)]
        assert (events[0].supported_versions, events[0].offered_max_version) == ((), 0x0303)
        assert not events[1].is_empty
        assert p.records == 5

    def test_client_with_empty_certificate(self, feed):
        client, _ = tls12_exchange(client_cert=False)
        events, _ = feed(b"".join(client))
        assert events[1] == Certificate(())
        assert events[1].is_empty

    def test_server_flight_coalesced_in_one_record(self, feed):
        _, server = tls12_exchange()
        events, p = feed(b"".join(server))
        assert events == [hello_event(server_hello(version=None, cipher_suite=0xC02F), 0x0303),
                          Certificate((502,)), CertificateRequest(11), HandshakeMessage(14, 0),
                          ChangeCipherSpec(), EncryptedHandshake(40), ApplicationData(250)]
        assert events[0].version == 0x0303
        assert p.records == 4

    @pytest.mark.parametrize("finished", [
        bytes(8) + bytes(range(32)),  # AES-GCM: explicit nonce = sequence number 0
        b"\x01\xff\xff\xff" + bytes(36),  # CBC IV that starts like a ClientHello, implausible length
        b"\x01\x00\x00\x10" + bytes(36),  # ... or too short to be one
    ])
    def test_tls13_capable_client_falling_back_to_tls12(self, feed, finished):
        data = handshake_record(client_hello()) + ccs() + records(22, finished)
        events, _ = feed(data)
        assert events[1:] == [ChangeCipherSpec(), EncryptedHandshake(40)]


class TestAlerts:
    @pytest.mark.parametrize("level, description, fatal", [(2, 40, True), (1, 0, False), (2, 116, True)])
    def test_plaintext(self, feed, level, description, fatal):
        events, _ = feed(handshake_record(client_hello()) + alert(level, description))
        assert events[1] == Alert(level, description, False)
        assert events[1].fatal is fatal

    def test_after_ccs_is_encrypted(self, feed):
        events, _ = feed(ccs() + alert(2, 40) + records(21, bytes(26)))
        assert events == [ChangeCipherSpec(), Alert(None, None, True), Alert(None, None, True)]
        assert not events[1].fatal

    def test_other_length_is_encrypted(self, feed):
        events, _ = feed(records(21, b"\x02\x28\x00"))
        assert events == [Alert(None, None, True)]

    def test_alert_as_the_only_record(self, feed):
        events, p = feed(alert(2, 70, version=0x0301))
        assert events == [Alert(2, 70, False)]
        assert p.first_record_version == 0x0301


class TestOtherRecords:
    def test_application_data_without_handshake(self, feed):
        events, p = feed(app_data(100) + app_data(18432))
        assert events == [ApplicationData(100), ApplicationData(18432)]
        assert (p.records, p.encrypted, p.first_record_version) == (2, False, 0x0303)

    def test_heartbeat(self, feed):
        events, _ = feed(records(24, bytes(19)))
        assert events == [Heartbeat(19)]

    def test_handshake_message_types_other_than_the_decoded_ones(self, feed):
        events, _ = feed(handshake_record(handshake_msg(4, bytes(10)), handshake_msg(99, b"")))
        assert events == [HandshakeMessage(4, 10), HandshakeMessage(99, 0)]

    def test_alert_interleaved_with_a_fragmented_message(self, feed):
        # RFC 5246 6.2.1 lets other content types interleave; the message completes afterwards.
        msg = client_hello()
        events, _ = feed(records(22, msg[:100]) + alert(1, 0) + records(22, msg[100:]))
        assert events == [Alert(1, 0, False), hello_event(msg, 0x0303)]

    def test_sslv2_hello(self, feed):
        data = sslv2_client_hello() + handshake_record(client_key_exchange(), version=0x0301)
        events, p = feed(data)
        assert events[0].sslv2 and events[0].cipher_suites == (0x010080, 0x000004)
        assert events[1:] == [HandshakeMessage(16, 66)]
        assert (p.first_record_version, p.records) == (0x0002, 2)


class TestRejected:
    @pytest.mark.parametrize("data, message", [
        (b"GET / HTTP/1.1\r\nHost: web\r\n\r\n", "not a TLS record: type 0x47 version 0x4554"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "not a TLS record: type 0x53 version 0x5348"),
        (bytes(64), "not a TLS record: type 0x00 version 0x0000"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "not a TLS record: type 0x50 version 0x5249"),
        (b"\x17\x03\x03\x00\x00", r"TLS record length 0 outside 1\.\.18432"),
        (b"\x16\x03\x01\x48\x01" + bytes(100), r"TLS record length 18433 outside"),
        (b"\x80\x1f\x02\x03\x01" + bytes(40), "not a TLS record: type 0x80 version 0x1f02"),
        (records(20, b"\x02"), "ChangeCipherSpec body 02 is not 01"),
        (records(20, b"\x01\x01"), "ChangeCipherSpec body 0101 is not 01"),
        (records(22, b"\x01\x00\x00\x05" + bytes(5)), "truncated ClientHello"),
    ])
    def test_errors(self, feed, data, message):
        with pytest.raises(TLSParseError, match=message):
            feed(data)

    def test_sslv2_only_as_first_record(self, feed):
        with pytest.raises(TLSParseError, match="not a TLS record: type 0x80"):
            feed(alert(1, 0) + sslv2_client_hello())

    def test_oversize_handshake_message(self, feed):
        # The declared length alone decides: the 64 KiB body is never sent.
        data = records(22, b"\x0b" + (64 * 1024 + 1).to_bytes(3, "big") + bytes(100))
        with pytest.raises(TLSParseError, match="^handshake message exceeds 64 KiB$"):
            feed(data)

    def test_max_buffer_is_the_handshake_limit(self, feed):
        client, _ = tls13_exchange(pq=True)
        with pytest.raises(TLSParseError, match="^handshake message exceeds 1 KiB$"):
            feed(client[0], max_buffer=1024)

    def test_ccs_inside_a_fragmented_message(self, feed):
        msg = client_hello()
        with pytest.raises(TLSParseError, match="ChangeCipherSpec inside a fragmented handshake message"):
            feed(records(22, msg[:100]) + ccs() + records(22, msg[100:]))

    def test_events_before_the_error_are_delivered(self, feed):
        data = handshake_record(client_hello(), handshake_msg(11, b"\x00\x00\x09"))
        events, error, _ = feed.collect(data)
        assert events == [hello_event(client_hello())]
        assert str(error) == "truncated Certificate: need 9 bytes at offset 3, have 0"

    def test_error_is_sticky_and_input_is_dropped(self):
        p = TLSParser()
        p.receive_data(b"GET / HTTP/1.1\r\n")
        with pytest.raises(TLSParseError) as first:
            p.next_event()
        p.receive_data(app_data(100))
        with pytest.raises(TLSParseError) as again:
            p.next_event()
        assert again.value is first.value
        assert p.buffered == 0


class TestBuffering:
    def test_application_data_is_skipped_as_it_arrives(self):
        data = b"".join(app_data(16384, seed=i) for i in range(64))  # 1 MiB of ciphertext
        p, count, worst = TLSParser(), 0, 0
        for i in range(0, len(data), 1400):
            p.receive_data(data[i:i + 1400])
            while (event := p.next_event()) is not NEED_DATA:
                assert event == ApplicationData(16384)
                count += 1
            worst = max(worst, p.buffered)
        assert count == 64 == p.records
        assert p.consumed == len(data)
        assert worst <= 4  # at most a cut record header is ever held

    def test_buffered_counts_an_unfinished_handshake_message(self):
        msg = client_hello()
        p = TLSParser()
        p.receive_data(records(22, msg[:100]) + b"\x16\x03")
        assert p.next_event() is NEED_DATA
        assert (p.buffered, p.consumed, p.records) == (102, 105, 1)

    def test_partial_sees_a_skipped_record_cut_short(self):
        p = TLSParser()
        p.receive_data(app_data(100) + app_data(500)[:200])
        assert p.next_event() == ApplicationData(100)
        assert p.next_event() is NEED_DATA
        assert (p.buffered, p.partial, p.records, p.consumed) == (0, True, 1, 305)
        p.receive_data(app_data(500)[200:])
        assert (p.next_event(), p.partial) == (ApplicationData(500), False)

    def test_partial_on_a_cut_header_or_handshake(self):
        p = TLSParser()
        assert not p.partial
        p.receive_data(b"\x16")
        assert p.next_event() is NEED_DATA
        assert p.partial

    def test_need_data_on_empty_and_partial_input(self):
        p = TLSParser()
        assert p.next_event() is NEED_DATA
        p.receive_data(b"")
        p.receive_data(b"\x16\x03\x01\x00")
        assert p.next_event() is NEED_DATA
        assert (p.buffered, p.first_record_version) == (4, None)

    @pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
    def test_accepts_bytes_like(self, wrap):
        p = TLSParser()
        p.receive_data(wrap(handshake_record(client_hello())))
        assert p.next_event() == hello_event(client_hello())
        assert p.next_event() is NEED_DATA


def test_events_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ApplicationData(1).length = 2
    assert repr(NEED_DATA) == "NEED_DATA"


def test_server_hello_version_through_the_parser():
    p = TLSParser()
    p.receive_data(handshake_record(server_hello(version=0x7F1C), version=0x0303))
    event = p.next_event()
    assert isinstance(event, ServerHello)
    assert (event.version, event.legacy_version, event.record_version) == (0x7F1C, 0x0303, 0x0303)
