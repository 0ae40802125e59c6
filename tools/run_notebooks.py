"""Execute every notebook under notebooks/ top to bottom with nbclient; exit 1 on the first failing cell.

    python tools/run_notebooks.py                    # all notebooks, outputs discarded
    python tools/run_notebooks.py --out /tmp/nb      # keep executed copies there (to look at the plots)
    python tools/run_notebooks.py --check-stripped   # also fail if a committed notebook has outputs

Each notebook runs in a fresh ``python3`` kernel with notebooks/ as its working directory, as a user
opening it in Jupyter would.  The kernel runs inside an asyncio event loop, which is the point: the
analyzer's API must work there (pyshark#360, #542).  tests/test_notebooks.py calls ``run`` for CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMEOUT_S = 600  # per cell


def notebooks() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def stripped_problems(path: Path) -> list[str]:
    """Cells of a committed notebook that carry outputs or execution counts (they must be stripped)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [f"{path.name}: cell {i} has outputs or an execution count"
            for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]


def run(path: Path, out_dir: Path | None = None, timeout: int = TIMEOUT_S):
    """Execute one notebook; returns the executed notebook.  Raises ``nbclient.exceptions.CellExecutionError``."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / path.name)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, help="write executed copies to this directory")
    parser.add_argument("--check-stripped", action="store_true", help="fail if a committed notebook has outputs")
    args = parser.parse_args(argv)
    from nbclient.exceptions import CellExecutionError

    failed = 0
    for path in notebooks():
        problems = stripped_problems(path) if args.check_stripped else []
        for line in problems:
            print(line, file=sys.stderr)
        try:
            run(path, args.out)
        except CellExecutionError as exc:
            print(f"{path.relative_to(ROOT)}: FAILED\n{exc}", file=sys.stderr)
            failed += 1
            continue
        failed += bool(problems)
        print(f"{path.relative_to(ROOT)}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
