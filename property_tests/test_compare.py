"""The comparer itself: the formula bites at the right size, localises, and handles broken subjects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given

from oracles.registry import Oracle, OracleOutput
from oracles.subjects import Subject, reference_subject
from oracles.verdicts.blocks import compare_block
from oracles.verdicts.compare import check_case, projection_directions
from oracles.verdicts.tolerances import Tolerance, entry_tolerance, tolerance_for
from property_tests.numeric_helpers import perturbed_subject
from property_tests.strategies import cases
from reference_impl import Case, Spec, gradients, run

CASE = Case(Spec((3, 5, 4, 2), ("tanh", "sigmoid", "identity"), "mse"), batch=4, seed=9)


@pytest.mark.parametrize("name", ["W1", "b2", "W3"])
def test_a_1e_minus_9_relative_error_in_one_entry_is_caught_and_localised(name: str) -> None:
    record = check_case(CASE, perturbed_subject(name, 1e-9), ["torch_autograd"])[0]
    assert record.failed and record.category == "mismatch"
    assert record.parameter == name
    assert [n for n, b in record.blocks.items() if b["verdict"] == "fail"] == [name]
    assert record.layer == int(name[1:])


def test_a_1e_minus_14_relative_error_is_below_the_float64_floor() -> None:
    record = check_case(CASE, perturbed_subject("W1", 1e-14), ["torch_autograd"])[0]
    assert not record.failed


def test_the_tolerance_formula_scales_with_the_block() -> None:
    oracle = np.array([[1.0, 1e-6], [0.0, -2.0]])
    allowed = entry_tolerance(oracle, Tolerance(1e-12, 1e-300))
    np.testing.assert_allclose(allowed, np.full((2, 2), 2e-12 + 1e-300))
    block, _ = compare_block("W1", oracle + np.array([[0, 0], [3e-12, 0]]), oracle, Tolerance(1e-12))
    assert not block.passed and block.index == (1, 0)


@pytest.mark.parametrize(
    ("bad", "category"),
    [
        (lambda s, p, X, Y: (_ for _ in ()).throw(RuntimeError("boom")), "exception"),
        (lambda s, p, X, Y: {k: v for k, v in gradients(s, p, X, Y).items() if k != "b1"}, "missing"),
        (lambda s, p, X, Y: {k: v.T for k, v in gradients(s, p, X, Y).items()}, "shape"),
        (lambda s, p, X, Y: {k: v * np.nan for k, v in gradients(s, p, X, Y).items()}, "nonfinite"),
        (lambda s, p, X, Y: 3.0, "shape"),
        (lambda s, p, X, Y: {k: v.astype(str) for k, v in gradients(s, p, X, Y).items()}, "dtype"),
    ],
)
def test_protocol_failures_are_categorised_not_raised(bad: Any, category: str) -> None:
    records = check_case(CASE, Subject("broken", bad), ["torch_autograd"])
    assert [r.category for r in records] == [category]
    assert records[0].failed and records[0].check == "protocol"


def _directional_oracle(noise: float) -> Oracle:
    calls = {"full": 0}

    def evaluate(spec: Spec, params: dict, X: np.ndarray, Y: np.ndarray) -> OracleOutput:
        calls["full"] += 1
        return OracleOutput(grads=run(spec, params, X, Y)[1].grads)

    def directional(spec: Spec, params: dict, X: np.ndarray, Y: np.ndarray, directions: list) -> np.ndarray:
        grads = run(spec, params, X, Y)[1].grads
        return np.array([sum(float(np.sum(grads[k] * v[k])) for k in v) * (1 + noise) for v in directions])

    oracle = Oracle("reference", evaluate, "numeric", directional=directional)
    object.__setattr__(oracle, "_calls", calls)
    return oracle


def test_projection_first_then_localise_only_on_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    from oracles.verdicts import compare

    oracle = _directional_oracle(0.0)
    monkeypatch.setattr(compare, "oracles_for_case", lambda case, names=None: [oracle])
    passing = compare.check_case(CASE, reference_subject())
    assert [r.check for r in passing] == ["projection"] and not passing[0].failed
    assert oracle._calls["full"] == 0  # type: ignore[attr-defined]
    failing = compare.check_case(CASE, perturbed_subject("W2", 1e-6))
    assert [r.check for r in failing] == ["gradient"] and failing[0].parameter == "W2"
    assert oracle._calls["full"] == 1  # type: ignore[attr-defined]


@given(cases())
def test_projection_directions_are_random_and_never_all_ones(case: Case) -> None:
    for direction in projection_directions(case):
        values = np.concatenate([v.ravel() for v in direction.values()])
        assert np.unique(values).size == values.size


def test_unknown_oracle_tolerance_falls_back_to_the_float64_floor() -> None:
    assert tolerance_for("someone_else").rtol == 1e-12
