"""flows.reassembly.Stream on its own: order, duplicates, gaps, snaplen cuts, sequence wrap."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.flows.reassembly import MAX_PENDING, Stream

DATA = bytes(random.Random(7).randrange(256) for _ in range(6000))


def segments(data: bytes, cuts: list[int], isn: int) -> list[tuple[int, bytes]]:
    points = sorted({0, len(data), *(c % len(data) for c in cuts)})
    return [((isn + 1 + a) % (1 << 32), data[a:b]) for a, b in zip(points, points[1:]) if b > a]


def deliver(stream: Stream, segs) -> bytes:
    return b"".join(stream.add(seq, chunk, len(chunk)) for seq, chunk in segs)


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, 10**6), max_size=30), seed=st.integers(0, 2**32 - 1),
       isn=st.integers(0, 2**32 - 1), dups=st.integers(0, 10))
def test_permuted_and_duplicated_segments_give_the_same_stream(cuts, seed, isn, dups):
    segs = segments(DATA, cuts, isn)
    rnd = random.Random(seed)
    shuffled = segs + [rnd.choice(segs) for _ in range(dups)]
    rnd.shuffle(shuffled)
    if len(shuffled) > MAX_PENDING:  # more reordering than the window holds is a gap by design
        shuffled = segs
    s = Stream()
    s.set_isn(isn)
    assert deliver(s, shuffled) == DATA
    assert s.gaps == 0 and not s.stopped


def test_retransmission_with_overlap_is_delivered_once():
    s = Stream()
    s.set_isn(99)
    assert s.add(100, b"hello ", 6) == b"hello "
    assert s.add(103, b"lo wor", 6) == b"wor"  # overlaps 3 bytes already delivered
    assert s.add(100, b"hello world", 11) == b"ld"
    assert s.add(100, b"hello", 5) == b""


def test_sequence_numbers_wrap():
    s = Stream()
    s.set_isn(0xFFFFFFFE)  # first byte at 0xFFFFFFFF, then 0, 1, ...
    assert s.add(0xFFFFFFFF, b"ab", 2) == b"ab"
    assert s.add(1, b"cd", 2) == b"cd"


def test_a_hole_that_never_fills_is_one_gap_and_stops_delivery():
    s = Stream()
    s.set_isn(0)
    assert s.add(1, b"abc", 3) == b"abc"
    assert s.add(10, b"later", 5) == b""  # bytes 4..9 never come
    s.finish()
    assert s.gaps == 1 and s.stopped
    assert s.add(4, b"xyzxyz", 6) == b""  # nothing after a gap is delivered


def test_snaplen_cut_delivers_the_captured_part_then_stops():
    s = Stream()
    s.set_isn(0)
    assert s.add(1, b"\x16\x03\x01", 517) == b"\x16\x03\x01"
    assert s.truncated and s.stopped and s.gaps == 1


def test_midstream_base_is_the_first_byte_seen_and_older_bytes_are_dropped():
    s = Stream()
    assert s.add(5000, b"xyz", 3) == b"xyz"
    assert s.add(4990, b"0123456789", 10) == b""  # before the base: from before the capture
    assert s.add(5003, b"!", 1) == b"!"


def test_too_much_reordering_becomes_a_gap_not_unbounded_memory():
    s = Stream()
    s.set_isn(0)
    for i in range(MAX_PENDING + 1):
        s.add(1000 + 10 * i, b"0123456789", 10)
    assert s.stopped and s.gaps == 1 and s.pending == {}
