"""Run the ``kubectl`` binary: fetch pod lists, build ``kubectl exec`` command lines.

Rules: kubectl is an external tool like tshark.  Missing, failing or hanging, it raises
:class:`~analyzer.errors.BackendUnavailable` with one line saying what was run and what kubectl said;
nothing here retries or guesses.  ``$KUBECTL`` overrides the binary (tests point it, or ``PATH``, at a
stand-in).  Standard library only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from typing import Sequence

from ..errors import BackendUnavailable
from .podlist import load_pods, parse_pods_json
from .pods import PodIndex

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


AUDIT_KINDS = "pods,services,endpointslices"  # one List: who an IP is, and which ClusterIP is which Service


def get_pods_text(context: str | None = None, namespace: str | None = None, all_namespaces: bool = False,
                  kinds: str = "pods") -> str:
    """``kubectl get KINDS -o json`` output (the raw JSON text, e.g. to save beside a capture)."""
    out = run(["get", kinds, *scope_args(namespace, all_namespaces), "-o", "json"], context)
    return out.decode("utf-8", "replace")


def get_pods(context: str | None = None, namespace: str | None = None, all_namespaces: bool = False) -> PodIndex:
    scope = " ".join(scope_args(namespace, all_namespaces))
    return parse_pods_json(get_pods_text(context, namespace, all_namespaces, AUDIT_KINDS),
                           f"kubectl get {AUDIT_KINDS} {scope} -o json")


def current_namespace(context: str | None = None) -> str:
    """The kubeconfig context's namespace, as ``kubectl`` without ``-n`` would use it; else ``default``."""
    try:
        out = run(["config", "view", "--minify", "-o", "jsonpath={..namespace}"], context)
    except BackendUnavailable:
        return "default"
    return out.decode("utf-8", "replace").strip() or "default"


def exec_argv(pod: str, namespace: str, container: str, command: Sequence[str], context: str | None = None,
              stdin: bool = False) -> list[str]:
    """``kubectl exec`` argv running ``command`` in ``container`` of ``namespace/pod``, stdout streamed back
    (``stdin``: and our standard input streamed in, ``-i``)."""
    interactive = ["-i"] if stdin else []
    return [binary(), *global_args(context), "exec", *interactive, "-n", namespace, pod, "-c", container, "--", *command]


def load_pod_list(pods_file=None, use_kubectl: bool = False, context: str | None = None,
                  namespace: str | None = None, all_namespaces: bool = False) -> PodIndex | None:
    """The pod list the CLI options ask for: a file, kubectl, or None.  Both at once is a usage error."""
    if pods_file is not None and use_kubectl:
        raise ValueError("give --pods FILE or --kubectl, not both")
    if pods_file is not None:
        return load_pods(pods_file)
    if use_kubectl:
        return get_pods(context, namespace, all_namespaces)
    return None


# -- streaming a capture out of a pod ---------------------------------------------------------------------
PCAP_MAGICS = (b"\x0a\x0d\x0d\x0a", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
STOP_GRACE_S = 30.0  # after --seconds: tshark's own duration stop, kubectl's stream drain
STDERR_LINES_KEPT = 50  # of tshark's and kubectl's stderr: enough for the error, bounded for long runs


def tshark_command(seconds: int, interface: str = "any", snaplen: int | None = None) -> list[str]:
    """What runs in the debug container: capture ``seconds`` then stop, pcapng to standard output."""
    command = ["tshark", "-i", interface, "-a", f"duration:{seconds}", "-q", "-w", "-"]
    if snaplen:
        command[1:1] = ["-s", str(snaplen)]
    return command


class RemoteCapture:
    """One ``kubectl exec ... -- tshark -w -`` whose standard output is written to ``path`` as it arrives.

    ``on_line(pod_ref, line)`` receives tshark's (and kubectl's) stderr lines, e.g. "Capturing on 'any'".
    """

    def __init__(self, argv: list[str], path, label: str, on_line=None, stdin: bytes | None = None,
                 magics: tuple[bytes, ...] | None = PCAP_MAGICS) -> None:
        import collections
        import threading

        self.label, self.path, self.lines = label, path, collections.deque(maxlen=STDERR_LINES_KEPT)
        self.stopped = False
        self._on_line, self._magics = on_line, magics
        self._out = open(path, "wb")  # noqa: SIM115 - closed in wait()
        try:
            # Its own session: a terminal's Ctrl-C reaches only us, and stop() ends every capture the same way.
            self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.PIPE, start_new_session=True,
                                         stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE)
        except OSError as exc:
            self._out.close()
            raise BackendUnavailable(f"{label}: kubectl exec could not run: {exc.strerror or exc}") from None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if stdin is not None:  # e.g. a program sent into the container over the exec stream
            threading.Thread(target=self._feed, args=(stdin,), daemon=True).start()

    def _feed(self, data: bytes) -> None:
        """Send ``data``; stdin stays open: closing it is how :meth:`stop` asks the program to finish."""
        try:
            self.proc.stdin.write(data)  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError, ValueError):
            pass  # the remote side exited first (its stderr says why), or stop() closed stdin already

    def _close_stdin(self) -> bool:
        """Close the exec stream's stdin (the remote program sees its end); False when there is none."""
        if self.proc.stdin is None:
            return False
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        return True

    def _read(self) -> None:
        for raw in self.proc.stderr:  # type: ignore[union-attr]
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            if self._on_line is not None:
                self._on_line(self.label, line)

    @property
    def said(self) -> str:
        """The last non-empty stderr line (kubectl's or the remote command's)."""
        return next((line for line in reversed(self.lines) if line.strip()), "no error message")

    @property
    def stderr_tail(self) -> str:
        """The last stderr lines kept (tshark's error can sit above its advice line)."""
        return "\n".join(self.lines)

    def stop(self) -> None:
        """Ask kubectl to stop (Ctrl-C or an overrun); what was streamed so far stays in the file.

        A program sent over stdin is asked by closing stdin (kubectl passes the end on; the program stops
        its capture and sends what it has); otherwise SIGINT, as a terminal's Ctrl-C would: kubectl ends
        the stream, a local tshark finishes its file."""
        self.stopped = True
        if self.proc.poll() is None and not self._close_stdin():
            self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float) -> int:
        """Wait for the end of the stream; raise ``BackendUnavailable`` if nothing usable came back."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if self._close_stdin():  # overdue: ask the program to finish and send what it has
                try:
                    self.proc.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_stdin()
        self._reader.join(timeout=5)
        self._out.close()
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            head = f.read(4)
        failed = self.proc.returncode != 0 and not self.stopped
        unusable = self._magics is not None and (size == 0 or head not in self._magics)  # rows may be none
        if failed or unusable:
            raise BackendUnavailable(f"{self.label}: capture failed (kubectl exit {self.proc.returncode}, "
                                     f"{size} bytes streamed): {self.said}")
        return size
