"""Fixtures for the mesh lab tests: bundled captures, a root/netns gate, and a live lab."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def netns_unavailable() -> str | None:
    """Why the live lab cannot run here, or None. Only root + working network namespaces count."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, tshark -i any)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"mtlslab-probe-{os.getpid()}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        return f"network namespaces unavailable: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.fixture(scope="session")
def netns_ok(request) -> None:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    request.getfixturevalue("lab_lock")  # one live lab per machine: wait for any other test run
    # Missing tools are install bugs, not reasons to skip: fail loudly with the install line.
    for tool, package in (("tshark", "tshark"), ("nft", "nftables")):
        assert shutil.which(tool), f"{tool} missing: apt-get install -y {package}"
