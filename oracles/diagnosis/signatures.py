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


class NotApplicable(Exception):
    """The defect cannot be expressed on this architecture (e.g. g'(a) of a softmax)."""


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
    "bias_axis0",  # ∂L/∂b^[l] summed over units
    "bias_scalar",  # ∂L/∂b^[l] summed to one number
    "output_missing",  # δ^[L] = ∂L/∂a^[L]
    "output_double",  # δ^[L] ⊙ g'(z^[L]) once more
    "shortcut_delta",  # δ^[L] = (a^[L] − y)/m whatever the loss
    "softmax_diagonal",  # softmax Jacobian taken as diag(a ⊙ (1 − a))
)
OUTPUT_KINDS = ("output_missing", "output_double", "shortcut_delta", "softmax_diagonal")
BIAS_KINDS = ("bias_axis0", "bias_scalar")


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


def predict(variant: Variant, spec: Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Params:
    """The gradients a subject with ``variant``'s defect returns (raises WouldRaise / NotApplicable)."""
    L = spec.depth
    tape = forward(spec, params, X)
    delta = output_delta(spec, tape, Y)
    out_act = get_activation(spec.activations[-1])
    loss = get_loss(spec.loss)
    if variant.kind in ("output_missing", "output_double"):
        if out_act.derivative is None or spec.activations[-1] == "identity":
            raise NotApplicable("the output activation has no elementwise derivative to forget or repeat")
        if variant.kind == "output_missing":
            delta = loss.gradient(tape.output, Y)
        else:
            delta = delta * out_act.derivative(tape.z(L))
    elif variant.kind == "shortcut_delta":
        if loss.delta_from_logits is not None:
            raise NotApplicable("for a fused cross-entropy the shortcut is the right δ^[L]")
        delta = (tape.output - Y) / Y.shape[1]
    elif variant.kind == "softmax_diagonal":
        if spec.activations[-1] != "softmax":
            raise NotApplicable("only a softmax output has off-diagonal Jacobian terms")
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
        if variant.kind == "activation_off_by_one" and variant.at(layer):
            a_prev = tape.a(layer)
        grads[f"W{layer}"] = _matmul(delta, a_prev.T)
        bias = variant.bias_at(layer)
        if bias == "bias_axis0":
            grads[f"b{layer}"] = delta.sum(axis=0, keepdims=True).T
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
    elif variant.kind == "weight_off_by_one" and here:
        if layer < 3:
            raise NotApplicable("layer 1 has no weight before it")
        grad_a_prev = _matmul(params[f"W{layer - 1}"].T, delta)
    else:
        grad_a_prev = W.T @ delta
    z_prev, a_prev = tape.z(layer - 1), tape.a(layer - 1)
    if grad_a_prev.shape != z_prev.shape:
        raise WouldRaise(f"elementwise {grad_a_prev.shape} * {z_prev.shape}")
    hidden = get_activation(spec.activations[layer - 2])
    if variant.kind == "derivative_of_a" and variant.at(layer - 1):
        if hidden.derivative is None:
            raise NotApplicable("softmax has no elementwise derivative")
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
        ("weight_off_by_one", range(3, depth + 1)),
        ("derivative_off_by_one", recursion_layers),
        ("hidden_derivative_missing", recursion_layers),
        ("delta_off_by_one", recursion_layers),
        ("derivative_of_a", range(1, depth)),
        ("bias_axis0", range(1, depth + 1)),
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
