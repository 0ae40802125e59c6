"""Where things are, for tests and benchmarks: the repository, its bundled captures, the public corpus.

One place, so no test computes ``parents[N]`` from its own depth.  The corpus of public captures with
truth lives outside the repository; its location comes from ``--corpus DIR`` (pytest option, see
conftest.py), else the ``MTLS_CORPUS`` environment variable, else ``../shared/corpus`` beside the
repository.  Tests that need it skip when it is absent (``corpus_present``).
"""

from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CAPTURES = REPO / "captures"
DEMO_CAPTURE = CAPTURES / "demo-transparent.pcapng"
DEMO_PODS = CAPTURES / "demo-transparent.pods.json"
CORPUS = Path(os.environ.get("MTLS_CORPUS") or REPO.parent / "shared" / "corpus")


def corpus_present() -> bool:
    return (CORPUS / "truth.csv").exists()
