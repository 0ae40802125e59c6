"""The Dask engine: captures and byte ranges as tasks on a cluster, results reduced where they lie.

Role: ``cluster(address)`` gives a ``distributed.Client`` (an embedded ``LocalCluster`` with one worker
per core, a scheduler's address, or the caller's client); ``Run`` plans the work units, submits them,
follows them with a progress line, joins several captures in keyed parts where the rows lie (``join``),
and then either gathers the rows (``rows``, for a ``Report``) or leaves them on the workers and brings
back only what the output needs (``write_dataset``, ``pairs``, ``edges``, ``tally``).  ``load_stored``
takes stored flow files instead of captures.  ``analyze`` is ``api.analyze(..., dask=...)``.

Rules:
  1. The rows are those of the one-machine run, column for column: the same units and stitching
     (``adapter``), flow ids renumbered across captures in input order from the captures' counts.
  2. A capture whose unit fails (not a capture, unreadable, a worker lost too often) is a failure
     with its error; the others go on.  A byte range that fails, or a seam that does not hold, means
     the file is read again as one unit (``parallel`` Rule 2).
  3. Task keys name the run, the capture and the unit (``mtls-read-<run>-3-1``), so that the
     dashboard says what runs and a lost result is recomputed under the same key.
"""

from __future__ import annotations

import logging
import signal
import os
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from ..errors import AnalyzerError, BackendUnavailable, CaptureFormatError
from ..join import DEFAULT_CLOCK_SKEW_S
from . import adapter, tasks
from .inputs import Input, expand, gzipped

DASK_HINT = "python3 -m pip install 'mtls-analyzer[dask]'"
RANGE_BYTES = 64 * 1024 * 1024  # a file this large or more may be read as byte ranges (one per 64 MiB)
CONNECT_TIMEOUT_S = 10
PROGRESS_EVERY_S = 0.5
JOIN_ROWS = 250_000  # rows per part of the join of several captures, at most (and a part per worker at least)


def _distributed():
    try:
        import distributed
    except ImportError:
        raise BackendUnavailable(f"--dask needs dask.distributed: {DASK_HINT}") from None
    return distributed


@contextmanager
def _sigint_ignored():
    """SIGINT ignored while processes are started here (they inherit it), outside the main thread a no-op."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals are not ours to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


@contextmanager
def cluster(address=None):
    """A client for ``address``: None, True, "" or "local" starts a ``LocalCluster`` (one single-threaded
    worker process per core) and stops it after; ``tcp://host:8786`` connects to that scheduler; a
    ``distributed.Client`` is used as it is and left open (and its logging left alone)."""
    distributed = _distributed()
    if isinstance(address, distributed.Client):
        yield address
        return
    log = logging.getLogger("distributed")
    old = log.level
    quiet = logging.getLogger().getEffectiveLevel() >= logging.WARNING  # without -v, the cluster's own log
    if quiet:  # (closing comms, a task that raised: reported once, as a failed capture) is not the user's news
        log.setLevel(logging.CRITICAL)
    try:
        if address and address is not True and address != "local":
            try:
                client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                raise AnalyzerError(f"--dask {address}: cannot connect to the scheduler: {exc}") from None
            with client:
                yield client
            return
        with _sigint_ignored():  # the worker processes inherit it: Ctrl-C stops this process, which closes them
            local = distributed.LocalCluster(n_workers=_cores(), threads_per_worker=1, processes=True,
                                             dashboard_address=":0",  # any free port: the HTTP server runs anyway
                                             silence_logs=logging.CRITICAL if quiet else logging.INFO)
        with local, distributed.Client(local) as client:
            yield client
    finally:
        log.setLevel(old)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass
class Capture:
    """One input and the futures of its blocks (rows, on the workers) and of its ``adapter.Meta``."""

    index: int
    inp: Input
    blocks: list = field(default_factory=list)
    meta: object = None
    error: str = ""
    flows: int = 0  # counted by ``Run.tally``
    offset: int = 0  # flows of the captures before it


class Run:
    """One analysis on a cluster.  ``read()`` first; then any of the outputs."""

    def __init__(self, client, inputs: list[Input], ports: frozenset[int], range_bytes: int | None = None,
                 progress: Callable[[str], None] | None = None, partitions: int | None = None):
        self.client, self.ports, self.range_bytes, self.progress = client, ports, range_bytes, progress
        self.partitions = partitions  # parts of the join of several captures (None: ``join``'s choice)
        self.joined: list | None = None  # the joined parts' rows (``join``), on the workers
        self.run_id = uuid.uuid4().hex[:8]
        self.captures = [Capture(i, inp) for i, inp in enumerate(inputs)]
        self.units = 0  # read tasks submitted
        self.reads: list = []  # (future, bytes) of the read tasks not yet waited for
        self.held: list = []  # every future of the run (``_submit``)
        self.calls = 0  # outputs asked for (``_call``)
        self.t0 = time.perf_counter()

    def _submit(self, fn, *args, key: str):
        """Submit one task; the run holds its future, so that the scheduler keeps every intermediate
        result a later task may still ask for (and recomputes it, by its key, if a worker is lost)."""
        fut = self.client.submit(fn, *args, key=f"mtls-{key}-{self.run_id}")
        self.held.append(fut)
        return fut

    def _gather(self, futures):
        """Results to the client.  After the reading, a task fails only when a worker cannot write (a
        dataset) or workers kept dying under it: one error line, not a traceback from the cluster."""
        distributed = _distributed()
        try:
            return self.client.gather(futures)
        except OSError as exc:
            raise AnalyzerError(f"a worker cannot write: {exc}") from None
        except distributed.KilledWorker as exc:
            raise AnalyzerError(f"the cluster lost the workers running {exc.task}: {exc}") from None

    def _call(self) -> int:
        """A number for each output asked for: its tasks' keys carry it, as its arguments (the pod list,
        the level, the folder) may differ from an earlier call's."""
        self.calls += 1
        return self.calls

    # -- reading ------------------------------------------------------------------------------------------
    def read(self) -> None:
        """Read every capture; a failed split file is read again whole, then failures are final."""
        probes, workers = {}, self.workers()
        for cap in self.captures:
            cuts = self._cuts(cap.inp, workers)
            probes[cap.index] = self._ranges(cap, cuts) if cuts else self._whole(cap)
        self._wait(probes)
        again = {}
        for cap in self.captures:
            probe = probes[cap.index]
            if len(cap.blocks) > 1 and (probe.status == "error" or not probe.result()):
                again[cap.index] = self._whole(cap, "again")
            elif probe.status == "error":
                cap.error = _error_text(cap.inp, probe.exception())
        self._wait(again)
        for i, probe in again.items():
            if probe.status == "error":
                self.captures[i].error = _error_text(self.captures[i].inp, probe.exception())
        if self.progress:
            self.progress("")

    def _cuts(self, inp: Input, workers: int) -> list:
        """Where to cut ``inp`` into byte ranges ([]: one unit).  A remote capture is cut like a local
        one when it is large enough and its store says its size; its ranges are read with range requests."""
        ranges = self._ranges_for(inp, workers)
        if inp.local:
            return adapter.plan_ranges(inp.location, ranges)
        if ranges < 2 or not inp.size or gzipped(inp):
            return []
        return adapter.plan_ranges(inp.location, ranges, inp.size)

    def _ranges_for(self, inp: Input, workers: int) -> int:
        """How many byte ranges to read ``inp`` in: one per ``range_bytes`` when given; else one per
        ``RANGE_BYTES``, but only as many as there are workers per capture, since stitching a cut costs
        more than it gains once every worker has a capture of its own."""
        if self.range_bytes:
            return -(-inp.size // self.range_bytes)
        return min(-(-inp.size // RANGE_BYTES), -(-workers // len(self.captures)))

    def _whole(self, cap: Capture, again: str = ""):
        part = self._submit(tasks.read, cap.inp, 0, None, self.ports, False, key=f"read{again}-{cap.index}")
        self.units += 1
        self.reads.append((part, cap.inp.size))
        cap.blocks = [self._submit(tasks.rows_of, part, key=f"rows{again}-{cap.index}")]
        cap.meta = self._submit(adapter.meta, part, key=f"meta{again}-{cap.index}")
        return cap.meta

    def _ranges(self, cap: Capture, cuts: list):
        i = cap.index
        parts = [self._submit(tasks.read, cap.inp, a, b, self.ports, j > 0, key=f"read-{i}-{j}")
                 for j, (a, b) in enumerate(zip(cuts, cuts[1:]))]
        self.units += len(parts)
        ends = [cap.inp.size if b is None else b for b in cuts[1:]]
        self.reads += [(p, end - start) for p, start, end in zip(parts, cuts, ends)]
        seams = [self._submit(adapter.seam, p, key=f"seam-{i}-{j}") for j, p in enumerate(parts)]
        stitched = self._submit(tasks.stitch, seams, self.ports, cap.inp, key=f"stitch-{i}")
        cap.blocks = [self._submit(tasks.rows_of, p, self._submit(tasks.renumbering, stitched, j, key=f"ids-{i}-{j}"),
                                   key=f"rows-{i}-{j}") for j, p in enumerate(parts)]
        cap.blocks.append(self._submit(tasks.stitched_rows, stitched, key=f"rows-{i}-seams"))
        cap.meta = self._submit(tasks.stitched_meta, stitched, key=f"meta-{i}")
        return self._submit(tasks.holds, stitched, key=f"holds-{i}")

    def _wait(self, probes: dict) -> None:
        """Until every probe is done, with a progress line: read tasks done/total, their bytes, workers."""
        if not probes:
            return
        distributed = _distributed()
        sizes = {f.key: n for f, n in self.reads}
        reads, self.reads = [f for f, _ in self.reads], []
        done = nbytes = 0
        last = 0.0
        for fut in distributed.as_completed(reads):
            done += 1
            nbytes += sizes[fut.key] if fut.status == "finished" else 0
            if self.progress and (time.perf_counter() - last > PROGRESS_EVERY_S or done == len(reads)):
                last = time.perf_counter()
                self.progress(f"{done}/{len(reads)} read tasks, {_mib(nbytes)} MiB read, {self.workers()} workers"
                              + (f", dashboard {self.dashboard}" if self.dashboard else ""))
        distributed.wait(list(probes.values()))

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    @property
    def dashboard(self) -> str:
        services = self.client.scheduler_info().get("services", {})
        return self.client.dashboard_link if "dashboard" in services else ""

    @property
    def good(self) -> list[Capture]:
        return [c for c in self.captures if not c.error]

    @property
    def failures(self) -> list[str]:
        return [c.error for c in self.captures if c.error]

    # -- small results ---------------------------------------------------------------------------------
    def tally(self, include_localhost: bool) -> dict:
        """Count each capture's flows (and so the flow-id offsets), localhost hops and shown verdicts;
        the captures' metadata.  Only these numbers come back to the client."""
        good, call = self.good, self._call()
        counts = self._gather([[self._submit(tasks.tally, b, include_localhost, key=f"tally{call}-{c.index}-{j}")
                                      for j, b in enumerate(c.blocks)] for c in good])
        metas = self._gather([c.meta for c in good])
        offset, local, verdicts = 0, 0, Counter()
        for cap, per_block in zip(good, counts):
            cap.offset, cap.flows = offset, sum(n for n, _, _ in per_block)
            offset += cap.flows
            local += sum(lo for _, lo, _ in per_block)
            for _, _, v in per_block:
                verdicts.update(v)
        stats = _stats(metas, offset, local)
        stats.update(verdicts=verdicts, failures=self.failures, workers=self.workers(), processes=self.workers(),
                     captures=len(good), elapsed_s=time.perf_counter() - self.t0)
        return stats

    # -- joining captures ------------------------------------------------------------------------------
    def needs_join(self, pods) -> bool:
        """Several captures (or ClusterIPs to resolve): their rows meet in ``join.combine``."""
        services = getattr(pods, "services", None)
        return len(self.good) > 1 or (services is not None and services.has_cluster_ips)

    def join(self, stats: dict, clock_skew: float, pods, include_localhost: bool) -> None:
        """Join the captures into one row per TCP connection, by the one-machine rule, in keyed parts
        (``join.partition``): every block is split by key where it lies, each part of all captures is
        joined by one task, and the parts' rows stay on the workers as the run's blocks from now on.
        Only counters and digests come back; ``stats`` is brought up to date (flows, localhost hops,
        shown verdicts, the join's counters and notes) as ``combine`` would."""
        from ..join import partition
        from ..join.vantage import capture_names

        good, call = self.good, self._call()
        services = getattr(pods, "services", None)
        if services is not None:
            services = self.client.scatter(services, broadcast=True, hash=False)
            self.held.append(services)
        n = self.partitions or max(self.workers(), -(-stats["flows"] // JOIN_ROWS), 1)
        paths = [str(info.path) for info in stats["infos"]]
        names = capture_names(paths)
        splits = [[self._submit(tasks.split, b, c.offset, n, services, None if name == os.path.basename(path) else name,
                                key=f"split{call}-{c.index}-{j}")
                   for j, b in enumerate(c.blocks)] for c, path, name in zip(good, paths, names)]
        digests = [[self._submit(partition.digest, b, key=f"digest{call}-{c.index}-{j}") for j, b in enumerate(c.blocks)]
                   for c in good]
        joined = [self._submit(partition.join_part,
                               [[self._submit(tasks.pick, s, i, key=f"part{call}-{c.index}-{j}-{i}") for j, s in enumerate(cs)]
                                for c, cs in zip(good, splits)], names, clock_skew, services, key=f"join{call}-{i}")
                  for i in range(n)]
        self.joined = [self._submit(tasks.pick, part, 0, key=f"joined{call}-{i}") for i, part in enumerate(joined)]
        counters = self._gather([self._submit(tasks.pick, part, 1, key=f"counters{call}-{i}") for i, part in enumerate(joined)])
        tallies = self._gather([self._submit(tasks.tally, b, include_localhost, key=f"tally{call}-joined-{i}")
                                for i, b in enumerate(self.joined)])
        per_capture = [partition.add_digests(d) for d in self._gather(digests)]
        partition.combine_parts(counters, per_capture, names, stats, clock_skew)
        verdicts: Counter = Counter()
        for _, _, v in tallies:
            verdicts.update(v)
        stats.update(flows=sum(t[0] for t in tallies), excluded_localhost=sum(t[1] for t in tallies), verdicts=verdicts,
                     join_parts=n)

    def load_stored(self, files: list[str], include_localhost: bool) -> int:
        """Stored flow rows (``report.stored``: Parquet files or JSON Lines the workers can open) as the
        run's blocks, one task per file, instead of captures; the rows shown (counted, not gathered)."""
        from ..report.stored import load_flow_rows

        call = self._call()
        self.joined = [self._submit(load_flow_rows, f, key=f"stored{call}-{i}") for i, f in enumerate(files)]
        counts = self._gather([self._submit(tasks.tally, b, True, key=f"tally{call}-stored-{i}")
                               for i, b in enumerate(self.joined)])
        return sum(n - (0 if include_localhost else local) for n, local, _ in counts)

    def _blocks(self) -> list[tuple]:
        """(block, flow-id offset, capture) of every block: the joined parts once joined (ids across all
        captures already; capture None), else each capture's blocks."""
        if self.joined is not None:
            return [(b, 0, None) for b in self.joined]
        return [(b, c.offset, c) for c in self.good for b in c.blocks]

    def rows(self) -> list[dict]:
        """Every flow row, gathered (for a ``Report`` or a flows table), ids across captures."""
        out: list[dict] = []
        for block, offset, _ in self._blocks():
            out += tasks.offset_rows(self._gather(block), offset)
        out.sort(key=lambda r: r["flow_id"])
        return out

    # -- outputs on the cluster ------------------------------------------------------------------------
    def write_dataset(self, out_dir: str, include_localhost: bool) -> int:
        """The flows as a Parquet dataset, one file per block, a folder per capture; rows written.
        ``out_dir`` must be new or empty: files of an earlier run would be read as part of this one."""
        check_dataset_folder(out_dir)
        name, call, folder = os.path.basename, self._call(), os.path.abspath(out_dir)
        if self.joined is not None:  # a joined row goes to the folder of the capture it names
            names = [name(c.inp.location.rstrip("/")) for c in self.captures]
            futs = [self._submit(tasks.write_joined_block, b, include_localhost, folder, names, i, key=f"write{call}-{i}")
                    for i, b in enumerate(self.joined)]
        else:
            futs = [self._submit(tasks.write_block, b, c.offset, include_localhost, folder, c.index,
                                 name(c.inp.location.rstrip("/")), j, key=f"write{call}-{c.index}-{j}")
                    for c in self.good for j, b in enumerate(c.blocks)]
        return sum(self._gather(futs))

    def pairs(self, include_localhost: bool) -> list[dict]:
        rows = self._reduce("pairs", tasks.pair_buckets, (include_localhost,), tasks.reduce_pairs, ())
        return sorted(rows, key=lambda r: (r["client_ip"], r["server_ip"]))

    def edges(self, include_localhost: bool, pods, resource: str, trust_unknown_clients: bool = False) -> list[dict]:
        from ..report.edges import sort_edges

        pods_f = self.client.scatter(pods, broadcast=True, hash=False)
        self.held.append(pods_f)
        return sort_edges(self._reduce(f"edges-{resource}", tasks.edge_buckets, (include_localhost, pods_f, resource),
                                       tasks.reduce_edges, (pods_f, resource, trust_unknown_clients)))

    def _reduce(self, what: str, split, split_args: tuple, reduce, reduce_args: tuple) -> list[dict]:
        """Hash every block's rows into one bucket per worker, reduce each bucket; gather the results."""
        n = max(1, self.workers())
        what = f"{what}{self._call()}"
        blocks = [b for b, _, _ in self._blocks()]
        split_f = [self._submit(split, b, n, *split_args, key=f"{what}-split-{k}") for k, b in enumerate(blocks)]
        reduced = [self._submit(reduce, *reduce_args,
                                *[self._submit(tasks.pick, s, i, key=f"{what}-pick-{k}-{i}") for k, s in enumerate(split_f)],
                                key=f"{what}-reduce-{i}") for i in range(n)]
        return [row for part in self._gather(reduced) for row in part]


def check_dataset_folder(out_dir: str) -> None:
    """A dataset goes into a new or empty folder (an earlier run's files would be read as part of it)."""
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise AnalyzerError(f"{out_dir}: a Parquet dataset is written into a new or empty folder")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise AnalyzerError(f"{out_dir}: cannot write: {exc.strerror or exc}") from None


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f}"


def _error_text(inp: Input, exc: BaseException) -> str:
    """A failed capture's line: our errors name the file already; others get its name and their type."""
    if isinstance(exc, AnalyzerError):
        return str(exc)
    return f"{inp.location}: {type(exc).__name__}: {exc}"


def _stats(metas: list, flows: int, localhost: int) -> dict:
    """The ``Report.stats`` counters of ``api.analyze``, from the captures' metadata."""
    stats: dict = {"packets": 0, "frames_unsupported": Counter(), "not_tcp": [], "warnings": []}
    for m in metas:
        stats["packets"] += m.packets
        stats["frames_unsupported"].update(m.skipped)
        stats["not_tcp"] += m.not_tcp
        stats["warnings"] += m.info.warnings
    stats.update(flows=flows, excluded_localhost=localhost, not_tcp_packets=sum(r["packets"] for r in stats["not_tcp"]),
                 truncated=any(m.info.truncated for m in metas), infos=[m.info for m in metas])
    return stats


def summary(stats: dict, include_localhost: bool) -> str:
    """One line for a Dask run, like ``Report.summary`` with the captures and workers."""
    v, shown = stats["verdicts"], sum(stats["verdicts"].values())
    return (f"{stats['captures']} captures on {stats['workers']} Dask workers: {stats['packets']} packets, {shown} flows "
            f"(tls {v['tls']}, plaintext {v['plaintext']}, unknown {v['unknown']}), {stats['excluded_localhost']} "
            f"localhost flows {'included' if include_localhost else 'excluded'}, {stats['not_tcp_packets']} not-TCP "
            f"packets, {sum(stats['frames_unsupported'].values())} frames not analysed, {stats['elapsed_s']:.2f} s")


def analyze(sources, ports: frozenset[int], include_localhost: bool, pods, address, progress=None,
            engine: str = "native", range_bytes: int | None = None, clock_skew: float = DEFAULT_CLOCK_SKEW_S):
    """``api.analyze(..., dask=address)``: the ``Report`` of the one-machine run, computed on a cluster.
    Raises ``CaptureFormatError`` when every capture fails; failures of some are in ``stats["failures"]``
    and the warnings.  ``progress(line, 0, 0)``: the progress line (read tasks, MiB, workers)."""
    from ..api import Report

    if engine != "native":
        raise AnalyzerError(f"the Dask engine runs the native analysis, not {engine!r}")
    inputs = expand(sources)
    with cluster(address) as client:
        run = Run(client, inputs, ports, range_bytes,
                  (lambda line: progress(line, 0, 0)) if progress else None)
        run.read()
        if not run.good:
            raise CaptureFormatError("; ".join(run.failures))
        stats = run.tally(include_localhost)
        if run.needs_join(pods):
            run.join(stats, clock_skew, pods, include_localhost)
        rows = run.rows()
    infos = stats.pop("infos")
    stats["warnings"] += stats["failures"]
    return Report(rows, include_localhost, stats, infos, pods)
