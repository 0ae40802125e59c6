"""``mtls-analyzer capture``: live capture in a lab pod's network namespace, stopped by time, by packet
count and by SIGINT; the file is complete for capinfos and the verdicts match the lab's wiring.

The lab parts need root and network namespaces (skipped otherwise, with the reason) and hold the
machine's lab lock (/tmp/mtlslab.lock).  Traffic is the lab's own bounded drivers, inside its namespaces.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from analyzer.live import ring_files_of
from labutil import capinfos_packets, lab_fixture, wait_for_file

from paths import DEMO_CAPTURE as DEMO, REPO
ENV = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


# -- no root needed ---------------------------------------------------------------------------------
def _frames(reader) -> list[tuple]:
    return [(round(f[0], 6), f[1], f[3], f[4], bytes(buf[f[2]:f[2] + f[3]])) for buf, fr in reader.iter_batches() for f in fr]


def _write_slowly(path: Path, parts: list[bytes], gate: threading.Event | None = None, at: int = 0) -> threading.Thread:
    """A capture process stand-in: appends `parts` to `path` one by one; waits for `gate` before part `at`."""
    def write() -> None:
        with open(path, "ab", buffering=0) as f:
            for i, part in enumerate(parts):
                if gate is not None and i == at:
                    assert gate.wait(20), "the reader did not get the first frames while the file was growing"
                f.write(part)
                time.sleep(0.001)
    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_live_reader_is_the_file_reader_over_a_growing_file(tmp_path):
    """CaptureReader over a Follower on a file written in awkward chunks yields exactly the file reader's
    frames, and hands out the first frames while the file is still growing (no 4 MB window to fill)."""
    from analyzer.capture.reader import CaptureReader
    from analyzer.live import Follower

    data = DEMO.read_bytes()
    with CaptureReader(str(DEMO)) as r:
        expected = _frames(r)
    path = tmp_path / "growing.pcapng"
    half = len(data) // 2
    gate = threading.Event()
    parts = [data[i:min(i + 777, half)] for i in range(0, half, 777)] + [data[half:]]
    path.write_bytes(parts[0])
    writer = _write_slowly(path, parts[1:], gate, at=len(parts) - 2)
    follower = Follower(path, writer.is_alive, poll_s=0.01)
    assert follower.seekable() is False
    got = []
    with CaptureReader(follower) as reader:
        for buf, frames in reader.iter_batches():
            got += [(round(f[0], 6), f[1], f[3], f[4], bytes(buf[f[2]:f[2] + f[3]])) for f in frames]
            gate.set()  # frames before the second half exists: processed as the bytes came
        assert reader.info.frames == len(expected) and not reader.info.warnings
        assert follower.read(10) == b"" and follower.readinto(bytearray(10)) == 0  # writer gone, file drained
    assert got == expected and follower.closed


def test_follower_crosses_ring_files_and_stops_at_the_deadline(tmp_path):
    from analyzer.capture.reader import CaptureReader
    from analyzer.live import Follower

    data = DEMO.read_bytes()
    with CaptureReader(str(DEMO)) as r:
        expected = _frames(r)
    first = tmp_path / "ring_00001_20260101000000.pcapng"
    first.write_bytes(data)
    (tmp_path / "ring_00002_20260101000001.pcapng").write_bytes(data)  # each ring file is its own section
    follower = Follower(first, lambda: False, ring_of=tmp_path / "ring.pcapng")
    with CaptureReader(follower) as reader:
        assert _frames(reader) == expected + expected
    assert [p.name for p in follower.files] == ["ring_00001_20260101000000.pcapng", "ring_00002_20260101000001.pcapng"]
    # A writer that never exits: the wait is bounded by the deadline, and `idle` runs while waiting.
    ticks = []
    stuck = Follower(first, lambda: True, idle=lambda: ticks.append(1), deadline=time.monotonic() + 0.3, poll_s=0.02)
    assert len(stuck.read(len(data) + 10)) == len(data)
    t0 = time.monotonic()
    assert stuck.read(10) == b"" and time.monotonic() - t0 < 2 and ticks


def test_pair_summary_and_live_table_lines():
    """Provisional verdicts are replaced by final ones; the table is bounded with "+N more"."""
    from analyzer.live import LiveResult, LiveTable, PairSummary, summary_lines

    s = PairSummary()
    row = {"flow_id": 1, "client_ip": "10.0.0.1", "server_ip": "10.0.0.2", "verdict": "unknown", "localhost": False}
    s.add(row, final=False)
    s.add({**row, "verdict": "tls"}, final=True)
    s.add({**row, "flow_id": 2, "verdict": "plaintext"})
    for i in range(30):
        s.add({**row, "flow_id": 10 + i, "client_ip": f"10.0.1.{i}", "verdict": "tls"})
    s.add({**row, "flow_id": 99, "client_ip": "127.0.0.1", "server_ip": "127.0.0.1", "localhost": True})
    rows = s.rows()
    assert s.flows == 33 and len(rows) == 31 and not s.provisional
    assert rows[0] == {"client_ip": "10.0.0.1", "server_ip": "10.0.0.2", "flows": 2, "tls": 1, "plaintext": 1,
                       "unknown": 0, "status": "plaintext-present"}
    assert len(s.rows(include_localhost=True)) == 32
    result = LiveResult([], [], Path("x.pcapng"), packets=123, summary=s)
    lines = summary_lines(result, max_rows=10, width=200, elapsed_s=5)
    assert lines[0].startswith("x.pcapng: 123 packets, 32 flows (tls 31, plaintext 1, unknown 0), 5 s")
    assert lines[1].split() == ["CLIENT", "SERVER", "FLOWS", "TLS", "PLAINTEXT", "UNKNOWN", "STATUS"]
    assert len(lines) == 2 + 10 and lines[-1] == "+22 more" and "plaintext-present" in lines[2]
    out = io.StringIO()
    table = LiveTable(out)
    table.draw(["a", "b"])
    table.draw(["c"])
    table.clear()
    assert out.getvalue() == "\r\033[Ja\nb\n\033[2F\033[Jc\n\033[1F\033[J"


def test_tap_line():
    from analyzer.live import tap_line

    row = {"flow_id": 7, "client_ip": "10.4.0.15", "client_port": 54740, "server_ip": "10.4.0.17", "server_port": 4143,
           "verdict": "tls", "sni": "web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
           "tls_version": "TLS 1.3", "evidence": "handshake", "localhost": False}
    assert tap_line(row, frozenset({"10.4.0.17"})) == (
        "flow id=7 proxy=in src=10.4.0.15:54740 dst=10.4.0.17:4143 tls=true "
        "sni=web.emojivoto.serviceaccount.identity.linkerd.cluster.local version=TLS1.3 evidence=handshake")
    assert " proxy=out " in tap_line(row, frozenset({"10.4.0.15"}))


def test_ring_files_are_found_in_order(tmp_path):
    for name in ("x_00002_20260101000001.pcapng", "x_00001_20260101000000.pcapng", "y_00001_1.pcapng", "x.pcapng"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in ring_files_of(tmp_path / "x.pcapng")] == [
        "x_00001_20260101000000.pcapng", "x_00002_20260101000001.pcapng"]


def test_capture_without_dumpcap_or_tshark_is_one_clear_line(tmp_path):
    env = {**ENV, "PATH": "/nonexistent"}
    proc = subprocess.run([sys.executable, "-m", "analyzer", "capture", "--seconds", "1", "-w", str(tmp_path / "x.pcapng")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == ["Error: neither dumpcap nor tshark is installed: `apt-get install tshark` (Debian/Ubuntu, as in linkerd-debug)"]


@pytest.mark.skipif(os.geteuid() == 0, reason="as root the capture is permitted")
def test_capture_without_permission_names_the_capability(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "analyzer", "capture", "-i", "lo", "--seconds", "1", "-w",
                           str(tmp_path / "x.pcapng")], capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 2 and "CAP_NET_RAW" in proc.stderr, proc.stderr


# -- in the lab (root) ------------------------------------------------------------------------------
lab = lab_fixture("mtlslab-live")


def _start(model, pod: str, *args) -> subprocess.Popen:
    ns = model.pod(pod).netns
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "analyzer", "capture", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _traffic(state, tmp_path, pod: str, seconds: float = 3):
    """The lab's bounded drivers (and its own reference tshark) for `seconds`; returns the reference capture."""
    from analyzer.lab import control

    ref = tmp_path / "reference.pcapng"
    result = control.capture(state, ref, pod, seconds=seconds)
    assert all(d.get("failed") == 0 and d.get("rounds", 0) >= 1 for d in result.drivers), result.drivers
    return ref


def _check_verdicts(csv_text: str, ref: Path) -> list[dict]:
    from analyzer.lab.expect import compare, edges_path, read_edges

    rows = list(csv.DictReader(io.StringIO(csv_text)))
    for r in rows:
        r["localhost"] = r["localhost"] == "True"
    assert rows
    problems = compare(rows, read_edges(edges_path(ref)))
    assert not problems, "\n".join(problems)
    return rows


@pytest.mark.root
def test_capture_in_a_pod_stops_by_time(lab, tmp_path):
    state, model = lab
    out = tmp_path / "live.pcapng"
    proc = _start(model, "voting", "--seconds", 12, "-w", out, "--follow", "--wide", "--view", "flows", "--format",
                  "csv")  # --wide: every field of the --follow lines (a pipe fits them in 100 columns otherwise)
    wait_for_file(out, proc)
    ref = _traffic(state, tmp_path, "voting")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "capture stopped by seconds" in stderr
    follow, _, table = stdout.partition("\n\n")
    lines = follow.splitlines()
    assert lines and all(line.startswith("flow id=") for line in lines)
    voting = model.pod("voting")
    mtls = [line for line in lines if f"dst={voting.ip}:8080" in line and "tls=true" in line]
    assert mtls and all(f"sni={voting.identity}" in line and " proxy=in " in line and "evidence=handshake" in line
                        for line in mtls), lines
    assert any("tls=false" in line and ":4567 " in line for line in lines)
    rows = _check_verdicts(table, ref)
    assert capinfos_packets(out) > 0
    assert len({r["flow_id"] for r in rows}) == len(rows)


@pytest.mark.root
def test_capture_in_a_pod_stops_by_sigint(lab, tmp_path):
    state, model = lab
    out = tmp_path / "live.pcapng"
    proc = _start(model, "web", "--seconds", 120, "-w", out, "--view", "flows", "--format", "csv", "--engine", "tshark")
    wait_for_file(out, proc)
    ref = _traffic(state, tmp_path, "web", seconds=2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr  # Ctrl-C: the report first, then "Interrupted." and 130
    assert "capture stopped by signal" in stderr and stderr.rstrip().endswith("\nInterrupted.")
    assert "\033[" not in stderr and "(Ctrl-C stops)" not in stderr  # no terminal: no live table or line
    _check_verdicts(stdout, ref)
    assert capinfos_packets(out) > 0


@pytest.mark.root
def test_capture_engine_tshark_restarts_tshark(lab, tmp_path):
    """``capture --engine tshark`` with a new tshark every 40 packets (RESTART_PACKETS set before the CLI
    runs): tshark is restarted during the run (its log lines), flows announced live carry one id each,
    and the final report matches the lab's wiring."""
    state, model = lab
    out = tmp_path / "restart.pcapng"
    ns = model.pod("voting").netns
    run_cli = ("import sys; from analyzer.engines.tshark import pipe; pipe.RESTART_PACKETS = 40; "
               "from analyzer.cli import main; sys.argv[0] = 'mtls-analyzer'; main()")
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", run_cli, "-v", "capture", "--engine",
                             "tshark", "--seconds", "12", "-w", str(out), "--follow", "--view", "flows", "--format",
                             "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    wait_for_file(out, proc)
    ref = _traffic(state, tmp_path, "voting")
    stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 0, stderr
    restarts = re.findall(r"tshark: restarting after (\d+) packets", stderr)
    assert len(restarts) >= 2 and set(restarts) == {"40"}, stderr
    assert re.search(rf"tshark was restarted {len(restarts)} times", stderr), stderr
    follow, _, table = stdout.partition("\n\n")
    lines = follow.splitlines()
    ends = [re.search(r" src=(\S+) dst=(\S+) ", line).groups() for line in lines]  # type: ignore[union-attr]
    assert lines and len(ends) == len(set(ends)), lines  # one line per connection: none split by a restart
    assert any(":8080 " in line and "tls=true" in line for line in lines), lines
    _check_verdicts(table, ref)
    assert capinfos_packets(out) > 80


@pytest.mark.root
def test_capture_stops_by_packet_count_with_a_ring_buffer(lab, tmp_path):
    state, model = lab
    out = tmp_path / "ring.pcapng"
    proc = _start(model, "voting", "--packets", 200, "--seconds", 60, "--ring-mb", 1, "--ring-files", 3, "-w", out,
                  "-q", "--format", "csv", "--view", "flows")
    deadline_files = []
    for _ in range(400):
        deadline_files = ring_files_of(out)
        if deadline_files or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert deadline_files, proc.communicate()
    _traffic(state, tmp_path, "voting", seconds=2)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    files = ring_files_of(out)
    assert files and sum(capinfos_packets(p) for p in files) == 200
    assert stdout.startswith("capture,flow_id,")


@pytest.mark.root
def test_live_table_on_a_terminal_and_none_without_one(lab, tmp_path):
    """Without --follow, on a terminal (tmux), a per-host-pair table is redrawn every second while the
    capture runs, and cleared before the final report; with pipes there is none (the tests above)."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    state, model = lab
    voting = model.pod("voting")
    out = tmp_path / "tty.pcapng"
    sock = f"mtls-live-test-{os.getpid()}"  # a private tmux server: its environment is ours
    tmux = ["tmux", "-L", sock]
    # (env -u: under pytest, tmux hands the pane COLUMNS=80 and LINES=24, which would override its real size)
    shell = (f"cd {tmp_path} && ip netns exec {voting.netns} env -u COLUMNS -u LINES PYTHONPATH={REPO} "
             f"{sys.executable} -m analyzer "
             f"capture --seconds 60 -w {out} --view pairs; sleep 120")
    subprocess.run([*tmux, "new-session", "-d", "-s", "live", "-x", "160", "-y", "40", shell], check=True, timeout=30)

    def pane() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "live"], capture_output=True, text=True,
                              timeout=30).stdout

    try:
        deadline = time.monotonic() + 20
        while not (out.exists() and out.stat().st_size > 0):
            assert time.monotonic() < deadline, pane()
            time.sleep(0.1)
        _traffic(state, tmp_path, "voting", seconds=3)
        seen: list[tuple[str, list[list[str]]]] = []  # (status line, pair rows) of each look at the pane
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            lines = pane().splitlines()
            head = [i for i, line in enumerate(lines) if line.split()[:3] == ["CLIENT", "SERVER", "FLOWS"]]
            if head:
                assert len(head) == 1 and sum("(Ctrl-C stops)" in line for line in lines) == 1, lines  # in place
                rows = [line.split() for line in lines[head[0] + 1:] if line.strip()]
                if any(r[1] == voting.ip and int(r[3]) > 0 for r in rows):  # server, flows, tls
                    seen.append((lines[head[0] - 1], rows))
                    if len(seen) >= 2 and seen[0][0] != seen[-1][0]:
                        break
            time.sleep(0.6)
        assert len(seen) >= 2 and seen[0][0] != seen[-1][0], pane()  # redrawn: the elapsed seconds move on
        status, rows = seen[-1]
        assert re.search(r"tty.pcapng: \d+ packets, \d+ flows \(tls \d+, plaintext \d+, unknown \d+\), \d+ s", status)
        statuses = {"all-tls", "mixed", "plaintext-present", "unknown-only"}
        assert all(len(r) == 7 and r[-1] in statuses and int(r[2]) == sum(map(int, r[3:6])) for r in rows if r[0][0].isdigit())
        subprocess.run([*tmux, "send-keys", "-t", "live", "C-c"], check=True, timeout=30)
        deadline = time.monotonic() + 30
        while "capture stopped by signal" not in pane():
            assert time.monotonic() < deadline, pane()
            time.sleep(0.2)
        final = pane()
        assert "(Ctrl-C stops)" not in final and "CLIENT_IP" in final  # table cleared, report printed
        assert capinfos_packets(out) > 0
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=30)


@pytest.mark.root
def test_capture_memory_stays_flat(lab, tmp_path):
    """A shorter run of benchmarks/live_rss.py: 60 s in a pod with the lab's drivers plus 50 short
    connections a second.  Closed flows stay in the table for CLOSED_IDLE_S (30 s) after their last packet,
    so the table fills for 30 s; after that, finished flows are released as fast as new ones come, and the
    analyzer's RSS stays flat (dumpcap's too: it writes the file, it does not dissect)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from live_rss import measure
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    state, _model = lab
    res = measure(state, _model, tmp_path, seconds=60, rate=50, sample_s=2.0, warmup_s=36)
    assert res["returncode"] == 0, res["stderr_tail"]
    assert res["flows"] and res["flows"] > 1500, res  # the load really ran: thousands of flows came and went
    assert res["analyzer_growth_kib"] < 3 * 1024, res["samples"]
    lo, hi = res["dumpcap_kib"]
    assert hi - lo < 2 * 1024, res["samples"]
