"""Coverage-guided fuzzing (Atheris, libFuzzer's engine) of four layers, each through its real entry point.

    python3 tools/fuzz_atheris.py reader -runs=30000 -max_total_time=900
    python3 tools/fuzz_atheris.py flows  -runs=30000 -timeout=10 -rss_limit_mb=1024
    python3 tools/fuzz_atheris.py --seeds DIR     # write the seed inputs of every target under DIR/<target>/

Targets (the first argument; the rest are libFuzzer flags, e.g. ``-runs``, ``-max_total_time``,
``-timeout``, ``-rss_limit_mb``, ``-max_len``, and corpus folders):

* ``reader``: ``CaptureReader`` over the bytes (pcap, pcapng, or either gzip-compressed), every batch;
* ``flows``:  frames decoded from the bytes (``frames_of``) into a ``FlowTable`` with the real payload
  inspector, then every finished flow's row (the verdict rules);
* ``tls``:    a ``TLSParser`` fed the bytes in chunks the bytes choose, with two buffer limits;
* ``pods``:   ``parse_pods`` on the bytes as text (JSON, YAML or ``-o wide``).

Allowed outcomes are a result or the documented input errors (``AnalyzerError`` and its subclasses;
``TLSParseError`` in the parser).  Anything else is a crash, which libFuzzer writes as ``crash-<sha1>``
(``-artifact_prefix=``); a case over ``-timeout`` seconds is a hang, and past ``-rss_limit_mb`` a memory
finding.  Kept findings go to ``tests/data/fuzz/<target>-<kind>-<sha1>.bin``, where
``tests/test_fuzz_regressions.py`` replays them through ``TARGETS`` (no Atheris needed there).

Atheris is a tool dependency only (``pip install atheris``), not a test or runtime one.  Seeds: the bundled
lab captures (whole, gzip-compressed, and as frames), the project's TLS exchanges and the bundled pod lists.
"""

from __future__ import annotations

import gzip
import io
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Link types a frame record may name (``frames_of``): what the decoder knows, plus one it does not.
LINKTYPES = (101, 1, 113, 276, 0, 108, 12, 228, 229, 239, 127, 105, 147)
FRAME_HEAD = struct.Struct("!BHHB")  # link type index, captured length, bytes cut by the snaplen, ts step
MAX_SEED_BYTES = 256 * 1024

_mods: dict = {}


def load() -> None:
    """Import the code under test (``main`` does it inside Atheris' instrumentation)."""
    from analyzer.analysis.inspector import new_inspector
    from analyzer.capture.reader import CaptureReader
    from analyzer.errors import AnalyzerError
    from analyzer.flows.table import FlowTable
    from analyzer.kube.podlist import parse_pods
    from analyzer.pipeline import Context, flow_row
    from analyzer.tls import NEED_DATA, TLSParser, TLSParseError

    _mods.update(new_inspector=new_inspector, CaptureReader=CaptureReader, AnalyzerError=AnalyzerError,
                 FlowTable=FlowTable, parse_pods=parse_pods, Context=Context, flow_row=flow_row,
                 NEED_DATA=NEED_DATA, TLSParser=TLSParser, TLSParseError=TLSParseError)


def run_reader(data: bytes) -> None:
    m = _mods
    try:
        with m["CaptureReader"](io.BufferedReader(io.BytesIO(data))) as reader:
            for _buf, frames in reader.iter_batches():
                for _frame in frames:
                    pass
    except m["AnalyzerError"]:
        return


def frames_of(data: bytes) -> tuple[bytes, list[tuple]]:
    """Frame records ``(ts, linktype, off, caplen, wirelen, iface)`` over one buffer, as the reader hands
    them to the flow table: each record is a ``FRAME_HEAD`` then its captured bytes."""
    buf, frames, pos, ts = bytearray(), [], 0, 1.7e9
    while pos + FRAME_HEAD.size <= len(data):
        lt, caplen, cut, step = FRAME_HEAD.unpack_from(data, pos)
        pos += FRAME_HEAD.size
        chunk = data[pos:pos + caplen]
        pos += len(chunk)
        ts += step / 64
        frames.append((ts, LINKTYPES[lt % len(LINKTYPES)], len(buf), len(chunk), len(chunk) + cut, lt >> 7))
        buf += chunk
    return bytes(buf), frames


def frame_records(buf: bytes, frames) -> bytes:
    """The inverse of ``frames_of`` for frames a reader produced (seeds from real captures)."""
    out, last = bytearray(), None
    for ts, linktype, off, caplen, wirelen, _iface in frames:
        if linktype not in LINKTYPES:
            continue
        step = 0 if last is None else max(0, min(255, int((ts - last) * 64)))
        last = ts
        out += FRAME_HEAD.pack(LINKTYPES.index(linktype), caplen, min(wirelen - caplen, 0xFFFF), step)
        out += buf[off:off + caplen]
    return bytes(out)


def run_flows(data: bytes) -> None:
    m = _mods
    finished: list = []
    table = m["FlowTable"](m["new_inspector"], finished.append)
    buf, frames = frames_of(data)
    half = len(frames) // 2  # two batches: flows live across a batch boundary
    table.process(buf, frames[:half])
    table.process(buf, frames[half:])
    table.finish_all()
    ctx = m["Context"]()
    for flow in finished:
        m["flow_row"](flow, ctx)


def run_tls(data: bytes) -> None:
    m = _mods
    steps = data[:8] or b"\x01"
    for max_buffer in (64 * 1024, 256):
        parser = m["TLSParser"](max_buffer=max_buffer)
        pos = i = 0
        try:
            while pos < len(data):
                step = steps[i % len(steps)] * 4 + 1
                parser.receive_data(data[pos:pos + step])
                pos, i = pos + step, i + 1
                while parser.next_event() is not m["NEED_DATA"]:
                    pass
            parser.receive_data(b"")
            while parser.next_event() is not m["NEED_DATA"]:
                pass
        except m["TLSParseError"]:
            continue


def run_pods(data: bytes) -> None:
    m = _mods
    try:
        m["parse_pods"](data.decode("utf-8", "replace"), "fuzz")
    except m["AnalyzerError"]:
        return


TARGETS = {"reader": run_reader, "flows": run_flows, "tls": run_tls, "pods": run_pods}


def seeds(target: str) -> list[bytes]:
    """Seed inputs for ``target`` from the repository's own files."""
    captures = [p.read_bytes() for p in sorted((ROOT / "captures").glob("*.pcap*"))
                if p.stat().st_size <= MAX_SEED_BYTES]
    if target == "reader":
        return captures + [gzip.compress(c, 1, mtime=0) for c in captures[:2]]
    if target == "flows":
        load()
        out = []
        for capture in captures:
            with _mods["CaptureReader"](io.BufferedReader(io.BytesIO(capture))) as reader:
                for buf, frames in reader.iter_batches():
                    out.append(frame_records(buf, list(frames)[:400]))
                    break
        return out
    if target == "pods":
        import json

        import yaml

        docs = [p.read_bytes() for p in sorted((ROOT / "captures").glob("*.pods.json"))[:2]]
        return docs + [yaml.safe_dump(json.loads(docs[0])).encode()]
    sys.path.insert(0, str(ROOT / "tests"))
    from tlsbytes import tls12_exchange, tls13_exchange  # the project's TLS byte builders

    return [b"".join(side) for exchange in (tls13_exchange(), tls13_exchange(pq=True), tls12_exchange())
            for side in exchange]


def write_seeds(folder: Path) -> None:
    import hashlib

    for target in TARGETS:
        out = folder / target
        out.mkdir(parents=True, exist_ok=True)
        for data in seeds(target):
            (out / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--seeds":
        write_seeds(Path(sys.argv[2]))
        return
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(TARGETS)}}} [libFuzzer flags] [corpus dirs] | --seeds DIR")
    import atheris  # a tool dependency: pip install atheris

    target = TARGETS[sys.argv[1]]
    with atheris.instrument_imports(include=["analyzer"]):
        load()
    atheris.Setup([sys.argv[0]] + sys.argv[2:], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
