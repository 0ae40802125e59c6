"""Reading captures: every file format, link type and damage case, through the real pipeline.

Each format/link variant carries the same reference connection (client 10.42.0.11:40001 ->
10.42.0.12:4143, TLS 1.3 with a Linkerd identity SNI), so each must come out as the same single flow
with the same verdict: what changes is only how the bytes were framed on disk.
"""

from __future__ import annotations

import pytest

import pcapgen as g
from support import count_in, epoch_s, is_truncated, rows, unsupported

REF_C2S = sum(len(b) for d, b in g.tls13() if d == "c")
REF_S2C = sum(len(b) for d, b in g.tls13() if d == "s")
REF_PKTS = g.base_flow()
REF_PKTS_C2S = sum(p.orig for p in REF_PKTS)
REF_PKTS_S2C = len(REF_PKTS) - REF_PKTS_C2S


def assert_reference_flow(row: dict, *, ipv6: bool = False) -> None:
    """The reference TLS 1.3 flow, whatever the file format or link type."""
    client, server = (g.CLIENT6, g.SERVER6) if ipv6 else (g.CLIENT, g.SERVER)
    assert (row["client_ip"], row["client_port"]) == (client.ip, client.port)
    assert (row["server_ip"], row["server_port"]) == (server.ip, server.port)
    assert row["ip_version"] == (6 if ipv6 else 4)
    assert row["client_basis"] == "syn"
    assert row["verdict"] == "tls"
    assert row["evidence"] == "handshake"
    assert row["sni"] == g.IDENTITY_SNI
    assert row["identity"] == "web.emojivoto"
    assert row["tls_version"] == "TLS 1.3"
    assert row["handshake"] == "completed"
    assert row["mtls"] == "inferred"
    assert row["mesh"] is True
    assert row["localhost"] is False
    assert (row["packets_c2s"], row["packets_s2c"]) == (REF_PKTS_C2S, REF_PKTS_S2C)
    assert (row["bytes_c2s"], row["bytes_s2c"]) == (REF_C2S, REF_S2C)
    assert row["syn_seen"] is True and row["fin_seen"] is True and row["rst_seen"] is False
    assert row["midstream"] is False
    assert row["gaps"] == 0
    assert row["truncated_packets"] == 0


@pytest.mark.parametrize("variant", sorted(g.FORMAT_VARIANTS))
def test_file_format_variants_give_the_same_tls13_flow(one_flow, variant):
    assert_reference_flow(one_flow(f"format-{variant}"))


@pytest.mark.parametrize("variant", sorted(g.LINK_VARIANTS))
def test_link_type_variants_give_the_same_tls13_flow(one_flow, variant):
    assert_reference_flow(one_flow(f"link-{variant}"), ipv6=variant in g.IPV6_VARIANTS)


# Timestamps: the first packet is at T0_NS = 1700000000.123456789 s; each format keeps what it can.
@pytest.mark.parametrize("variant, first_s, tolerance", [
    ("pcap-le-usec", 1700000000.123456, 1e-7),
    ("pcap-be-usec", 1700000000.123456, 1e-7),
    ("pcap-le-nsec", 1700000000.123456789, 1e-6),    # float64 epoch seconds keep ~0.24 us
    ("pcap-be-nsec", 1700000000.123456789, 1e-6),
    ("pcapng-le", 1700000000.123456, 1e-7),
    ("pcapng-tsresol-ns", 1700000000.123456789, 1e-6),
    ("pcapng-tsresol-pow2", 1700000000.123456789, 2e-6),  # 2^-20 s ticks ~ 0.95 us
    ("pcapng-sections", 1700000000.123456, 1e-7),
])
def test_timestamps_follow_the_format_resolution(one_flow, variant, first_s, tolerance):
    row = one_flow(f"format-{variant}")
    assert epoch_s(row["first_ts"]) == pytest.approx(first_s, abs=tolerance)
    last_ns = REF_PKTS[-1].ts_ns
    assert epoch_s(row["last_ts"]) == pytest.approx(last_ns / 1e9, abs=2e-6)
    assert row["duration_s"] == pytest.approx((last_ns - REF_PKTS[0].ts_ns) / 1e9, abs=3e-6)


def test_pcapng_if_tsresol_power_of_two_is_not_read_as_power_of_ten(one_flow):
    """2^-20 read as 10^-20 or 10^-6 would put the flow in 1970 or in the far future."""
    row = one_flow("format-pcapng-tsresol-pow2")
    assert 1.6e9 < epoch_s(row["first_ts"]) < 1.8e9


def test_pcapng_several_interfaces_count_the_unsupported_one(analyze, scenario):
    report = analyze(scenario("format-pcapng-multi-iface"))
    assert len(report.all_flows) == 1
    # two DLT_USER0 frames on interface 0; the Ethernet and SLL2 halves of the flow join into one flow
    assert unsupported(report.stats) == 2
    assert unsupported(report.stats, "link") == 2
    assert report.stats["packets"] == len(REF_PKTS) + 2


def test_pcapng_sections_reset_interfaces_and_byte_order(analyze, scenario):
    report = analyze(scenario("format-pcapng-sections"))
    assert unsupported(report.stats) == 0
    assert_reference_flow(rows(report.all_flows)[0])


def test_pcapng_other_blocks_are_skipped(analyze, scenario):
    report = analyze(scenario("format-pcapng-extra-blocks"))
    assert report.stats["packets"] == len(REF_PKTS)
    assert is_truncated(report) is False
    assert report.stats["warnings"] == []


def test_format_is_found_by_magic_not_extension(one_flow, write_capture):
    """A pcapng named .pcap, a gzip named .pcapng and a pcap with no extension at all."""
    assert_reference_flow(one_flow(write_capture(g.build("format-pcapng-le"), "lies.pcap")))
    assert_reference_flow(one_flow(write_capture(g.build("format-pcap-gzip"), "lies.pcapng")))
    assert_reference_flow(one_flow(write_capture(g.build("format-pcap-be-nsec"), "capture")))


def test_several_captures_in_one_call(analyze, scenario):
    paths = [scenario("tls13-identity"), scenario("http-request")]
    report = analyze(paths)
    flows = rows(report.flows)
    assert sorted(f["verdict"] for f in flows) == ["plaintext", "tls"]
    captures = {f["capture"] for f in flows}
    assert len(captures) == 2
    assert any("tls13-identity" in str(c) for c in captures)
    assert report.stats["packets"] == len(REF_PKTS) + 8     # the HTTP flow: 3 + 2 + 3 packets


def test_path_may_be_str(analyze, scenario):
    report = analyze(str(scenario("tls13-identity")))
    assert len(report.flows) == 1


def test_header_only_capture_has_every_column_and_no_rows(analyze, scenario):
    report = analyze(scenario("header-only"))
    assert len(report.flows) == 0 and len(report.pairs) == 0
    for column in ("client_ip", "verdict", "evidence", "reason", "sni", "tls_version", "port_hint",
                   "first_ts", "last_ts", "packets_c2s", "bytes_s2c", "mtls", "mesh"):
        assert column in report.flows.columns
    for column in ("client_ip", "server_ip", "flows", "tls", "plaintext", "unknown", "status"):
        assert column in report.pairs.columns
    assert report.stats["packets"] == 0


# --- what is not decoded is counted, never a crash -------------------------------------------
def test_unsupported_link_type_is_counted(analyze, scenario):
    report = analyze(scenario("unsupported-linktype"))
    assert len(report.all_flows) == 0
    assert report.stats["packets"] == 5
    assert unsupported(report.stats, "link") == 5


def test_fragments_and_tunnels_are_counted_not_decoded(analyze, scenario):
    report = analyze(scenario("unsupported-frames"))
    flows = rows(report.all_flows)
    # only the reference flow: the fragmented segment and the tunnelled flow make no TCP flow
    assert len(flows) == 1
    assert_reference_flow(flows[0])
    assert unsupported(report.stats, "frag") == g.N_IP_FRAGMENTS
    assert unsupported(report.stats, "tunnel") == g.N_TUNNEL_FRAMES
    assert report.stats["packets"] == len(REF_PKTS) + g.N_IP_FRAGMENTS + g.N_TUNNEL_FRAMES


def test_udp_is_counted_per_host_pair_and_gets_no_flow(analyze, scenario):
    report = analyze(scenario("udp-dns"))
    flows = rows(report.all_flows)
    assert len(flows) == 1 and flows[0]["verdict"] == "tls"     # the TCP flow after the DNS query
    assert count_in(report.stats["not_tcp"]) == 2
    assert "10.96.0.10" in str(report.stats["not_tcp"])
    assert report.stats["flows"] == 1


def test_stats_contract_keys(analyze, scenario):
    """The stats dict promised to notebooks: these keys, always present."""
    stats = analyze(scenario("tls13-identity")).stats
    for key in ("packets", "frames_unsupported", "flows", "excluded_localhost", "not_tcp", "truncated",
                "warnings"):
        assert key in stats, key
    assert stats["truncated"] is False and stats["warnings"] == []


# --- damage -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["truncated-pcap", "truncated-pcapng", "truncated-gzip"])
def test_truncated_capture_is_analysed_up_to_the_damage(analyze, scenario, name):
    report = analyze(scenario(name))
    assert is_truncated(report) is True
    (warning,) = report.stats["warnings"]
    assert warning.startswith(f"{scenario(name)}: ") and warning.endswith("; analysed up to the damage")
    flows = {f["client_port"]: f for f in rows(report.all_flows)}
    # flow A (before the damage) is whole and classified
    assert_reference_flow(flows[40001])
    if name != "truncated-gzip":
        # flow B: its handshake and the HTTP request arrived before the cut
        assert flows[40002]["verdict"] == "plaintext"
        assert flows[40002]["packets_c2s"] >= 2


@pytest.mark.parametrize("name, damage", [
    ("corrupt-block", "corrupt block (type 0x00000006: trailing length differs)"),
    ("corrupt-block-length", "corrupt block (type 0x00000006, length 13)"),
    ("corrupt-interface-id", "corrupt packet block (interface 5, caplen 58)"),
])
def test_corrupt_block_stops_the_read_with_a_warning(analyze, scenario, name, damage):
    """Trailing length != leading length; an impossible block length; an EPB naming a missing
    interface. tshark stops at each of these; the analyzer must too, keeping what came before."""
    report = analyze(scenario(name))
    assert is_truncated(report) is True
    flows = {f["client_port"]: f for f in rows(report.all_flows)}
    assert_reference_flow(flows[40001])
    assert report.stats["packets"] == len(REF_PKTS)
    assert report.stats["warnings"] == [
        f"{scenario(name)}: {damage} after {len(REF_PKTS)} frames; analysed up to the damage"]


@pytest.mark.parametrize("content, filename", [
    (b"", "empty.pcap"),
    (b"this is not a capture at all\n" * 10, "notes.pcap"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "short-header.pcap"),
    (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\xde\xad\xbe\xef" + bytes(16), "bad-bom.pcapng"),
    (b"\x1f\x8b\x08\x00garbage-not-deflate", "broken.pcap.gz"),
    (g.gzip_bytes(b"plain text, gzip-compressed\n" * 20), "text.gz"),
], ids=["empty", "text", "short-pcap-header", "pcapng-bad-byte-order-magic", "broken-gzip", "gzip-of-text"])
def test_unreadable_content_raises_capture_format_error(analyze, write_capture, content, filename):
    from analyzer.errors import CaptureFormatError
    with pytest.raises(CaptureFormatError):
        analyze(write_capture(content, filename))


def test_missing_path_and_directory_raise_capture_format_error(analyze, tmp_path):
    from analyzer.errors import CaptureFormatError
    with pytest.raises(CaptureFormatError):
        analyze(tmp_path / "does-not-exist.pcap")
    with pytest.raises(CaptureFormatError):
        analyze(tmp_path)


def test_truncated_packet_records_snaplen_cut(one_flow):
    row = one_flow("snaplen-68")
    # SYN, SYN-ACK, ACK and FINs fit in 68 bytes; each of the 5 data segments was cut
    assert row["truncated_packets"] == 5
    assert row["bytes_c2s"] == REF_C2S and row["bytes_s2c"] == REF_S2C   # wire lengths, not captured


def test_pcapgen_main_writes_every_scenario(tmp_path):
    assert g.main([str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == len(g.all_scenarios())
    assert "tls13-identity.pcap" in written and "format-pcapng-le.pcapng" in written
