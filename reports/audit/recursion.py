"""The error recursion δ_prev from δ as §3.4 and §4.3 write it: encodings, SymPy twins, grid, check.

Shared by the §3.4 and §4.3 claims and by their consistency claim; column convention: δ ``(n_l, m)``,
W ``(n_l, n_{l-1})``, f'(z_prev) ``(n_{l-1}, m)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from reference_impl.spec import Array
from reports.audit.checks import elementwise_derivative, setting_value
from reports.audit.core import Instance, Outcome, Setting, SymbolicResult, compare, setting
from reports.audit.instances import BATCHES, ELEMENTWISE, PAIRINGS, SHAPES, two_layer
from reports.audit.symbolic import MatrixFormula, recursion_rule

Recursion = Callable[[Array, Array, Array], Array]  # (δ, W, f'(z_prev)) -> δ_prev, column convention


def recursion_scalar(delta: Array, w: Array, f_prime: Array) -> Array:
    return delta * w * f_prime


def recursion_rows(delta: Array, w: Array, f_prime: Array) -> Array:
    # One example per row: δ (m, n_l) · W (n_l, n_{l-1}) ⊙ f' (m, n_{l-1}); transposed back to columns.
    return ((delta.T @ w) * f_prime.T).T


def recursion_written_order(delta: Array, w: Array, f_prime: Array) -> Array:
    return np.dot(delta, w) * f_prime


def recursion_no_transpose(delta: Array, w: Array, f_prime: Array) -> Array:
    return np.dot(w, delta) * f_prime


def recursion_4_3(delta: Array, w: Array, f_prime: Array) -> Array:
    return (w.T @ delta) * f_prime


def recursion_4_3_other_parse(delta: Array, w: Array, f_prime: Array) -> Array:
    return w.T @ (delta * f_prime)


RECURSION_SETTINGS: tuple[Setting, ...] = tuple(
    setting(hidden=h, shape=s, m=b) for h in ELEMENTWISE for s in SHAPES for b in BATCHES
)


def recursion_instances(point: Setting) -> st.SearchStrategy[Instance]:
    shape = setting_value(point, "shape")
    pairings = [p for p in PAIRINGS if not (shape == "scalar" and p[0] == "softmax")]
    return two_layer(
        point, hidden=setting_value(point, "hidden"), shape=shape, batch=setting_value(point, "m"), pairings=pairings
    )


def recursion_check(recursion: Recursion, against: Recursion | None = None) -> Callable[[Instance], Outcome]:
    """δ^[1] from δ^[2] by ``recursion``, against the oracle's δ^[1] (or against another formula)."""

    def run(instance: Instance) -> Outcome:
        t = instance.truth
        f_prime = elementwise_derivative(instance.spec.activations[0])(t.z[0])
        W2 = instance.params["W2"]
        expected = t.delta[0] if against is None else against(t.delta[1], W2, f_prime)
        return compare(recursion(t.delta[1], W2, f_prime), expected)

    return run


_SYMBOLIC_FORMS: dict[Recursion, tuple[MatrixFormula, str]] = {
    recursion_4_3: (lambda W, d, gp: (W.T * d).multiply_elementwise(gp), "((W)ᵀδ) ⊙ g'"),
    recursion_4_3_other_parse: (lambda W, d, gp: W.T * d.multiply_elementwise(gp), "(W)ᵀ(δ ⊙ g')"),
    recursion_no_transpose: (lambda W, d, gp: (W * d).multiply_elementwise(gp), "W δ ⊙ g'"),
    recursion_written_order: (lambda W, d, gp: (d * W).multiply_elementwise(gp), "δ·W ⊙ g'"),
}


def symbolic_twin(recursion: Recursion) -> Callable[[], SymbolicResult] | None:
    """The SymPy twin of a NumPy recursion (SymPy's * is the matrix product); None for any other encoding."""
    if recursion not in _SYMBOLIC_FORMS:
        return None
    formula, statement = _SYMBOLIC_FORMS[recursion]
    return lambda: recursion_rule(formula, statement=statement)
