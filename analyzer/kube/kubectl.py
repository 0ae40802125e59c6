"""Run the ``kubectl`` binary: fetch pod lists, build ``kubectl exec`` command lines.

Rules: kubectl is an external tool like tshark.  Missing, failing or hanging, it raises
:class:`~analyzer.errors.BackendUnavailable` with one line saying what was run and what kubectl said;
nothing here retries or guesses.  ``$KUBECTL`` overrides the binary (tests point it, or ``PATH``, at a
stand-in).  Standard library only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Sequence

from ..errors import BackendUnavailable
from .pods import PodIndex, parse_pods_json

KUBECTL_ENV = "KUBECTL"
GET_TIMEOUT_S = 60.0
INSTALL_HINT = "install kubectl (https://kubernetes.io/docs/tasks/tools/) or pass --pods FILE"


def binary() -> str:
    """Path of the kubectl to run: ``$KUBECTL`` or ``kubectl`` on ``PATH``."""
    name = os.environ.get(KUBECTL_ENV) or "kubectl"
    path = shutil.which(name)
    if path is None:
        raise BackendUnavailable(f"kubectl not found ({name!r} is not on PATH): {INSTALL_HINT}")
    return path


def global_args(context: str | None = None) -> list[str]:
    return ["--context", context] if context else []


def scope_args(namespace: str | None = None, all_namespaces: bool = False) -> list[str]:
    """``-A`` wins over ``-n``; neither -> every namespace (peers of a flow can live anywhere)."""
    if all_namespaces or not namespace:
        return ["-A"]
    return ["-n", namespace]


def run(args: Sequence[str], context: str | None = None, timeout: float = GET_TIMEOUT_S) -> bytes:
    """Run ``kubectl [--context C] ARGS`` and return its standard output."""
    argv = [binary(), *global_args(context), *args]
    shown = "kubectl " + " ".join([*global_args(context), *args])
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BackendUnavailable(f"`{shown}` did not answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise BackendUnavailable(f"`{shown}` could not run: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        said = lines[-1] if lines else "no error message"
        raise BackendUnavailable(f"`{shown}` failed (exit {proc.returncode}): {said}")
    return proc.stdout


def get_pods_text(context: str | None = None, namespace: str | None = None, all_namespaces: bool = False) -> str:
    """``kubectl get pods -o json`` output (the raw JSON text, e.g. to save beside a capture)."""
    out = run(["get", "pods", *scope_args(namespace, all_namespaces), "-o", "json"], context)
    return out.decode("utf-8", "replace")


def get_pods(context: str | None = None, namespace: str | None = None, all_namespaces: bool = False) -> PodIndex:
    scope = " ".join(scope_args(namespace, all_namespaces))
    return parse_pods_json(get_pods_text(context, namespace, all_namespaces), f"kubectl get pods {scope} -o json")


def exec_argv(pod: str, namespace: str, container: str, command: Sequence[str], context: str | None = None) -> list[str]:
    """``kubectl exec`` argv running ``command`` in ``container`` of ``namespace/pod``, stdout streamed back."""
    return [binary(), *global_args(context), "exec", "-n", namespace, pod, "-c", container, "--", *command]


def load_pod_list(pods_file=None, use_kubectl: bool = False, context: str | None = None,
                  namespace: str | None = None, all_namespaces: bool = False) -> PodIndex | None:
    """The pod list the CLI options ask for: a file, kubectl, or None.  Both at once is a usage error."""
    from .pods import load_pods

    if pods_file is not None and use_kubectl:
        raise ValueError("give --pods FILE or --kubectl, not both")
    if pods_file is not None:
        return load_pods(pods_file)
    if use_kubectl:
        return get_pods(context, namespace, all_namespaces)
    return None
