"""Shared harness for parser tests: every case is fed three ways (h11 ``tests/test_io.py`` ``tr()``).

``whole``: one ``receive_data``; ``bytewise``: one byte per call, draining after each; ``trailing``: whole
plus the first bytes of a further record, which must change nothing but ``buffered``.
"""

from __future__ import annotations

import pytest

from analyzer.tls import NEED_DATA, TLSParseError, TLSParser

TRAILING = b"\x17\x03\x03"  # the start of another application_data record


class Feeder:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.extra = len(TRAILING) if mode == "trailing" else 0  # expected leftover ``buffered``

    def pieces(self, data: bytes):
        if self.mode == "bytewise":
            return [data[i:i + 1] for i in range(len(data))]
        return [data + TRAILING] if self.mode == "trailing" else [data]

    def collect(self, data: bytes, **kwargs):
        """(events, error or None, parser); events decoded before an error are kept."""
        parser, events = TLSParser(**kwargs), []
        try:
            for piece in self.pieces(data):
                parser.receive_data(piece)
                while (event := parser.next_event()) is not NEED_DATA:
                    events.append(event)
        except TLSParseError as exc:
            return events, exc, parser
        return events, None, parser

    def __call__(self, data: bytes, **kwargs):
        """(events, parser); a TLSParseError propagates."""
        events, error, parser = self.collect(data, **kwargs)
        if error is not None:
            raise error
        return events, parser


@pytest.fixture(params=["whole", "bytewise", "trailing"])
def feed(request) -> Feeder:
    return Feeder(request.param)
