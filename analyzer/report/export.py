"""Rows and audit documents -> files for other programs: Parquet, JSON Lines, the report JSON.

Role: the machine-readable side of the report layer.

* ``write_parquet``: flows, pairs or edges with the schema's dtypes (nullable ints, categories as
  dictionaries, UTC timestamps), each column's description in the Parquet field metadata.  pyarrow is an
  optional dependency (``pip install 'mtls-analyzer[report]'``); without it, ``BackendUnavailable``
  says so.
* ``iter_jsonl`` / ``write_jsonl``: one JSON object per line, timestamps as ISO 8601 UTC, for streaming
  consumers (``jq -c``, log shippers).
* ``write_report_json`` / ``load_report_json``: the audit document of ``report/audit.py``, whose layout
  ``docs/report.schema.json`` documents, written row by row as it is made (its flows are never all held);
  loading checks ``schema`` and ``schema_version``.

Rules: values are written as the schema defines them and never reinterpreted; a bad input file raises
``AnalyzerError`` naming the file.  pandas and pyarrow are imported only when Parquet is asked for.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import IO, Callable, Iterable, Iterator, Sequence

from ..errors import AnalyzerError, BackendUnavailable
from ..jsonstream import JsonStream, read_object
from .audit import REPORT_SCHEMA, REPORT_SCHEMA_VERSION
from .render import iso
from .schema import EDGE_COLUMNS, FLOW_COLUMNS, PAIR_COLUMNS, TIME_COLUMNS, Column

VIEW_COLUMNS: dict[str, tuple[Column, ...]] = {"flows": FLOW_COLUMNS, "pairs": PAIR_COLUMNS, "edges": EDGE_COLUMNS}
PYARROW_HINT = "python3 -m pip install 'mtls-analyzer[report]' (or just pyarrow)"
_TIMES = TIME_COLUMNS | {c.name for c in EDGE_COLUMNS if c.dtype.startswith("datetime")}


# -- JSON Lines --------------------------------------------------------------------------------------------
_LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # one encoder for every row


def iter_jsonl(rows: Iterable[dict], columns: Sequence[str]) -> Iterator[str]:
    """One compact JSON object per row, keys in schema order, each ending in a newline; times as ISO 8601."""
    times = [c for c in columns if c in _TIMES]
    for row in rows:
        out = {c: row[c] for c in columns}
        for c in times:
            value = out[c]
            if isinstance(value, (int, float)):
                out[c] = iso(value)
        yield _LINE(out) + "\n"


def write_jsonl(rows: Iterable[dict], columns: Sequence[str], out: IO[str]) -> int:
    """Write rows to a text stream as JSON Lines; returns the number of rows."""
    n = 0
    for line in iter_jsonl(rows, columns):
        out.write(line)
        n += 1
    return n


def read_jsonl(lines: Iterable[str], where: str) -> list[dict]:
    """Rows written by :func:`iter_jsonl` back into rows as the library makes them (times as epoch seconds)."""
    from datetime import datetime

    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            for name in _TIMES & row.keys():
                if isinstance(row[name], str):
                    row[name] = datetime.fromisoformat(row[name].replace("Z", "+00:00")).timestamp()
        except (ValueError, AttributeError) as exc:
            raise AnalyzerError(f"{where}: line {number} is not a JSON row: {exc}") from None
        if not isinstance(row, dict):
            raise AnalyzerError(f"{where}: line {number} is not a JSON object")
        rows.append(row)
    return rows


# -- Parquet -----------------------------------------------------------------------------------------------
def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise BackendUnavailable(f"Parquet output needs pyarrow: {PYARROW_HINT}") from None
    return pyarrow, pyarrow.parquet


def write_parquet(rows: Sequence[dict], columns: Sequence[Column], path: str | os.PathLike, view: str = "") -> None:
    """Write rows as one Parquet file; dtypes from ``columns``, descriptions in the field metadata."""
    pa, pq = _pyarrow()
    from .. import __version__
    from .frames import to_frame

    frame = to_frame(rows, columns)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    described = pa.schema(
        [table.schema.field(c.name).with_metadata({"description": c.description}) for c in columns],
        metadata={**(table.schema.metadata or {}), b"mtls_analyzer.view": view.encode(),
                  b"mtls_analyzer.version": __version__.encode()},
    )
    pq.write_table(table.cast(described), os.fspath(path))


def export_view(rows: Sequence[dict], view: str, fmt: str, output: str | os.PathLike | None, stdout: IO[str]) -> None:
    """``analyze --format parquet|jsonl``: rows of ``view`` to ``output`` (JSON Lines may go to ``stdout``)."""
    columns = VIEW_COLUMNS[view]
    if fmt == "jsonl":
        if output is None:
            write_jsonl(rows, [c.name for c in columns], stdout)
            return
        with open(output, "w", encoding="utf-8") as f:
            write_jsonl(rows, [c.name for c in columns], f)
        return
    if fmt != "parquet":
        raise ValueError(f"not an export format: {fmt!r}")
    if output is None:
        raise AnalyzerError("--format parquet writes a binary file: give -o PATH")
    write_parquet(rows, columns, output, view)


# -- the report JSON ---------------------------------------------------------------------------------------
def iter_report_json(doc: dict) -> Iterator[str]:
    """The text of ``json.dump(doc, indent=1, ensure_ascii=False)``, in pieces: the document's arrays
    (``edges``, ``flows``: lists, or ``audit.DocumentFlows`` made as they are read) one row at a time, so
    the text is never whole in memory and the flows never all at once.

    ``json`` indents a value by its depth only and escapes every newline inside a string, so a row dumped
    alone and indented by its depth is the text ``json.dump`` writes for it in place."""
    yield "{"
    for n, (key, value) in enumerate(doc.items()):
        yield ("\n " if n == 0 else ",\n ") + json.dumps(key, ensure_ascii=False) + ": "
        if isinstance(value, (str, dict)) or not isinstance(value, Iterable):
            yield _dumps(value, "\n ")
            continue
        empty = True
        for row in value:
            yield ("[\n  " if empty else ",\n  ") + _dumps(row, "\n  ")
            empty = False
        yield "[]" if empty else "\n ]"
    yield "\n}\n" if doc else "}\n"


# A row of scalars (a flow) as ``indent=1`` lays it out, less its braces' own lines, by json's C encoder
# (which ``indent`` turns off): about half the time of ``json.dumps(row, indent=1)``.
_PAIRS = json.JSONEncoder(ensure_ascii=False, separators=(",\n ", ": "))
_NESTED = (dict, list, tuple)


def _dumps(value, newline: str) -> str:
    """``value`` as ``json.dump(..., indent=1)`` writes it at the depth whose line break is ``newline``."""
    if isinstance(value, dict) and value and not any(map(isinstance, value.values(), itertools.repeat(_NESTED))):
        text = "{\n " + _PAIRS.encode(value)[1:-1] + "\n}"
    else:
        text = json.dumps(value, indent=1, ensure_ascii=False)
    return text.replace("\n", newline)


def write_report_json(doc: dict, path: str | os.PathLike) -> None:
    """The audit document, indented, keys in document order (stable diffs in version control), written
    as it is made (:func:`iter_report_json`)."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(iter_report_json(doc))


def load_report_json(path: str | os.PathLike, skip: Sequence[str] = ()) -> dict:
    """Read a report written by ``write_report_json``; refuses other JSON and other schema versions.
    The arrays named in ``skip`` (``flows``: what ``diff`` does not need) are read element by element and
    kept empty, so a report of a million flows costs its edges."""
    def drop() -> Callable[[object], None]:
        return lambda _element: None

    try:
        with open(path, encoding="utf-8") as f:
            doc = read_object(JsonStream(f, str(path), AnalyzerError, "expected a report written by "
                                         "`mtls-analyzer report --json`", "a report"), dict.fromkeys(skip, drop))
    except OSError as exc:
        raise AnalyzerError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise AnalyzerError(f"{path}: not valid JSON (not UTF-8: {exc.reason} at byte {exc.start})") from None
    if not isinstance(doc, dict) or doc.get("schema") != REPORT_SCHEMA:
        raise AnalyzerError(f"{path}: not an mtls-analyzer report (write one with `mtls-analyzer report --json`)")
    version = doc.get("schema_version")
    if version != REPORT_SCHEMA_VERSION:
        raise AnalyzerError(f"{path}: report schema version {version!r}; this mtls-analyzer reads version "
                            f"{REPORT_SCHEMA_VERSION}")
    if not isinstance(doc.get("edges"), list):
        raise AnalyzerError(f"{path}: report has no edges list")
    return doc
