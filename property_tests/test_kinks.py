"""Kinks are bracketed by one-sided derivatives, recorded as kinks, and never silently dropped."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

from oracles.subjects import Subject
from oracles.verdicts.compare import check_case
from property_tests.numeric_helpers import full_records
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, gradients
from reference_impl.activations import get_activation
from reference_impl.mlp import forward, output_delta
from reference_impl.spec import as_spec

KINKED = Case(Spec((3, 6, 5, 2), ("relu", "leaky_relu", "identity"), "mse"), batch=4, seed=3, kinks=True)
NUMERIC = ["finite_diff", "richardson", "complex_step"]


def _other_convention(spec: dict[str, Any], params: dict, X: np.ndarray, Y: np.ndarray) -> dict:
    """The reference's δ recursion with relu'(0) = leaky_relu'(0) = 1: legitimate, differs only at kinks."""
    s = as_spec(spec)
    tape = forward(s, params, X)
    delta = output_delta(s, tape, Y)
    out: dict[str, np.ndarray] = {}
    for layer in range(s.depth, 0, -1):
        out[f"W{layer}"] = delta @ tape.a(layer - 1).T
        out[f"b{layer}"] = delta.sum(axis=1, keepdims=True)
        if layer > 1:
            name = s.activations[layer - 2]
            z = tape.z(layer - 1)
            derivative = get_activation(name).derivative
            assert derivative is not None
            slope = np.where(z == 0, 1.0, derivative(z)) if name in ("relu", "leaky_relu") else derivative(z)
            delta = (params[f"W{layer}"].T @ delta) * slope
    return out


def test_the_case_really_has_kinks_and_each_oracle_reports_them() -> None:
    assert KINKED.problem.kink_sites
    for name in NUMERIC:
        record = full_records(KINKED, name)[0]
        assert record.verdict == "kink" and record.category == "kink", record.explain()
        assert record.extra["n_kink_entries"] == len(record.extra["kinks"]) > 0
        assert all(k["inside"] and k["lower"] <= k["upper"] for k in record.extra["kinks"])


@pytest.mark.parametrize("oracle", NUMERIC)
def test_the_other_convention_is_a_kink_not_a_failure(oracle: str) -> None:
    subject = Subject("relu'(0)=1", _other_convention)
    other = _other_convention(KINKED.spec.to_dict(), *KINKED.arrays())
    conventional = gradients(KINKED.spec, *KINKED.arrays())
    differs = any(not np.array_equal(other[k], conventional[k]) for k in other)
    assert differs, "the convention must matter on this case, or the test proves nothing"
    records = check_case(KINKED, subject, [oracle])
    assert not any(r.failed for r in records), "\n".join(r.explain() for r in records)
    assert any(r.verdict == "kink" for r in records)


@pytest.mark.parametrize("oracle", NUMERIC)
def test_a_wrong_value_at_a_kink_entry_fails(oracle: str) -> None:
    params, X, Y = KINKED.arrays()
    record = full_records(KINKED, oracle)[0]
    kink = record.extra["kinks"][0]
    grads = gradients(KINKED.spec, params, X, Y)
    spread = abs(kink["upper"] - kink["lower"])
    grads[kink["parameter"]][tuple(kink["index"])] = kink["upper"] + 10 * spread + 1.0
    wrong = full_records(KINKED, oracle, grads)[0]
    assert wrong.failed and "kink" in wrong.message, wrong.explain()


@settings(max_examples=25)
@given(cases(specs(activations=("relu", "leaky_relu", "identity", "tanh"), max_depth=4), kinks=True))
def test_the_reference_is_never_failed_at_kinks(case: Case) -> None:
    for name in NUMERIC:
        for record in full_records(case, name):
            assert not record.failed, record.explain()
