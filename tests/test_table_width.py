"""Tables that fit the terminal: the bundled captures through the real CLI, on a pseudo-terminal of a given
width, through a pipe (100 columns) and with ``--wide`` / ``-o wide`` (every column, names in full)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from analyzer import analyze
from analyzer.live import LiveResult, PairSummary, summary_lines, tap_line
from analyzer.report.edges import headline
from analyzer.report.render import ELLIPSIS, fit, middle, Col
from analyzer.report.schema import EDGE_STATUSES, VERDICTS
from support import read_terminal

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "captures" / "demo-transparent.pcapng"
DEMO_PODS = REPO / "captures" / "demo-transparent.pods.json"
MIDCONN = REPO / "captures" / "midconn-transparent.pcapng"
MIDCONN_PODS = REPO / "captures" / "midconn-transparent.pods.json"
WIDTHS = (60, 80, 100, 160)
ENV = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"PYTHONPATH": str(REPO)}


def on_terminal(args, columns: int) -> str:
    """Standard output of ``mtls-analyzer ARGS`` on a pseudo-terminal ``columns`` wide (stderr discarded)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    attrs = termios.tcgetattr(follower)
    attrs[1] &= ~termios.ONLCR  # no CR added before each LF: the lines as the program wrote them
    termios.tcsetattr(follower, termios.TCSANOW, attrs)
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", *map(str, args)], stdout=follower,
                            stderr=subprocess.DEVNULL, env=ENV)
    os.close(follower)
    shown = read_terminal(leader)
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    return shown


def on_pipe(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analyzer", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=120)


def full_names(pods: Path) -> set[str]:
    items = json.loads(pods.read_text())["items"]
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in items}


def assert_middle_ellipsis(cell: str, names: set[str]) -> str:
    """``cell`` is one of ``names`` in full, or one cut in the middle (its start, ``…``, its end); returns it."""
    if cell in names:
        return cell
    head, sep, tail = cell.partition(ELLIPSIS)
    assert sep, cell
    match = [n for n in names if n.startswith(head) and n.endswith(tail) and len(n) > len(cell)]
    assert len(match) == 1 and tail and head, (cell, match)
    return match[0]


def check_edges(text: str, width: int | None, names: set[str], statuses: dict[str, str]) -> None:
    """Every line within ``width``; SRC, DST, STATUS first, the status whole; names in full or cut in the middle."""
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["SRC", "DST", "STATUS"]
    if width is not None:
        assert max(map(len, lines)) <= width, lines
    for line in lines[1:]:
        src, dst, status = line.split()[:3]
        assert status in EDGE_STATUSES
        names_seen = tuple(assert_middle_ellipsis(c, names) if "/" in c else c for c in (src, dst))
        assert statuses[names_seen] == status  # the row reads the edge it is, whatever the width


def demo_statuses() -> dict[tuple[str, str], str]:
    report = analyze(str(DEMO), pods=str(DEMO_PODS))
    return {(f"{r['src_ns']}/{r['src']}" if r["src_ns"] else r["src"],
             f"{r['dst_ns']}/{r['dst']}" if r["dst_ns"] else r["dst"]): r["status"] for r in report.edge_rows}


@pytest.fixture(scope="module")
def statuses():
    return demo_statuses()


@pytest.mark.parametrize("width", WIDTHS)
def test_edges_fit_the_terminal(width, statuses):
    text = on_terminal(["analyze", DEMO, "--pods", DEMO_PODS], width)
    check_edges(text, width, full_names(DEMO_PODS), statuses)
    cells = [c for line in text.splitlines()[1:] for c in line.split()[:2]]
    if width <= 100:  # the longest names are cut in the middle at these widths: start and random suffix kept
        assert any(ELLIPSIS in c for c in cells)
        web = text.splitlines()[1].split()[0]
        assert web.startswith("emojivoto/we") and web.endswith("g9cvx") and ELLIPSIS in web
    else:
        assert "emojivoto/web-lnh8fhhndj-g9cvx" in cells and "MSG" in text.splitlines()[0]


def test_edges_through_a_pipe_fit_100_columns(statuses):
    out = on_pipe("analyze", DEMO, "--pods", DEMO_PODS)
    assert out.returncode == 0, out.stderr
    check_edges(out.stdout, 100, full_names(DEMO_PODS), statuses)
    assert out.stdout.splitlines()[0].split() == ["SRC", "DST", "STATUS", "FLOWS", "PLAINTEXT", "TLS"]


@pytest.mark.parametrize("flag", [["--wide"], ["-o", "wide"]])
def test_wide_has_every_column_and_full_names(flag, statuses):
    out = on_pipe("analyze", DEMO, "--pods", DEMO_PODS, *flag)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["SRC", "DST", "STATUS", "FLOWS", "PLAINTEXT", "TLS", "UNKNOWN", "PORTS", "MSG",
                                "IDENTITY"]
    check_edges(out.stdout, None, full_names(DEMO_PODS), statuses)
    assert ELLIPSIS not in out.stdout and max(map(len, lines)) > 160
    assert lines[1].split()[:3] == ["emojivoto/web-lnh8fhhndj-g9cvx", "emojivoto/voting-whmtqttntr-8t4wr",
                                    "PLAINTEXT-UNEXPECTED"]
    assert "web.emojivoto -> voting.emojivoto (mTLS inferred)" in lines[1]
    assert not Path("wide").exists()
    on_terminal_wide = on_terminal(["analyze", DEMO, "--pods", DEMO_PODS, *flag], 60)
    assert on_terminal_wide == out.stdout  # --wide ignores the terminal's width


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("view, kept", [("flows", ["FLOW_ID", "CLIENT_IP", "SERVER_IP", "VERDICT"]),
                                        ("pairs", ["CLIENT_IP", "SERVER_IP", "STATUS"])])
def test_flows_and_pairs_fit_the_terminal(width, view, kept):
    text = on_terminal(["analyze", MIDCONN, "--view", view], width)
    lines = text.splitlines()
    assert max(map(len, lines)) <= width and all(h in lines[0].split() for h in kept)
    at = lines[0].index(kept[-1])  # the VERDICT / STATUS cell starts under its header, whole
    words = set(VERDICTS) if view == "flows" else {"all-tls", "plaintext-present", "mixed", "unknown-only"}
    assert all(line[at:].split()[0] in words for line in lines[1:]) and len(lines) > 2


def test_markdown_and_csv_keep_every_column_in_full():
    out = on_pipe("analyze", DEMO, "--pods", DEMO_PODS, "--format", "markdown")
    head = out.stdout.splitlines()[0]
    assert "| src | dst | src_ns | dst_ns |" in head and "unexpected_protocols" in head
    assert "| web-lnh8fhhndj-g9cvx | voting-whmtqttntr-8t4wr | emojivoto | emojivoto |" in out.stdout
    assert ELLIPSIS not in out.stdout


def test_headline_names_the_cleartext_protocol():
    out = on_pipe("analyze", DEMO, "--pods", DEMO_PODS, "--fail-on", "unexpected-plaintext")
    assert out.returncode == 3
    err = out.stderr.splitlines()
    assert err[0] == ("NOT fully mTLS: 1 edge between meshed pods carries plaintext: emojivoto/web-lnh8fhhndj-g9cvx "
                      "-> emojivoto/voting-whmtqttntr-8t4wr :4567 (h2c)")
    assert err[-2] == "5 edges from 45 flows: PLAINTEXT-UNEXPECTED 1, plaintext-expected 3, secured 1"
    report = analyze(str(DEMO), pods=str(DEMO_PODS))
    assert headline(report.edge_rows) == err[0]
    [web] = [r for r in report.edge_rows if r["status"] == "PLAINTEXT-UNEXPECTED"]
    assert (web["unexpected_ports"], web["unexpected_protocols"]) == ("4567", "h2c")


@pytest.mark.parametrize("width", (80, 100, 160))
def test_follow_lines_fit(width):
    rows = analyze(str(DEMO), include_localhost=True).flow_rows
    tls = [r for r in rows if r["verdict"] == "tls" and r["sni"]]
    assert tls and max(len(tap_line(r)) for r in tls) > 160  # what --wide prints: every field
    for r in rows:
        line = tap_line(r, frozenset({r["server_ip"]}), width)
        assert len(line) <= width, line
        assert line.startswith(f"flow id={r['flow_id']} ") and f"src={r['client_ip']}:{r['client_port']}" in line
        assert f"dst={r['server_ip']}:{r['server_port']}" in line and " tls=" in line
    line = tap_line(tls[0], frozenset(), 100)
    assert "sni=voting.emojivoto.serviceaccount" in line and line.endswith(ELLIPSIS)


@pytest.mark.parametrize("width", (60, 80))
def test_live_table_fits(width):
    summary = PairSummary()
    for row in analyze(str(DEMO)).flow_rows:
        summary.add(row)
    lines = summary_lines(LiveResult([], [], Path("x.pcapng"), packets=993, summary=summary), False, 20, width, 5)
    assert max(map(len, lines)) <= width and lines[1].split()[:2] == ["CLIENT", "SERVER"]
    assert all(line.split()[-1] in ("all-tls", "plaintext-present", "mixed", "unknown-only") for line in lines[2:])


def test_fit_drops_by_rank_and_never_shortens_a_kept_column():
    cols = (Col("src", 0, "name"), Col("status"), Col("a", 2), Col("b", 1), Col("msg", 3, "text"))
    assert fit(cols, [40, 20, 10, 10, 50], None) == [40, 20, 10, 10, 50]
    assert fit(cols, [40, 20, 10, 10, 50], 60) == [26, 20, 0, 10, 0]  # b (rank 1) fits, a and msg not; src takes the rest
    assert fit(cols, [40, 20, 10, 10, 50], 30)[:2] == [8, 20]  # the name gives way, STATUS never does
    assert middle("emojivoto/web-lnh8fhhndj-g9cvx", 20) == "emojivoto/web" + ELLIPSIS + "-g9cvx"
    assert middle("short", 20) == "short"


def test_a_follow_line_keeps_its_four_fields_past_the_width():
    """Below them (60 columns), the flow id, both ends and the verdict stay: the line is longer, not cut."""
    [row] = [r for r in analyze(str(DEMO)).flow_rows if r["flow_id"] == 0]
    assert tap_line(row, frozenset(), 60) == "flow id=0 src=10.244.0.15:41108 dst=10.244.0.12:4191 tls=false"


def test_diff_table_fits_and_wide_is_in_full(tmp_path):
    import copy

    import report_case as rc
    from analyzer.report.audit import build_audit
    from analyzer.report.export import write_report_json

    capture, pods = rc.write_case(tmp_path)
    old = build_audit(analyze(capture, pods=pods), [capture], pods, resource="pod")
    new = copy.deepcopy(old)
    for edge in new["edges"]:
        edge["status"] = "PLAINTEXT-UNEXPECTED" if edge["status"] == "secured" else "secured"
    write_report_json(old, tmp_path / "old.json")
    write_report_json(new, tmp_path / "new.json")
    fitted = on_pipe("diff", tmp_path / "old.json", tmp_path / "new.json")
    wide = on_pipe("diff", tmp_path / "old.json", tmp_path / "new.json", "--wide")
    assert fitted.returncode == wide.returncode == 1
    narrow, full = fitted.stdout.splitlines(), wide.stdout.splitlines()
    assert len(narrow) == len(full) == len(old["edges"]) + 1 and max(map(len, narrow)) <= 100 < max(map(len, full))

    def statuses(lines: list[str]) -> list[tuple[str, str]]:  # both status cells, read under their headers
        at = [lines[0].index(h) for h in ("OLD_STATUS", "NEW_STATUS")]
        return [tuple(line[i:].split()[0] for i in at) for line in lines[1:]]

    assert statuses(narrow) == statuses(full) and all(set(p) <= set(EDGE_STATUSES) for p in statuses(narrow))
    assert ("secured", "PLAINTEXT-UNEXPECTED") in statuses(narrow)
    names = {f"{e['src_ns']}/{e['src']}" if e["src_ns"] else e["src"] for e in old["edges"]}
    assert {line.split()[2] for line in full[1:]} == names  # --wide: every source in full


def test_summary_and_warnings_on_a_terminal_are_wrapped_to_its_width():
    """stderr on a terminal: the summary line (~136 characters on the demo) wraps at spaces within the
    width, continuation indented; on a pipe it stays one line."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    attrs = termios.tcgetattr(follower)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(follower, termios.TCSANOW, attrs)
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "analyze", str(DEMO), "--pods", str(DEMO_PODS)],
                            stdout=subprocess.DEVNULL, stderr=follower, env=ENV)
    os.close(follower)
    shown = read_terminal(leader)
    assert proc.wait(timeout=120) == 0
    os.close(leader)
    lines = shown.replace("\r\x1b[K", "").replace("\x1b[K", "").splitlines()  # the progress line's clearing
    assert lines and max(map(len, lines)) <= 80, lines
    start = next(i for i, line in enumerate(lines) if line.startswith("993 packets, 45 flows"))
    assert lines[start + 1].startswith("  ")  # the summary's continuation
    piped = on_pipe("analyze", DEMO, "--pods", DEMO_PODS)
    [summary] = [line for line in piped.stderr.splitlines() if line.startswith("993 packets")]
    assert len(summary) > 100 and " ".join(" ".join(lines[start:start + 3]).split()).startswith(" ".join(summary.split())[:90])


@pytest.mark.parametrize("columns", [0, 10])
def test_a_terminal_of_unknown_or_tiny_width_gets_the_line_as_it_is(columns, monkeypatch):
    from analyzer.report.render import for_terminal

    monkeypatch.delenv("COLUMNS", raising=False)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, columns, 0, 0))
    line = "993 packets, 45 flows (tls 14, plaintext 31, unknown 0), 19 localhost flows excluded, " * 2
    with os.fdopen(follower, "w") as stream:
        assert for_terminal(line, stream) == line
    os.close(leader)
