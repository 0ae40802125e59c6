#!/usr/bin/env python3
"""Build ``mtls-analyzer.pyz``: one file that runs ``analyze`` and ``capture`` on a bare python3.

    python3 tools/build_pyz.py [-o mtls-analyzer.pyz]

The zipapp holds the standard-library-only part of ``analyzer`` (capture, flows, tls, analysis, pipeline, report
rows and rendering, kube pod lists, the tshark engine, live capture) with ``analyzer.sidecar:main`` as
its entry point.  Left out: the click CLI (``cli.py``, ``commands/``), the lab, the pyshark drill-down
and the pandas frame builder, none of which the linkerd-debug image could import.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXCLUDE = ("cli.py", "__main__.py", "commands", "lab", "engines/drilldown.py", "report/frames.py")
INTERPRETER = "/usr/bin/env python3"


def build(output: Path) -> Path:
    src = REPO / "analyzer"
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "analyzer"
        shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.md"))
        for rel in EXCLUDE:
            target = pkg / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        # python -m analyzer inside the zip would look for the click CLI: point it at the sidecar.
        (pkg / "__main__.py").write_text("from analyzer.sidecar import main\n\nmain()\n")
        output.parent.mkdir(parents=True, exist_ok=True)
        zipapp.create_archive(tmp, output, interpreter=INTERPRETER, main="analyzer.sidecar:main", compressed=True)
    return output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=REPO / "mtls-analyzer.pyz")
    out = build(ap.parse_args().output)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
