"""Cursor: every read is bounds-checked; a short read or a lying length raises TLSParseError."""

import pytest

from analyzer.errors import AnalyzerError, TLSParseError
from analyzer.tls.cursor import Cursor
from tests.tlsbytes import u16, vec8, vec16, vec24


def test_integers_are_big_endian_and_advance():
    c = Cursor(b"\x01\x02\x03\x04\x05\x06\x07\x08", "test")
    assert c.u8() == 0x01
    assert c.u16() == 0x0203
    assert c.u24() == 0x040506
    assert c.remaining == 2
    assert c.bytes(2) == b"\x07\x08"
    assert c.at_end


@pytest.mark.parametrize("read, size", [("u8", 1), ("u16", 2), ("u24", 3)])
def test_short_integer_read_raises(read, size):
    c = Cursor(bytes(size - 1), "thing")
    message = rf"truncated thing: need {size} bytes at offset 0, have {size - 1}"
    with pytest.raises(TLSParseError, match=message):
        getattr(c, read)()


def test_parse_error_is_an_analyzer_error():
    assert issubclass(TLSParseError, AnalyzerError)


@pytest.mark.parametrize("len_size, build", [(1, vec8), (2, vec16), (3, vec24)])
def test_vector_reads_its_length_prefix(len_size, build):
    c = Cursor(build(b"abc") + b"rest")
    assert c.vector(len_size) == b"abc"
    assert c.bytes(4) == b"rest"


def test_vector_longer_than_data_raises():
    c = Cursor(u16(10) + b"short", "ext")
    with pytest.raises(TLSParseError, match="truncated ext: need 10 bytes at offset 2, have 5"):
        c.vector(2)


def test_vector_below_its_declared_minimum_raises():
    with pytest.raises(TLSParseError, match="vector of 1 bytes, at least 2 required"):
        Cursor(vec16(b"\x00")).vector(2, min_len=2)


def test_u16_list():
    assert Cursor(vec16(b"\x13\x01\x13\x02")).u16_list(2) == (0x1301, 0x1302)
    assert Cursor(vec8(b"")).u16_list(1) == ()
    with pytest.raises(TLSParseError, match="odd length 3"):
        Cursor(vec8(b"\x03\x04\x03")).u16_list(1)


def test_sub_cursor_is_bounded_by_its_vector():
    c = Cursor(vec16(b"\x00\x01") + b"\xff")
    inner = c.sub(2, "inner")
    assert inner.u16() == 1
    with pytest.raises(TLSParseError, match="truncated inner"):
        inner.u8()  # the 0xff after the vector is not reachable from inside it
    assert c.u8() == 0xFF


def test_expect_end():
    c = Cursor(b"\x00\x01", "hello")
    c.u8()
    with pytest.raises(TLSParseError, match="hello: 1 unexpected trailing bytes"):
        c.expect_end()
    c.u8()
    c.expect_end()


def test_accepts_bytearray_and_memoryview():
    assert Cursor(bytearray(b"\x01\x02")).u16() == 0x0102
    assert Cursor(memoryview(b"\x01\x02")).u16() == 0x0102


def test_negative_read_raises():
    with pytest.raises(TLSParseError):
        Cursor(b"abc").bytes(-1)
