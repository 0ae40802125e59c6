"""Shared fixtures: scenario captures built by ``pcapgen`` into tmp dirs, the pipeline, the CLI.

Captures are built from code (``tests/pcapgen.py``), never committed binaries, and written to
pytest's temporary directories. Helpers that turn a report into plain Python values live here, so
that test files compare against literals (``row["verdict"] == "tls"``) without pandas details.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
# Test modules import ``pcapgen``/``tlsbytes``/``paths`` as top-level modules whatever pytest's import mode.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import paths  # noqa: E402
import pcapgen  # noqa: E402
from paths import REPO  # noqa: E402
from support import rows  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--corpus", metavar="DIR", help="the public capture corpus (truth.csv, files/); "
                     "default $MTLS_CORPUS, else ../shared/corpus beside the repository")


def pytest_configure(config):
    # Before collection, so that modules reading ``paths.CORPUS`` at import see the option.
    if config.getoption("--corpus"):
        paths.CORPUS = Path(config.getoption("--corpus")).resolve()


# --- building captures ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def scenario_dir(tmp_path_factory) -> Path:
    """Every ``pcapgen`` scenario written once per session (read-only for tests)."""
    directory = tmp_path_factory.mktemp("scenarios")
    pcapgen.write_all(directory)
    return directory


@pytest.fixture(scope="session")
def scenario(scenario_dir):
    """``scenario("tls13-identity") -> Path`` of the session-built capture."""
    index = {p.name.split(".")[0]: p for p in scenario_dir.iterdir()}

    def get(name: str) -> Path:
        return index[name]
    return get


@pytest.fixture
def write_capture(tmp_path):
    """``write_capture(data, "name.pcap") -> Path``: a one-off capture in this test's tmp dir."""
    def write(data: bytes, filename: str = "capture.pcap") -> Path:
        path = tmp_path / filename
        path.write_bytes(data)
        return path
    return write


# --- plain values from the report -------------------------------------------------------------
@pytest.fixture(scope="session")
def analyze():
    from analyzer import analyze as _analyze
    return _analyze


@pytest.fixture
def one_flow(analyze, scenario):
    """``one_flow("tls13-identity", **kw) -> dict``: the single flow (localhost or not) of a scenario."""
    def get(name_or_path, **kw) -> dict:
        path = name_or_path if isinstance(name_or_path, Path) else scenario(name_or_path)
        report = analyze(path, **kw)
        flows = rows(report.all_flows)
        assert len(flows) == 1, [(f["client_port"], f["server_port"], f["verdict"]) for f in flows]
        return flows[0]
    return get


# --- the CLI ----------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path):
    """Run ``python -m analyzer ARGS`` in a subprocess (real exit codes, real stderr)."""
    def run(*args, input: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
        return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], input=input,
                              capture_output=True, cwd=cwd or tmp_path, env=env, timeout=120)
    return run


# --- the one live lab per machine -------------------------------------------------------------
@pytest.fixture(scope="session")
def lab_lock():
    """Serialise live-lab use across test processes on this machine (``lab up`` tears down any other
    lab).  Held until the session ends; ``labutil.lab_lock`` is re-entrant, so tests that also take
    it inside (``running_lab``) do not wait for themselves."""
    import labutil

    with labutil.lab_lock():
        yield
