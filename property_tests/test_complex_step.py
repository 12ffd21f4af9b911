"""Complex step: machine-precision agreement, one complex evaluation per direction, exact kinks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from oracles.numeric import complex_step
from oracles.verdicts.compare import check_case
from property_tests.numeric_helpers import full_records, perturbed_subject
from property_tests.strategies import cases
from reference_impl import Case, Spec, gradients


@settings(max_examples=60)
@given(cases())
def test_agrees_with_the_reference_at_the_float64_floor(case: Case) -> None:
    for record in full_records(case, "complex_step"):
        assert not record.failed, record.explain()


@settings(max_examples=30)
@given(cases(kinks=False))
def test_directional_derivative_is_the_projected_gradient_to_rounding(case: Case) -> None:
    params, X, Y = case.arrays()
    grads = gradients(case.spec, params, X, Y)
    rng = np.random.default_rng(case.seed)
    directions = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(3)]
    got = complex_step.directional(case.spec, params, X, Y, directions)
    for value, v in zip(got, directions, strict=True):
        exact = sum(float(np.sum(grads[k] * v[k])) for k in v)
        scale = sum(float(np.sum(np.abs(grads[k] * v[k]))) for k in v)
        assert abs(value - exact) <= 1e-12 * scale + 1e-300, (value, exact, repr(case))


def test_a_1e_minus_9_relative_error_is_caught() -> None:
    case = Case(Spec((3, 5, 4, 2), ("tanh", "softplus", "sigmoid"), "bce"), batch=4, seed=9)
    records = check_case(case, perturbed_subject("b2", 1e-9), ["complex_step"])
    assert records[-1].failed and records[-1].parameter == "b2"


def test_the_convention_at_an_exact_zero_is_the_suites() -> None:
    # relu'(0) = 0 and leaky_relu'(0) = 0.01: branch by the real part, which the step never moves.
    for name, slope in (("relu", 0.0), ("leaky_relu", 0.01)):
        spec = Spec((1, 1), (name,), "half_sse")
        params = {"W1": np.array([[2.0]]), "b1": np.array([[-2.0]])}
        X, Y = np.array([[1.0]]), np.array([[-3.0]])
        output = complex_step.evaluate(spec, params, X, Y)
        assert output.grads["b1"][0, 0] == pytest.approx(slope * 3.0, rel=1e-15)
        assert output.extra["kink_mask"]["b1"][0, 0]
        lower, upper = output.extra["kink_lower"]["b1"][0, 0], output.extra["kink_upper"]["b1"][0, 0]
        assert abs(lower - slope * 3.0) < 1e-6 and abs(upper - 3.0) < 1e-6
