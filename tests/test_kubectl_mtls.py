"""``kubectl mtls`` (console script ``kubectl-mtls``): capture in a pod's debug sidecar, print the edges.

HONEST SCOPE: no Kubernetes API server can run on this machine. kubectl is ``tests/bin/kubectl``, a
STAND-IN put first on PATH (read its docstring): ``get pods -o json`` prints the mesh lab's pod list
(``<lab state>/pods.json``) and ``exec POD -c CONTAINER -- CMD`` checks the container exists in the pod's
spec, then runs ``ip netns exec mtlslab-<pod> CMD``. So in the live test below the capture is real
(tshark -i any in the web pod's network namespace, while the lab's proxies do real mTLS), the pcapng is
really streamed back over the exec's standard output, saved, and analysed - only the Kubernetes API is
played by the stand-in.

The live test needs root and network namespaces (skipped with the reason otherwise) and holds the
machine-wide lab lock (``lab_lock`` in tests/conftest.py). The other tests need no lab: the stand-in reads
the bundled ``demo-transparent.pods.json`` from a temporary state directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from analyzer import analyze
from analyzer.kube.podlist import load_pods
from analyzer.kubectl_mtls import debug_sidecar_hint
from analyzer.report.edges import edge_status

TESTS = Path(__file__).resolve().parent
from paths import DEMO_PODS, REPO
STANDIN_DIR = TESTS / "bin"


def env_for(state: Path, path: str | None = None) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", "MTLSLAB_STATE": str(state),
            "PATH": path if path is not None else f"{STANDIN_DIR}{os.pathsep}{os.environ['PATH']}"}


def kubectl_mtls(*args, state: Path, path: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analyzer.kubectl_mtls", *map(str, args)], capture_output=True,
                          text=True, env=env_for(state, path), timeout=timeout)


@pytest.fixture
def demo_state(tmp_path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(DEMO_PODS, state / "pods.json")
    return state


# -- without a lab ---------------------------------------------------------------------------------------
def test_console_script_is_declared():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kubectl-mtls"] == "analyzer.kubectl_mtls:main"


def test_help(demo_state):
    result = kubectl_mtls("capture", "--help", state=demo_state)
    assert result.returncode == 0
    for option in ("--namespace", "--seconds", "--all-pods", "--output-dir", "--context", "--fail-on", "--resource"):
        assert option in result.stdout


def test_missing_debug_sidecar_says_how_to_enable_it(demo_state, tmp_path):
    result = kubectl_mtls("capture", "-n", "emojivoto", "deploy/emoji", "--seconds", "1", "--output-dir",
                          tmp_path / "out", state=demo_state)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("Error: pod emojivoto/emoji-n9hzc2q6hv-6tt9h has no linkerd-debug container.")
    assert 'config.linkerd.io/enable-debug-sidecar: "true"' in result.stderr
    assert ("kubectl -n emojivoto patch deployment emoji -p '{\"spec\":{\"template\":{\"metadata\":{\"annotations\":"
            "{\"config.linkerd.io/enable-debug-sidecar\":\"true\"}}}}}'") in result.stderr
    assert not (tmp_path / "out").exists()  # nothing started, nothing saved


def test_hint_for_a_bare_pod():
    pod = next(p for p in load_pods(DEMO_PODS).pods if p.name.startswith("legacy-"))
    bare = dataclasses.replace(pod, owner_kind="pod", owner_name=pod.name)
    assert "re-create the pod with the annotation" in debug_sidecar_hint(bare, "linkerd-debug")


def test_unknown_target(demo_state):
    result = kubectl_mtls("capture", "-n", "emojivoto", "deploy/nope", state=demo_state)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: no pods for deployment/nope in namespace 'emojivoto' (there: ")


def test_missing_kubectl(demo_state, tmp_path):
    result = kubectl_mtls("capture", "-n", "emojivoto", "deploy/web", state=demo_state, path=str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("Error: kubectl not found")
    assert result.stderr.count("\n") == 1


def test_failing_exec_is_reported_with_what_kubectl_said(demo_state, tmp_path):
    """No lab.json in the state: the stand-in's exec fails like an exec into a gone pod would."""
    result = kubectl_mtls("capture", "-n", "emojivoto", "deploy/web", "--seconds", "1", "--output-dir", tmp_path / "out",
                          state=demo_state)
    assert result.returncode == 2
    assert "emojivoto/web-lnh8fhhndj-g9cvx: capture failed (kubectl exit 1, 0 bytes streamed)" in result.stderr
    assert "cannot read" in result.stderr and "lab.json" in result.stderr


# -- against the live lab --------------------------------------------------------------------------------
def _netns_unavailable() -> str | None:
    import labutil

    return labutil.netns_unavailable("the kubectl stand-in execs into lab pods with `ip netns exec`")


@pytest.fixture(scope="module")
def live_lab(request, tmp_path_factory):
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    for tool, package in (("tshark", "tshark"), ("nft", "nftables")):
        assert shutil.which(tool), f"{tool} missing: apt-get install -y {package}"
    request.getfixturevalue("lab_lock")  # one lab per machine: `lab up` tears down any other lab
    from analyzer.lab import control

    state = tmp_path_factory.mktemp("kubectl-mtls-lab")
    control.up(state, "transparent", lifetime_s=300)
    yield state
    control.down(state)


CAPTURE_S = 14  # tshark's duration in the web pod
TRAFFIC_S = 4   # how long the lab's drivers run, started once our tshark is capturing


@pytest.mark.root
@pytest.mark.tshark
def test_capture_in_the_lab_streams_saves_and_prints_edges(live_lab, tmp_path):
    from analyzer.lab import control
    from analyzer.lab.topology import expected_rows
    from test_edges import expected_key, observed_key

    out = tmp_path / "captures"
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyzer.kubectl_mtls", "capture", "-n", "emojivoto", "deploy/web",
         "--seconds", str(CAPTURE_S), "--output-dir", str(out), "--format", "json", "--fail-on", "unexpected-plaintext"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(live_lab))
    stderr: list[str] = []
    capturing = threading.Event()

    def read() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            stderr.append(line)
            if "Capturing on" in line:
                capturing.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert capturing.wait(30), "".join(stderr)
        # The lab's traffic drivers run only during a lab capture; capture in voting to drive them.
        started = time.monotonic()
        control.capture(live_lab, tmp_path / "driver" / "voting.pcapng", "voting", seconds=TRAFFIC_S)
        assert time.monotonic() - started < CAPTURE_S, "traffic outlasted the kubectl mtls capture"
        stdout = proc.stdout.read()  # type: ignore[union-attr]
        proc.wait(timeout=CAPTURE_S + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    err = "".join(stderr)

    # web -> voting:4567 is plaintext between meshed pods: the gate fires after the table is printed.
    assert proc.returncode == 3, err
    assert err.splitlines()[-1].startswith("--fail-on unexpected-plaintext: 1 edge: emojivoto/web-")

    (capture,) = out.glob("web-*.pcapng")
    pods_file = capture.with_name(capture.name.removesuffix(".pcapng") + ".pods.json")
    assert capture.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a" and pods_file.exists()
    assert f"saved {capture}" in err

    lab = control.load(live_lab)
    expected = [r for r in expected_rows(lab, "steady", "web") if r["reason"] != "udp"]
    want: dict[tuple, list[str]] = {}
    for row in expected:
        want.setdefault((row["src_ip"], row["dst_ip"]), []).append(row["status"])
    edges = json.loads(stdout)
    assert {(e["src_ips"], e["dst_ips"]): e["status"] for e in edges} == {k: edge_status(v) for k, v in want.items()}
    web_voting = next(e for e in edges if e["src"].startswith("web-") and e["dst"].startswith("voting-"))
    assert web_voting["tls"] > 0 and web_voting["plaintext"] > 0 and web_voting["server"] == "voting.emojivoto"

    # The saved files reproduce the result offline, per (client, server, port), exactly as the lab wired it.
    rows = analyze(capture, pods=pods_file).edge_rows_by("pod", by_port=True)
    assert sorted(map(observed_key, rows)) == sorted(map(expected_key, expected))

    # And `mtls-analyzer analyze --kubectl` fetches the same pods through the stand-in.
    again = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(capture), "--kubectl", "--view", "edges",
                            "--format", "json"], capture_output=True, text=True, env=env_for(live_lab), timeout=120)
    assert again.returncode == 0, again.stderr
    assert [e["status"] for e in json.loads(again.stdout)] == [e["status"] for e in edges]


@pytest.mark.root
def test_capture_in_the_lab_without_debug_sidecar(live_lab, tmp_path):
    result = kubectl_mtls("capture", "-n", "emojivoto", "deploy/emoji", "--seconds", "2", "--output-dir", tmp_path,
                          state=live_lab)
    assert result.returncode == 2 and "config.linkerd.io/enable-debug-sidecar" in result.stderr


@pytest.mark.root
@pytest.mark.tshark
def test_ctrl_c_during_the_capture_keeps_the_stream_and_exits_130(live_lab, tmp_path):
    """SIGINT to the process group, as a terminal's Ctrl-C: the stream stops, the pcapng keeps what came
    (readable to its end), no report, one ``Interrupted.`` line, exit 130, no traceback."""
    out = tmp_path / "captures"
    proc = subprocess.Popen([sys.executable, "-m", "analyzer.kubectl_mtls", "capture", "-n", "emojivoto", "deploy/web",
                             "--seconds", "60", "--output-dir", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env_for(live_lab), start_new_session=True)
    deadline = time.monotonic() + 30
    while not any(p.stat().st_size > 0 for p in out.glob("web-*.pcapng")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.rstrip().splitlines()[-1] == "Interrupted." and stderr.count("Interrupted.") == 1
    assert "Traceback" not in stderr and stdout == ""
    (capture,) = out.glob("web-*.pcapng")
    info = subprocess.run(["capinfos", "-c", "-M", str(capture)], capture_output=True, text=True)
    assert info.returncode == 0 and "Number of packets" in info.stdout, info.stderr
    assert not list(out.glob("*.pods.json"))  # the run did not finish: no pod list, no report
