"""Third-party subjects in a supervised worker process: a crash, a hang or a flood of output costs one
call's verdict, never the run.

A :class:`Supervisor` keeps one worker process per subject (per calling process), started on first use
and started again after it dies.  The call that killed a worker is answered with a ``crash`` failure
naming the exit status or signal; a call past its time limit with ``timeout`` (the worker is killed).
Whatever the subject writes to stdout or stderr goes to a private file, emptied before each call; the
start of it travels back with the answer (:attr:`RawCall.output`).  Workers end with their parent
(:mod:`oracles.lifeline`).  The reference and the oracles never come here: they are our own code and
keep the in-process path.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from oracles.guarded import ProtocolFailure, RawCall, SubjectCallFailed
from reference_impl.spec import Array, Params, Spec

# Seconds one guarded call may take before its worker is killed.  A subject's call on the architectures
# generated here takes milliseconds; this only has to end a hang, not to judge speed.
DEFAULT_TIMEOUT = 30.0
# After this many timeouts in a row the limit drops to SHORT_TIMEOUT until a call answers again, so a
# subject that always hangs costs seconds per case instead of DEFAULT_TIMEOUT.
TRIP_AFTER = 3
SHORT_TIMEOUT = 2.0
STARTUP_TIMEOUT = 120.0  # importing a subject may import a framework: generous, and never per call
EXCERPT_BYTES = 2000

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])


def exit_status(returncode: int | None) -> str:
    """``-11`` -> ``"was killed by signal 11 (SIGSEGV)"``; ``3`` -> ``"exited with status 3"``."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"


class Supervisor:
    """One subject (``MODULE:ATTR``) behind a worker process; :meth:`call` never raises for the subject's faults."""

    def __init__(self, target: str, timeout: float | None = None) -> None:
        self.target = target
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout  # math.inf: no limit
        self.starts = 0  # workers started so far (restarts = starts - 1)
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._capture: int | None = None
        self._owner = os.getpid()
        self._sequence = 0
        self._timeouts_in_a_row = 0
        self._lock = threading.Lock()  # threads of one process (a Dask worker) take turns
        _LIVE.add(self)

    # --- the worker's life ------------------------------------------------------------------------

    def _forget_inherited(self) -> None:
        """In a forked child, the parent's worker is not ours to talk to: start our own."""
        self._process, self._connection, self._capture = None, None, None
        self._owner = os.getpid()

    def _start(self) -> ProtocolFailure | None:
        parent_end, child_end = socket.socketpair()
        handle, path = tempfile.mkstemp(prefix="backprop-check-subject-", suffix=".out")
        os.close(handle)
        # O_APPEND: after the parent empties the file, the worker's next write lands at its start.
        self._capture = os.open(path, os.O_RDWR | os.O_APPEND)
        os.unlink(path)
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, environment.get("PYTHONPATH", "")) if p)
        command = [
            sys.executable,
            "-m",
            "oracles.subject_worker",
            str(child_end.fileno()),
            str(os.getpid()),
            "1" if threading.current_thread() is threading.main_thread() else "0",
        ]
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._capture,
                stderr=self._capture,
                pass_fds=(child_end.fileno(),),
                env=environment,
            )
        except OSError as exc:
            child_end.close()
            parent_end.close()
            self._stop()
            return ProtocolFailure("crash", f"cannot start a worker process for the subject: {exc}")
        child_end.close()
        self._connection = Connection(parent_end.detach())
        self.starts += 1
        self._connection.send(("init", list(sys.path), self.target))
        if not self._connection.poll(STARTUP_TIMEOUT):
            self._stop()
            return ProtocolFailure("timeout", f"the subject's worker did not load it within {STARTUP_TIMEOUT:g} s")
        try:
            message = self._connection.recv()
        except (EOFError, OSError):
            status = exit_status(self._reap())
            excerpt, _ = self._output()
            self._stop()
            return ProtocolFailure("crash", f"the subject's worker died while loading it ({status}){_tail(excerpt)}")
        if message[0] != "ready":
            self._stop()
            return ProtocolFailure("exception", f"the worker could not load the subject: {message[1]}")
        return None

    def _reap(self) -> int | None:
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait()

    def _stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._reap()
        if self._capture is not None:
            os.close(self._capture)
        self._process, self._connection, self._capture = None, None, None

    def __del__(self) -> None:
        # A subject dropped by its caller takes its worker with it (a forked child's copy does not).
        with contextlib.suppress(Exception):
            if os.getpid() == self._owner:
                self._stop()

    def stop(self) -> None:
        """End the worker (the next call starts a new one)."""
        with self._lock:
            if os.getpid() == self._owner:
                self._stop()

    def _output(self) -> tuple[str, int]:
        """What the subject wrote since the file was last emptied: (first EXCERPT_BYTES as text, total bytes)."""
        if self._capture is None:
            return "", 0
        size = os.fstat(self._capture).st_size
        head = os.pread(self._capture, EXCERPT_BYTES, 0) if size else b""
        return head.decode("utf-8", errors="replace"), size

    # --- calls --------------------------------------------------------------------------------------

    def call(self, op: str, args: tuple[Any, ...], timeout: float | None = None) -> RawCall:
        """Run ``op`` (``gradients`` or ``loss``) in the worker; ``timeout`` None: this supervisor's limit."""
        limit: float | None
        with self._lock:
            if os.getpid() != self._owner:
                self._forget_inherited()
            limit = self.timeout if timeout is None else timeout
            if math.isinf(limit):
                limit = None
            note = ""
            if limit is not None and limit > SHORT_TIMEOUT and self._timeouts_in_a_row >= TRIP_AFTER:
                note = f" (limit cut from {limit:g} s: the previous {self._timeouts_in_a_row} calls timed out)"
                limit = SHORT_TIMEOUT
            start = time.perf_counter()
            for attempt in range(2):
                if self._process is None or self._process.poll() is not None:
                    self._stop()
                    failure = self._start()
                    if failure is not None:
                        return RawCall(None, failure, time.perf_counter() - start)
                assert self._connection is not None and self._capture is not None
                os.ftruncate(self._capture, 0)
                self._sequence += 1
                try:
                    self._connection.send((self._sequence, op, args))
                    break
                except OSError:  # the worker died while idle (killed from outside): start another once
                    self._stop()
                    if attempt:
                        return RawCall(None, ProtocolFailure("crash", "the subject's worker keeps dying"), 0.0)
            try:
                return self._receive(limit, note, start)
            except BaseException:
                # The user's Ctrl-C while waiting: the worker is mid-call, its next answer would be stale.
                self._stop()
                raise

    def _receive(self, limit: float | None, note: str, start: float) -> RawCall:
        assert self._connection is not None
        deadline = None if limit is None else time.monotonic() + limit
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._connection.poll(remaining):
                excerpt, size = self._output()
                self._stop()
                self._timeouts_in_a_row += 1
                message = f"no answer within {limit:g} s{note}; the call was abandoned and its worker killed"
                return RawCall(None, ProtocolFailure("timeout", message), time.perf_counter() - start, excerpt, size)
            try:
                sequence, answer = self._connection.recv()
            except (EOFError, OSError):
                status = exit_status(self._reap())
                excerpt, size = self._output()
                self._stop()
                self._timeouts_in_a_row = 0
                message = f"the subject's worker process {status} during the call"
                if size:
                    message += f" ({size} bytes of output, start kept in the record)"
                return RawCall(None, ProtocolFailure("crash", message), time.perf_counter() - start, excerpt, size)
            except Exception as exc:  # the answer arrived whole but does not unpickle here
                excerpt, size = self._output()
                reason = f"the subject's answer cannot be read: {type(exc).__name__}: {exc}"
                failure = ProtocolFailure("exception", reason)
                return RawCall(None, failure, time.perf_counter() - start, excerpt, size)
            if sequence != self._sequence:
                continue  # a late answer to a call given up on: not this call's
            self._timeouts_in_a_row = 0
            excerpt, size = self._output()
            return RawCall(answer.raw, answer.failure, answer.elapsed, excerpt, size, answer.warnings)


def _tail(excerpt: str) -> str:
    """The last line the worker printed (a Python traceback's or faulthandler's), for a crash message."""
    lines = [line for line in excerpt.strip().splitlines() if line.strip()]
    return f"; last output: {lines[-1][:200]}" if lines else ""


_LIVE: weakref.WeakSet[Supervisor] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for supervisor in list(_LIVE):
        supervisor.stop()


def _as_spec(spec: Spec | Mapping[str, Any]) -> Spec:
    return spec if isinstance(spec, Spec) else Spec.from_dict(dict(spec))


class IsolatedGradients:
    """A subject's ``gradients`` that runs in its supervised worker.

    Called directly it behaves like the function (returns the raw value; raises
    :class:`~oracles.guarded.SubjectCallFailed` when none came back); :meth:`guarded` is the whole
    guarded call, run inside the worker.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def __call__(self, spec: Any, params: dict[str, Array], X: Array, Y: Array) -> Any:
        call = self.supervisor.call("gradients", (_as_spec(spec), params, X, Y, False))
        if call.raw is None and call.failure is not None:
            raise SubjectCallFailed(call.failure)
        return call.raw

    def guarded(
        self, spec: Spec, params: Params, X: Array, Y: Array, *, repeat: bool, timeout: float | None
    ) -> RawCall:
        return self.supervisor.call("gradients", (spec, params, X, Y, repeat), timeout)


class IsolatedLoss:
    """A subject's ``loss`` companion, run in the same worker as its gradients."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def __call__(self, spec: Any, params: dict[str, Array], X: Array, Y: Array) -> Any:
        call = self.guarded(_as_spec(spec), params, X, Y, timeout=None)
        if call.failure is not None:
            raise SubjectCallFailed(call.failure)
        return call.raw

    def guarded(self, spec: Spec, params: Params, X: Array, Y: Array, *, timeout: float | None) -> RawCall:
        return self.supervisor.call("loss", (spec, params, X, Y), timeout)
