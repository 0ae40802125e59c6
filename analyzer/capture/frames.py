"""What a capture reader hands out: frame records in flat batches, and what it learned about the file.

Role: the types shared by ``pcap.py``, ``pcapng.py`` and ``reader.py`` and the limits every format
keeps (timestamps a frame may carry, runs of empty records).  No I/O and no parsing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

Frame = tuple  # (ts: float, linktype: int, off: int, caplen: int, wirelen: int, iface: int)
FRAME_FIELDS = 6

# Frame timestamps are kept within what every output can show: pandas' datetime64[ns] ends in 2262
# and Python's datetime in year 9999.  A pcapng interface may scale 64-bit ticks by any power of ten
# or two (if_tsresol), so a bad resolution or a damaged block can put a packet hundreds of thousands
# of years away; such a timestamp is set to the nearest bound, and the reader says how many it set.
TS_MIN = 0.0  # 1970-01-01T00:00:00Z: no capture is older
TS_MAX = 9_000_000_000.0  # 2255-03-14T16:00:00Z
MAX_BLOCK = 256 * 1024 * 1024  # a record or block longer than this is corruption, not data
EMPTY_RUN = 65_536  # this many records in a row with no captured byte are not traffic but damage


@dataclass
class Interface:
    """One capture interface: link type, snaplen, timestamp unit, and the name pcapng gave it."""

    linktype: int
    snaplen: int
    name: str = ""
    ts_unit: float = 1e-6  # seconds per timestamp tick (pcapng if_tsresol)
    drops: int | None = None  # last isb_ifdrop seen


@dataclass
class CaptureInfo:
    """What the reader learned about the file; filled in while it is read."""

    path: str
    format: str = ""  # pcap | pcapng
    compressed: bool = False
    interfaces: list[Interface] = field(default_factory=list)
    frames: int = 0
    bytes_read: int = 0
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False  # the file ended or broke mid-block
    start_offset: int = 0  # file offset of the first record read (a byte range's resync point)
    section: tuple = ()  # pcapng: byte order and interfaces of the section being read, at the end
    start_section: tuple = ()  # the same, where a byte range started
    clamped: int = 0  # frames whose timestamp was outside TS_MIN..TS_MAX


class FrameBatch:
    """One window's frames, stored flat: ``FRAME_FIELDS`` values per frame, in ``Frame`` order.

    Iterating yields ``Frame`` tuples; ``zip`` reuses its result tuple once the loop has unpacked it,
    so the flow table's loop allocates nothing per frame.  Why not a list of tuples: each of those
    tuples lives until the batch is done, ~4,500 per window, and they drive the cyclic GC's
    collections, which then walk every live flow's objects (fewer generation-2 collections is what
    makes the flat list faster on large captures).
    """

    __slots__ = ("flat",)

    def __init__(self, flat: list) -> None:
        self.flat = flat

    def __len__(self) -> int:
        return len(self.flat) // FRAME_FIELDS

    def __iter__(self) -> Iterator[Frame]:
        f = self.flat
        return zip(f[0::6], f[1::6], f[2::6], f[3::6], f[4::6], f[5::6])


def clamp_ts(ts: float) -> float:
    """One timestamp within ``TS_MIN..TS_MAX`` (also for times that do not come from a capture)."""
    return TS_MAX if ts > TS_MAX else ts if ts >= TS_MIN else TS_MIN


def clamped_warning(path: str, count: int) -> str:
    return (f"{path}: {count} packet timestamps outside 1970..2255 (a bad if_tsresol or a damaged block) "
            f"were set to the nearest bound")


def clamp_times(flat: list) -> int:
    """Set every timestamp of a flat batch outside ``TS_MIN..TS_MAX`` to the nearest bound; how many."""
    stamps = flat[0::FRAME_FIELDS]
    if min(stamps) >= TS_MIN and max(stamps) <= TS_MAX:  # the usual case: two C-speed passes
        return 0
    changed = 0
    for i in range(0, len(flat), FRAME_FIELDS):
        ts = flat[i]
        if not TS_MIN <= ts <= TS_MAX:  # also NaN, which clamp_ts makes TS_MIN
            flat[i] = clamp_ts(ts)
            changed += 1
    return changed


def empty_run_end(flat: list, carried: int) -> tuple[int, int]:
    """Where a run of ``EMPTY_RUN`` records without captured bytes starts in a flat batch.

    ``carried`` is the run the previous batch ended with.  Returns ``(cut, run)``: ``cut`` the index
    in ``flat`` where the damage starts (-1 if none), ``run`` the run this batch ends with."""
    caplens = flat[3::FRAME_FIELDS]
    empties = caplens.count(0)
    if not empties:
        return -1, 0
    run = carried
    for i, caplen in enumerate(caplens):
        run = run + 1 if not caplen else 0
        if run >= EMPTY_RUN:
            return max(0, i - run + 1) * FRAME_FIELDS, run
    return -1, run
