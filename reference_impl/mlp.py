"""The article's MLP: forward (§4.1), loss (§3.2/§4.2), δ recursion (§4.3), update (§4.4).

Shapes (column per example): ``X`` ``(n_0, m)``, ``Y`` ``(n_L, m)``, ``W{l}`` ``(n_l, n_{l-1})``,
``b{l}`` ``(n_l, 1)``, ``z[l]``/``a[l]``/``delta[l]`` ``(n_l, m)``.  Layers are numbered 1..L as in the
article; index 0 of ``Tape.activations`` is the input ``X``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_impl.activations import get_activation
from reference_impl.losses import get_loss
from reference_impl.spec import Array, Params, Spec, as_spec, check_arrays


@dataclass(frozen=True)
class Tape:
    """Forward intermediates: ``pre_activations[l-1]`` is z^[l]; ``activations[l]`` is a^[l] (a^[0] = X)."""

    pre_activations: tuple[Array, ...]
    activations: tuple[Array, ...]

    def z(self, layer: int) -> Array:
        return self.pre_activations[layer - 1]

    def a(self, layer: int) -> Array:
        return self.activations[layer]

    @property
    def output(self) -> Array:
        return self.activations[-1]


@dataclass(frozen=True)
class Backward:
    """``deltas[l-1]`` is δ^[l] = ∂L/∂z^[l] ``(n_l, m)``; ``grads`` has ``W{l}``, ``b{l}``."""

    deltas: tuple[Array, ...]
    grads: Params

    def delta(self, layer: int) -> Array:
        return self.deltas[layer - 1]


def forward(spec: Spec | Mapping[str, Any], params: Mapping[str, Array], X: Array) -> Tape:
    spec = as_spec(spec)
    a = np.asarray(X, dtype=np.float64)
    zs: list[Array] = []
    acts: list[Array] = [a]
    for layer, name in enumerate(spec.activations, start=1):
        z = params[f"W{layer}"] @ a + params[f"b{layer}"]
        a = get_activation(name).function(z)
        zs.append(z)
        acts.append(a)
    return Tape(tuple(zs), tuple(acts))


def loss_from_tape(spec: Spec, tape: Tape, Y: Array) -> float:
    loss = get_loss(spec.loss)
    if loss.value_from_logits is not None and spec.activations[-1] == loss.output_activation:
        return loss.value_from_logits(tape.pre_activations[-1], Y)
    return loss.value(tape.output, Y)


def output_delta(spec: Spec, tape: Tape, Y: Array) -> Array:
    """δ^[L] = ∂L/∂z^[L], fused where the loss and output activation have a stable shortcut."""
    loss = get_loss(spec.loss)
    z_out, a_out = tape.pre_activations[-1], tape.output
    if loss.delta_from_logits is not None and spec.activations[-1] == loss.output_activation:
        return loss.delta_from_logits(z_out, Y)
    return get_activation(spec.activations[-1]).vjp(z_out, a_out, loss.gradient(a_out, Y))


def backward_from_delta(spec: Spec, params: Mapping[str, Array], tape: Tape, delta_out: Array) -> Backward:
    """Run the δ recursion from a given δ^[L] (any cotangent on z^[L], not only a loss's)."""
    L = spec.depth
    deltas: list[Array] = [delta_out]
    delta = delta_out
    for layer in range(L, 1, -1):
        # δ^[l-1] = (W^[l])ᵀ δ^[l] ⊙ g'^[l-1](z^[l-1]), through the vjp so softmax would also work.
        grad_a_prev = params[f"W{layer}"].T @ delta
        act = get_activation(spec.activations[layer - 2])
        delta = act.vjp(tape.z(layer - 1), tape.a(layer - 1), grad_a_prev)
        deltas.append(delta)
    deltas.reverse()
    grads: Params = {}
    for layer in range(1, L + 1):
        delta = deltas[layer - 1]
        # The loss's normalisation (1/m or not) already lives in δ^[L]; no second 1/m here.
        grads[f"W{layer}"] = delta @ tape.a(layer - 1).T
        grads[f"b{layer}"] = delta.sum(axis=1, keepdims=True)
    return Backward(tuple(deltas), grads)


def backward(spec: Spec | Mapping[str, Any], params: Mapping[str, Array], tape: Tape, Y: Array) -> Backward:
    spec = as_spec(spec)
    return backward_from_delta(spec, params, tape, output_delta(spec, tape, Y))


def vjp(spec: Spec | Mapping[str, Any], params: Mapping[str, Array], X: Array, cotangent: Array) -> Backward:
    """Pull a cotangent on the *output activations* a^[L] back to every δ and parameter."""
    spec = as_spec(spec)
    tape = forward(spec, params, X)
    act = get_activation(spec.activations[-1])
    delta_out = act.vjp(tape.pre_activations[-1], tape.output, cotangent)
    return backward_from_delta(spec, params, tape, delta_out)


def _prepare(
    spec: Spec | Mapping[str, Any], params: Mapping[str, Array], X: Array, Y: Array
) -> tuple[Spec, Params, Array, Array]:
    spec = as_spec(spec)
    params64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    X64, Y64 = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    check_arrays(spec, params64, X64, Y64)
    return spec, params64, X64, Y64


def run(
    spec: Spec | Mapping[str, Any], params: Mapping[str, Array], X: Array, Y: Array
) -> tuple[Tape, Backward, float]:
    """Forward, loss and backward in one call, every intermediate returned."""
    spec, params64, X64, Y64 = _prepare(spec, params, X, Y)
    tape = forward(spec, params64, X64)
    return tape, backward(spec, params64, tape, Y64), loss_from_tape(spec, tape, Y64)


def gradients(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Params:
    """The subject protocol: ∂L/∂θ for every parameter, same keys and shapes as ``params``."""
    return run(spec, params, X, Y)[1].grads


def loss(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> float:
    spec, params64, X64, Y64 = _prepare(spec, params, X, Y)
    return loss_from_tape(spec, forward(spec, params64, X64), Y64)


def gradient_descent_step(params: Mapping[str, Array], grads: Mapping[str, Array], learning_rate: float) -> Params:
    """Article §4.4: θ ← θ − η ∂L/∂θ, returning new arrays (inputs are left untouched)."""
    return {name: params[name] - learning_rate * grads[name] for name in params}
