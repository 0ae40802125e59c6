"""analyzer.kube.debug: command lines, the API's answers, and kubectl's failure messages -> one line with the fix.

The messages are those kubectl and the kubelet print (the kubectl stand-in's injected failures reuse them).
"""

from __future__ import annotations

import dataclasses

import pytest

from analyzer.kube import debug
from analyzer.kube.pods import Pod

POD = Pod("emojivoto", "web-5d8f7c9b4-x2x9z", containers=("linkerd-init", "linkerd-proxy", "web-svc", "linkerd-debug"),
          proxy_version="edge-25.4.4")


def test_debug_image_follows_the_proxy_version():
    assert debug.debug_image(POD, None) == "cr.l5d.io/linkerd/debug:edge-25.4.4"
    assert debug.debug_image(POD, "registry.example/tools:1") == "registry.example/tools:1"
    unmeshed = dataclasses.replace(POD, proxy_version="")
    assert debug.debug_image(unmeshed, None, "stable-2.14.10") == "cr.l5d.io/linkerd/debug:stable-2.14.10"
    with pytest.raises(debug.CaptureFailed, match="pass --debug-image"):
        debug.debug_image(unmeshed, None)


def test_ephemeral_args_target_the_app_container():
    assert debug.ephemeral_args(POD, "img:1", "mtls-audit") == [
        "debug", "web-5d8f7c9b4-x2x9z", "-n", "emojivoto", "--image", "img:1", "--target", "web-svc",
        "--profile", "netadmin", "--container", "mtls-audit", "--", "sleep", "86400"]
    assert debug.node_args("node-a", "img:1", "default", 10)[:2] == ["debug", "node/node-a"]


def _doc(*statuses) -> dict:
    return {"spec": {}, "status": {"ephemeralContainerStatuses": [
        {"name": name, "state": {state: {"reason": reason}}} for name, state, reason in statuses]}}


def test_an_idle_container_is_reused_an_exited_one_is_not():
    assert debug.ephemeral_name(_doc()) == ("mtls-audit", False)
    assert debug.ephemeral_name(_doc(("mtls-audit", "running", ""))) == ("mtls-audit", True)
    assert debug.ephemeral_name(_doc(("mtls-audit", "terminated", "Completed"))) == ("mtls-audit-2", False)
    assert debug.ephemeral_name(_doc(("mtls-audit", "terminated", "Completed"), ("mtls-audit-2", "waiting",
                                                                                 "ErrImagePull"))) == ("mtls-audit-2", True)
    assert debug.container_state(_doc(("x", "waiting", "ImagePullBackOff")), "x", ephemeral=True) == \
        ("waiting", "ImagePullBackOff", "")


def test_node_debug_pod_name_from_kubectl_output():
    out = "Creating debugging pod node-debugger-node-a-7xk2p with container debugger on node node-a.\n"
    assert debug.created_node_pod(out) == ("node-debugger-node-a-7xk2p", "debugger")
    with pytest.raises(debug.CaptureFailed):
        debug.created_node_pod("")


def test_node_and_pod_problems():
    nodes = {"items": [{"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                       {"metadata": {"name": "b"}, "status": {"conditions": [
                           {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]}}]}
    assert debug.node_problem(nodes, "a") is None
    assert debug.node_problem(nodes, "b").startswith("node b is not ready (NodeStatusUnknown)")
    assert debug.phase_problem({"status": {"phase": "Pending"}}) == "pod is not running (phase Pending)"
    assert debug.phase_problem({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}})


@pytest.mark.parametrize("said, starts", [
    ('Error from server (Forbidden): pods "web" is forbidden: User "bob" cannot patch resource '
     '"pods/ephemeralcontainers" in API group "" in the namespace "emojivoto"', "ephemeral containers forbidden"),
    ('error: ephemeral containers are disabled for this cluster (error from server: "the server could not find '
     'the requested resource").', "Kubernetes too old for ephemeral containers"),
    ('ErrImagePull: failed to pull image "x:1": not found', "image img:1 could not be pulled"),
    ('OCI runtime exec failed: exec failed: unable to start container process: exec: "tshark": executable file '
     'not found in $PATH: unknown', "no tshark in image img:1"),
    ("tshark: The capture session could not be initiated on capture device \"any\" (socket: Operation not "
     "permitted).\nPlease check that you have sufficient permissions.", "capture not permitted (tshark: The capture"),
    ("error: cannot exec into a container in a completed pod; current phase is Succeeded", "pod not running"),
    ('Error from server (Forbidden): pods is forbidden: User "bob" cannot create resource "pods"', "forbidden ("),
    ("something else entirely", "something else entirely"),
])
def test_explain_names_the_fix(said, starts):
    line = debug.explain(said, debug.EPHEMERAL, "img:1")
    assert line.startswith(starts) and "\n" not in line


def test_in_pod_command_and_missing_python():
    command = debug.in_pod_command(1234, "web-1.pcapng", 10)
    assert command[:4] == ["python3", "-I", "-S", "-c"] and command[5:8] == ["1234", "web-1.pcapng", "capture"]
    assert "--format" in command and command[command.index("--format") + 1] == "jsonl"
    assert debug.lacks_python('exec: "python3": executable file not found in $PATH: unknown')
    assert debug.lacks_python("sh: 1: python3: not found")
    assert not debug.lacks_python("Traceback (most recent call last): python3 crashed")
