"""The schema, the DataFrames, the generated docs and the CLI help agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from analyzer import analyze
from analyzer.cli import cli
from analyzer.report.schema import FLOW_COLUMNS, PAIR_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "captures" / "demo-transparent.pcapng"


def _check(df: pd.DataFrame, columns) -> None:
    assert list(df.columns) == [c.name for c in columns]
    for c in columns:
        assert str(df[c.name].dtype) == c.dtype, c.name


def test_frames_follow_the_schema():
    report = analyze(DEMO)
    assert len(report.flows) > 0 and len(report.pairs) > 0
    _check(report.flows, FLOW_COLUMNS)
    _check(report.all_flows, FLOW_COLUMNS)
    _check(report.pairs, PAIR_COLUMNS)
    assert report.flows["first_ts"].min().year >= 2026


def test_empty_frames_still_have_every_column(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    report = analyze(empty)
    assert len(report.flows) == 0
    _check(report.flows, FLOW_COLUMNS)
    _check(report.pairs, PAIR_COLUMNS)


def test_analyze_docstring_names_the_returned_frames():
    from analyzer.api import analyze as api_analyze

    assert "Returns" in api_analyze.__doc__ and ".flows" in api_analyze.__doc__


def test_generated_docs_are_current():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def _commands(group: click.Group, path=()):
    for name, cmd in group.commands.items():
        yield path + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path + (name,))


@pytest.mark.parametrize("path", [p for p, _ in _commands(cli)], ids=lambda p: " ".join(p))
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    cmd = cli
    for name in path:
        cmd = cmd.commands[name]
    assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
