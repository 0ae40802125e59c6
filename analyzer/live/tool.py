"""The capture process: which tool (dumpcap, else tshark), its command line, its ring files, its errors.

Role: everything ``live`` knows about dumpcap/tshark as programs.  Must not read the capture (that is
``follow.py``) nor start the process (``session.LiveCapture`` does, and stops it).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

from ..errors import BackendUnavailable

START_TIMEOUT_S = 15.0  # the capture process must have written its file header by then
STOP_TIMEOUT_S = 15.0  # after SIGINT, the capture process must have exited by then
NO_PERMISSION = re.compile(r"permission|not permitted|Operation not permitted|don't have permission", re.I)
CAPS_HINT = ("capturing needs CAP_NET_RAW and CAP_NET_ADMIN: run as root, or `setcap "
             "cap_net_raw,cap_net_admin=eip $(command -v dumpcap)`; in Kubernetes add them to the container's "
             "securityContext.capabilities (the linkerd-debug sidecar runs as root)")
INSTALL_HINT = "neither dumpcap nor tshark is installed: `apt-get install tshark` (Debian/Ubuntu, as in linkerd-debug)"


def capture_tool() -> tuple[str, str]:
    """(name, path) of dumpcap, else tshark.  ``$DUMPCAP`` / ``$TSHARK`` override."""
    for name, env in (("dumpcap", "DUMPCAP"), ("tshark", "TSHARK")):
        path = os.environ.get(env) or shutil.which(name)
        if path and os.access(path, os.X_OK):
            return name, path
    raise BackendUnavailable(INSTALL_HINT)


def capture_command(tool: tuple[str, str], output: Path, interface: str = "any", bpf: str | None = None,
                    seconds: float | None = None, packets: int | None = None, ring_mb: int | None = None,
                    ring_files: int | None = None, snaplen: int | None = None) -> list[str]:
    name, path = tool
    cmd = [path, "-i", interface, "-w", str(output), "-q"]
    if name == "tshark":
        cmd.insert(1, "-n")
    if bpf:
        cmd += ["-f", bpf]
    if seconds:
        cmd += ["-a", f"duration:{max(1, int(round(seconds)))}"]
    if packets:
        cmd += ["-c", str(packets)]
    if snaplen:
        cmd += ["-s", str(snaplen)]
    if ring_mb or ring_files:
        cmd += ["-b", f"filesize:{int((ring_mb or 100) * 1000)}", "-b", f"files:{ring_files or 10}"]
    return cmd


def ring_files_of(output: Path) -> list[Path]:
    """dumpcap's ring files for ``-w DIR/NAME.pcapng``: ``DIR/NAME_00001_YYYYmmddHHMMSS.pcapng``, in order."""
    stem, suffix = output.stem, output.suffix
    found = glob.glob(os.path.join(glob.escape(str(output.parent)), f"{glob.escape(stem)}_[0-9][0-9][0-9][0-9][0-9]_*{suffix}"))
    return sorted(Path(p) for p in found)


NOISE = re.compile(r"Running as user|could be dangerous|^Capturing on|^See the User's Guide|^\d+ packets? (captured|dropped)"
                   r"|^(dumpcap|tshark):\s*$")
HEADLINE = re.compile(r"^(?:dumpcap|tshark): (.+)")


def last_error(text: str) -> str:
    """The capture tool's own message in its stderr, on one line: its last ``dumpcap: ...`` (or
    ``tshark: ...``) line with the detail lines after it, e.g. ``There is no device named "nosuch0".
    (No such device exists)`` or ``Invalid capture filter "tcp port x" for interface 'lo'. That string
    isn't a valid capture filter (...)``; without such a line, its last line.  Banners, the pointer to
    the User's Guide and packet counts are left out."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not NOISE.search(line.strip())]
    heads = [i for i, line in enumerate(lines) if HEADLINE.match(line)]
    if not heads:
        return lines[-1] if lines else "no message"
    first = heads[-1]
    return " ".join([HEADLINE.match(lines[first])[1], *lines[first + 1:]])
