"""Diagnoses on defect classes the catalogue never had (property_tests.corpus.unseen): the right headline,
on several probe seeds, and honest wording (protocol faults first, one line for the output's δ, regions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from oracles.diagnosis.diagnose import Diagnosis, declaration_for, diagnose_subject
from oracles.diagnosis.family import Family
from oracles.subjects import Subject
from property_tests.corpus import unseen
from reference_impl import Case, Spec, gradients

SEEDS = (0, 1, 2)


def _diagnose(fn: Callable[..., Any], seed: int, **options: Any) -> list[Diagnosis]:
    return diagnose_subject(Subject(getattr(fn, "__name__", "subject"), fn), rng_seed=seed, **options)


@pytest.mark.parametrize("seed", SEEDS)
def test_an_independent_right_implementation_gets_no_finding(seed: int) -> None:
    assert _diagnose(unseen.right, seed) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_a_stub_is_an_exception_on_every_case_not_a_numeric_defect(seed: int) -> None:
    found = _diagnose(unseen.stub, seed)
    assert [d.key for d in found] == ["protocol:exception"]
    assert "raises NotImplementedError on every case" in found[0].message


@pytest.mark.parametrize("seed", SEEDS)
def test_a_library_that_raises_on_softplus_gets_that_region_and_nothing_else(seed: int) -> None:
    found = _diagnose(unseen.no_softplus, seed)
    assert [d.key for d in found] == ["protocol:exception"]
    assert "raises AttributeError on every case where there is a softplus layer, and only there" in found[0].message


@pytest.mark.parametrize("seed", SEEDS)
def test_a_transpose_only_where_w2_is_square_is_named_at_layer_2(seed: int) -> None:
    first = _diagnose(unseen.transpose_where_square, seed)[0]
    assert (first.key, first.layer, first.kind) == ("transpose", 2, "defect")
    assert "happens to be square" in first.message and "reproduces all" in first.evidence


@pytest.mark.parametrize("seed", SEEDS)
def test_clipped_values_are_named_with_their_interval(seed: int) -> None:
    first = _diagnose(unseen.clipped, seed)[0]
    assert first.key == "clipped"
    assert "[-1, 1]" in first.message


@pytest.mark.parametrize("seed", SEEDS)
def test_a_bias_from_the_first_example_is_a_batch_defect_of_the_bias_with_the_bias_formula(seed: int) -> None:
    found = _diagnose(unseen.bias_first_example, seed)
    assert [d.key for d in found] == ["batch"]
    assert "∂L/∂b" in found[0].message and "first example" in found[0].message
    assert found[0].formula.startswith("∂L/∂b^[l]") and "W" not in found[0].formula


@pytest.mark.parametrize("seed", SEEDS)
def test_state_accumulated_across_calls_is_named_as_state_on_every_seed(seed: int) -> None:
    found = diagnose_subject(Subject("acc", unseen.Accumulating().gradients), rng_seed=seed)
    keys = [d.key for d in found]
    assert keys[0] == "protocol:nondeterminism" and "state" in keys
    assert all(d.kind == "protocol" for d in found)  # no numeric defect is read off stateful answers
    raised = next(d for d in found if "ValueError" in d.message)
    # (a (1, n) gradient still broadcasts into a (2, n) buffer, so "every such case" would overstate it)
    assert "where the layer widths differ from the first call's" in raised.message


@pytest.mark.parametrize("seed", SEEDS)
def test_cce_divided_by_the_class_count_is_one_normalisation_finding_for_cce_only(seed: int) -> None:
    found = _diagnose(unseen.cce_over_units, seed)
    assert [(d.key, d.losses) for d in found] == [("normalisation", ("cce",))]
    assert "1/n_L where cce has 1/m" in found[0].message


@pytest.mark.parametrize("seed", SEEDS)
def test_the_book_model_heads_with_its_defect_and_proposes_a_per_loss_declaration(seed: int) -> None:
    found = _diagnose(unseen.book_model, seed)
    first = found[0]
    assert (first.key, first.losses, first.kind) == ("target_handling", ("cce",), "defect")
    assert "soft" in first.message
    conventions = [d for d in found if d.kind == "convention"]
    assert [(d.key, set(d.losses)) for d in conventions] == [("convention:mean_elements", {"mse", "bce"})]
    assert "--convention mse=mean_elements,bce=mean_elements" in conventions[0].message
    assert declaration_for(found, Family().usable_losses) == "mse=mean_elements,bce=mean_elements"


def test_one_convention_on_every_loss_is_declared_by_its_bare_name() -> None:
    def mean_everywhere(spec: dict[str, Any], params: Any, X: np.ndarray, Y: np.ndarray) -> Any:
        return {k: v / Y.shape[0] for k, v in gradients(spec, params, X, Y).items()}

    found = _diagnose(mean_everywhere, 0, supports={"losses": ["mse", "bce", "cce"]})
    assert [d.key for d in found] == ["convention:mean_elements"]
    assert found[0].message.endswith("Declare it with --convention mean_elements.")


def test_an_unmodelled_defect_in_the_output_delta_is_unexplained_and_attributed_to_the_output_once() -> None:
    def cubed(spec: dict[str, Any], z: np.ndarray, a: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return (a - Y) ** 3 / Y.shape[1]

    def subject(spec: dict[str, Any], params: Any, X: np.ndarray, Y: np.ndarray) -> Any:
        return unseen.backprop(spec, params, X, Y, delta_out=cubed)

    found = _diagnose(subject, 0, supports={"losses": ["half_sse"], "activations": ["tanh", "identity"]})
    assert [d.key for d in found] == ["unexplained"]
    message = found[0].message
    assert "at the output is wrong, and every layer below follows from it correctly" in message
    assert found[0].layer == 3 and found[0].formula.startswith("δ^[L]")


def test_an_unexplained_recursion_defect_names_the_layer_where_delta_first_goes_wrong() -> None:
    def carry(layer: int, W: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return W.T @ delta + (0.5 * delta.sum() if layer == 3 else 0.0)

    def subject(spec: dict[str, Any], params: Any, X: np.ndarray, Y: np.ndarray) -> Any:
        return unseen.backprop(spec, params, X, Y, carry=carry)

    found = _diagnose(subject, 0, supports={"losses": ["mse"], "max_depth": 3})
    assert [d.key for d in found] == ["unexplained"]
    assert "the recursion into layer 2 is wrong" in found[0].message
    assert "Wrong exactly when" in found[0].message  # only nets with three layers have that step


def test_given_failing_cases_join_the_evidence() -> None:
    case = Case(Spec((3, 4, 4, 2), ("tanh", "tanh", "identity"), "mse"), batch=3, seed=5)
    found = diagnose_subject(Subject("t", unseen.transpose_where_square), [case])
    assert found[0].key == "transpose" and found[0].losses == ("mse",)
