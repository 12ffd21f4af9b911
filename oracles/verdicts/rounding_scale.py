"""How far a *correct* float64 backprop may be from the exact gradient, entry by entry: a first-order
forward error analysis of the δ recursion as people write it.

Derivation.  Let u = 2⁻⁵³.  Every quantity q that backprop forms (same shape as q) carries two bounds:
its magnitude M_q ≥ |q| — the sum of the absolute values of the terms it is formed from — and its error
E_q, in units of u, with

    |q̂ − q| ≤ c·u·E_q

for the value q̂ computed by *any* standard float64 formulation of q; c counts operations along one path
and is absorbed by the tolerance row's rtol ≈ 4500 u (:mod:`oracles.verdicts.tolerances`).  Exact inputs
have M = |x|, E = 0; then, to first order in u:

1. a sum or difference x ± y:  M = M_x + M_y,   E = E_x + E_y + M   (its own rounding is relative to the
   terms, not to the result: where terms cancel, as in a − y, p − y, 1 − σ or 1 − tanh², the rounding stays);
2. a product xy:                M = M_x M_y,     E = E_x M_y + M_x E_y + M;
3. a function of a computed argument, g(ẑ) = g(z) + g'(z)(ẑ − z):  M = |g(z)|,  E = |g'(z)| E_z + V(z),
   with V the bound of g's own evaluation.

Products of errors (E_x E_y) are second order and dropped: an error made in one layer's derivative is
carried by the exact values of every other factor, not by their errors.

Forward:  z = W a + b  (rules 1–2 over the sum), a = g(z)  (rule 3; softmax: E_p = p ⊙ (E_z + pᵀE_z) + p,
from Δp_i = p_i(Δz_i − Σ_j p_j Δz_j)).

Each elementwise derivative g'(z) is a function of the computed z:  M = |g'(z)|,  E = S(z) + |g''(z)| E_z,
where S is the magnitude of the terms of the formula used.  Two formula sets:

- ``admitted`` — every standard formulation.  The bounded activations' values may be formed with
  cancellation (½(1 + tanh(z/2)), 1 − σ(−z), 2σ(2z) − 1, log(1 + e^z)), so V = 1 + |g| for sigmoid, tanh
  and softplus; their derivatives are formed from such values, σ' = a(1 − a) and tanh' = 1 − a², which
  gives S = a(1 + a) + |1 − 2a|(1 + a) and S = 1 + a² + 2|a|(1 + |a|) (rule 1, and rule 3 through a):
  an *absolute* error of a few u although g' itself may be 1e-30; softplus' = σ gives S = 1 + σ;
- ``best`` — the cancellation-free forms (e^{−|z|}/(1 + e^{−|z|})², sech², log1p): S = |g'(z)|, V = |g|.

Backward, by the same rules: δ^[L] = k(a − y) ⊙ g'(z) for mse (k = 2/m) and half_sse (k = 1); the fused
(σ(z) − y)/m for bce and (p Σy − y)/m (or p − y) for cce; δ^[l-1] = (W^[l]ᵀ δ^[l]) ⊙ g'(z^[l-1]);
∂W^[l] = δ^[l] (a^[l-1])ᵀ; ∂b^[l] = Σ_i δ^[l]_(:,i).  The error bound of each gradient entry, Ḡ = E, is
what :func:`magnitudes` returns: Ḡ ≥ M ≥ |g|, within a small factor (the operation count) of |g| where
nothing cancels and nothing saturates.

The ``admitted`` bounds set the tolerance scale (no correct formulation is ever called wrong); the
``best`` bounds say what the most careful float64 code achieves, against which a subject's lost digits
are measured (:mod:`oracles.verdicts.precision`).  A wrong formula still shows: wherever Ḡ is within a
few orders of |g| (an ordinary entry), a bug moves the value by far more than rtol·Ḡ.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
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
    """Magnitude M ≥ |q| and first-order error E (units of u) of one computed quantity."""

    M: Array
    E: Array

    def __add__(self, other: Bound) -> Bound:  # rule 1 (a sum or a difference)
        M = self.M + other.M
        return Bound(M, self.E + other.E + M)

    def __mul__(self, other: Bound) -> Bound:  # rule 2 (elementwise)
        M = self.M * other.M
        return Bound(M, self.E * other.M + self.M * other.E + M)

    def scaled(self, k: float) -> Bound:
        return Bound(k * self.M, k * self.E)


def exact(values: Array) -> Bound:
    return Bound(np.abs(values), np.zeros_like(values, dtype=np.float64))


def matmul(A: Array, B: Bound) -> Bound:
    """|A| B for a matrix A of exact inputs (weights): a sum of products (rules 1–2)."""
    M = np.abs(A) @ B.M
    return Bound(M, np.abs(A) @ B.E + M)


def contract(left: Bound, right: Bound) -> Bound:
    """left · rightᵀ, summed over the batch (∂W = δ aᵀ)."""
    M = left.M @ right.M.T
    return Bound(M, left.E @ right.M.T + left.M @ right.E.T + M)


def batch_sum(b: Bound) -> Bound:
    M = b.M.sum(axis=1, keepdims=True)
    return Bound(M, b.E.sum(axis=1, keepdims=True) + M)


def _exact_slope(name: str, z: Array) -> Array:
    derivative = get_activation(name).derivative
    assert derivative is not None, name
    return np.abs(derivative(z))


def _slope_terms(name: str, z: Array, a: Array, admitted: bool) -> Array:
    """S(z): the magnitude of the terms the derivative's formula is formed from, and (admitted) of the
    activation value it is formed from, itself possibly off by a few u absolutely (V = 1 + |a|)."""
    if admitted and name == "sigmoid":
        return a * (1.0 + a) + np.abs(1.0 - 2.0 * a) * (1.0 + a)  # σ(1 − σ), from a σ with an absolute error
    if admitted and name == "tanh":
        return 1.0 + a * a + 2.0 * np.abs(a) * (1.0 + np.abs(a))  # 1 − tanh², likewise
    if admitted and name == "softplus":
        return 1.0 + _exact_slope(name, z)  # σ(z), by any of the sigmoid's formulas
    return _exact_slope(name, z)


def _curvature(name: str, z: Array, a: Array) -> Array:
    """|g''(z)|: how much g'(z) moves per unit error in z."""
    if name == "sigmoid":
        return _exact_slope(name, z) * np.abs(1.0 - 2.0 * a)
    if name == "tanh":
        return 2.0 * np.abs(a) * _exact_slope(name, z)
    if name == "softplus":
        return _exact_slope("sigmoid", z)
    return np.zeros_like(z)  # identity, relu, leaky_relu: piecewise linear


def _value_terms(name: str, a: Array, admitted: bool) -> Array:
    """V: the bound of g's own evaluation (1 + |g| for the admitted forms of the bounded activations)."""
    if admitted and name in ("sigmoid", "tanh", "softplus"):
        return 1.0 + np.abs(a)
    return np.abs(a)


def slope(name: str, z: Array, a: Array, z_bound: Bound, admitted: bool) -> Bound:
    """g'(ẑ): M = |g'(z)|, E = S(z) + |g''(z)| E_z."""
    return Bound(_exact_slope(name, z), _slope_terms(name, z, a, admitted) + _curvature(name, z, a) * z_bound.E)


def forward_bounds(
    spec: Spec, params: Mapping[str, Array], X: Array, admitted: bool = True
) -> tuple[mlp.Tape, list[Bound], list[Bound]]:
    """The tape and, per layer, the bounds of z^[l] and a^[l] (``a_bounds[0]`` is X, exact)."""
    tape = mlp.forward(spec, params, X)
    a_bounds: list[Bound] = [exact(X)]
    z_bounds: list[Bound] = []
    for layer, name in enumerate(spec.activations, start=1):
        z, a = tape.z(layer), tape.a(layer)
        z_bound = matmul(params[f"W{layer}"], a_bounds[-1]) + exact(np.broadcast_to(params[f"b{layer}"], z.shape))
        if name == "softmax":
            spread = z_bound.E + (a * z_bound.E).sum(axis=0, keepdims=True)
            a_bound = Bound(a, a * spread + a)
        else:
            a_bound = Bound(np.abs(a), _exact_slope(name, z) * z_bound.E + _value_terms(name, a, admitted))
        z_bounds.append(z_bound)
        a_bounds.append(a_bound)
    return tape, z_bounds, a_bounds


def magnitudes(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    form: str = "admitted",
    textbook_layers: Collection[int] | None = None,
) -> dict[str, Array]:
    """Ḡ (the error bound E) for every block: ``W{l}``/``b{l}`` like the parameters, ``delta{l}`` ``(n_l, m)``.

    ``form`` picks the formula set (``admitted`` or ``best``); ``textbook_layers``, when given, admits the
    textbook derivative formulas on those layers only (what each layer's formulas can cost).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")

    def admitted(layer: int) -> bool:
        return form == "admitted" if textbook_layers is None else layer in textbook_layers

    tape, z_bounds, a_bounds = forward_bounds(spec, params, X, form == "admitted")
    L, m = spec.depth, Y.shape[1]
    target = exact(Y)
    if spec.loss in ("mse", "half_sse"):
        k = 2.0 / m if spec.loss == "mse" else 1.0
        output_slope = slope(spec.activations[-1], tape.z(L), tape.a(L), z_bounds[-1], admitted(L))
        delta = ((a_bounds[L] + target) * output_slope).scaled(k)
    elif spec.loss == "bce":
        delta = (a_bounds[L] + target).scaled(1.0 / m)
    elif spec.loss == "cce":
        column = exact(Y.sum(axis=0, keepdims=True) * np.ones_like(Y))
        delta = (a_bounds[L] * column + target).scaled(1.0 / m)
    else:
        raise KeyError(f"unknown loss {spec.loss!r}")
    out: dict[str, Array] = {}
    for layer in range(L, 0, -1):
        out[f"delta{layer}"] = delta.E
        out[f"W{layer}"] = contract(delta, a_bounds[layer - 1]).E
        out[f"b{layer}"] = batch_sum(delta).E
        if layer > 1:
            name = spec.activations[layer - 2]
            z, a = tape.z(layer - 1), tape.a(layer - 1)
            carried = matmul(params[f"W{layer}"].T, delta)
            delta = carried * slope(name, z, a, z_bounds[layer - 2], admitted(layer - 1))
    return out


@lru_cache(maxsize=128)
def case_magnitudes(case: Case, form: str = "admitted") -> dict[str, Array]:
    """:func:`magnitudes` of a case, cached: every oracle's comparison of one case needs the same Ḡ."""
    params, X, Y = case.arrays()
    return magnitudes(case.spec, params, X, Y, form)
