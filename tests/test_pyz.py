"""The sidecar build: ``tools/build_pyz.py`` -> ``mtls-analyzer.pyz``, run by a python3 with no
site-packages (``-I -S``), offline and inside a lab pod's network namespace."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from labutil import capinfos_packets, lab_fixture

from paths import CAPTURES, DEMO_CAPTURE as DEMO, REPO
# Debian's python3 is what the linkerd-debug image has; any python3 >= 3.11 with -I -S is as bare.
BARE = [shutil.which("python3", path="/usr/bin") or sys.executable, "-I", "-S"]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "mtls-analyzer.pyz"
    subprocess.run([sys.executable, str(REPO / "tools" / "build_pyz.py"), "-o", str(out)], check=True, timeout=120)
    return out


def bare(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([*BARE, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def test_bare_python_has_no_packages():
    proc = bare("-c", "import click")
    assert proc.returncode != 0 and "No module named 'click'" in proc.stderr


def test_pyz_holds_only_the_stdlib_part(pyz):
    names = zipfile.ZipFile(pyz).namelist()
    assert "__main__.py" in names and "analyzer/sidecar.py" in names and "analyzer/live/session.py" in names
    assert not any(n.startswith(("analyzer/lab/", "analyzer/commands/", "analyzer/distributed/")) or n == "analyzer/cli.py"
               for n in names)
    assert pyz.stat().st_size < 1_000_000


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_pyz_analyze_prints_what_the_cli_prints(pyz, fmt, tmp_path):
    got = bare(pyz, "analyze", DEMO, "--view", "flows", "--format", fmt, "-q", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    want = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(DEMO), "--view", "flows", "--format", fmt,
                           "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert got.stdout == want.stdout


ELAPSED = re.compile(r", [0-9.]+ s$", re.M)  # the summary line's run time: the one part that differs
CLI_ENV = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def both(pyz: Path, *args, cwd) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """The same command line through ``python3 -m analyzer`` (click) and the .pyz on a bare python3."""
    cli = subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                         env=CLI_ENV, cwd=cwd, timeout=120)
    return cli, bare(pyz, *args, cwd=cwd)


WITH_PODS = sorted(p for p in CAPTURES.glob("*.pcapng") if p.with_suffix(".pods.json").exists())
SAME_OUTPUT = [  # (what is run, without the capture and the pod list) -> same stdout, stderr and exit code
    ("--pods",),  # no --view: edges, with the headline and the edges' summary
    (),  # no pod list: pairs
    ("--pods", "--fail-on", "unexpected-plaintext", "--fail-on", "unverified", "--fail-on", "plaintext"),
    ("--pods", "--resource", "deployment", "--format", "json"),
    ("--pods", "--resource", "namespace", "--trust-unknown-clients", "--format", "markdown"),
    ("--pods", "--view", "flows", "--format", "csv", "-q", "--fail-on", "plaintext"),
    ("--pods", "--view", "pairs", "--format", "jsonl", "--include-localhost"),
    ("--pods", "--wide"),  # every column, names in full
    ("--pods", "--view", "flows", "-o", "wide"),  # -o wide is --wide, as for kubectl get
]


@pytest.mark.parametrize("capture", WITH_PODS, ids=lambda p: p.stem)
@pytest.mark.parametrize("options", SAME_OUTPUT, ids=" ".join)
def test_pyz_speaks_the_cli_language(pyz, capture, options, tmp_path):
    args = ["analyze", capture, *options]
    if "--pods" in options:
        at = args.index("--pods") + 1
        args.insert(at, capture.with_suffix(".pods.json"))
    cli, got = both(pyz, *args, cwd=tmp_path)
    assert got.returncode == cli.returncode, got.stderr
    assert got.stdout == cli.stdout
    assert ELAPSED.sub("", got.stderr) == ELAPSED.sub("", cli.stderr)
    if "--fail-on" in options and "-q" not in options:
        assert cli.returncode == 3 and "--fail-on plaintext: " in cli.stderr  # the gates did run


@pytest.mark.parametrize("fmt", ["table", "jsonl"])
def test_pyz_writes_the_same_output_file(pyz, fmt, tmp_path):
    pods = DEMO.with_suffix(".pods.json")
    cli = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(DEMO), "--pods", str(pods), "--format", fmt,
                          "-o", str(tmp_path / "cli.out"), "-q"], capture_output=True, text=True, env=CLI_ENV, timeout=120)
    got = bare(pyz, "analyze", DEMO, "--pods", pods, "--format", fmt, "-o", tmp_path / "pyz.out", "-q", cwd=tmp_path)
    assert cli.returncode == got.returncode == 0 and cli.stdout == got.stdout == ""
    written = (tmp_path / "pyz.out").read_text()
    assert written == (tmp_path / "cli.out").read_text()
    assert "PLAINTEXT-UNEXPECTED" in written if fmt == "table" else '"status":"PLAINTEXT-UNEXPECTED"' in written


BAD_COMMAND_LINES = [
    ("analyze", "--no-such-option", "x"),
    ("analyze", "DEMO", "--view", "nope"),
    ("analyze", "DEMO", "--fail-on", "nope"),
    ("analyze", "DEMO", "--resource", "cluster"),
    ("analyze", "DEMO", "-j", "99"),
    ("analyze", "DEMO", "-j", "abc"),
    ("analyze", "DEMO", "--clock-skew", "-1"),
    ("analyze", "DEMO", "--fail-on", "plaintext"),  # a gate needs a pod list
    ("analyze", "DEMO", "--view", "edges"),
    ("analyze", "DEMO", "--pods", "PODS", "--kubectl"),
    ("analyze",),
    ("nosuchcommand",),
    ("analyze", "DEMO", "extra", "--format", "yaml"),
]


@pytest.mark.parametrize("args", BAD_COMMAND_LINES, ids=" ".join)
def test_pyz_bad_command_line_is_the_cli_error_line(pyz, args, tmp_path):
    """Exit 2 and one ``Error:`` line: the CLI's own last line (the .pyz prints no usage text before it)."""
    names = {"DEMO": DEMO, "PODS": DEMO.with_suffix(".pods.json")}
    cli, got = both(pyz, *(names.get(a, a) for a in args), cwd=tmp_path)
    assert cli.returncode == got.returncode == 2
    assert got.stdout == cli.stdout == ""
    assert len(got.stderr.splitlines()) == 1 and "Traceback" not in got.stderr
    assert got.stderr.strip() == cli.stderr.strip().splitlines()[-1]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_pyz_tshark_engine_on_bare_python(pyz, tmp_path):
    got = bare(pyz, "analyze", DEMO, "--engine", "tshark", "--view", "flows", "--format", "json", "-q", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    rows = json.loads(got.stdout)
    assert sum(r["verdict"] == "tls" for r in rows) == 14


def test_pyz_errors_are_one_line(pyz, tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    got = bare(pyz, "analyze", bad, cwd=tmp_path)
    assert got.returncode == 2 and got.stderr.startswith("Error: ") and len(got.stderr.splitlines()) == 1


lab = lab_fixture("mtlslab-pyz")


@pytest.mark.root
def test_pyz_capture_in_a_pod_netns_with_bare_python(lab, pyz, tmp_path):
    from analyzer.lab import control
    from analyzer.lab.expect import compare, edges_path, read_edges
    from labutil import wait_for_file

    state, model = lab
    out = tmp_path / "sidecar.pcapng"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.Popen(["ip", "netns", "exec", model.pod("voting").netns, *BARE, str(pyz), "capture",
                             "--seconds", "12", "-w", str(out), "--view", "flows", "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    wait_for_file(out, proc)
    ref = tmp_path / "reference.pcapng"
    control.capture(state, ref, "voting", seconds=3)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    rows = json.loads(stdout)
    assert not compare(rows, read_edges(edges_path(ref)))
    voting = model.pod("voting")
    assert any(r["verdict"] == "tls" and r["sni"] == voting.identity and r["mtls"] == "inferred" for r in rows)
    assert capinfos_packets(out) > 0
