"""Activations: each function beside its derivative, in one registry.

Shapes: every function maps ``z`` ``(n, m)`` (one column per example) to an array of the same shape.
``derivative`` is the elementwise g'(z) of the article's ⊙ recursion; softmax has no elementwise
derivative, so every activation also offers ``vjp(z, a, grad_a) -> grad_z`` (the Jacobian-transpose
product), which is what the backward pass actually calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference_impl.spec import Array

LEAKY_SLOPE = 0.01


def sigmoid(z: Array) -> Array:
    # exp of a non-positive number only: no overflow for |z| up to 1e3 and beyond.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(z: Array) -> Array:
    # σ(z)(1 − σ(z)) loses all relative accuracy once σ(z) rounds near 1 (1 − σ cancels);
    # e^{-|z|}/(1 + e^{-|z|})² is the same function with no cancellation anywhere.
    e = np.exp(-np.abs(z))
    return e / (1.0 + e) ** 2


def tanh_derivative(z: Array) -> Array:
    # 1 − tanh² cancels as tanh → ±1 (relative error ~eps/sech²); sech(z) = 2e^{-|z|}/(1 + e^{-2|z|})
    # is accurate to a few ulps for every z and cannot overflow.
    e = np.exp(-np.abs(z))
    return (2.0 * e / (1.0 + e * e)) ** 2


def softplus(z: Array) -> Array:
    # log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}): exact, unlike a threshold switch to the identity.
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def softmax(z: Array) -> Array:
    shifted = z - z.max(axis=0, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=0, keepdims=True)


def log_softmax(z: Array) -> Array:
    shifted = z - z.max(axis=0, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def _elementwise_vjp(derivative: Callable[[Array], Array]) -> Callable[[Array, Array, Array], Array]:
    def vjp(z: Array, a: Array, grad_a: Array) -> Array:
        return grad_a * derivative(z)

    return vjp


def _softmax_vjp(z: Array, a: Array, grad_a: Array) -> Array:
    # J^T g for J = diag(a) - a a^T, column by column.
    return a * (grad_a - (a * grad_a).sum(axis=0, keepdims=True))


@dataclass(frozen=True)
class Activation:
    name: str
    function: Callable[[Array], Array]
    derivative: Callable[[Array], Array] | None  # elementwise g'(z); None when the Jacobian is not diagonal
    vjp: Callable[[Array, Array, Array], Array]
    kinks: tuple[float, ...] = ()  # points where g is not differentiable (the derivative there is a convention)


def _make(
    name: str, function: Callable[[Array], Array], derivative: Callable[[Array], Array], kinks: tuple[float, ...] = ()
) -> Activation:
    return Activation(name, function, derivative, _elementwise_vjp(derivative), kinks)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        _make("identity", lambda z: z.copy(), np.ones_like),
        _make("sigmoid", sigmoid, sigmoid_derivative),
        _make("tanh", np.tanh, tanh_derivative),
        # relu'(0) = 0 and leaky_relu'(0) = slope: the conventions every subject is asked to follow.
        _make("relu", lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype), kinks=(0.0,)),
        _make(
            "leaky_relu",
            lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
            lambda z: np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
            kinks=(0.0,),
        ),
        _make("softplus", softplus, sigmoid),
        Activation("softmax", softmax, None, _softmax_vjp),
    )
}


def get_activation(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise KeyError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None
