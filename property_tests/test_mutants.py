"""Planted bugs: every one must be caught (a checker that never failed is untested)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis.errors import NoSuchExample

from oracles.subjects import Subject
from oracles.verdicts.compare import check_case
from property_tests.mutation.catalogue import MUTANTS, STATEFUL, Mutant, mutated_backward, mutated_gradients
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, gradients, run

# The first catalogue; other checks (diagnosis, planted-bug tests) rely on these names and keys.
ORIGINAL: dict[str, str] = {
    "transpose_W": "transpose",
    "missing_1_over_m": "batch_normalisation",
    "bias_wrong_axis": "bias_axis",
    "derivative_of_a": "derivative_of_a",
    "missing_output_derivative": "output_derivative",
    "scale_layer1": "scale",
    "bias_sign_flip": "sign",
    "float32_layer1": "float32",
}
KINK_CASE = Case(Spec((3, 4, 2), ("relu", "identity"), "mse"), batch=3, seed=5, kinks=True)


@given(cases())
def test_unmutated_copy_equals_the_reference(case: Case) -> None:
    params, X, Y = case.arrays()
    ours, our_deltas = mutated_backward(case.spec.to_dict(), params, X, Y, None)
    _, backward, _ = run(case.spec, params, X, Y)
    for name, value in backward.grads.items():
        np.testing.assert_array_equal(ours[name], value)
    for ours_delta, delta in zip(our_deltas, backward.deltas, strict=True):
        np.testing.assert_array_equal(ours_delta, delta)


def test_the_catalogue_has_at_least_25_described_mutants_and_keeps_the_original_eight() -> None:
    assert len(MUTANTS) >= 25
    for name, mutant in MUTANTS.items():
        assert mutant.name == name and mutant.expected and mutant.kind in ("bug", "kink")
        assert mutant.description and "\n" not in mutant.description
    assert {name: MUTANTS[name].expected for name in ORIGINAL} == ORIGINAL
    assert [m.name for m in MUTANTS.values() if m.kind == "kink"] == ["relu_prime_at_zero_one"]


def _caught(mutant: Mutant, case: Case) -> bool:
    mutant.reset()
    records = check_case(case, Subject(mutant.name, mutant.gradients), ["torch_autograd"])
    return any(r.failed for r in records)


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_every_original_planted_bug_is_caught_by_the_torch_comparison(name: str) -> None:
    mutant = MUTANTS[name]
    try:
        smallest = find(
            cases(kinks=False), lambda case: _caught(mutant, case), settings=settings(max_examples=300, database=None)
        )
    except NoSuchExample:
        pytest.fail(f"mutant {name!r} ({mutant.description}) survived 300 random cases")
    # Hypothesis shrinks to the smallest exposing architecture: it must really fail there.
    assert _caught(mutant, smallest)


@given(cases(kinks=False))
@settings(max_examples=40)
def test_the_relu_convention_mutant_is_the_reference_away_from_kinks(case: Case) -> None:
    params, X, Y = case.arrays()
    ours = MUTANTS["relu_prime_at_zero_one"].gradients(case.spec.to_dict(), params, X, Y)
    reference = gradients(case.spec.to_dict(), params, X, Y)
    for name, value in reference.items():
        np.testing.assert_array_equal(ours[name], value)


def test_the_relu_convention_mutant_differs_exactly_at_a_kink() -> None:
    assert KINK_CASE.problem.kink_sites, "the case must place a pre-activation on the kink"
    params, X, Y = KINK_CASE.arrays()
    ours = MUTANTS["relu_prime_at_zero_one"].gradients(KINK_CASE.spec.to_dict(), params, X, Y)
    reference = gradients(KINK_CASE.spec.to_dict(), params, X, Y)
    assert any(not np.array_equal(ours[n], reference[n]) for n in reference)


def test_the_transposed_buffer_is_right_on_square_layers_and_raises_on_non_square_ones() -> None:
    mutant = MUTANTS["transposed_gradient_buffer"]
    square = Case(Spec((3, 3, 3), ("tanh", "identity"), "mse"), batch=2, seed=1)
    params, X, Y = square.arrays()
    ours, reference = mutant.gradients(square.spec.to_dict(), params, X, Y), gradients(square.spec, params, X, Y)
    assert all(np.array_equal(ours[n], reference[n]) for n in reference)
    wide = Case(Spec((3, 4, 3), ("tanh", "identity"), "mse"), batch=2, seed=1)
    with pytest.raises(ValueError, match="broadcast"):
        mutant.gradients(wide.spec.to_dict(), *wide.arrays())


def test_accumulating_state_adds_every_call_and_reset_forgets_it() -> None:
    mutant = MUTANTS["accumulates_across_calls"]
    mutant.reset()
    case = Case(Spec((2, 3, 2), ("tanh", "identity"), "mse"), batch=2, seed=3)
    first = mutant.gradients(case.spec.to_dict(), *case.arrays())
    second = mutant.gradients(case.spec.to_dict(), *case.arrays())
    np.testing.assert_allclose(second["W1"], 2 * first["W1"])
    mutant.reset()
    np.testing.assert_array_equal(mutant.gradients(case.spec.to_dict(), *case.arrays())["W1"], first["W1"])
    # Without a state argument the function form is pure.
    again = mutated_gradients(case.spec.to_dict(), *case.arrays(), "accumulates_across_calls")
    np.testing.assert_array_equal(again["W1"], first["W1"])
    mutant.reset()


def test_a_stale_forward_pass_gives_the_previous_values_gradients() -> None:
    mutant = MUTANTS["stale_forward"]
    mutant.reset()
    a = Case(Spec((2, 3, 2), ("tanh", "identity"), "mse"), batch=2, seed=3)
    b = Case(a.spec, batch=2, seed=4)
    mutant.gradients(a.spec.to_dict(), *a.arrays())
    stale = mutant.gradients(b.spec.to_dict(), *b.arrays())
    assert not np.allclose(stale["W1"], gradients(b.spec, *b.arrays())["W1"])
    mutant.reset()
    assert set(STATEFUL) == {"accumulates_across_calls", "stale_forward"}


def test_the_in_place_training_step_changes_the_callers_params() -> None:
    case = Case(Spec((2, 3, 2), ("tanh", "identity"), "mse"), batch=2, seed=3)
    params, X, Y = case.arrays()
    MUTANTS["mutates_inputs"].gradients(case.spec.to_dict(), params, X, Y)
    assert not np.array_equal(params["W1"], case.params["W1"])


@pytest.mark.parametrize(
    ("name", "spec", "batch"),
    [
        ("first_example_only", Spec((2, 3, 2), ("tanh", "identity"), "mse"), 1),
        ("delta_averaged_over_batch", Spec((2, 3, 2), ("tanh", "identity"), "mse"), 1),
        ("bias_mean", Spec((2, 3, 2), ("tanh", "identity"), "mse"), 1),
        ("bias_to_scalar", Spec((2, 1, 1), ("tanh", "identity"), "mse"), 4),
        ("softmax_diagonal_only", Spec((2, 3, 1), ("tanh", "softmax"), "cce"), 3),
        ("hidden_derivative_missing", Spec((2, 3, 2), ("identity", "tanh"), "mse"), 3),
    ],
)
def test_batch_and_width_bugs_vanish_where_their_term_does(name: str, spec: Spec, batch: int) -> None:
    """Each of these needs a term (m > 1, n_l > 1, a nonlinear hidden layer) that this architecture lacks."""
    case = Case(spec, batch=batch, seed=2)
    params, X, Y = case.arrays()
    ours = MUTANTS[name].gradients(spec.to_dict(), params, X, Y)
    reference = gradients(spec, params, X, Y)
    for block, value in reference.items():
        np.testing.assert_allclose(ours[block], value, rtol=1e-14, atol=1e-300)


def test_square_strategy_really_draws_square_networks() -> None:
    drawn: list[Spec] = []

    @settings(max_examples=20, database=None, derandomize=True)
    @given(specs(square=True))
    def collect(spec: Spec) -> None:
        drawn.append(spec)

    collect()
    assert drawn and all(len(set(s.widths)) == 1 for s in drawn)
