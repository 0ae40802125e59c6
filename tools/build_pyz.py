#!/usr/bin/env python3
"""Build ``mtls-analyzer.pyz``: one file that runs ``analyze`` and ``capture`` on a bare python3.

    python3 tools/build_pyz.py [-o mtls-analyzer.pyz]

What goes in and what is left out: ``analyzer/pyz.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analyzer.pyz import build  # noqa: E402 - the repository first on the path, not an installed copy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=REPO / "mtls-analyzer.pyz")
    out = ap.parse_args().output
    out.parent.mkdir(parents=True, exist_ok=True)
    build(out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
