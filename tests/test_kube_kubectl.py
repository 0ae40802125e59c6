"""analyzer.kube.kubectl and ``mtls-analyzer analyze --kubectl``: running kubectl, and clear errors when
it is missing or failing.

kubectl here is ``tests/bin/kubectl``, a documented STAND-IN (see its docstring): no Kubernetes API server
can run on the test machine. For ``get pods`` it prints the lab's pods file from ``$MTLSLAB_STATE`` - the
bundled ``captures/demo-transparent.pods.json`` copied into a temporary state directory - so these tests
need no live lab. Failing and missing kubectl are real processes (a script that exits 1, an empty PATH).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analyzer.errors import BackendUnavailable
from analyzer.kube import kubectl

TESTS = Path(__file__).resolve().parent
from paths import DEMO_CAPTURE as DEMO, DEMO_PODS, REPO
STANDIN_DIR = TESTS / "bin"


@pytest.fixture
def standin(tmp_path, monkeypatch) -> Path:
    """The stand-in kubectl first on PATH, reading the demo capture's pods from a temporary state dir."""
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(DEMO_PODS, state / "pods.json")
    monkeypatch.setenv("PATH", f"{STANDIN_DIR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MTLSLAB_STATE", str(state))
    monkeypatch.delenv("KUBECTL", raising=False)
    return state


@pytest.fixture
def failing_kubectl(tmp_path, monkeypatch) -> Path:
    """A kubectl that answers like one without credentials: exit 1, an error on stderr."""
    script = tmp_path / "bin" / "kubectl"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho 'E0101 memcache.go: could not get current server API group list' >&2\n"
                      "echo 'error: You must be logged in to the server (Unauthorized)' >&2\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("KUBECTL", raising=False)
    return script


def run_cli(*args, env_extra: dict | None = None, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", **(env_extra or {})}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


# -- library ---------------------------------------------------------------------------------------------
def test_get_pods_through_the_standin(standin):
    index = kubectl.get_pods()
    assert len(index) == 8 and index.source == "kubectl get pods,services,endpointslices -A -o json"
    assert {p.namespace for p in kubectl.get_pods(namespace="emojivoto").pods} == {"emojivoto"}
    assert len(kubectl.get_pods(namespace="emojivoto", all_namespaces=True)) == 8  # -A wins


def test_scope_and_exec_arguments(standin):
    assert kubectl.scope_args() == ["-A"] and kubectl.scope_args("ns") == ["-n", "ns"]
    argv = kubectl.exec_argv("web-1", "emojivoto", "linkerd-debug", ["tshark", "-i", "any"], context="kind-lab")
    assert argv[0] == str(STANDIN_DIR / "kubectl")
    assert argv[1:] == ["--context", "kind-lab", "exec", "-n", "emojivoto", "web-1", "-c", "linkerd-debug", "--",
                        "tshark", "-i", "any"]
    assert kubectl.tshark_command(5) == ["tshark", "-i", "any", "-a", "duration:5", "-q", "-w", "-"]


def test_missing_kubectl_is_backend_unavailable(monkeypatch):
    monkeypatch.setenv("KUBECTL", "kubectl-that-does-not-exist")
    with pytest.raises(BackendUnavailable, match=r"kubectl not found .*install kubectl .* or pass --pods FILE"):
        kubectl.get_pods()


def test_failing_kubectl_says_what_ran_and_what_kubectl_said(failing_kubectl):
    with pytest.raises(BackendUnavailable) as info:
        kubectl.get_pods(context="prod")
    assert str(info.value) == ("`kubectl --context prod get pods,services,endpointslices -A -o json` failed (exit 1): "
                               "error: You must be logged in to the server (Unauthorized)")


def test_unknown_context_through_the_standin(standin, monkeypatch):
    monkeypatch.setenv("KUBECTL_STANDIN_CONTEXTS", "lab")
    assert len(kubectl.get_pods(context="lab")) == 8
    with pytest.raises(BackendUnavailable, match='context "prod" does not exist'):
        kubectl.get_pods(context="prod")


def test_current_namespace_falls_back_to_default(standin):
    assert kubectl.current_namespace() == "default"


# -- mtls-analyzer analyze --kubectl ---------------------------------------------------------------------
def test_analyze_with_kubectl_prints_edges(standin):
    result = run_cli("analyze", DEMO, "--kubectl", "--view", "edges", "--format", "json")
    assert result.returncode == 0, result.stderr
    edges = json.loads(result.stdout)
    assert {(e["src"].split("-")[0], e["status"]) for e in edges} >= {("web", "PLAINTEXT-UNEXPECTED"),
                                                                     ("prometheus", "secured")}
    assert "5 edges from 45 flows: PLAINTEXT-UNEXPECTED 1, plaintext-expected 3, secured 1" in result.stderr


def test_analyze_with_kubectl_namespace_only_makes_other_namespaces_external(standin):
    result = run_cli("analyze", DEMO, "--kubectl", "-n", "emojivoto", "--view", "edges", "--format", "json")
    assert result.returncode == 0, result.stderr
    kinds = {e["src_ips"]: e["src_kind"] for e in json.loads(result.stdout)}
    assert kinds["10.244.0.15"] == "external"  # monitoring/prometheus-server is not in the emojivoto list
    assert kinds["10.244.0.10"] == "pod"


def test_analyze_kubectl_missing_is_one_error_line(tmp_path):
    result = run_cli("analyze", DEMO, "--kubectl", "--view", "edges", path=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("Error: kubectl not found") and result.stderr.count("\n") == 1, result.stderr


def test_analyze_kubectl_failing_is_one_error_line(failing_kubectl):
    result = run_cli("analyze", DEMO, "--kubectl", "--context", "prod", "--view", "edges")
    assert result.returncode == 2
    assert result.stderr == ("Error: `kubectl --context prod get pods,services,endpointslices -A -o json` failed (exit 1): "
                             "error: You must be logged in to the server (Unauthorized)\n")


def test_pods_and_kubectl_together_is_a_usage_error(standin):
    result = run_cli("analyze", DEMO, "--kubectl", "--pods", DEMO_PODS)
    assert result.returncode == 2 and "give --pods FILE or --kubectl, not both" in result.stderr


def test_standin_wide_output_parses_as_the_fallback(standin):
    text = subprocess.run([str(STANDIN_DIR / "kubectl"), "get", "pods", "-A", "-o", "wide"], capture_output=True,
                          text=True, check=True).stdout
    from analyzer.kube import parse_pods
    index = parse_pods(text, "wide")
    assert len(index) == 8 and all(p.meshed is None for p in index.pods)
    assert index.resolve("10.244.0.12").pod.name.startswith("voting-")
