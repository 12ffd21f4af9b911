"""Ctrl-C and SIGTERM during a campaign: a stop request that never cuts a case's records in half."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: stop scheduling, keep every record already written."""


class InterruptGuard:
    """SIGINT/SIGTERM as a stop request, never acted on in the middle of writing a case's records.

    ``immediate`` (in-process: nothing in flight elsewhere) raises :class:`Interrupted` at once; otherwise
    the first signal sets ``stop_requested`` (the runner stops scheduling, keeps what finishes within
    the grace period, and the campaign raises after writing it) and a second one raises at once.  A
    signal that arrives while a case is being written is held until the case is complete, so an
    interrupted campaign leaves only whole cases behind (a kill -9 can still cut one; resume drops it).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, immediate: bool = True) -> None:
        self.immediate = immediate
        self.stop_requested = False
        self.writing = False
        self.pending = False
        self._previous: dict[int, Any] = {}

    def stopping(self) -> bool:
        return self.stop_requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not (self.immediate or self.stop_requested):
            self.stop_requested = True
            return
        if self.writing:
            self.pending = True
            return
        raise Interrupted()

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():  # signals can only be handled there
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    @contextmanager
    def writing_case(self) -> Iterator[None]:
        self.writing = True
        try:
            yield
        finally:
            self.writing = False
        if self.pending:
            raise Interrupted()
