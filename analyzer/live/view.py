"""What a live capture shows: per host pair counts, the in-place terminal table, ``tap``-style lines.

Role: the terminal side's state and drawing.  Its state is bounded by host pairs, never by flows.
Must not start processes other than ``ip -o addr`` (``local_addresses``) nor read captures.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from typing import TYPE_CHECKING

from ..report.escape import text
from ..report.render import clip_end, render

if TYPE_CHECKING:
    from .session import LiveResult

VERDICTS = ("tls", "plaintext", "unknown")


class PairSummary:
    """Per host pair verdict counts, bounded by the number of pairs (not flows): the live view's state.

    ``add(row, final=False)`` counts a flow announced before it ended; its final row replaces that count.
    Thread-safe (the tshark engine reports from its reader thread).
    """

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str, bool], list[int]] = {}  # (client, server, localhost) -> tls/plain/unknown
        self.provisional: dict[int, tuple[tuple[str, str, bool], int]] = {}  # live flows counted early
        self.flows = 0
        self.lock = threading.Lock()

    def add(self, row: dict, final: bool = True) -> None:
        key = (str(row["client_ip"]), str(row["server_ip"]), bool(row["localhost"]))
        idx = VERDICTS.index(row["verdict"]) if row["verdict"] in VERDICTS else 2
        with self.lock:
            old = self.provisional.pop(row["flow_id"], None)
            if old is not None:
                self.pairs[old[0]][old[1]] -= 1
            else:
                self.flows += 1
            self.pairs.setdefault(key, [0, 0, 0])[idx] += 1
            if not final:
                self.provisional[row["flow_id"]] = (key, idx)

    def rows(self, include_localhost: bool = False) -> list[dict]:
        """One dict per pair (client_ip, server_ip, flows, tls, plaintext, unknown, status), busiest first."""
        from ..report.pairs import pair_status

        merged: dict[tuple[str, str], list[int]] = {}
        with self.lock:
            for (c, s, local), n in self.pairs.items():
                if local and not include_localhost:
                    continue
                m = merged.setdefault((c, s), [0, 0, 0])
                for i in range(3):
                    m[i] += n[i]
        rows = [{"client_ip": c, "server_ip": s, "flows": sum(n), "tls": n[0], "plaintext": n[1], "unknown": n[2],
                 "status": pair_status(*n)} for (c, s), n in merged.items() if sum(n)]
        rows.sort(key=lambda r: (-r["flows"], r["client_ip"], r["server_ip"]))
        return rows


def summary_lines(result: "LiveResult", include_localhost: bool = False, max_rows: int = 20,
                  width: int = 120, elapsed_s: float = 0.0) -> list[str]:
    """The live table: a status line, a header, at most ``max_rows`` pairs and ``+N more``, each line
    within ``width`` (the table fitted as every table is: ``report.render``)."""

    rows = result.summary.rows(include_localhost)
    v = [sum(r[k] for r in rows) for k in VERDICTS]
    status = (f"{result.output.name}: {result.packets} packets, {sum(v)} flows (tls {v[0]}, plaintext {v[1]}, "
              f"unknown {v[2]}), {elapsed_s:.0f} s  (Ctrl-C stops)")
    shown = rows if len(rows) <= max_rows else rows[:max(1, max_rows - 1)]
    lines = [clip_end(text(status), width)] + render(shown, (), "table", "live", width).splitlines()
    if len(shown) < len(rows):
        lines.append(f"+{len(rows) - len(shown)} more")
    return lines


TABLE_REFRESH_S = 1.0  # seconds between redraws of the live table or status line


class LiveTable:
    """Redraw a block of lines in place on a terminal (ANSI: cursor up, clear to the end of the screen)."""

    def __init__(self, stream):
        self.stream = stream
        self.height = 0

    def draw(self, lines: list[str]) -> None:
        self.stream.write(self._up() + "".join(line + "\n" for line in lines))
        self.stream.flush()
        self.height = len(lines)

    def clear(self) -> None:
        if self.height:
            self.stream.write(self._up())
            self.stream.flush()
            self.height = 0

    def _up(self) -> str:
        return (f"\033[{self.height}F" if self.height else "\r") + "\033[J"


def terminal_rows() -> tuple[int, int]:
    """(pair rows that fit, columns) for the live table on this terminal."""
    size = shutil.get_terminal_size((120, 24))
    return max(3, min(40, size.lines - 4)), max(40, size.columns - 1)


def local_addresses() -> frozenset[str]:
    """This network namespace's addresses (``ip -o addr``), for ``proxy=in|out``; empty when unknown."""
    ip = shutil.which("ip")
    if ip is None:
        return frozenset()
    try:
        out = subprocess.run([ip, "-o", "addr"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(m.group(1) for m in re.finditer(r"inet6? ([0-9a-fA-F:.]+)/", out))


TAP_DROPPED = ("evidence", "version", "proxy", "sni", "localhost")  # what a narrow --follow line leaves out first
SNI_MIN = 16  # an SNI is cut to no less before it is left out


def tap_line(row: dict, local: frozenset[str] = frozenset(), width: int | None = None) -> str:
    """One ``linkerd viz tap``-style line for a flow, escaped (the SNI is the sender's choice), within
    ``width`` (None: every field in full): the fields of ``TAP_DROPPED`` go first, the SNI is cut before;
    the flow id, both ends and ``tls=`` always stay, past the width if they alone are longer."""
    if row["server_ip"] in local and row["client_ip"] not in local:
        proxy = "in"
    elif row["client_ip"] in local and row["server_ip"] not in local:
        proxy = "out"
    else:
        proxy = "local" if row["localhost"] else "-"
    fmt = "[{}]:{}" if ":" in str(row["client_ip"]) else "{}:{}"
    tls = {"tls": "true", "plaintext": "false"}.get(row["verdict"], "unknown")
    fields = {"flow": f"flow id={row['flow_id']}", "proxy": f"proxy={proxy}",
              "src": "src=" + fmt.format(row["client_ip"], row["client_port"]),
              "dst": "dst=" + fmt.format(row["server_ip"], row["server_port"]), "tls": f"tls={tls}",
              "sni": f"sni={row['sni']}" if row.get("sni") else "",
              "version": f"version={row['tls_version'].replace(' ', '')}" if row.get("tls_version") else "",
              "evidence": f"evidence={row['evidence']}", "localhost": "localhost=true" if row["localhost"] else ""}
    fields = {k: text(v) for k, v in fields.items() if v}
    for name in TAP_DROPPED:
        line = " ".join(fields.values())
        if width is None or len(line) <= width:
            return line
        if name == "sni" and "sni" in fields and len(fields["sni"]) - (len(line) - width) >= SNI_MIN:
            fields["sni"] = clip_end(fields["sni"], len(fields["sni"]) - (len(line) - width))
            continue
        fields.pop(name, None)
    return " ".join(fields.values())
