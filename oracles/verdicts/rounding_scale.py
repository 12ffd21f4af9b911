"""How large float64 rounding in a correct backprop may be, entry by entry: the δ recursion in magnitudes.

A gradient entry is a sum of products, and float64 evaluates it with an error of some ulps of the sum of
the *magnitudes* of its terms, not of the result (a running error bound).  Where terms cancel the result
can be far smaller than those magnitudes: a saturated softmax whose p_true rounds next to 1 makes
δ = p − y ≈ −3e-6 out of terms of size 1, and every float64 implementation, however correct, is then
off by ~1e-16 absolutely, 1e-11 relatively.  An exact oracle sees that; it is not a bug.

:func:`magnitudes` repeats the recursion with every factor replaced by its absolute value and every
difference (a − y, p − y, the softmax Jacobian's p_i(δ_ij − p_j)) by the sum of the magnitudes, so
``Ḡ ≥ |g|`` entry by entry, with equality where nothing cancels.  :func:`oracles.verdicts.tolerances.entry_tolerance`
uses Ḡ as one more floor of its scale.  It is a tolerance model, not a gradient: it shares the recursion's
shape with the reference on purpose and cannot hide a wrong formula, since a bug moves values by far more
than rtol·Ḡ wherever Ḡ ≈ |g|.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from oracles.numeric.imaginary import imaginary_slope
from oracles.numeric.tape import base_tape
from reference_impl.case import Case
from reference_impl.spec import Array, Spec


def _output_delta(spec: Spec, z_out: Array, a_out: Array, Y: Array) -> Array:
    """δ̄^[L] ``(n_L, m)``: the output δ with its difference replaced by a sum of magnitudes."""
    m = Y.shape[1]
    if spec.loss in ("mse", "half_sse"):
        slope = imaginary_slope(spec.activations[-1], z_out)
        factor = (2.0 / m if spec.loss == "mse" else 1.0) * (np.abs(a_out) + np.abs(Y))
        return factor if slope is None else factor * np.abs(slope)
    if spec.loss == "bce":  # fused with the sigmoid output: σ(z) − y
        return (np.abs(a_out) + np.abs(Y)) / m
    if spec.loss == "cce":  # fused with the softmax output: p·Σy − y
        return (a_out * np.abs(Y).sum(axis=0, keepdims=True) + np.abs(Y)) / m
    raise KeyError(f"unknown loss {spec.loss!r}")


def magnitudes(spec: Spec, params: Mapping[str, Array], X: Array, Y: Array) -> dict[str, Array]:
    """Ḡ for every block: ``W{l}``/``b{l}`` shaped like the parameters, ``delta{l}`` ``(n_l, m)``."""
    tape = base_tape(spec, params, X, Y)
    delta = _output_delta(spec, tape.z[-1], tape.a[-1], Y)
    out: dict[str, Array] = {}
    for layer in range(spec.depth, 0, -1):
        out[f"delta{layer}"] = delta
        out[f"W{layer}"] = delta @ np.abs(tape.a[layer - 1]).T
        out[f"b{layer}"] = delta.sum(axis=1, keepdims=True)
        if layer == 1:
            break
        carried = np.abs(params[f"W{layer}"]).T @ delta
        name = spec.activations[layer - 2]
        if name == "softmax":
            # |Jᵀv| for J = diag(p) − p pᵀ is at most p⊙v + p·(p·v).
            p = tape.a[layer - 1]
            delta = p * carried + p * (p * carried).sum(axis=0, keepdims=True)
        else:
            slope = imaginary_slope(name, tape.z[layer - 2])
            delta = carried if slope is None else carried * np.abs(slope)
    return out


@lru_cache(maxsize=64)
def case_magnitudes(case: Case) -> dict[str, Array]:
    """:func:`magnitudes` of a case, cached: every oracle's comparison of one case needs the same Ḡ."""
    params, X, Y = case.arrays()
    return magnitudes(case.spec, params, X, Y)
