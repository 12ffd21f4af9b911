"""Losses: each value beside its gradient, in one registry.

Shapes: predictions ``A`` and targets ``Y`` are ``(n_L, m)``; values are Python floats; gradients have
the shape of ``A``.  Normalisations (the suite's definitions, not the article's — the article uses both):

- ``mse``      = (1/m) Σ_i ‖y_i − ŷ_i‖²   (summed over output units, mean over the batch; article §4.2)
- ``half_sse`` = ½ Σ over all entries (y − ŷ)²  (no 1/m; article §3.2)
- ``bce``      = −(1/m) Σ [y log ŷ + (1 − y) log(1 − ŷ)]  (sigmoid outputs)
- ``cce``      = −(1/m) Σ y log ŷ  (softmax outputs)

Cross-entropies also have a *fused* form from the output logits ``Z``: the stable value and the
shortcut δ^[L] = ∂L/∂Z.  The shortcut is tested against the unfused composition (loss gradient pushed
through the activation's vjp), never assumed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference_impl.activations import log_softmax, sigmoid, softmax, softplus
from reference_impl.spec import Array


def _batch(Y: Array) -> int:
    return int(Y.shape[1])


@dataclass(frozen=True)
class Loss:
    name: str
    value: Callable[[Array, Array], float]  # L(A, Y)
    gradient: Callable[[Array, Array], Array]  # ∂L/∂A
    output_activation: str | None = None  # the activation the loss is paired with, when it must be
    value_from_logits: Callable[[Array, Array], float] | None = None  # stable L(Z, Y)
    delta_from_logits: Callable[[Array, Array], Array] | None = None  # fused ∂L/∂Z


def _mse_value(A: Array, Y: Array) -> float:
    return float(np.sum((Y - A) ** 2) / _batch(Y))


def _mse_gradient(A: Array, Y: Array) -> Array:
    return 2.0 * (A - Y) / _batch(Y)


def _half_sse_value(A: Array, Y: Array) -> float:
    return float(0.5 * np.sum((Y - A) ** 2))


def _half_sse_gradient(A: Array, Y: Array) -> Array:
    return A - Y


def _bce_value(A: Array, Y: Array) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = Y * np.log(A) + (1.0 - Y) * np.log1p(-A)
    return float(-np.sum(terms) / _batch(Y))


def _bce_gradient(A: Array, Y: Array) -> Array:
    return (A - Y) / (A * (1.0 - A)) / _batch(Y)


def _bce_value_from_logits(Z: Array, Y: Array) -> float:
    # −[y log σ(z) + (1−y) log(1−σ(z))] = softplus(z) − y z, finite for any z.
    return float(np.sum(softplus(Z) - Y * Z) / _batch(Y))


def _bce_delta_from_logits(Z: Array, Y: Array) -> Array:
    return (sigmoid(Z) - Y) / _batch(Y)


def _cce_value(A: Array, Y: Array) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(-np.sum(np.where(Y == 0, 0.0, Y * np.log(A))) / _batch(Y))


def _cce_gradient(A: Array, Y: Array) -> Array:
    return -Y / A / _batch(Y)


def _cce_value_from_logits(Z: Array, Y: Array) -> float:
    return float(-np.sum(Y * log_softmax(Z)) / _batch(Y))


def _cce_delta_from_logits(Z: Array, Y: Array) -> Array:
    # The textbook shortcut p − y silently assumes each target column sums to 1; the exact
    # derivative keeps that sum, so soft or unnormalised targets are still differentiated correctly.
    return (softmax(Z) * Y.sum(axis=0, keepdims=True) - Y) / _batch(Y)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("mse", _mse_value, _mse_gradient),
        Loss("half_sse", _half_sse_value, _half_sse_gradient),
        Loss("bce", _bce_value, _bce_gradient, "sigmoid", _bce_value_from_logits, _bce_delta_from_logits),
        Loss("cce", _cce_value, _cce_gradient, "softmax", _cce_value_from_logits, _cce_delta_from_logits),
    )
}


def get_loss(name: str) -> Loss:
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {sorted(LOSSES)}") from None
