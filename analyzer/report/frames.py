"""Rows -> pandas DataFrames with the schema's columns and dtypes, always all of them, even when empty.

The only module of the report layer that imports pandas, and it does so when a frame is asked for.
"""

from __future__ import annotations

from typing import Sequence

from .schema import CATEGORIES, Column


def to_frame(rows: Sequence[dict], columns: Sequence[Column]):
    """Build one DataFrame from row dicts: one construction, then ``astype`` to the schema dtypes."""
    import pandas as pd

    names = [c.name for c in columns]
    df = pd.DataFrame.from_records([[r[n] for n in names] for r in rows], columns=names)
    for c in columns:
        if c.dtype.startswith("datetime"):
            df[c.name] = pd.to_datetime(df[c.name].astype("float64"), unit="s", utc=True).astype(c.dtype)
        elif c.dtype == "category":
            df[c.name] = pd.Categorical(df[c.name].astype("object"), categories=CATEGORIES[c.name])
        else:
            df[c.name] = df[c.name].astype(c.dtype)
    return df
