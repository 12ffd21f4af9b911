"""The Taylor-remainder rate: ≈ 2 for the right gradient, ≈ 1 for a wrong one, without a tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from oracles.verdicts.taylor import taylor_record, taylor_test
from property_tests.mutation.catalogue import MUTANTS
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, gradients

SMOOTH = ("identity", "sigmoid", "tanh", "softplus", "softmax")


@settings(max_examples=25)
@given(cases(specs(activations=SMOOTH, max_depth=3), param_scales=(0.5, 1.0), data_scales=(0.5, 1.0)))
def test_the_right_gradient_converges_at_rate_two(case: Case) -> None:
    params, X, Y = case.arrays()
    grads = gradients(case.spec, params, X, Y)
    results = taylor_test(case.spec, params, X, Y, grads, np.random.default_rng(case.seed))
    for result in results.values():
        assert result.verdict == "pass", (result, repr(case))
        if result.rate is not None:
            assert result.rate > 1.7


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
