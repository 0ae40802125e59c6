"""Inputs of a Dask run: local paths, globs and directories, and any URL fsspec opens.

Role: on the client, ``expand`` turns what the user named into ``Input``s (one per capture file, with
its size) without reading a capture byte; on a worker, ``open_input`` opens one for reading.  A URL is
opened by the worker itself, which reads it in blocks with range requests (``http(s)://`` needs
aiohttp, ``s3://`` s3fs, ``gs://`` gcsfs): no capture byte passes through the client.

Rules: a local path is made absolute, because the workers open it themselves (a shared filesystem
when they run on other machines); a directory means the regular files in it and below, in name
order; a name that matches nothing is an error naming it.  Standard input cannot be shared with
workers and is refused.
"""

from __future__ import annotations

import glob
import io
import os
from typing import NamedTuple

from ..errors import AnalyzerError

GLOB_CHARS = frozenset("*?[")
READ_BYTES = 4 * 1024 * 1024  # one range request per 4 MiB of a remote capture


class Input(NamedTuple):
    """One capture: ``location`` (absolute path or URL), its size in bytes, and whether it is local."""

    location: str
    size: int
    local: bool


def is_url(name: str) -> bool:
    return "://" in name and not name.startswith("file://")


def expand(sources) -> list[Input]:
    """Every capture file the sources name, in the order given (a glob or directory: sorted)."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out: list[Input] = []
    for src in sources:
        if not isinstance(src, (str, os.PathLike)):
            raise AnalyzerError("--dask reads files and URLs the workers can open, not file objects")
        name = os.fspath(src)
        if name == "-":
            raise AnalyzerError("--dask cannot read standard input: give files or URLs the workers can open")
        found = _expand_url(name) if is_url(name) else _expand_local(name.removeprefix("file://"))
        if not found:
            raise AnalyzerError(f"{name}: no such file, directory or match")
        out += found
    return out


def _expand_local(name: str) -> list[Input]:
    paths = sorted(glob.glob(name, recursive=True)) if GLOB_CHARS & set(name) else [name]
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs)
        elif os.path.exists(p):
            files.append(p)
        else:
            raise AnalyzerError(f"{p}: no such file or directory")
    return [Input(os.path.abspath(f), _size(f), True) for f in files if os.path.isfile(f)]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError as exc:
        raise AnalyzerError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _expand_url(url: str) -> list[Input]:
    fs, path = _filesystem(url)
    try:
        if GLOB_CHARS & set(path):
            paths = sorted(fs.glob(path))
        elif fs.isdir(path):
            paths = sorted(fs.find(path))
        else:
            paths = [path]
    except (OSError, ValueError) as exc:
        raise AnalyzerError(f"{url}: cannot list: {exc}") from None
    return [Input(fs.unstrip_protocol(p) if p != path else url, _remote_size(fs, p), False) for p in paths]


def _remote_size(fs, path: str) -> int:
    """The size, for the progress line; 0 when the store will not say (the worker reports why it fails)."""
    try:
        return int(fs.size(path) or 0)
    except (OSError, ValueError):
        return 0


def _filesystem(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise AnalyzerError(f"{url}: {exc}") from None
    except ValueError as exc:
        raise AnalyzerError(f"{url}: {exc}") from None


def open_input(inp: Input):
    """On a worker: the path itself (local), or an open binary file named like the URL (read with
    range requests, in fsspec's blocks), which the capture reader closes."""
    if inp.local:
        return inp.location
    fs, path = _filesystem(inp.location)
    f = fs.open(path, "rb", block_size=READ_BYTES, cache_type="none")  # the reader asks READ_BYTES at a time
    f.name = inp.location  # the reader names the capture after it (its last path element)
    return io.BufferedReader(f, READ_BYTES)  # ``peek`` for the reader's gzip check; reads of READ_BYTES


def gzipped(inp: Input) -> bool:
    """Does a remote capture start with gzip's magic (then it is one unit: a gzip stream cannot be cut)?
    Two bytes, by one range request; a store that will not say is the worker's to report."""
    try:
        with open_input(inp) as f:
            return f.peek(2)[:2] == b"\x1f\x8b"
    except (OSError, ValueError):
        return True
