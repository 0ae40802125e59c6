"""A capture the tool refuses: one ``Error:`` line, exit 2, with dumpcap's (or tshark's) own words, which
name the interface or the filter.  The real tools, as root (else they refuse for want of permission)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from paths import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
TOOLS = {"dumpcap": {}, "tshark": {"DUMPCAP": "/nonexistent"}}  # $DUMPCAP not runnable: tshark captures

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="dumpcap refuses a non-root user before the interface"),
              pytest.mark.skipif(not (shutil.which("dumpcap") and shutil.which("tshark")), reason="no dumpcap/tshark")]


def capture(tool: str, tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analyzer", "capture", "--seconds", "2", "-w",
                           str(tmp_path / "x.pcapng"), *args], capture_output=True, text=True,
                          env={**ENV, **TOOLS[tool]}, timeout=60)


def one_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_interface_is_named(tool, tmp_path):
    line = one_error(capture(tool, tmp_path, "-i", "nosuch0"))
    assert line == (f'Error: {tool} exited before capturing: There is no device named "nosuch0". '
                    "(No such device exists)")


@pytest.mark.parametrize("tool", TOOLS)
def test_bad_filter_keeps_the_tool_words(tool, tmp_path):
    line = one_error(capture(tool, tmp_path, "-i", "lo", "-f", "tcp port nosuchport"))
    assert line.startswith(f'Error: {tool} exited before capturing: Invalid capture filter "tcp port nosuchport" '
                           "for interface '"), line
    assert "That string isn't a valid capture filter (unknown port 'nosuchport')." in line
    assert "User's Guide" not in line


def test_pyz_says_the_same(tmp_path):
    pyz = tmp_path / "m.pyz"
    subprocess.run([sys.executable, str(REPO / "tools" / "build_pyz.py"), "-o", str(pyz)], check=True,
                   capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    got = subprocess.run([shutil.which("python3", path="/usr/bin") or sys.executable, "-I", "-S", str(pyz), "capture",
                          "-i", "nosuch0", "--seconds", "2", "-w", str(tmp_path / "x.pcapng")], capture_output=True,
                         text=True, env=env, timeout=60)
    assert one_error(got) == one_error(capture("dumpcap", tmp_path, "-i", "nosuch0"))
