"""The child side of :mod:`oracles.supervisor`: load one subject, then answer guarded calls until told to stop.

Run as ``python -m oracles.subject_worker FD PARENT_PID KERNEL_SIGNAL``; FD is one end of a socket pair.
Messages (pickled): the parent sends ``("init", sys_path, target)`` once, then ``(seq, op, args)`` with
``op`` in ``gradients`` / ``loss``; the worker answers ``("ready",)`` or ``("load-error", message)``,
then ``(seq, RawCall)`` per request.  stdout and stderr are a file the parent reads (and empties)
around each call, so a subject's printing never reaches the terminal.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import signal
import sys
from multiprocessing.connection import Connection
from typing import Any

from oracles.guarded import (
    GradientsFn,
    LossFn,
    ProtocolFailure,
    RawCall,
    SubjectLoadError,
    guarded_call,
    guarded_loss_call,
    picklable,
    resolve_target,
)
from oracles.lifeline import die_with_parent


def _flush_output() -> None:
    """Push the subject's buffered prints (Python's and C stdio's) into the capture file before replying."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a subject may have replaced or closed the stream
            stream.flush()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


def _answer(grads_fn: GradientsFn, loss_fn: LossFn | None, op: str, args: tuple[Any, ...]) -> RawCall:
    if op == "gradients":
        spec, params, X, Y, repeat = args
        return guarded_call(grads_fn, spec, params, X, Y, repeat, catch_interrupt=True)
    if op == "loss" and loss_fn is not None:
        spec, params, X, Y = args
        return guarded_loss_call(loss_fn, spec, params, X, Y, catch_interrupt=True)
    return RawCall(None, ProtocolFailure("exception", f"the worker cannot {op!r}"), 0.0)


def serve(connection: Connection) -> None:
    _, path, target = connection.recv()
    sys.path[:] = path
    try:
        grads_fn, loss_fn = resolve_target(target)
    except SubjectLoadError as exc:
        connection.send(("load-error", str(exc)))
        return
    connection.send(("ready",))
    while True:
        try:
            seq, op, args = connection.recv()
        except (EOFError, OSError):  # the parent closed its end: nothing more to do
            return
        call = _answer(grads_fn, loss_fn, op, args)
        _flush_output()
        try:
            connection.send((seq, RawCall(picklable(call.raw), call.failure, call.elapsed, warnings=call.warnings)))
        except Exception as exc:  # the value pickled piecewise but not whole
            failure = ProtocolFailure("dtype", f"the returned value cannot be sent back: {type(exc).__name__}: {exc}")
            connection.send((seq, RawCall(None, failure, call.elapsed)))


def main(argv: list[str]) -> None:
    fd, parent_pid, kernel_signal = int(argv[0]), int(argv[1]), argv[2] == "1"
    # The terminal's Ctrl-C (or a SIGTERM to the process group) reaches every process; stopping is the
    # parent's decision, and a worker killed by it would blame the innocent case it was running.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent_pid, kernel_signal=kernel_signal)
    faulthandler.enable()  # a segfault leaves the subject's stack in the captured output
    serve(Connection(fd))


if __name__ == "__main__":
    main(sys.argv[1:])
