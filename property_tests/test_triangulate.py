"""Triangulation: noise floors decide who can see an error; one wrong oracle is named, not obeyed."""

from __future__ import annotations

import pytest

from oracles.numeric import finite_diff
from oracles.registry import all_oracles
from oracles.subjects import reference_subject
from oracles.verdicts.triangulate import odd_one_out, triangulate
from property_tests.numeric_helpers import perturbed_subject
from reference_impl import Case, Spec

CASE = Case(Spec((3, 5, 4, 2), ("tanh", "sigmoid", "identity"), "mse"), batch=4, seed=9)
PRECISE = [n for n in ("sympy_exact", "complex_step", "richardson") if n in all_oracles()]


@pytest.mark.parametrize("block", ["W1", "b2", "W3"])
def test_a_1e_minus_9_error_is_caught_by_precise_oracles_and_below_the_central_difference_floor(block: str) -> None:
    subject = perturbed_subject(block, 1e-9)
    result = triangulate(CASE, subject, ["finite_diff", "torch_autograd", *PRECISE])
    by_oracle = {r.oracle: r for r in result.records if r.check == "gradient"}
    for name in [*PRECISE, "torch_autograd"]:
        assert by_oracle[name].failed and by_oracle[name].parameter == block, by_oracle[name].explain()
    fd = by_oracle["finite_diff"]
    assert not fd.failed and fd.extra["below_noise_floor"] is True
    assert "noise floor" in fd.message
    assert result.odd_one_out == subject.name


def test_a_wrong_oracle_is_named_the_odd_one_out_and_the_subject_is_not_blamed() -> None:
    planted = finite_diff.make_oracle(relative_step=1e-1)
    result = triangulate(CASE, reference_subject(), [planted, "torch_autograd", *PRECISE])
    assert result.odd_one_out == "finite_diff"
    assert all(pair[0] == "finite_diff" or pair[1] == "finite_diff" for pair in result.disagreeing_pairs())
    assert not any(r.failed for r in result.records)
    skipped = [r for r in result.records if r.oracle == "finite_diff"]
    assert skipped and all(r.verdict == "skip" and "odd one out" in r.message for r in skipped)
    assert "odd one out: finite_diff" in result.table()


def test_all_agree_means_no_odd_one_out() -> None:
    result = triangulate(CASE, reference_subject())
    assert result.odd_one_out is None and not result.disagreeing_pairs()
    assert all(all(row) for row in result.agreement)
    assert result.to_dict()["participants"][0] == "reference"


def test_odd_one_out_rule() -> None:
    names = ["s", "a", "b", "c"]
    agree = [[0.0] * 4 for _ in names]
    assert odd_one_out(names, agree) is None
    one_pair = [row[:] for row in agree]
    one_pair[0][1] = one_pair[1][0] = 5.0
    assert odd_one_out(names, one_pair) is None  # a single disagreement cannot say who is wrong
    star = [row[:] for row in agree]
    for j in (1, 2, 3):
        star[2][j if j != 2 else 0] = star[j if j != 2 else 0][2] = 5.0
    assert odd_one_out(names, star) == "b"
    split = [row[:] for row in star]
    split[0][1] = split[1][0] = 5.0
    assert odd_one_out(names, split) is None  # two independent disagreements: no single culprit
