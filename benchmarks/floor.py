"""The bare-Python floor: how fast can plain CPython walk a pcap and build a flow table?

Role: an orientation number for the benchmarks, not part of the analyzer. It reads a classic pcap
through ``mmap`` with ``struct.unpack_from`` and keeps packets and bytes per bidirectional IPv4
5-tuple -- the least work any pure-Python analysis must do per packet. Whatever ``analyze`` adds
on top (flow lifecycle, reassembly, TLS, verdicts) is measured against this.

Must not: decode anything beyond what a flow key needs, or hold the file in memory: the mapped
pages already read are released every 64 MiB with ``madvise(MADV_DONTNEED)``, because mapped
file pages count in RSS (they stay in the page cache, so nothing is re-read).

Usage: ``python benchmarks/floor.py FILE.pcap [--rows]`` prints one JSON line (packets, flows, seconds;
with ``--rows`` also the cost of one flows-table row per flow: ``rows_floor``).
"""

from __future__ import annotations

import json
import mmap
import struct
import sys
import time

LINK_HEADER_LEN = {1: 14, 113: 16, 276: 20}  # Ethernet, Linux SLL, Linux SLL2 (IPv4 assumed)
RELEASE_EVERY = 64 << 20  # bytes between madvise(MADV_DONTNEED) calls


def scan(path: str) -> tuple[int, dict]:
    """Return (packets, {flow key: [packets, bytes]}) for a little-endian microsecond pcap of IPv4 frames."""
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", mm, 0)
    if magic != 0xA1B2C3D4:
        raise SystemExit(f"{path}: not a little-endian microsecond pcap")
    link = 16 + LINK_HEADER_LEN[linktype]  # record header + link header
    caplen_of = struct.Struct("<8xI4x").unpack_from  # pcap record: incl_len only
    # version/IHL, protocol, addresses and -- when IHL is 5 -- the two ports, in one call
    ip_ports = struct.Struct("!B8xB2xIIHH").unpack_from
    ports = struct.Struct("!HH").unpack_from
    flows: dict = {}
    size = len(mm)
    off = 24
    packets = 0
    release_at = RELEASE_EVERY
    while off < size:
        (caplen,) = caplen_of(mm, off)
        vihl, proto, src, dst, sport, dport = ip_ports(mm, off + link)
        if vihl != 0x45:  # IPv4 options: the ports sit further in
            sport, dport = ports(mm, off + link + ((vihl & 15) << 2))
        off += 16 + caplen
        packets += 1
        key = (src, dst, sport, dport, proto) if (src, sport) < (dst, dport) else (dst, src, dport, sport, proto)
        st = flows.get(key)
        if st is None:
            flows[key] = [1, caplen]
        else:
            st[0] += 1
            st[1] += caplen
        if off >= release_at:
            mm.madvise(mmap.MADV_DONTNEED, 0, release_at)
            release_at += RELEASE_EVERY
    mm.close()
    return packets, flows


def rows_floor(flows: dict) -> tuple[int, int]:
    """The least any pure-Python analysis that gives every flow a row of the flows table must add: per
    flow, one dict of the schema's columns (a copy of an empty row, the connection's columns set),
    kept as ``marshal``'d, zlib-compressed chunks of 4,096 tuples (as ``report.rowstore`` does past
    20,000 rows), then read back as dicts and summed per host pair.  No verdict, no flow lifecycle."""
    import marshal
    import zlib

    from analyzer.report.schema import FLOW_NAMES, empty_flow_row

    chunks, pending = [], []
    for fid, ((src, dst, sport, dport, _proto), (pkts, size)) in enumerate(flows.items()):
        row = empty_flow_row()
        row["flow_id"], row["client_ip"], row["client_port"] = fid, src, sport
        row["server_ip"], row["server_port"], row["packets_c2s"], row["bytes_c2s"] = dst, dport, pkts, size
        pending.append(tuple(row.values()))
        if len(pending) == 4096:
            chunks.append(zlib.compress(marshal.dumps(pending), 1))
            pending = []
    chunks.append(zlib.compress(marshal.dumps(pending), 1))
    pairs: dict = {}
    rows = 0
    for chunk in chunks:
        for values in marshal.loads(zlib.decompress(chunk)):
            row = dict(zip(FLOW_NAMES, values))
            key = (row["client_ip"], row["server_ip"])
            pairs[key] = pairs.get(key, 0) + row["bytes_c2s"]
            rows += 1
    return rows, len(pairs)


def main() -> int:
    """``floor.py FILE [--rows]``: the scan alone, or the scan and a row per flow (``rows_floor``)."""
    start = time.perf_counter()
    packets, flows = scan(sys.argv[1])
    out = {"packets": packets, "flows": len(flows), "seconds": round(time.perf_counter() - start, 3)}
    if "--rows" in sys.argv[2:]:
        rows_start = time.perf_counter()
        rows, pairs = rows_floor(flows)
        out.update(rows=rows, pairs=pairs, rows_seconds=round(time.perf_counter() - rows_start, 3),
                   seconds=round(time.perf_counter() - start, 3))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
