"""Flow rows back from files ``analyze`` wrote: a Parquet dataset (a folder), a Parquet file, JSON Lines.

Role: ``mtls-analyzer edges`` judges stored flows against a (new) pod list without the captures.  The
rows come back as ``analyze`` made them (schema names, timestamps as seconds since the epoch, NA as
None), so ``edges.edge_rows`` and ``pairs.aggregate_pairs`` see what they would have seen.

Rules: the file must hold every flow column (``schema.FLOW_COLUMNS``); anything else is an
``AnalyzerError`` naming the file, never a traceback.  Parquet needs pyarrow (read in record batches,
files in name order); JSON Lines is standard library.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Iterator

from ..errors import AnalyzerError
from .schema import FLOW_NAMES, TIME_COLUMNS

PARQUET_MAGIC = b"PAR1"


def load_flow_rows(path: str | os.PathLike) -> list[dict]:
    """Every flow row of ``path``: a folder of Parquet files (any depth), one Parquet file, or JSON Lines."""
    name = os.fspath(path)
    if os.path.isdir(name):
        return [row for f in flow_files(name) for row in _parquet_rows(f)]
    try:
        with open(name, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise AnalyzerError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return list(_parquet_rows(name) if head == PARQUET_MAGIC else _jsonl_rows(name))


def flow_files(path: str | os.PathLike) -> list[str]:
    """The files ``load_flow_rows`` reads for ``path``: a folder's .parquet files (any depth, in name
    order), or the file itself."""
    name = os.fspath(path)
    if not os.path.isdir(name):
        return [name]
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(name) for f in fs if f.endswith(".parquet"))
    if not files:
        raise AnalyzerError(f"{name}: no .parquet files in this folder")
    return files


def _check(name: str, columns) -> None:
    missing = [c for c in FLOW_NAMES if c not in columns]
    if missing:
        raise AnalyzerError(f"{name}: not a flows table written by `mtls-analyzer analyze --view flows` "
                            f"(no column {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")


def _parquet_rows(name: str) -> Iterator[dict]:
    from .export import _pyarrow

    pa, pq = _pyarrow()
    try:
        pf = pq.ParquetFile(name)
        _check(name, pf.schema_arrow.names)
        for batch in pf.iter_batches(columns=list(FLOW_NAMES)):
            cols = {}
            for c in FLOW_NAMES:
                col = batch.column(c)
                if c in TIME_COLUMNS:  # ns since the epoch -> seconds, as the analysis made them
                    col = col.cast(pa.int64())
                    cols[c] = [None if v is None else v / 1e9 for v in col.to_pylist()]
                else:
                    cols[c] = col.to_pylist()
            yield from (dict(zip(FLOW_NAMES, values)) for values in zip(*(cols[c] for c in FLOW_NAMES)))
    except (OSError, pa.ArrowException) as exc:
        raise AnalyzerError(f"{name}: not a readable Parquet file: {exc}") from None


def _jsonl_rows(name: str) -> Iterator[dict]:
    with open(name, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnalyzerError(f"{name}:{n}: not JSON Lines: {exc.msg}") from None
            if not isinstance(row, dict):
                raise AnalyzerError(f"{name}:{n}: not a JSON object")
            _check(f"{name}:{n}", row)
            for c in TIME_COLUMNS & row.keys():
                row[c] = _seconds(name, n, row[c])
            yield row


def _seconds(name: str, n: int, value) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise AnalyzerError(f"{name}:{n}: not a timestamp: {value!r}") from None
