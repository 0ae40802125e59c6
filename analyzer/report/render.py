"""Rows -> text: an aligned table, markdown, CSV or JSON.  Standard library only.

Rows are plain dicts keyed by the schema's column names; timestamps are epoch seconds and are written
as ISO 8601 UTC.  Nothing here decides anything: it formats.
Every string reaches the table, CSV and Markdown through ``escape`` (one rule for text from the wire
or a pod list); JSON keeps exact values.

Tables fit a width the way ``kubectl get`` does (:func:`fit`, the one rule for every table): columns are
dropped least important first (never one of rank 0: SRC, DST, STATUS, FLOW_ID, VERDICT), pod names are
ellipsised in the middle (the start and the random suffix stay), long text is cut at its end, and a
cell of a column that is never shortened (STATUS, numbers) is never split.  ``width=None`` (``--wide``)
shows every table column unshortened; CSV, JSON and Markdown always hold every column in full.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Sequence

from .escape import clip, csv_cell, markdown_cell, text
from .schema import TIME_COLUMNS

FORMATS = ("table", "json", "csv", "markdown")
MAX_CELL = 90  # no table cell is longer, even with --wide (a 64 KiB name from a hostile pod list)
WIDTH_NOT_A_TERMINAL = 100  # a table written to a pipe or a file
GAP = 2  # spaces between two table columns
ELLIPSIS = "\u2026"
NAME_MIN, TEXT_MIN, HARD_MIN = 16, 24, 6  # widths a shortened column keeps: wished, and at the very least
NAME_SHARE = 4  # a name column wishes for a quarter of the width (at least NAME_MIN)


@dataclass(frozen=True, slots=True)
class Col:
    """One column of a table view.  ``rank`` 0: always shown; higher ranks are dropped first.  ``fit``:
    ``keep`` (never shortened), ``name`` (ellipsised in the middle) or ``text`` (cut at its end).
    ``value``: the cell from the row, when it is not ``row[key]``."""

    key: str
    rank: int = 0
    fit: str = "keep"
    value: Callable[[dict], object] | None = None

    @property
    def header(self) -> str:
        return self.key.upper()


def qualified(namespace: str, name: str) -> str:
    """``namespace/name``, or the name alone when it has no namespace (a node, an external IP)."""
    return f"{namespace}/{name}" if namespace else name


def _identity(row: dict) -> str:
    """An edge's identities as one reading: ``client -> server (mTLS inferred)``; "" when no TLS was seen."""
    if not row["server"] and not row["client"]:
        return ""
    cell = f"{row['client'] or '?'} -> {row['server'] or '?'}"
    return cell + (f" (mTLS {row['mtls']})" if row["mtls"] in ("proven", "inferred") else "")


def _end(side: str) -> Col:
    """SRC or DST of an edge: ``namespace/name``, a name column."""
    return Col(side, 0, "name", lambda r: qualified(r[f"{side}_ns"], r[side]))


# Columns of the human table view, in display order (every column goes to csv/json/markdown).
VIEW_COLUMNS: dict[str, tuple[Col, ...]] = {
    # flow_id first: it is what `show --flow ID` asks for.
    "flows": (Col("flow_id"), Col("client_ip"), Col("client_port", 4), Col("server_ip"), Col("server_port", 1),
              Col("verdict"), Col("evidence", 3), Col("tls_version", 5), Col("identity", 6, "text"),
              Col("reason", 2, "text")),
    "pairs": (Col("client_ip"), Col("server_ip"), Col("flows", 1), Col("tls", 2), Col("plaintext", 2),
              Col("unknown", 3), Col("tls_versions", 4, "text"), Col("status")),
    # One reading per edge: STATUS is the verdict, the counts say what it rests on, IDENTITY what the TLS
    # flows presented (secured is the status itself: kept in csv/json, not repeated here).
    "edges": (_end("src"), _end("dst"), Col("status"), Col("flows", 2), Col("plaintext", 1), Col("tls", 5), Col("unknown", 6),
              Col("ports", 3, "text"), Col("msg", 4, "text"), Col("identity", 7, "text", _identity)),
    # the live capture's table (analyzer.live.view)
    "live": (Col("client", 0, "keep", lambda r: r["client_ip"]), Col("server", 0, "keep", lambda r: r["server_ip"]),
             Col("flows", 1), Col("tls", 2), Col("plaintext", 2), Col("unknown", 3), Col("status")),
    # diff: what changed between two audits, per edge
    "diff": (Col("change"), Col("direction"), _end("src"), _end("dst"), Col("old_status"), Col("new_status"),
             Col("old_flows", 2), Col("new_flows", 2), Col("ports", 1, "text"), Col("msg", 3, "text")),
    # compare: where the engines disagree, and on what
    "disagreements": (Col("capture", 5, "name"), Col("flow_id"), Col("other_flow_id", 6), Col("client_ip", 3),
                      Col("client_port", 7), Col("server_ip", 2), Col("server_port", 1), Col("columns", 0, "text"),
                      Col("native", 0, "text"), Col("tshark", 0, "text"), Col("native_reason", 4, "text"),
                      Col("tshark_reason", 4, "text")),
    # show: evidence side by side, and the flow's packets
    "evidence": (Col("column"), Col("native", 0, "text"), Col("tshark", 0, "text"), Col("same", 1)),
    "packets": (Col("number"), Col("time_s", 1), Col("direction"), Col("flags", 2), Col("tcp_len", 2),
                Col("protocols", 3, "text")),
}
TABLE_COLUMNS = {view: tuple(c.key for c in cols) for view, cols in VIEW_COLUMNS.items()}
_KEPT = ("status", "verdict", "flow_id")  # never dropped from a view without columns of its own


def _default_columns(columns: Sequence[str]) -> tuple[Col, ...]:
    """A view without columns of its own: every column, the first and ``_KEPT`` ones always, the later ones
    dropped first, text cut."""
    return tuple(Col(c, 0 if c in _KEPT or not i else i, "keep" if c in _KEPT else "text") for i, c in enumerate(columns))


def table_width(wide: bool = False, terminal: bool | None = None) -> int | None:
    """Columns a table may use: ``None`` (every column, unshortened) with ``wide``; the terminal's width
    when the table goes to a terminal (``terminal``; by default: standard output is one); else
    ``WIDTH_NOT_A_TERMINAL``."""
    if wide:
        return None
    if terminal is None:
        try:
            terminal = sys.stdout.isatty()
        except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
            terminal = False
    return shutil.get_terminal_size((WIDTH_NOT_A_TERMINAL, 24)).columns if terminal else WIDTH_NOT_A_TERMINAL


MIN_WRAP = 20  # a terminal narrower than this (or of unknown size: 0) gets the line as it is


def wide_output(output, wide: bool) -> tuple:
    """(-o PATH, the table's width): ``-o wide`` means ``--wide``, as for ``kubectl get``; a table written
    to a file fits ``WIDTH_NOT_A_TERMINAL``."""
    if output is not None and str(output) == "wide":
        output, wide = None, True
    return output, table_width(wide, terminal=False if output is not None else None)


def for_terminal(line: str, stream) -> str:
    """``line`` as it goes to ``stream``: on a terminal narrower than it, wrapped at spaces with the
    continuation indented (a summary or a warning is read there); on a pipe or in a file, one line."""
    try:
        if not stream.isatty():
            return line
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return line
    columns = os.environ.get("COLUMNS", "")
    try:
        width = int(columns) if columns.isdigit() else os.get_terminal_size(stream.fileno()).columns
    except (ValueError, OSError, AttributeError):
        width = WIDTH_NOT_A_TERMINAL
    if width < MIN_WRAP or len(line) <= width or "\n" in line:  # a terminal of unknown (0) or tiny size
        return line
    import textwrap

    return "\n".join(textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False,
                                    break_long_words=False))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _cell(name: str, value) -> object:
    if name in TIME_COLUMNS and isinstance(value, (int, float)):
        return iso(value)
    return value


_AUTO = object()


def render(rows: Sequence[dict], columns: Sequence[str], fmt: str, view: str = "flows", width=_AUTO) -> str:
    """``rows`` as ``fmt``.  ``width`` (tables only): the columns the table fits in, ``None`` for every
    column unshortened; by default :func:`table_width` of standard output."""
    if fmt == "json":
        return json.dumps([{c: _cell(c, r[c]) for c in columns} for r in rows], indent=2) + "\n"
    if fmt == "csv":
        return "".join(render_lines(rows, columns, fmt, view))
    if fmt == "markdown":
        cells = [[_text(_cell(c, r[c])) for c in columns] for r in rows]
        head = "| " + " | ".join(columns) + " |\n|" + "|".join("---" for _ in columns) + "|\n"  # our own names
        return head + "".join("| " + " | ".join(markdown_cell(x) for x in row) + " |\n" for row in cells)
    cols = VIEW_COLUMNS.get(view) or _default_columns(columns)
    cells = [[_text(_cell(c.key, c.value(r) if c.value else r[c.key])) for c in cols] for r in rows]
    return table([c.header for c in cols], cells, table_width() if width is _AUTO else width, cols)


def table(headers: Sequence[str], cells: list[list[str]], width: int | None, cols: Sequence[Col]) -> str:
    """Aligned text lines, fitted to ``width`` by :func:`fit`."""
    natural = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    widths = fit(cols, natural, width)
    shown = [i for i, w in enumerate(widths) if w]
    lines = ["  ".join(headers[i].ljust(widths[i]) for i in shown).rstrip()]
    lines += ["  ".join(_shorten(row[i], widths[i], cols[i].fit).ljust(widths[i]) for i in shown).rstrip()
              for row in cells]
    return "\n".join(lines) + "\n"


def fit(cols: Sequence[Col], natural: Sequence[int], width: int | None) -> list[int]:
    """Each column's width, 0 for a dropped one: kubectl's way of fitting ``width`` (see the module's doc).

    Columns of rank 0 stay; the others join by rank while every shown column still fits at its wished
    width (a ``keep`` column: its full width; a name: a quarter of ``width``; text: ``TEXT_MIN``); the
    room left widens the narrowest shortened column, up to its full width.  Past the width even at
    ``HARD_MIN``, the line is longer than ``width`` rather than a STATUS split."""
    if width is None:
        return list(natural)
    wish = {"name": max(NAME_MIN, width // NAME_SHARE), "text": TEXT_MIN}
    wished = [min(n, wish[c.fit]) if c.fit in wish else n for c, n in zip(cols, natural)]

    def need(chosen) -> int:
        return sum(wished[i] for i in chosen) + GAP * (len(chosen) - 1)

    chosen = [i for i, c in enumerate(cols) if c.rank == 0]
    for i in sorted((i for i, c in enumerate(cols) if c.rank), key=lambda i: cols[i].rank):
        if need(chosen + [i]) <= width:
            chosen.append(i)
    widths = [wished[i] if i in chosen else 0 for i in range(len(cols))]
    spare = width - need(chosen)
    for kind in ("name", "text"):  # narrower than wished (rank-0 columns alone overflow), widest first
        while spare < 0:
            over = [i for i in chosen if cols[i].fit == kind and widths[i] > min(HARD_MIN, natural[i])]
            if not over:
                break
            widths[max(over, key=lambda i: widths[i])] -= 1
            spare += 1
    while spare > 0:  # wider than wished, narrowest first, up to the full width
        under = [i for i in chosen if cols[i].fit != "keep" and widths[i] < natural[i]]
        if not under:
            break
        widths[min(under, key=lambda i: widths[i])] += 1
        spare -= 1
    return widths


def _shorten(cell: str, width: int, how: str) -> str:
    if len(cell) <= width or how == "keep":
        return cell
    return middle(cell, width) if how == "name" else clip_end(cell, width)


def middle(name: str, width: int) -> str:
    """``name`` in ``width`` characters, ellipsised in the middle: the start, then the end of its last
    ``-`` part (a pod's random suffix: ``emojivoto/web-lnh8f…-g9cvx``)."""
    if len(name) <= width:
        return name
    if width < 2:
        return name[:width]
    dash = name.rfind("-")
    suffix = len(name) - dash if dash > 0 else 0
    tail = min(suffix, (width - 1) // 3) if suffix else (width - 1) // 3
    head = width - 1 - tail
    return name[:head] + ELLIPSIS + (name[len(name) - tail:] if tail else "")


def clip_end(cell: str, width: int) -> str:
    """``cell`` cut at its end to ``width`` characters, the cut marked."""
    return cell if len(cell) <= width else cell[: max(width - 1, 0)] + ELLIPSIS


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
