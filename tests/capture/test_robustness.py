"""The capture layer against hostile or broken input: bounded time, no traceback, honest exit codes.

Timestamps no output can show, paths that cannot be opened or read, pcapng files cut inside their
first section header, long runs of empty records, and pcapng heads of many interfaces read by a
byte range.  Each case goes through the real reader, and the CLI cases through a real process.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import time
import zlib

import pytest

import pcapgen as g
from kube_builders import pod, write_pods
from support import rows

TS_MAX_ISO = "2255-03-14T16:00:00"  # analyzer.capture.frames.TS_MAX


def _far_future() -> bytes:
    """The reference flow 10^13 s (about 317,000 years) from now, in microsecond ticks."""
    frames = [dataclasses.replace(f, ts_ns=f.ts_ns + 10**22) for f in g.encap(g.base_flow(), "ether")]
    return g.simple_pcapng(frames)


def _tsresol_zero() -> bytes:
    """Microsecond ticks under an interface that says if_tsresol 0 (whole seconds)."""
    frames = [dataclasses.replace(f, ts_ns=f.ts_ns * 10**6) for f in g.encap(g.base_flow(), "ether")]
    return g.simple_pcapng(frames, tsresol=0)


# --- timestamps -------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [_far_future, _tsresol_zero], ids=["far-future", "if_tsresol-0"])
def test_out_of_range_timestamps_are_clamped_with_a_warning(analyze, write_capture, build):
    report = analyze(write_capture(build(), "bad-time.pcapng"))
    (flow,) = rows(report.flows)
    assert flow["verdict"] == "tls" and flow["evidence"] == "handshake"
    assert flow["first_ts"].isoformat().startswith(TS_MAX_ISO)
    assert flow["last_ts"] == flow["first_ts"]
    assert report.stats["truncated"] is False
    (warning,) = report.stats["warnings"]
    assert f"{len(g.base_flow())} packet timestamps outside 1970..2255" in warning


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "jsonl", "markdown", "parquet"])
def test_every_output_format_survives_a_far_future_timestamp(cli, write_capture, tmp_path, fmt):
    path = write_capture(_far_future(), "far.pcapng")
    out = tmp_path / f"out.{fmt}"
    res = cli("analyze", path, "--view", "flows", "--format", fmt, "-o", out)
    err = res.stderr.decode()
    assert res.returncode == 0, err
    assert "Traceback" not in err
    assert err.startswith(f"Warning: {path}: {len(g.base_flow())} packet timestamps outside 1970..2255")
    if fmt == "csv":
        (row,) = list(csv.DictReader(io.StringIO(out.read_text())))
        assert (row["verdict"], row["first_ts"]) == ("tls", TS_MAX_ISO + ".000000Z")
    elif fmt == "json":
        assert [r["verdict"] for r in json.loads(out.read_text())] == ["tls"]
    elif fmt == "parquet":
        import pandas as pd
        assert pd.read_parquet(out)["verdict"].tolist() == ["tls"]
    else:
        assert out.stat().st_size > 0


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_tshark_engine_clamps_the_same_way(cli, write_capture, tmp_path, fmt):
    path = write_capture(_far_future(), "far.pcapng")
    out = tmp_path / f"out.{fmt}"
    res = cli("analyze", path, "--engine", "tshark", "--view", "flows", "--format", fmt, "-o", out)
    err = res.stderr.decode()
    assert res.returncode == 0, err
    assert err.startswith(f"Warning: far.pcapng: {len(g.base_flow())} packet timestamps outside 1970..2255")
    if fmt == "csv":
        (row,) = list(csv.DictReader(io.StringIO(out.read_text())))
        assert (row["verdict"], row["first_ts"]) == ("tls", TS_MAX_ISO + ".000000Z")


def test_report_survives_a_far_future_timestamp(cli, write_capture, tmp_path):
    pods = write_pods(tmp_path / "pods.json", pod("web", g.CLIENT.ip), pod("emoji", g.SERVER.ip))
    res = cli("report", write_capture(_far_future(), "far.pcapng"), "--pods", pods,
              "-o", tmp_path / "r.html", "--json", tmp_path / "r.json")
    assert res.returncode == 0, res.stderr.decode()
    assert "Traceback" not in res.stderr.decode()
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["captures"][0]["warnings"][0].endswith("were set to the nearest bound")


@pytest.mark.parametrize("created", ["9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59.999999Z"])
@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_pod_created_in_year_9999_does_not_break_the_table(cli, write_capture, tmp_path, created, fmt):
    """The pod did not exist at the time of the flow: the edge is unverified, the table is printed."""
    pods = write_pods(tmp_path / "pods.json", pod("web", g.CLIENT.ip, created=created),
                      pod("emoji", g.SERVER.ip, created=created))
    res = cli("analyze", write_capture(g.ether_pcap(g.base_flow())), "--pods", pods, "--format", fmt)
    assert res.returncode == 0, res.stderr.decode()
    assert "unverified 1" in res.stderr.decode()


# --- paths and reads --------------------------------------------------------------------------
def _one_error_line(res) -> str:
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    return err


def test_a_path_that_cannot_be_looked_up_is_one_error_line(cli, tmp_path):
    """A name too long to stat: not "missing", not a directory; the lookup itself fails."""
    err = _one_error_line(cli("analyze", tmp_path / ("x" * 300) / "c.pcap"))
    assert "cannot open: File name too long" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may enter any directory")
def test_a_path_under_an_unreadable_directory_is_one_error_line(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "c.pcap").write_bytes(g.ether_pcap(g.base_flow()))
    locked.chmod(0)
    try:
        assert "Permission denied" in _one_error_line(cli("analyze", locked / "c.pcap"))
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_an_io_error_on_the_first_read_is_one_error_line(cli):
    """/proc/self/mem opens, and its first read (address 0, never mapped) fails with EIO."""
    err = _one_error_line(cli("analyze", "/proc/self/mem"))
    assert "cannot read: Input/output error" in err


# --- the first section header is the file header ----------------------------------------------
@pytest.mark.parametrize("keep", [4, 12, 20, 27])
def test_a_pcapng_cut_in_its_first_section_header_exits_2_like_a_cut_pcap(cli, write_capture, keep):
    pcap = _one_error_line(cli("analyze", write_capture(g.ether_pcap(g.base_flow())[:min(keep, 20)], "c.pcap")))
    ng = _one_error_line(cli("analyze", write_capture(g.shb()[:keep], "c.pcapng")))
    assert "pcap header truncated" in pcap
    assert "pcapng section header truncated" in ng


@pytest.mark.parametrize("data", [g.shb(), g.shb() + g.shb(), g.shb() + g.idb(g.Interface(1)) + g.shb()],
                         ids=["lone-SHB", "two-empty-sections", "empty-sections-with-an-interface"])
def test_empty_pcapng_sections_read_like_an_empty_pcap(analyze, write_capture, data):
    empty_pcap = analyze(write_capture(g.pcap_header(1), "e.pcap"))
    report = analyze(write_capture(data, "e.pcapng"))
    for r in (empty_pcap, report):
        assert (len(r.flows), r.stats["packets"], r.stats["truncated"], r.stats["warnings"]) == (0, 0, False, [])


# --- runs of empty records ----------------------------------------------------------------------
def _gzip_stream(head: bytes, zeros: int) -> bytes:
    """gzip of ``head`` then ``zeros`` zero bytes, compressed in steps (never held whole)."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [z.compress(head)]
    step = bytes(1 << 20)
    for _ in range(zeros >> 20):
        out.append(z.compress(step))
    out.append(z.flush())
    return b"".join(out)


def test_a_long_run_of_zero_records_is_damage_and_ends_quickly(analyze, write_capture):
    """A flow, then 256 MiB of zeros: 16.7 million 'empty packets' if taken as records."""
    flow = g.ether_pcap(g.base_flow())
    path = write_capture(_gzip_stream(flow, 256 << 20), "zeros.pcap.gz")
    started = time.monotonic()
    report = analyze(path)
    assert time.monotonic() - started < 10
    (row,) = rows(report.flows)
    assert row["verdict"] == "tls"
    assert report.stats["truncated"] is True
    (warning,) = report.stats["warnings"]
    assert warning == (f"{path}: 65536 records in a row without a captured byte (zeros, not packets) "
                       f"after {len(g.base_flow())} frames; analysed up to the damage")


def test_a_long_run_of_empty_pcapng_packet_blocks_is_damage(analyze, write_capture):
    iface = g.Interface(g.LINKTYPE_ETHERNET)
    empty = g.epb(0, iface, g.Frame(10**18, b""))
    data = g.shb() + g.idb(iface) + empty * 70_000
    report = analyze(write_capture(data, "empty.pcapng"))
    assert report.stats["truncated"] is True
    assert "65536 records in a row without a captured byte" in report.stats["warnings"][0]


def test_a_short_run_of_empty_records_is_not_damage(analyze, write_capture):
    iface = g.Interface(g.LINKTYPE_ETHERNET)
    empty = g.epb(0, iface, g.Frame(10**18, b""))
    flows = g.simple_pcapng(g.encap(g.base_flow(), "ether"))
    report = analyze(write_capture(flows + g.shb() + g.idb(iface) + empty * 1000, "some-empty.pcapng"))
    assert report.stats["truncated"] is False and report.stats["warnings"] == []
    assert [r["verdict"] for r in rows(report.flows)] == ["tls"]


# --- pcapng structure in linear time -------------------------------------------------------------
def test_a_byte_range_after_a_head_of_many_interfaces_is_read_in_linear_time(write_capture):
    """6,000 interfaces with 1 KB names (6 MB, more than one read window) before the packets, a byte
    range starting in the middle of them: the head is read once, not re-read per block with a
    growing buffer (that took ~45 s here)."""
    from analyzer.capture.reader import CaptureReader

    ifaces = [g.Interface(g.LINKTYPE_ETHERNET, name=f"if{i:05d}" + "x" * 1000) for i in range(6000)]
    frames = g.encap(g.base_flow(), "ether")
    path = write_capture(g.pcapng_bytes([g.Section(ifaces, [("epb", 0, f) for f in frames])]), "ifaces.pcapng")
    size = path.stat().st_size
    started = time.monotonic()
    with CaptureReader(path, size // 2, None) as reader:
        n = sum(len(batch) for _, batch in reader.iter_batches())
    assert time.monotonic() - started < 3
    assert n == len(frames)
    assert reader.info.warnings == []
