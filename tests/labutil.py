"""Shared by test_live*/test_pyz*: one lab per machine, behind an fcntl lock on /tmp/mtlslab.lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

LOCK = Path("/tmp/mtlslab.lock")
LOCK_WAIT_S = 900.0


def netns_unavailable(why_root: str = "network namespaces, nftables, capturing on -i any") -> str | None:
    """Why no live lab can run here, or None: only root with working network namespaces counts."""
    if os.geteuid() != 0:
        return f"needs root ({why_root})"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"mtlslab-probe-{os.getpid()}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"network namespaces unavailable: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def lab_unavailable() -> str | None:
    reason = netns_unavailable()
    if reason:
        return reason
    for tool in ("nft", "tshark", "dumpcap", "capinfos"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


_held = 0  # nesting depth of lab_lock() in this process
_handle = None


@contextlib.contextmanager
def lab_lock():
    """Exclusive use of the machine's one lab, across processes; re-entrant within one process
    (an flock taken twice by one process on two descriptors would wait for itself forever)."""
    global _held, _handle
    if _held == 0:
        handle = LOCK.open("a")
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise TimeoutError(f"{LOCK} held for more than {LOCK_WAIT_S:.0f} s") from None
                time.sleep(0.5)
        _handle = handle
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0 and _handle is not None:
            fcntl.flock(_handle, fcntl.LOCK_UN)
            _handle.close()
            _handle = None


def lab_fixture(name: str):
    """A module-scoped pytest fixture: the live lab, up for the module's tests, skipped with the reason
    when it cannot run here.  Yields (state dir, lab model)."""
    import pytest

    @pytest.fixture(scope="module")
    def lab(tmp_path_factory):
        reason = lab_unavailable()
        if reason:
            pytest.skip(reason)
        state = tmp_path_factory.mktemp(name)
        with running_lab(state) as model:
            yield state, model

    return lab


@contextlib.contextmanager
def running_lab(state: Path, mode: str = "transparent"):
    from analyzer.lab import control

    with lab_lock():
        control.up(state, mode, lifetime_s=300)
        try:
            yield control.load(state)
        finally:
            control.down(state)


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            time.sleep(0.5)  # dumpcap is reading packets once its file header is written
            return
        if proc.poll() is not None:
            raise AssertionError(f"capture exited early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{path} not written within {timeout} s")


def capinfos_packets(path: Path) -> int:
    out = subprocess.run(["capinfos", "-c", "-M", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split("Number of packets:")[1].split()[0])
