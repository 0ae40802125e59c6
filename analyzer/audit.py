"""Capture many pods (or their nodes) at once, without restarting them: the orchestration of ``kubectl mtls audit``.

Role: pick the targets (every running pod selected, or the nodes that run them), find the way into each
(:mod:`analyzer.kube.debug`), run at most ``parallel`` captures at a time, each streamed straight to
``DIR/<namespace>/<pod>-<UTC time>.pcapng`` (``DIR/nodes/<node>-...`` for node captures), and record one
manifest entry per target.  A target that cannot be captured gets its reason and the others go on;
:meth:`Audit.interrupt` (Ctrl-C) stops every running capture, keeps what was streamed, and cancels the
targets not started yet.

Rules: bounded resources whatever the number of targets - ``parallel`` worker threads, each owning one
kubectl process and one file; nothing of a capture is held in memory.  Analysis, rendering and gates are
the caller's (``kubectl_mtls.py``).  No click here.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .errors import AnalyzerError, BackendUnavailable
from .kube import debug, kubectl
from .kube.debug import EPHEMERAL, NODE, SIDECAR, CaptureFailed
from .kube.podlist import parse_pods_json
from .kube.pods import DEBUG_CONTAINER, Pod, merge_pod_lists

NODES_FOLDER = "nodes"  # DIR/nodes/<node>-<time>.pcapng
START_TIMEOUT_S = 120.0  # a debug container has this long to pull its image and start
POLL_S = 0.5
PROGRESS_EVERY_S = 0.5
DEFAULT_PARALLEL = 8


@dataclass(frozen=True, slots=True)
class Target:
    """One capture to make: a pod (sidecar or ephemeral container) or a node."""

    way: str  # sidecar | ephemeral | node
    folder: str  # the pod's namespace, or NODES_FOLDER
    name: str  # pod or node name
    image: str = ""  # debug image (ephemeral, node)
    pod: Pod | None = None
    doc: dict | None = field(default=None, compare=False)  # the pod as listed (its ephemeral containers then)

    @property
    def label(self) -> str:
        return f"node/{self.name}" if self.way == NODE else f"{self.folder}/{self.name}"


@dataclass
class Capture:
    """A manifest entry: what was captured for one target, or why not."""

    target: str  # namespace/pod or node/NAME
    vantage: str  # what the capture sees: "pod" (its network namespace) or "node" (every pod of the node)
    way: str
    image: str = ""
    path: str = ""  # relative to the output directory; "" when nothing was captured
    rows: str = ""  # --analyze-in-pod: flow rows (JSON lines) file, relative
    start: str = ""
    stop: str = ""
    bytes: int = 0
    packets: int | None = None  # filled in by the analysis
    flows: int | None = None
    exit_status: int | None = None
    error: str = ""
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.path or self.rows)


@dataclass
class Options:
    seconds: int
    output_dir: Path
    parallel: int = DEFAULT_PARALLEL
    context: str | None = None
    node_namespace: str = "default"  # where node debug pods are created
    pyz: bytes | None = None  # --analyze-in-pod: the analyzer sent into each container
    stamp: str = ""  # UTC time in the capture file names (default: when the Audit is made)


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def file_stamp() -> str:
    """The UTC time as it goes into file and folder names."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


# -- choosing targets ----------------------------------------------------------------------------------------
def select(pods: Iterable[Pod], namespace: str | None, chosen: set[tuple[str, str]] | None) -> tuple[list[Pod], list[Capture]]:
    """Running pods of ``namespace`` (None: all) and, when a selector chose them, in ``chosen`` (ns, name).

    Pods selected but not running are returned as skipped entries, so the manifest says why.
    """
    running, skipped = [], []
    for pod in sorted(pods, key=lambda p: (p.namespace, p.name)):
        if namespace is not None and pod.namespace != namespace:
            continue
        if chosen is not None and (pod.namespace, pod.name) not in chosen:
            continue
        if pod.host_network:
            continue  # a host-network pod is its node: a node capture covers it
        if pod.phase == "Running" and pod.ended is None:
            running.append(pod)
        else:
            skipped.append(Capture(pod.ref, "pod", "", error=f"pod not running (phase {pod.phase or '?'})"))
    return running, skipped


def plan(pods: list[Pod], via: str, debug_image: str | None, all_pods: Iterable[Pod],
         docs: dict[tuple[str, str], dict] | None = None) -> tuple[list[Target], list[Capture]]:
    """The targets for ``--via`` (auto: the sidecar where there is one, else an ephemeral container).

    ``docs``: the listed pod objects by (namespace, name), so finding an ephemeral container to reuse costs
    no further API call."""
    docs = docs or {}
    versions = Counter(p.proxy_version for p in all_pods if p.proxy_version)
    fallback = versions.most_common(1)[0][0] if versions else ""
    targets, failed = [], []
    if via == NODE:
        by_node: dict[str, Pod] = {}
        for pod in pods:
            if pod.node:
                by_node.setdefault(pod.node, pod)
            else:
                failed.append(Capture(pod.ref, "pod", NODE, error="pod has no node (not scheduled)"))
        for node, pod in sorted(by_node.items()):
            try:
                targets.append(Target(NODE, NODES_FOLDER, node, debug.debug_image(pod, debug_image, fallback)))
            except CaptureFailed as exc:
                failed.append(Capture(f"node/{node}", "node", NODE, error=str(exc)))
        return targets, failed
    for pod in pods:
        if via in ("auto", SIDECAR) and pod.has_container(DEBUG_CONTAINER):
            targets.append(Target(SIDECAR, pod.namespace, pod.name, pod=pod))
        elif via == SIDECAR:
            failed.append(Capture(pod.ref, "pod", SIDECAR, error=f"no {DEBUG_CONTAINER} container: use --via "
                                  "ephemeral (no restart) or add the config.linkerd.io/enable-debug-sidecar annotation"))
        else:
            try:
                image = debug.debug_image(pod, debug_image, fallback)
                targets.append(Target(EPHEMERAL, pod.namespace, pod.name, image, pod, docs.get((pod.namespace, pod.name))))
            except CaptureFailed as exc:
                failed.append(Capture(pod.ref, "pod", EPHEMERAL, error=str(exc)))
    return targets, failed


# -- running the captures -------------------------------------------------------------------------------------
class Audit:
    """Runs the targets' captures, ``options.parallel`` at a time; safe to :meth:`interrupt` from another thread."""

    def __init__(self, options: Options, nodes_doc: dict | None = None) -> None:
        self.options = options
        self.nodes_doc = nodes_doc or {}
        self.stamp = options.stamp or file_stamp()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, kubectl.RemoteCapture | None] = {}
        self._starts: dict[str, str] = {}
        self.done = self.failed = 0

    # progress ---------------------------------------------------------------------------------------------
    def status(self, total: int, started: float) -> str:
        with self._lock:
            running = list(self._running.values())
            done, failed = self.done, self.failed
        size = 0
        for run in running:
            if run is not None:
                try:
                    size += os.path.getsize(run.path)
                except OSError:
                    pass
        queued = total - done - failed - len(running)
        per = self.options.seconds
        batches = -(-queued // max(1, self.options.parallel))
        left = max(0.0, per - (time.monotonic() - started) % per) + batches * per if queued or running else 0
        return (f"audit: {done} done, {len(running)} running, {failed} failed, {queued} queued; "
                f"{_size(size)} streaming; ~{left:.0f} s left (Ctrl-C stops and reports)")

    # the pool ---------------------------------------------------------------------------------------------
    def run(self, targets: list[Target], progress: Callable[[str], None] | None = None) -> list[Capture]:
        """Capture every target; returns one entry per target, in order.  KeyboardInterrupt stops them all."""
        if not targets:
            return []
        started = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=max(1, min(self.options.parallel, len(targets))),
                                  thread_name_prefix="audit")
        futures: list[Future] = [pool.submit(self._one, t) for t in targets]
        try:
            pending = set(futures)
            while pending:
                _done, pending = wait(pending, timeout=PROGRESS_EVERY_S)
                if progress is not None:
                    progress(self.status(len(targets), started))
        except KeyboardInterrupt:
            self.interrupt()
            wait(futures)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        out = []
        for target, future in zip(targets, futures):
            if future.cancelled():
                out.append(self._entry(target, error="not started: the audit was interrupted"))
            else:
                out.append(future.result())
        return out

    def interrupt(self) -> None:
        """Stop every running capture (what was streamed stays) and start no new one."""
        self.stopping.set()
        with self._lock:
            runs = [r for r in self._running.values() if r is not None]
        for run in runs:
            run.stop()

    def _entry(self, target: Target, **kw) -> Capture:
        return Capture(target.label, "node" if target.way == NODE else "pod", target.way, target.image, **kw)

    def _one(self, target: Target) -> Capture:
        entry = self._entry(target)
        if self.stopping.is_set():
            entry.error = "not started: the audit was interrupted"
            return entry
        with self._lock:
            self._running[target.label] = None
        cleanup: Callable[[], None] | None = None
        try:
            pod, namespace, container, cleanup = self._way_in(target, entry)
            self._stream(target, entry, pod, namespace, container)
        except CaptureFailed as exc:
            entry.error = str(exc)
        finally:
            if cleanup is not None:
                cleanup()
            with self._lock:
                self._running.pop(target.label, None)
                if entry.ok:
                    self.done += 1
                else:
                    self.failed += 1
        return entry

    # ways in ----------------------------------------------------------------------------------------------
    def _kubectl(self, args: list[str], target: Target) -> bytes:
        try:
            return kubectl.run(args, self.options.context)
        except BackendUnavailable as exc:
            raise CaptureFailed(debug.explain(str(exc), target.way, target.image)) from None

    def _pod_doc(self, name: str, namespace: str, target: Target) -> dict:
        text = self._kubectl(debug.get_pod_args(name, namespace), target)
        try:
            return json.loads(text)
        except ValueError:
            raise CaptureFailed(f"kubectl get pod {name} did not print JSON") from None

    def _way_in(self, target: Target, entry: Capture):
        """(pod, namespace, container, cleanup) to exec the capture in, creating the debug container if needed."""
        if target.way == SIDECAR:
            return target.name, target.folder, DEBUG_CONTAINER, None
        if target.way == EPHEMERAL:
            doc = target.doc or self._pod_doc(target.name, target.folder, target)
            problem = debug.phase_problem(doc)
            if problem:
                raise CaptureFailed(debug.explain(problem, EPHEMERAL))
            name, exists = debug.ephemeral_name(doc)
            if not exists:
                try:
                    self._kubectl(debug.ephemeral_args(target.pod, target.image, name), target)  # type: ignore[arg-type]
                except CaptureFailed as exc:
                    if "already exists" not in str(exc):
                        raise
                    exists = True  # another audit added it meanwhile: share it
            if exists:
                entry.note = f"reused ephemeral container {name}"
            self._wait_running(target, target.name, target.folder, name, ephemeral=True)
            return target.name, target.folder, name, None
        problem = debug.node_problem(self.nodes_doc, target.name)
        if problem:
            raise CaptureFailed(problem)
        ns = self.options.node_namespace
        out = self._kubectl(debug.node_args(target.name, target.image, ns, self.options.seconds), target)
        pod, container = debug.created_node_pod(out.decode("utf-8", "replace"))
        entry.note = f"node debug pod {ns}/{pod}, deleted afterwards"

        def delete() -> None:
            try:
                kubectl.run(debug.delete_pod_args(pod, ns), self.options.context)
            except BackendUnavailable as exc:
                entry.note = f"node debug pod {ns}/{pod} NOT deleted: {exc}"
        try:
            self._wait_running(target, pod, ns, container, ephemeral=False)
        except CaptureFailed:
            delete()
            raise
        return pod, ns, container, delete

    def _wait_running(self, target: Target, pod: str, namespace: str, container: str, ephemeral: bool) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            state = debug.container_state(self._pod_doc(pod, namespace, target), container, ephemeral)
            if state is not None and state[0] == "running":
                return
            if state is not None:
                kind, reason, message = state
                if reason in debug.PULL_FAILURES:
                    raise CaptureFailed(debug.explain(f"{reason}: {message}", target.way, target.image))
                if kind == "terminated":
                    raise CaptureFailed(f"debug container {container} exited ({reason or 'no reason'}: {message})")
            if self.stopping.is_set():
                raise CaptureFailed("not started: the audit was interrupted")
            if time.monotonic() > deadline:
                raise CaptureFailed(f"debug container {container} not running after {START_TIMEOUT_S:.0f} s "
                                    f"({state[1] if state else 'not created'}): check `kubectl -n {namespace} describe pod {pod}`")
            time.sleep(POLL_S)

    # streaming -------------------------------------------------------------------------------------------
    def _stream(self, target: Target, entry: Capture, pod: str, namespace: str, container: str) -> None:
        folder = self.options.output_dir / target.folder
        folder.mkdir(parents=True, exist_ok=True)
        base = f"{target.name}-{self.stamp}"
        if self.options.pyz is not None:
            command = debug.in_pod_command(len(self.options.pyz), base + ".pcapng", self.options.seconds)
            run = self._start(kubectl.exec_argv(pod, namespace, container, command, self.options.context, stdin=True),
                              folder / (base + ".flows.jsonl"), target, stdin=self.options.pyz, magics=None)
            try:
                self._finish(run, entry, target, "rows")
                return
            except CaptureFailed:
                if not debug.lacks_python(run.stderr_tail):
                    raise
            entry.note = "no python3 in the image: packets streamed back and analysed here instead"
            (folder / (base + ".flows.jsonl")).unlink(missing_ok=True)
            entry.rows = ""
        command = kubectl.tshark_command(self.options.seconds)
        run = self._start(kubectl.exec_argv(pod, namespace, container, command, self.options.context),
                          folder / (base + ".pcapng"), target)
        self._finish(run, entry, target, "path")

    def _start(self, argv: list[str], path: Path, target: Target, **kw) -> kubectl.RemoteCapture:
        if self.stopping.is_set():
            raise CaptureFailed("not started: the audit was interrupted")
        self._starts[target.label] = utc(time.time())
        try:
            run = kubectl.RemoteCapture(argv, path, target.label, **kw)
        except BackendUnavailable as exc:
            raise CaptureFailed(str(exc)) from None
        with self._lock:
            self._running[target.label] = run
        if self.stopping.is_set():
            run.stop()
        return run

    def _finish(self, run: kubectl.RemoteCapture, entry: Capture, target: Target, slot: str) -> None:
        try:
            entry.bytes = run.wait(self.options.seconds + kubectl.STOP_GRACE_S)
        except BackendUnavailable:
            entry.exit_status = run.proc.returncode
            entry.start, entry.stop = self._starts.get(target.label, ""), utc(time.time())
            raise CaptureFailed(debug.explain(run.stderr_tail, target.way, target.image)) from None
        finally:
            with self._lock:
                self._running[target.label] = None
        entry.exit_status = run.proc.returncode
        entry.start, entry.stop = self._starts.get(target.label, ""), utc(time.time())
        setattr(entry, slot, str(Path(run.path).relative_to(self.options.output_dir)))
        if run.stopped:
            entry.note = (entry.note + "; " if entry.note else "") + "stopped early (interrupted)"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


# -- the manifest ------------------------------------------------------------------------------------------------
@dataclass
class Manifest:
    command: list[str]
    via: str
    seconds: int
    started: str
    stopped: str = ""
    interrupted: bool = False
    lists: dict = field(default_factory=dict)  # pods/services before and after: file names or errors
    captures: list[Capture] = field(default_factory=list)

    def write(self, output_dir: Path) -> Path:
        path = output_dir / "manifest.json"
        doc = {**asdict(self), "captures": [asdict(c) for c in self.captures]}
        path.write_text(json.dumps(doc, indent=2) + "\n")
        return path


def save_list(output_dir: Path, name: str, args: list[str], context: str | None, lists: dict) -> str | None:
    """Run ``kubectl ARGS`` (a ``get ... -o json``), save its output as ``DIR/NAME``; the error if it fails."""
    try:
        text = kubectl.run(args, context).decode("utf-8", "replace")
    except BackendUnavailable as exc:
        lists[name] = {"error": str(exc)}
        return None
    (output_dir / name).write_text(text)
    lists[name] = {"file": name}
    return text


def read_rows(output_dir: Path, captures: list[Capture]) -> list[list[dict]]:
    """The flow rows that came back from each ``--analyze-in-pod`` target (one list per target)."""
    from .report.export import read_jsonl

    parts: list[list[dict]] = []
    for entry in captures:
        if entry.rows:
            path = output_dir / entry.rows
            with open(path, encoding="utf-8") as f:
                got = read_jsonl(f, str(path))
            entry.flows = len(got)
            parts.append(got)
    return parts



# -- one audit, end to end ---------------------------------------------------------------------------------------
@dataclass
class Request:
    """What ``kubectl mtls audit`` was asked (namespace None: the context's, unless all_namespaces)."""

    namespace: str | None
    all_namespaces: bool
    selector: str | None
    context: str | None
    via: str
    debug_image: str | None
    seconds: int
    parallel: int
    output_dir: Path | None
    analyze_in_pod: bool
    command: list[str]


@dataclass
class Result:
    output_dir: Path
    manifest: Manifest
    pods_text: str  # the pod lists before and after, merged
    notes: list[str] = field(default_factory=list)

    @property
    def captured(self) -> list[Capture]:
        return [c for c in self.manifest.captures if c.ok]

    @property
    def paths(self) -> list[str]:
        return [str(self.output_dir / c.path) for c in self.captured if c.path]

    @property
    def pods(self):
        return parse_pods_json(self.pods_text, f"{self.output_dir / 'pods.json'}")

    def analyse(self):
        """One report over every capture (and the rows classified in the pods); packets per capture filled in."""
        from .api import analyze

        parts = read_rows(self.output_dir, self.captured)
        report = analyze(self.paths, pods=self.pods)  # no paths (every target classified in its pod): no rows
        frames = {str(info.path): info.frames for info in report.captures}
        for entry in self.captured:
            if entry.path:
                entry.packets = frames.get(str(self.output_dir / entry.path))
        if parts:
            self.notes.append(f"{sum(map(len, parts))} flows were classified inside the pods (--analyze-in-pod)")
            self._join(report, parts)
        self.manifest.write(self.output_dir)
        return report

    def _join(self, report, parts: list[list[dict]]) -> None:
        """The rows classified in the pods joined with each other and with the packet captures' (a
        connection between two captured pods came back from both): each connection once."""
        from .join import DEFAULT_CLOCK_SKEW_S, combine

        stats = report.stats
        rows_in, dnat = stats.get("rows_in", len(report.all_flow_rows)), stats.get("dnat_joined", 0)
        names = ["packet captures"] + [f"rows of {entry.target}" for entry in self.captured if entry.rows]
        rows = combine([report.all_flow_rows, *parts], names, stats, stats.get("clock_skew_s", DEFAULT_CLOCK_SKEW_S),
                       getattr(report.pods, "services", None))
        rows.sort(key=lambda r: r["flow_id"])
        report.all_flow_rows = rows
        stats.update(captures=len(self.paths) + len(parts), flows=len(rows), rows_in=rows_in + sum(map(len, parts)),
                     dnat_joined=dnat + stats.get("dnat_joined", 0))
        stats["rows_joined"] = stats["rows_in"] - len(rows)


def run_audit(request: Request, progress: Callable[[str], None] | None = None,
              say: Callable[[str], None] | None = None) -> Result:
    """Lists, targets, captures, manifest: everything before the analysis.  Raises AnalyzerError on bad input."""
    from .pyz import build_bytes

    say = say or (lambda _text: None)
    context = request.context
    namespace = None if request.all_namespaces else (request.namespace or kubectl.current_namespace(context))
    stamp = file_stamp()
    output_dir = request.output_dir or Path("captures") / f"audit-{stamp}"
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(request.command, request.via, request.seconds, utc(time.time()))
    listing = ["get", kubectl.AUDIT_KINDS, "-A", "-o", "json"]  # one List: pods, and who each ClusterIP is
    before = save_list(output_dir, "pods-before.json", listing, context, manifest.lists)
    if before is None:
        raise AnalyzerError(manifest.lists["pods-before.json"]["error"])
    index = parse_pods_json(before, f"kubectl get {kubectl.AUDIT_KINDS} -A -o json")
    chosen = None
    if request.selector:
        text = kubectl.run(["get", "pods", *kubectl.scope_args(namespace, request.all_namespaces), "-l",
                            request.selector, "-o", "json"], context)
        chosen = {(p.namespace, p.name) for p in parse_pods_json(text.decode("utf-8", "replace"), "kubectl get pods -l").pods}
    pods, skipped = select(index.pods, namespace, chosen)
    where = "any namespace" if namespace is None else f"namespace {namespace!r}"
    if not pods:
        raise AnalyzerError(f"no running pod selected in {where}" + (f" with -l {request.selector}" if chosen is not None else ""))
    docs = {((item.get("metadata") or {}).get("namespace"), (item.get("metadata") or {}).get("name")): item
            for item in json.loads(before).get("items") or () if isinstance(item, dict) and item.get("kind", "Pod") == "Pod"}
    targets, failed = plan(pods, request.via, request.debug_image, index.pods, docs)
    nodes_doc = None
    if request.via == NODE:
        nodes_doc = json.loads(kubectl.run(["get", "nodes", "-o", "json"], context))
    options = Options(request.seconds, output_dir, request.parallel, context, namespace or "default",
                      build_bytes() if request.analyze_in_pod else None, stamp)
    sweep = Audit(options, nodes_doc)
    ways = Counter(t.way for t in targets)
    say(f"audit of {len(pods)} running pods in {where}: {len(targets)} captures of {request.seconds} s "
        f"({', '.join(f'{n} {w}' for w, n in sorted(ways.items()))}), at most {request.parallel} at once -> {output_dir}")
    captures = sweep.run(targets, progress)
    manifest.interrupted = sweep.stopping.is_set()
    manifest.captures = skipped + failed + captures
    manifest.stopped = utc(time.time())
    after = save_list(output_dir, "pods-after.json", listing, context, manifest.lists)
    merged = merge_pod_lists(before, after) if after is not None else before
    (output_dir / "pods.json").write_text(merged)
    manifest.write(output_dir)
    result = Result(output_dir, manifest, merged)
    if manifest.interrupted:
        result.notes.append("interrupted: the captures were stopped early; what was captured is analysed")
    return result
