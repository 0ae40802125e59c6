"""The ``mtls-analyzer analyze`` command: formats that parse back, ``-o``, options, exit codes.

Runs the real entry point in a subprocess (``python -m analyzer``) so exit codes, stderr and the
absence of tracebacks are what a user sees. Standard input (``-``) is tested by the core's owner.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import os
import re
import subprocess
import sys

import pytest

import pcapgen as g
from paths import REPO
from support import command_paths, console_scripts

REQUIRED_FLOW_COLUMNS = ["client_ip", "client_port", "server_ip", "server_port", "verdict", "evidence",
                         "reason", "sni", "tls_version", "port_hint", "first_ts", "last_ts",
                         "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c"]
REQUIRED_PAIR_COLUMNS = ["client_ip", "server_ip", "flows", "tls", "plaintext", "unknown", "bytes",
                         "tls_versions", "status"]


ALL_COMMANDS = [(script, path) for script, group in console_scripts().items() for path in command_paths(group)]


def ok(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Traceback" not in err
    return result.stdout.decode()


def assert_bad_input(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode()
    assert result.returncode == 2, (result.returncode, err)
    assert "Traceback" not in err and "Traceback" not in result.stdout.decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error:")
    return lines[0]


def json_rows(text: str) -> list[dict]:
    """``--format json`` is one JSON array of row objects, every row with the same keys."""
    data = json.loads(text)
    assert isinstance(data, list), type(data)
    assert all(isinstance(row, dict) for row in data)
    assert len({tuple(row) for row in data}) <= 1, "rows with different keys"
    return data


def markdown_rows(text: str) -> list[dict]:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "").replace(" ", "")) <= set("-:")
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


# --- formats parse back --------------------------------------------------------------------------
def test_flows_csv(cli, scenario):
    text = ok(cli("analyze", scenario("tls13-identity"), "--view", "flows", "--format", "csv"))
    reader = csv.DictReader(io.StringIO(text))
    assert set(REQUIRED_FLOW_COLUMNS) <= set(reader.fieldnames)
    [row] = list(reader)
    assert row["client_ip"] == g.CLIENT.ip and row["client_port"] == str(g.CLIENT.port)
    assert row["server_ip"] == g.SERVER.ip and row["server_port"] == "4143"
    assert (row["verdict"], row["evidence"]) == ("tls", "handshake")
    assert row["sni"] == g.IDENTITY_SNI and row["tls_version"] == "TLS 1.3"
    assert row["identity"] == "web.emojivoto"
    assert row["packets_c2s"] == "7" and row["packets_s2c"] == "4"


def test_flows_json(cli, scenario):
    text = ok(cli("analyze", scenario("http-request"), "--view", "flows", "--format", "json"))
    [row] = json_rows(text)
    assert set(REQUIRED_FLOW_COLUMNS) <= set(row)
    assert row["verdict"] == "plaintext" and row["evidence"] == "payload"
    assert "GET /metrics" in row["reason"]
    assert row["client_port"] == g.CLIENT.port and row["server_port"] == 80      # numbers stay numbers
    assert row["bytes_c2s"] == len(g.HTTP_REQUEST) and row["bytes_s2c"] == len(g.HTTP_RESPONSE)
    assert row["sni"] in (None, "") and row["tls_version"] in (None, "")          # null or "", never "nan"
    assert isinstance(row["mesh"], bool)


def test_flows_markdown(cli, scenario):
    text = ok(cli("analyze", scenario("tls13-identity"), "--view", "flows", "--format", "markdown"))
    [row] = markdown_rows(text)
    assert row["verdict"] == "tls" and row["sni"] == g.IDENTITY_SNI
    assert row["client_ip"] == g.CLIENT.ip


def test_flows_table(cli, scenario):
    text = ok(cli("analyze", scenario("tls13-identity"), "--view", "flows", "--format", "table", "--wide"))
    header, row = text.splitlines()
    assert header.split()[:7] == ["FLOW_ID", "CLIENT_IP", "CLIENT_PORT", "SERVER_IP", "SERVER_PORT", "VERDICT",
                                  "EVIDENCE"]
    assert row.split()[:9] == ["0", g.CLIENT.ip, str(g.CLIENT.port), g.SERVER.ip, str(g.SERVER.port), "tls",
                               "handshake", "TLS", "1.3"]


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown", "table"])
def test_pairs_view_in_every_format(cli, scenario, fmt):
    text = ok(cli("analyze", scenario("pairs"), "--view", "pairs", "--format", fmt))
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert set(REQUIRED_PAIR_COLUMNS) <= set(rows[0])
    elif fmt == "json":
        rows = json_rows(text)
        assert set(REQUIRED_PAIR_COLUMNS) <= set(rows[0])
    elif fmt == "markdown":
        rows = markdown_rows(text)
    else:
        for status in ("all-tls", "plaintext-present", "mixed", "unknown-only"):
            assert status in text
        return
    status = {r["client_ip"]: r["status"] for r in rows}
    assert status == {"10.42.0.11": "all-tls", "10.42.0.13": "plaintext-present",
                      "10.42.0.14": "mixed", "10.42.0.15": "unknown-only"}


def test_default_view_is_pairs(cli, scenario):
    text = ok(cli("analyze", scenario("pairs"), "--format", "json"))
    rows = json_rows(text)
    assert len(rows) == 4 and "status" in rows[0]


def test_empty_result_still_has_a_header(cli, scenario):
    text = ok(cli("analyze", scenario("header-only"), "--view", "flows", "--format", "csv"))
    header = text.splitlines()[0].split(",")
    assert set(REQUIRED_FLOW_COLUMNS) <= set(header)
    assert json_rows(ok(cli("analyze", scenario("header-only"), "--view", "flows", "--format", "json"))) == []


# --- output file and options -------------------------------------------------------------------
def test_output_file(cli, scenario, tmp_path):
    out = tmp_path / "flows.csv"
    result = cli("analyze", scenario("tls13-identity"), "--view", "flows", "--format", "csv", "-o", out)
    assert ok(result) == ""
    [row] = list(csv.DictReader(io.StringIO(out.read_text())))
    assert row["verdict"] == "tls"
    out2 = tmp_path / "pairs.json"
    ok(cli("analyze", scenario("pairs"), "--format", "json", "--output", out2))
    assert len(json_rows(out2.read_text())) == 4


def test_output_to_unwritable_place_is_bad_input(cli, scenario, tmp_path):
    assert_bad_input(cli("analyze", scenario("tls13-identity"), "-o", tmp_path / "no-such-dir" / "x.csv"))


def test_decode_as_option(cli, scenario):
    text = ok(cli("analyze", scenario("http-8080"), "--view", "flows", "--format", "json",
                  "--decode-as", "tcp.port==8080,tls"))
    [row] = json_rows(text)
    assert row["verdict"] == "plaintext" and row["hint_conflict"] is True and row["port_hint"]


def test_decode_as_is_repeatable(cli, scenario):
    text = ok(cli("analyze", scenario("http-9999"), "--view", "flows", "--format", "json",
                  "--decode-as", "tcp.port==8080,tls", "--decode-as", "tcp.port==9999,tls"))
    [row] = json_rows(text)
    assert row["hint_conflict"] is True


def test_malformed_decode_as_is_bad_input(cli, scenario):
    line = assert_bad_input(cli("analyze", scenario("tls13-identity"), "--decode-as", "port 8080 is tls"))
    assert "decode-as" in line


def test_localhost_hidden_by_default_and_shown_on_request(cli, scenario):
    path = scenario("localhost-same-ip")
    hidden = json_rows(ok(cli("analyze", path, "--view", "flows", "--format", "json")))
    shown = json_rows(ok(cli("analyze", path, "--view", "flows", "--format", "json", "--include-localhost")))
    assert hidden == []
    assert len(shown) == 1 and shown[0]["localhost"] is True


def test_several_captures(cli, scenario):
    text = ok(cli("analyze", scenario("tls13-identity"), scenario("http-request"), "--view", "flows",
                  "--format", "json"))
    assert sorted(r["verdict"] for r in json_rows(text)) == ["plaintext", "tls"]


def test_summary_line_on_stderr(cli, scenario):
    result = cli("analyze", scenario("tls13-identity"), "--format", "csv")
    ok(result)
    (line,) = result.stderr.decode().splitlines()
    assert re.fullmatch(rf"{len(g.base_flow())} packets, 1 flows \(tls 1, plaintext 0, unknown 0\), 0 localhost "
                        r"flows excluded, 0 not-TCP packets, 0 frames not analysed, \d+\.\d\d s", line), line


@pytest.mark.parametrize("script, path", ALL_COMMANDS, ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_help_for_every_command(script, path):
    """Each console script, as a process, prints help for each of its commands and subcommands."""
    module = {"mtls-analyzer": "analyzer", "kubectl-mtls": "analyzer.kubectl_mtls"}[script]
    res = subprocess.run([sys.executable, "-m", module, *path, "--help"], capture_output=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})
    text = ok(res)
    assert res.stderr == b""
    assert text.startswith(f"Usage: python -m {module} {' '.join(path)} ")
    assert "Options:" in text and "-h, --help" in text


def test_analyze_help_names_its_options(cli):
    text = ok(cli("analyze", "--help"))
    for option in ("--view", "--format", "--output", "--decode-as", "--include-localhost", "--jobs"):
        assert f"  {option}" in text or f", {option}" in text, option


def test_console_script_is_installed(scenario):
    exe = shutil.which("mtls-analyzer")
    if exe is None:
        pytest.skip("package not installed (pip install -e .)")
    result = subprocess.run([exe, "analyze", str(scenario("tls13-identity")), "--view", "flows", "--format",
                             "csv"], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout.decode()))
    assert (row["client_ip"], row["verdict"], row["evidence"]) == (g.CLIENT.ip, "tls", "handshake")


# --- bad input: exit 2, one line, no traceback ---------------------------------------------------
def test_not_a_capture(cli, write_capture):
    assert_bad_input(cli("analyze", write_capture(b"GET / HTTP/1.1\r\n\r\n" * 5, "notes.pcap")))


def test_empty_file(cli, write_capture):
    assert_bad_input(cli("analyze", write_capture(b"", "empty.pcap")))


def test_missing_file(cli, tmp_path):
    line = assert_bad_input(cli("analyze", tmp_path / "nope.pcap"))
    assert "nope.pcap" in line


def test_directory(cli, tmp_path):
    assert_bad_input(cli("analyze", tmp_path))


def test_unreadable_file(cli, write_capture):
    """chmod 000 does not stop root, so use a path whose parent is a file (ENOTDIR)."""
    parent = write_capture(g.build("tls13-identity"), "a-file.pcap")
    assert_bad_input(cli("analyze", parent / "child.pcap"))


def test_one_bad_file_among_good_ones(cli, scenario, write_capture):
    assert_bad_input(cli("analyze", scenario("tls13-identity"), write_capture(b"junk" * 10, "junk.pcap")))


@pytest.mark.parametrize("args, message", [
    (("analyze",), "Error: Missing argument 'CAPTURES...'."),
    (("analyze", "--bogus"), "Error: No such option '--bogus'."),
    (("analyze", "--format", "nope", "x.pcap"), "Error: Invalid value for '--format': 'nope' is not one of"),
], ids=["missing-argument", "unknown-option", "bad-choice"])
def test_usage_errors_exit_2_like_bad_input(cli, args, message):
    """One exit code for 'nothing was analysed, fix the command' (README, exit codes): click's usage
    text, then one ``Error:`` line, never a traceback."""
    result = cli(*args)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.startswith("Usage: python -m analyzer analyze [OPTIONS] CAPTURES...\n")
    assert [line for line in err.splitlines() if line.startswith("Error:")] == [err.splitlines()[-1]]
    assert err.splitlines()[-1].startswith(message)
    assert "Traceback" not in err and result.stdout == b""


# --- damage: analysed up to it, with a warning ---------------------------------------------------
@pytest.mark.parametrize("name", ["truncated-pcap", "truncated-pcapng", "truncated-gzip", "corrupt-block",
                                  "corrupt-block-length", "corrupt-interface-id"])
def test_damaged_capture_reports_flows_before_the_damage(cli, scenario, name):
    result = cli("analyze", scenario(name), "--view", "flows", "--format", "json")
    rows = {r["client_port"]: r for r in json_rows(ok(result))}
    assert rows[40001]["verdict"] == "tls" and rows[40001]["sni"] == g.IDENTITY_SNI
    (warning,) = result.stderr.decode().splitlines()[:1]
    assert warning.startswith(f"Warning: {scenario(name)}: ") and warning.endswith("; analysed up to the damage")
