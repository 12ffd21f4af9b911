"""Subjects: anything that produces gradients, called one way.

A subject is ``gradients(spec: dict, params: dict[str, ndarray], X, Y) -> dict[str, ndarray]`` (and
optionally ``loss(spec, params, X, Y) -> float``).  The reference, every oracle and any third-party
implementation are wrapped in :class:`Subject` so one comparer serves all.  :func:`call_subject` turns
everything a subject can do wrong at the protocol level into a categorised :class:`ProtocolFailure`
instead of an exception.
"""

from __future__ import annotations

import importlib
import multiprocessing
import pickle
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracles.import_path import current_directory_first
from reference_impl.case import Case
from reference_impl.spec import Array, Params, Spec

GradientsFn = Callable[[dict[str, Any], dict[str, Array], Array, Array], Mapping[str, Any]]
LossFn = Callable[[dict[str, Any], dict[str, Array], Array, Array], float]


@dataclass(frozen=True)
class Subject:
    name: str
    gradients: GradientsFn
    loss: LossFn | None = None
    # Optional: callable returning (grads, deltas) so per-layer δ can be compared (the reference has it).
    deltas: Callable[[Spec, Params, Array, Array], tuple[Array, ...]] | None = None


class SubjectLoadError(Exception):
    """``MODULE:ATTR`` could not be imported or is not a subject (category: import)."""


@dataclass(frozen=True)
class ProtocolFailure:
    category: str  # exception, missing, shape, nonfinite, dtype, timeout, mutation, nondeterminism
    message: str
    parameter: str | None = None


@dataclass(frozen=True)
class SubjectCall:
    grads: Params | None
    failure: ProtocolFailure | None
    elapsed: float


def reference_subject() -> Subject:
    from reference_impl import mlp

    def deltas(spec: Spec, params: Params, X: Array, Y: Array) -> tuple[Array, ...]:
        return mlp.run(spec, params, X, Y)[1].deltas

    return Subject("reference", mlp.gradients, mlp.loss, deltas)


def load_subject(target: str) -> Subject:
    """Load ``module:attr`` (the current directory searched first); the attr is a gradients function or an
    object with ``.gradients``."""
    if ":" not in target:
        raise SubjectLoadError(f"subject must be MODULE:ATTR, got {target!r}")
    module_name, attr = target.split(":", 1)
    current_directory_first()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of user code is reported, not raised
        raise SubjectLoadError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SubjectLoadError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if hasattr(obj, "gradients"):
        grads_fn, loss_fn = obj.gradients, getattr(obj, "loss", None)
    else:
        # A bare function: its module's ``loss`` is the companion, when it has one.
        grads_fn, loss_fn = obj, getattr(module, "loss", None)
    if not callable(grads_fn):
        raise SubjectLoadError(f"{target} is neither callable nor has a callable .gradients")
    return Subject(target, grads_fn, loss_fn if callable(loss_fn) else None)


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


@dataclass(frozen=True)
class RawCall:
    """What one guarded call produced: the subject's raw return value, or the failure that replaced it."""

    raw: Any
    failure: ProtocolFailure | None
    elapsed: float


# Two identical calls may differ by reduction-order noise (threaded BLAS); state carried between calls
# shows up far above this, relative to the block's largest entry.
NONDETERMINISM_RTOL = 1e-12


def _exception_failure(exc: BaseException) -> ProtocolFailure:
    return ProtocolFailure("exception", f"{type(exc).__name__}: {exc}")


def _mutated_inputs(
    spec_dict: dict[str, Any], spec_before: dict[str, Any], arrays: Mapping[str, Any], before: Mapping[str, Array]
) -> list[str]:
    changed = [
        name
        for name, original in before.items()
        if not (
            isinstance(arrays[name], np.ndarray)
            and arrays[name].shape == original.shape
            and np.array_equal(arrays[name], original, equal_nan=True)
        )
    ]
    if spec_dict != spec_before:
        changed.append("spec")
    return changed


def real_blocks(raw: Any) -> dict[str, Array] | None:
    """``raw`` as float64 arrays of any shape, when it is a mapping of real numbers (else None)."""
    if not isinstance(raw, Mapping):
        return None
    blocks: dict[str, Array] = {}
    for key, value in raw.items():
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            return None
        # Complex or non-numeric values are a dtype fault, reported by validate_gradients; casting them
        # here would warn (complex) or raise.
        if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
            return None
        blocks[str(key)] = array.astype(np.float64)
    return blocks


def _differing_block(first: Any, second: Any) -> str | None:
    """The first block on which two calls disagree beyond reduction-order noise (None: they agree)."""
    a, b = real_blocks(first), real_blocks(second)
    if a is None or b is None:
        return None
    if set(a) != set(b):
        return "keys"
    for name in sorted(a):
        if a[name].shape != b[name].shape:
            return name
        scale = float(np.max(np.abs(a[name]))) if a[name].size else 0.0
        diff = np.abs(a[name] - b[name])
        if np.any(~np.isfinite(diff) & ~(np.isnan(a[name]) & np.isnan(b[name]))):
            return name
        if np.any(np.nan_to_num(diff, nan=0.0) > NONDETERMINISM_RTOL * scale):
            return name
    return None


def _guarded(fn: GradientsFn, spec: Spec, params: Params, X: Array, Y: Array, repeat: bool) -> RawCall:
    """Call ``fn`` on private copies; detect input mutation and (``repeat``) a second call's disagreement."""
    spec_dict = spec.to_dict()
    spec_before = spec.to_dict()
    arrays: dict[str, Any] = {**{k: v.copy() for k, v in params.items()}, "X": X.copy(), "Y": Y.copy()}
    before = {k: v.copy() for k, v in arrays.items()}
    call_params = {k: arrays[k] for k in params}
    start = time.perf_counter()
    try:
        raw = fn(spec_dict, call_params, arrays["X"], arrays["Y"])
    except (Exception, SystemExit) as exc:  # SystemExit too: a subject calling sys.exit must not end the run
        return RawCall(None, _exception_failure(exc), time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    changed = _mutated_inputs(spec_dict, spec_before, {**call_params, "X": arrays["X"], "Y": arrays["Y"]}, before)
    if changed:
        message = f"the subject modified its input(s) {changed} in place"
        return RawCall(raw, ProtocolFailure("mutation", message, changed[0]), elapsed)
    if repeat:
        fresh = {k: v.copy() for k, v in params.items()}
        try:
            again = fn(spec.to_dict(), fresh, X.copy(), Y.copy())
        except (Exception, SystemExit) as exc:
            return RawCall(raw, _exception_failure(exc), elapsed)
        block = _differing_block(raw, again)
        if block is not None:
            message = f"two identical calls returned different {block} (hidden state or randomness)"
            return RawCall(raw, ProtocolFailure("nondeterminism", message, block if block != "keys" else None), elapsed)
    return RawCall(raw, None, elapsed)


def _picklable(raw: Any) -> Any:
    try:
        pickle.dumps(raw)
        return raw
    except Exception:
        if isinstance(raw, Mapping):
            return {str(k): _picklable(v) for k, v in raw.items()}
        return f"<unpicklable {type(raw).__name__}>"


def _worker(fn: GradientsFn, spec: Spec, params: Params, X: Array, Y: Array, repeat: bool, conn: Any) -> None:
    call = _guarded(fn, spec, params, X, Y, repeat)
    conn.send(RawCall(_picklable(call.raw), call.failure, call.elapsed))
    conn.close()


def _in_forked_worker(
    fn: GradientsFn, spec: Spec, params: Params, X: Array, Y: Array, repeat: bool, timeout: float
) -> RawCall:
    """Run the guarded call in a forked child that is killed when ``timeout`` seconds pass.

    A thread cannot be stopped, so a subject that loops forever would keep a core busy for the rest of
    the run; a child process can be killed.  Fork (not spawn) so that any callable, even a closure,
    can be a subject without being picklable.
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
                message = f"the subject's worker process died (exit code {process.exitcode})"
                result = RawCall(None, ProtocolFailure("exception", message), time.perf_counter() - start)
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
    second time on fresh copies (``nondeterminism``); ``timeout`` runs the call in a killable child.
    """
    if timeout is not None:
        return _in_forked_worker(subject.gradients, spec, params, X, Y, repeat, timeout)
    return _guarded(subject.gradients, spec, params, X, Y, repeat)


def call_subject(subject: Subject, case: Case, *, timeout: float | None = None, repeat: bool = False) -> SubjectCall:
    """Call a subject on fresh copies of the case's arrays; never raises for the subject's faults.

    Categories: exception, timeout, mutation, nondeterminism, then (on the value) missing, shape,
    dtype, nonfinite.
    """
    params, X, Y = case.arrays()
    call = invoke(subject, case.spec, params, X, Y, timeout=timeout, repeat=repeat)
    if call.failure is not None:
        return SubjectCall(None, call.failure, call.elapsed)
    grads, failure = validate_gradients(case.spec, call.raw)
    return SubjectCall(grads, failure, call.elapsed)
