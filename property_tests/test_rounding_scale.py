"""The magnitude recursion Ḡ that floors the tolerance scale where float64 terms cancel."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from oracles.subjects import reference_subject
from oracles.verdicts.compare import check_case
from oracles.verdicts.rounding_scale import case_magnitudes, magnitudes
from property_tests.numeric_helpers import perturbed_subject
from property_tests.strategies import cases
from property_tests.test_sympy_exact import SATURATED_SOFTMAX
from reference_impl import Case, Spec, run


@settings(max_examples=60)
@given(cases())
def test_the_magnitudes_bound_every_gradient_and_delta(case: Case) -> None:
    params, X, Y = case.arrays()
    _, backward, _ = run(case.spec, params, X, Y)
    scales = magnitudes(case.spec, params, X, Y)
    exact = dict(backward.grads) | {f"delta{layer}": d for layer, d in enumerate(backward.deltas, start=1)}
    assert set(scales) == set(exact)
    for name, value in exact.items():
        # M sums the magnitudes of the very terms whose sum is g: never below |g| beyond rounding.
        assert np.all(np.abs(value) * (1 - 1e-12) <= scales[name].M), (name, repr(case))
        assert np.all(scales[name].E >= 0.0), (name, repr(case))


def test_without_cancellation_the_magnitudes_are_the_gradient() -> None:
    # Identity output, mse, positive weights and data, targets below every output: a − y > 0 and every
    # product is positive, so nothing cancels and M = |g|; E only carries each layer's rounding of z
    # into the next (identity layers have no curvature and no absolute error: E ≤ a few |g|).
    spec = Spec((2, 3, 2), ("identity", "identity"), "mse")
    params = {
        "W1": np.full((3, 2), 0.5),
        "b1": np.full((3, 1), 0.1),
        "W2": np.full((2, 3), 0.3),
        "b2": np.full((2, 1), 0.2),
    }
    X = np.array([[1.0, 2.0], [0.5, 1.5]])
    Y = np.full((2, 2), -1.0)
    scales = magnitudes(spec, params, X, Y)
    for name, value in run(spec, params, X, Y)[1].grads.items():
        # |a| + |y| = a − y when a > 0 > y: exactly the same terms.
        np.testing.assert_allclose(scales[name].M, np.abs(value), rtol=1e-14)
        assert np.all(4 * np.abs(value) >= scales[name].E), name


def test_the_saturated_softmax_is_a_rounding_floor_not_a_bug() -> None:
    params, X, Y = SATURATED_SOFTMAX.arrays()
    scales = case_magnitudes(SATURATED_SOFTMAX)
    grads = run(SATURATED_SOFTMAX.spec, params, X, Y)[1].grads
    # The terms are ~1e5 times the result: float64's ~1e-16 absolute error is 1e-11 relative here.
    assert scales["b2"].M.max() > 1e4 * np.abs(grads["b2"]).max()
    records = check_case(SATURATED_SOFTMAX, reference_subject(), ["sympy_exact", "torch_autograd"])
    assert records and not any(r.failed for r in records), [r.explain() for r in records]


def test_a_real_bug_in_the_saturated_case_is_still_caught() -> None:
    # The floor widens the tolerance to ~1e-12 of the terms' size, not to the size of a bug.
    records = check_case(SATURATED_SOFTMAX, perturbed_subject("b2", 1e-3), ["sympy_exact"])
    assert any(r.failed and r.parameter == "b2" for r in records), [r.explain() for r in records]
