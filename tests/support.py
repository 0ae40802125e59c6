"""Helpers shared by the scenario tests (plain functions; fixtures live in conftest.py).

A module of its own because ``conftest`` is not importable by name: tests/ and tests/lab/ both have one.
"""

from __future__ import annotations

import math

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




def run_on_tty(cmd: list[str], **popen) -> tuple[int, str, str]:
    """Run ``cmd`` with its stderr on a pseudo-terminal: (exit code, stdout, what the terminal showed)."""
    import os
    import pty
    import subprocess

    leader, follower = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=follower, **popen)
    os.close(follower)
    shown = read_terminal(leader)
    out, _ = proc.communicate(timeout=300)
    os.close(leader)
    return proc.returncode, out.decode(), shown


def read_terminal(leader: int) -> str:
    """Everything a pseudo-terminal showed until the child closed its side."""
    import os

    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def command_paths(group, path: tuple = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand path of a click group, lazy ones included: listed and loaded through
    the group's own ``list_commands``/``get_command``, as ``--help`` does (not ``group.commands``, which
    holds only what has been loaded so far)."""
    import click

    out = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        out.append(path + (name,))
        if isinstance(cmd, click.Group):
            out += command_paths(cmd, path + (name,))
    return out


def console_scripts() -> dict:
    """Each console script's name -> its click group."""
    from analyzer.cli import cli
    from analyzer.kubectl_mtls import cli as kubectl_cli

    return {"mtls-analyzer": cli, "kubectl-mtls": kubectl_cli}
