"""Shared fixtures: scenario captures built by ``pcapgen`` into tmp dirs, the pipeline, the CLI.

Captures are built from code (``tests/pcapgen.py``), never committed binaries, and written to
pytest's temporary directories. Helpers that turn a report into plain Python values live here, so
that test files compare against literals (``row["verdict"] == "tls"``) without pandas details.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
# Test modules import ``pcapgen``/``tlsbytes`` as top-level modules whatever pytest's import mode.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import pcapgen  # noqa: E402


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
def plain(value):
    """pandas/numpy scalars -> Python values; missing (NA/NaN/None) -> None."""
    if value is None:
        return None
    try:
        import pandas as pd
        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            return value
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def absent(value) -> bool:
    """A missing string cell. The schema's nullable ``string`` columns may hold NA or "" for "none"."""
    return value is None or value == ""


def rows(df) -> list[dict]:
    return [{k: plain(v) for k, v in rec.items()} for rec in df.to_dict("records")]


def epoch_s(value) -> float:
    """A timestamp column value (float seconds or a pandas Timestamp) as float epoch seconds."""
    import pandas as pd
    if isinstance(value, pd.Timestamp):
        return value.value / 1e9
    return float(value)


def count_in(value, key_part: str | None = None) -> int:
    """Sum the integer leaves of a (nested) stats value, optionally only under keys containing
    ``key_part`` (case-insensitive). Strings and booleans are not counts."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        return 0
    if isinstance(value, int):
        return value if key_part is None else 0
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return 0
    total = 0
    for k, v in items:
        if key_part is None or key_part.lower() in str(k).lower():
            total += count_in(v)
        else:
            total += count_in(v, key_part)
    return total


def unsupported(stats: dict, key_part: str | None = None) -> int:
    """Frames counted in ``stats["frames_unsupported"]`` (reason -> count), optionally one reason."""
    return count_in(stats["frames_unsupported"], key_part)


def is_truncated(report) -> bool:
    return report.stats["truncated"]


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
LAB_LOCK = "/tmp/mtlslab.lock"
_lab_lock_fd = None


@pytest.fixture(scope="session")
def lab_lock():
    """Serialise live-lab use across test processes on this machine (``lab up`` tears down any other
    lab).  Held once per process until it exits, so fixtures that need it may ask for it freely."""
    import fcntl

    global _lab_lock_fd
    if _lab_lock_fd is None:
        _lab_lock_fd = open(LAB_LOCK, "w")  # noqa: SIM115 - held for the life of the process
        fcntl.flock(_lab_lock_fd, fcntl.LOCK_EX)
    yield
