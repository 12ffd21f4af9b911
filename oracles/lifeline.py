"""Helper processes that end with their parent: no worker outlives a ``kill -9`` of the process that started it.

:func:`die_with_parent`: on Linux the kernel sends SIGKILL when the parent thread that started us exits
(``PR_SET_PDEATHSIG``), which works even while the worker is stuck in C code; everywhere, a daemon thread
notices the re-parenting (``os.getppid()`` changes) within ``POLL_SECONDS``.

:func:`exit_when_closed`: for a worker whose parent is not the process it serves (a fork server's child),
a pipe from that process: the write end stays there, and end of file on the read end means it is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, *, kernel_signal: bool = True) -> None:
    """Exit at once when ``parent_pid`` is no longer our parent.

    ``kernel_signal=False`` where the parent may start us from a short-lived thread (the kernel's signal
    follows the thread, not the process); the polling thread still applies.
    """
    if kernel_signal and sys.platform.startswith("linux"):
        # no prctl in this libc: the polling thread still covers it
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(POLL_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def exit_when_closed(connection: Any) -> None:
    """Exit at once when ``connection`` (the read end of a pipe whose write end our owner holds) reaches EOF."""

    def watch() -> None:
        while True:
            try:
                connection.recv()
            except (EOFError, OSError):
                os._exit(1)

    threading.Thread(target=watch, name="lifeline-pipe", daemon=True).start()
