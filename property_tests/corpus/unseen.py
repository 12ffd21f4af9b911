"""Subjects with defects of kinds the planted-bug catalogue never had: what a diagnosis meets in the wild.

Each is one example of a class (a stub, a library that raises on one activation, a transpose that only
happens on square layers, clipped values, a bias from one example, state kept between calls, a loss
normalised by the wrong count, a from-scratch book's ``Model``), written on its own small backward pass,
not on the reference.  The tests say which headline each must get.

Shapes: ``X`` ``(n_0, m)``, ``Y`` ``(n_L, m)``, ``W{l}`` ``(n_l, n_{l-1})``, ``b{l}`` ``(n_l, 1)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Array = np.ndarray
Grads = dict[str, Array]


def _act(name: str, z: Array) -> Array:
    if name == "identity":
        return z
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _slope(name: str, z: Array, a: Array) -> Array:
    if name == "identity":
        return np.ones_like(z)
    if name == "sigmoid":
        return 0.25 / np.cosh(0.5 * z) ** 2
    if name == "tanh":
        return 1.0 / np.cosh(z) ** 2
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # softplus' = σ


def _forward(spec: dict[str, Any], params: dict[str, Array], X: Array) -> tuple[list[Array], list[Array]]:
    zs, acts = [], [X]
    for layer, name in enumerate(spec["activations"], start=1):
        zs.append(params[f"W{layer}"] @ acts[-1] + params[f"b{layer}"])
        acts.append(_act(name, zs[-1]))
    return zs, acts


def _output_delta(spec: dict[str, Any], z: Array, a: Array, Y: Array) -> Array:
    loss, out, m = spec["loss"], spec["activations"][-1], Y.shape[1]
    if loss == "cce" or loss == "bce":
        return (a - Y) / m  # softmax+cce and sigmoid+bce: the fused δ (targets sum to 1)
    grad_a = 2.0 * (a - Y) / m if loss == "mse" else a - Y
    return grad_a * _slope(out, z, a)


def backprop(
    spec: dict[str, Any],
    params: dict[str, Array],
    X: Array,
    Y: Array,
    *,
    delta_out: Callable[[dict[str, Any], Array, Array, Array], Array] = _output_delta,
    carry: Callable[[int, Array, Array], Array] | None = None,
    bias: Callable[[Array], Array] | None = None,
) -> Grads:
    """A plain backward pass; ``carry(layer, W, δ)`` replaces (W^[l])ᵀ δ, ``bias(δ)`` the batch sum."""
    zs, acts = _forward(spec, params, X)
    L = len(spec["activations"])
    delta = delta_out(spec, zs[-1], acts[-1], Y)
    grads: Grads = {}
    for layer in range(L, 0, -1):
        grads[f"W{layer}"] = delta @ acts[layer - 1].T
        grads[f"b{layer}"] = bias(delta) if bias else delta.sum(axis=1, keepdims=True)
        if layer > 1:
            W = params[f"W{layer}"]
            carried = carry(layer, W, delta) if carry else W.T @ delta
            delta = carried * _slope(spec["activations"][layer - 2], zs[layer - 2], acts[layer - 1])
    return grads


def right(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
    return backprop(spec, params, X, Y)


def stub(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
    raise NotImplementedError("todo")


def no_softplus(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
    """A correct library whose activation table lacks softplus (looked up as an attribute)."""

    class Activations:
        identity = sigmoid = tanh = relu = leaky_relu = softmax = True

    for name in spec["activations"]:
        getattr(Activations, name)  # AttributeError: type object 'Activations' has no attribute 'softplus'
    return backprop(spec, params, X, Y)


def transpose_where_square(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
    """Orientation guessed from the shapes at layer 2: W^[2] δ whenever W^[2] is square."""

    def carry(layer: int, W: Array, delta: Array) -> Array:
        if layer == 2 and W.shape[0] == W.shape[1]:
            return W @ delta
        return W.T @ delta

    return backprop(spec, params, X, Y, carry=carry)


def clipped(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
    """Gradient clipping by value, applied inside the gradient function."""
    return {k: np.clip(v, -1.0, 1.0) for k, v in backprop(spec, params, X, Y).items()}


def bias_first_example(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
    """∂L/∂b taken from the first example's δ only (a leftover from single-example debugging)."""
    return backprop(spec, params, X, Y, bias=lambda delta: delta[:, :1].copy())


class Accumulating:
    """Gradient buffers allocated on the first call and added to on every call, never zeroed."""

    def __init__(self) -> None:
        self.buffers: Grads | None = None

    def gradients(self, spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
        grads = backprop(spec, params, X, Y)
        if self.buffers is None:
            self.buffers = {k: np.zeros_like(v) for k, v in grads.items()}
        for name, value in grads.items():
            self.buffers[name] += value  # a ValueError as soon as the shapes differ from the first call's
        return {k: v.copy() for k, v in self.buffers.items()}


def cce_over_units(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
    """cce's δ divided by the number of classes n_L instead of the batch size m; other losses right."""

    def delta_out(spec: dict[str, Any], z: Array, a: Array, Y: Array) -> Array:
        if spec["loss"] == "cce":
            return (a - Y) / Y.shape[0]
        return _output_delta(spec, z, a, Y)

    return backprop(spec, params, X, Y, delta_out=delta_out)


def book_model(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Grads:
    """In the style of a popular from-scratch book: rows are samples, losses average over outputs too,
    and the softmax/cross-entropy backward turns targets into class indices with argmax."""
    samples, outputs = Y.shape[1], Y.shape[0]
    zs, acts = _forward(spec, params, X)
    y_true, y_pred = Y.T, acts[-1].T
    loss, out = spec["loss"], spec["activations"][-1]
    if loss == "cce":
        labels = np.argmax(y_true, axis=1)
        dinputs = y_pred.copy()
        dinputs[range(samples), labels] -= 1
        dinputs = dinputs / samples
    elif loss == "bce":
        dvalues = -(y_true / y_pred - (1 - y_true) / (1 - y_pred)) / outputs / samples
        dinputs = dvalues * (y_pred * (1 - y_pred))
    else:
        dvalues = -2 * (y_true - y_pred) / outputs / samples
        dinputs = dvalues * _slope(out, zs[-1], acts[-1]).T
    if loss == "half_sse":
        dinputs = dinputs * outputs * samples / 2
    return backprop(spec, params, X, Y, delta_out=lambda *_: dinputs.T)
