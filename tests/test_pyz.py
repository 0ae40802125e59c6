"""The sidecar build: ``tools/build_pyz.py`` -> ``mtls-analyzer.pyz``, run by a python3 with no
site-packages (``-I -S``), offline and inside a lab pod's network namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from labutil import capinfos_packets, lab_fixture

from paths import DEMO_CAPTURE as DEMO, REPO
# Debian's python3 is what the linkerd-debug image has; any python3 >= 3.11 with -I -S is as bare.
BARE = [shutil.which("python3", path="/usr/bin") or sys.executable, "-I", "-S"]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "mtls-analyzer.pyz"
    subprocess.run([sys.executable, str(REPO / "tools" / "build_pyz.py"), "-o", str(out)], check=True, timeout=120)
    return out


def bare(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([*BARE, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def test_bare_python_has_no_packages():
    proc = bare("-c", "import click")
    assert proc.returncode != 0 and "No module named 'click'" in proc.stderr


def test_pyz_holds_only_the_stdlib_part(pyz):
    names = zipfile.ZipFile(pyz).namelist()
    assert "__main__.py" in names and "analyzer/sidecar.py" in names and "analyzer/live/session.py" in names
    assert not any(n.startswith(("analyzer/lab/", "analyzer/commands/", "analyzer/distributed/")) or n == "analyzer/cli.py"
               for n in names)
    assert pyz.stat().st_size < 1_000_000


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_pyz_analyze_prints_what_the_cli_prints(pyz, fmt, tmp_path):
    got = bare(pyz, "analyze", DEMO, "--view", "flows", "--format", fmt, "-q", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    want = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(DEMO), "--view", "flows", "--format", fmt,
                           "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert got.stdout == want.stdout


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_pyz_tshark_engine_on_bare_python(pyz, tmp_path):
    got = bare(pyz, "analyze", DEMO, "--engine", "tshark", "--view", "flows", "--format", "json", "-q", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    rows = json.loads(got.stdout)
    assert sum(r["verdict"] == "tls" for r in rows) == 14


def test_pyz_errors_are_one_line(pyz, tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    got = bare(pyz, "analyze", bad, cwd=tmp_path)
    assert got.returncode == 2 and got.stderr.startswith("Error: ") and len(got.stderr.splitlines()) == 1


lab = lab_fixture("mtlslab-pyz")


@pytest.mark.root
def test_pyz_capture_in_a_pod_netns_with_bare_python(lab, pyz, tmp_path):
    from analyzer.lab import control
    from analyzer.lab.expect import compare, edges_path, read_edges
    from labutil import wait_for_file

    state, model = lab
    out = tmp_path / "sidecar.pcapng"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.Popen(["ip", "netns", "exec", model.pod("voting").netns, *BARE, str(pyz), "capture",
                             "--seconds", "12", "-w", str(out), "--view", "flows", "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    wait_for_file(out, proc)
    ref = tmp_path / "reference.pcapng"
    control.capture(state, ref, "voting", seconds=3)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    rows = json.loads(stdout)
    assert not compare(rows, read_edges(edges_path(ref)))
    voting = model.pod("voting")
    assert any(r["verdict"] == "tls" and r["sni"] == voting.identity and r["mtls"] == "inferred" for r in rows)
    assert capinfos_packets(out) > 0
