"""Per-direction in-order delivery of the first bytes of a TCP stream.

Role: turn segments (seq, payload) of one direction into the contiguous byte prefix an analyzer reads,
like Zeek's ``TCP_Reassembler``: retransmitted bytes are delivered once, out-of-order segments wait for
the hole to fill, and the first real gap (a lost segment, or bytes cut by the snaplen) ends delivery.

Rules:
  1. Memory is bounded: at most ``MAX_PENDING`` out-of-order segments and ``MAX_PENDING_BYTES`` wait
     per direction, and all the streams of one flow table share one ``Budget`` of waiting bytes; past
     either the hole is declared a gap (the budget's ``released`` counts those it forced).
  2. Delivery stops for good at the first gap.  Bytes after a hole cannot be framed reliably, and an
     analyzer that guessed would be guessing about security.  The gap is recorded, not hidden.
  3. Sequence numbers are 32-bit and wrap (RFC 9293 3.4); offsets are kept relative to the base.
"""

from __future__ import annotations

MAX_PENDING = 64  # out-of-order segments held per direction
MAX_PENDING_BYTES = 256 * 1024
MAX_BUFFERED_BYTES = 32 * 1024 * 1024  # out-of-order bytes held by all the streams of one table
SEQ_MOD = 1 << 32
SEQ_HALF = 1 << 31


class Budget:
    """Out-of-order bytes held by a group of streams (one flow table's), and how many streams it made
    stop at their hole because the group held ``limit`` bytes."""

    __slots__ = ("limit", "held", "released")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_BUFFERED_BYTES if limit is None else limit
        self.held = 0
        self.released = 0


UNBOUNDED = Budget(1 << 62)  # a stream made on its own (tests, tools) shares only the per-stream limits


class Stream:
    """One direction's byte stream, relative to ``base`` (ISN + 1, or the first data byte seen)."""

    __slots__ = ("base", "nxt", "pending", "pending_bytes", "gaps", "stopped", "truncated", "budget")

    def __init__(self, budget: Budget = UNBOUNDED) -> None:
        self.budget = budget
        self.base: int | None = None
        self.nxt = 0  # relative offset of the next byte to deliver
        self.pending: dict[int, tuple[bytes, int]] = {}  # rel -> (captured, wire length)
        self.pending_bytes = 0
        self.gaps = 0  # holes seen (the first one stops delivery)
        self.stopped = False
        self.truncated = False  # a segment was cut short by the capture's snaplen

    def set_isn(self, isn: int) -> None:
        """A SYN fixes the base, unless data has already been placed relative to another base."""
        if self.base is None or (self.nxt == 0 and not self.pending):
            self.base = (isn + 1) % SEQ_MOD

    def add(self, seq: int, data: bytes, wire_len: int) -> bytes:
        """Place one segment; return the bytes that became contiguous (b"" when none did).

        ``data`` is what the capture holds; ``wire_len`` what the segment carried.  A shorter ``data``
        means the snaplen cut it: its captured part is delivered, then the rest is a gap.
        """
        if self.stopped:
            return b""
        if self.base is None:
            self.base = seq  # mid-stream: the first byte we see is offset 0
        rel = (seq - self.base) % SEQ_MOD
        if rel >= SEQ_HALF:  # before the base: old data from before the capture or the SYN
            skip = SEQ_MOD - rel
            if skip >= len(data):
                return b""
            data, wire_len, rel = data[skip:], wire_len - skip, 0
        if len(data) < wire_len:
            self.truncated = True
        if rel > self.nxt:
            held = self.pending.get(rel)
            if held is None or len(held[0]) < len(data):
                grown = len(data) - (len(held[0]) if held else 0)
                self.pending_bytes += grown
                self.budget.held += grown
                self.pending[rel] = (data, wire_len)
            if len(self.pending) > MAX_PENDING or self.pending_bytes > MAX_PENDING_BYTES:
                self.stop_at_gap()
            elif self.budget.held > self.budget.limit:
                self.budget.released += 1
                self.stop_at_gap()
            return b""
        out = self._take(rel, data, wire_len)
        if self.pending and not self.stopped:
            out += self._drain()
        return out

    def _take(self, rel: int, data: bytes, wire_len: int) -> bytes:
        """Deliver a segment that starts at or before ``nxt``."""
        overlap = self.nxt - rel
        if overlap >= wire_len:
            return b""  # a pure retransmission
        chunk = data[overlap:]
        self.nxt += len(chunk)
        if len(data) < wire_len:  # snaplen cut: bytes we never saw follow
            self.gaps += 1
            self.stopped = True
            self._drop_pending()
        return chunk

    def _drain(self) -> bytes:
        out = []
        while self.pending and not self.stopped:
            rel = min(self.pending)
            if rel > self.nxt:
                break
            data, wire_len = self.pending.pop(rel)
            self.pending_bytes -= len(data)
            self.budget.held -= len(data)
            out.append(self._take(rel, data, wire_len))
        return b"".join(out)

    def stop_at_gap(self) -> None:
        """The hole before the pending segments will not fill: record it and stop delivering."""
        if self.pending:
            self.gaps += 1
        self.stopped = True
        self._drop_pending()

    def _drop_pending(self) -> None:
        self.budget.held -= self.pending_bytes
        self.pending.clear()
        self.pending_bytes = 0

    def finish(self) -> None:
        """End of capture: whatever still waits sits behind a hole."""
        if self.pending:
            self.stop_at_gap()
        self.stopped = True
