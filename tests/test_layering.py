"""The core runs on a bare python3 (the linkerd-debug image has no pip packages).

Checked for real: a child interpreter started with ``-S -I`` (no site-packages at all) imports the core,
analyses the bundled demo capture and renders every output format.  A module that reached for click,
pandas, scapy or pyshark would fail to import there.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from paths import REPO
CORE = ["capture", "flows", "tls", "live", "classify.py", "protocols.py", "api.py", "errors.py",
        "report/schema.py", "report/pairs.py", "report/render.py"]

SCRIPT = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from analyzer.api import analyze
from analyzer.report.render import render, FORMATS
from analyzer.report.schema import FLOW_NAMES, PAIR_NAMES
r = analyze({str(REPO / 'captures' / 'demo-transparent.pcapng')!r})
for fmt in FORMATS:
    render(r.flow_rows, FLOW_NAMES, fmt, "flows")
    render(r.pair_rows, PAIR_NAMES, fmt, "pairs")
bad = sorted(m for m in ("pandas", "click", "scapy", "pyshark", "numpy") if m in sys.modules)
print(len(r.flow_rows), bad)
"""


def test_core_runs_without_site_packages():
    out = subprocess.run([sys.executable, "-S", "-I", "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    flows, bad = out.stdout.split(" ", 1)
    assert int(flows) > 0
    assert bad.strip() == "[]"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_only_the_standard_library():
    stdlib = sys.stdlib_module_names | {"analyzer", "__future__"}
    files = []
    for part in CORE:
        p = REPO / "analyzer" / part
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    offenders = {str(f.relative_to(REPO)): sorted(_imports(f) - stdlib) for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_tls_package_does_not_reach_up_the_layers():
    """tls/ is the bottom layer: it may use analyzer.errors and itself, nothing else of ours."""
    for f in (REPO / "analyzer" / "tls").rglob("*.py"):
        text = f.read_text()
        for layer in ("analyzer.flows", "analyzer.capture", "analyzer.classify", "analyzer.report", "analyzer.api"):
            assert layer not in text, f"{f.name} imports {layer}"
