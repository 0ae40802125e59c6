"""Check that ``gencapture.py`` writes what Wireshark accepts as real traffic, and that the truth
sidecar agrees with what tshark sees.

Role: the independent check of the benchmark generator. It generates small captures (or takes
existing ones), then asks ``capinfos`` and ``tshark`` -- never the analyzer -- and compares:

- packet count, strict time order, link type;
- one TCP conversation per truth row; no expert errors or malformed packets; no lost, out-of-order
  or duplicate-ACK segments (sequence numbers are consistent); retransmissions only where the
  generator makes them (SYN-only flows);
- every handshake flow of truth ``tls`` has a ClientHello whose SNI is a Linkerd identity, and a
  ServerHello negotiating 0x0304 (unless the handshake fails by design); ALPN
  ``transport.l5d.io/v1`` exactly on port 4143; post-quantum hellos reassembled from 2 segments;
- mid-stream ``tls`` flows show TLS records only, ``plaintext`` flows show HTTP/1.x or h2c,
  ``unknown`` flows carry no payload;
- a few frames parse in scapy with correct IPv4 header checksums (skipped without scapy).

Usage::

    python benchmarks/verify.py                      # generate 50k-packet ether/sll/sll2 files in a temp dir
    python benchmarks/verify.py --pcap FILE.pcap     # check an existing file (needs FILE.pcap.truth.csv)
"""

from __future__ import annotations

import argparse
import collections
import csv
import re
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gencapture  # noqa: E402  (benchmarks/ is not a package)

# Ports the mesh uses for TLS in this capture; tshark needs decode-as for each (4143 too: its TLS
# heuristic usually finds it, but not when the client port is in tshark's port table -- 44322 is
# "pmproxy"). The same ports also carry plaintext (unmeshed servers, loopback hops), so a second
# pass decodes them as HTTP, whose dissector hands an h2c preface on to HTTP/2 (tshark 4.0 has no
# HTTP/2-over-TCP heuristic).
TLS_PORTS = (4143, 8080, 7000, 7001, 7002, 8085, 8086, 9090, 4191)
HTTP_PORTS = TLS_PORTS[1:] + (4140, 50051)
HANDSHAKE_KINDS = {"tls-app", "tls-4143", "tls-control", "tls-scrape", "tls-failed"}
EXPERT_ERROR = "8388608"  # PI_ERROR in epan/proto.h, as tshark -T fields prints _ws.expert.severity
IDENTITY_RE = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+\.serviceaccount\.identity\.linkerd\.cluster\.local$")

# One row per frame: what the checks need. Pass 1 decodes TLS_PORTS as TLS, pass 2 as HTTP.
FIELDS = ("ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.len", "tcp.flags.syn",
          "tls.handshake.type", "tls.handshake.extensions_server_name",
          "tls.handshake.extensions.supported_version", "tls.handshake.extensions_alpn_str",
          "tcp.segment.count", "http.request.method", "http.response.code", "http2.type",
          "tcp.analysis.lost_segment", "tcp.analysis.out_of_order", "tcp.analysis.duplicate_ack",
          "tcp.analysis.retransmission", "_ws.malformed", "_ws.expert.severity", "dns.flags.response")
LINK_HEADER_LEN = {1: 14, 113: 16, 276: 20}  # Ethernet, SLL, SLL2 (no VLAN tags are generated)


class Flow:
    __slots__ = ("syn", "payload", "client_hellos", "server_versions", "sni", "alpn", "pq",
                 "http", "h2", "retrans", "errors")

    def __init__(self):
        self.syn = False
        self.payload = 0
        self.client_hellos = 0
        self.server_versions: set[str] = set()
        self.sni: set[str] = set()
        self.alpn: set[str] = set()
        self.pq = False
        self.http = False
        self.h2 = False
        self.retrans = 0
        self.errors = {"tls": 0, "http": 0}  # malformed/expert-error frames per decoding pass


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def check(pcap: Path, expect_packets: int | None = None) -> list[str]:
    """Return a list of problems (empty when the capture is sound)."""
    problems: list[str] = []
    truth = list(csv.DictReader(open(str(pcap) + ".truth.csv")))
    info = run(["capinfos", "-c", "-o", "-E", str(pcap)])
    packets = int(re.search(r"Number of packets:\s+(\d+)", run(["capinfos", "-c", "-M", str(pcap)])).group(1))
    if expect_packets is not None and packets != expect_packets:
        problems.append(f"{packets} packets, expected {expect_packets}")
    if "Strict time order:   True" not in info:
        problems.append("timestamps not in strict order")

    flows: dict[tuple, Flow] = collections.defaultdict(Flow)
    counts = collections.Counter()
    for proto, ports in (("tls", TLS_PORTS), ("http", HTTP_PORTS)):
        cmd = ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"]
        for port in ports:
            cmd += ["-d", f"tcp.port=={port},{proto}"]
        for f in FIELDS:
            cmd += ["-e", f]
        tally(run(cmd), flows, counts, tls_pass=proto == "tls")
    for what in ("malformed/error", "lost_segment", "out_of_order", "duplicate_ack"):
        if counts[what]:
            problems.append(f"{counts[what]} frames flagged {what}")
    if len(flows) != len(truth):
        problems.append(f"tshark sees {len(flows)} TCP flows, truth has {len(truth)}")

    mid = {flow_key(r) for r in truth if r["kind"] == "mid-tls"}
    record_runs = tls_record_runs(pcap, mid)
    seen = collections.Counter()
    for row in truth:
        key = flow_key(row)
        fl, kind, verdict = flows.get(key), row["kind"], row["verdict"]
        name = f"{kind} {row['client_ip']}:{row['client_port']}->{row['server_ip']}:{row['server_port']}"
        if fl is None:
            problems.append(f"{name}: not in the capture")
            continue
        bad = []
        if kind in HANDSHAKE_KINDS and verdict == "tls":
            sni = next(iter(fl.sni), "")
            if fl.client_hellos != 1 or not IDENTITY_RE.match(sni.removeprefix("stale.")):
                bad.append(f"ClientHello x{fl.client_hellos} SNI {fl.sni}")
            if kind != "tls-failed" and fl.server_versions != {"0x0304"}:
                bad.append(f"ServerHello versions {fl.server_versions}")
            want_alpn = {"transport.l5d.io/v1"} if row["server_port"] == "4143" else set()
            if fl.alpn != want_alpn:
                bad.append(f"ALPN {fl.alpn}")
            seen["pq" if fl.pq else "classic"] += 1
        elif verdict == "tls":  # mid-stream: no SYN, a chain of valid record headers
            if fl.syn or record_runs.get(key, 0) < 3:
                bad.append(f"mid-stream: SYN {fl.syn}, chained record headers {record_runs.get(key, 0)}")
            fl.errors["tls"] = 0  # tshark does not resynchronise on records mid-stream
        elif kind == "mid-http":  # joined inside a response body: text, but not parseable HTTP
            if fl.syn or not fl.payload or fl.client_hellos:
                bad.append(f"mid-stream text: SYN {fl.syn}, payload {fl.payload}, hellos {fl.client_hellos}")
            fl.errors["http"] = 0
        elif verdict == "plaintext":
            if not (fl.http or fl.h2) or fl.client_hellos:
                bad.append(f"plaintext: http {fl.http} h2 {fl.h2} hellos {fl.client_hellos}")
        elif verdict == "unknown" and fl.payload:
            bad.append(f"unknown but {fl.payload} payload bytes")
        if fl.retrans and kind != "syn-only":
            bad.append(f"{fl.retrans} retransmissions")
        errors = fl.errors["http" if verdict == "plaintext" else "tls"]
        if errors:
            bad.append(f"{errors} malformed or expert-error frames")
        if bad:
            problems.append(f"{name}: " + "; ".join(bad))
        seen[verdict] += 1
    print(f"  {pcap.name}: {packets} packets, {len(flows)} TCP flows, {counts['dns']} DNS responses; "
          f"truth {dict(sorted(seen.items()))}")
    if not seen["pq"]:
        problems.append("no post-quantum ClientHello reassembled from 2 segments")
    problems += check_scapy(pcap)
    return problems


def flow_key(row: dict) -> tuple:
    a = (row["client_ip"], int(row["client_port"]))
    b = (row["server_ip"], int(row["server_port"]))
    return tuple(sorted((a, b)))


def tally(output: str, flows: dict, counts: collections.Counter, tls_pass: bool) -> None:
    """Fold one tshark pass into per-flow observations.

    Dissection errors are kept per pass: TLS bytes decoded as HTTP (or the reverse) are expected
    to look malformed, so each flow is judged by the pass that matches its truth.
    """
    for line in output.splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        error = bool(v["_ws.malformed"] or EXPERT_ERROR in v["_ws.expert.severity"].split("|"))
        if not v["tcp.srcport"]:
            counts["dns"] += v["dns.flags.response"] in ("1", "True") and tls_pass
            counts["malformed/error"] += error and tls_pass
            continue
        a, b = (v["ip.src"], int(v["tcp.srcport"])), (v["ip.dst"], int(v["tcp.dstport"]))
        fl = flows[tuple(sorted((a, b)))]
        fl.errors["tls" if tls_pass else "http"] += error
        fl.http |= bool(v["http.request.method"] or v["http.response.code"])
        fl.h2 |= bool(v["http2.type"])
        if not tls_pass:
            continue
        for flag in ("lost_segment", "out_of_order", "duplicate_ack"):
            if v[f"tcp.analysis.{flag}"]:
                counts[flag] += 1
        fl.syn |= v["tcp.flags.syn"] in ("1", "True")
        fl.payload += int(v["tcp.len"] or 0)
        fl.retrans += bool(v["tcp.analysis.retransmission"])
        types = v["tls.handshake.type"].split("|")
        if "1" in types:
            fl.client_hellos += 1
            fl.pq |= int(v["tcp.segment.count"] or 1) >= 2
        if "2" in types:
            fl.server_versions.update(x for x in v["tls.handshake.extensions.supported_version"].split("|") if x)
        fl.sni.update(x for x in v["tls.handshake.extensions_server_name"].split("|") if x)
        fl.alpn.update(x for x in v["tls.handshake.extensions_alpn_str"].split("|") if x)


def tls_record_runs(pcap: Path, keys: set) -> dict:
    """For the given flows, the longest chain of valid TLS record headers (type 20-23, version
    0x0301-0x0304, length <= 2^14 + 256) found in the first 32 KiB each side sent.

    Read with a few lines of struct, independent of tshark and of the generator, because tshark
    does not resynchronise on records when a capture starts mid-record.
    """
    data = pcap.read_bytes()
    link = LINK_HEADER_LEN[int.from_bytes(data[20:24], "little")]
    streams: dict[tuple, bytearray] = collections.defaultdict(bytearray)
    off = 24
    while off < len(data):
        caplen = int.from_bytes(data[off + 8:off + 12], "little")
        ip = off + 16 + link
        off += 16 + caplen
        if data[ip + 9] != 6:
            continue
        ihl = (data[ip] & 15) * 4
        tcp = ip + ihl
        sport, dport = struct.unpack_from("!HH", data, tcp)
        src, dst = socket.inet_ntoa(data[ip + 12:ip + 16]), socket.inet_ntoa(data[ip + 16:ip + 20])
        key = tuple(sorted(((src, sport), (dst, dport))))
        if key in keys:
            buf = streams[(key, src, sport)]
            if len(buf) < 32768:
                buf += data[tcp + (data[tcp + 12] >> 4) * 4:off]
    best: dict = {}
    for (key, _, _), buf in streams.items():
        for start in range(min(len(buf), 16384 + 5)):
            n, p = 0, start
            while p + 5 <= len(buf):
                ctype, version, length = struct.unpack_from("!BHH", buf, p)
                if not (20 <= ctype <= 23 and 0x0301 <= version <= 0x0304 and length <= 16640):
                    break
                n += 1
                p += 5 + length
            if n >= 3:
                best[key] = max(best.get(key, 0), n)
                break
    return best


def check_scapy(pcap: Path, frames: int = 200) -> list[str]:
    """Re-dissect a few frames with scapy and recompute the IPv4 header checksums."""
    try:
        from scapy.layers.inet import IP
        from scapy.utils import rdpcap
    except ImportError:
        print("  scapy not installed: frame re-dissection skipped")
        return []
    problems = []
    for pkt in rdpcap(str(pcap), count=frames):
        ip = pkt.getlayer(IP)
        if ip is None:
            problems.append(f"scapy finds no IPv4 in {pkt.summary()}")
            continue
        recomputed = IP(bytes(ip))
        del recomputed.chksum
        if IP(bytes(recomputed)).chksum != ip.chksum:
            problems.append(f"IPv4 checksum mismatch in {pkt.summary()}")
    return problems[:10]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pcap", type=Path, action="append", help="existing capture(s) to check")
    ap.add_argument("--packets", type=int, default=50_000, help="size of generated captures (default 50,000)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gencheck-") as tmp:
        if args.pcap:
            targets = [(p, None) for p in args.pcap]
        else:
            targets = []
            for lt in ("ether", "sll", "sll2"):
                path = Path(tmp) / f"check.{lt}.pcap"
                gencapture.main(["-o", str(path), "--linktype", lt, "--packets", str(args.packets),
                                 "--seed", str(args.seed)])
                targets.append((path, args.packets))
        for path, expect in targets:
            found = check(path, expect)
            problems += [f"{path.name}: {p}" for p in found]
    for p in problems[:40]:
        print("PROBLEM", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
