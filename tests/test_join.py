"""Several captures of the same traffic: each TCP connection is one row (``analyzer.join``).

Captures are built with ``pcapgen`` (scapy, fixed ISNs and times) and read by the real pipeline; each
case says what the joined row must be: clock skew between files, a reused tuple, one side mid-stream or
cut by a snaplen, conflicting evidence, the same file twice, and the CLI's ``--clock-skew`` and note.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pcapgen as pg
from analyzer import analyze
from analyzer.join import DEFAULT_CLOCK_SKEW_S
from kube_builders import pod, write_pods

REPO = Path(__file__).resolve().parent.parent
SERVER = pg.Endpoint("10.42.0.12", 8080)
CLIENT = pg.Endpoint("10.42.0.11", 40001)
IDENT = "{}.{}.serviceaccount.identity.linkerd.cluster.local".format


def write(path: Path, pkts, link: str = "ether", snaplen: int = 262144) -> Path:
    path.write_bytes(pg.pcap_bytes(pg.encap(pkts, link), snaplen=snaplen))
    return path


def tls_conn(**kw):
    return pg.tcp_flow(pg.tls13(sni=IDENT("emoji", "emojivoto")), client=CLIENT, server=SERVER, **kw)


def http_conn(**kw):
    return pg.tcp_flow([("c", pg.HTTP_REQUEST), ("s", pg.HTTP_RESPONSE)], client=CLIENT, server=SERVER, **kw)


def only(report) -> dict:
    rows = report.flow_rows
    assert len(rows) == 1, [(r["captures"], r["first_ts"]) for r in rows]
    return rows[0]


def test_two_vantages_one_connection(tmp_path):
    a = write(tmp_path / "client.pcap", tls_conn(), "ether")
    b = write(tmp_path / "server.pcap", tls_conn(), "sll")
    one = only(analyze([a]))
    row = only(analyze([a, b]))
    assert row["captures"] == "client.pcap,server.pcap" and row["vantages"] == 2
    assert row["verdict"] == "tls" and row["evidence"] == "handshake" and not row["vantage_conflict"]
    # packets and bytes are one vantage point's, not the sum
    for column in ("packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "isn_c2s", "isn_s2c"):
        assert row[column] == one[column]
    assert row["isn_c2s"] == pg.ISN_C and row["isn_s2c"] == pg.ISN_S


def test_clock_skew_decides(tmp_path):
    a = write(tmp_path / "a.pcap", tls_conn())
    b = write(tmp_path / "b.pcap", pg.shift(tls_conn(), 3_000_000_000))  # the other node's clock is 3 s ahead
    assert DEFAULT_CLOCK_SKEW_S >= 3
    report = analyze([a, b])
    assert only(report)["vantages"] == 2 and report.stats["clock_skew_s"] == DEFAULT_CLOCK_SKEW_S
    report = analyze([a, b], clock_skew=1.0)
    assert [r["vantages"] for r in report.flow_rows] == [1, 1] and "clock skew 1 s" in report.summary()


def test_reused_tuple_is_a_new_connection(tmp_path):
    first = tls_conn()
    second = pg.tcp_flow([("c", pg.HTTP_REQUEST), ("s", pg.HTTP_RESPONSE)], client=CLIENT, server=SERVER,
                         isn_c=77_000, isn_s=88_000, t0_ns=pg.T0_NS + 500_000_000)
    both = pg.merge(first, second)
    a = write(tmp_path / "a.pcap", both)
    b = write(tmp_path / "b.pcap", pg.shift(both, 200_000_000))
    rows = analyze([a, b]).flow_rows
    assert [(r["verdict"], r["vantages"], r["isn_c2s"]) for r in rows] == [("tls", 2, pg.ISN_C), ("plaintext", 2, 77_000)]


def test_midstream_side_takes_the_handshake(tmp_path):
    full = tls_conn()
    a = write(tmp_path / "late.pcap", pg.tcp_flow(pg.midstream_records(), client=CLIENT, server=SERVER, syn=False))
    b = write(tmp_path / "full.pcap", full)
    late = only(analyze([a]))
    assert late["evidence"] != "handshake"
    row = only(analyze([a, b]))
    assert row["evidence"] == "handshake" and row["sni"] == IDENT("emoji", "emojivoto") and row["syn_seen"]
    assert row["client_basis"] == "syn" and row["vantages"] == 2


def test_snaplen_cut_side(tmp_path):
    a = write(tmp_path / "cut.pcap", tls_conn(), snaplen=96)
    b = write(tmp_path / "whole.pcap", tls_conn())
    cut = only(analyze([a]))
    assert cut["evidence"] != "handshake"
    row = only(analyze([a, b]))
    assert row["evidence"] == "handshake" and row["verdict"] == "tls" and row["vantages"] == 2


def test_conflict_is_never_tls(tmp_path):
    a = write(tmp_path / "tls.pcap", tls_conn())
    b = write(tmp_path / "plain.pcap", http_conn())
    report = analyze([a, b], pods=write_pods(tmp_path / "pods.json", pod("web", CLIENT.ip), pod("emoji", SERVER.ip)))
    row = only(report)
    assert row["verdict"] == "unknown" and row["vantage_conflict"] is True and row["mtls"] == "unknown"
    assert row["reason"].startswith("vantage_conflict: ")
    assert "plain.pcap: plaintext (payload)" in row["reason"] and "tls.pcap: tls (handshake)" in row["reason"]
    [edge] = report.edge_rows
    assert (edge["status"], edge["unverified"], edge["flows"]) == ("unverified", 1, 1)
    assert edge["msg"].startswith("vantage_conflict :8080")


def test_same_file_twice_counts_once_and_says_so(tmp_path):
    a = write(tmp_path / "a.pcap", pg.merge(tls_conn(), pg.tcp_flow(
        pg.tls13(), client=pg.Endpoint("10.42.0.11", 40002), server=SERVER)))
    pods = write_pods(tmp_path / "pods.json", pod("web", CLIENT.ip), pod("emoji", SERVER.ip))
    proc = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(a), str(a), "--pods", str(pods),
                           "--view", "edges", "--format", "csv"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    [edge] = list(__import__("csv").DictReader(proc.stdout.splitlines()))
    assert edge["flows"] == "2" and edge["tls"] == "2"
    notes = [line for line in proc.stderr.splitlines() if "counted once" in line]
    assert notes == ["Warning: a.pcap saw exactly the 2 connection(s) of a.pcap, packet for packet "
                     "(the same file given twice?); each connection is counted once"]
    assert "4 capture rows are 2 connections (clock skew 5 s)" in proc.stderr


def test_clock_skew_option_and_bad_value(tmp_path):
    a = write(tmp_path / "a.pcap", tls_conn())
    b = write(tmp_path / "b.pcap", pg.shift(tls_conn(), 3_000_000_000))
    run = lambda *extra: subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(a), str(b), "--view",
                                         "flows", "--format", "csv", *extra], capture_output=True, text=True, cwd=REPO)
    assert run().stdout.count("\n") == 2 and run("--clock-skew", "0.5").stdout.count("\n") == 3
    bad = run("--clock-skew", "-1")
    assert bad.returncode == 2 and bad.stderr.count("Error") == 1 and "Traceback" not in bad.stderr


def test_single_capture_is_not_joined(tmp_path):
    a = write(tmp_path / "a.pcap", tls_conn())
    report = analyze([a])
    assert "rows_in" not in report.stats and only(report)["captures"] == "a.pcap"


def test_report_json_names_vantages_and_counts_sides(tmp_path):
    """Three vantage points of one connection plus a connection only the client pod saw."""
    import json

    other = pg.tcp_flow(pg.tls13(sni=IDENT("emoji", "emojivoto")), client=pg.Endpoint(CLIENT.ip, 40002),
                        server=SERVER, t0_ns=pg.T0_NS + 100_000_000, isn_c=55_555)
    client = write(tmp_path / "run.pod-web.pcap", pg.merge(tls_conn(), other))
    server = write(tmp_path / "run.pod-emoji.pcap", tls_conn(), "sll")
    node = write(tmp_path / "run.node-node1.pcap", tls_conn())
    pods = write_pods(tmp_path / "pods.json", pod("web", CLIENT.ip), pod("emoji", SERVER.ip))
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "analyzer", "report", str(client), str(server), str(node),
                           "--pods", str(pods), "--json", str(out), "--clock-skew", "2"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert [c["vantage"] for c in doc["captures"]] == [
        {"kind": "pod", "pod": "emojivoto/web", "node": None, "source": "name"},
        {"kind": "pod", "pod": "emojivoto/emoji", "node": None, "source": "name"},
        {"kind": "node", "pod": None, "node": "node1", "source": "name"}]
    assert doc["options"]["clock_skew_s"] == 2.0
    [edge] = doc["edges"]
    assert (edge["flows"], edge["seen_one_side"], edge["seen_both_sides"], edge["seen_from_node"]) == (2, 1, 1, 1)
    assert sorted(f["vantages"] for f in doc["flows"]) == [1, 3]
    from analyzer.report.html import render_html

    page = render_html(doc)
    assert "pod emojivoto/web (from the file name)" in page and "node node1 (from the file name)" in page

    # A manifest beside the captures wins over the names.
    (tmp_path / "manifest.json").write_text(json.dumps({"captures": [
        {"file": "run.node-node1.pcap", "vantage": "pod", "pod": "emoji", "namespace": "emojivoto"}]}))
    proc = subprocess.run([sys.executable, "-m", "analyzer", "report", str(node), "--pods", str(pods),
                           "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["captures"][0]["vantage"] == {
        "kind": "pod", "pod": "emojivoto/emoji", "node": None, "source": "manifest"}
    (tmp_path / "manifest.json").write_text("{not json")
    proc = subprocess.run([sys.executable, "-m", "analyzer", "report", str(node), "--pods", str(pods),
                           "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and proc.stderr.count("not a capture manifest") == 1
    assert json.loads(out.read_text())["captures"][0]["vantage"]["kind"] == "node"


def test_node_any_copies_are_one_packet(tmp_path):
    """A node's ``-i any`` sees each data segment on the client's veth and again on the server's,
    microseconds apart: the copies are one packet, not retransmissions (packets, bytes and reassembly as
    with one copy)."""
    once = tls_conn()
    twice = []
    for p in once:
        twice += [p, pg.Pkt(p.ts_ns + 20_000, p.l3, p.orig)] if len(p.l3) > 52 else [p]  # data segments twice
    single = only(analyze([write(tmp_path / "pod.pcap", once, "sll")]))
    node = only(analyze([write(tmp_path / "node.pcap", twice, "sll")]))
    for column in ("packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "gaps", "verdict", "evidence", "sni"):
        assert node[column] == single[column], column
    # a real retransmission (an RTO later) still counts
    late = once + [pg.Pkt(once[-1].ts_ns + 300_000_000, once[4].l3, once[4].orig)]
    again = only(analyze([write(tmp_path / "rto.pcap", late, "sll")]))
    assert again["bytes_c2s"] + again["bytes_s2c"] > single["bytes_c2s"] + single["bytes_s2c"]


def _two_interfaces(path: Path, blocks) -> Path:
    """A pcapng with interfaces 0 (``veth``) and 1 (``cni0``), Ethernet; ``blocks``: (interface, Pkt)."""
    ifaces = [pg.Interface(pg.LINKTYPE_ETHERNET, name="veth", tsresol=pg.TSRESOL_NS),
              pg.Interface(pg.LINKTYPE_ETHERNET, name="cni0", tsresol=pg.TSRESOL_NS)]
    frames = [(i, f) for (i, _), f in zip(blocks, pg.encap([p for _, p in blocks], "ether"))]
    path.write_bytes(pg.pcapng_bytes([pg.Section(ifaces, [("epb", i, f) for i, f in frames])]))
    return path


def test_copies_without_payload_on_another_interface_are_one_packet(tmp_path):
    """Every packet (SYN, pure ACK, data, FIN) seen on the veth and 20 us later on the bridge counts once;
    a duplicate ACK on the same interface, and a window update, are packets of their own."""
    from scapy.layers.inet import IP, TCP

    once = tls_conn()
    pure = [p for p in once if len(IP(p.l3)[TCP].payload) == 0 and IP(p.l3)[TCP].flags == "A"]
    assert len(pure) == 2  # the handshake's last ACK and the closing one
    single = only(analyze([_two_interfaces(tmp_path / "veth.pcapng", [(0, p) for p in once])]))
    copies = [b for p in once for b in ((0, p), (1, pg.Pkt(p.ts_ns + 20_000, p.l3, p.orig)))]
    node = only(analyze([_two_interfaces(tmp_path / "node.pcapng", copies)]))
    for column in ("packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "gaps", "verdict", "sni"):
        assert node[column] == single[column], column

    ack = pure[-1]
    dup = pg.Pkt(ack.ts_ns + 30_000, ack.l3, ack.orig)  # the same ACK again, same interface: a duplicate ACK
    window = IP(ack.l3)
    window[TCP].window = 1000
    del window[TCP].chksum
    update = pg.Pkt(ack.ts_ns + 40_000, bytes(window), ack.orig)  # another window, the other interface
    extra = sorted(copies + [(0, dup), (1, update)], key=lambda b: b[1].ts_ns)
    more = only(analyze([_two_interfaces(tmp_path / "more.pcapng", extra)]))
    side, other = ("packets_c2s", "packets_s2c") if ack.orig else ("packets_s2c", "packets_c2s")
    assert (more[side], more[other]) == (single[side] + 2, single[other])

    # -i any with SLL2: one pcapng interface, the interface in the SLL2 header
    frames = [f for p in once for f in (pg.encap([p], "sll2", ifindex=3)[0],
                                        pg.encap([pg.Pkt(p.ts_ns + 20_000, p.l3, p.orig)], "sll2", ifindex=4)[0])]
    (tmp_path / "any.pcapng").write_bytes(pg.simple_pcapng(frames, tsresol=pg.TSRESOL_NS))
    node_any = only(analyze([tmp_path / "any.pcapng"]))
    assert (node_any["packets_c2s"], node_any["packets_s2c"]) == (single["packets_c2s"], single["packets_s2c"])


def test_copies_without_payload_in_sll_v1_are_one_packet(tmp_path):
    """``tshark -i any`` writes SLL v1 by default, which does not say which interface a packet crossed:
    there the same IP packet again at once (same IP id, seq, ack, flags, window) is a copy, while a
    duplicate ACK (another IP packet: another id) still counts."""
    from scapy.layers.inet import IP, TCP

    once = tls_conn()
    single = only(analyze([write(tmp_path / "pod.pcap", once, "sll")]))
    copies = sorted([p for q in once for p in (q, pg.Pkt(q.ts_ns + 20_000, q.l3, q.orig))], key=lambda p: p.ts_ns)
    node = only(analyze([write(tmp_path / "node.pcap", copies, "sll")]))
    for column in ("packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "gaps", "verdict", "sni"):
        assert node[column] == single[column], column

    ack = [p for p in once if len(IP(p.l3)[TCP].payload) == 0 and IP(p.l3)[TCP].flags == "A"][-1]
    again = IP(ack.l3)
    again.id = (again.id + 1) % 65536
    del again.chksum
    dup = pg.Pkt(ack.ts_ns + 30_000, bytes(again), ack.orig)  # a duplicate ACK: the same TCP fields, a new packet
    more = only(analyze([write(tmp_path / "more.pcap", sorted(copies + [dup], key=lambda p: p.ts_ns), "sll")]))
    side = "packets_c2s" if ack.orig else "packets_s2c"
    assert more[side] == single[side] + 1


@pytest.mark.tshark
def test_tshark_engine_joins_the_same_way(tmp_path):
    import shutil

    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    a = write(tmp_path / "a.pcap", tls_conn())
    b = write(tmp_path / "b.pcap", pg.shift(tls_conn(), 1_000_000_000), "sll")
    native, wireshark = analyze([a, b]), analyze([a, b], engine="tshark")
    for report in (native, wireshark):
        row = only(report)
        assert (row["vantages"], row["captures"], row["isn_c2s"], row["isn_s2c"]) == (2, "a.pcap,b.pcap", pg.ISN_C, pg.ISN_S)
        assert report.stats["rows_in"] == 2


# -- the join layer on rows (no captures): connections seen by random subsets of captures --------------
from hypothesis import given, settings, strategies as st  # noqa: E402

from analyzer.join.connections import join_captures  # noqa: E402
from analyzer.report.schema import FLOW_NAMES  # noqa: E402


def _row(capture: str, fid: int, cport: int, first: float, isn, offset: float) -> dict:
    row = dict.fromkeys(FLOW_NAMES, "")
    row.update(capture=capture, captures=capture, flow_id=fid, client_ip="10.0.0.1", client_port=cport,
               server_ip="10.0.0.2", server_port=443, client_basis="syn" if isn is not None else "port",
               first_ts=first + offset, last_ts=first + offset + 1.0, packets_c2s=5, packets_s2c=5,
               bytes_c2s=100, bytes_s2c=100, syn_seen=isn is not None, fin_seen=True, rst_seen=False,
               isn_c2s=isn, isn_s2c=None, verdict="tls", evidence="handshake", vantages=1,
               vantage_conflict=False, service_ip="", service_port=None)
    return row


connections = st.lists(st.tuples(st.integers(0, 3),  # client port (few: tuples are reused)
                                 st.integers(0, 50),  # start, in 10 s steps: reuse never overlaps
                                 st.one_of(st.none(), st.integers(0, 2**32 - 1)),  # ISN (None: mid-stream)
                                 st.sets(st.integers(0, 3), min_size=1)),  # captures that saw it
                       max_size=25, unique_by=lambda c: (c[0], c[1]))


@settings(max_examples=150, deadline=None)
@given(connections, st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4))
def test_each_connection_once_with_its_captures(conns, offsets):
    parts = [[] for _ in range(4)]
    fid = 0
    for cport, start, isn, seen in conns:
        for ci in sorted(seen):
            parts[ci].append(_row(f"c{ci}", fid, 40000 + cport, start * 10.0, isn, offsets[ci]))
            fid += 1
    result = join_captures(parts, ["c0", "c1", "c2", "c3"], clock_skew=4.5)
    got = sorted((r["client_port"], r["captures"]) for r in result.rows)
    want = sorted((40000 + cport, ",".join(f"c{ci}" for ci in sorted(seen))) for cport, _, _, seen in conns)
    assert got == want
    assert result.rows_in == fid and [r["flow_id"] for r in result.rows] == sorted(r["flow_id"] for r in result.rows)


def test_isn_tells_a_reused_tuple_apart_within_the_skew():
    a = [_row("a", 0, 40000, 0.0, 111, 0.0), _row("a", 1, 40000, 2.0, 222, 0.0)]
    b = [_row("b", 2, 40000, 0.0, 222, 2.0), _row("b", 3, 40000, 2.0, 111, -2.0)]  # skewed the other way
    rows = join_captures([a, b], ["a", "b"], clock_skew=5.0).rows
    assert sorted((r["isn_c2s"], r["captures"]) for r in rows) == [(111, "a,b"), (222, "a,b")]


def test_same_file_name_in_two_directories_is_two_vantages(tmp_path):
    """``ns1/web.pcapng`` and ``ns2/web.pcapng``: two pods' captures, not one file given twice."""
    import json

    client, server = pg.Endpoint("10.42.0.11", 40001), pg.Endpoint("10.42.0.12", 8080)
    conn = pg.tcp_flow(pg.tls13(sni=IDENT("web", "ns2")), client=client, server=server)
    only_client = pg.tcp_flow(pg.tls13(sni=IDENT("web", "ns2")), client=pg.Endpoint(client.ip, 40002),
                              server=server, t0_ns=pg.T0_NS + 100_000_000, isn_c=55_555)
    paths = []
    for ns, pkts in (("ns1", pg.merge(conn, only_client)), ("ns2", conn)):
        (tmp_path / ns).mkdir()
        paths.append(write(tmp_path / ns / "web.pcapng", pkts, "sll"))
        (tmp_path / ns / "manifest.json").write_text(json.dumps(
            {"captures": [{"file": "web.pcapng", "vantage": "pod", "pod": f"{ns}/web"}]}))
    pods = write_pods(tmp_path / "pods.json", pod("web", client.ip, namespace="ns1"),
                      pod("web", server.ip, namespace="ns2"))
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "analyzer", "report", *map(str, paths), "--pods", str(pods),
                           "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "counted once" not in proc.stderr  # not taken for one file given twice
    doc = json.loads(out.read_text())
    assert [(c["file"], c["vantage"]["pod"]) for c in doc["captures"]] == [
        ("ns1/web.pcapng", "ns1/web"), ("ns2/web.pcapng", "ns2/web")]
    assert sorted((f["captures"], f["vantages"]) for f in doc["flows"]) == [
        ("ns1/web.pcapng", 1), ("ns1/web.pcapng,ns2/web.pcapng", 2)]
    [edge] = doc["edges"]
    assert (edge["flows"], edge["seen_one_side"], edge["seen_both_sides"], edge["seen_from_node"]) == (2, 1, 1, 0)
    # The same path twice is still one file given twice.
    report = analyze([paths[1], paths[1]])
    assert only(report)["captures"] == "web.pcapng" and only(report)["vantages"] == 1
