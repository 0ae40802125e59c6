"""Inputs the mutation fuzzer (tools/fuzz.py) once found to crash, hang or grow memory, replayed through the
same entry points on every run, plus a short fixed-seed campaign so a new crash in a common path shows
here before anyone runs the long one."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FINDINGS = ROOT / "tests" / "data" / "fuzz"


def load_fuzzer():
    spec = importlib.util.spec_from_file_location("mtls_fuzz", ROOT / "tools" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = load_fuzzer()
KEPT = sorted(p for p in FINDINGS.glob("*") if p.name.split("-", 1)[0] in FUZZ.TARGETS) if FINDINGS.is_dir() else []


@pytest.mark.parametrize("path", KEPT, ids=lambda p: p.name)
def test_kept_finding_is_handled(path, tmp_path):
    target = path.name.split("-", 1)[0]
    assert FUZZ.run_case(target, path.read_bytes(), tmp_path, hang_s=10.0) is None


@pytest.mark.parametrize("target", sorted(FUZZ.TARGETS))
def test_short_campaign_finds_nothing(target, tmp_path):
    rng = random.Random(20261206)
    seeds = FUZZ.seeds_for(target)
    for _ in range(150):
        data = FUZZ.next_case(target, seeds, rng)
        assert FUZZ.run_case(target, data, tmp_path, hang_s=10.0) is None, data[:64]


def test_mutations_change_the_input():
    rng = random.Random(1)
    seed = (ROOT / "captures" / "demo-transparent.pcapng").read_bytes()
    assert sum(FUZZ.mutate(seed, rng, seed) != seed for _ in range(50)) >= 45
