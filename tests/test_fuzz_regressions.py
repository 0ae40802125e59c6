"""Inputs the fuzzers (tools/fuzz.py, mutation; tools/fuzz_atheris.py, coverage-guided) once found to crash,
hang or grow memory, replayed through the same entry points on every run, plus a short fixed-seed campaign
so a new crash in a common path shows here before anyone runs the long one.  Atheris itself is not needed:
its harnesses are plain functions of bytes."""

from __future__ import annotations

import importlib.util
import random
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FINDINGS = ROOT / "tests" / "data" / "fuzz"


def load_fuzzer(name: str = "fuzz"):
    spec = importlib.util.spec_from_file_location(f"mtls_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = load_fuzzer()
COVERAGE = load_fuzzer("fuzz_atheris")
COVERAGE.load()
KEPT = sorted(p for p in FINDINGS.glob("*") if p.name.split("-", 1)[0] in FUZZ.TARGETS) if FINDINGS.is_dir() else []
KEPT_COVERAGE = sorted(p for p in FINDINGS.glob("*") if p.name.split("-", 1)[0] in COVERAGE.TARGETS) if FINDINGS.is_dir() else []


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


def run_coverage_case(target: str, data: bytes) -> None:
    """One input through an Atheris harness, under the same 10 s limit as a libFuzzer ``-timeout=10``."""
    def on_alarm(signum, frame):
        raise FUZZ.Hang()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 10.0)
    try:
        COVERAGE.TARGETS[target](data)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("path", KEPT_COVERAGE, ids=lambda p: p.name)
def test_kept_coverage_finding_is_handled(path):
    run_coverage_case(path.name.split("-", 1)[0], path.read_bytes())


@pytest.mark.parametrize("target", sorted(COVERAGE.TARGETS))
def test_coverage_harnesses_take_their_seeds_and_mutations(target):
    """Every harness runs on its seeds and on mutations of them (what the long campaign starts from)."""
    rng = random.Random(20261206)
    seeds = COVERAGE.seeds(target)
    assert seeds
    for data in seeds + [FUZZ.mutate(rng.choice(seeds)[:20000], rng, rng.choice(seeds)) for _ in range(40)]:
        run_coverage_case(target, data)


def test_frame_records_round_trip():
    """The flows harness reads back the frames a reader produced (its seeds are real captures)."""
    from analyzer.capture.reader import CaptureReader

    with CaptureReader(ROOT / "captures" / "demo-transparent.pcapng") as reader:
        buf, frames = next(reader.iter_batches())
        frames = list(frames)[:50]
    got_buf, got = COVERAGE.frames_of(COVERAGE.frame_records(buf, frames))
    assert [(lt, cap, wire) for _ts, lt, _off, cap, wire, _if in got] == [(f[1], f[3], f[4]) for f in frames]
    assert [got_buf[f[2]:f[2] + f[3]] for f in got] == [buf[f[2]:f[2] + f[3]] for f in frames]
