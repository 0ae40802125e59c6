"""Build ``mtls-analyzer.pyz``: the standard-library part of this package as one zipapp for a bare python3.

The zipapp holds ``analyzer`` (capture, flows, tls, classify, report rows and rendering, kube pod lists,
the tshark engine, live capture) with ``analyzer.sidecar:main`` as its entry point.  Left out: the click
CLI (``cli.py``, ``commands/``), the lab, the pyshark drill-down and the pandas frame builder, none of
which the linkerd-debug image could import.  ``tools/build_pyz.py`` writes it to a file; ``kubectl mtls
audit --analyze-in-pod`` builds it in memory and sends it into the debug container.  Standard library only.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipapp
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
EXCLUDE = ("cli.py", "__main__.py", "commands", "lab", "engines/drilldown.py", "report/frames.py", "distributed")
INTERPRETER = "/usr/bin/env python3"


def build(output) -> None:
    """Write the zipapp to ``output`` (a path or a binary file object)."""
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "analyzer"
        shutil.copytree(PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.md"))
        for rel in EXCLUDE:
            target = pkg / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        # python -m analyzer inside the zip would look for the click CLI: point it at the sidecar.
        (pkg / "__main__.py").write_text("from analyzer.sidecar import main\n\nmain()\n")
        zipapp.create_archive(tmp, output, interpreter=INTERPRETER, main="analyzer.sidecar:main", compressed=True)


def build_bytes() -> bytes:
    out = io.BytesIO()
    build(out)
    return out.getvalue()
