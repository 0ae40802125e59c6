"""The live tshark engine keeps memory flat: tshark is restarted at block boundaries and the
flows come out as from one tshark pass; the live Aggregator keeps no finished rows and finishes quiet
streams on time.

Everything runs the real tshark on real bytes (bundled captures or ``pcapgen`` builds); nothing here needs
root.  The live run in the lab is ``test_live.py::test_capture_engine_tshark_restarts_tshark``.
"""

from __future__ import annotations

import shutil
import struct

import pytest

import pcapgen
from analyzer.engines import tshark as engine
from analyzer.report.schema import FLOW_NAMES

from paths import DEMO_CAPTURE as DEMO, REPO
MIDCONN = REPO / "captures" / "midconn-transparent.pcapng"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _blocks(data: bytes, chunk: int) -> tuple[engine.BlockSplitter, list[tuple[bytes, bool]]]:
    splitter = engine.BlockSplitter()
    out = []
    for i in range(0, len(data), chunk):
        out += splitter.feed(data[i:i + chunk])
    return splitter, out


def _pcapng_header(data: bytes) -> bytes:
    """SHB and IDBs at the start of a one-section little-endian pcapng (what dumpcap writes)."""
    pos = 0
    while struct.unpack_from("<I", data, pos)[0] in (0x0A0D0D0A, 1):
        pos += struct.unpack_from("<I", data, pos + 4)[0]
    return data[:pos]


# -- the block splitter -----------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 7, 777, 1 << 20])
def test_splitter_cuts_whole_blocks_whatever_the_chunking(chunk):
    data = DEMO.read_bytes()
    splitter, blocks = _blocks(data, chunk)
    assert b"".join(b for b, _ in blocks) == data and not splitter.buf and not splitter.broken
    assert sum(is_packet for _, is_packet in blocks) == 993  # capinfos
    assert splitter.header == _pcapng_header(data) and len(splitter.header) > 28


def test_splitter_header_is_the_current_sections():
    """Ring files follow each other as sections: the header a fresh tshark needs is the last section's."""
    first, second = DEMO.read_bytes(), MIDCONN.read_bytes()
    splitter, blocks = _blocks(first + second, 4096)
    assert sum(p for _, p in blocks) == 993 + 170
    assert splitter.header == _pcapng_header(second)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_splitter_reads_classic_pcap(byteorder):
    data = pcapgen.ether_pcap(pcapgen.base_flow(), byteorder=byteorder)
    splitter, blocks = _blocks(data, 5)
    assert splitter.header == data[:24] and blocks[0] == (data[:24], False)
    assert [p for _, p in blocks[1:]] == [True] * len(pcapgen.base_flow())
    assert b"".join(b for b, _ in blocks) == data


def test_splitter_hands_anything_else_through_without_restarts():
    splitter = engine.BlockSplitter()
    assert splitter.feed(b"\x1f\x8b\x08") == []  # too short to tell
    assert splitter.feed(b"\x00gzip") == [(b"\x1f\x8b\x08\x00gzip", False)]
    assert splitter.broken and splitter.header == b"" and splitter.feed(b"more") == [(b"more", False)]
    # A block length that cannot be right (not a multiple of 4) mid-stream: the rest goes through as is.
    data = DEMO.read_bytes()
    head = _pcapng_header(data)
    bad = head + struct.pack("<II", 6, 13) + b"x" * 20
    splitter, blocks = _blocks(bad, 1 << 20)
    assert splitter.broken and b"".join(b for b, _ in blocks) == bad


# -- restarting tshark --------------------------------------------------------------------------------
def _through_pipe(data: bytes, label: str, every: int, chunk: int = 777, **agg_kw):
    agg = engine.Aggregator(label, **agg_kw)
    cmd = engine.command(engine.find_tshark(), "-")
    cmd.insert(1, "-l")
    pipe = engine.TsharkPipe(agg, cmd, max_packets=every)
    for i in range(0, len(data), chunk):
        pipe.feed(data[i:i + chunk])
    pipe.close()
    with pipe.lock:
        agg.finish()
    return agg, pipe


def _differences(single: list[dict], restarted: list[dict]) -> dict[int, dict]:
    assert [r["flow_id"] for r in single] == [r["flow_id"] for r in restarted]
    out = {}
    for a, b in zip(single, restarted):
        diff = {k: (a[k], b[k]) for k in FLOW_NAMES if a[k] != b[k]}
        if diff:
            out[a["flow_id"]] = diff
    return out


@needs_tshark
def test_restarted_tshark_gives_exactly_the_rows_of_one_pass():
    """midconn-transparent through a new tshark every 20 packets (8 restarts, flows straddling them,
    two of them started before the capture): every column of every row as one ``tshark -r`` pass."""
    single = engine.analyze_source(MIDCONN)
    agg, pipe = _through_pipe(MIDCONN.read_bytes(), MIDCONN.name, every=20)
    assert pipe.restarts == 8 and agg.generation == 8 and agg.packets == single.packets == 170
    assert len(single.rows) == 7 and _differences(single.rows, agg.rows) == {}


@needs_tshark
def test_restarts_keep_flows_verdicts_and_counts_of_the_demo_capture():
    """demo-transparent with a new tshark every 40 packets (24 restarts): the same 64 flows with the same
    verdicts, evidence, SNI, handshake outcome, packet and byte counts.  The one inherent exception:
    TLS record counts of a connection whose handshake the old tshark read.  The new tshark sees it
    mid-stream; its tls_tcp heuristic does not take a segment that starts with ChangeCipherSpec (the
    client's CCS + Finished + first data, right after the ServerHello flight), so those records go
    uncounted."""
    single = engine.analyze_source(DEMO)
    agg, pipe = _through_pipe(DEMO.read_bytes(), DEMO.name, every=40)
    assert pipe.restarts == 24 and agg.packets == single.packets == 993
    diffs = _differences(single.rows, agg.rows)
    by_id = {r["flow_id"]: r for r in single.rows}
    assert len(diffs) <= 2, diffs
    for fid, diff in diffs.items():
        assert set(diff) <= {"tls_records", "app_data_records"}, diff
        assert by_id[fid]["verdict"] == "tls" and all(restarted < one for one, restarted in diff.values())


@needs_tshark
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_port_reuse_and_a_retransmitted_syn_across_a_restart(byteorder, tmp_path):
    """Classic pcap.  A restart right before the SYN of a new connection on the ends of a closed one: two
    flows.  A restart before every packet of a connection whose first SYN was retransmitted: one flow
    (tshark -r in one pass says the same, column for column)."""
    http = [("c", pcapgen.HTTP_REQUEST), ("s", pcapgen.HTTP_RESPONSE)]
    first = pcapgen.tcp_flow(pcapgen.tls13())
    reused = pcapgen.shift(pcapgen.tcp_flow(http, isn_c=7_000_000, isn_s=9_000_000), 10**9)
    retried = pcapgen.tcp_flow(http, client=pcapgen.Endpoint("10.42.0.11", 40002), isn_c=5_000_000)
    retried.insert(1, pcapgen.Pkt(retried[0].ts_ns + 1000, retried[0].l3, True))  # the SYN again
    for pkts, every, flows in ((first + reused, len(first), 2), (retried, 1, 1)):
        data = pcapgen.ether_pcap(pkts, byteorder=byteorder)
        path = tmp_path / f"{flows}.pcap"
        path.write_bytes(data)
        single = engine.analyze_source(path)
        agg, pipe = _through_pipe(data, path.name, every=every, chunk=100)
        assert pipe.restarts >= 1 and len(single.rows) == flows
        assert _differences(single.rows, agg.rows) == {}


# -- the live Aggregator ----------------------------------------------------------------------------------
@needs_tshark
def test_live_aggregator_keeps_no_rows_and_finishes_closed_streams_on_time():
    """40 short HTTP connections, one every 2 s of capture time, through restarts every 25 packets, into an
    Aggregator as ``capture --engine tshark`` makes it (no rows kept, eviction every 5 s of capture
    time).  Each flow is reported once; open streams (carried or not) and announced ids stay bounded by
    what CLOSED_IDLE_S + evict_s holds (~18), where an eviction every 65536 packets would hold all 40."""
    gap_ns = 2 * 10**9
    pkts = []
    for i in range(40):
        conn = pcapgen.tcp_flow([("c", pcapgen.HTTP_REQUEST), ("s", pcapgen.HTTP_RESPONSE)],
                                client=pcapgen.Endpoint("10.42.0.11", 41000 + i), server=pcapgen.Endpoint("10.42.0.12", 4191))
        pkts += pcapgen.shift(conn, i * gap_ns)
    data = pcapgen.simple_pcapng(pcapgen.encap(pkts, "ether"))
    reported: list[int] = []
    verdicts: list[str] = []
    high = {"open": 0, "announced": 0}  # most streams open / ids announced when a row came out

    def on_row(row: dict) -> None:
        reported.append(row["flow_id"])
        high["open"] = max(high["open"], len(agg.streams) + len(agg.carried))
        high["announced"] = max(high["announced"], len(agg.announced))

    def on_verdict(row: dict) -> None:
        verdicts.append(row["verdict"])

    evict_s = 5.0
    agg = engine.Aggregator("live", on_row=on_row, on_verdict=on_verdict, keep_rows=False, evict_s=evict_s)
    cmd = engine.command(engine.find_tshark(), "-")
    cmd.insert(1, "-l")
    pipe = engine.TsharkPipe(agg, cmd, max_packets=25)
    pipe.feed(data)
    pipe.close()
    assert pipe.restarts == (len(pkts) - 1) // 25 and verdicts == ["plaintext"] * 40
    bound = (engine.CLOSED_IDLE_S + evict_s) / 2 + 2  # connections that start in 35 s, and one more
    still_open = len(agg.streams) + len(agg.carried)
    assert len(reported) == 40 - still_open and still_open <= bound  # the others finished while reading
    assert high["open"] <= bound and high["announced"] <= bound, high
    with pipe.lock:
        assert agg.finish() == [] and agg.rows == []
    assert sorted(reported) == list(range(40)) and not agg.announced and not agg.streams and not agg.carried
