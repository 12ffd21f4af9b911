"""Subjects: anything that produces gradients, called one way.

A subject is ``gradients(spec: dict, params: dict[str, ndarray], X, Y) -> dict[str, ndarray]`` (and
optionally ``loss(spec, params, X, Y) -> float``).  The reference, every oracle and any third-party
implementation are wrapped in :class:`Subject` so one comparer serves all.  :func:`call_subject` turns
everything a subject can do wrong at the protocol level into a categorised :class:`ProtocolFailure`
instead of an exception.  A subject loaded by name (:func:`load_subject`) runs in a supervised worker
process (:mod:`oracles.supervisor`); the reference, the oracles and functions handed in directly run here.
"""

from __future__ import annotations

import importlib
import multiprocessing
import signal
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracles.guarded import (
    NONDETERMINISM_RTOL,
    GradientsFn,
    LossFn,
    ProtocolFailure,
    RawCall,
    SubjectCallFailed,
    SubjectLoadError,
    guarded_call,
    guarded_loss_call,
    picklable,
    real_blocks,
    resolve_target,
)
from oracles.hazards import case_hazards, summary
from oracles.import_path import current_directory_first
from oracles.supervisor import DEFAULT_TIMEOUT, IsolatedGradients, IsolatedLoss, Supervisor, exit_status
from reference_impl.case import Case
from reference_impl.spec import Array, Params, Spec

__all__ = [
    "DEFAULT_TIMEOUT",
    "NONDETERMINISM_RTOL",
    "GradientsFn",
    "LossFn",
    "ProtocolFailure",
    "RawCall",
    "Subject",
    "SubjectCall",
    "SubjectCallFailed",
    "SubjectLoadError",
    "call_loss",
    "call_subject",
    "invoke",
    "load_subject",
    "real_blocks",
    "reference_subject",
    "subject_supports",
    "validate_gradients",
]


@dataclass(frozen=True)
class Subject:
    name: str
    gradients: GradientsFn
    loss: LossFn | None = None
    # Optional: callable returning (grads, deltas) so per-layer δ can be compared (the reference has it).
    deltas: Callable[[Spec, Params, Array, Array], tuple[Array, ...]] | None = None


@dataclass(frozen=True)
class SubjectCall:
    grads: Params | None
    failure: ProtocolFailure | None
    elapsed: float
    output: str = ""  # the start of what an isolated subject printed during the call
    output_bytes: int = 0
    warnings: tuple[str, ...] = ()  # what the subject warned (NumPy overflow, …), captured, never printed


def reference_subject() -> Subject:
    from reference_impl import mlp

    def deltas(spec: Spec, params: Params, X: Array, Y: Array) -> tuple[Array, ...]:
        return mlp.run(spec, params, X, Y)[1].deltas

    # No loss companion here: the reference's loss is held to every oracle's by the property tests, and a
    # loss record in every campaign case would only repeat them.  Loaded by name it is checked like any subject.
    return Subject("reference", mlp.gradients, None, deltas)


def load_subject(target: str, *, isolate: bool = True, timeout: float | None = None) -> Subject:
    """Load ``module:attr``; the attr is a gradients function or an object with ``.gradients``.

    The module is imported here too, so a bad target is one error before anything runs.  ``isolate``
    (the default): every call runs in a supervised worker process (:mod:`oracles.supervisor`) limited
    to ``timeout`` seconds (None: ``DEFAULT_TIMEOUT``; ``math.inf``: no limit); otherwise the subject is
    called in this process.
    """
    grads_fn, loss_fn = resolve_target(target)
    if not isolate:
        return Subject(target, grads_fn, loss_fn)
    supervisor = Supervisor(target, timeout)
    return Subject(target, IsolatedGradients(supervisor), IsolatedLoss(supervisor) if loss_fn else None)


def subject_supports(target: str) -> dict[str, Any] | None:
    """The optional ``SUPPORTS`` dict beside a ``MODULE:ATTR`` subject (on the object first, then the module)."""
    module_name, attr = target.split(":", 1)
    current_directory_first()
    obj: Any = importlib.import_module(module_name)
    found = getattr(obj, "SUPPORTS", None)
    for part in attr.split("."):
        obj = getattr(obj, part)
        found = getattr(obj, "SUPPORTS", found)
    if found is None:
        return None
    if not isinstance(found, Mapping):
        raise SubjectLoadError(f"{target}: SUPPORTS must be a dict, got {type(found).__name__}")
    return dict(found)


def validate_gradients(spec: Spec, raw: Any) -> tuple[Params | None, ProtocolFailure | None]:
    """Check keys, shapes, dtype and finiteness of what a subject returned."""
    if not isinstance(raw, Mapping):
        return None, ProtocolFailure("shape", f"returned {type(raw).__name__}, expected a dict of arrays")
    grads: Params = {}
    for name in spec.parameter_names:
        if name not in raw:
            return None, ProtocolFailure("missing", f"no gradient for {name}", name)
        try:
            value = np.asarray(raw[name])
        except Exception as exc:
            return None, ProtocolFailure("dtype", f"{name}: not an array ({exc})", name)
        expected = spec.parameter_shape(name)
        if value.ndim == 0 and int(np.prod(expected)) > 1:
            return None, ProtocolFailure(
                "shape", f"{name} is a scalar ({value!r}), expected an array of shape {expected}", name
            )
        if value.shape != expected:
            return None, ProtocolFailure("shape", f"{name} has shape {value.shape}, expected {expected}", name)
        if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
            return None, ProtocolFailure("dtype", f"{name} has dtype {value.dtype}, expected real floats", name)
        value = value.astype(np.float64)
        if not np.all(np.isfinite(value)):
            return None, ProtocolFailure("nonfinite", f"{name} contains NaN or inf", name)
        grads[name] = value
    extra = sorted(set(raw) - set(spec.parameter_names))
    if extra:
        return None, ProtocolFailure("missing", f"unexpected keys {extra}")
    return grads, None


def _worker(fn: GradientsFn, spec: Spec, params: Params, X: Array, Y: Array, repeat: bool, conn: Any) -> None:
    # A Ctrl-C is the parent's to handle: any KeyboardInterrupt here is the subject's own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    call = guarded_call(fn, spec, params, X, Y, repeat, catch_interrupt=True)
    conn.send(RawCall(picklable(call.raw), call.failure, call.elapsed, warnings=call.warnings))
    conn.close()


def _in_forked_worker(
    fn: GradientsFn, spec: Spec, params: Params, X: Array, Y: Array, repeat: bool, timeout: float
) -> RawCall:
    """Run the guarded call in a forked child that is killed when ``timeout`` seconds pass.

    For functions handed in directly (closures included, which is why fork and not spawn); subjects
    loaded by name have a supervised worker instead.  A thread cannot be stopped, so a subject that
    loops forever would keep a core busy for the rest of the run; a child process can be killed.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker, args=(fn, spec, params, X, Y, repeat, sender), daemon=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Python ≥ 3.12 warns that fork in a threaded parent may deadlock; the child only runs the
        # subject and exits, and the timeout below covers a child that does deadlock.
        warnings.simplefilter("ignore", DeprecationWarning)
        process.start()
    sender.close()
    try:
        if receiver.poll(timeout):
            try:
                result: RawCall = receiver.recv()
            except EOFError:
                process.join(timeout=5)
                message = f"the subject's worker process {exit_status(process.exitcode)} during the call"
                result = RawCall(None, ProtocolFailure("crash", message), time.perf_counter() - start)
            return result
        message = f"no answer within {timeout:g} s; the call was abandoned and its process killed"
        return RawCall(None, ProtocolFailure("timeout", message), time.perf_counter() - start)
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        process.join(timeout=5)


def invoke(
    subject: Subject,
    spec: Spec,
    params: Params,
    X: Array,
    Y: Array,
    *,
    timeout: float | None = None,
    repeat: bool = False,
) -> RawCall:
    """One guarded call of ``subject.gradients``, returning its raw value (unvalidated).

    Inputs are private copies compared before and after the call (``mutation``); ``repeat`` calls a
    second time on fresh copies (``nondeterminism``).  An isolated subject's call runs in its worker
    (``timeout`` None: the worker's own limit); an in-process one runs here, or with ``timeout`` in a
    killable forked child.
    """
    if isinstance(subject.gradients, IsolatedGradients):
        return subject.gradients.guarded(spec, params, X, Y, repeat=repeat, timeout=timeout)
    if timeout is not None:
        return _in_forked_worker(subject.gradients, spec, params, X, Y, repeat, timeout)
    return guarded_call(subject.gradients, spec, params, X, Y, repeat)


def call_subject(subject: Subject, case: Case, *, timeout: float | None = None, repeat: bool = False) -> SubjectCall:
    """Call a subject on fresh copies of the case's arrays; never raises for the subject's faults.

    Categories: exception, crash, timeout, mutation, nondeterminism, then (on the value) missing, shape,
    dtype, nonfinite — or unstable, for NaN/inf or an arithmetic exception where the case holds float64
    hazards (:mod:`oracles.hazards`).
    """
    params, X, Y = case.arrays()
    call = invoke(subject, case.spec, params, X, Y, timeout=timeout, repeat=repeat)
    if call.failure is not None:
        fault = _unstable_or(call.failure, case)
        return SubjectCall(None, fault, call.elapsed, call.output, call.output_bytes, call.warnings)
    grads, failure = validate_gradients(case.spec, call.raw)
    if failure is not None:
        failure = _unstable_or(failure, case)
    return SubjectCall(grads, failure, call.elapsed, call.output, call.output_bytes, call.warnings)


# Exceptions a subject raises when its float64 arithmetic overflows (math.exp, np.seterr(all="raise"), …).
ARITHMETIC_FAILURES = ("FloatingPointError", "OverflowError", "ZeroDivisionError")


def _unstable_or(failure: ProtocolFailure, case: Case) -> ProtocolFailure:
    """NaN/inf (or an arithmetic exception) where the case holds float64 hazards is an instability: the
    exact gradient is finite there and the reference computes it.  On a tame case it stays a plain fault."""
    arithmetic = failure.category == "exception" and failure.message.split(":", 1)[0] in ARITHMETIC_FAILURES
    if failure.category != "nonfinite" and not arithmetic:
        return failure
    found = case_hazards(case)
    if not found:
        return failure
    message = f"{failure.message} where the exact gradient is finite; float64 hazards in this case: {summary(found)}"
    return ProtocolFailure("unstable", message, failure.parameter)


def call_loss(subject: Subject, case: Case, *, timeout: float | None = None) -> RawCall:
    """Call the subject's ``loss`` companion on the case (raw value, unvalidated); never raises for its faults."""
    assert subject.loss is not None
    params, X, Y = case.arrays()
    if isinstance(subject.loss, IsolatedLoss):
        return subject.loss.guarded(case.spec, params, X, Y, timeout=timeout)
    return guarded_loss_call(subject.loss, case.spec, params, X, Y)
