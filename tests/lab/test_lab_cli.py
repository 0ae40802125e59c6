"""The `lab` click group: help everywhere, root required with one clear line and exit code 2."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from analyzer.lab import control
from analyzer.lab.cli import ROOT_MESSAGE, lab
from analyzer.lab.topology import Lab

COMMANDS = ("up", "capture", "down", "status")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = CliRunner().invoke(lab, [command, "--help"])
    assert result.exit_code == 0 and "--state" in result.output


@pytest.mark.parametrize("args", [["up"], ["down"], ["status"], ["capture", "--pod", "voting", "-o", "x.pcapng"]])
def test_non_root_gets_one_error_line_and_exit_2(monkeypatch, args):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(lab, args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [ROOT_MESSAGE]


def test_capture_needs_a_place(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    result = CliRunner().invoke(lab, ["capture", "--state", str(tmp_path), "-o", str(tmp_path / "x.pcapng")])
    assert result.exit_code == 2 and "give --pod POD (repeatable) and/or --node" in result.output


NOT_UP = "Error: the lab is not up: run `mtls-analyzer lab up`"


def test_capture_without_a_lab_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    result = CliRunner().invoke(lab, ["capture", "--state", str(tmp_path), "--pod", "voting",
                                      "-o", str(tmp_path / "x.pcapng")])
    assert result.exit_code == 2 and result.output.splitlines() == [NOT_UP]


def test_a_lab_that_is_down_has_no_pods_and_cannot_capture(netns_ok, tmp_path):
    """What `lab down` leaves: the state's lab.json, no namespaces (the lock keeps any other lab away)."""
    Lab.build("transparent", "2026-01-01T00:00:00Z").save(tmp_path / "lab.json")
    status = CliRunner().invoke(lab, ["status", "--state", str(tmp_path)])
    assert status.exit_code == 0 and "namespaces (0)" in status.output
    assert [line for line in status.output.splitlines() if line.startswith("  ")] == []
    assert control.status(tmp_path)["pods"] == []
    result = CliRunner().invoke(lab, ["capture", "--state", str(tmp_path), "--pod", "voting",
                                      "-o", str(tmp_path / "x.pcapng")])
    assert result.exit_code == 2 and result.output.splitlines() == [NOT_UP]
    assert not (tmp_path / "x.pcapng").exists()
