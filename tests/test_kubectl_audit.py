"""``kubectl mtls audit``: capture a namespace at once without restarts, then one edges table.

HONEST SCOPE: no Kubernetes API server can run here. kubectl is the stand-in ``tests/bin/kubectl`` (read
its docstring): ``debug`` records the ephemeral container or node debug pod the API server would create,
``exec`` runs the command in the pod's (or the node's) network namespace of the mesh lab. The captures
(tshark -i any in the pods' and nodes' namespaces while the lab's proxies do real mTLS), the streaming
over the exec's standard output, the .pyz sent in over its standard input, and the analysis are real;
only the API server is played.

Two kinds of tests:
* without a lab: the stand-in's synthetic mode (generated pods, a tiny pcapng per capture) and its injected
  failures drive the real command through every failure mode, reuse, fall-back and exit code;
* on the lab (root, network namespaces, the machine-wide lab lock): the ways in, the edges per vantage
  point against the lab's wiring, the gate, --analyze-in-pod against the packet path, a failing target,
  and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from analyzer import analyze
from analyzer.report.edges import edge_status
from labutil import lab_fixture

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
STANDIN_DIR = TESTS / "bin"


def env_for(state: Path, **extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", "MTLSLAB_STATE": str(state),
           "PATH": f"{STANDIN_DIR}{os.pathsep}{os.environ['PATH']}", **extra}
    for name in ("KUBECTL_STANDIN_FAIL", "KUBECTL_STANDIN_SYNTHETIC", "KUBECTL_STANDIN_LOG"):
        if name not in extra:
            env.pop(name, None)
    return env


def audit_argv(*args) -> list[str]:
    return [sys.executable, "-m", "analyzer.kubectl_mtls", "audit", *map(str, args)]


def run_audit(*args, state: Path, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(audit_argv(*args), capture_output=True, text=True, env=env_for(state, **extra),
                          timeout=timeout)


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def by_target(doc: dict) -> dict:
    return {c["target"]: c for c in doc["captures"]}


# -- without a lab: synthetic pods --------------------------------------------------------------------------
SYNTH = "app{i}-7d9c8b6f5-{i:05d}"  # the stand-in's synthetic pod names, in namespace ns<i % 20>


def synth(i: int) -> str:
    return f"ns{i % 20}/" + SYNTH.format(i=i)


@pytest.fixture
def state(tmp_path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


def test_help_names_every_option(state):
    result = subprocess.run([sys.executable, "-m", "analyzer.kubectl_mtls", "audit", "--help"], capture_output=True,
                            text=True, env=env_for(state))
    assert result.returncode == 0
    for option in ("--namespace", "--all-namespaces", "--selector", "--via", "--debug-image", "--seconds",
                   "--parallel", "--output-dir", "--output", "--json", "--format", "--fail-on", "--analyze-in-pod"):
        assert option in result.stdout


def test_every_failure_mode_is_one_line_naming_the_fix_and_the_others_go_on(state, tmp_path):
    out = tmp_path / "out"
    fail = ",".join(f"{mode}=app{i}-" for i, mode in enumerate(
        ("forbidden", "too-old", "image-pull", "no-tshark", "no-capture", "not-running")))
    calls = tmp_path / "kubectl-calls.log"
    result = run_audit("-A", "--via", "ephemeral", "--seconds", 1, "--output-dir", out, "--format", "json",
                       state=state, KUBECTL_STANDIN_SYNTHETIC="7", KUBECTL_STANDIN_FAIL=fail,
                       KUBECTL_STANDIN_LOG=str(calls))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []  # the synthetic pcapng holds one non-IP frame: no flows, no edges
    assert "No TCP flows to judge in the captures" in result.stderr.splitlines()  # the headline, before the table
    lines = {line.split(": not captured: ")[0]: line.split(": not captured: ")[1]
             for line in result.stderr.splitlines() if ": not captured: " in line}
    assert set(lines) == {synth(i) for i in range(6)}
    assert lines[synth(0)].startswith("ephemeral containers forbidden: grant the verb `patch` on `pods/ephemeralcontainers`")
    assert lines[synth(1)].startswith("Kubernetes too old for ephemeral containers")
    assert lines[synth(2)].startswith("image cr.l5d.io/linkerd/debug:edge-25.4.4 could not be pulled (ErrImagePull")
    assert "--debug-image" in lines[synth(2)]
    assert lines[synth(3)].startswith("no tshark in image cr.l5d.io/linkerd/debug:edge-25.4.4: pass --debug-image")
    assert lines[synth(4)].startswith("capture not permitted (") and "NET_RAW" in lines[synth(4)]
    assert lines[synth(5)].startswith("pod not running (")
    captures = by_target(manifest(out))
    good = captures[synth(6)]
    assert good["way"] == "ephemeral" and good["error"] == "" and good["exit_status"] == 0 and good["packets"] == 1
    assert (out / good["path"]).read_bytes()[:4] == b"\x0a\x0d\x0d\x0a" and good["bytes"] == (out / good["path"]).stat().st_size
    assert good["path"].startswith("ns6/app6-7d9c8b6f5-00006-") and good["path"].endswith("Z.pcapng")
    assert all(captures[synth(i)]["error"] == lines[synth(i)] and not captures[synth(i)]["path"] for i in range(6))
    for name in ("pods-before.json", "pods-after.json", "pods.json"):
        assert (out / name).exists(), name
    # the lists the analysis reads: pods, and which Service each ClusterIP is, before and after
    assert [c for c in calls.read_text().splitlines() if c.startswith("get pods")] == [
        "get pods,services,endpointslices -A -o json"] * 2
    assert "\r" not in result.stderr  # progress is drawn on a terminal only


def test_nothing_captured_is_exit_2(state, tmp_path):
    result = run_audit("-A", "--via", "ephemeral", "--seconds", 1, "--output-dir", tmp_path / "out", state=state,
                       KUBECTL_STANDIN_SYNTHETIC="2", KUBECTL_STANDIN_FAIL="forbidden")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("Error: nothing was captured (2 targets)")
    assert "Traceback" not in result.stderr


def test_a_second_audit_reuses_the_ephemeral_container(state, tmp_path):
    for run in (1, 2):
        result = run_audit("-n", "ns0", "--via", "ephemeral", "--seconds", 1, "--output-dir", tmp_path / f"out{run}",
                           "-q", state=state, KUBECTL_STANDIN_SYNTHETIC="1")
        assert result.returncode == 0, result.stderr
        assert by_target(manifest(tmp_path / f"out{run}"))[synth(0)]["note"] == \
            ("" if run == 1 else "reused ephemeral container mtls-audit")
    pod = json.loads(subprocess.run(["kubectl", "get", "pod", SYNTH.format(i=0), "-n", "ns0", "-o", "json"],
                                    capture_output=True, text=True, check=True,
                                    env=env_for(state, KUBECTL_STANDIN_SYNTHETIC="1")).stdout)
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["mtls-audit"]
    assert pod["spec"]["ephemeralContainers"][0]["command"] == ["sleep", "86400"]
    assert pod["status"]["ephemeralContainerStatuses"][0]["state"].keys() == {"running"}


def test_via_node_one_capture_per_node_and_a_node_not_ready(state, tmp_path):
    out = tmp_path / "out"
    # 12 pods over node0..node9: node0 and node1 run two each.
    result = run_audit("-A", "--via", "node", "--seconds", 1, "--output-dir", out, "-q", state=state,
                       KUBECTL_STANDIN_SYNTHETIC="12", KUBECTL_STANDIN_FAIL="node-not-ready=node3")
    assert result.returncode == 0, result.stderr
    captures = by_target(manifest(out))
    assert set(captures) == {f"node/node{i}" for i in range(10)}
    assert captures["node/node3"]["error"].startswith("node node3 is not ready (KubeletNotReady)")
    ok = [c for c in captures.values() if not c["error"]]
    assert len(ok) == 9 and all(c["way"] == "node" and c["vantage"] == "node" and c["path"].startswith("nodes/node")
                                and "deleted afterwards" in c["note"] for c in ok)
    assert not list((state / "standin" / "debugpods").iterdir())  # every node debug pod was deleted


def test_analyze_in_pod_without_python_falls_back_to_packets(state, tmp_path):
    out = tmp_path / "out"
    result = run_audit("-A", "--via", "ephemeral", "--analyze-in-pod", "--seconds", 1, "--output-dir", out, "-q",
                       "--json", tmp_path / "audit.json", state=state, KUBECTL_STANDIN_SYNTHETIC="2",
                       KUBECTL_STANDIN_FAIL="no-python=app1-")
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "audit.json").read_text())
    assert doc["edges"] == [] and len(doc["captures"]) == 1  # the fall-back's packets; the rows have no file
    assert doc["headline"] == "No TCP flows to judge in the captures"
    assert "No TCP flows" not in result.stderr  # -q: no headline on stderr
    captures = by_target(manifest(out))
    sent = captures[synth(0)]
    assert sent["rows"].endswith(".flows.jsonl") and not sent["path"] and sent["flows"] == 0
    fell_back = captures[synth(1)]
    assert fell_back["path"].endswith(".pcapng") and not fell_back["rows"]
    assert fell_back["note"] == "no python3 in the image: packets streamed back and analysed here instead"


def test_progress_is_drawn_on_a_terminal(state, tmp_path):
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(audit_argv("-A", "--via", "ephemeral", "--seconds", 2, "--output-dir", tmp_path / "o"),
                            stdout=subprocess.PIPE, stderr=follower, env=env_for(state, KUBECTL_STANDIN_SYNTHETIC="2"))
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the command exited and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = seen.decode()
    assert "\r\x1b[Kaudit: " in text and " running, " in text and "s left (Ctrl-C stops and reports)" in text
    assert "audit: 2 done, 0 running, 0 failed, 0 queued" in text


def test_selector_and_bad_selection(state, tmp_path):
    result = run_audit("-A", "-l", "app=app3", "--via", "ephemeral", "--seconds", 1, "--output-dir", tmp_path / "o",
                       "-q", state=state, KUBECTL_STANDIN_SYNTHETIC="5")
    assert result.returncode == 0, result.stderr
    assert set(by_target(manifest(tmp_path / "o"))) == {synth(3)}
    none = run_audit("-n", "nowhere", "--seconds", 1, "--output-dir", tmp_path / "n", state=state,
                     KUBECTL_STANDIN_SYNTHETIC="5")
    assert none.returncode == 2 and none.stderr == "Error: no running pod selected in namespace 'nowhere'\n"


# -- on the lab ---------------------------------------------------------------------------------------------
lab = lab_fixture("kubectl-audit-lab")  # lifetime 300 s: both lab tests take ~2 min


CAPTURE_S = 24  # each audit's capture
TRAFFIC_S = 4  # the lab's drivers run this long once every packet capture streams


def _wait_streaming(paths_glob: list[tuple[Path, str, int]], procs, timeout: float = 60) -> None:
    """Until each output dir has `count` capture files with bytes (tshark is capturing and streaming)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len([p for p in out.glob(pattern) if p.stat().st_size > 0]) >= count for out, pattern, count in paths_glob):
            return
        for proc in procs:
            assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    raise AssertionError("captures did not start streaming")


def _drive_traffic(state: Path, tmp: Path) -> None:
    from analyzer.lab import control

    started = time.monotonic()
    control.capture(state, tmp / "driver.pcapng", "voting", seconds=TRAFFIC_S)
    assert time.monotonic() - started < CAPTURE_S - 6, "traffic outlasted the audits' captures"


def _traffic_then_ctrl_c(proc, state: Path, tmp: Path, timeout: float, ready) -> tuple[str, str]:
    """Once ``ready()`` returns, drive the lab's traffic and Ctrl-C the audit; its output (killed if it hangs)."""
    try:
        ready()
        _drive_traffic(state, tmp)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def _expected(lab, vantages) -> dict:
    """{(src_ip, dst_ip): edge status} of the TCP edges any of the vantage points sees, from the lab's wiring."""
    from analyzer.lab.topology import expected_rows

    want: dict[tuple, dict] = {}
    for vantage in vantages:
        for row in expected_rows(lab, "steady", vantage):
            if row["reason"] != "udp":
                want.setdefault((row["src_ip"], row["dst_ip"]), {})[row["dst_port"]] = row["status"]
    return {k: edge_status(v.values()) for k, v in want.items()}


def _observed(edges: list[dict]) -> dict:
    return {(e["src_ips"], e["dst_ips"]): e["status"] for e in edges}


def _connections(state: Path, since: float, ips=None) -> Counter:
    """{(client IP, server IP): connections} from the lab's own log of accepted connections (those with
    an end in ``ips``, if given): what each edge's flow count must be, every connection once."""
    from analyzer.lab import connlog

    return Counter((c["client_ip"], c["server_ip"]) for c in connlog.read(state, since)
                   if ips is None or c["client_ip"] in ips or c["server_ip"] in ips)


def _flows(edges: list[dict]) -> Counter:
    return Counter({(e["src_ips"], e["dst_ips"]): e["flows"] for e in edges})


@pytest.mark.root
@pytest.mark.tshark
def test_audit_on_the_lab_every_way_in(lab, tmp_path):
    from analyzer.lab.topology import NODE, NODE_NAMES

    live_lab, lab = lab
    runs = {
        "ephemeral": ["-n", "emojivoto", "--via", "ephemeral", "--fail-on", "unexpected-plaintext",
                      "-o", tmp_path / "report.html", "--json", tmp_path / "report.json"],
        "node": ["-A", "--via", "node"],
        "auto": ["-n", "emojivoto", "--via", "auto"],
        "inpod": ["-n", "emojivoto", "--via", "ephemeral", "--analyze-in-pod"],
    }
    procs = {}
    for name in ("inpod", "ephemeral", "node", "auto"):  # the .pyz path first: it has no file to watch
        procs[name] = subprocess.Popen(audit_argv(*runs[name], "--seconds", CAPTURE_S, "--output-dir", tmp_path / name,
                                                  "--format", "json"),
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(live_lab))
    try:
        _wait_streaming([(tmp_path / "ephemeral", "emojivoto/*.pcapng", 4), (tmp_path / "auto", "emojivoto/*.pcapng", 4),
                         (tmp_path / "node", "nodes/*.pcapng", 2)], procs.values())
        time.sleep(2)  # the in-pod analyzer starts its own dumpcap after unpacking itself
        since = time.time()
        _drive_traffic(live_lab, tmp_path)
        results = {name: (*proc.communicate(timeout=CAPTURE_S + 90), proc.returncode) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    emojivoto = [p.key for p in lab.pods if p.namespace == "emojivoto"]
    in_emojivoto = _connections(live_lab, since, {p.ip for p in lab.pods if p.namespace == "emojivoto"})
    assert sum(in_emojivoto.values()) >= 10, in_emojivoto  # the drivers made their calls

    # Ephemeral containers in the four pods: the edges any of them sees; the plaintext web -> voting:4567 gate.
    stdout, stderr, code = results["ephemeral"]
    assert code == 3, stderr
    assert stderr.splitlines()[-1].startswith("--fail-on unexpected-plaintext: 1 edge: emojivoto/web-")
    ephemeral_edges = json.loads(stdout)
    assert _observed(ephemeral_edges) == _expected(lab, emojivoto)
    assert _flows(ephemeral_edges) == in_emojivoto  # each connection once, though two pods saw most of them
    doc = manifest(tmp_path / "ephemeral")
    assert {c["way"] for c in doc["captures"]} == {"ephemeral"} and all(c["packets"] > 0 for c in doc["captures"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert {(e["src_ips"], e["dst_ips"]): e["status"] for e in report["edges"]} == _observed(ephemeral_edges)
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")

    # auto: the sidecar where the pod has one (web, voting), an ephemeral container elsewhere.
    stdout, stderr, code = results["auto"]
    assert code == 0, stderr
    ways = {c["target"].split("/")[1].split("-")[0]: c["way"] for c in manifest(tmp_path / "auto")["captures"]}
    assert ways == {"web": "sidecar", "voting": "sidecar", "emoji": "ephemeral", "vote": "ephemeral"}
    assert _observed(json.loads(stdout)) == _expected(lab, emojivoto)
    assert _flows(json.loads(stdout)) == in_emojivoto

    # Node captures: the first node sees every edge (each has an end there), the second only its pods'.
    stdout, stderr, code = results["node"]
    assert code == 0, stderr
    assert _observed(json.loads(stdout)) == _expected(lab, [NODE])
    assert _flows(json.loads(stdout)) == _connections(live_lab, since)  # two nodes: still each connection once
    captures = by_target(manifest(tmp_path / "node"))
    assert set(captures) == {f"node/{n}" for n in NODE_NAMES}
    second = tmp_path / "node" / captures[f"node/{NODE_NAMES[1]}"]["path"]
    on_second = [p.key for p in lab.pods if p.node == 1]
    rows = analyze(second, pods=tmp_path / "node" / "pods.json").edge_rows
    assert _observed(rows) == _expected(lab, on_second)

    # --analyze-in-pod: only flow rows came back, and the edges are those of the packet path.
    stdout, stderr, code = results["inpod"]
    assert code == 0, stderr
    inpod = manifest(tmp_path / "inpod")["captures"]
    assert all(c["rows"] and not c["path"] and c["flows"] > 0 for c in inpod)
    assert not list((tmp_path / "inpod").glob("*/*.pcapng"))
    assert _observed(json.loads(stdout)) == _observed(ephemeral_edges)
    assert _flows(json.loads(stdout)) == in_emojivoto
    assert "flows were classified inside the pods (--analyze-in-pod)" in stderr


@pytest.mark.root
@pytest.mark.tshark
def test_audit_on_the_lab_failing_target_and_ctrl_c(lab, tmp_path):
    live_lab, lab = lab
    out = tmp_path / "out"
    proc = subprocess.Popen(audit_argv("-n", "emojivoto", "--via", "ephemeral", "--seconds", 300, "--output-dir", out,
                                       "--format", "json", "--json", tmp_path / "report.json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_for(live_lab, KUBECTL_STANDIN_FAIL="no-tshark=emoji-"))
    stdout, stderr = _traffic_then_ctrl_c(proc, live_lab, tmp_path, 60,
                                          lambda: _wait_streaming([(out, "emojivoto/*.pcapng", 3)], [proc]))
    assert proc.returncode == 130, stderr
    assert stderr.rstrip().splitlines()[-1] == "Interrupted." and "Traceback" not in stderr
    emoji = next(p for p in lab.pods if p.key == "emoji")
    assert f"emojivoto/{emoji.name}: not captured: no tshark in image cr.l5d.io/linkerd/debug:edge-25.4.4" in stderr
    doc = manifest(out)
    assert doc["interrupted"] is True
    captured = [c for c in doc["captures"] if c["path"]]
    assert len(captured) == 3 and all("stopped early (interrupted)" in c["note"] for c in captured)
    for entry in captured:  # readable captures: the analyzer reads them alone, without a warning
        assert not analyze(out / entry["path"]).stats["warnings"]
    others = [p.key for p in lab.pods if p.namespace == "emojivoto" and p.key != "emoji"]
    assert _observed(json.loads(stdout)) == _expected(lab, others)
    assert json.loads((tmp_path / "report.json").read_text())["edges"]
    assert "interrupted: the captures were stopped early" in stderr


@pytest.mark.root
@pytest.mark.tshark
def test_audit_in_pod_interrupted_keeps_the_rows(lab, tmp_path):
    """Ctrl-C during an --analyze-in-pod audit: each in-pod analyzer stops its capture, judges what it has
    and sends its rows; every connection made before the interrupt is counted once."""
    live_lab, lab = lab
    out = tmp_path / "out"
    since = time.time()  # the lab's earlier traffic has ended; the drivers run below
    proc = subprocess.Popen(audit_argv("-n", "emojivoto", "--via", "ephemeral", "--analyze-in-pod", "--seconds", 300,
                                       "--output-dir", out, "--format", "json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(live_lab))

    def started() -> None:
        deadline = time.monotonic() + 60
        while len(list(out.glob("emojivoto/*.flows.jsonl"))) < 4 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        time.sleep(4)  # each in-pod analyzer unpacks itself and starts its dumpcap

    stdout, stderr = _traffic_then_ctrl_c(proc, live_lab, tmp_path, 120, started)
    assert proc.returncode == 130, stderr
    captures = manifest(out)["captures"]
    assert len(captures) == 4 and all(c["rows"] and c["flows"] > 0 and "stopped early" in c["note"] for c in captures), captures
    emojivoto = {p.ip for p in lab.pods if p.namespace == "emojivoto"}
    assert _flows(json.loads(stdout)) == _connections(live_lab, since, emojivoto)
