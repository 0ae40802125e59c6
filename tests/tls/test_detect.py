"""Mid-stream record runs and ClientHello search (STARTTLS, CONNECT, SOCKS prefixes)."""

import random
import time

import pytest

from analyzer.tls import RecordRun, find_client_hello, find_record_run, find_server_hello, is_record_header
from tests.tlsbytes import app_data, ccs, client_hello, handshake_record, tls12_exchange, tls13_exchange

SERVER13 = b"".join(tls13_exchange()[1])
SH_RECORD_LEN = SERVER13.index(ccs())  # the ServerHello record comes first, then CCS
APP = b"".join(app_data(n, seed=n) for n in (1400, 300, 16384, 77))
HTTP = (b"GET /api/list HTTP/1.1\r\nHost: web-svc.emojivoto:8080\r\nUser-Agent: curl/8.5\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}") * 50


def test_is_record_header_is_exported():
    assert is_record_header(SERVER13) and not is_record_header(HTTP)


class TestRecordRun:
    def test_whole_stream(self):
        assert find_record_run(SERVER13) == RecordRun(0, 7, (22, 20, 23, 23, 23, 23, 23), (0x0303,) * 7, 7, True)

    def test_joined_mid_record(self):
        run = find_record_run(SERVER13[7:])
        assert run == RecordRun(SH_RECORD_LEN - 7, 6, (20, 23, 23, 23, 23, 23), (0x0303,) * 6, 6, True)

    def test_application_data_joined_mid_record(self):
        run = find_record_run(APP[1000:])
        assert (run.offset, run.count, run.content_types) == (1405 - 1000, 3, (23, 23, 23))

    @pytest.mark.parametrize("cut", [1, 2, 4, 5, 100])
    def test_end_may_cut_the_last_record_or_its_header(self, cut):
        data = APP[1000:]
        last_header = len(data) - 82
        run = find_record_run(data[:last_header + cut])
        assert (run.offset, run.count) == (405, 3 if cut >= 5 else 2)
        # a cut header leaves every counted record whole; a cut body leaves the last one incomplete
        assert (run.complete, run.exact) == ((3, True) if cut >= 82 else (2, False))

    def test_a_cut_header_must_still_look_like_one(self):
        assert find_record_run(APP + b"\x17\x03") == RecordRun(0, 4, (23,) * 4, (0x0303,) * 4, 4, False)
        assert find_record_run(APP + b"\x17\x04") is None
        assert find_record_run(APP + b"\x00") is None

    def test_tls12_client_stream(self):
        data = b"".join(tls12_exchange()[0])
        assert find_record_run(data).content_types == (22, 22, 20, 22, 23)

    def test_min_records(self):
        one = app_data(500)
        assert find_record_run(one) is None
        assert find_record_run(one, min_records=1) == RecordRun(0, 1, (23,), (0x0303,), 1, True)
        assert find_record_run(one[:-1], min_records=1) == RecordRun(0, 1, (23,), (0x0303,), 0, False)

    def test_max_scan(self):
        data = bytes(3000) + APP
        assert find_record_run(data, max_scan=3000) is None
        assert find_record_run(data, max_scan=3001).offset == 3000

    def test_broken_chain_is_not_a_run(self):
        data = APP[:1405] + b"\x00" + APP[1405:]  # one stray byte after the first record
        run = find_record_run(data)
        # The chain from 0 breaks; the next valid chain starts after the stray byte.
        assert (run.offset, run.count) == (1406, 3)

    def test_http_text_is_never_a_run(self):
        assert find_record_run(HTTP) is None
        assert find_record_run(HTTP, min_records=1) is None

    def test_random_bytes_are_never_a_run_and_scan_fast(self):
        rng = random.Random(20240611)
        blobs = [rng.randbytes(16 * 1024) for _ in range(200)]
        start = time.perf_counter()
        assert [find_record_run(b) for b in blobs] == [None] * 200
        assert time.perf_counter() - start < 2.0  # ~3 MiB of binary; C-speed candidate scan

    def test_long_chain_of_tiny_records_that_breaks_at_the_end_stays_linear(self):
        data = b"\x17\x03\x03\x00\x01\x00" * 20000 + b"\xff" * 6
        start = time.perf_counter()
        assert find_record_run(data) is None
        assert time.perf_counter() - start < 2.0


class TestClientHello:
    HELLO = handshake_record(client_hello())

    @pytest.mark.parametrize("prefix", [
        b"",
        b"220 mail ESMTP\r\nEHLO x\r\n250-STARTTLS\r\nSTARTTLS\r\n220 2.0.0 Ready\r\n",
        b"CONNECT web-svc:443 HTTP/1.1\r\nHost: web-svc:443\r\n\r\n",
        b"\x05\x01\x00\x05\x01\x00\x03\x07web-svc\x01\xbb",  # SOCKS5 greeting + CONNECT
    ])
    def test_found_after_prefix(self, prefix):
        assert find_client_hello(prefix + self.HELLO + app_data(50)) == len(prefix)

    def test_pq_hello_cut_by_the_end_of_data(self):
        client, _ = tls13_exchange(pq=True)
        assert find_client_hello(b"STARTTLS\r\n" + client[0][:100]) == 10

    def test_implausible_candidates_are_skipped(self):
        too_short = b"\x16\x03\x01\x00\x0a\x01\x00\x00\x06\x03\x03" + bytes(6)  # body length 6
        assert find_client_hello(too_short + self.HELLO) == len(too_short)
        assert find_client_hello(too_short) is None

    def test_start(self):
        data = self.HELLO + self.HELLO
        assert find_client_hello(data, start=1) == len(self.HELLO)
        assert find_client_hello(data, start=len(self.HELLO) + 1) is None

    def test_not_in_http_random_or_server_hello(self):
        assert find_client_hello(HTTP) is None
        assert find_client_hello(SERVER13) is None
        rng = random.Random(7)
        assert [find_client_hello(rng.randbytes(16 * 1024)) for _ in range(50)] == [None] * 50


class TestFindServerHello:
    def test_after_a_cleartext_reply(self):
        reply = b"220 2.0.0 Ready to start TLS\r\n"
        server = b"".join(tls12_exchange()[1])
        assert find_server_hello(reply + server) == len(reply)

    def test_not_in_a_client_hello_or_text(self):
        assert find_server_hello(b"".join(tls12_exchange()[0])) is None
        assert find_server_hello(HTTP) is None
