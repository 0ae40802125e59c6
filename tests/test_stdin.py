"""Standard input: ``tshark ... -w - | mtls-analyzer analyze -`` gives the same flows as the file."""

from __future__ import annotations

import csv
import gzip
import io
import shutil
import subprocess
import sys

import pytest

from paths import DEMO_CAPTURE as DEMO, REPO
CMD = [sys.executable, "-m", "analyzer", "analyze", "--view", "flows", "--format", "csv", "-q"]
KEY = ("client_ip", "client_port", "server_ip", "server_port", "verdict", "evidence", "sni", "tls_version")


def _flows(stdout: str) -> list[tuple]:
    return sorted(tuple(r[k] for k in KEY) for r in csv.DictReader(io.StringIO(stdout)))


def _run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(CMD + args, input=stdin, capture_output=True, timeout=120, cwd=REPO)


def test_stdin_equals_file():
    from_file = _run([str(DEMO)])
    from_stdin = _run(["-"], DEMO.read_bytes())
    assert from_file.returncode == from_stdin.returncode == 0
    assert _flows(from_stdin.stdout.decode()) == _flows(from_file.stdout.decode())
    assert len(_flows(from_file.stdout.decode())) > 10


def test_gzip_on_stdin():
    out = _run(["-"], gzip.compress(DEMO.read_bytes()))
    assert out.returncode == 0
    assert _flows(out.stdout.decode()) == _flows(_run([str(DEMO)]).stdout.decode())


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("fmt", ["pcapng", "pcap"])
def test_tshark_pipe(fmt):
    """The live-pipe shape: tshark writes the capture to stdout as it goes, we read it as it comes."""
    tshark = subprocess.Popen(["tshark", "-n", "-r", str(DEMO), "-F", fmt, "-w", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = subprocess.run(CMD + ["-"], stdin=tshark.stdout, capture_output=True, timeout=120, cwd=REPO)
    tshark.stdout.close()
    assert tshark.wait(timeout=60) == 0
    assert out.returncode == 0, out.stderr
    assert _flows(out.stdout.decode()) == _flows(_run([str(DEMO)]).stdout.decode())


def test_garbage_on_stdin_is_one_error_line():
    out = _run(["-"], b"this is not a capture at all\n")
    assert out.returncode == 2
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in out.stderr.decode()


class _Unseekable(io.RawIOBase):
    """A file object with ``readinto`` only, as a socket or a pipe wrapper gives."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[:len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("wrap", [io.BytesIO, _Unseekable], ids=["seekable", "unseekable"])
def test_api_reads_a_file_object_like_the_file(wrap):
    import analyzer

    def rows(report):
        return [{k: v for k, v in row.items() if k not in ("capture", "captures")} for row in report.all_flow_rows]

    from_file = analyzer.analyze(DEMO)
    from_object = analyzer.analyze(wrap(DEMO.read_bytes()))
    assert len(from_file.all_flow_rows) == 64  # 45 flows and 19 localhost hops
    assert rows(from_object) == rows(from_file)
