"""Subjects: anything that produces gradients, called one way.

A subject is ``gradients(spec: dict, params: dict[str, ndarray], X, Y) -> dict[str, ndarray]`` (and
optionally ``loss(spec, params, X, Y) -> float``).  The reference, every oracle and any third-party
implementation are wrapped in :class:`Subject` so one comparer serves all.  :func:`call_subject` turns
everything a subject can do wrong at the protocol level into a categorised :class:`ProtocolFailure`
instead of an exception.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_impl.spec import Array, Case, Params, Spec

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
    """Load ``module:attr``; the attr is a gradients function or an object with ``.gradients``."""
    if ":" not in target:
        raise SubjectLoadError(f"subject must be MODULE:ATTR, got {target!r}")
    module_name, attr = target.split(":", 1)
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


def call_subject(subject: Subject, case: Case) -> SubjectCall:
    """Call a subject on fresh copies of the case's arrays; never raises for the subject's faults."""
    params, X, Y = case.arrays()
    start = time.perf_counter()
    try:
        raw = subject.gradients(case.spec.to_dict(), params, X, Y)
    except Exception as exc:
        return SubjectCall(
            None, ProtocolFailure("exception", f"{type(exc).__name__}: {exc}"), time.perf_counter() - start
        )
    elapsed = time.perf_counter() - start
    grads, failure = validate_gradients(case.spec, raw)
    return SubjectCall(grads, failure, elapsed)
