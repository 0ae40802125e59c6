"""A large JSON document read a value at a time, so that reading it costs what is kept of it.

Role: ``JsonStream`` decodes a JSON text stream value by value (``json.JSONDecoder.raw_decode`` over a
bounded buffer); ``read_object`` walks a top-level object key by key and hands the elements of the arrays
a caller names to it one at a time.  The pod-list reader (``kube.podlist``) and the report loader
(``report.export``) use them.
Must not: know what the document means; hold more than one value being decoded plus one buffer.
Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Callable, Mapping

JSON_CHUNK = 1 << 17  # characters read at a time (peak memory is a few times this)
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


class JsonStream:
    """A JSON document read a chunk at a time, value by value (``json.JSONDecoder.raw_decode``): memory is
    one chunk plus the value being decoded, whatever the size of the file.  A value is accepted only when
    it ends before the buffered text does (a number or a literal may go on in the next chunk); one that
    does not decode is retried with more text, the buffer growing geometrically, until the end of input.

    ``fail(message)`` makes the exception raised for bad JSON (``message`` names ``source`` and the place);
    ``expected`` ends that message (what the input should have been), ``kind`` names the document for one
    nested too deeply."""

    def __init__(self, f, source: str, fail: Callable[[str], Exception], expected: str, kind: str) -> None:
        self.f, self.source = f, source
        self.fail, self.expected, self.kind = fail, expected, kind
        self.buf, self.pos, self.eof = "", 0, False
        self.line, self.col = 1, 0  # line, and column offset, of the first character of ``buf``
        self.decoder = json.JSONDecoder()

    def _fill(self) -> None:
        newlines = self.buf.count("\n", 0, self.pos)
        self.col = self.pos - self.buf.rfind("\n", 0, self.pos) - 1 if newlines else self.col + self.pos
        self.line += newlines
        chunk = self.f.read(max(JSON_CHUNK, len(self.buf) - self.pos))
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        self.eof = not chunk

    def error(self, msg: str, pos: int) -> Exception:
        before = self.buf[:pos]
        newlines = before.count("\n")
        col = pos - before.rfind("\n") if newlines else self.col + pos + 1
        return self.fail(f"{self.source}: not valid JSON ({msg} at line {self.line + newlines} column {col}); "
                         f"{self.expected}")

    def peek(self) -> str:
        """The next character that is not white space ("" at the end)."""
        while True:
            self.pos = _JSON_SPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos:self.pos + 1]
            self._fill()

    def expect(self, chars: str, what: str) -> str:
        ch = self.peek()
        if not ch or ch not in chars:
            raise self.error(f"Expecting {what}", self.pos)
        self.pos += 1
        return ch

    def value(self):
        while True:
            self.peek()
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise self.error(exc.msg, exc.pos) from None
            except ValueError:  # an integer of more digits than int() converts
                raise self.fail(f"{self.source}: not valid JSON (a number of more than "
                                f"{sys.get_int_max_str_digits()} digits); {self.expected}") from None
            except RecursionError:
                raise self.fail(f"{self.source}: JSON nested too deeply to be {self.kind}") from None
            else:
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
            self._fill()


def read_object(stream: JsonStream, arrays: Mapping[str, Callable[[], Callable[[object], None]]]):
    """The document's top-level object key by key, as ``json.load`` would read it, except that the value
    of a key in ``arrays``, when it is an array, is kept as ``[]`` and its elements go one at a time to a
    new sink, ``arrays[key]()`` (a key given twice: the last one counts, as in ``json.load``, and each
    time gets its own sink).  A document that is not an object is returned whole, for the caller to say
    what it is."""
    if stream.peek() != "{":
        doc = stream.value()
    else:
        stream.pos += 1
        doc = {}
        if stream.peek() == "}":
            stream.pos += 1
        else:
            while True:
                if stream.peek() != '"':
                    raise stream.error("Expecting property name enclosed in double quotes", stream.pos)
                key = stream.value()
                stream.expect(":", "':' delimiter")
                if key in arrays and stream.peek() == "[":
                    stream.pos += 1
                    sink = arrays[key]()
                    doc[key] = []
                    if stream.peek() == "]":
                        stream.pos += 1
                    else:
                        while True:
                            sink(stream.value())
                            if stream.expect(",]", "',' delimiter") == "]":
                                break
                else:
                    doc[key] = stream.value()
                if stream.expect(",}", "',' delimiter") == "}":
                    break
    if stream.peek():
        raise stream.error("Extra data", stream.pos)
    return doc
