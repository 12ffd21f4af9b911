"""Precision findings: right within the tolerance, less precise than float64 allows; ``--strict``."""

from __future__ import annotations

import numpy as np
import pytest

from oracles.subjects import load_subject, reference_subject
from oracles.verdicts.compare import check_case
from oracles.verdicts.precision import apply_strict, block_precision
from oracles.verdicts.rounding_scale import Bound
from oracles.verdicts.tolerances import tolerance_for
from property_tests.check import SubjectCheckFailed, check_subject
from reference_impl import case_from_index
from reports.cli.app import main

TEXTBOOK = "property_tests.corpus.correct.layer_loop:gradients"
CASE = case_from_index(1, 4)  # a stress case with saturated tanh and softplus layers


def test_textbook_derivatives_in_saturation_are_a_precision_finding_not_a_failure() -> None:
    records = check_case(CASE, load_subject(TEXTBOOK), ["torch_autograd", "sympy_exact"])
    assert records and not any(r.failed for r in records)
    found = [r for r in records if r.category == "precision"]
    assert {r.oracle for r in found} == {"torch_autograd", "sympy_exact"}
    extra = found[0].extra["precision"]
    assert extra["digits_lost"] > 3.6  # beyond rtol/u ≈ 4500 ulps of the best float64 answer
    assert "tanh" in extra["condition"] and "saturation" in extra["condition"]
    assert "keeps" in found[0].message and "digits" in found[0].message
    strict = apply_strict(found)
    assert all(r.failed and r.message.startswith("strict:") for r in strict)


def test_the_reference_has_no_precision_finding() -> None:
    records = check_case(CASE, reference_subject(), ["torch_autograd", "sympy_exact"])
    assert not [r.summary() for r in records if r.failed or r.category == "precision"]


def test_only_precise_oracles_measure_precision() -> None:
    oracle = np.array([1e-12, 1.0])
    subject = oracle + np.array([1e-16, 0.0])
    best = Bound(np.abs(oracle), np.zeros(2))
    found = block_precision(subject, oracle, tolerance_for("torch_autograd"), best)
    assert found is not None and found.index == (0,) and found.digits_lost > 3
    assert block_precision(subject, oracle, tolerance_for("finite_diff"), best) is None
    assert block_precision(oracle, oracle, tolerance_for("torch_autograd"), best) is None


def test_check_subject_passes_textbook_code_and_fails_it_only_when_strict() -> None:
    check_subject(load_subject(TEXTBOOK), losses=["mse"], stress=1.0, max_examples=8)
    with pytest.raises(SubjectCheckFailed, match="precision"):
        check_subject(load_subject(TEXTBOOK), losses=["mse"], stress=1.0, max_examples=20, strict=True)


def test_verify_exits_0_on_precision_and_1_under_strict(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["verify", TEXTBOOK, "--examples", "10", "--seed", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "precision:" in out and "--strict makes it one" in out
    assert main([*args, "--strict"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("diagnosis: right, but less precise than float64 allows")
