"""Term coverage: the generated cases must exercise every term, and losing a term must fail a test."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from oracles.subjects import Subject
from oracles.verdicts.compare import check_case
from property_tests.coverage import (
    TERM_NAMES,
    CoverageReport,
    CoverageWarning,
    measure,
    term_magnitudes,
    warn_if_uncovered,
)
from property_tests.mutation.catalogue import MUTANTS
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec

# Enough draws that a term hit by ~1 case in 50 (a kink site, a saturated unit) is still seen.
RUN_SIZE = 200


def draw_cases(strategy: st.SearchStrategy[Case], n: int) -> list[Case]:
    """``n`` cases from ``strategy``, reproducibly (the way a property test would see them)."""
    drawn: list[Case] = []

    @settings(
        max_examples=n,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn


def assert_every_term_covered(report: CoverageReport) -> None:
    assert report.complete, f"terms identically zero over {report.n_cases} cases: {report.uncovered}"


def test_the_default_strategy_exercises_every_term() -> None:
    report = measure(draw_cases(cases(), RUN_SIZE))
    assert_every_term_covered(report)
    assert warn_if_uncovered(report) == []


def test_forcing_square_layers_makes_the_coverage_test_fail() -> None:
    report = measure(draw_cases(cases(specs(square=True)), RUN_SIZE))
    assert "non_square_layer" in report.uncovered
    with pytest.raises(AssertionError, match="non_square_layer"):
        assert_every_term_covered(report)
    with pytest.warns(CoverageWarning, match="non_square_layer"):
        warn_if_uncovered(report)


def _killed(case: Case) -> bool:
    mutant = MUTANTS["transposed_gradient_buffer"]
    return any(r.failed for r in check_case(case, Subject(mutant.name, mutant.gradients), ["torch_autograd"]))


def test_forcing_square_layers_lets_the_transpose_mutant_survive_while_the_default_kills_it() -> None:
    quick = settings(max_examples=100, database=None, derandomize=True, deadline=None)
    found = find(cases(), _killed, settings=quick)
    assert found.spec.widths != tuple([found.spec.widths[0]] * len(found.spec.widths))
    with pytest.raises(NoSuchExample):
        find(cases(specs(square=True)), _killed, settings=quick)


def test_fixed_batch_and_one_example_runs_miss_the_batch_terms() -> None:
    report = measure(draw_cases(cases(max_batch=1), 60))
    assert "batch_beyond_first_example" in report.uncovered


@pytest.mark.parametrize(
    ("case", "vanishing", "present"),
    [
        (Case(Spec((2, 3, 2), ("tanh", "identity"), "mse"), batch=1), "batch_beyond_first_example", "non_square_layer"),
        (Case(Spec((3, 3, 3), ("tanh", "identity"), "mse"), batch=2), "non_square_layer", "batch_beyond_first_example"),
        (Case(Spec((2, 1), ("softmax",), "cce"), batch=3), "softmax_off_diagonal", "loss:cce"),
        (Case(Spec((2, 3), ("softmax",), "cce"), batch=3), "hidden_recursion", "softmax_off_diagonal"),
        (Case(Spec((2, 3), ("identity",), "mse"), batch=3), "output_derivative", "multi_unit_output"),
        (Case(Spec((2, 3), ("sigmoid",), "mse"), batch=3), "kink_site", "output_derivative"),
    ],
)
def test_each_term_vanishes_exactly_where_its_feature_is_missing(case: Case, vanishing: str, present: str) -> None:
    magnitudes = term_magnitudes(case)
    assert set(magnitudes) == set(TERM_NAMES)
    assert magnitudes[vanishing] == 0.0
    assert magnitudes[present] > 0.0


def test_a_kink_case_covers_the_kink_term() -> None:
    case = Case(Spec((3, 4, 2), ("relu", "identity"), "mse"), batch=3, seed=5, kinks=True)
    assert case.problem.kink_sites
    assert term_magnitudes(case)["kink_site"] >= 1.0


def test_an_empty_run_is_not_complete_coverage() -> None:
    assert not measure([]).complete
