"""Unstable subjects: NaN/inf where the truth is finite is ``unstable``, with the operation named."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from oracles.diagnosis.family import Family, family_cases
from oracles.diagnosis.instability import explain_instability
from oracles.hazards import case_hazards
from oracles.subjects import Subject, call_subject, load_subject
from oracles.verdicts.compare import check_case
from property_tests.check import SubjectCheckFailed, check_subject
from reference_impl import Case, Spec, case_from_index, gradients

TAME = Case(Spec((3, 4, 2), ("tanh", "sigmoid"), "bce"), batch=4, seed=1)
STRESSED = case_from_index(1, 9)  # bce with a sigmoid output that rounds to exactly 0 and 1


def _nan(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    return {k: v * np.nan for k, v in gradients(spec, params, X, Y).items()}


def _raising(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    with np.errstate(over="raise"):
        np.exp(np.abs(params["W1"]).max() + 1e3)  # e^z of a saturated layer, written naively
    return gradients(spec, params, X, Y)


def test_the_hazards_are_read_from_the_case() -> None:
    assert case_hazards(TAME) == []
    kinds = {(h.activation, h.kind) for h in case_hazards(STRESSED)}
    assert ("sigmoid", "rounds_to_one") in kinds and ("sigmoid", "exp_overflow") in kinds


def test_nan_is_unstable_where_float64_has_hazards_and_nonfinite_elsewhere() -> None:
    subject = Subject("nan", _nan)
    tame = call_subject(subject, TAME).failure
    assert tame is not None and tame.category == "nonfinite"
    stressed = call_subject(subject, STRESSED).failure
    assert stressed is not None and stressed.category == "unstable"
    assert "exact gradient is finite" in stressed.message and "rounds to exactly" in stressed.message


def test_an_overflow_exception_is_unstable_too() -> None:
    failure = call_subject(Subject("raising", _raising), STRESSED).failure
    assert failure is not None and failure.category == "unstable" and "FloatingPointError" in failure.message


def test_warnings_go_into_the_record_not_the_terminal() -> None:
    # The pytest run turns warnings into errors: a warning that escaped would fail this test.
    subject = load_subject("property_tests.corpus.correct.logistic_exp:gradients")
    records = check_case(STRESSED, subject, ["torch_autograd"])
    assert records and not any(r.failed for r in records)
    warned = records[0].extra["subject_warnings"]
    assert any("overflow encountered in exp" in w for w in warned)


EXPECTED = {
    "naive_softmax": "e^z overflows in the softmax",
    "bce_divide": "rounds to exactly 1",
    "course_dA": "rounds to exactly 1",
    "exp_sigmoid": "e^z overflows for z > 709.78 (σ written e^z/(1 + e^z)",
    "naive_softplus": "softplus written log(1 + e^z)",
    "exp_tanh": "(e^z − e^(−z))/(e^z + e^(−z))",
    "cce_unfused": "a probability rounds to exactly 0",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_recogniser_names_each_unstable_operation_and_its_stable_formula(name: str) -> None:
    subject = load_subject(f"property_tests.corpus.unstable.{name}:gradients")
    unstable = [
        c for c in family_cases(Family(), 0, 25) if (f := call_subject(subject, c).failure) and f.category == "unstable"
    ]
    assert unstable
    found = explain_instability(subject, unstable[0], Family())
    assert any(EXPECTED[name] in i.operation and i.confidence == 1.0 for i in found), [i.line() for i in found]
    assert all(i.formula for i in found)


def test_a_family_without_room_for_probes_still_gets_the_hazard_named() -> None:
    subject = load_subject("property_tests.corpus.unstable.bce_divide:gradients")
    family = Family.from_supports({"min_depth": 3, "max_depth": 3, "losses": ["bce"]})
    case = next(
        c for c in family_cases(family, 0, 25) if (f := call_subject(subject, c).failure) and f.category == "unstable"
    )
    found = explain_instability(subject, case, Family.from_supports({"losses": ["mse"]}))
    assert len(found) == 1 and found[0].confidence < 1.0 and "rounds to exactly" in found[0].operation


def test_check_subject_reports_an_unstable_softmax_with_the_fix() -> None:
    subject = load_subject("property_tests.corpus.unstable.naive_softmax:gradients")
    with pytest.raises(SubjectCheckFailed) as failure:
        check_subject(subject, losses=["cce"], stress=1.0, max_examples=10)
    assert failure.value.record.category == "unstable"
    assert "subtract the column maximum" in str(failure.value)
