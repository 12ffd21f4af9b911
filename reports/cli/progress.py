"""Campaign progress on stderr: a redrawn bar on a terminal, plain periodic lines otherwise.

Logs and CI consoles cannot take carriage returns, so when the stream is not a terminal the same
numbers (cases done, rate, failures, ETA) are printed as one line every ``interval`` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 28
# Cases finish in bursts (a batch at a time): a rate over less than this is noise (the first line once
# read "81149 cases/s"), so no rate or ETA is shown before it.
MIN_RATE_SECONDS = 1.0


def format_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or inf: no rate yet
        return "--:--"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Counts cases as they finish; ``already_done`` cases (a resumed campaign) do not count toward the rate."""

    def __init__(
        self,
        total: int,
        *,
        already_done: int = 0,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = already_done
        self.failures = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        # A terminal redraws cheaply; a log file should get a handful of lines, not thousands.
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self._clock = clock
        self._start = clock()  # the rate counts from here: start-up is part of what the user waits for
        self._already_done = already_done
        self._last_draw = -float("inf")
        self._drawn_at: int | None = None  # ``done`` at the last draw, so close() does not repeat a line

    @property
    def rate(self) -> float:
        """Cases per second since this run started (0 until ``MIN_RATE_SECONDS`` have passed).

        Cases finished before (a resumed campaign) do not count.
        """
        elapsed = self._clock() - self._start
        fresh = self.done - self._already_done
        return fresh / elapsed if elapsed >= MIN_RATE_SECONDS and fresh > 0 else 0.0

    @property
    def eta(self) -> float:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else float("inf")

    def line(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        counts = f"{self.done}/{self.total} cases"
        rate = f"{self.rate:.1f} cases/s" if self.rate > 0 else "-- cases/s"
        stats = f"{rate}, {self.failures} failing, ETA {format_eta(self.eta)}"
        if self.tty:
            filled = round(fraction * BAR_WIDTH)
            return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {counts} ({fraction:.0%}) {stats}"
        return f"progress: {counts} ({fraction:.0%}), {stats}"

    def update(self, cases: int = 1, failures: int = 0) -> None:
        self.done += cases
        self.failures += failures
        now = self._clock()
        if now - self._last_draw >= self.interval or self.done >= self.total:
            self._draw()
            self._last_draw = now

    def _draw(self) -> None:
        self._drawn_at = self.done
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn_at != self.done:
            self._draw()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
