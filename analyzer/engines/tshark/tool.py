"""Finding and running tshark: its path and version, the one ``-T fields`` command, its output lines.

Rules:
  1. Name resolution is off (``-n``): a slow ja4 run was caused by leaving it on (ja4#145).
  2. The ``tls_tcp`` heuristic is on, so TLS on odd ports is found without ``--decode-as``; the user's
     ``--decode-as`` is passed on as ``-d``.  A port still never decides a verdict.
  3. No pyshark in the bulk path: its per-packet parsing is far too slow (benchmarks/README.md) and its
     asyncio loop clashes with Jupyter's.  pyshark, when installed, only helps to locate tshark.
  4. Standard library only (the sidecar .pyz ships this module); tshark missing or older than
     ``MIN_VERSION`` raises ``BackendUnavailable``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Iterator

from ...analysis.hints import parse_decode_as
from ...errors import AnalyzerError, BackendUnavailable

log = logging.getLogger(__name__)

MIN_VERSION = (3, 0, 0)  # tls.* field names (ssl.* before 3.0), tls.record.opaque_type
AGGREGATOR = "\x1f"  # ASCII unit separator between occurrences of one field: never in SNI/ALPN text
HEURISTIC_ARGS = ("--enable-heuristic", "tls_tcp")
# Try heuristics before port tables: TLS on 8080 (Linkerd transparent mode) would otherwise go to the
# HTTP dissector; the corpus shows no cleartext flow lost to it (tests/data/engine_disagreements.csv).
HEURISTIC_FIRST_ARGS = ("-o", "tcp.try_heuristic_first:TRUE")
# Reassemble out-of-order segments too (off by default in 4.0): a ServerHello that arrives after a
# later segment is otherwise never dissected (zeek's tls/hrr.pcap).
REASSEMBLY_ARGS = ("-o", "tcp.reassemble_out_of_order:TRUE")
INSTALL_HINT = "install it with `apt-get install tshark` (Debian/Ubuntu) or `dnf install wireshark-cli`"

# Our name -> tshark field.  The order is the order of the -e arguments and of the output columns.
FIELD_MAP: dict[str, str] = {
    "ts": "frame.time_epoch",
    "frame_len": "frame.len",
    "cap_len": "frame.cap_len",
    "iface": "frame.interface_name",
    "hatype": "sll.hatype",  # ARPHRD_* of Linux cooked captures (SLL and SLL2)
    "protocols": "frame.protocols",
    "ip_src": "ip.src",
    "ip_dst": "ip.dst",
    "ip_proto": "ip.proto",
    "ip6_src": "ipv6.src",
    "ip6_dst": "ipv6.dst",
    "ip6_nxt": "ipv6.nxt",
    "stream": "tcp.stream",
    "sport": "tcp.srcport",
    "dport": "tcp.dstport",
    "flags": "tcp.flags",
    "seq_raw": "tcp.seq_raw",  # the ISN of a SYN: joining captures tells connections on a reused tuple apart
    "tcp_len": "tcp.len",
    "lost": "tcp.analysis.lost_segment",
    "rec_type": "tls.record.content_type",
    "opaque_type": "tls.record.opaque_type",
    "rec_version": "tls.record.version",
    "rec_len": "tls.record.length",
    "hs_type": "tls.handshake.type",
    "hs_random": "tls.handshake.random",
    "sni": "tls.handshake.extensions_server_name",
    "alpn": "tls.handshake.extensions_alpn_str",
    "sup_version": "tls.handshake.extensions.supported_version",
    "hs_version": "tls.handshake.version",
    "cipher": "tls.handshake.ciphersuite",
    "certs_len": "tls.handshake.certificates_length",
    "alert_level": "tls.alert_message.level",
    "alert_desc": "tls.alert_message.desc",
    "http_method": "http.request.method",
    "http_uri": "http.request.uri",
    "http_code": "http.response.code",
    "ssh_proto": "ssh.protocol",
    # The payload's first bytes, for the sample in a reason and the mid-stream opacity test.  It makes
    # tshark print more, but tshark prints nothing else for a payload it could not hand to any
    # dissector (a snaplen-cut segment, a one-sided stream).
    "payload": "tcp.payload",
}


@dataclass(frozen=True)
class TShark:
    path: str
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def find_tshark(path: str | None = None) -> TShark:
    """Locate tshark and check its version.  ``BackendUnavailable`` says what to install.

    ``path`` or ``$TSHARK`` win; then ``PATH``; then, on Windows and macOS, pyshark's search (config file,
    install directories), when pyshark is installed.
    """
    candidate = path or os.environ.get("TSHARK") or shutil.which("tshark")
    if candidate is None and sys.platform in ("win32", "darwin"):
        # Wireshark's installers there put tshark off PATH; pyshark knows where.  On Linux PATH is the truth.
        candidate = _pyshark_path()
    if candidate is None or not os.access(candidate, os.X_OK):
        raise BackendUnavailable(f"tshark not found (PATH={os.environ.get('PATH', '')}): {INSTALL_HINT}")
    return _checked(candidate)


def _pyshark_path() -> str | None:
    try:
        from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path
    except ImportError:  # pyshark is optional here (the sidecar has no pip packages)
        return None
    try:
        found = get_process_path()
    except TSharkNotFoundException:
        return None
    # pyshark falls back to a fixed list of paths; only trust one that exists.
    return found if found and os.access(found, os.X_OK) else None


@functools.lru_cache(maxsize=8)
def _checked(path: str) -> TShark:
    try:
        proc = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackendUnavailable(f"{path}: cannot run tshark: {exc}") from None
    m = re.search(r"TShark \(Wireshark\) (\d+)\.(\d+)\.(\d+)", proc.stdout)
    if proc.returncode != 0 or not m:
        raise BackendUnavailable(f"{path}: not a working tshark ({(proc.stderr or proc.stdout).strip()[:200]})")
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if version < MIN_VERSION:
        raise BackendUnavailable(f"tshark {'.'.join(map(str, version))} at {path} is too old; the tshark "
                                 f"engine needs {'.'.join(map(str, MIN_VERSION))} or newer: {INSTALL_HINT}")
    return TShark(path, version)


def decode_as_args(specs: Iterable[str]) -> list[str]:
    """``--decode-as tcp.port==8080,tls`` -> ``-d tcp.port==8080,tls`` (validated, ``ssl`` -> ``tls``)."""
    out: list[str] = []
    for spec in specs:
        parse_decode_as([spec])
        out += ["-d", re.sub(r",ssl$", ",tls", spec.strip().replace(" ", ""))]
    return out


def command(tshark: TShark, source: str, decode_as: Iterable[str] = (), heuristics: bool = True,
            fields: Iterable[str] = FIELD_MAP.values()) -> list[str]:
    """The one tshark invocation: ``source`` is a path or ``-`` (standard input)."""
    cmd = [tshark.path, "-n", "-r", source, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
           "-E", f"aggregator={AGGREGATOR}", "-E", "quote=n", "-E", "header=n"]
    cmd += REASSEMBLY_ARGS
    if heuristics:
        cmd += [*HEURISTIC_FIRST_ARGS, *HEURISTIC_ARGS]
    cmd += decode_as_args(decode_as)
    for f in fields:
        cmd += ["-e", f]
    return cmd


def iter_lines(cmd: list[str], stdin: BinaryIO | None = None, name: str = "") -> Iterator[str]:
    """tshark's stdout, line by line.  A non-zero exit with no packets read becomes an AnalyzerError."""
    log.debug("running %s", " ".join(cmd))
    pipe_in = subprocess.PIPE if stdin is not None and not _is_real_file(stdin) else stdin
    proc = subprocess.Popen(cmd, stdin=pipe_in, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="backslashreplace", bufsize=1 << 16)
    pump = None
    if pipe_in is subprocess.PIPE:
        pump = threading.Thread(target=_pump, args=(stdin, proc.stdin), daemon=True)
        pump.start()
    err_lines: list[str] = []
    drain = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    lines = 0
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines += 1
            yield line
    finally:
        if proc.poll() is None:
            # Stopped early (Ctrl-C, an error downstream): a tshark blocked on a full pipe would not see
            # SIGTERM until it can write, so its pipe is closed first (its next write ends it).
            proc.stdout.close()  # type: ignore[union-attr]
            proc.terminate()
        rc = proc.wait()
        drain.join(timeout=5)
        if pump is not None:
            pump.join(timeout=5)
    errors = [e.strip() for e in err_lines if e.strip() and "Running as user" not in e and "This could be dangerous" not in e]
    if rc != 0 and rc != -15:
        message = "; ".join(errors[-3:]) or f"exit code {rc}"
        if lines == 0:
            raise AnalyzerError(f"{name}: tshark could not read the capture: {message}")
        log.warning("%s: tshark stopped early (%s); analysed what it read", name, message)
    elif errors:
        log.info("%s: tshark: %s", name, "; ".join(errors[-3:]))


def _is_real_file(stream) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _pump(src: BinaryIO, dst) -> None:
    try:
        while True:
            chunk = src.read(1 << 16)
            if not chunk:
                break
            dst.write(chunk)
    except (BrokenPipeError, OSError, ValueError):
        pass
    finally:
        try:
            dst.close()
        except OSError:
            pass
