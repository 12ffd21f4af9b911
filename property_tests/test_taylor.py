"""The Taylor-remainder rate: ≈ 2 for the right gradient, ≈ 1 for a wrong one, without a tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings

from oracles.verdicts.taylor import taylor_record, taylor_test
from property_tests.mutation.catalogue import MUTANTS
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, gradients

SMOOTH = ("identity", "sigmoid", "tanh", "softplus", "softmax")


# b1's first direction nearly zeroes the second-order term: the remainder changes sign inside the ε range
# and the clean remainders end in the dip (inconclusive); a second direction decides.
DIP_CASE = Case(Spec((1, 7, 8), ("sigmoid", "identity"), "mse"), batch=3, seed=4, param_scale=0.5, data_scale=1.0)


@settings(max_examples=25)
@given(cases(specs(activations=SMOOTH, max_depth=3), param_scales=(0.5, 1.0), data_scales=(0.5, 1.0)))
@example(DIP_CASE)
def test_the_right_gradient_converges_at_rate_two(case: Case) -> None:
    params, X, Y = case.arrays()
    grads = gradients(case.spec, params, X, Y)
    results = taylor_test(case.spec, params, X, Y, grads, np.random.default_rng(case.seed))
    for result in results.values():
        assert result.verdict == "pass", (result, repr(case))
        if result.rate is not None:
            assert result.rate > 1.7


def test_an_unlucky_direction_is_replaced_by_a_fresh_one_not_trusted() -> None:
    params, X, Y = DIP_CASE.arrays()
    grads = gradients(DIP_CASE.spec, params, X, Y)
    results = taylor_test(DIP_CASE.spec, params, X, Y, grads, np.random.default_rng(DIP_CASE.seed))
    assert results["b1"].notes["directions"] >= 2 and results["b1"].verdict == "pass"
    assert all(r.notes["directions"] == 1 for name, r in results.items() if name != "b1")
    # A wrong b1 fails along the fresh directions too: the retry never turns a wrong gradient into a pass.
    wrong = dict(grads, b1=grads["b1"] * 1.01)
    assert taylor_test(DIP_CASE.spec, params, X, Y, wrong, np.random.default_rng(DIP_CASE.seed))["b1"].verdict == "fail"


@pytest.mark.parametrize("mutant", ["bias_sign_flip", "derivative_of_a", "missing_1_over_m", "transpose_W"])
def test_planted_wrong_gradients_converge_at_rate_one(mutant: str) -> None:
    case = Case(Spec((3, 4, 4, 4), ("tanh", "sigmoid", "identity"), "mse"), batch=4, seed=9)
    params, X, Y = case.arrays()
    record = taylor_record(case, mutant, MUTANTS[mutant].gradients(case.spec.to_dict(), params, X, Y))
    assert record.failed, record.summary()
    failing = [b for b in record.blocks.values() if b["verdict"] == "fail"]
    assert failing and all(abs(b["rate"] - 1.0) < 0.3 for b in failing)


def test_the_record_reports_every_block_rate() -> None:
    case = Case(Spec((3, 4, 2), ("tanh", "identity"), "mse"), batch=3, seed=1)
    params, X, Y = case.arrays()
    record = taylor_record(case, "reference", gradients(case.spec, params, X, Y))
    assert not record.failed
    assert set(record.extra["rates"]) == set(case.spec.parameter_names)
    assert all(abs(rate - 2.0) < 0.3 for rate in record.extra["rates"].values())
