"""One escaping rule for every string a human or a spreadsheet reads.

Role: SNI, ALPN, HTTP request lines and reasons come from whoever sends a packet; pod, owner and
namespace names, annotations and env values from whoever can create a workload.  None of them may steer
the output: retitle a terminal (ESC/OSC/BEL), split a table row (CR/LF), hide text (bidi overrides,
zero-width characters), start a spreadsheet formula, or become a link or HTML in Markdown.

Rules:
  1. :func:`text` is the one rule: every character Python does not call printable (``str.isprintable``:
     C0, DEL, C1, line/paragraph separators, format characters such as bidi overrides and zero-width
     spaces, surrogates, unassigned code points, spaces other than U+0020) becomes a visible escape, in
     Python's own notation (``\\x1b``, ``\\u202e``, ``\\U000e0001``).  Invalid UTF-8 becomes ``\\xNN`` per
     byte.  The backslash itself is kept, so a value the TLS parser already escaped (``\\x1b`` as four
     characters) reads the same from both engines.
  2. Outputs for people apply it at the edge: the table, Markdown, CSV, ``--follow`` lines, ``show``,
     stderr lines.  JSON, JSONL and Parquet keep the exact value (JSON escapes it), since programs read them.
  3. CSV adds :func:`csv_cell`: a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR gets a
     leading ``'`` (OWASP "CSV Injection"), which spreadsheets show as text, not a formula.
  4. HTML adds ``html.escape`` (:func:`html_text`), and the report's CSP refuses inline code it did not hash.
  5. Markdown adds :func:`markdown_cell`: its inline syntax is backslash-escaped (CommonMark allows it
     for any ASCII punctuation), so data never forms emphasis, code, a link, an autolink
     (``http\\://``, ``www\\.``, ``a\\@b``) or HTML.
  6. Standard library only (the one-file ``.pyz`` uses it).
"""

from __future__ import annotations

import html
import re

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV Injection: cells spreadsheets evaluate
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]<>!|~$&@]|:(?=/)|(?<=www)\.", re.IGNORECASE)


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def text(value) -> str:
    """Any value -> one printable line (rule 1); ``None`` -> ``""``; bytes are read as UTF-8."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", "surrogateescape")
    s = value if isinstance(value, str) else str(value)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else _escape_char(ch) for ch in s)


def clip(s: str, limit: int) -> str:
    """At most ``limit`` characters, ``...`` marking a cut."""
    return s if len(s) <= limit else s[: max(limit - 3, 0)] + "..."


def csv_cell(value):
    """A CSV cell: numbers and booleans as they are, text escaped and never a formula (rule 3)."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return value
    s = text(value)
    return "'" + s if s.startswith(FORMULA_PREFIXES) else s


def html_text(value) -> str:
    """Text for an HTML element or a quoted attribute (rule 4)."""
    return html.escape(text(value))


def markdown_cell(s: str) -> str:
    """An already :func:`text`-escaped cell -> Markdown inline text that is only text (rule 4)."""
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), s)
