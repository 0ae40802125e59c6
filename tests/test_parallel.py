"""Several processes per capture file (``analyzer.parallel``) give the rows of one pass.

Every comparison runs the real code both ways on the same file: ``jobs=1`` (one pass) against byte
ranges read by forked processes and stitched.  ``stats["processes"]`` proves the ranges were used (a
seam that does not hold falls back to one pass, which would make the comparison empty).
"""

from __future__ import annotations

import csv
import random
import shutil
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from analyzer import analyze, parallel
from analyzer.capture.reader import CaptureReader
from analyzer.cli import cli
from click.testing import CliRunner
from pcapgen import LINKTYPE_RAW, T0_NS, Endpoint, Frame, encap, merge, pcap_bytes, shift, simple_pcapng, tcp_flow
from tlsbytes import app_data, tls13_exchange

from paths import CORPUS, REPO, corpus_present
CAPTURES = sorted((REPO / "captures").glob("*.pcap*"))
STATS = ("packets", "frames_unsupported", "not_tcp", "warnings", "excluded_localhost", "not_tcp_packets", "truncated")
SERVER = Endpoint("10.42.0.12", 4143)
WEB = Endpoint("10.42.0.12", 8080)
CUT_NS = T0_NS + 500_000_000  # the seam of the crafted capture


def _one_and_many(path, jobs: int):
    one = analyze(path, jobs=1, include_localhost=True)
    many = analyze(path, jobs=jobs, include_localhost=True)
    assert many.stats["processes"] == jobs, "the ranges fell back to one pass"
    return one, many


def _assert_same(one, many) -> None:
    assert many.all_flow_rows == one.all_flow_rows
    for key in STATS:
        assert many.stats[key] == one.stats[key], key


@pytest.mark.parametrize("jobs", [2, 5])
@pytest.mark.parametrize("capture", CAPTURES, ids=[c.name for c in CAPTURES])
def test_bundled_captures_give_the_same_rows(capture, jobs):
    _assert_same(*_one_and_many(capture, jobs))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """The benchmark generator's traffic (TLS 1.3, HTTP/1.1, h2c, localhost, mid-stream, SYN
    retransmissions, losses) at 30,000 packets, as SLL2 and Ethernet pcap and as pcapng."""
    out = tmp_path_factory.mktemp("generated")
    paths = {}
    for link in ("sll2", "ether"):
        paths[link] = out / f"gen.{link}.pcap"
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "gencapture.py"), "-o", str(paths[link]),
                        "--packets", "30000", "--linktype", link, "--seed", "2"], check=True, capture_output=True)
    if shutil.which("editcap"):
        paths["pcapng"] = out / "gen.sll2.pcapng"
        subprocess.run(["editcap", "-F", "pcapng", str(paths["sll2"]), str(paths["pcapng"])], check=True)
    return paths


@pytest.mark.parametrize("jobs", [2, 3, 4, 7])
@pytest.mark.parametrize("name", ["sll2", "ether", "pcapng"])
def test_generated_traffic_gives_the_same_rows(generated, name, jobs):
    if name not in generated:
        pytest.skip("editcap (tshark's wireshark-common) is not installed")
    _assert_same(*_one_and_many(generated[name], jobs))


def test_cli_jobs_prints_the_same_table(generated):
    runner = CliRunner()
    args = ["analyze", str(generated["sll2"]), "--view", "flows", "--format", "csv"]
    one = runner.invoke(cli, args + ["-j", "1"])
    many = runner.invoke(cli, args + ["-j", "3"])
    assert one.exit_code == many.exit_code == 0
    assert many.stdout == one.stdout and len(one.stdout.splitlines()) > 400
    assert "(3 processes)" in many.stderr and "processes" not in one.stderr


# -- the seams, crafted -------------------------------------------------------------------------
def _crafted() -> list:
    """Connections placed around ``CUT_NS``, each a case the stitching must get right."""
    tls_c, tls_s = tls13_exchange()
    flows = []
    # A: the SYN before the cut, its retransmission (same ISN) and the whole handshake after it.
    a = tcp_flow([("c", tls_c[0]), ("s", tls_s[0]), ("c", tls_c[1]), ("c", tls_c[2])],
                 client=Endpoint("10.42.0.11", 41001), server=SERVER)
    flows.append([a[0], replace(a[0], ts_ns=CUT_NS + 1_000_000_000)] + shift(a[1:], 2_000_000_000))
    # B: a ClientHello in 100-byte segments, split by the cut (the later range holds most of it).
    flows.append(tcp_flow([("c", tls_c[0]), ("s", tls_s[0]), ("c", tls_c[1]), ("c", tls_c[2])], mss=100,
                          client=Endpoint("10.42.0.11", 41002), server=SERVER, t0_ns=CUT_NS - 3_500_000))
    # C: the handshake before the cut, then application data after it with one segment lost.
    data = [("c", app_data(300, seed=k)) for k in range(12)]
    flows.append(tcp_flow([("c", tls_c[0]), ("s", tls_s[0]), ("c", tls_c[1])] + data, drop=[8],
                          client=Endpoint("10.42.0.11", 41003), server=SERVER, t0_ns=CUT_NS - 5_500_000))
    # D: a connection closed before the cut, and its tuple reused (new ISN) after it.
    get = [("c", b"GET /metrics HTTP/1.1\r\nHost: web\r\n\r\n"), ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")]
    d = Endpoint("10.42.0.11", 41004)
    flows.append(tcp_flow(get, client=d, server=WEB, t0_ns=CUT_NS - 100_000_000))
    flows.append(tcp_flow(get, client=d, server=WEB, t0_ns=CUT_NS + 100_000_000, isn_c=7_000_000))
    # E: a cleartext request before the cut, its response after it.
    flows.append(tcp_flow(get, client=Endpoint("10.42.0.11", 41005), server=WEB, t0_ns=CUT_NS - 3_500_000))
    # F: a connection seen only from the middle, after the cut (no earlier piece to join).
    flows.append(tcp_flow([("s", tls_s[1]), ("c", tls_c[2])], syn=False,
                          client=Endpoint("10.42.0.11", 41006), server=SERVER, t0_ns=CUT_NS + 50_000_000))
    # G: a quiet TLS connection whose only packets after the cut come much later.
    g = tcp_flow([("c", tls_c[0]), ("s", tls_s[0]), ("c", tls_c[1]), ("s", tls_s[1])],
                 client=Endpoint("10.42.0.11", 41007), server=SERVER, t0_ns=CUT_NS - 20_000_000)
    flows.append(g[:-4] + shift(g[-4:], 300_000_000_000))
    return merge(*flows)


def _write(path: Path, frames: list[Frame], fmt: str) -> Path:
    path.write_bytes(pcap_bytes(frames) if fmt == "pcap" else simple_pcapng(frames))
    return path


def _cut_offset(path: Path, fmt: str) -> int:
    """File offset of the first record at or after ``CUT_NS`` (the file is one window: offsets are absolute)."""
    with CaptureReader(path) as reader:
        for _buf, frames in reader.iter_batches():
            for ts, _lt, off, _cap, _wire, _if in frames:
                if ts >= CUT_NS / 1e9 - 1e-7:
                    return off - (16 if fmt == "pcap" else 28)
    raise AssertionError("no frame after the cut")


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_connections_across_a_cut_are_stitched_as_one_pass_sees_them(tmp_path, monkeypatch, fmt):
    path = _write(tmp_path / f"seam.{fmt}", encap(_crafted(), "sll2"), fmt)
    cut = _cut_offset(path, fmt)
    replayed = []
    rescan = parallel._rescan
    monkeypatch.setattr(parallel, "_rescan", lambda p, a, b, wanted: replayed.extend(wanted) or rescan(p, a, b, wanted))
    part = parallel.analyze_file(path, [0, cut, None], frozenset(), 0, None)
    one = analyze(path, jobs=1, include_localhost=True)
    assert part is not None, "the seam did not hold"
    assert part.rows == one.all_flow_rows
    by_port = {}
    for row in part.rows:
        by_port.setdefault(row["client_port"], []).append(row)
    a, = by_port[41001]  # the retransmitted SYN joined its connection: one flow, handshake seen
    assert (a["verdict"], a["handshake"], a["packets_c2s"], a["syn_seen"]) == ("tls", "completed", 8, True)
    b, = by_port[41002]  # the ClientHello was read across the cut
    assert (b["verdict"], b["evidence"], b["sni"] != "") == ("tls", "handshake", True)
    c, = by_port[41003]
    assert (c["verdict"], c["gaps"]) == ("tls", 1)
    assert [r["packets_c2s"] for r in by_port[41004]] == [5, 5]  # closed, then reused: two flows
    e, = by_port[41005]
    assert (e["verdict"], e["app_protocol"]) == ("plaintext", "http/1.1")
    f, = by_port[41006]
    assert (f["midstream"], f["verdict"]) == (True, "tls")
    g, = by_port[41007]
    assert g["last_ts"] - g["first_ts"] > 299
    assert {old.ports[0] for old, _piece in replayed} >= {41002}  # B's hello was replayed into its flow


# -- when the seams do not hold: one pass -------------------------------------------------------
def test_a_damaged_middle_is_read_in_one_pass(generated, tmp_path):
    data = bytearray(generated["sll2"].read_bytes())
    with CaptureReader(generated["sll2"]) as reader:  # the record header nearest 40 % of the file
        at = next(off - 16 for buf, batch in reader.iter_batches() for _t, _l, off, _c, _w, _i in batch
                  if reader.win.consumed + off > len(data) * 2 // 5)
        at += reader.win.consumed
    data[at + 8:at + 12] = b"\xff\xff\xff\xff"  # caplen
    path = tmp_path / "damaged.pcap"
    path.write_bytes(bytes(data))
    one = analyze(path, jobs=1, include_localhost=True)
    many = analyze(path, jobs=3, include_localhost=True)
    assert one.stats["truncated"] and one.stats["warnings"]
    assert many.stats["processes"] == 1
    _assert_same(one, many)


def test_sections_that_change_mid_file_are_read_in_one_pass(tmp_path):
    path = tmp_path / "two-sections.pcapng"
    path.write_bytes((REPO / "captures" / "demo-transparent.pcapng").read_bytes()
                     + (REPO / "captures" / "sll2-transparent.pcapng").read_bytes())
    for jobs in (2, 3, 5):
        one = analyze(path, jobs=1, include_localhost=True)
        many = analyze(path, jobs=jobs, include_localhost=True)
        assert many.stats["processes"] == 1
        _assert_same(one, many)


def test_a_false_record_boundary_inside_a_payload_is_caught(tmp_path):
    """A payload that carries pcap records (someone downloading a capture) fools the resync; the seam
    check sees that the range did not start where the previous one ended."""
    inner = pcap_bytes(encap(tcp_flow([("c", b"x" * 20)] * 10, client=Endpoint("10.9.0.1", 5000)), "sll2"))[24:]
    outer = tcp_flow([("s", inner)], client=Endpoint("10.42.0.11", 41100), server=WEB)
    frames = encap(outer, "sll2")
    path = _write(tmp_path / "embedded.pcap", frames, "pcap")
    payload_record = 24 + sum(16 + len(f.data) for f in frames[:3])
    embedded = payload_record + 16 + 20 + 20 + 20  # record header, SLL2, IPv4, TCP: the payload
    cut = embedded - 8
    with CaptureReader(path, start=cut) as reader:
        list(reader.iter_batches())
        assert reader.info.start_offset == embedded  # fooled: the first embedded record
    assert parallel.analyze_file(path, [0, cut, None], frozenset(), 0, None) is None


# -- byte ranges in the reader ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["pcap-le", "pcap-ns-be", "pcapng-le", "pcapng-be"])
def test_byte_ranges_add_up_to_the_whole_file(tmp_path, fmt):
    frames = encap(_crafted(), "ether")
    if fmt.startswith("pcap-"):
        data = pcap_bytes(frames, byteorder=">" if fmt.endswith("be") else "<", nano="ns" in fmt)
    else:
        data = simple_pcapng(frames, byteorder=">" if fmt.endswith("be") else "<")
    path = tmp_path / "ranges.cap"
    path.write_bytes(data)

    def read(start=0, stop=None):
        with CaptureReader(path, start, stop) as reader:
            got = [(ts, bytes(buf[off:off + cap])) for buf, batch in reader.iter_batches()
                   for ts, _lt, off, cap, _w, _i in batch]
            return got, reader.info

    whole, _ = read()
    for n in (2, 3, 7, 13):
        cuts = [len(data) * k // n for k in range(n)] + [None]
        got, end = [], 0
        for a, b in zip(cuts, cuts[1:]):
            frames_k, info = read(a, b)
            assert info.start_offset == end
            got += frames_k
            end = info.bytes_read
        assert got == whole


# -- the public corpus ---------------------------------------------------------------------------
@pytest.mark.skipif(not corpus_present(), reason="no corpus (--corpus DIR or MTLS_CORPUS)")
def test_corpus_captures_give_the_same_rows():
    """Every corpus capture that reads cleanly, in 3 ranges: the same rows.  ``gaps`` is the one
    column allowed to differ, by one, where a piece's own inspection met a hole (parallel Rule 3)."""
    files = sorted({row["file"] for row in csv.DictReader(open(CORPUS / "truth.csv"))})
    compared = eligible = 0
    for name in files:
        path = CORPUS / "files" / name
        one = analyze(path, jobs=1, include_localhost=True)
        many = analyze(path, jobs=3, include_localhost=True)
        if one.stats["truncated"]:
            continue
        eligible += path.stat().st_size >= 3 * 4096 and path.suffix != ".gz"  # else not cut (parallel.plan)
        compared += many.stats["processes"] == 3
        assert len(many.all_flow_rows) == len(one.all_flow_rows), name
        for x, y in zip(one.all_flow_rows, many.all_flow_rows):
            assert {k: v for k, v in x.items() if k != "gaps"} == {k: v for k, v in y.items() if k != "gaps"}, name
            assert abs(x["gaps"] - y["gaps"]) <= 1 and (x["gaps"] > 0) == (y["gaps"] > 0), name
        for key in STATS:
            assert many.stats[key] == one.stats[key], (name, key)
    assert compared == eligible >= 20


def _reordered_flow(segments: int, swap_share: float, seed: int) -> bytes:
    """One long connection whose client segments arrive with neighbours swapped at random: reordered
    segments land on every side of every cut.  Raw IPv4 built with struct (scapy is too slow here)."""
    rng = random.Random(seed)
    c, s = bytes([10, 42, 0, 11]), bytes([10, 42, 0, 12])

    def seg(src, dst, sport, dport, seq, ack, flags, data=b""):
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack, 5 << 4, flags, 64240, 0, 0)
        return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(data), 0, 0x4000, 64, 6, 0, src, dst) + tcp + data

    data = app_data(100, seed=seed)
    isn_c, isn_s = 1000, 5000
    body = [seg(c, s, 40001, 4143, isn_c + 1 + k * len(data), isn_s + 1, 0x18, data) for k in range(segments)]
    k = 0
    while k < segments - 1:
        if rng.random() < swap_share:
            body[k], body[k + 1] = body[k + 1], body[k]
            k += 1
        k += 1
    end = isn_c + 1 + segments * len(data)
    pkts = ([seg(c, s, 40001, 4143, isn_c, 0, 0x02), seg(s, c, 4143, 40001, isn_s, isn_c + 1, 0x12),
             seg(c, s, 40001, 4143, isn_c + 1, isn_s + 1, 0x10)] + body
            + [seg(c, s, 40001, 4143, end, isn_s + 1, 0x11), seg(s, c, 4143, 40001, isn_s + 1, end + 1, 0x11)])
    return pcap_bytes([Frame(T0_NS + i * 10_000, p, LINKTYPE_RAW) for i, p in enumerate(pkts)])


@pytest.mark.parametrize("swap_share, seed", [(0.05, 1), (0.5, 2), (0.9, 3)])
def test_gaps_of_a_reordered_flow_are_those_of_one_pass_whatever_the_cuts(tmp_path, swap_share, seed):
    """A reordered segment just after a cut started the later piece's hole count on the wrong foot, and
    a piece whose inspection stopped with reordered bytes pending counted its later holes from there:
    ``gaps`` came out one more or less than one pass for some ``-j``."""
    path = tmp_path / "reordered.pcap"
    path.write_bytes(_reordered_flow(20_000, swap_share, seed))
    one = analyze(path, jobs=1)
    for jobs in (2, 3, 5, 8):
        many = analyze(path, jobs=jobs)
        assert many.stats["processes"] == jobs
        assert many.all_flow_rows == one.all_flow_rows, jobs
