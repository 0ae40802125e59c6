"""Fixtures for the mesh lab tests: bundled captures, a root/netns gate, and a live lab."""

from __future__ import annotations

import shutil

import pytest


def netns_unavailable() -> str | None:
    """Why the live lab cannot run here, or None (the probe lives in tests/labutil.py)."""
    import labutil

    return labutil.netns_unavailable()


@pytest.fixture(scope="session")
def netns_ok(request) -> None:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    request.getfixturevalue("lab_lock")  # one live lab per machine: wait for any other test run
    # Missing tools are install bugs, not reasons to skip: fail loudly with the install line.
    for tool, package in (("tshark", "tshark"), ("nft", "nftables")):
        assert shutil.which(tool), f"{tool} missing: apt-get install -y {package}"
