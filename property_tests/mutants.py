"""The planted-bug catalogue: realistic defects in a copy of the reference backward pass.

Each mutant is a subject (same protocol as the reference), so every checker can be pointed at it.
The copy below is written as a student would write it, step by step; each mutation changes exactly
one step.  ``expected`` names the diagnosis a bug-signature matcher should give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from reference_impl.activations import get_activation
from reference_impl.mlp import forward, output_delta
from reference_impl.spec import Array, Params, as_spec

GradientsFn = Callable[[dict[str, Any], dict[str, Array], Array, Array], Params]


def mutated_gradients(
    spec_dict: Mapping[str, Any], params: Mapping[str, Array], X: Array, Y: Array, mutation: str | None
) -> Params:
    """The reference backward pass with at most one step changed by ``mutation``."""
    spec = as_spec(spec_dict)
    L = spec.depth
    m = X.shape[1]
    tape = forward(spec, params, X)
    delta = output_delta(spec, tape, Y)
    if mutation == "missing_1_over_m":
        delta = delta * m
    if mutation == "missing_output_derivative" and get_activation(spec.activations[-1]).derivative is not None:
        # δ^[L] = ∂L/∂a instead of ∂L/∂a ⊙ g'(z): forgetting the output activation.
        from reference_impl.losses import get_loss

        delta = get_loss(spec.loss).gradient(tape.output, Y)
    grads: Params = {}
    for layer in range(L, 0, -1):
        a_prev = tape.a(layer - 1)
        if mutation == "float32_layer1" and layer == 1:
            grad_W = (delta.astype(np.float32) @ a_prev.T.astype(np.float32)).astype(np.float64)
        else:
            grad_W = delta @ a_prev.T
        if mutation == "bias_wrong_axis":
            grad_b = delta.sum(axis=0, keepdims=True).T
        else:
            grad_b = delta.sum(axis=1, keepdims=True)
        if mutation == "scale_layer1" and layer == 1:
            grad_W = grad_W * (1.0 + 1e-6)
        if mutation == "bias_sign_flip" and layer == L:
            grad_b = grad_b.copy()
            grad_b[0, 0] = -grad_b[0, 0]
        grads[f"W{layer}"], grads[f"b{layer}"] = grad_W, grad_b
        if layer > 1:
            W = params[f"W{layer}"]
            grad_a_prev = W @ delta if mutation == "transpose_W" else W.T @ delta
            act = get_activation(spec.activations[layer - 2])
            z_prev = tape.z(layer - 1)
            if mutation == "derivative_of_a" and act.derivative is not None:
                delta = grad_a_prev * act.derivative(tape.a(layer - 1))
            else:
                delta = act.vjp(z_prev, tape.a(layer - 1), grad_a_prev)
    return grads


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    expected: str  # the diagnosis key a signature matcher should name
    kind: str = "bug"  # "bug", or "kink" for a convention that only differs at non-differentiable points

    def gradients(self, spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Params:
        return mutated_gradients(spec, params, X, Y, self.name)


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant("transpose_W", "δ^[l-1] uses W^[l] instead of (W^[l])ᵀ (only shows on non-square layers)", "transpose"),
        Mutant("missing_1_over_m", "the 1/m of the batch mean is dropped from every gradient", "batch_normalisation"),
        Mutant("bias_wrong_axis", "∂L/∂b summed over units (axis 0) instead of over the batch", "bias_axis"),
        Mutant("derivative_of_a", "g'(a) used where g'(z) belongs in the δ recursion", "derivative_of_a"),
        Mutant(
            "missing_output_derivative",
            "δ^[L] = ∂L/∂a, the output activation's derivative forgotten",
            "output_derivative",
        ),
        Mutant("scale_layer1", "∂L/∂W^[1] off by a factor 1 + 1e-6", "scale"),
        Mutant("bias_sign_flip", "the sign of one output-bias gradient entry is flipped", "sign"),
        Mutant("float32_layer1", "∂L/∂W^[1] computed in float32", "float32"),
    )
}
