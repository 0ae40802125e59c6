"""Opening a capture input once: regular files, named pipes, process substitution, devices.

Role: ``open_input(path)`` opens a path exactly once and returns the binary stream every reader then
uses, so a pipe's first bytes are never lost to a separate sniffing open.  A named pipe (``mkfifo``,
or ``<(cat x.pcapng)``, which is ``/dev/fd/N``) is opened without blocking and waits at most
``FIFO_WAIT_S`` for its first bytes: a FIFO nobody writes to is an error, not a hang.

Rule: standard library only; a path that cannot be opened raises ``CaptureFormatError``.
"""

from __future__ import annotations

import os
import select
import stat
from typing import BinaryIO

from ..errors import CaptureFormatError

FIFO_WAIT_S = 10.0  # how long a named pipe may stay silent before it is reported as having no writer


def is_regular_file(path: str | os.PathLike) -> bool:
    """True for a regular file (a byte range can be read from it by another process)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def open_input(path: str | os.PathLike) -> BinaryIO:
    """Open ``path`` for reading, once.  A named pipe waits up to ``FIFO_WAIT_S`` for its writer."""
    name = os.fspath(path)
    try:
        return open(name, "rb", opener=_opener)  # noqa: SIM115 - the reader that gets it closes it
    except IsADirectoryError:
        raise CaptureFormatError(f"{name}: is a directory, not a capture file") from None
    except OSError as exc:
        raise CaptureFormatError(f"{name}: cannot open: {exc.strerror or exc}") from None


def _opener(name: str, flags: int) -> int:
    if not stat.S_ISFIFO(os.stat(name).st_mode):
        return os.open(name, flags)
    # Opening a FIFO for reading blocks until a writer opens it; without O_NONBLOCK that wait is forever.
    fd = os.open(name, flags | os.O_NONBLOCK)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(int(FIFO_WAIT_S * 1000)):
            raise CaptureFormatError(f"{name}: named pipe with nothing written to it for {FIFO_WAIT_S:g} s (no writer?)")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
