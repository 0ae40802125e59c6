"""Progress on stderr only when stderr is a terminal; the summary line always (unless -q)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from paths import REPO
from support import run_on_tty


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory) -> Path:
    """About a second of work: long enough for at least one progress update."""
    path = tmp_path_factory.mktemp("big") / "big.pcap"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "gencapture.py"), "-o", str(path),
                    "--packets", "150000", "--linktype", "sll2"], check=True, capture_output=True, timeout=300)
    return path


def _run(path: Path, tty: bool) -> tuple[int, str, str]:
    cmd = [sys.executable, "-m", "analyzer", "analyze", str(path), "-o", os.devnull]
    if not tty:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
        return out.returncode, out.stdout, out.stderr
    return run_on_tty(cmd, cwd=REPO)


def test_progress_on_a_terminal(big_capture):
    code, _, err = _run(big_capture, tty=True)
    assert code == 0
    assert "\r" in err and " packets, " in err.split("\n")[0]  # live counter, rewritten in place
    assert "150000 packets" in err  # then the summary


def test_no_progress_when_stderr_is_not_a_terminal(big_capture):
    code, _, err = _run(big_capture, tty=False)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "\r" not in err
    assert lines[0].startswith("150000 packets, ") and "flows (tls " in lines[0]
