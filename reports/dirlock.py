"""One writer per results directory: an exclusive lock held while a command writes into it.

The lock is ``flock`` on ``DIR/.backprop-check.lock``, so it goes when its holder goes (even after
``kill -9``): there is nothing stale to clean up.  The file records who holds it, for the message a
second writer gets.  Within one process the lock is re-entrant (``run`` holds it around the campaign,
which takes it too).  POSIX only; elsewhere it is a no-op.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".backprop-check.lock"

_held: dict[Path, int] = {}  # directory -> nesting depth in this process


class DirectoryBusy(Exception):
    """Another process is writing into the directory."""


@contextmanager
def exclusive(directory: str | Path, command: str) -> Iterator[None]:
    """Hold ``directory`` for ``command``; raises :class:`DirectoryBusy` at once if another process holds it."""
    path = Path(directory).resolve()
    if _held.get(path):
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    if sys.platform == "win32":  # pragma: no cover - no flock there
        yield
        return
    import fcntl

    path.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode("utf-8", errors="replace").strip() or "another process"
            raise DirectoryBusy(
                f"{directory} is being written by {holder}; wait for it to finish or choose another directory"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"backprop-check {command} (pid {os.getpid()})\n".encode(), 0)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # closing releases the flock
