"""Ctrl-C: one ``Interrupted.`` line and exit 130 from every command, never click's ``Aborted!`` (exit 1
means "the engines disagree") and never a traceback, from any process.

A terminal's Ctrl-C is SIGINT to the whole foreground process group: each command runs here in its own
group (``start_new_session``) and the signal goes to that group (``os.killpg``), so worker processes
and the tshark children get it too, as they would at a terminal.  The input is big enough that the
command is mid-run when it arrives: a 250,000-packet capture (~230 MB, ``benchmarks/gencapture.py``)
given three times (``BIG``: ~10 s of work on one core), and the test waits until the command's processes
are busy (CPU time spent, a worker or tshark running).

What happens to ``-o`` files (the README's exit-code section says the same): ``analyze``, ``compare`` and
``report`` write them only once the analysis is done, so a run interrupted during the analysis leaves
none (and an existing file as it was); ``capture`` stops the capture in order, keeps the complete pcapng and writes its report.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labutil import capinfos_packets
from paths import DEMO_CAPTURE as DEMO, DEMO_PODS, REPO

CLI = [sys.executable, "-m", "analyzer"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
BARE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
BARE = [shutil.which("python3", path="/usr/bin") or sys.executable, "-I", "-S"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> list[str]:
    """The command line's captures: one generated capture, three times (read three times, joined once)."""
    path = tmp_path_factory.mktemp("interrupt") / "big.pcap"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "gencapture.py"), "-o", str(path), "--packets",
                    "250000"], check=True, capture_output=True, timeout=300)
    return [str(path)] * 3


@pytest.fixture(scope="module")
def pyz(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "mtls-analyzer.pyz"
    subprocess.run([sys.executable, str(REPO / "tools" / "build_pyz.py"), "-o", str(out)], check=True,
                   capture_output=True, timeout=120)
    return out


def group(pid: int) -> list[tuple[int, str, float]]:
    """(pid, command name, CPU seconds) of every live process in process group ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pid and fields[0] != "Z":
            out.append((int(entry.name), name, (int(fields[11]) + int(fields[12])) / CLK_TCK))
    return out


def interrupt(args: list[str], busy, env=ENV, cwd=None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``args`` in its own process group, wait until ``busy(group)`` says it is mid-run, then Ctrl-C
    the group as a terminal does.  Returns the outcome once every process of the group has ended."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    while not busy(group(proc.pid)):
        assert proc.poll() is None, f"ended before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline, "never got busy"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    for _ in range(100):  # the workers and tshark are gone too (they are killed or end on their own pipe)
        if not group(proc.pid):
            break
        time.sleep(0.1)
    assert not group(proc.pid), group(proc.pid)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def cpu(seconds: float, **children: int):
    """Busy once the group has spent ``seconds`` of CPU (past its imports) and runs the named children
    (``python3=2``: the main process and one worker)."""
    def busy(procs) -> bool:
        names = [name for _, name, _ in procs]
        return (sum(c for _, _, c in procs) >= seconds
                and all(sum(n.startswith(k) for n in names) >= want for k, want in children.items()))
    return busy


def assert_interrupted(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 130, result.stderr
    assert result.stderr.splitlines().count("Interrupted.") == 1, result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == "Interrupted."
    assert "Traceback" not in result.stderr and "Aborted!" not in result.stderr and "Error" not in result.stderr


def test_analyze_with_two_processes(big, tmp_path):
    """Both processes get the SIGINT; the worker says nothing, the parent stops it: no worker traceback."""
    out = tmp_path / "flows.csv"
    result = interrupt([*CLI, "analyze", *big, "-j", "2", "--view", "flows", "--format", "csv", "-o", str(out)],
                       cpu(1.5, python=2))
    assert_interrupted(result)
    assert [line for line in result.stderr.splitlines() if line.strip()] == ["Interrupted."]
    assert not out.exists()


def test_analyze_leaves_an_existing_output_as_it_was(big, tmp_path):
    out = tmp_path / "edges.txt"
    out.write_text("an earlier report\n")
    result = interrupt([*CLI, "analyze", *big, "--pods", str(DEMO_PODS), "-j", "1", "-o", str(out)], cpu(1.5))
    assert_interrupted(result)
    assert out.read_text() == "an earlier report\n"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_analyze_engine_tshark(big):
    result = interrupt([*CLI, "analyze", *big, "--engine", "tshark", "--view", "flows"], cpu(1.5, tshark=1))
    assert_interrupted(result)
    assert result.stdout == ""


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_compare(big, tmp_path):
    out = tmp_path / "compare.csv"
    result = interrupt([*CLI, "compare", *big, "--format", "csv", "-o", str(out)], cpu(1.5, tshark=1))
    assert_interrupted(result)
    assert not out.exists()


def test_report(big, tmp_path):
    html, doc = tmp_path / "report.html", tmp_path / "report.json"
    result = interrupt([*CLI, "report", *big, "--pods", str(DEMO_PODS), "-o", str(html), "--json", str(doc)],
                       cpu(1.5))
    assert_interrupted(result)
    assert not html.exists() and not doc.exists()


def test_analyze_on_an_embedded_dask_cluster(big, tmp_path):
    """``--dask``: the client and its LocalCluster's worker processes all get the SIGINT; the cluster is
    closed, no worker is left behind and no traceback is printed."""
    pytest.importorskip("distributed")
    out = tmp_path / "pairs.csv"
    result = interrupt([*CLI, "analyze", "--dask=local", *big, "--view", "pairs", "--format", "csv", "-o", str(out)],
                       cpu(2.5, python=3))
    assert_interrupted(result)
    assert not out.exists()


def test_pyz_analyze_with_two_processes(big, pyz, tmp_path):
    out = tmp_path / "flows.jsonl"
    result = interrupt([*BARE, str(pyz), "analyze", *big, "-j", "2", "--view", "flows", "--format", "jsonl",
                        "-o", str(out)], cpu(1.5, python=2), env=BARE_ENV, cwd=tmp_path)
    assert_interrupted(result)
    assert [line for line in result.stderr.splitlines() if line.strip()] == ["Interrupted."]
    assert not out.exists()


@pytest.mark.parametrize("args", [["analyzer", "analyze", "-"], ["analyzer", "analyze", "-", "--view", "flows"]])
def test_ctrl_c_while_reading_standard_input(args):
    """Blocked on a standard input that stays open (a capture still arriving): the same one line."""
    proc = subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO, env=ENV)
    proc.stdin.write(DEMO.read_bytes())
    proc.stdin.flush()
    time.sleep(1.5)  # the command is now blocked on the open pipe, past start-up
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert_interrupted(subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode()))


def test_usage_errors_keep_their_exit_code():
    result = subprocess.run([*CLI, "analyze", "--no-such-option"], capture_output=True, text=True, cwd=REPO, env=ENV)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: No such option")


# -- capture: Ctrl-C is how an open-ended capture ends; it still reports, then exits 130 ---------------------
def _capture_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "capturing on lo needs root"
    if not (shutil.which("dumpcap") and shutil.which("capinfos")):
        return "dumpcap/capinfos not installed"
    return None


@pytest.mark.skipif(_capture_unavailable() is not None, reason=str(_capture_unavailable()))
@pytest.mark.parametrize("runner", ["cli", "pyz"])
def test_capture_reports_then_exits_130(runner, pyz, tmp_path):
    pcap, report = tmp_path / "live.pcapng", tmp_path / "report.csv"
    args = ["capture", "-i", "lo", "--seconds", "120", "-w", str(pcap), "--view", "flows", "--format", "csv",
            "--include-localhost", "-o", str(report)]
    command, env = ([*CLI, *args], ENV) if runner == "cli" else ([*BARE, str(pyz), *args], BARE_ENV)

    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (pcap.exists() and pcap.stat().st_size > 0):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)  # dumpcap is reading packets once its file header is written
    port = loopback_connections(3)
    time.sleep(1.5)  # dumpcap hands packets on in blocks: what it has not read at the stop is not in the file
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    result = subprocess.CompletedProcess(command, proc.returncode, out, err)
    assert_interrupted(result)
    assert f"capture stopped by signal: {pcap}" in result.stderr  # the report came first
    lines = report.read_text().splitlines()  # the -o report is complete: the loopback connections in it
    assert lines[0].startswith("capture,flow_id,") and sum(f",127.0.0.1,{port}," in line for line in lines) == 3, lines
    assert capinfos_packets(pcap) >= 3 * 6  # complete (capinfos reads it to its end), with the connections


def loopback_connections(n: int) -> int:
    """``n`` short TCP connections to a port of 127.0.0.1, each a request and a close; returns the port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        for _ in range(n):
            with socket.create_connection(server.getsockname(), timeout=5) as client:
                peer, _ = server.accept()
                with peer:
                    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    peer.recv(100)
        return server.getsockname()[1]
