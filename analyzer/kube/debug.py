"""Capture without restarting a pod: the kubectl command lines of each way in, and what their failures mean.

Three ways to run ``tshark`` where a pod's packets are:

* ``sidecar``: the pod's ``linkerd-debug`` container (added by the proxy injector at pod creation);
* ``ephemeral``: ``kubectl debug POD --image IMAGE --target APP --profile netadmin --container mtls-audit
  -- sleep 86400`` adds an ephemeral debug container that shares the pod's network namespace and idles; the
  capture is then a ``kubectl exec -c mtls-audit``.  Ephemeral containers can never be removed or restarted,
  so the idle one is *found again* (``status.ephemeralContainerStatuses``) and reused by the next audit
  instead of adding another; once it has exited, the next free name (``mtls-audit-2``, ...) is used;
* ``node``: ``kubectl debug node/NAME --image IMAGE --profile netadmin -- sleep N`` starts a pod in the
  node's network namespace (``hostNetwork``), ``tshark -i any`` there sees every pod of the node, and the
  pod is deleted afterwards.

Rules: this module builds argv lists and reads kubectl's JSON and messages; it runs nothing itself (the
audit orchestration does).  Every failure kubectl or the container can report maps to one line that names
the fix (:func:`explain`).  Standard library only.
"""

from __future__ import annotations

import re
from ..errors import AnalyzerError
from .pods import DEBUG_CONTAINER, PROXY_CONTAINER, Pod

SIDECAR, EPHEMERAL, NODE = "sidecar", "ephemeral", "node"
WAYS = (SIDECAR, EPHEMERAL, NODE)
VIA_CHOICES = ("auto", *WAYS)

EPHEMERAL_NAME = "mtls-audit"  # the ephemeral container's name: found again and reused by the next audit
NODE_CONTAINER = "debugger"  # the container `kubectl debug node/...` creates
DEBUG_IMAGE_REPO = "cr.l5d.io/linkerd/debug"  # Linkerd's debug image: tshark and python3, tagged like the proxy
KEEPALIVE_S = 86400  # an ephemeral container idles a day, so the audits of that day reuse it
NODE_POD_GRACE_S = 120  # a node debug pod outlives its capture by this much if the audit could not delete it
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_CREATED_RE = re.compile(r"Creating debugging pod (\S+) with container (\S+) on node (\S+?)\.?$", re.M)


class CaptureFailed(AnalyzerError):
    """A target could not be captured; the message is one line naming the fix."""


def debug_image(pod: Pod | None, override: str | None, fallback_version: str = "") -> str:
    """``--debug-image``, else Linkerd's debug image at the pod's proxy version (or the cluster's)."""
    if override:
        return override
    version = (pod.proxy_version if pod is not None else "") or fallback_version
    if not version:
        raise CaptureFailed("no linkerd.io/proxy-version on any selected pod to pick the debug image: "
                            f"pass --debug-image (e.g. {DEBUG_IMAGE_REPO}:<your Linkerd version>)")
    return f"{DEBUG_IMAGE_REPO}:{version}"


def target_container(pod: Pod) -> str:
    """The container whose process namespace the ephemeral container joins: the app, not the proxy."""
    skip = {PROXY_CONTAINER, DEBUG_CONTAINER, "linkerd-init"}
    return next((c for c in pod.containers if c not in skip), pod.containers[0] if pod.containers else "")


# -- command lines (kubectl arguments, for kubectl.run) -----------------------------------------------------
def ephemeral_args(pod: Pod, image: str, name: str) -> list[str]:
    args = ["debug", pod.name, "-n", pod.namespace, "--image", image]
    target = target_container(pod)
    if target:
        args += ["--target", target]
    return [*args, "--profile", "netadmin", "--container", name, "--", "sleep", str(KEEPALIVE_S)]


def node_args(node: str, image: str, namespace: str, seconds: int) -> list[str]:
    return ["debug", f"node/{node}", "-n", namespace, "--image", image, "--profile", "netadmin",
            "--", "sleep", str(seconds + NODE_POD_GRACE_S)]


def get_pod_args(name: str, namespace: str) -> list[str]:
    return ["get", "pod", name, "-n", namespace, "-o", "json"]


def delete_pod_args(name: str, namespace: str) -> list[str]:
    return ["delete", "pod", name, "-n", namespace, "--wait=false", "--ignore-not-found"]


def created_node_pod(output: str) -> tuple[str, str]:
    """(pod, container) from ``kubectl debug node/...``'s "Creating debugging pod ... on node ..." line."""
    m = _CREATED_RE.search(output)
    if m is None:
        raise CaptureFailed(f"kubectl debug did not name the pod it created: {output.strip()[:200] or 'no output'}")
    return m.group(1), m.group(2)


# -- reading the API's answers ---------------------------------------------------------------------------
def container_state(pod_doc: dict, name: str, ephemeral: bool) -> tuple[str, str, str] | None:
    """(state, reason, message) of container ``name`` (running / waiting / terminated), None when absent."""
    status = pod_doc.get("status") or {}
    key = "ephemeralContainerStatuses" if ephemeral else "containerStatuses"
    for entry in status.get(key) or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            for state, detail in (entry.get("state") or {}).items():
                detail = detail if isinstance(detail, dict) else {}
                return state, str(detail.get("reason") or ""), str(detail.get("message") or "")
            return "waiting", "", ""
    spec_key = "ephemeralContainers" if ephemeral else "containers"
    if any(c.get("name") == name for c in (pod_doc.get("spec") or {}).get(spec_key) or () if isinstance(c, dict)):
        return "waiting", "ContainerCreating", ""
    return None


def ephemeral_name(pod_doc: dict) -> tuple[str, bool]:
    """(name, exists): the idle audit container to reuse, else the first free name for a new one."""
    for n in range(1, 100):
        name = EPHEMERAL_NAME if n == 1 else f"{EPHEMERAL_NAME}-{n}"
        state = container_state(pod_doc, name, ephemeral=True)
        if state is None:
            return name, False
        if state[0] != "terminated":
            return name, True
    raise CaptureFailed("99 exited mtls-audit ephemeral containers: re-create the pod to clear them")


def phase_problem(pod_doc: dict) -> str | None:
    """Why the pod cannot be captured now (not running, being deleted), or None."""
    meta, status = pod_doc.get("metadata") or {}, pod_doc.get("status") or {}
    phase = status.get("phase") or "?"
    if meta.get("deletionTimestamp"):
        return f"pod is being deleted (phase {phase})"
    if phase != "Running":
        return f"pod is not running (phase {phase})"
    return None


def node_problem(nodes_doc: dict, node: str) -> str | None:
    """Why ``node`` cannot host a capture (absent, not Ready), or None."""
    for item in nodes_doc.get("items") or ():
        if (item.get("metadata") or {}).get("name") != node:
            continue
        ready = next((c for c in (item.get("status") or {}).get("conditions") or ()
                      if isinstance(c, dict) and c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            why = (ready or {}).get("reason") or "no Ready condition"
            return f"node {node} is not ready ({why}): capture its pods with --via ephemeral, or wait for the node"
        return None
    return f"node {node} is not in `kubectl get nodes`"


# -- failures -> one line with the fix --------------------------------------------------------------------
def explain(said: str, way: str, image: str = "") -> str:
    """kubectl's or the container's words -> one line saying what failed and how to fix it."""
    text = said.strip()
    low = text.lower()
    if "ephemeralcontainers" in low and ("forbidden" in low or "cannot" in low):
        return ("ephemeral containers forbidden: grant the verb `patch` on `pods/ephemeralcontainers` "
                "(and `get` on `pods`) to your user, or use --via node or the linkerd-debug sidecar")
    if "ephemeral containers are disabled" in low or "could not find the requested resource" in low:
        return ("Kubernetes too old for ephemeral containers (needs 1.25+, or the EphemeralContainers feature "
                "gate): use --via node or the linkerd-debug sidecar")
    if any(reason.lower() in low for reason in PULL_FAILURES) or "pull" in low and "image" in low:
        return (f"image {image or '?'} could not be pulled ({_last(text)}): pass --debug-image with an image "
                "your nodes can pull that has tshark")
    if "tshark" in low and ("not found" in low or "no such file" in low):
        return (f"no tshark in image {image or '?'}: pass --debug-image with an image that has tshark "
                f"(e.g. {DEBUG_IMAGE_REPO})")
    if ("permission" in low or "not permitted" in low) and ("capture" in low or "socket" in low or "dumpcap" in low):
        fix = ("the netadmin profile grants NET_ADMIN and NET_RAW; a PodSecurity `restricted`/`baseline` "
               "namespace or policy drops them: allow them for the debug container")
        return f"capture not permitted ({_line_with(text, ('not permitted', 'permission'))}): {fix}"
    if "current phase is" in low or "not running" in low or "does not have a host assigned" in low:
        return f"pod not running ({_last(text)}): nothing to capture until it runs again"
    if "forbidden" in low:
        verb = "create on pods (node debug pods)" if way == NODE else "create on pods/exec"
        return f"forbidden ({_last(text)}): grant {verb} to your user"
    return _last(text) or "no error message"


def _line_with(text: str, words: tuple[str, ...]) -> str:
    return next((line.strip() for line in text.splitlines() if any(w in line.lower() for w in words)), _last(text))


def _last(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# -- classifying where the capture is (--analyze-in-pod) ---------------------------------------------------
# Runs in the debug container: reads the .pyz (its size is argv[1]) from the exec stream's standard input,
# keeps it in a temporary file (zipimport needs a path), runs its `capture` writing the pcapng there too,
# and removes both.  Only the flow rows (JSON lines) go back over standard output.  No tar, no kubectl cp.
_BOOTSTRAP = """\
import os, runpy, shutil, signal, sys, tempfile, threading
size, name = int(sys.argv[1]), sys.argv[2]
data = sys.stdin.buffer.read(size)
if len(data) != size:
    sys.exit("mtls-audit: the analyzer arrived short (%d of %d bytes)" % (len(data), size))
def stop_at_eof():  # the audit closes the exec stream's stdin to stop: end the capture, send the rows
    while os.read(0, 4096):  # the raw descriptor: no lock an exiting interpreter would wait for
        pass
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=stop_at_eof, daemon=True).start()
work = tempfile.mkdtemp(prefix="mtls-audit-")
try:
    pyz = os.path.join(work, "mtls-analyzer.pyz")
    with open(pyz, "wb") as f:
        f.write(data)
    sys.argv = [pyz, *sys.argv[3:], "-w", os.path.join(work, name)]
    sys.path.insert(0, pyz)
    runpy.run_path(pyz, run_name="__main__")
finally:
    shutil.rmtree(work, ignore_errors=True)
"""
NO_PYTHON_MARKS = ("python3: not found", '"python3": executable file not found', "python3: no such file")


def in_pod_command(pyz_size: int, capture_name: str, seconds: int, interface: str = "any") -> list[str]:
    """The command that runs the analyzer on the live capture inside the container; flow rows on stdout."""
    return ["python3", "-I", "-S", "-c", _BOOTSTRAP, str(pyz_size), capture_name, "capture", "-i", interface,
            "--seconds", str(seconds), "--view", "flows", "--format", "jsonl", "-q"]


def lacks_python(said: str) -> bool:
    low = said.lower()
    return any(mark.lower() in low for mark in NO_PYTHON_MARKS)
