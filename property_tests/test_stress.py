"""The stress regime: which cases, what they contain, and that the truth there is finite and the
reference exact (held to the exact oracle and the complex step, entry by entry)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from oracles.diagnosis.family import Family, family_cases
from oracles.hazards import LOG_MAX
from oracles.registry import get_oracle
from oracles.subjects import reference_subject
from oracles.verdicts.compare import check_case
from property_tests.strategies import cases
from reference_impl import Case, Spec, case_from_index, forward, gradients
from reference_impl.stress import SATURABLE, STRESS_SHARE, is_stress_index


@pytest.mark.parametrize("share", [0.0, 0.1, 0.2, 0.25, 1 / 3, 1.0])
def test_stress_cases_are_an_exact_share_of_every_prefix(share: float) -> None:
    for n in (1, 4, 5, 25, 300):
        assert sum(is_stress_index(i, share) for i in range(n)) == math.floor(n * share + 1e-9)


def test_ordinary_cases_do_not_depend_on_the_share() -> None:
    for index in range(40):
        if not is_stress_index(index, STRESS_SHARE):
            assert case_from_index(3, index) == case_from_index(3, index, 0.0)
    ordinary = family_cases(Family(), 7, 25, 0.0)
    stressed = family_cases(Family(), 7, 25)
    assert [c for c in stressed if not c.stress] == [c for c, s in zip(ordinary, stressed, strict=True) if not s.stress]


def test_a_stress_case_is_a_pure_function_of_seed_and_index_and_its_repr_pastes() -> None:
    case = case_from_index(3, 4)
    assert case.stress and case.id == "3-000004" and case == case_from_index(3, 4)
    pasted = eval(repr(case), {"Case": Case, "Spec": Spec})
    assert pasted == case
    for (name, value), again in zip(case.params.items(), pasted.params.values(), strict=True):
        np.testing.assert_array_equal(value, again, err_msg=name)
    np.testing.assert_array_equal(case.X, pasted.X)


def _stress_cases() -> list[Case]:
    return [c for seed in range(3) for c in family_cases(Family(), seed, 25) if c.stress]


def test_every_stressed_layer_reaches_float64_hazards_within_the_stated_range() -> None:
    for case in _stress_cases():
        params, X, Y = case.arrays()
        tape = forward(case.spec, params, X)
        for layer, name in enumerate(case.spec.activations, start=1):
            z = tape.z(layer)
            assert np.abs(z).max() <= 2100.0, (layer, repr(case))
            if name in SATURABLE or name == "softmax":
                # One unit per such layer passes e^z's overflow: every naive exponential formula breaks.
                assert np.abs(z).max() > LOG_MAX, (layer, name, repr(case))
        if case.spec.loss == "bce":
            a = tape.a(case.spec.depth)
            assert np.any(a == 1.0) or np.any(a == 0.0), repr(case)
        assert all(np.all(np.isfinite(g)) for g in gradients(case.spec, params, X, Y).values())


def test_verify_stress_cases_take_every_loss_and_saturable_activation_in_turn() -> None:
    for seed in range(3):
        stressed = [c for c in family_cases(Family(), seed, 25) if c.stress]
        assert len(stressed) == 5
        assert {c.spec.loss for c in stressed} == {"mse", "half_sse", "bce", "cce"}
        assert set(SATURABLE) <= {a for c in stressed for a in c.spec.activations}
        assert all(c.batch >= 16 for c in stressed)


STRESS_SAMPLE = [c for c in _stress_cases()[:5] if c.spec.n_parameters <= 200] + [case_from_index(1, 4)]


@pytest.mark.parametrize("case", STRESS_SAMPLE, ids=lambda c: c.id)
def test_the_reference_is_as_good_as_float64_allows_on_stress_cases(case: Case) -> None:
    # Exact (200-bit) and complex-step derivatives of the same float64 inputs: the truth is finite, and the
    # reference matches it entry by entry within the *best* float64 bound (no precision finding either).
    names = [n for n in ("sympy_exact", "complex_step", "torch_autograd") if get_oracle(n).supports_case(case)]
    assert "sympy_exact" in names
    records = check_case(case, reference_subject(), names)
    assert {r.oracle for r in records} == set(names)
    assert not [r.summary() for r in records if r.failed or r.category == "precision"]


def test_difference_oracles_sit_out_stress_cases_with_their_reason() -> None:
    case = case_from_index(1, 4)
    for name in ("finite_diff", "richardson"):
        oracle = get_oracle(name)
        assert oracle.supports(case.spec) and not oracle.supports_case(case)
        assert "stress" in (oracle.why_unsupported_case(case) or "")
    assert get_oracle("complex_step").supports_case(case)


def test_stress_and_kinks_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        Case(Spec((2, 2), ("relu",), "mse"), kinks=True, stress=True)


@settings(max_examples=15)
@given(cases(stress=1.0))
def test_the_strategy_draws_stress_cases_at_the_share_asked(case: Case) -> None:
    assert case.stress and case.batch >= 16 and not case.kinks


@settings(max_examples=15)
@given(cases())
def test_the_public_strategy_has_no_stress_unless_asked(case: Case) -> None:
    assert not case.stress
