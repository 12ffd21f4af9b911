"""How far a *correct* float64 backprop may be from the exact gradient, entry by entry: a first-order
forward error analysis of the δ recursion as people write it.

Derivation.  Let u = 2⁻⁵³.  Every quantity q that backprop forms gets a bound (M_q, E_q), same shape as q:

- M_q ≥ |q|, the magnitude of the terms q is formed from.  Every operation rounds relative to its terms,
  so after a handful of operations a float64 q̂ is within (a few)·u·M_q of q whatever cancels: that part
  is the tolerance row's rtol·M (rtol ≈ 4500 u covers the operation count and both sides' rounding).
- E_q, in units of u: errors that an earlier operation made and a later one carries *relative to terms
  it never sees* — a pre-activation that cancels, then feeds a steep g'; a formula whose absolute error
  is a few u where its value is 1e-30.  Each source is a single rounding, so the tolerance adds only a
  small multiple of u·E (the row's ``carried``: c = 16 covers fan-ins up to 16 and both sides).

Exact inputs have M = |x|, E = 0; to first order in u (products of errors dropped):

1. a sum or difference x ± y:  M = M_x + M_y,  E = E_x + E_y   (cancellation leaves M ≫ |q|: a − y,
   p − y, 1 − σ, 1 − tanh² keep their terms' rounding);
2. a product xy:                M = M_x M_y,   E = E_x M_y + M_x E_y;
3. a function of a computed argument, g(ẑ) = g(z) + g'(z)(ẑ − z):  M = |g(z)|,  E = |g'(z)| Δz + A(z),
   with A the formula's own absolute error beyond relative rounding.

Forward, one layer at a time: Δz^[l] = |W^[l]| (|a^[l-1]| + A^[l-1]) + |b^[l]| — the rounding of the
layer's own sum relative to its terms, and its inputs' absolute errors (see :func:`forward_bounds` for
why errors from further down are not pushed through |W| again); a = g(z) by rule 3 (softmax:
E_p,i = p_i Σ_{j≠i} p_j (Δz_i + Δz_j), from Δp_i = p_i((1 − p_i)Δz_i − Σ_{j≠i} p_j Δz_j)).

Each elementwise derivative is a function of the computed z:  M = |g'(z)|,  E = S(z) + |g''(z)| Δz.
Two formula sets:

- ``admitted`` — every standard formulation.  The bounded activations' values may be formed with
  cancellation (½(1 + tanh(z/2)), 1 − σ(−z), 2σ(2z) − 1, log(1 + e^z)): A = 1 + |g| for sigmoid, tanh and
  softplus.  Their derivatives are formed from such values, σ' = a(1 − a) and tanh' = 1 − a²:
  S = a(1 + a) + |1 − 2a|(1 + a) and S = 1 + a² + 2|a|(1 + |a|) (rule 1, and rule 3 through a) — an
  *absolute* error of a few u although g' itself may be 1e-30; softplus' = σ by any formula: S = 1 + σ;
- ``best`` — the cancellation-free forms (e^{−|z|}/(1 + e^{−|z|})², sech², log1p): A = S = 0.

Backward, by the same rules: δ^[L] = k(a − y) ⊙ g'(z) for mse (k = 2/m) and half_sse (k = 1); the fused
(σ(z) − y)/m for bce and (p Σy − y)/m (or p − y) for cce; δ^[l-1] = (W^[l]ᵀ δ^[l]) ⊙ g'(z^[l-1]);
∂W^[l] = δ^[l] (a^[l-1])ᵀ; ∂b^[l] = Σ_i δ^[l]_(:,i).  :func:`magnitudes` returns (M, E) per block, and
:func:`oracles.verdicts.tolerances.entry_tolerance` turns them into the allowed |s − o|.

The ``admitted`` bounds set the tolerance (no correct formulation is ever called wrong); the ``best``
bounds say what the most careful float64 code achieves, against which a subject's lost digits are
measured (:mod:`oracles.verdicts.precision`).  A wrong formula still shows: wherever M and E stay within a
few orders of |g| (an ordinary entry), a bug moves the value by far more than the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from reference_impl import mlp
from reference_impl.activations import get_activation
from reference_impl.case import Case
from reference_impl.spec import Array, Spec

FORMS = ("admitted", "best")


@dataclass(frozen=True)
class Bound:
    """Magnitude M ≥ |q| (the terms q is formed from) and carried error E (units of u) of one quantity."""

    M: Array
    E: Array

    def __add__(self, other: Bound) -> Bound:  # rule 1 (a sum or a difference)
        return Bound(self.M + other.M, self.E + other.E)

    def __mul__(self, other: Bound) -> Bound:  # rule 2 (elementwise)
        return Bound(self.M * other.M, self.E * other.M + self.M * other.E)

    def scaled(self, k: float) -> Bound:
        return Bound(k * self.M, k * self.E)


def exact(values: Array) -> Bound:
    return Bound(np.abs(values), np.zeros_like(values, dtype=np.float64))


def matmul(A: Array, B: Bound) -> Bound:
    """A·B for a matrix A of exact inputs (weights): a sum of products (rules 1–2)."""
    return Bound(np.abs(A) @ B.M, np.abs(A) @ B.E)


def contract(left: Bound, right: Bound) -> Bound:
    """left · rightᵀ, summed over the batch (∂W = δ aᵀ)."""
    return Bound(left.M @ right.M.T, left.E @ right.M.T + left.M @ right.E.T)


def batch_sum(b: Bound) -> Bound:
    return Bound(b.M.sum(axis=1, keepdims=True), b.E.sum(axis=1, keepdims=True))


def _exact_slope(name: str, z: Array) -> Array:
    derivative = get_activation(name).derivative
    assert derivative is not None, name
    return np.abs(derivative(z))


def _absolute_slope_error(name: str, z: Array, a: Array) -> Array:
    """The admitted derivative formulas' absolute error: formed from an activation value that is itself
    off by a few u absolutely (1 + |a|), with terms that cancel (σ(1 − σ), 1 − tanh²)."""
    if name == "sigmoid":
        return a * (1.0 + a) + np.abs(1.0 - 2.0 * a) * (1.0 + a)
    if name == "tanh":
        return 1.0 + a * a + 2.0 * np.abs(a) * (1.0 + np.abs(a))
    if name == "softplus":
        return 1.0 + _exact_slope(name, z)  # σ(z), by any of the sigmoid's formulas
    return np.zeros_like(z)


def _absolute_value_error(name: str, a: Array) -> Array:
    """The admitted formulas' absolute error in the bounded activations' values (½(1 + tanh(z/2)), …)."""
    if name in ("sigmoid", "tanh", "softplus"):
        return 1.0 + np.abs(a)
    return np.zeros_like(a)


def _curvature(name: str, z: Array, a: Array) -> Array:
    """|g''(z)|: how much g'(z) moves per unit error in z."""
    if name == "sigmoid":
        return _exact_slope(name, z) * np.abs(1.0 - 2.0 * a)
    if name == "tanh":
        return 2.0 * np.abs(a) * _exact_slope(name, z)
    if name == "softplus":
        return _exact_slope("sigmoid", z)
    return np.zeros_like(z)  # identity, relu, leaky_relu: piecewise linear


def slope(name: str, z: Array, a: Array, z_error: Array, admitted: bool) -> Bound:
    """g'(ẑ): M = |g'(z)|, E = S(z) + |g''(z)| Δz (S: the admitted formulas' absolute error, or 0)."""
    formula = _absolute_slope_error(name, z, a) if admitted else np.zeros_like(z)
    return Bound(_exact_slope(name, z), formula + _curvature(name, z, a) * z_error)


def _softmax_error(p: Array, z_error: Array) -> Array:
    """|Δp_i| ≤ p_i Σ_{j≠i} p_j (Δz_i + Δz_j), from Δp_i = p_i((1 − p_i)Δz_i − Σ_{j≠i} p_j Δz_j): a
    probability near 1 barely moves (its 1 − p_i is the sum of the others, formed without cancellation)."""
    others = p[None, :, :] * (z_error[:, None, :] + z_error[None, :, :])  # [i, j, example]
    n = p.shape[0]
    others[np.arange(n), np.arange(n), :] = 0.0
    return p * others.sum(axis=1)


def forward_bounds(
    spec: Spec, params: Mapping[str, Array], X: Array, admitted: Callable[[int], bool] = lambda layer: True
) -> tuple[mlp.Tape, list[Array], list[Bound]]:
    """The tape, per layer the error Δz^[l] of the pre-activations, and the bounds of a^[l] (a[0] = X).

    Δz^[l] = |W| (|a^[l-1]| + V^[l-1]) + |b|: the rounding of the layer's own sum (relative to its terms,
    which is what makes a cancelling z sensitive) and its inputs' own evaluation error V (the admitted
    absolute errors).  Errors carried from further down are not pushed through |W| again: that worst case
    grows like ‖|W|‖^depth, while the signed products that really carry them keep them of the size of one
    layer's rounding (the tolerance's rtol leaves room for a few such layers).
    """
    tape = mlp.forward(spec, params, X)
    a_bounds: list[Bound] = [exact(X)]
    z_errors: list[Array] = []
    inputs_error = np.zeros_like(X)  # X is exact
    for layer, name in enumerate(spec.activations, start=1):
        z, a = tape.z(layer), tape.a(layer)
        W, b = np.abs(params[f"W{layer}"]), np.abs(params[f"b{layer}"])
        z_error = W @ (a_bounds[-1].M + inputs_error) + b
        if name == "softmax":
            own = np.zeros_like(a)
            a_bound = Bound(a, _softmax_error(a, z_error))
        else:
            own = _absolute_value_error(name, a) if admitted(layer) else np.zeros_like(a)
            a_bound = Bound(np.abs(a), _exact_slope(name, z) * z_error + own)
        inputs_error = own
        z_errors.append(z_error)
        a_bounds.append(a_bound)
    return tape, z_errors, a_bounds


def magnitudes(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    form: str = "admitted",
    textbook_layers: Collection[int] | None = None,
) -> dict[str, Bound]:
    """The bound (M, E) of every block: ``W{l}``/``b{l}`` like the parameters, ``delta{l}`` ``(n_l, m)``.

    ``form`` picks the formula set (``admitted`` or ``best``); ``textbook_layers``, when given, admits the
    textbook formulas (values and derivatives) on those layers only (what each layer's formulas can cost).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")

    def admitted(layer: int) -> bool:
        return form == "admitted" if textbook_layers is None else layer in textbook_layers

    tape, z_errors, a_bounds = forward_bounds(spec, params, X, admitted)
    L, m = spec.depth, Y.shape[1]
    target = exact(Y)
    if spec.loss in ("mse", "half_sse"):
        k = 2.0 / m if spec.loss == "mse" else 1.0
        output_slope = slope(spec.activations[-1], tape.z(L), tape.a(L), z_errors[-1], admitted(L))
        delta = ((a_bounds[L] + target) * output_slope).scaled(k)
    elif spec.loss == "bce":
        delta = (a_bounds[L] + target).scaled(1.0 / m)
    elif spec.loss == "cce":
        column = exact(Y.sum(axis=0, keepdims=True) * np.ones_like(Y))
        delta = (a_bounds[L] * column + target).scaled(1.0 / m)
    else:
        raise KeyError(f"unknown loss {spec.loss!r}")
    out: dict[str, Bound] = {}
    for layer in range(L, 0, -1):
        out[f"delta{layer}"] = delta
        out[f"W{layer}"] = contract(delta, a_bounds[layer - 1])
        out[f"b{layer}"] = batch_sum(delta)
        if layer > 1:
            name = spec.activations[layer - 2]
            z, a = tape.z(layer - 1), tape.a(layer - 1)
            carried = matmul(params[f"W{layer}"].T, delta)
            delta = carried * slope(name, z, a, z_errors[layer - 2], admitted(layer - 1))
    return out


@lru_cache(maxsize=128)
def case_magnitudes(case: Case, form: str = "admitted") -> dict[str, Bound]:
    """:func:`magnitudes` of a case, cached: every oracle's comparison of one case needs the same Ḡ."""
    params, X, Y = case.arrays()
    return magnitudes(case.spec, params, X, Y, form)
