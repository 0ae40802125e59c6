"""Every notebook under notebooks/ runs top to bottom in a real Jupyter kernel, and is committed stripped.

The kernel runs inside an asyncio event loop: a notebook that runs here proves the analyzer's API (and the
pyshark drill-down it calls) does not clash with Jupyter's loop (pyshark#360, #542).  Executed by
``tools/run_notebooks.py``; skipped, with the reason, without nbclient/nbformat/ipykernel (extra 'report').
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from paths import REPO
MISSING = [m for m in ("nbclient", "nbformat", "ipykernel", "matplotlib") if importlib.util.find_spec(m) is None]
needs_jupyter = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed "
                                                       "(pip install -e '.[report]')")


def _runner():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import run_notebooks
    finally:
        sys.path.pop(0)
    return run_notebooks


NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_is_a_notebook():
    assert [p.name for p in NOTEBOOKS] == ["explore.ipynb"]


@needs_jupyter
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    assert _runner().stripped_problems(path) == []


@needs_jupyter
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = _runner().run(path, out_dir=tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the bytes-per-pair bars and the timeline
    # It ends on the evidence: the cleartext bytes of a plaintext flow, read again from the capture.
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert "report.evidence(" in last.source
    text = "".join(o.get("text", "") for o in last.outputs if o.output_type == "stream")
    if path.name == "explore.ipynb":
        assert "client -> server: b'PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n" in text, text
        assert ":status\\x03200" in text and "application/grpc" in text, text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_only_the_public_api(path):
    """Pod names, the audit and the evidence come from ``analyze()``'s Report, not from helpers the
    notebook writes itself or from the audit's internals."""
    source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert "def who(" not in source and "build_audit" not in source and "report.pods.resolve" not in source
    for call in ("report.flows_with_pods(", "report.audit(", "report.evidence("):
        assert call in source
