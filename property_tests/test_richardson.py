"""Richardson extrapolation: agreement within its own per-entry estimate, and honest estimates."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings

from oracles.numeric import richardson
from oracles.numeric.steps import EPS
from oracles.verdicts.compare import check_case
from property_tests.numeric_helpers import full_records, perturbed_subject
from property_tests.strategies import cases
from reference_impl import Case, Spec, gradients


@settings(max_examples=50)
@given(cases())
# A confident softmax: the loss is ~1e-9 out of logit-sized terms, so L± round at eps·|z|, not eps·|L|.
@example(
    Case(
        Spec((3, 3, 3, 2), ("identity", "identity", "softmax"), "cce"), batch=1, seed=3, param_scale=2.0, data_scale=0.5
    )
)
def test_agrees_with_the_reference_within_its_own_estimate(case: Case) -> None:
    for record in full_records(case, "richardson"):
        assert not record.failed, record.explain()


def test_extrapolation_on_a_known_function_and_its_estimate_bounds_the_error() -> None:
    x = np.array([0.3, -1.2, 2.0])
    steps = 2.0**-4 / 2.0 ** np.arange(5)[:, None] * np.ones((1, 3))
    differences = (np.sin(x + steps) - np.sin(x - steps)) / (2 * steps)
    value, error, extrapolated = richardson.extrapolate(
        differences, steps, np.ones_like(steps, dtype=bool), 2.0 * EPS / (2.0 * steps)
    )
    assert extrapolated.all()
    actual = np.abs(value - np.cos(x))
    assert np.all(actual <= error) and np.all(error < 1e-10)
    assert np.all(actual < np.abs(differences[-1] - np.cos(x)) / 1e3)  # far better than plain differences


def test_crossed_steps_are_not_extrapolated() -> None:
    steps = 2.0**-4 / 2.0 ** np.arange(4)[:, None] * np.ones((1, 1))
    differences = np.array([[5.0], [1.0], [1.0], [1.0]])
    valid = np.array([[False], [True], [True], [True]])
    value, _, extrapolated = richardson.extrapolate(differences, steps, valid, np.zeros_like(steps))
    assert extrapolated.all() and value[0] == 1.0


def test_a_1e_minus_9_relative_error_is_caught_with_the_estimate_as_tolerance() -> None:
    case = Case(Spec((3, 5, 4, 2), ("tanh", "sigmoid", "identity"), "mse"), batch=4, seed=9)
    records = check_case(case, perturbed_subject("W1", 1e-9), ["richardson"])
    assert records[-1].failed and records[-1].parameter == "W1"
    # The estimate is part of the record, per block at its worst entry, and it set that entry's tolerance.
    record = records[-1]
    assert record.blocks is not None
    for block in record.blocks.values():
        assert block["estimate"] >= 0.0 and block["tolerance"] >= 10.0 * block["estimate"]
    assert record.extra["oracle_estimate"] == record.blocks["W1"]["estimate"]


def test_estimates_are_reported_per_entry_and_cover_the_actual_error() -> None:
    case = Case(Spec((3, 4, 2), ("softplus", "tanh"), "mse"), batch=3, seed=6)
    params, X, Y = case.arrays()
    output = richardson.evaluate(case.spec, params, X, Y)
    exact = gradients(case.spec, params, X, Y)
    assert output.error is not None
    for name in exact:
        assert output.error[name].shape == exact[name].shape
        assert np.all(np.abs(output.grads[name] - exact[name]) <= 10 * output.error[name] + 1e-13)
