"""Models of known backprop defects: the article's backward pass with one step written wrongly.

Each :class:`Variant` predicts what a subject with that defect returns on a problem (or that it cannot
run there, e.g. a transposed weight on a non-square layer).  The diagnoser keeps the variants whose
predictions match the subject on every probe and that differ from the right answer on some.

Shapes as in the reference: ``δ^[l]`` ``(n_l, m)``, ``a^[l]`` ``(n_l, m)``; a predicted block may have
a shape other than the parameter's (a bias summed over the wrong axis is ``(m, 1)``; one summed to a
scalar is a 0-d array) because that is exactly what such a subject returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from reference_impl.activations import get_activation
from reference_impl.losses import get_loss
from reference_impl.mlp import Tape, forward, output_delta
from reference_impl.spec import Array, Params, Spec


class WouldRaise(Exception):
    """A subject with this defect raises on this problem (shapes do not conform)."""


KINDS: tuple[str, ...] = (
    "transpose",  # δ^[l-1] from W^[l] δ^[l] instead of (W^[l])ᵀ δ^[l]
    "weight_off_by_one",  # … from (W^[l-1])ᵀ δ^[l]
    "derivative_off_by_one",  # … ⊙ g'^[l] (layer l's activation) at z^[l-1]
    "derivative_of_a",  # … ⊙ g'(a^[l-1]) instead of g'(z^[l-1])
    "hidden_derivative_missing",  # … with no ⊙ g' at all
    "delta_off_by_one",  # layer l's gradients from δ^[l-1]
    "activation_off_by_one",  # ∂L/∂W^[l] = δ^[l] (a^[l])ᵀ
    "bias_axis0",  # ∂L/∂b^[l] summed over units, as a column (m, 1)
    "bias_axis0_row",  # … as a row (1, m)
    "bias_scalar",  # ∂L/∂b^[l] summed to one number
    "output_missing",  # δ^[L] = ∂L/∂a^[L]
    "output_double",  # δ^[L] ⊙ g'(z^[L]) once more
    "shortcut_delta",  # δ^[L] = (a^[L] − y)/m whatever the loss
    "softmax_diagonal",  # softmax Jacobian taken as diag(a ⊙ (1 − a))
    "target_argmax",  # cce: δ^[L] from one-hot(argmax y), right only for one-hot targets
    "target_round",  # bce: δ^[L] from round(y), right only for 0/1 targets
    "transpose_if_square",  # W^[l] δ^[l] where W^[l] happens to be square, (W^[l])ᵀ δ^[l] elsewhere
    "buffer_transposed",  # ∂L/∂W^[l] written into a buffer shaped like (W^[l])ᵀ: raises unless square
)
OUTPUT_KINDS = (
    "output_missing",
    "output_double",
    "shortcut_delta",
    "softmax_diagonal",
    "target_argmax",
    "target_round",
)
BIAS_KINDS = ("bias_axis0", "bias_axis0_row", "bias_scalar")


@dataclass(frozen=True)
class Variant:
    """One defect at ``layers`` (``None``: at every layer where it can occur)."""

    kind: str
    layers: frozenset[int] | None = None
    bias: str | None = None  # a second defect, in every bias gradient (one of BIAS_KINDS)

    def at(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers

    def bias_at(self, layer: int) -> str | None:
        if self.kind in BIAS_KINDS and self.at(layer):
            return self.kind
        return self.bias

    @property
    def label(self) -> str:
        where = "every layer" if self.layers is None else ",".join(str(x) for x in sorted(self.layers))
        return f"{self.kind}@{where}"


def _matmul(left: Array, right: Array) -> Array:
    if left.shape[1] != right.shape[0]:
        raise WouldRaise(f"matmul {left.shape} @ {right.shape}")
    return left @ right


def _targets(kind: str, spec: Spec, Y: Array) -> Array:
    """The targets a subject with a target-handling defect actually uses."""
    if kind == "target_argmax" and spec.loss == "cce":
        hard = np.zeros_like(Y)
        hard[np.argmax(Y, axis=0), np.arange(Y.shape[1])] = 1.0
        return hard
    if kind == "target_round" and spec.loss == "bce":
        return np.round(Y)
    return Y  # this target handling belongs to another loss


def predict(variant: Variant, spec: Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Params:
    """The gradients a subject with ``variant``'s defect returns (raises WouldRaise where it would raise)."""
    L = spec.depth
    tape = forward(spec, params, X)
    out_act = get_activation(spec.activations[-1])
    loss = get_loss(spec.loss)
    if variant.kind in ("target_argmax", "target_round"):
        Y = _targets(variant.kind, spec, Y)
    delta = output_delta(spec, tape, Y)
    # Where the defect cannot be written (no elementwise output derivative, a fused loss whose shortcut is
    # right, no softmax), a subject that has it is right there: δ^[L] stays as it is.
    out_name = spec.activations[-1]
    if (
        variant.kind in ("output_missing", "output_double")
        and out_act.derivative is not None
        and out_name != "identity"
    ):
        if variant.kind == "output_missing":
            delta = loss.gradient(tape.output, Y)
        else:
            delta = delta * out_act.derivative(tape.z(L))
    elif variant.kind == "shortcut_delta" and loss.delta_from_logits is None:
        delta = (tape.output - Y) / Y.shape[1]
    elif variant.kind == "softmax_diagonal" and out_name == "softmax":
        a_out = tape.output
        delta = loss.gradient(a_out, Y) * a_out * (1.0 - a_out)
    grads: Params = {}
    deltas: dict[int, Array] = {L: delta}
    for layer in range(L, 1, -1):
        deltas[layer - 1] = _recurse(variant, spec, params, tape, layer, deltas[layer])
    for layer in range(L, 0, -1):
        delta = deltas[layer]
        if variant.kind == "delta_off_by_one" and variant.at(layer) and layer > 1:
            delta = deltas[layer - 1]
        a_prev = tape.a(layer - 1)
        W_shape = params[f"W{layer}"].shape
        if variant.kind == "buffer_transposed" and variant.at(layer) and W_shape[0] != W_shape[1]:
            raise WouldRaise(f"assign {W_shape} into a buffer of shape {W_shape[::-1]}")
        if variant.kind == "activation_off_by_one" and variant.at(layer):
            a_prev = tape.a(layer)
        grads[f"W{layer}"] = _matmul(delta, a_prev.T)
        bias = variant.bias_at(layer)
        if bias == "bias_axis0":
            grads[f"b{layer}"] = delta.sum(axis=0, keepdims=True).T
        elif bias == "bias_axis0_row":
            grads[f"b{layer}"] = delta.sum(axis=0, keepdims=True)
        elif bias == "bias_scalar":
            grads[f"b{layer}"] = np.asarray(delta.sum())
        else:
            grads[f"b{layer}"] = delta.sum(axis=1, keepdims=True)
    return grads


def _recurse(variant: Variant, spec: Spec, params: Mapping[str, Array], tape: Tape, layer: int, delta: Array) -> Array:
    """δ^[layer-1] from δ^[layer], with the variant's defect where it applies."""
    W = params[f"W{layer}"]
    here = variant.at(layer)
    if variant.kind == "transpose" and here:
        grad_a_prev = _matmul(W, delta)
    elif variant.kind == "transpose_if_square" and here and W.shape[0] == W.shape[1]:
        grad_a_prev = W @ delta
    elif variant.kind == "weight_off_by_one" and here and layer >= 3:
        grad_a_prev = _matmul(params[f"W{layer - 1}"].T, delta)
    else:
        grad_a_prev = W.T @ delta
    z_prev, a_prev = tape.z(layer - 1), tape.a(layer - 1)
    if grad_a_prev.shape != z_prev.shape:
        raise WouldRaise(f"elementwise {grad_a_prev.shape} * {z_prev.shape}")
    hidden = get_activation(spec.activations[layer - 2])
    # (softmax, output only, has no elementwise derivative to evaluate at a)
    if variant.kind == "derivative_of_a" and variant.at(layer - 1) and hidden.derivative is not None:
        return grad_a_prev * hidden.derivative(a_prev)
    if variant.kind == "hidden_derivative_missing" and here:
        return grad_a_prev
    if variant.kind == "derivative_off_by_one" and here:
        wrong = get_activation(spec.activations[layer - 1])
        return wrong.vjp(z_prev, wrong.function(z_prev), grad_a_prev)
    return hidden.vjp(z_prev, a_prev, grad_a_prev)


def variants_for(depth: int) -> list[Variant]:
    """Every modelled defect on a net of ``depth`` layers: each at one layer, and at every layer."""
    found: list[Variant] = []
    recursion_layers = range(2, depth + 1)  # layers l whose W^[l] carries δ back to l − 1
    for kind, layers in (
        ("transpose", recursion_layers),
        ("transpose_if_square", recursion_layers),
        ("buffer_transposed", range(1, depth + 1)),
        ("weight_off_by_one", range(3, depth + 1)),
        ("derivative_off_by_one", recursion_layers),
        ("hidden_derivative_missing", recursion_layers),
        ("delta_off_by_one", recursion_layers),
        ("derivative_of_a", range(1, depth)),
        ("bias_axis0", range(1, depth + 1)),
        ("bias_axis0_row", range(1, depth + 1)),
        ("bias_scalar", range(1, depth + 1)),
        ("activation_off_by_one", range(1, depth + 1)),
    ):
        chosen = list(layers)
        found.extend(Variant(kind, frozenset({layer})) for layer in chosen)
        if len(chosen) > 1:
            found.append(Variant(kind, None))
    for kind in OUTPUT_KINDS:
        found.append(Variant(kind, frozenset({depth})))
        # An output defect often comes with a bias defect (the article's §5.2 listing has both).
        found.extend(Variant(kind, frozenset({depth}), bias) for bias in BIAS_KINDS)
    return found
