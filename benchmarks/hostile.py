"""Hostile captures: what a busy node or anyone who can send packets puts in front of ``analyze``.

Writes classic pcap (Ethernet, microsecond timestamps), standard library only, deterministic:

  syn       one SYN per connection, N connections (a SYN flood): N packets
  udp       one UDP datagram per host pair (11.x.y.z to 12.x.y.z), N distinct pairs: N packets
  halfopen  per connection a SYN, then one data byte from the client; never answered or closed: 2N packets
  ooo       per flow a handshake, then segments behind a hole that never fills (out-of-order data held
            by reassembly), all flows open at once: N * (3 + SEGMENTS) packets

``python benchmarks/hostile.py KIND -o FILE [-n N]``; ``--measure`` times ``analyze`` on the files
(``python benchmarks/hostile.py --measure --workdir /tmp/mtls-hostile``), see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import resource
import struct
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
RECORD = struct.Struct("<IIII")
ETH = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x00"
IPV4 = struct.Struct("!BBHHHBBH4s4s")
TCP = struct.Struct("!HHIIBBHHH")
UDP = struct.Struct("!HHHH")
SYN, ACK, PSH = 0x02, 0x10, 0x08
SERVER = bytes((10, 4, 0, 10))
SERVER_PORT = 8080
MSS = 1448
OOO_SEGMENTS = 40  # segments behind the hole per flow: 58 KB held each
KINDS = ("syn", "udp", "halfopen", "ooo")
DEFAULT_COUNTS = {"syn": 1_000_000, "udp": 1_000_000, "halfopen": 1_000_000, "ooo": 10_000}


def host(net: int, i: int) -> bytes:
    """The i-th address of 10.net.0.0/16 (wrapping)."""
    return bytes((10, net, (i >> 8) & 0xFF, i & 0xFF))


def client(i: int) -> tuple[bytes, int]:
    """Connection i's client: 65,536 addresses, then the next source port."""
    return host(1, i), 10_000 + (i >> 16)


def ipv4(src: bytes, dst: bytes, proto: int, l4: bytes) -> bytes:
    return IPV4.pack(0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0, src, dst) + l4


def tcp(src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int, data: bytes = b"") -> bytes:
    return ipv4(src, dst, 6, TCP.pack(sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + data)


def packets(kind: str, n: int) -> Iterator[bytes]:
    """The kind's IP packets, in capture order."""
    if kind == "syn":
        for i in range(n):
            src, sport = client(i)
            yield tcp(src, sport, SERVER, SERVER_PORT, (i * 7919) & 0xFFFFFFF, 0, SYN)
    elif kind == "udp":
        for i in range(n):
            yield ipv4(bytes((11, i >> 16 & 255, i >> 8 & 255, i & 255)), bytes((12, i >> 16 & 255, i >> 8 & 255, i & 255)),
                       17, UDP.pack(40000, 5001, 9, 0) + b"x")
    elif kind == "halfopen":
        for i in range(n):
            src, sport = client(i)
            yield tcp(src, sport, SERVER, SERVER_PORT, (i * 7919) & 0xFFFFFFF, 0, SYN)
            yield tcp(src, sport, SERVER, SERVER_PORT, ((i * 7919) & 0xFFFFFFF) + 1, 0, ACK | PSH, b"G")
    elif kind == "ooo":
        yield from _ooo(n)
    else:
        raise ValueError(kind)


def _ooo(n: int) -> Iterator[bytes]:
    for i in range(n):
        src, sport = client(i)
        yield tcp(src, sport, SERVER, SERVER_PORT, 1000, 0, SYN)
        yield tcp(SERVER, SERVER_PORT, src, sport, 5000, 1001, SYN | ACK)
        yield tcp(src, sport, SERVER, SERVER_PORT, 1001, 5001, ACK)
    payload = bytes(range(256)) * (MSS // 256 + 1)
    for k in range(OOO_SEGMENTS):  # the segment at 1001 is never sent: everything after it waits
        for i in range(n):
            src, sport = client(i)
            yield tcp(src, sport, SERVER, SERVER_PORT, 1001 + MSS * (k + 1), 5001, ACK | PSH, payload[:MSS])


def write(kind: str, n: int, out: BinaryIO) -> int:
    """Write the capture; 100 us between packets. Returns the packet count."""
    out.write(PCAP_HEADER)
    chunk: list[bytes] = []
    count = 0
    for count, ip in enumerate(packets(kind, n), 1):
        frame = ETH + ip
        usec = count * 100
        chunk.append(RECORD.pack(1_750_000_000 + usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)))
        chunk.append(frame)
        if len(chunk) >= 65536:
            out.write(b"".join(chunk))
            chunk.clear()
    out.write(b"".join(chunk))
    return count


def generate(kind: str, path: Path, n: int | None = None) -> Path:
    with open(path, "wb") as f:
        write(kind, DEFAULT_COUNTS[kind] if n is None else n, f)
    return path


def measure_all(workdir: Path, kinds: list[str], modes: list[list[str]], n_scale: float) -> None:
    """Time ``analyze`` on each hostile capture (and the 1M-packet baseline) in each mode; print a table."""
    sys.path.insert(0, str(Path(__file__).parent))
    from run import measure, ensure_capture  # noqa: E402 - the benchmark's own sampler and capture

    workdir.mkdir(parents=True, exist_ok=True)
    files = {"baseline": ensure_capture(workdir, "sll2", 1_000_000, 1)[0]} if "baseline" in kinds else {}
    for kind in (k for k in kinds if k != "baseline"):
        path = workdir / f"{kind}.pcap"
        if not path.exists():
            generate(kind, path, int(DEFAULT_COUNTS[kind] * n_scale))
        files[kind] = path
    print("| capture | MB | options | wall s | CPU s | peak RSS MiB | exit |", flush=True)
    print("|---|---:|---|---:|---:|---:|---:|", flush=True)
    for name, path in files.items():
        for opts in modes:
            cmd = [sys.executable, "-m", "analyzer", "analyze", str(path), *opts, "-q"]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall, rss, rc, err = measure(cmd, cwd=Path(__file__).resolve().parent.parent)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(f"| {name} | {path.stat().st_size / 1e6:.0f} | {' '.join(opts)} | {wall:.1f} | {cpu:.1f} | "
                  f"{rss:.0f} | {rc} |", flush=True)
            if rc:
                print(err.strip().splitlines()[-1] if err.strip() else "", file=sys.stderr)


MODES = {"default": [], "jsonl": ["--format", "jsonl", "-o", "/dev/null", "--view", "flows"],
         "csv": ["--format", "csv", "-o", "/dev/null", "--view", "flows"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", nargs="?", choices=KINDS)
    ap.add_argument("-o", "--output", type=Path)
    ap.add_argument("-n", type=int, help="connections (flows, host pairs); default: 1M (10k for ooo)")
    ap.add_argument("--measure", action="store_true", help="time analyze on every kind and the baseline")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mtls-hostile"))
    ap.add_argument("--kinds", default=",".join(("baseline",) + KINDS),
                    help="baseline (the 1M-packet benchmark capture) and hostile kinds")
    ap.add_argument("--modes", default="default,jsonl,csv", help="output modes: default,jsonl,csv")
    ap.add_argument("--jobs", default="1,0", help="--jobs values to run each mode with")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every kind's default count")
    args = ap.parse_args(argv)
    if args.measure:
        modes = [MODES[m] + ["-j", j] for m in args.modes.split(",") for j in args.jobs.split(",")]
        measure_all(args.workdir, args.kinds.split(","), modes, args.scale)
        return 0
    if not args.kind or not args.output:
        ap.error("give KIND and -o FILE, or --measure")
    generate(args.kind, args.output, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
