"""Inputs that are not regular files (named pipes, process substitution, devices) are read as one
stream, from their first byte; a regular file read in one pass is opened exactly once."""

from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analyzer import analyze
from analyzer.capture import inputs
from analyzer.errors import CaptureFormatError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "captures" / "demo-transparent.pcapng"
KEY = ("client_ip", "client_port", "server_ip", "server_port", "verdict", "evidence", "reason", "sni", "packets_c2s")
CLI = [sys.executable, "-m", "analyzer", "analyze", "--view", "flows", "--format", "csv", "-q", "--include-localhost"]


def _flows(report) -> list[tuple]:
    return [tuple(row[k] for k in KEY) for row in report.all_flow_rows]


def _fifo_with_writer(tmp_path: Path, data: bytes, delay_s: float = 0.0) -> tuple[Path, threading.Thread]:
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        time.sleep(delay_s)
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return fifo, writer


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_named_pipe_gives_the_rows_of_the_file(tmp_path, compress):
    data = DEMO.read_bytes()
    fifo, writer = _fifo_with_writer(tmp_path, gzip.compress(data) if compress else data, delay_s=0.2)
    from_pipe = analyze(fifo, include_localhost=True)
    writer.join(10)
    from_file = analyze(DEMO, include_localhost=True)
    assert _flows(from_pipe) == _flows(from_file)
    assert from_pipe.stats["packets"] == from_file.stats["packets"] == 993
    assert from_pipe.captures[0].path == str(fifo)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for <(...)")
def test_process_substitution_on_the_command_line(tmp_path):
    """``analyze <(cat x.pcapng)``: /dev/fd/N is a pipe; its first bytes are not lost to a planner."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = " ".join(CLI) + f" <(cat {DEMO})"
    piped = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    plain = subprocess.run(CLI + [str(DEMO)], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert plain.returncode == 0, plain.stderr
    # Same rows; only the columns that name the file (capture, captures) differ.
    def without_names(text: str) -> list[dict]:
        return [{k: v for k, v in row.items() if k not in ("capture", "captures")}
                for row in csv.DictReader(io.StringIO(text))]

    strip = without_names(piped.stdout)
    assert strip == without_names(plain.stdout)
    assert len(strip) == 64  # with localhost hops


def test_named_pipe_without_a_writer_is_an_error_after_a_bounded_wait(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "FIFO_WAIT_S", 0.3)
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(CaptureFormatError, match=r"nobody\.fifo: named pipe with nothing written to it for 0\.3 s"):
        analyze(fifo)
    assert time.monotonic() - started < 5


def test_named_pipe_without_a_writer_on_the_command_line(tmp_path):
    fifo = tmp_path / "nobody.fifo"
    os.mkfifo(fifo)
    run_cli = ("import sys; from analyzer.capture import inputs; inputs.FIFO_WAIT_S = 0.5; "
               "from analyzer.cli import main; sys.argv[0] = 'mtls-analyzer'; main()")
    out = subprocess.run([sys.executable, "-c", run_cli, "analyze", str(fifo)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"Error: {fifo}: named pipe with nothing written to it for 0.5 s (no writer?)"]


def test_a_writer_that_closes_without_writing_is_an_empty_capture(tmp_path):
    fifo, writer = _fifo_with_writer(tmp_path, b"")
    with pytest.raises(CaptureFormatError, match="empty or too short"):
        analyze(fifo)
    writer.join(10)


def test_character_device_is_read_as_a_stream():
    with pytest.raises(CaptureFormatError, match="/dev/null: empty or too short to be a capture"):
        analyze("/dev/null")


@pytest.mark.parametrize("jobs", [None, 1])
def test_one_pass_opens_the_file_exactly_once(tmp_path, jobs):
    """A small file (or ``jobs=1``) is one pass: nothing opens it to plan before the reader does."""
    capture = tmp_path / "demo.pcapng"
    shutil.copyfile(DEMO, capture)
    opened: list[str] = []
    watching = [True]

    def hook(event: str, args: tuple) -> None:
        # ``open()`` reports (path, mode, flags); an ``os.open`` it makes through an opener reports mode None.
        if watching[0] and event == "open" and str(args[0]) == str(capture) and args[1] is not None:
            opened.append(args[1])

    sys.addaudithook(hook)  # audit hooks cannot be removed: this one stops counting after the test
    try:
        report = analyze(capture, jobs=jobs)
    finally:
        watching[0] = False
    assert report.stats["packets"] == 993
    assert len(opened) == 1


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_engine_reads_a_named_pipe_as_a_stream(tmp_path):
    fifo, writer = _fifo_with_writer(tmp_path, DEMO.read_bytes(), delay_s=0.2)
    from_pipe = analyze(fifo, engine="tshark", include_localhost=True)
    writer.join(10)
    from_file = analyze(DEMO, engine="tshark", include_localhost=True)
    assert _flows(from_pipe) == _flows(from_file)
