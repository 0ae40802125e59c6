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

ROOT = REPO
CORE = ["capture", "flows", "tls", "analysis", "live", "pipeline.py", "parallel.py", "api.py", "errors.py",
        "report/schema.py", "report/pairs.py", "report/render.py", "report/result.py"]

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
        for layer in ("analyzer.flows", "analyzer.capture", "analyzer.analysis", "analyzer.report", "analyzer.api"):
            assert layer not in text, f"{f.name} imports {layer}"


DASK_FREE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from click.testing import CliRunner
from analyzer.cli import cli
runner = CliRunner()
for args in (["--help"], ["analyze", "--help"], ["analyze", {str(ROOT / 'captures' / 'demo-transparent.pcapng')!r}, "-q"],
             ["edges", "--help"]):
    assert runner.invoke(cli, args).exit_code == 0, args
from analyzer import analyze
analyze({str(ROOT / 'captures' / 'demo-transparent.pcapng')!r})
print(sorted(m for m in ("dask", "distributed", "fsspec", "aiohttp") if m in sys.modules))
"""


def test_default_cli_and_analyze_do_not_load_dask_or_fsspec():
    """The Dask engine is an optional extra: the CLI, its help and a one-machine run never import it."""
    out = subprocess.run([sys.executable, "-c", DASK_FREE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _imported_modules(path: Path) -> set[str]:
    """``analyzer.x.y`` names a module imports, relative imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(ROOT).parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            module = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module
            names.add(module or "")
            names |= {f"{module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_the_pipeline_and_engines_never_import_api():
    """Imports run downwards: the streaming loop, the byte ranges and the engines are called by ``api``,
    so none of them may import it (not even deferred inside a function)."""
    lower = [ROOT / "analyzer" / "pipeline.py", ROOT / "analyzer" / "parallel.py"]
    lower += sorted((ROOT / "analyzer" / "engines").rglob("*.py"))
    lower += sorted((ROOT / "analyzer" / "analysis").rglob("*.py"))
    offenders = {str(f.relative_to(ROOT)) for f in lower if "analyzer.api" in _imported_modules(f)}
    assert offenders == set()


def test_parallel_is_below_the_pipeline():
    """``parallel`` calls the pipeline; the pipeline never calls back into ``parallel``."""
    assert "analyzer.parallel" not in _imported_modules(ROOT / "analyzer" / "pipeline.py")
    assert "analyzer.pipeline" in _imported_modules(ROOT / "analyzer" / "parallel.py")
