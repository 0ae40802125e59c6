"""Inputs for the report, export and diff tests, built from code (pcapgen + kube_builders).

``write_case(dir)`` writes a small mesh capture whose flows cover every audit outcome, and its pod list:

======  ==============================================  ==========  ========================
flow    client -> server                                verdict     edge status
======  ==============================================  ==========  ========================
0       vote-bot 10.42.0.11 -> web 10.42.0.12:4143      tls         secured (identity SNI)
1       emoji 10.42.0.14 -> web 10.42.0.12:4567         plaintext   PLAINTEXT-UNEXPECTED (h2c)
2       legacy 10.42.0.13 -> web 10.42.0.12:8080        plaintext   plaintext-expected (unmeshed)
3       backup 10.42.0.15 -> web 10.42.0.12:22          unknown     unverified (SSH)
======  ==============================================  ==========  ========================

The pcapng ends with an Interface Statistics Block reporting ``DROPS`` dropped packets.
``synthetic_edges`` makes audit-document edge rows for layouts of any size, without a capture.
"""

from __future__ import annotations

import struct
from pathlib import Path

import kube_builders as kb
import pcapgen as pg
from pcapgen import Endpoint

DROPS = 7
VOTE_BOT, WEB, LEGACY, EMOJI, BACKUP = "10.42.0.11", "10.42.0.12", "10.42.0.13", "10.42.0.14", "10.42.0.15"
STATUSES = {"vote-bot": "secured", "emoji": "PLAINTEXT-UNEXPECTED", "legacy": "plaintext-expected", "backup": "unverified"}
H2_EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # RFC 9113 6.5: SETTINGS, no parameters
OPT_ISB_IFDROP = 5  # pcapng isb_ifdrop (draft-ietf-opsawg-pcapng 4.6)
BT_ISB = 5


def _isb_with_drops(ts_ns: int, drops: int) -> bytes:
    """An Interface Statistics Block for interface 0 carrying isb_ifdrop (microsecond timestamps)."""
    ts = ts_ns // 1000
    options = struct.pack("<HHQ", OPT_ISB_IFDROP, 8, drops) + struct.pack("<HH", 0, 0)
    return pg.block(BT_ISB, struct.pack("<III", 0, ts >> 32, ts & 0xFFFFFFFF) + options)


def capture_bytes() -> bytes:
    step = 50_000_000  # 50 ms between flow starts
    flows = [
        pg.tcp_flow(pg.tls13(), client=Endpoint(VOTE_BOT, 40001), server=Endpoint(WEB, 4143), t0_ns=pg.T0_NS),
        pg.tcp_flow([("c", pg.H2C_PREFACE + H2_EMPTY_SETTINGS), ("s", H2_EMPTY_SETTINGS)],
                    client=Endpoint(EMOJI, 40002), server=Endpoint(WEB, 4567), t0_ns=pg.T0_NS + step),
        pg.tcp_flow([("c", pg.opaque(600, 1)), ("s", pg.opaque(900, 2))],
                    client=Endpoint(LEGACY, 40003), server=Endpoint(WEB, 8080), t0_ns=pg.T0_NS + 2 * step),
        pg.tcp_flow([("s", pg.SSH_SERVER_BANNER), ("c", pg.SSH_CLIENT_BANNER)],
                    client=Endpoint(BACKUP, 40004), server=Endpoint(WEB, 22), t0_ns=pg.T0_NS + 3 * step),
    ]
    frames = pg.encap(pg.merge(*flows), "ether")
    iface = pg.Interface(pg.LINKTYPE_ETHERNET, name="eth0", tsresol=9)
    blocks: list[tuple] = [("epb", 0, f) for f in frames]
    blocks.append(("raw", _isb_with_drops(pg.T0_NS + 4 * step, DROPS)))
    return pg.pcapng_bytes([pg.Section([iface], blocks)])


def pods_json() -> str:
    return kb.pods_doc(
        kb.pod("vote-bot-5f9-abcde", VOTE_BOT, sa="vote-bot", owner=("ReplicaSet", "vote-bot-5f9"), template_hash="5f9"),
        kb.pod("web-7c8-fghij", WEB, sa="web", owner=("ReplicaSet", "web-7c8"), template_hash="7c8"),
        kb.pod("emoji-8b2-pqrst", EMOJI, sa="emoji", owner=("ReplicaSet", "emoji-8b2"), template_hash="8b2"),
        kb.pod("legacy-6d4-klmno", LEGACY, namespace="legacy", meshed=False, owner=("ReplicaSet", "legacy-6d4"),
               template_hash="6d4"),
        kb.pod("backup-0", BACKUP, namespace="ops", meshed=False, owner=("StatefulSet", "backup")),
    )


def write_files(directory: Path, stem: str, capture_data: bytes, pods_text: str) -> tuple[Path, Path]:
    """(STEM.pcapng, STEM.pods.json) written in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    capture, pods = directory / f"{stem}.pcapng", directory / f"{stem}.pods.json"
    capture.write_bytes(capture_data)
    pods.write_text(pods_text)
    return capture, pods


def write_case(directory: Path) -> tuple[Path, Path]:
    """(mesh.pcapng, mesh.pods.json) in ``directory``."""
    return write_files(directory, "mesh", capture_bytes(), pods_json())


def synthetic_edges(namespaces: int = 6, per_namespace: int = 11, seed: int = 5) -> list[dict]:
    """Audit-document edge rows for a layered mesh: namespace i calls namespace i+1 and calls inside
    itself; a node probes the first namespace; the last calls an outside IP.  Deterministic."""
    import random

    from analyzer.report.schema import EDGE_NAMES

    rnd = random.Random(seed)
    names = [f"ns{i}" for i in range(namespaces)]
    pods = {ns: [f"{ns}-svc{j:02d}-6f7d8c9b4-x{j:02d}z" for j in range(per_namespace)] for ns in names}
    statuses = ("secured", "plaintext-expected", "PLAINTEXT-UNEXPECTED", "mixed", "unverified")
    edges: dict[tuple, dict] = {}

    def add(src_ns, src, dst_ns, dst, src_kind="pod", dst_kind="pod"):
        flows = rnd.randint(1, 50)
        row = dict.fromkeys(EDGE_NAMES, "")
        row.update(src=src, dst=dst, src_ns=src_ns, dst_ns=dst_ns, src_kind=src_kind, dst_kind=dst_kind,
                   status=rnd.choices(statuses, weights=(20, 3, 1, 1, 1))[0], flows=flows, tls=flows, plaintext=0,
                   unknown=0, unexpected=0, unverified=0, bytes=1000 * flows, bytes_plaintext=0, mtls="inferred",
                   secured=True, identity_mismatch=False, src_meshed=src_kind == "pod", dst_meshed=dst_kind == "pod",
                   ports="8080", first_ts=None, last_ts=None)
        edges[(src_ns, src, dst_ns, dst)] = row

    for i, ns in enumerate(names):
        for j, pod in enumerate(pods[ns]):
            if j + 3 < per_namespace:
                add(ns, pod, ns, pods[ns][j + 3])
            if i + 1 < namespaces:
                add(ns, pod, names[i + 1], rnd.choice(pods[names[i + 1]]))
    for pod in pods[names[0]]:
        add("", "node-a", names[0], pod, src_kind="node")
    add(names[-1], pods[names[-1]][0], "", "198.51.100.7", dst_kind="external")
    rows = list(edges.values())
    for i, row in enumerate(rows, 1):
        row.update(id=f"e{i}", key=f"{row['src_ns']}/{row['src']} -> {row['dst_ns']}/{row['dst']}", flow_ids=[])
    return rows
