"""The diagnoser names planted defects and conventions, and stays silent on right subjects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from oracles.adapters import article
from oracles.diagnosis import conventions
from oracles.diagnosis.diagnose import Diagnosis, diagnose_subject
from oracles.diagnosis.family import Family
from oracles.subjects import Subject, reference_subject
from property_tests.mutation.catalogue import MUTANTS
from reference_impl import Case, Spec, gradients

# The foundation's catalogue: each must be named first, with its layer where it has one.
FOUNDATION = {
    "transpose_W": ("transpose", 3),
    "missing_1_over_m": ("batch_normalisation", None),
    "bias_wrong_axis": ("bias_axis", 3),
    "derivative_of_a": ("derivative_of_a", 2),
    "missing_output_derivative": ("output_derivative", 3),
    "scale_layer1": ("scale", 1),
    "bias_sign_flip": ("sign", 3),
    "float32_layer1": ("float32", 1),
}


def _keys(found: list[Diagnosis]) -> list[str]:
    return [d.key for d in found]


def test_the_reference_and_the_torch_oracle_have_no_diagnosis() -> None:
    assert diagnose_subject(reference_subject()) == []
    from oracles import torch_autograd

    assert diagnose_subject(Subject("torch", torch_autograd.gradients)) == []


@pytest.mark.parametrize("name", sorted(FOUNDATION))
def test_each_foundation_mutant_is_named_first_with_its_layer_and_formula(name: str) -> None:
    mutant = MUTANTS[name]
    key, layer = FOUNDATION[name]
    assert mutant.expected == key  # the catalogue and this test agree on the vocabulary
    found = diagnose_subject(Subject(name, mutant.gradients))
    assert found, f"{name}: nothing recognised"
    first = found[0]
    assert first.key == key, [d.line() for d in found]
    assert first.layer == layer
    assert first.formula and first.message.endswith(".")
    assert first.confidence >= 0.8


@pytest.mark.parametrize("name", sorted(set(MUTANTS) - set(FOUNDATION)))
def test_every_other_catalogued_mutant_is_recognised(name: str) -> None:
    """New mutants from the catalogue: named by their expected key (written generally, not per mutant)."""
    mutant = MUTANTS[name]
    if hasattr(mutant, "reset"):
        mutant.reset()
    found = diagnose_subject(Subject(name, mutant.gradients))
    if hasattr(mutant, "reset"):
        mutant.reset()
    assert mutant.expected in _keys(found)[:1], [d.line() for d in found]


def _times(factor_of: Any) -> Any:
    def subject(spec: dict[str, Any], params: Any, X: np.ndarray, Y: np.ndarray) -> Any:
        factor = factor_of(Spec.from_dict(spec), X.shape[1])
        return {k: factor * v for k, v in gradients(spec, params, X, Y).items()}

    return subject


@pytest.mark.parametrize(
    ("loss", "convention"),
    [
        ("mse", "half_sse"),
        ("mse", "half_mse"),
        ("mse", "mean_elements"),
        ("mse", "half_mean_elements"),
        ("half_sse", "mse"),
        ("half_sse", "sse"),
        ("bce", "mean_elements"),
        ("cce", "mean_elements"),
    ],
)
def test_a_subject_right_up_to_a_convention_gets_that_convention_named(loss: str, convention: str) -> None:
    def factor(spec: Spec, m: int) -> float:
        return conventions.factor(convention, spec, m) if spec.loss == loss else 1.0

    found = diagnose_subject(Subject(convention, _times(factor)), supports={"losses": [loss]})
    assert _keys(found) == [f"convention:{convention}"]
    assert f"--convention {convention}" in found[0].message


@pytest.mark.parametrize(("loss", "alias"), [("mse", "sse"), ("bce", "sum"), ("cce", "sum")])
def test_a_dropped_batch_mean_is_the_bug_even_though_it_is_also_a_convention(loss: str, alias: str) -> None:
    found = diagnose_subject(Subject("sum", _times(lambda spec, m: float(m))), supports={"losses": [loss]})
    assert _keys(found) == ["batch_normalisation"]
    assert f"--convention {alias}" in found[0].message


def test_missing_1_over_m_on_one_layer_names_that_layer() -> None:
    def subject(spec: dict[str, Any], params: Any, X: np.ndarray, Y: np.ndarray) -> Any:
        grads = gradients(spec, params, X, Y)
        return {k: v * X.shape[1] if k.endswith("2") else v for k, v in grads.items()}

    found = diagnose_subject(Subject("layer2", subject))
    assert (found[0].key, found[0].layer) == ("batch_normalisation", 2)
    assert "W^[2]" in found[0].formula and "b^[2]" in found[0].formula


def test_a_whole_gradient_with_the_wrong_sign_is_named() -> None:
    found = diagnose_subject(Subject("ascent", _times(lambda spec, m: -1.0)))
    assert _keys(found) == ["sign"]


def test_the_articles_listing_has_a_scalar_bias_and_the_cross_entropy_shortcut() -> None:
    found = diagnose_subject(Subject("article", article.gradients), supports=article.SUPPORTS)
    by_key = {d.key: d for d in found}
    assert by_key["bias_axis"].layer == 1
    assert "to one scalar" in by_key["bias_axis"].message
    assert set(by_key["bias_axis"].losses) == {"bce", "mse", "half_sse"}
    assert set(by_key["loss_gradient"].losses) == {"mse", "half_sse"}  # right δ only for bce


def test_given_cases_restrict_the_probes_to_their_family() -> None:
    case = Case(Spec((2, 3, 1), ("relu", "identity"), "mse"), batch=3, seed=1)
    found = diagnose_subject(Subject("t", MUTANTS["transpose_W"].gradients), [case])
    assert found and found[0].key == "transpose"
    assert set(found[0].losses) == {"mse"}


def test_hostile_subjects_are_diagnosed_by_their_protocol_fault() -> None:
    def hangs(spec: Any, params: Any, X: Any, Y: Any) -> Any:
        while True:
            pass

    found = diagnose_subject(Subject("hangs", hangs), supports=Family(losses=("mse",)), timeout=0.3)
    assert _keys(found) == ["protocol:timeout"]


def test_diagnosis_lines_name_key_layer_losses_and_formula() -> None:
    line = diagnose_subject(Subject("t", MUTANTS["transpose_W"].gradients))[0].line()
    assert line.startswith("transpose (layer 3)")
    assert "Right formula: δ^[2] = (W^[3])ᵀ δ^[3] ⊙ g'(z^[2])" in line
