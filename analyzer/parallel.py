"""One capture file read by several processes at once: a byte range each, flows stitched at the seams.

Role: ``analyze(jobs=N)`` on a plain capture file.  The file is cut into N byte ranges; each range is
read (``CaptureReader(start, stop)``), decoded and inspected by its own process through the same
``pipeline.run`` and ``FlowTable`` as one pass, and the parent joins the pieces of connections that cross a
cut.  Python runs one core per process, so this is how a 2-core sidecar or laptop reads at twice the
rate (``benchmarks/README.md``).

Rules:
  1. The result is the one-pass result.  A later range sees a crossing connection from the middle; its
     piece (the first flow on its tuple in that range that one pass would have put into the earlier
     flow: ``Flow.opener``, ``Flow.is_reuse``) is added to the earlier flow (``Flow.absorb``), which
     keeps its flow id and its payload inspection.  When that inspection still wanted bytes at the cut,
     the parent reads them from the later range for that flow only (``_rescan``), so verdicts rest on
     the same bytes as in one pass; the holes the piece met are taken over from its ``Track``.
  2. Any doubt means one pass (``analyze_file`` returns None): a range whose resync does not meet the
     previous range's end offset and pcapng section, damage before the last range, interfaces that
     change mid-file, a range's process that fails, or more than ``MAX_CANDIDATES`` pieces in a range.
  3. Where one pass depends on when its table last looked for idle flows (``EVICT_EVERY`` packets), a
     range uses the idle limits themselves (``_continues``).  ``gaps`` (sequence holes) is counted
     from the same segments: where a piece's own count cannot be the one of one pass (a reordered
     segment at its start, an inspection that stopped with reordered bytes pending), ``_rescan``
     follows that direction again from where the earlier flow had got to (``_replayed``).
  4. Memory per process is one pass's over its range, plus the pieces it may hand back, stripped of
     payload state (``_strip``): flows first seen mid-stream, and those a bare SYN opened within
     ``SYN_RETRY_S`` of its start; then only those on tuples still live at its cut are sent.
"""

from __future__ import annotations

import logging
import os
import signal

from .capture.decode import IPPROTO_TCP, decode_frame
from .capture.inputs import is_regular_file
from .capture.reader import GZIP_MAGIC, CaptureReader
from .errors import CaptureFormatError
from .flows.table import CLOSED_IDLE_S, IDLE_S, TH_ACK, TH_SYN, Flow, flow_key, follow_seq
from .report.rowstore import RowStore
from .pipeline import Part, context_for, fewer_gc_passes, flow_row, read_part, rows_of

log = logging.getLogger(__name__)

MIN_BYTES = 64 * 1024 * 1024  # smaller files are read in one pass: starting processes would cost more than it saves
MAX_JOBS = 8
FIRST_SHARE = 0.9  # the first range's size relative to the others' (its process also stitches)
MAX_CANDIDATES = 20_000  # pieces a range may hold before it gives up (Rule 2: memory, ~1.5 KiB each)
RANGE_FLOW_SHARE = 2  # a range may hold 1/2 of the live-flow limit (ranges run at once); past it, one pass
SYN_RETRY_S = 130.0  # Linux gives up on a SYN after 127 s (tcp_syn_retries 6); other stacks sooner


def plan(source, jobs: int | None) -> list[int]:
    """Cut offsets ``[0, c1, ..., None]`` for ``source``, or [] when it is read in one pass.

    Only a plain (not gzip) regular file is cut: a pipe, a device or standard input is one stream, and
    is not even opened here (its first bytes belong to the one pass).  The file is opened here only
    when it would be cut, to look for gzip's magic."""
    if jobs == 1 or not isinstance(source, (str, os.PathLike)) or os.fspath(source) == "-":
        return []
    if not hasattr(os, "fork") or not is_regular_file(source):
        return []  # the ranges' processes are forked (no re-import, no pickled arguments but the range)
    size = os.path.getsize(source)
    if jobs is None:
        jobs = min(_cpus(), MAX_JOBS) if size >= MIN_BYTES else 1
    jobs = max(1, min(jobs, MAX_JOBS, size // 4096))
    if jobs == 1 or _gzipped(source):
        return []
    return cuts(size, jobs)


def cuts(size: int, jobs: int) -> list:
    """Cut offsets ``[0, c1, ..., None]`` of ``jobs`` ranges of a plain file of ``size`` bytes."""
    # The first range's reader also stitches: it gets a little less to read.
    shares = [FIRST_SHARE] + [1.0] * (jobs - 1)
    return [int(size * sum(shares[:k]) / sum(shares)) for k in range(jobs)] + [None]


def _gzipped(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    except OSError:
        return True  # not cut: the one-pass reader reports it


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (a container's cpuset)
    except AttributeError:
        return os.cpu_count() or 1


def analyze_file(path, cuts: list, ports: frozenset[int], first_fid: int, progress) -> Part | None:
    """Read ``path`` in ``len(cuts) - 1`` processes and stitch; None when it must be read in one pass.

    This process reads the first range while forked processes read the others.  Each of them, done,
    waits for the tuples still live at its cut (known once the ranges before it are stitched) and sends
    back only the pieces on those tuples: the rest can continue nothing.
    """
    with fewer_gc_passes():  # receiving and stitching the ranges allocate as much as reading
        return _analyze_file(path, cuts, ports, first_fid, progress)


def _analyze_file(path, cuts: list, ports: frozenset[int], first_fid: int, progress) -> Part | None:
    import multiprocessing  # only here: imports that one-pass runs do not need

    ctx = multiprocessing.get_context("fork")
    ranges = list(zip(cuts, cuts[1:]))
    conns, procs = [], []
    try:
        for a, b in ranges[1:]:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_range_process, args=(theirs, path, a, b, ports), daemon=True)
            proc.start()
            theirs.close()
            conns.append(mine)
            procs.append(proc)
        stitch = Stitcher(ports, first_fid)
        try:
            first = read_range(path, *ranges[0], ports, False, progress,
                               give_up=lambda: any(conn.poll() for conn in conns))
        except CaptureFormatError:
            return None
        if first.overflow:  # a later range already gave up: read in one pass now, not after this range
            return None
        stitch.add(first)
        for conn in conns:
            stitch.rows_ahead()  # while that range's process may still be reading
            conn.send(stitch.carried_keys())
            part = conn.recv()
            if isinstance(part, str):
                log.info("%s: a byte range failed (%s); reading it in one pass", path, part)
                return None
            if not stitch.add(part):  # a seam that does not hold
                return None
        return stitch.result()
    except (EOFError, OSError):  # a range's process died
        return None
    finally:
        for conn in conns:
            conn.close()
        for proc in procs:
            proc.kill()
            proc.join()


def _range_process(conn, path, start: int, stop: int | None, ports: frozenset[int]) -> None:
    """A forked process: read one later range, then send it back with only the pieces that may join.

    Ctrl-C reaches the whole process group: the parent handles it (and kills this process), so this
    one ignores it; a parent gone before the exchange (its end of the pipe closed) ends it quietly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            part = read_range(path, start, stop, ports, True)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which reads the file in one pass
            conn.recv()
            conn.send(f"{type(exc).__name__}: {exc}")
            return
        if part.overflow:  # sent at once: the parent stops its own range and reads the file in one pass
            conn.send(part)
            return
        keys = conn.recv()
        part.pieces = [p for p in part.pieces if p.keys[0] in keys]
        conn.send(part)
    except (EOFError, OSError):
        return


def read_range(source, start: int, stop: int | None, ports: frozenset[int], later: bool, progress=None,
               first_fid: int = 0, give_up=None) -> Part:
    """One process's work: its range through ``pipeline.read_part``.  Flows still live at its end are
    handed back whole, unless the range ends the file: then they are finished here, and only mid-stream
    pieces go back (stripped, like any finished piece).  A range that holds too many pieces, or whose
    ``give_up()`` turns true (checked after each batch), stops early: ``Part.overflow``."""
    pieces: list[Flow] = []  # stripped: their rows are made
    ranged = later or stop is not None  # one of several ranges, all held at once (one per process)
    first_ts: list[float] = []  # when this range starts (its first flow), for ``_may_continue``

    def on_finish(flow: Flow) -> None:
        if later and _may_continue(flow, first_ts[0] if first_ts else flow.first_ts):
            pieces.append(_strip(flow))
            if len(pieces) > MAX_CANDIDATES:
                raise _Overflow

    def on_batch(table, _ctx) -> None:
        if not first_ts and table.flows:
            first_ts.append(min(f.first_ts for f, _ in table.flows.values()))
        if give_up is not None and give_up():
            raise _Overflow
        if ranged and table.released_flows:  # the ranges would not add up to one pass: one pass reads it
            raise _Overflow

    with CaptureReader(source, start, stop) as reader:
        try:
            part = read_part(reader, ports, progress, first_fid, on_finish, on_batch, finish=stop is None, track=later,
                             flow_share=RANGE_FLOW_SHARE if ranged else 1)
        except _Overflow:
            return Part(reader.info, overflow=True)
    part.pieces = pieces
    return part


class _Overflow(Exception):
    pass


def _may_continue(flow: Flow, range_ts: float) -> bool:
    """Could this flow be the rest of a connection an earlier range saw?  Not if it took over a tuple
    inside this range (``opener`` -1).  If a bare SYN opened it, only as a retransmission of a SYN sent
    before the cut (``Flow.is_reuse``), which comes within ``SYN_RETRY_S`` of it."""
    return flow.opener >= 0 and (not _bare_syn(flow) or flow.first_ts - range_ts <= SYN_RETRY_S)


def _bare_syn(flow: Flow) -> bool:
    return bool(flow.opener & TH_SYN and not flow.opener & TH_ACK)


def _strip(flow: Flow) -> Flow:
    """A finished piece keeps its counts and ``track``, not its payload state (its row is made)."""
    flow.streams = flow.inspector = None  # type: ignore[assignment]
    return flow


class Stitcher:
    """The ranges' parts, in file order, joined into the rows of one pass (Rules 1-3).

    ``add(part)`` takes the next range (False when its seam does not hold: Rule 2); ``carried`` are the
    flows live at the last cut, under both their keys; ``result()`` finishes them and returns the whole.
    ``opener(path)``: what to read a range again from (a remote file: an open file, for range reads).
    """

    def __init__(self, ports: frozenset[int], first_fid: int, opener=None):
        self.ports = ports
        self.opener = opener  # path -> what ``CaptureReader`` opens for ``_rescan`` (None: the path itself)
        self.parts: list[Part] = []
        self.rows = RowStore()
        self.finished: list[Flow] = []
        self.carried: dict[bytes, Flow] = {}
        self.next_fid = first_fid
        self.ahead: dict[int, dict] = {}  # fid -> its row, made while waiting (``rows_ahead``)
        self.joined: set[int] = set()  # fids of flows a later piece was added to (their rows are remade)

    def carried_keys(self) -> set[bytes]:
        return set(self.carried)

    def rows_ahead(self) -> None:
        """Make the rows of the carried flows now, while the next range is still being read: most get
        no more packets.  Only for flows whose streams hold no out-of-order bytes (finishing a stream
        would count those as a gap) and not joined since; a row is made again for any that changes."""
        ctx = context_for(self.parts[0].info.interfaces, self.ports)
        for flow in {id(f): f for f in self.carried.values()}.values():
            if flow.fid not in self.ahead and not any(s.pending for s in flow.streams or ()):
                self.ahead[flow.fid] = flow_row(flow, ctx)

    def add(self, part: Part) -> bool:
        if self.parts and not self._seam_holds(self.parts[-1], part):
            return False
        joined, ended = self._join(part) if self.parts else ({}, set())
        self.parts.append(part)
        ids = {}
        for fid in range(part.fids):
            if fid not in joined:
                ids[fid] = self.next_fid
                self.next_fid += 1
        for row in part.rows:
            if row["flow_id"] in ids:
                row["flow_id"] = ids[row["flow_id"]]
                self.rows.append(row)
        still: dict[bytes, Flow] = {}
        for flow in part.live:
            if flow.fid in joined:
                flow = joined[flow.fid]
            else:
                flow.fid = ids[flow.fid]
            for key in flow.keys:
                still[key] = flow
        live_fids = {f.fid for f in still.values()}
        continued = {f.fid for f in joined.values()}
        for flow in {id(f): f for f in self.carried.values()}.values():
            if flow.fid in live_fids:
                continue  # continued, and still live at this range's end
            if flow.fid in continued or flow.fid in ended or any(key in still for key in flow.keys):
                self.finished.append(flow)  # continued and ended in this range, or its tuple was reused
            else:
                for key in flow.keys:
                    still[key] = flow  # quiet through this range: still live
        self.carried = still
        return True

    def _seam_holds(self, prev: Part, part: Part) -> bool:
        """Rule 2: this range started where the previous one stopped, in the same pcapng section."""
        return not (prev.info.truncated or part.overflow or part.info.start_offset != prev.info.bytes_read
                    or (part.info.format == "pcapng" and part.info.start_section != prev.info.section)
                    or len(part.info.interfaces) != len(self.parts[0].info.interfaces))

    def _join(self, part: Part) -> tuple[dict[int, Flow], set[int]]:
        """Which of ``part``'s pieces continue a carried flow (local fid -> that flow); those carried
        flows whose tuple a piece took without continuing them.  Joined pieces are absorbed."""
        joined: dict[int, Flow] = {}
        ended: set[int] = set()
        pieces = sorted(part.pieces + [f for f in part.live if f.opener >= 0], key=lambda f: f.fid)
        wanted: list[tuple[Flow, Flow]] = []
        taken: set[int] = set()
        for piece in pieces:
            old = self.carried.get(piece.keys[0])
            if old is None or old.fid in ended or old.fid in taken:
                continue
            if not _continues(old, piece):
                ended.add(old.fid)
                continue
            joined[piece.fid] = old
            taken.add(old.fid)
            if _take_over_holes(old, piece):
                wanted.append((old, piece))
        if wanted:
            source = part.info.path if self.opener is None else self.opener(part.info.path)
            _rescan(source, part.info.start_offset, part.info.bytes_read, wanted)
        for piece in pieces:
            if piece.fid in joined:
                joined[piece.fid].absorb(piece)
        self.joined.update(old.fid for old in joined.values())
        return joined, ended

    def result(self) -> Part:
        last = self.parts[-1]
        out = Part(last.info, rows=self.rows, packets=sum(p.packets for p in self.parts))
        out.info.frames = sum(p.info.frames for p in self.parts)  # interfaces: the last range's drops
        for p in self.parts:
            out.skipped.update(p.skipped)
            out.not_tcp.update(p.not_tcp)
            out.not_tcp_loopback |= p.not_tcp_loopback
            out.released.update(p.released)
        finished = []
        for flow in self.finished + list({id(f): f for f in self.carried.values()}.values()):
            if flow.fid in self.ahead and flow.fid not in self.joined:
                out.rows.append(self.ahead[flow.fid])
                continue
            for s in flow.streams or ():
                s.finish()
            finished.append(flow)
        ctx = context_for(out.info.interfaces, self.ports)
        rows_of(sorted(finished, key=lambda f: f.fid), out.rows, ctx)
        out.rows.sort_by_flow_id()
        return out


def _continues(old: Flow, piece: Flow) -> bool:
    """Would one pass have put ``piece``'s packets into ``old``?  Not after the table would have
    finished ``old`` for being quiet (``FlowTable.evict``), nor for a new connection on its tuple."""
    quiet = piece.first_ts - old.last_ts
    if quiet > IDLE_S or (old.closed and quiet > CLOSED_IDLE_S):
        return False
    return not (_bare_syn(piece) and old.is_reuse(old.turn(piece), piece.opener, piece.isn[0]))


def _take_over_holes(old: Flow, piece: Flow) -> bool:
    """Count, into ``old``, the holes one pass would have counted in ``piece``'s segments, for each
    direction where ``old`` had stopped inspecting: the jump from where ``old`` ended to the piece's
    first segment, and the piece's own (``Track``).  True when a direction needs ``_rescan``."""
    s, track = old.turn(piece), piece.track
    rescan = False
    for d in (0, 1):
        e = d ^ s
        if _replayed(old, e, track, d):
            rescan = rescan or piece.bytes[d] > 0
            continue
        if old.nxt[e] is not None and track.first[d] is not None:
            old.jumps += follow_seq(old.nxt[e], track.first[d], 0)[1]
        old.jumps += track.jumps[d] + track.after[d]
    return rescan


def _replayed(old: Flow, e: int, track, d: int) -> bool:
    """Must direction ``e`` of ``old`` be replayed from the file (``_rescan``) to count the holes one pass
    would count in the piece's direction ``d``?  When ``old`` still wanted payload there; when the
    piece begins behind where ``old`` had got to (a reordered segment across the cut): the piece's own
    count started at that segment, one pass's at ``old.nxt``, so they agree only from where they meet;
    and when the piece's inspection stopped with reordered bytes pending (``Track.aligned``)."""
    if old.wants[e] or not track.aligned[d]:
        return True
    nxt, first = old.nxt[e], track.first[d]
    return nxt is not None and first is not None and first != nxt and not follow_seq(nxt, first, 0)[1]


def _rescan(path, start: int, stop: int, wanted: list[tuple[Flow, Flow]]) -> None:
    """Feed earlier flows that still wanted payload at the cut the segments their later pieces carried,
    read again from this range for those tuples only, as one pass would have: inspected while wanted,
    then followed by sequence number.

    A direction is done as soon as the flow wants no more and follows sequence numbers exactly where the
    piece's ``Track`` did at that packet (replayed alongside as ``_Replay``): the holes the track and the
    piece counted after it are then the ones one pass would count.  Otherwise the whole piece is replayed.
    """
    todo: dict[bytes, tuple[Flow, int, list]] = {}
    for old, piece in wanted:
        s = old.turn(piece)
        replays: list = [None, None]  # per direction of ``old``
        for d in (0, 1):
            if piece.bytes[d] and _replayed(old, d ^ s, piece.track, d):
                replays[d ^ s] = _Replay(piece, d)
        k0, k1 = old.keys
        todo[k0], todo[k1] = (old, 0, replays), (old, 1, replays)
    left = len(wanted)
    with CaptureReader(path, start, stop) as reader:
        for buf, frames in reader.iter_batches():
            for _ts, linktype, off, caplen, wirelen, _iface in frames:
                r = decode_frame(buf, off, caplen, wirelen, linktype)
                if r.__class__ is int or r[0] != IPPROTO_TCP:
                    continue
                _, src, dst, sport, dport, seq, _ack, flags, poff, clen, wlen, _loop = r
                hit = todo.get(flow_key(src, dst, sport, dport))
                if hit is None or hit[2][hit[1]] is None:
                    continue
                old, d, replays = hit
                if flags & TH_SYN and not flags & TH_ACK and seq != old.isn[d]:
                    replays[0] = replays[1] = None  # a new connection on this tuple: the piece has ended
                elif replays[d].step(old, d, seq, buf[poff:poff + clen], wlen):
                    replays[d] = None
                if replays[0] is None and replays[1] is None:
                    for key in old.keys:
                        todo.pop(key, None)
                    left -= 1
                    if not left:
                        return


class _Replay:
    """One direction of a piece replayed into the earlier flow, with the piece's ``Track`` alongside."""

    __slots__ = ("piece", "d", "seen", "packets", "handover", "nxt", "jumps", "track_jumps", "after")

    def __init__(self, piece: Flow, d: int):
        track = piece.track
        self.piece, self.d = piece, d
        # A handover that was not aligned counts ``after`` from elsewhere: then replay the whole piece.
        self.seen, self.packets = 0, piece.packets[d]
        self.handover = track.handover[d] if track.aligned[d] else 0
        self.nxt, self.jumps = None, 0  # the track as it stood at the packet replayed last
        self.track_jumps, self.after = track.jumps[d], track.after[d]

    def step(self, old: Flow, d: int, seq: int, data: bytes, wire_len: int) -> bool:
        """Replay one packet; True when this direction is done."""
        self.seen += 1
        tracking = self.handover is None or self.seen <= self.handover
        if wire_len:
            if tracking:
                self.nxt, jumped = follow_seq(self.nxt, seq, wire_len)
                self.jumps += jumped
            if old.wants[d]:
                old.deliver(d, seq, data, wire_len)
            else:
                old.seq_jump(d, seq, wire_len)
        if not old.wants[d] and tracking and old.nxt[d] == self.nxt:
            old.jumps += self.track_jumps - self.jumps + self.after
            return True
        if self.seen < self.packets:
            return False
        # The whole piece was replayed: ``old.nxt`` is where one pass would be; ``absorb`` takes it from there.
        self.piece.nxt[self.d] = self.piece.track.nxt[self.d] = old.nxt[d]
        return True
