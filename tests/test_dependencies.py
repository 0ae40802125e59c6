"""The dependency ranges and the pinned set CI installs: every requirement is bounded below its next major
release, constraints.txt pins each one inside its range, and what is installed satisfies the ranges."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [Requirement(text) for text in PROJECT["dependencies"]] + [
    Requirement(text) for group in PROJECT["optional-dependencies"].values() for text in group]


def pinned() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pin = line.partition("==")
            assert pin, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[canonicalize_name(name)] = pin
    return pins


@pytest.mark.parametrize("req", REQUIREMENTS, ids=str)
def test_every_requirement_has_an_upper_bound(req):
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in req.specifier), f"{req} has no upper bound"


@pytest.mark.parametrize("req", REQUIREMENTS, ids=str)
def test_constraints_pin_every_requirement_inside_its_range(req):
    pin = pinned().get(canonicalize_name(req.name))
    assert pin is not None, f"constraints.txt does not pin {req.name}: run tools/refresh_constraints.sh"
    assert req.specifier.contains(pin, prereleases=True), f"constraints.txt pins {req.name}=={pin}, outside {req}"


@pytest.mark.parametrize("req", [r for r in REQUIREMENTS if r.name in {"click", "pandas", "pyshark"}], ids=str)
def test_installed_core_dependencies_are_inside_their_ranges(req):
    try:
        installed = version(req.name)
    except PackageNotFoundError:
        pytest.fail(f"{req.name} is not installed")
    assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} is outside {req}"
