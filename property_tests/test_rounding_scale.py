"""The magnitude recursion Ḡ that floors the tolerance scale where float64 terms cancel."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import assume, given, settings

from oracles.subjects import Subject, reference_subject
from oracles.verdicts.compare import check_case
from oracles.verdicts.rounding_scale import case_magnitudes, magnitudes
from property_tests.numeric_helpers import perturbed_subject
from property_tests.strategies import cases
from property_tests.test_sympy_exact import SATURATED_SOFTMAX
from reference_impl import Case, Spec, gradients, run


@settings(max_examples=60)
@given(cases(stress=0.3))
def test_the_magnitudes_bound_every_gradient_and_delta(case: Case) -> None:
    params, X, Y = case.arrays()
    _, backward, _ = run(case.spec, params, X, Y)
    scales = magnitudes(case.spec, params, X, Y)
    exact = dict(backward.grads) | {f"delta{layer}": d for layer, d in enumerate(backward.deltas, start=1)}
    assert set(scales) == set(exact)
    for name, value in exact.items():
        # M sums the magnitudes of the very terms whose sum is g: never below |g| beyond rounding (and
        # subnormals, whose rounding is absolute).
        assert np.all(np.abs(value) * (1 - 1e-12) <= scales[name].M + 1e-300), (name, repr(case))
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


def _ordinary_entry(case: Case) -> tuple[str, tuple[int, ...]] | None:
    """The largest entry whose terms do not cancel (|g| ≥ M/10), in a case where no unit saturates."""
    params, X, Y = case.arrays()
    tape, backward, _ = run(case.spec, params, X, Y)
    if any(np.abs(z).max() > 5.0 for z in tape.pre_activations):
        return None
    bounds = case_magnitudes(case)
    best: tuple[float, str, tuple[int, ...]] | None = None
    for name, value in backward.grads.items():
        ordinary = (np.abs(value) >= 0.1 * bounds[name].M) & (np.abs(value) > 0)
        if np.any(ordinary):
            index = np.unravel_index(int(np.argmax(np.where(ordinary, np.abs(value), 0.0))), value.shape)
            if best is None or abs(value[index]) > best[0]:
                best = (float(abs(value[index])), name, tuple(int(i) for i in index))
    return None if best is None else (best[1], best[2])


@settings(max_examples=40)
@given(cases(kinks=False))
def test_a_1e_minus_9_error_in_an_ordinary_entry_is_caught_by_the_precise_oracles(case: Case) -> None:
    found = _ordinary_entry(case)
    assume(found is not None)
    assert found is not None
    block, index = found

    def off(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        grads = gradients(spec, params, X, Y)
        grads[block][index] *= 1.0 + 1e-9
        return grads

    records = check_case(case, Subject("off", off), ["torch_autograd"])
    assert any(r.failed and r.parameter == block for r in records), [r.summary() for r in records]


def test_textbook_derivatives_are_admitted_with_their_absolute_error() -> None:
    # A saturated sigmoid hidden layer: σ(1 − σ) is off by ~u absolutely where σ' ≈ 1e-13; the admitted
    # bound carries that, the best bound does not.
    spec = Spec((1, 1, 1), ("sigmoid", "identity"), "mse")
    params = {"W1": np.array([[30.0]]), "b1": np.zeros((1, 1)), "W2": np.array([[2.0]]), "b2": np.zeros((1, 1))}
    X, Y = np.ones((1, 1)), np.zeros((1, 1))
    admitted, best = magnitudes(spec, params, X, Y), magnitudes(spec, params, X, Y, "best")
    value = abs(float(run(spec, params, X, Y)[1].grads["W1"][0, 0]))
    assert admitted["W1"].E[0, 0] > 1e10 * value
    assert best["W1"].E[0, 0] + best["W1"].M[0, 0] < 100 * value
