"""Planted bugs: every one must be caught by the torch comparison (a checker that never failed is untested)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis.errors import NoSuchExample

from oracles.compare import check_case
from oracles.subjects import Subject
from property_tests.mutants import MUTANTS, Mutant, mutated_gradients
from property_tests.strategies import cases
from reference_impl import Case, gradients


@given(cases())
def test_unmutated_copy_equals_the_reference(case: Case) -> None:
    params, X, Y = case.arrays()
    ours = mutated_gradients(case.spec.to_dict(), params, X, Y, None)
    reference = gradients(case.spec.to_dict(), params, X, Y)
    for name in reference:
        np.testing.assert_array_equal(ours[name], reference[name])


def _caught(mutant: Mutant, case: Case) -> bool:
    records = check_case(case, Subject(mutant.name, mutant.gradients), ["torch_autograd"])
    return any(r.failed for r in records)


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_planted_bug_is_caught_by_the_torch_comparison(name: str) -> None:
    mutant = MUTANTS[name]
    try:
        smallest = find(
            cases(kinks=False), lambda case: _caught(mutant, case), settings=settings(max_examples=300, database=None)
        )
    except NoSuchExample:
        pytest.fail(f"mutant {name!r} ({mutant.description}) survived 300 random cases")
    # Hypothesis shrinks to the smallest exposing architecture: it must really fail there.
    assert _caught(mutant, smallest)
