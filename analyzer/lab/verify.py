"""Check a lab capture against its expected edges using tshark alone (not the analyzer's dissector).

tshark reads the capture with ``-d tcp.port==P,tls`` for every port the expected edges call TLS; a TCP
stream is ``tls`` when tshark dissected any TLS record in it (``tls.record.content_type`` or, for TLS 1.3
encrypted records, ``tls.record.opaque_type``), ``plaintext`` when it carried payload but no TLS record,
and ``empty`` otherwise. Flows over ``lo`` (same IP both ends, or 127.0.0.0/8) are kept apart as localhost.
The client side is the SYN sender; for a stream that began before the capture, the side whose
(address, port) is an expected server.

Run ``python -m analyzer.lab.verify captures/demo-transparent.pcapng`` for a table; tests call
:func:`verify`. Needs tshark; reads only files.
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

FIELDS = (  # tshark -T fields columns, in order
    "tcp.stream", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.flags.syn", "tcp.flags.ack",
    "tcp.len", "tls.record.content_type", "tls.record.opaque_type", "tls.handshake.type",
    "tls.handshake.extensions_server_name", "tls.handshake.extensions.supported_version",
    "tls.handshake.extensions_alpn_str", "udp.srcport", "udp.dstport", "sll.hatype",
)
ARPHRD_LOOPBACK = "772"  # linux/if_arp.h: the packet was captured on lo


@dataclass
class Stream:
    """What tshark showed for one TCP stream."""

    endpoints: tuple[tuple[str, int], tuple[str, int]]  # (first packet src, first packet dst)
    client: tuple[str, int] | None = None  # SYN sender
    server: tuple[str, int] | None = None  # SYN-ACK sender
    loopback: bool = False  # seen on an ARPHRD_LOOPBACK interface
    payload_bytes: int = 0
    tls_records: int = 0
    sni: set[str] = field(default_factory=set)
    server_versions: set[str] = field(default_factory=set)  # ServerHello supported_versions
    alpn: set[str] = field(default_factory=set)
    client_hello: bool = False

    @property
    def verdict(self) -> str:
        if self.tls_records:
            return "tls"
        return "plaintext" if self.payload_bytes else "empty"


@dataclass
class EdgeResult:
    key: tuple[str, str, int]  # (src_ip, dst_ip, dst_port)
    expected: dict | None
    flows: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    sni: set[str] = field(default_factory=set)
    server_versions: set[str] = field(default_factory=set)
    alpn: set[str] = field(default_factory=set)
    handshakes: int = 0

    @property
    def ok(self) -> bool:
        if self.expected is None or self.flows == 0:
            return False
        seen = {v for v in self.verdicts if v != "empty"}
        return seen == {self.expected["verdict"]}


@dataclass
class Report:
    edges: list[EdgeResult]
    localhost: dict[tuple[str, str, int], int]  # lo hops: key -> flows
    unexpected: list[EdgeResult]  # observed non-localhost edges with no expected row
    localhost_expected: set[tuple[str, str, int]] | None = None  # from <capture>.expected-localhost.csv

    @property
    def localhost_unexpected(self) -> set[tuple[str, str, int]]:
        return set(self.localhost) - self.localhost_expected if self.localhost_expected is not None else set()

    @property
    def missing(self) -> list[EdgeResult]:
        return [e for e in self.edges if e.flows == 0]

    @property
    def mismatched(self) -> list[EdgeResult]:
        return [e for e in self.edges if e.flows and not e.ok]

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched and not self.unexpected and not self.localhost_unexpected


def is_localhost(src: str, dst: str) -> bool:
    return src == dst or ipaddress.ip_address(src).is_loopback or ipaddress.ip_address(dst).is_loopback


def read_expected(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["dst_port"] = int(row["dst_port"])
    return rows


def tshark_fields(capture: Path, tls_ports: set[int]) -> list[list[str]]:
    command = ["tshark", "-n", "-r", str(capture), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
               "-E", "aggregator=,"]
    for port in sorted(tls_ports):
        command += ["-d", f"tcp.port=={port},tls"]
    for name in FIELDS:
        command += ["-e", name]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    return [line.split("\t") for line in proc.stdout.splitlines()]


def streams_from(rows: list[list[str]]) -> tuple[dict[int, Stream], list[tuple[str, str, int]]]:
    streams: dict[int, Stream] = {}
    udp = []
    for row in rows:
        row += [""] * (len(FIELDS) - len(row))
        (stream_id, src, sport, dst, dport, syn, ack, tcp_len, ctype, otype, hstype, sni, version, alpn,
         usport, udport, hatype) = row[:len(FIELDS)]
        if udport and src and dst:
            udp.append((src, dst, int(udport)))
            continue
        if not stream_id or not src:
            continue
        sid = int(stream_id)
        stream = streams.get(sid)
        if stream is None:
            stream = streams[sid] = Stream(((src, int(sport)), (dst, int(dport))))
        if syn == "1" and ack == "0":
            stream.client = (src, int(sport))
        elif syn == "1":
            stream.server = (src, int(sport))
        stream.loopback |= hatype == ARPHRD_LOOPBACK
        stream.payload_bytes += int(tcp_len or 0)
        types = {t for t in (ctype + "," + otype).split(",") if t}
        stream.tls_records += sum(1 for t in types if t in ("20", "21", "22", "23"))
        hstypes = set(hstype.split(",")) if hstype else set()
        if "1" in hstypes:
            stream.client_hello = True
            stream.sni.update(s for s in sni.split(",") if s)
            stream.alpn.update(a for a in alpn.split(",") if a)
        if "2" in hstypes:
            stream.server_versions.update(v for v in version.split(",") if v)
    return streams, udp


def verify(capture: Path, expected_csv: Path, localhost_csv: Path | None = None) -> Report:
    expected = read_expected(expected_csv)
    by_key = {(r["src_ip"], r["dst_ip"], r["dst_port"]): r for r in expected}
    servers = {(r["dst_ip"], r["dst_port"]) for r in expected}
    tls_ports = {r["dst_port"] for r in expected if r["verdict"] == "tls"}
    streams, udp = streams_from(tshark_fields(capture, tls_ports))
    results = {key: EdgeResult(key, row) for key, row in by_key.items()}
    localhost: dict[tuple[str, str, int], int] = defaultdict(int)
    unexpected: dict[tuple[str, str, int], EdgeResult] = {}
    for stream in streams.values():
        a, b = stream.endpoints
        if stream.client is not None:
            client, server = stream.client, (b if stream.client == a else a)
        elif stream.server is not None:
            server, client = stream.server, (b if stream.server == a else a)
        elif (b[0], b[1]) in servers:
            client, server = a, b
        else:
            client, server = b, a
        key = (client[0], server[0], server[1])
        if stream.loopback or is_localhost(client[0], server[0]):
            localhost[key] += 1
            continue
        result = results.get(key)
        if result is None:
            result = unexpected.setdefault(key, EdgeResult(key, None))
        result.flows += 1
        result.verdicts[stream.verdict] = result.verdicts.get(stream.verdict, 0) + 1
        result.sni |= stream.sni
        result.alpn |= stream.alpn
        result.server_versions |= stream.server_versions
        result.handshakes += stream.client_hello
    for src, dst, port in udp:
        key = (src, dst, port)
        if key in results:
            results[key].flows += 1
            results[key].verdicts["plaintext"] = results[key].verdicts.get("plaintext", 0) + 1
    local_expected = None
    if localhost_csv is not None and localhost_csv.exists():
        local_expected = {(r["src_ip"], r["dst_ip"], r["dst_port"]) for r in read_expected(localhost_csv)}
    return Report(list(results.values()), dict(localhost), list(unexpected.values()), local_expected)


def render(report: Report) -> str:
    lines = [f"{'src':<22} {'dst':<24} {'expected':<32} {'flows':>5}  tshark"]
    for edge in sorted(report.edges + report.unexpected, key=lambda e: e.key):
        exp = edge.expected
        src = exp["src_pod"].rsplit("-", 2)[0] if exp else edge.key[0]
        dst = f"{exp['dst_pod'].rsplit('-', 2)[0]}:{edge.key[2]}" if exp else f"{edge.key[1]}:{edge.key[2]}"
        want = f"{exp['verdict']}/{exp['status']}" if exp else "(not expected)"
        seen = ",".join(f"{k}={v}" for k, v in sorted(edge.verdicts.items()))
        extra = ""
        if edge.handshakes:
            extra = (f" hs={edge.handshakes} ver={'/'.join(sorted(edge.server_versions))}"
                     f" alpn={'/'.join(sorted(edge.alpn)) or '-'} sni={'/'.join(sorted(edge.sni))}")
        lines.append(f"{src:<22} {dst:<24} {want:<32} {edge.flows:>5}  {seen}{extra}"
                     f"{'' if edge.ok else '  <-- MISMATCH'}")
    lines.append(f"localhost hops: {sum(report.localhost.values())} flows over {len(report.localhost)} (src, dst, port)"
                 + (f"; not in expected-localhost: {sorted(report.localhost_unexpected)}"
                    if report.localhost_unexpected else ""))
    lines.append("OK" if report.ok else "NOT OK")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analyzer.lab.verify", description=__doc__.split("\n")[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--expected", type=Path, help="default: <capture>.expected-edges.csv")
    args = parser.parse_args(argv)
    base = args.capture.with_suffix("")
    expected = args.expected or base.with_name(base.name + ".expected-edges.csv")
    report = verify(args.capture, expected, base.with_name(base.name + ".expected-localhost.csv"))
    print(render(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
