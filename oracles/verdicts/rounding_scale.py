"""How far a *correct* float64 backprop may be from the exact gradient, entry by entry: a first-order
forward error analysis of the δ recursion as people write it.

Derivation.  Let u = 2⁻⁵³.  To every quantity q that backprop forms we attach a bar q̄ (same shape) with

    q̄ ≥ |q|   and   |q̂ − q| ≤ c·u·q̄

for the value q̂ computed by *any* standard float64 formulation of q, where c is a modest count of
operations along one path (it is absorbed by the tolerance row's rtol ≈ 4500 u; see
:mod:`oracles.verdicts.tolerances`).  Three rules build every bar, to first order in u:

1. a sum or difference x ± y gets x̄ + ȳ: the magnitudes of its terms, never of its result, because
   terms that cancel leave their rounding behind (a − y, p − y, 1 − σ, 1 − tanh²);
2. a product xy gets x̄·ȳ (≥ |x|ȳ + |y|x̄, the first-order error of a product of two inexact factors);
3. a function of a computed argument, g(ẑ) = g(z) + g'(z)(ẑ − z), gets ḡ + |g'(z)|·z̄, where ḡ bounds
   g's own evaluation.

Forward, from exact inputs (X̄ = |X|):
    z̄^[l] = |W^[l]| ā^[l-1] + |b^[l]|,         ā^[l] = |g(z)| + |g'(z)| z̄^[l]
(softmax: p̄ = p ⊙ (1 + z̄ + pᵀz̄), from Δp_i = p_i(Δz_i − Σ_j p_j Δz_j)).

Each elementwise derivative is a function of a computed z, so by rule 3 its bar is

    s̄ = S(z) + |g''(z)| z̄,

where S is the magnitude of the *formula's* terms.  Two formula sets are modelled:

- ``admitted`` — every standard formulation: σ' = σ(1 − σ) gives S = σ(1 + σ) and tanh' = 1 − tanh² gives
  S = 1 + tanh² (rule 1: in saturation their *absolute* error is a few u although g' itself is 1e-30);
- ``best`` — the cancellation-free forms (e^{−|z|}/(1 + e^{−|z|})², sech²): S = |g'(z)|.

Backward (k = 2/m for mse, 1 for half_sse):
    δ̄^[L] = k (ā + |y|) s̄                      (mse, half_sse: (a − y) ⊙ g'(z))
    δ̄^[L] = (ā + |y|)/m                          (bce fused with its sigmoid: σ(z) − y)
    δ̄^[L] = (p̄ Σ|y| + |y|)/m                     (cce fused with its softmax: p Σy − y, or p − y)
    δ̄^[l-1] = (|W^[l]|ᵀ δ̄^[l]) ⊙ s̄^[l-1],   W̄^[l] = δ̄^[l] (ā^[l-1])ᵀ,   b̄^[l] = Σ_i δ̄^[l]_(:,i)

so Ḡ ≥ |g| entry by entry, with equality where nothing cancels and nothing saturates.  The
``admitted`` bars set the tolerance scale (no correct formulation is ever called wrong); the ``best`` bars
say what the most careful float64 code achieves, against which a subject's lost digits are measured
(:mod:`oracles.verdicts.precision`).  A wrong formula still shows: wherever Ḡ is within a few orders of |g|
(an ordinary entry), a bug moves the value by far more than rtol·Ḡ.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache

import numpy as np

from reference_impl import mlp
from reference_impl.activations import get_activation, sigmoid
from reference_impl.case import Case
from reference_impl.spec import Array, Spec

FORMS = ("admitted", "best")


def _slope_terms(name: str, z: Array, a: Array) -> Array:
    """S(z) of the admitted formulas: the magnitude of the terms each textbook derivative is formed from."""
    if name == "sigmoid":
        return a * (1.0 + a)  # σ(1 − σ)
    if name == "tanh":
        return 1.0 + a * a  # 1 − tanh²
    return _exact_slope(name, z)


def _exact_slope(name: str, z: Array) -> Array:
    derivative = get_activation(name).derivative
    assert derivative is not None, name
    return np.abs(derivative(z))


def _curvature(name: str, z: Array, a: Array) -> Array:
    """|g''(z)|: how much g'(z) moves per unit error in z."""
    if name == "sigmoid":
        return _exact_slope(name, z) * np.abs(1.0 - 2.0 * a)
    if name == "tanh":
        return 2.0 * np.abs(a) * _exact_slope(name, z)
    if name == "softplus":
        return _exact_slope("sigmoid", z)
    return np.zeros_like(z)  # identity, relu, leaky_relu: piecewise linear


def _slope_bar(name: str, z: Array, a: Array, z_bar: Array, admitted: bool) -> Array:
    """s̄ = S(z) + |g''(z)| z̄ (rule 3 applied to g'(ẑ))."""
    terms = _slope_terms(name, z, a) if admitted else _exact_slope(name, z)
    return terms + _curvature(name, z, a) * z_bar


def forward_bars(spec: Spec, params: Mapping[str, Array], X: Array) -> tuple[mlp.Tape, list[Array], list[Array]]:
    """The tape and, per layer, z̄^[l] and ā^[l] (``a_bars[0]`` is |X|)."""
    tape = mlp.forward(spec, params, X)
    a_bars: list[Array] = [np.abs(X)]
    z_bars: list[Array] = []
    for layer, name in enumerate(spec.activations, start=1):
        z, a = tape.z(layer), tape.a(layer)
        z_bar = np.abs(params[f"W{layer}"]) @ a_bars[-1] + np.abs(params[f"b{layer}"])
        if name == "softmax":
            a_bar = a * (1.0 + z_bar + (a * z_bar).sum(axis=0, keepdims=True))
        else:
            a_bar = np.abs(a) + _exact_slope(name, z) * z_bar
        z_bars.append(z_bar)
        a_bars.append(a_bar)
    return tape, z_bars, a_bars


def magnitudes(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    form: str = "admitted",
    textbook_layers: Collection[int] | None = None,
) -> dict[str, Array]:
    """Ḡ for every block: ``W{l}``/``b{l}`` shaped like the parameters, ``delta{l}`` ``(n_l, m)``.

    ``form`` picks the derivative formulas (``admitted`` or ``best``); ``textbook_layers``, when given,
    admits the textbook formulas on those layers only (how much each layer's formulas can cost).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")

    def admitted(layer: int) -> bool:
        return form == "admitted" if textbook_layers is None else layer in textbook_layers

    tape, z_bars, a_bars = forward_bars(spec, params, X)
    L, m = spec.depth, Y.shape[1]
    out_name, z_out, a_out = spec.activations[-1], tape.z(L), tape.a(L)
    if spec.loss in ("mse", "half_sse"):
        k = 2.0 / m if spec.loss == "mse" else 1.0
        delta = k * (a_bars[L] + np.abs(Y)) * _slope_bar(out_name, z_out, a_out, z_bars[-1], admitted(L))
    elif spec.loss == "bce":
        delta = (a_bars[L] + np.abs(Y)) / m
    elif spec.loss == "cce":
        delta = (a_bars[L] * np.abs(Y).sum(axis=0, keepdims=True) + np.abs(Y)) / m
    else:
        raise KeyError(f"unknown loss {spec.loss!r}")
    out: dict[str, Array] = {}
    for layer in range(L, 0, -1):
        out[f"delta{layer}"] = delta
        out[f"W{layer}"] = delta @ a_bars[layer - 1].T
        out[f"b{layer}"] = delta.sum(axis=1, keepdims=True)
        if layer > 1:
            name = spec.activations[layer - 2]
            slope = _slope_bar(name, tape.z(layer - 1), tape.a(layer - 1), z_bars[layer - 2], admitted(layer - 1))
            delta = (np.abs(params[f"W{layer}"]).T @ delta) * slope
    return out


@lru_cache(maxsize=128)
def case_magnitudes(case: Case, form: str = "admitted") -> dict[str, Array]:
    """:func:`magnitudes` of a case, cached: every oracle's comparison of one case needs the same Ḡ."""
    params, X, Y = case.arrays()
    return magnitudes(case.spec, params, X, Y, form)


def saturation(name: str, z: Array) -> Array:
    """How many times the admitted formula's terms exceed |g'(z)| (1 where nothing cancels)."""
    if name not in ("sigmoid", "tanh"):
        return np.ones_like(z)
    a = sigmoid(z) if name == "sigmoid" else np.tanh(z)
    exact = _exact_slope(name, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _slope_terms(name, z, a) / exact
    return np.where(exact > 0, ratio, np.inf)
