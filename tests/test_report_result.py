"""``Report.assemble``: one place builds ``stats``, with the same keys whichever engine read the captures."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from analyzer import Report, analyze
from analyzer.report.result import CaptureRun
from analyzer.report.schema import empty_flow_row

DEMO = Path(__file__).resolve().parents[1] / "captures" / "demo-transparent.pcapng"
STATS = {"packets", "frames_unsupported", "not_tcp", "warnings", "processes", "flows", "excluded_localhost",
         "not_tcp_packets", "truncated", "elapsed_s", "clock_skew_s", "captures",
         "flows_released_early", "streams_released_early", "not_tcp_packets_folded"}


def _row(flow_id: int, localhost: bool, capture: str) -> dict:
    """Three connections on distinct ports, so that the join keeps each its own row."""
    return {**empty_flow_row(), "flow_id": flow_id, "localhost": localhost, "capture": capture, "captures": capture,
            "vantages": 1, "client_ip": "10.0.0.1", "server_ip": "10.0.0.2", "client_port": 40000 + flow_id,
            "server_port": 8080, "first_ts": 100.0 + flow_id, "last_ts": 101.0 + flow_id}


def test_assemble_counts_every_run_once():
    first = CaptureRun("a.pcap", [_row(1, False, "a.pcap"), _row(0, True, "a.pcap")], packets=10,
                       unsupported=Counter({"arp": 2}), not_tcp=[{"packets": 3}], warnings=["a.pcap: cut"],
                       truncated=True)
    second = CaptureRun("b.pcap", [_row(2, False, "b.pcap")], packets=5, unsupported=Counter({"arp": 1}), processes=2)
    report = Report.assemble([first, second], include_localhost=False, elapsed_s=1.5, engine="tshark 4.0.17")
    assert [r["flow_id"] for r in report.all_flow_rows] == [0, 1, 2]
    assert [r["flow_id"] for r in report.flow_rows] == [1, 2]
    assert report.stats == {"packets": 15, "frames_unsupported": Counter({"arp": 3}), "not_tcp": [{"packets": 3}],
                            "warnings": ["a.pcap: cut"], "processes": 2, "flows": 3, "excluded_localhost": 1,
                            "not_tcp_packets": 3, "truncated": True, "elapsed_s": 1.5, "engine": "tshark 4.0.17",
                            "clock_skew_s": 5.0, "captures": 2, "rows_in": 3, "rows_joined": 0, "dnat_joined": 0,
                            "flows_released_early": 0, "streams_released_early": 0, "not_tcp_packets_folded": 0}


def test_native_stats_keys():
    report = analyze(DEMO)
    assert set(report.stats) == STATS
    assert report.stats["flows"] == len(report.all_flow_rows) == 64


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_stats_have_the_native_keys_and_the_engine():
    native, tshark = analyze(DEMO), analyze(DEMO, engine="tshark")
    assert set(tshark.stats) == STATS | {"engine"}
    for key in ("packets", "flows", "excluded_localhost", "not_tcp_packets"):
        assert tshark.stats[key] == native.stats[key], key
