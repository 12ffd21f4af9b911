"""Real implementations nobody here wrote, under the oracle: scikit-learn, HIPS autograd, the article."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings

from oracles.adapters import article, hips_autograd, sklearn_mlp
from oracles.diagnosis import conventions
from oracles.diagnosis.diagnose import diagnose_subject
from oracles.diagnosis.family import Family, family_cases
from oracles.subjects import Subject
from oracles.verdicts.compare import check_case
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, loss
from reports.cli.verify import verify_subject

pytest.importorskip("sklearn")


def _failed(subject: Subject, case: Case) -> list[str]:
    return [r.summary() for r in check_case(case, subject, ["torch_autograd"]) if r.failed]


# --- scikit-learn -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["classifier", "classifier_logistic"])
def test_sklearn_classifiers_are_right_for_bce_and_cce(target: str) -> None:
    wrapped = getattr(sklearn_mlp, target)
    subject = Subject(target, wrapped.gradients)
    for case in family_cases(Family.from_supports(wrapped.SUPPORTS), seed=3, count=12):
        assert not _failed(subject, case), case


@pytest.mark.parametrize("target", ["regressor", "regressor_relu"])
def test_sklearn_regressors_use_the_half_mse_convention(target: str) -> None:
    wrapped = getattr(sklearn_mlp, target)
    subject = Subject(target, wrapped.gradients)
    found = diagnose_subject(subject, supports=wrapped.SUPPORTS)
    assert [d.key for d in found] == ["convention:half_mse"]
    # Declared, the convention makes every case pass: the calculus is right, only the constant differs.
    family = Family.from_supports(wrapped.SUPPORTS)
    drawn = family_cases(family, seed=5, count=8)
    assert verify_subject(subject, drawn).failing_cases  # undeclared: wrong by the factor ½
    assert not verify_subject(subject, drawn, convention="half_mse").failing_cases


def test_sklearn_squared_error_gradient_is_not_the_derivative_of_its_own_reported_loss() -> None:
    """With several outputs scikit-learn reports ½·mean over *all* entries but differentiates ½·(1/m)·Σ."""
    spec = Spec((3, 4, 2), ("tanh", "identity"), "mse")
    params, X, Y = Case(spec, batch=6, seed=11).arrays()
    reported = sklearn_mlp.sklearn_loss(spec.to_dict(), params, X, Y)
    n_out, m = spec.widths[-1], X.shape[1]
    assert reported == pytest.approx(loss(spec, params, X, Y) * conventions.factor("half_mean_elements", spec, m))
    grads = sklearn_mlp.sklearn_gradients(spec.to_dict(), params, X, Y)
    h = 1e-6
    bumped = {k: v.copy() for k, v in params.items()}
    bumped["W2"][0, 1] += h
    lowered = {k: v.copy() for k, v in params.items()}
    lowered["W2"][0, 1] -= h
    slope = (
        sklearn_mlp.sklearn_loss(spec.to_dict(), bumped, X, Y) - sklearn_mlp.sklearn_loss(spec.to_dict(), lowered, X, Y)
    ) / (2 * h)
    assert grads["W2"][0, 1] == pytest.approx(n_out * slope, rel=1e-6)


def test_sklearn_adapter_refuses_what_sklearn_cannot_express() -> None:
    spec = Spec((2, 3, 3, 1), ("tanh", "relu", "identity"), "mse")
    params, X, Y = Case(spec, batch=2).arrays()
    with pytest.raises(ValueError, match="one activation for every hidden layer"):
        sklearn_mlp.sklearn_gradients(spec.to_dict(), params, X, Y)


# --- HIPS autograd --------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(cases(specs(max_depth=4)))
# autograd differentiates σ through its own forward, 0.5·(tanh(z/2) + 1): in saturation σ' then carries an
# absolute error of a few eps on an entry of size 1e-12, as any textbook σ(1 − σ) does (not a bug).
@example(
    case=Case(
        spec=Spec(widths=(1, 1, 1, 1), activations=("sigmoid", "identity", "sigmoid"), loss="mse"),
        batch=3,
        seed=4,
        param_scale=5.0,
        data_scale=3.0,
    )
)
def test_autograd_agrees_with_torch_on_every_architecture(case: Case) -> None:
    assert not _failed(Subject("autograd", hips_autograd.gradients), case)


def test_autograd_has_no_diagnosis_and_follows_the_kink_conventions() -> None:
    assert diagnose_subject(Subject("autograd", hips_autograd.gradients)) == []
    spec = Spec((3, 4, 4, 2), ("relu", "leaky_relu", "identity"), "mse")
    case = Case(spec, batch=4, seed=2, kinks=True)
    assert case.problem.kink_sites
    assert not _failed(Subject("autograd", hips_autograd.gradients), case)


def test_autograd_loss_matches_the_reference() -> None:
    spec = Spec((3, 2, 3), ("softplus", "softmax"), "cce")
    params, X, Y = Case(spec, batch=4, seed=1).arrays()
    assert hips_autograd.loss(spec.to_dict(), params, X, Y) == pytest.approx(loss(spec, params, X, Y), rel=1e-13)


# --- the article's §5 listing -----------------------------------------------------------------------------


def test_the_articles_listing_is_wrong_and_the_diagnosis_says_where() -> None:
    subject = Subject("article", article.gradients)
    family = Family.from_supports(article.SUPPORTS)
    result = verify_subject(subject, family_cases(family, seed=0, count=10))
    assert result.failing_cases
    keys = {d.key for d in diagnose_subject(subject, supports=article.SUPPORTS)}
    assert {"bias_axis", "loss_gradient"} <= keys


def test_the_articles_weight_gradient_alone_is_right_for_bce() -> None:
    spec = Spec((2, 2), ("sigmoid",), "bce")
    case = Case(spec, batch=3, seed=4)
    records = check_case(case, Subject("article", article.gradients), ["torch_autograd"])
    blocks: dict[str, Any] = records[0].blocks
    assert blocks["W1"]["verdict"] == "pass" and blocks["b1"]["verdict"] == "fail"
