"""The planted-bug catalogue: realistic defects in a copy of the reference backward pass.

Each mutant is a subject (same protocol as the reference), so every checker can be pointed at it.
The copy below is written as a student would write it, step by step; each mutation changes exactly
one step.  ``expected`` names the diagnosis a bug-signature matcher should give.

Shapes follow the suite: ``X`` ``(n_0, m)``, ``Y`` ``(n_L, m)``, ``W{l}`` ``(n_l, n_{l-1})``,
``b{l}`` ``(n_l, 1)``, δ^[l] ``(n_l, m)``.

Two mutants carry state between calls (``accumulates_across_calls``, ``stale_forward``); a
:class:`Mutant` keeps that state on itself (``reset()`` clears it), while a bare
:func:`mutated_gradients` call without ``state`` starts from nothing each time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference_impl.activations import LEAKY_SLOPE, get_activation
from reference_impl.losses import get_loss
from reference_impl.mlp import Tape, forward
from reference_impl.spec import Array, Params, Spec, as_spec

GradientsFn = Callable[[dict[str, Any], dict[str, Array], Array, Array], Params]

WRONG_LEAKY_SLOPE = 0.1
WEIGHT_DECAY = 1e-4
TINY_SCALE = 1e-9
IN_PLACE_LEARNING_RATE = 0.01


def _derivative(name: str, z: Array, mutation: str | None) -> Array | None:
    """g'(z) of activation ``name`` as the (possibly mutated) student code computes it; None for softmax."""
    act = get_activation(name)
    if act.derivative is None:
        return None
    if mutation == "leaky_slope_wrong" and name == "leaky_relu":
        return np.where(z > 0, 1.0, WRONG_LEAKY_SLOPE)
    if mutation == "relu_prime_at_zero_one" and name in ("relu", "leaky_relu"):
        # z >= 0 instead of z > 0: the derivative *at* the kink becomes the right-hand slope 1.
        return np.where(z >= 0, 1.0, 0.0 if name == "relu" else LEAKY_SLOPE)
    if mutation == "tanh_derivative_wrong" and name == "tanh":
        return 1.0 - np.tanh(z)
    return act.derivative(z)


def _pull_back(name: str, z: Array, a: Array, grad_a: Array, mutation: str | None) -> Array:
    """∂L/∂z from ∂L/∂a through activation ``name`` (elementwise product, or the softmax vjp)."""
    derivative = _derivative(name, z, mutation)
    if derivative is None:
        return get_activation(name).vjp(z, a, grad_a)
    return grad_a * derivative


def _output_delta(spec: Spec, tape: Tape, Y: Array, mutation: str | None) -> Array:
    """δ^[L] ``(n_L, m)``: fused for cross-entropies, else ∂L/∂a ⊙ g'(z^[L]); then the output-layer mutations."""
    loss = get_loss(spec.loss)
    out_name = spec.activations[-1]
    z_out, a_out = tape.pre_activations[-1], tape.output
    m = Y.shape[1]
    if loss.delta_from_logits is not None and out_name == loss.output_activation:
        delta = loss.delta_from_logits(z_out, Y)
    else:
        delta = _pull_back(out_name, z_out, a_out, loss.gradient(a_out, Y), mutation)
    output_derivative = get_activation(out_name).derivative
    if mutation == "missing_1_over_m":
        delta = delta * m
    if mutation == "missing_output_derivative" and output_derivative is not None:
        # δ^[L] = ∂L/∂a instead of ∂L/∂a ⊙ g'(z): forgetting the output activation.
        delta = loss.gradient(a_out, Y)
    if mutation == "doubled_output_derivative" and output_derivative is not None:
        delta = delta * output_derivative(z_out)
    if mutation == "output_delta_sign":
        delta = -delta
    if mutation == "softmax_diagonal_only" and out_name == "softmax":
        delta = loss.gradient(a_out, Y) * a_out * (1.0 - a_out)
    if mutation == "bce_delta_with_mse" and spec.loss in ("mse", "half_sse"):
        delta = (a_out - Y) / m
    return delta


def _recurse(
    spec: Spec, params: Mapping[str, Array], tape: Tape, layer: int, delta: Array, mutation: str | None
) -> Array:
    """δ^[layer-1] ``(n_{layer-1}, m)`` from δ^[layer]."""
    W = params[f"W{layer}"]
    grad_a_prev = W @ delta if mutation == "transpose_W" else W.T @ delta
    name = spec.activations[layer - 2]
    act = get_activation(name)
    z_prev, a_prev = tape.z(layer - 1), tape.a(layer - 1)
    if mutation == "derivative_of_a" and act.derivative is not None:
        return grad_a_prev * act.derivative(a_prev)
    if mutation == "hidden_derivative_missing":
        return grad_a_prev
    if mutation == "off_by_one_activation":
        # The activation of layer l used for the derivative at layer l-1.
        wrong = spec.activations[layer - 1]
        return _pull_back(wrong, z_prev, get_activation(wrong).function(z_prev), grad_a_prev, None)
    return _pull_back(name, z_prev, a_prev, grad_a_prev, mutation)


def _weight_gradient(delta: Array, tape: Tape, layer: int, W: Array, mutation: str | None) -> Array:
    """∂L/∂W^[l] ``(n_l, n_{l-1})`` as the (possibly mutated) student code computes it."""
    a_prev = tape.a(layer - 1)
    if mutation == "float32_layer1" and layer == 1:
        return (delta.astype(np.float32) @ a_prev.T.astype(np.float32)).astype(np.float64)
    if mutation == "a_instead_of_a_prev":
        return delta @ tape.a(layer).T
    if mutation == "delta_averaged_over_batch":
        # Σ_j δ_j · mean_j a_j instead of Σ_j δ_j a_jᵀ: only equal when m = 1.
        return delta.sum(axis=1, keepdims=True) @ a_prev.mean(axis=1, keepdims=True).T
    if mutation == "transposed_gradient_buffer":
        # A buffer allocated in the (in, out) layout, filled in place: fine while n_l = n_{l-1}.
        buffer = np.zeros_like(W.T)
        buffer[...] = delta @ a_prev.T
        return buffer
    return delta @ a_prev.T


def _bias_gradient(delta: Array, mutation: str | None) -> Array:
    """∂L/∂b^[l] ``(n_l, 1)`` (or a wrong shape/value, per mutation)."""
    if mutation == "bias_wrong_axis":
        return delta.sum(axis=0, keepdims=True).T
    if mutation == "bias_to_scalar":
        # np.sum without an axis, broadcast back to b's shape (the article's §5.2 listing does this).
        return np.full((delta.shape[0], 1), np.sum(delta))
    if mutation == "bias_no_keepdims":
        return delta.sum(axis=1)
    if mutation == "bias_mean":
        return delta.mean(axis=1, keepdims=True)
    return delta.sum(axis=1, keepdims=True)


def mutated_backward(
    spec_dict: Mapping[str, Any] | Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    mutation: str | None,
    state: dict[str, Any] | None = None,
) -> tuple[Params, tuple[Array, ...]]:
    """(gradients, δ per layer as the student computed them) with at most one step changed by ``mutation``.

    ``state`` is the memory a stateful mutant keeps between calls; None means a fresh, empty one.
    """
    spec = as_spec(spec_dict)
    state = {} if state is None else state
    L = spec.depth
    if mutation == "first_example_only":
        # Left over from debugging on one example: the batch beyond the first column is ignored.
        X, Y = X[:, :1], Y[:, :1]
    if mutation == "stale_forward":
        # The forward pass is memoised per architecture and batch shape, not per values.
        cache: dict[tuple[Spec, tuple[int, ...]], Tape] = state.setdefault("tapes", {})
        key = (spec, X.shape)
        if key not in cache:
            cache[key] = forward(spec, params, X)
        tape = cache[key]
    else:
        tape = forward(spec, params, X)
    delta = _output_delta(spec, tape, Y, mutation)
    deltas: dict[int, Array] = {L: delta}
    grads: Params = {}
    for layer in range(L, 0, -1):
        if mutation == "delta_updated_before_use" and layer > 1:
            # The recursion step moved above the gradient lines: layer l gets δ^[l-1].
            delta = _recurse(spec, params, tape, layer, delta, mutation)
            deltas[layer - 1] = delta
        W = params[f"W{layer}"]
        grad_W = _weight_gradient(delta, tape, layer, W, mutation)
        grad_b = _bias_gradient(delta, mutation)
        if mutation == "scale_layer1" and layer == 1:
            grad_W = grad_W * (1.0 + 1e-6)
        if mutation == "scale_one_entry" and layer == L:
            grad_W = grad_W.copy()
            grad_W[np.unravel_index(np.argmax(np.abs(grad_W)), grad_W.shape)] *= 1.0 + TINY_SCALE
        if mutation == "bias_sign_flip" and layer == L:
            grad_b = grad_b.copy()
            grad_b[0, 0] = -grad_b[0, 0]
        if mutation == "extra_1_over_m":
            grad_W, grad_b = grad_W / X.shape[1], grad_b / X.shape[1]
        if mutation == "weight_decay_in_gradient":
            # An L2 term added to the gradient although the loss has none.
            grad_W = grad_W + WEIGHT_DECAY * W
        grads[f"W{layer}"], grads[f"b{layer}"] = grad_W, grad_b
        if layer > 1 and mutation != "delta_updated_before_use":
            delta = _recurse(spec, params, tape, layer, delta, mutation)
            deltas[layer - 1] = delta
    if mutation == "accumulates_across_calls":
        # Gradient buffers that are never zeroed: each call adds to the last call's result.
        buffers: dict[Spec, Params] = state.setdefault("buffers", {})
        previous = buffers.get(spec)
        if previous is not None and all(previous[k].shape == v.shape for k, v in grads.items()):
            grads = {k: previous[k] + v for k, v in grads.items()}
        buffers[spec] = {k: v.copy() for k, v in grads.items()}
    if mutation == "mutates_inputs":
        # A training step fused into the gradient call, applied in place to the caller's arrays.
        for name, grad in grads.items():
            np.subtract(params[name], IN_PLACE_LEARNING_RATE * grad, out=params[name])
    return grads, tuple(deltas[layer] for layer in range(1, L + 1))


def mutated_gradients(
    spec_dict: Mapping[str, Any],
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    mutation: str | None,
    state: dict[str, Any] | None = None,
) -> Params:
    """The reference backward pass with at most one step changed by ``mutation``."""
    return mutated_backward(spec_dict, params, X, Y, mutation, state)[0]


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    expected: str  # the diagnosis key a signature matcher should name
    kind: str = "bug"  # "bug", or "kink" for a convention that only differs at non-differentiable points
    state: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def gradients(self, spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Params:
        return mutated_gradients(spec, params, X, Y, self.name, self.state)

    def backward(
        self, spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array
    ) -> tuple[Params, tuple[Array, ...]]:
        """Gradients and the student's δ per layer from one call (one step of any carried state)."""
        return mutated_backward(spec, params, X, Y, self.name, self.state)

    def deltas(self, spec: Spec, params: Params, X: Array, Y: Array) -> tuple[Array, ...]:
        return self.backward(spec, params, X, Y)[1]

    def reset(self) -> None:
        """Forget everything carried between calls (a fresh instance of the student's object)."""
        self.state.clear()

    @property
    def stateful(self) -> bool:
        return self.name in STATEFUL


STATEFUL: frozenset[str] = frozenset({"accumulates_across_calls", "stale_forward"})

MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant(
            "transpose_W",
            "δ^[l-1] uses W^[l] instead of (W^[l])ᵀ (wrong values on square layers, a shape error otherwise)",
            "transpose",
        ),
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
        # --- normalisation and reductions over the batch ---
        Mutant(
            "extra_1_over_m",
            "gradients divided by m a second time (δ^[L] already carries the 1/m)",
            "batch_normalisation",
        ),
        Mutant(
            "bias_mean",
            "∂L/∂b averaged over the batch instead of summed (a second 1/m on biases only)",
            "batch_normalisation",
        ),
        Mutant("bias_to_scalar", "∂L/∂b summed over every entry to one scalar, broadcast to all units", "bias_axis"),
        Mutant("bias_no_keepdims", "∂L/∂b summed without keepdims: shape (n_l,) instead of (n_l, 1)", "protocol:shape"),
        Mutant(
            "first_example_only", "only the first example of the batch is used (X[:, :1] left from debugging)", "batch"
        ),
        Mutant(
            "delta_averaged_over_batch",
            "δ and a^[l-1] averaged over the batch before the outer product (Σδ · mean aᵀ)",
            "batch",
        ),
        # --- the recursion and its shapes ---
        Mutant(
            "transposed_gradient_buffer",
            "∂L/∂W^[l] written into a buffer shaped like (W^[l])ᵀ: only visible on non-square layers",
            "transpose",
        ),
        Mutant("a_instead_of_a_prev", "∂L/∂W^[l] = δ^[l] (a^[l])ᵀ instead of δ^[l] (a^[l-1])ᵀ", "off_by_one"),
        Mutant(
            "delta_updated_before_use",
            "δ updated before the gradient lines, so layer l's gradients use δ^[l-1]",
            "wrong_layer_delta",
        ),
        Mutant(
            "off_by_one_activation",
            "the derivative at layer l-1 uses layer l's activation function (off by one layer)",
            "off_by_one",
        ),
        Mutant(
            "hidden_derivative_missing",
            "δ^[l-1] = (W^[l])ᵀ δ^[l] with the ⊙ g'(z^[l-1]) forgotten",
            "hidden_derivative",
        ),
        # --- output layer and loss ---
        Mutant(
            "doubled_output_derivative",
            "g'(z^[L]) multiplied into δ^[L] a second time (also after a fused loss shortcut)",
            "output_derivative",
        ),
        Mutant("output_delta_sign", "δ^[L] = y − ŷ instead of ŷ − y: every gradient has the wrong sign", "sign"),
        Mutant(
            "softmax_diagonal_only",
            "softmax Jacobian taken as diag(a ⊙ (1 − a)): the off-diagonal −a_i a_j terms dropped",
            "softmax_jacobian",
        ),
        Mutant(
            "bce_delta_with_mse",
            "δ^[L] = (ŷ − y)/m, the cross-entropy shortcut, used with a squared loss",
            "loss_gradient",
        ),
        # --- activation derivatives ---
        Mutant(
            "leaky_slope_wrong",
            f"leaky_relu's derivative uses slope {WRONG_LEAKY_SLOPE} instead of 0.01",
            "leaky_slope",
        ),
        Mutant("tanh_derivative_wrong", "tanh'(z) written 1 − tanh(z) (the square forgotten)", "activation_derivative"),
        Mutant(
            "relu_prime_at_zero_one",
            "relu'(0) = 1 and leaky_relu'(0) = 1 (z >= 0): another convention at the kink, not a bug",
            "kink",
            kind="kink",
        ),
        # --- precision ---
        Mutant("scale_one_entry", "the largest entry of ∂L/∂W^[L] off by a factor 1 + 1e-9", "scale"),
        Mutant(
            "weight_decay_in_gradient",
            f"an L2 term {WEIGHT_DECAY}·W added to ∂L/∂W that the loss does not have",
            "regularisation",
        ),
        # --- protocol: state and side effects ---
        Mutant(
            "accumulates_across_calls",
            "gradient buffers never zeroed: each call returns the sum of all calls so far",
            "protocol:nondeterminism",
        ),
        Mutant(
            "stale_forward",
            "the forward pass memoised per architecture and batch shape, reused for new values",
            "state",
        ),
        Mutant(
            "mutates_inputs",
            "a training step fused into the gradient call updates params in place",
            "protocol:mutation",
        ),
    )
}
