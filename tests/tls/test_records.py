"""Record headers (RFC 8446 5.1), the SSLv2 hello header (RFC 5246 E.2) and RecordBuffer."""

import pytest

from analyzer.errors import TLSParseError
from analyzer.tls.constants import MAX_RECORD_LEN
from analyzer.tls.records import RecordBuffer, is_record_header, parse_record_header, sslv2_hello_length
from tests.tlsbytes import records, sslv2_client_hello


@pytest.mark.parametrize("ctype", [20, 21, 22, 23, 24])
@pytest.mark.parametrize("version", [0x0300, 0x0301, 0x0302, 0x0303, 0x0304])
def test_valid_headers(ctype, version):
    header = bytes([ctype]) + version.to_bytes(2, "big") + b"\x00\x10"
    assert is_record_header(header)
    assert parse_record_header(header) == (ctype, version, 16)


@pytest.mark.parametrize("header", [
    b"\x13\x03\x03\x00\x10",  # type 19
    b"\x19\x03\x03\x00\x10",  # type 25
    b"\x17\x03\x05\x00\x10",  # version 3.5
    b"\x17\x02\x00\x00\x10",  # version 2.0 in a TLS header
    b"\x17\x03\x03\x00\x00",  # empty record
    b"\x17\x03\x03\x48\x01",  # 2^14 + 2048 + 1
    b"\x17\x03\x03\x00",  # short
])
def test_invalid_headers(header):
    assert not is_record_header(header)


def test_length_bounds():
    assert is_record_header(b"\x17\x03\x03" + MAX_RECORD_LEN.to_bytes(2, "big"))
    assert is_record_header(b"\x17\x03\x03\x00\x01")


def test_is_record_header_at_offset():
    data = b"xx\x16\x03\x01\x00\x05"
    assert is_record_header(data, 2)
    assert not is_record_header(data, 0)
    assert not is_record_header(data, 3)


def test_parse_errors_read_like_a_reason():
    with pytest.raises(TLSParseError, match=r"^not a TLS record: type 0x47 version 0x4554$"):
        parse_record_header(b"GET / HTTP/1.1")
    with pytest.raises(TLSParseError, match=r"^TLS record length 0 outside 1\.\.18432 \(type 23\)$"):
        parse_record_header(b"\x17\x03\x03\x00\x00")


def test_sslv2_hello_length():
    hello = sslv2_client_hello()
    assert sslv2_hello_length(hello[:5]) == len(hello) - 2
    assert sslv2_hello_length(b"\x16\x03\x01\x00\x05") is None  # high bit clear: a TLS record
    assert sslv2_hello_length(b"\x80\x1f\x02\x03\x01") is None  # msg type 2 is not a ClientHello
    assert sslv2_hello_length(b"\x80\x1f\x01\x03\x04") is None  # 0x0304 cannot be offered this way
    assert sslv2_hello_length(b"\x80\x1f\x01\x00\x02") == 0x1F  # pure SSL 2.0


def test_builder_fragments_at_max_fragment():
    data = records(22, bytes(40000))
    offsets, off = [], 0
    while off < len(data):
        ctype, version, length = parse_record_header(data, off)
        offsets.append((off, ctype, version, length))
        off += 5 + length
    assert offsets == [(0, 22, 0x0303, 16384), (16389, 22, 0x0303, 16384), (32778, 22, 0x0303, 7232)]


class TestRecordBuffer:
    def test_peek_take_skip(self):
        buf = RecordBuffer()
        buf.feed(b"abcdef")
        assert buf.peek(7) is None
        assert buf.peek(3) == b"abc"
        assert buf.take(2) == b"ab"
        assert buf.take(5) is None
        assert buf.skip(10) == 4
        assert (len(buf), buf.consumed) == (0, 6)

    def test_consumed_prefix_is_dropped_on_feed(self):
        buf = RecordBuffer()
        buf.feed(b"abc")
        buf.take(2)
        buf.feed(bytearray(b"de"))
        buf.feed(memoryview(b"f"))
        assert (len(buf), buf.peek(4), buf.consumed) == (4, b"cdef", 2)

    def test_skip_across_feeds(self):
        buf = RecordBuffer()
        left = 10
        for chunk in (b"1234", b"5678", b"90AB"):
            buf.feed(chunk)
            left -= buf.skip(left)
        assert left == 0
        assert buf.peek(2) == b"AB"
        assert buf.consumed == 10

    def test_clear(self):
        buf = RecordBuffer()
        buf.feed(b"abc")
        buf.clear()
        assert len(buf) == 0
