"""Central differences: agreement at their own noise floor, batched directional route, kinks."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings

from oracles.numeric import finite_diff
from oracles.numeric.perturbed import direction_losses
from property_tests.numeric_helpers import full_records, perturbed_subject
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, gradients


@settings(max_examples=60)
@given(cases())
def test_agrees_with_the_reference_entry_by_entry_at_its_noise_floor(case: Case) -> None:
    for record in full_records(case, "finite_diff"):
        assert not record.failed, record.explain()


@settings(max_examples=15)
@given(cases(specs(min_width=16, max_width=24, max_depth=3), max_batch=4))
def test_wide_layers_agree_at_the_noise_floor_through_the_series_route(case: Case) -> None:
    # Fan-in ≥ 16 sends whole W rows through the exponential-series route where the next layer is
    # tanh/sigmoid; the gradient must meet the same per-entry tolerance as everywhere else.
    for record in full_records(case, "finite_diff"):
        assert not record.failed, record.explain()


def _truncation_and_rounding(case: Case, directions: list[dict[str, np.ndarray]]) -> np.ndarray:
    """Per direction: what central differences may be off by, from their own error terms.

    (L(θ+hv) − L(θ−hv))/2h = ⟨∇L, v⟩ + h²/6·D³L[v,v,v] + O(h⁴), plus rounding of about eps·|L|/h.  D³ is
    estimated from losses at ±h and ±2h: (L(2h) − 2L(h) + 2L(−h) − L(−2h))/(2h³).  Deep saturated nets
    (param_scale 5) have a large D³ along a direction that moves every parameter at once.
    """
    params, X, Y = case.arrays()
    h = np.array([finite_diff.direction_step(params, v) for v in directions])
    steps = np.stack([2 * h, h, -h, -2 * h], axis=1)
    evaluation = direction_losses(case.spec, params, X, Y, directions, steps)
    losses = evaluation.losses
    third = (losses[:, 0] - 2 * losses[:, 1] + 2 * losses[:, 2] - losses[:, 3]) / (2 * h**3)
    rounding = 8 * np.finfo(float).eps * np.abs(losses).max(axis=1) / h
    # Across a kink within 2h, D³ is not a derivative: no estimate (the direction is then not judged).
    return np.where(evaluation.crossed.any(axis=1), np.nan, 2 * h**2 / 6 * np.abs(third) + rounding)


@settings(max_examples=30)
@given(cases(kinks=False))
@example(Case(Spec((1, 6, 2, 2, 1), ("identity", "identity", "sigmoid", "identity"), "mse"), 4, 16, 5.0, 0.5, False))
def test_directional_derivative_is_the_projected_gradient(case: Case) -> None:
    params, X, Y = case.arrays()
    grads = gradients(case.spec, params, X, Y)
    rng = np.random.default_rng(case.seed)
    directions = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(3)]
    got = finite_diff.directional(case.spec, params, X, Y, directions)
    allowed = _truncation_and_rounding(case, directions)
    for value, v, error in zip(got, directions, allowed, strict=True):
        if np.isnan(value) or not np.isfinite(error):  # the direction crossed a kink: inconclusive by design
            continue
        exact = sum(float(np.sum(grads[k] * v[k])) for k in v)
        scale = sum(float(np.sum(np.abs(grads[k] * v[k]))) for k in v)
        assert abs(value - exact) <= 1e-6 * scale + 1e-9 + error, (value, exact, error, repr(case))


def test_a_relative_error_of_1e_minus_5_is_caught() -> None:
    case = Case(Spec((3, 5, 4, 2), ("tanh", "sigmoid", "identity"), "mse"), batch=4, seed=9)
    params, X, Y = case.arrays()
    grads = perturbed_subject("W2", 1e-5).gradients(case.spec.to_dict(), params, X, Y)
    record = full_records(case, "finite_diff", dict(grads))[0]
    assert record.failed and record.parameter == "W2"


def test_the_error_estimate_covers_the_actual_rounding() -> None:
    case = Case(Spec((4, 6, 3), ("sigmoid", "identity"), "half_sse"), batch=5, seed=2)
    params, X, Y = case.arrays()
    output = finite_diff.evaluate(case.spec, params, X, Y)
    exact = gradients(case.spec, params, X, Y)
    assert output.error is not None
    for name, value in output.grads.items():
        # O(h²) truncation is small here; what is left is the rounding the estimate describes.
        assert np.all(np.abs(value - exact[name]) <= 10 * output.error[name] + 1e-9)


def test_a_step_of_1e_minus_1_is_visibly_worse() -> None:
    case = Case(Spec((3, 5, 2), ("tanh", "tanh"), "mse"), batch=4, seed=1)
    params, X, Y = case.arrays()
    exact = gradients(case.spec, params, X, Y)
    good = finite_diff.central_differences(case.spec, params, X, Y)
    bad = finite_diff.central_differences(case.spec, params, X, Y, relative_step=1e-1)
    good_err = max(float(np.abs(good.grads[k] - exact[k]).max()) for k in exact)
    bad_err = max(float(np.abs(bad.grads[k] - exact[k]).max()) for k in exact)
    assert good_err < 1e-8 < 1e-4 < bad_err
