"""Rows -> text: an aligned table, markdown, CSV or JSON.  Standard library only.

Rows are plain dicts keyed by the schema's column names; timestamps are epoch seconds and are written
as ISO 8601 UTC.  Nothing here decides anything: it formats.
Every string reaches the table, CSV and Markdown through ``escape`` (one rule for text from the wire
or a pod list); JSON keeps exact values.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Iterable, Iterator, Sequence

from .escape import clip, csv_cell, markdown_cell, text
from .schema import TIME_COLUMNS

FORMATS = ("table", "json", "csv", "markdown")

# Columns shown in the human table view (all columns go to csv/json).
TABLE_COLUMNS = {
    # flow_id first: it is what `show --flow ID` asks for.
    "flows": ("flow_id", "client_ip", "client_port", "server_ip", "server_port", "verdict", "evidence", "tls_version",
              "identity", "reason"),
    "pairs": ("client_ip", "server_ip", "flows", "tls", "plaintext", "unknown", "tls_versions", "status"),
    "edges": ("src", "dst", "src_ns", "dst_ns", "client", "server", "mtls", "secured", "status", "flows", "tls",
              "plaintext", "unknown", "ports", "msg"),
}
MAX_CELL = 90


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _cell(name: str, value) -> object:
    if name in TIME_COLUMNS and isinstance(value, (int, float)):
        return iso(value)
    return value


def render(rows: Sequence[dict], columns: Sequence[str], fmt: str, view: str = "flows") -> str:
    if fmt == "json":
        return json.dumps([{c: _cell(c, r[c]) for c in columns} for r in rows], indent=2) + "\n"
    if fmt == "csv":
        return "".join(render_lines(rows, columns, fmt, view))
    shown = TABLE_COLUMNS.get(view, columns) if fmt == "table" else columns
    cells = [[_text(_cell(c, r[c])) for c in shown] for r in rows]
    if fmt == "markdown":
        head = "| " + " | ".join(shown) + " |\n|" + "|".join("---" for _ in shown) + "|\n"  # our own names
        return head + "".join("| " + " | ".join(markdown_cell(x) for x in row) + " |\n" for row in cells)
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(shown)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(shown, widths)).rstrip()]
    lines += ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


def render_lines(rows: Iterable[dict], columns: Sequence[str], fmt: str, view: str = "flows") -> Iterator[str]:
    """``render`` piece by piece, for rows too many to hold as text: CSV, a block of rows at a time
    (other formats in one piece)."""
    if fmt != "csv":
        yield render(list(rows), columns, fmt, view)
        return
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for i, r in enumerate(rows, 1):
        w.writerow([csv_cell(_cell(c, r[c])) for c in columns])
        if i % CSV_BLOCK == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


CSV_BLOCK = 4096  # rows per piece of streamed CSV


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return clip(text(v), MAX_CELL)
