"""The schema, the DataFrames, the generated docs and the CLI help agree."""

from __future__ import annotations

import subprocess
import sys

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from analyzer import analyze
from analyzer.cli import cli
from analyzer.report.schema import FLOW_COLUMNS, PAIR_COLUMNS
from support import command_paths, console_scripts

from paths import DEMO_CAPTURE as DEMO, REPO


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
    out = subprocess.run([sys.executable, str(REPO / "tools" / "gen_docs.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


ALL_COMMANDS = [(script, path) for script, group in console_scripts().items() for path in command_paths(group)]


def test_the_command_walk_finds_the_lazy_commands():
    """The walk below must see the commands the lazy group registers only when asked for."""
    paths = {path for script, path in ALL_COMMANDS if script == "mtls-analyzer"}
    assert {(name,) for name in cli.lazy} <= paths
    assert ("lab", "up") in paths and ("kubectl-mtls", ("capture",)) in ALL_COMMANDS


@pytest.mark.parametrize("script, path", ALL_COMMANDS, ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_every_command_has_help(script, path):
    group = console_scripts()[script]
    result = CliRunner().invoke(group, [*path, "--help"], prog_name=script)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {script} {' '.join(path)} ")
    cmd, ctx = group, click.Context(group)
    for name in path:
        cmd = cmd.get_command(ctx, name)
    assert (cmd.help or "").strip(), f"{script} {' '.join(path)} has no help text"
    assert cmd.get_short_help_str(limit=300).strip(), f"{script} {' '.join(path)} has no short help"
