"""Ctrl-C: one ``Interrupted.`` line and exit 130 from both console scripts, never click's ``Aborted!``
(exit 1 means "the engines disagree") and never a traceback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "captures" / "demo-transparent.pcapng"


def interrupt_while_reading(args: list[str]) -> subprocess.CompletedProcess:
    """Start the command on a standard input that stays open, feed it a capture, then send SIGINT."""
    proc = subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    proc.stdin.write(DEMO.read_bytes())
    proc.stdin.flush()
    time.sleep(1.5)  # the command is now blocked on the open pipe, past start-up
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


@pytest.mark.parametrize("args", [["analyzer", "analyze", "-"], ["analyzer", "analyze", "-", "--view", "flows"]])
def test_ctrl_c_exits_130_with_one_line(args):
    result = interrupt_while_reading(args)
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Interrupted."
    assert "Traceback" not in result.stderr and "Aborted!" not in result.stderr


def test_usage_errors_keep_their_exit_code():
    result = subprocess.run([sys.executable, "-m", "analyzer", "analyze", "--no-such-option"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: No such option")
