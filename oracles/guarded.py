"""One guarded call of a subject's function in the current process, and importing ``MODULE:ATTR``.

The guard calls on private copies of the inputs and compares them afterwards (``mutation``), optionally
calls twice (``nondeterminism``), and turns an exception into a categorised :class:`ProtocolFailure`.
It is what runs inside the supervised worker (:mod:`oracles.subject_worker`) and, for the reference and
the oracles, in-process.  Nothing here starts a process.
"""

from __future__ import annotations

import importlib
import pickle
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracles.import_path import current_directory_first
from reference_impl.spec import Array, Params, Spec

GradientsFn = Callable[[dict[str, Any], dict[str, Array], Array, Array], Mapping[str, Any]]
LossFn = Callable[[dict[str, Any], dict[str, Array], Array, Array], float]

# Two identical calls may differ by reduction-order noise (threaded BLAS); state carried between calls
# shows up far above this, relative to the block's largest entry.
NONDETERMINISM_RTOL = 1e-12


class SubjectLoadError(Exception):
    """``MODULE:ATTR`` could not be imported or is not a subject (category: import)."""


@dataclass(frozen=True)
class ProtocolFailure:
    # exception, crash, timeout, missing, shape, nonfinite, unstable, dtype, mutation, nondeterminism
    category: str
    message: str
    parameter: str | None = None


@dataclass(frozen=True)
class RawCall:
    """What one guarded call produced: the subject's raw return value, or the failure that replaced it.

    ``output`` is the start of what the subject wrote to stdout/stderr during the call (isolated
    subjects only) and ``output_bytes`` how much it wrote in all; ``warnings`` what it warned (NumPy's
    overflow, …), captured rather than printed.
    """

    raw: Any
    failure: ProtocolFailure | None
    elapsed: float
    output: str = ""
    output_bytes: int = 0
    warnings: tuple[str, ...] = ()


MAX_WARNINGS = 10


def _warning_lines(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    """Distinct warnings as ``"RuntimeWarning: overflow encountered in exp (×3)"``, first seen first."""
    counts: dict[str, int] = {}
    for item in caught:
        key = f"{item.category.__name__}: {item.message}"
        counts[key] = counts.get(key, 0) + 1
    lines = [key if n == 1 else f"{key} (×{n})" for key, n in counts.items()]
    return tuple(lines[:MAX_WARNINGS])


def _captured(fn: GradientsFn, *args: Any) -> tuple[Any, tuple[str, ...]]:
    """Call ``fn``, recording its warnings instead of letting them reach the terminal (or, under a
    warnings-as-errors test run, turn an overflow the subject tolerates into an exception)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = fn(*args)
    return raw, _warning_lines(caught)


class SubjectCallFailed(Exception):
    """Raised when an isolated subject's function is called directly and no value came back."""

    def __init__(self, failure: ProtocolFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def resolve_target(target: str) -> tuple[GradientsFn, LossFn | None]:
    """``module:attr`` -> (gradients, loss or None); the attr is a function or an object with ``.gradients``.

    MODULE is searched in the current directory first (:func:`oracles.import_path.current_directory_first`).
    """
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
    return grads_fn, (loss_fn if callable(loss_fn) else None)


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


def exception_failure(exc: BaseException) -> ProtocolFailure:
    if isinstance(exc, SubjectCallFailed):
        return exc.failure
    if isinstance(exc, KeyboardInterrupt):
        # Only reachable where the user's Ctrl-C cannot arrive (the worker ignores SIGINT): the subject raised it.
        return ProtocolFailure("exception", f"KeyboardInterrupt raised by the subject: {exc}")
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
        # The same inf (or NaN) twice is the same answer, not a difference (inf − inf would say otherwise).
        identical = (a[name] == b[name]) | (np.isnan(a[name]) & np.isnan(b[name]))
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.where(identical, 0.0, np.abs(a[name] - b[name]))
        if np.any(~np.isfinite(diff)):
            return name
        finite = np.abs(a[name][np.isfinite(a[name])])
        scale = float(np.max(finite)) if finite.size else 0.0
        if np.any(diff > NONDETERMINISM_RTOL * scale):
            return name
    return None


def guarded_call(
    fn: GradientsFn,
    spec: Spec,
    params: Params,
    X: Array,
    Y: Array,
    repeat: bool,
    *,
    catch_interrupt: bool = False,
) -> RawCall:
    """Call ``fn`` on private copies; detect input mutation and (``repeat``) a second call's disagreement.

    ``catch_interrupt``: a KeyboardInterrupt is the subject's fault too (in a worker that ignores SIGINT);
    in-process it may be the user's Ctrl-C, so it propagates.
    """
    caught: tuple[type[BaseException], ...] = (Exception, SystemExit)  # a subject calling sys.exit must not end the run
    if catch_interrupt:
        caught = (*caught, KeyboardInterrupt)
    spec_dict = spec.to_dict()
    spec_before = spec.to_dict()
    arrays: dict[str, Any] = {**{k: v.copy() for k, v in params.items()}, "X": X.copy(), "Y": Y.copy()}
    before = {k: v.copy() for k, v in arrays.items()}
    call_params = {k: arrays[k] for k in params}
    start = time.perf_counter()
    try:
        raw, warned = _captured(fn, spec_dict, call_params, arrays["X"], arrays["Y"])
    except caught as exc:
        return RawCall(None, exception_failure(exc), time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    changed = _mutated_inputs(spec_dict, spec_before, {**call_params, "X": arrays["X"], "Y": arrays["Y"]}, before)
    if changed:
        message = f"the subject modified its input(s) {changed} in place"
        return RawCall(raw, ProtocolFailure("mutation", message, changed[0]), elapsed, warnings=warned)
    if repeat:
        fresh = {k: v.copy() for k, v in params.items()}
        try:
            again, _ = _captured(fn, spec.to_dict(), fresh, X.copy(), Y.copy())
        except caught as exc:
            return RawCall(raw, exception_failure(exc), elapsed, warnings=warned)
        block = _differing_block(raw, again)
        if block is not None:
            message = f"two identical calls returned different {block} (hidden state or randomness)"
            failure = ProtocolFailure("nondeterminism", message, block if block != "keys" else None)
            return RawCall(raw, failure, elapsed, warnings=warned)
    return RawCall(raw, None, elapsed, warnings=warned)


def guarded_loss_call(
    fn: LossFn, spec: Spec, params: Params, X: Array, Y: Array, *, catch_interrupt: bool = False
) -> RawCall:
    """Call a ``loss`` companion on private copies; its value is returned raw (checked by the caller)."""
    caught: tuple[type[BaseException], ...] = (Exception, SystemExit)
    if catch_interrupt:
        caught = (*caught, KeyboardInterrupt)
    start = time.perf_counter()
    try:
        raw = fn(spec.to_dict(), {k: v.copy() for k, v in params.items()}, X.copy(), Y.copy())
    except caught as exc:
        return RawCall(None, exception_failure(exc), time.perf_counter() - start)
    return RawCall(raw, None, time.perf_counter() - start)


def picklable(raw: Any) -> Any:
    """``raw``, or as much of it as pickles (a mapping keeps its picklable values; the rest is named)."""
    try:
        pickle.dumps(raw)
        return raw
    except Exception:
        if isinstance(raw, Mapping):
            return {str(k): picklable(v) for k, v in raw.items()}
        return f"<unpicklable {type(raw).__name__}>"
