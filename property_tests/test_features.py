"""Case features and the conditions that separate wrong cases from right ones."""

from __future__ import annotations

from oracles.diagnosis.features import Condition, case_features, common, describe, separate
from reference_impl import Case, Spec


def _case(widths: tuple[int, ...], activations: tuple[str, ...], loss: str, batch: int = 3, **kw: object) -> Case:
    return Case(Spec(widths, activations, loss), batch=batch, seed=1, **kw)  # type: ignore[arg-type]


def test_features_describe_the_case() -> None:
    case = _case((3, 4, 4, 1), ("softplus", "tanh", "sigmoid"), "bce", batch=1)
    features = case_features(case, first=_case((3, 4, 4, 1), ("tanh", "tanh", "sigmoid"), "bce"))
    assert features["single example"] is True and features["single output"] is True
    assert features["layer 2 square"] is True and features["layer 1 square"] is False
    assert features["some layer square"] is True and features["every layer square"] is False
    assert features["has softplus"] is True and features["hidden 1 activation"] == "softplus"
    assert features["widths of the first call"] is True
    assert features["one-hot targets"] in (True, False)
    assert case_features(_case((2, 2), ("identity",), "mse"))["one-hot targets"] is None
    assert case_features(_case((3, 5, 2), ("tanh", "sigmoid"), "mse", param_scale=8.0, data_scale=3.0))["saturated"]


def test_separate_finds_the_single_condition_then_pairs() -> None:
    wrong = [{"loss": "cce", "single example": False}, {"loss": "cce", "single example": False}]
    right = [{"loss": "cce", "single example": True}, {"loss": "mse", "single example": False}]
    assert separate(wrong, right) == [Condition("loss", "cce", ("single example", False))]
    assert describe("single example", False) == "m > 1"
    softplus = [{"has softplus": True, "loss": "mse"}]
    others = [{"has tanh": True, "loss": "mse"}]
    found = separate(softplus, others)
    assert found[0] == Condition("has softplus", True)
    assert found[0].text() == "there is a softplus layer"
    assert separate(softplus, softplus) == []
    assert common(softplus, others)[0] == Condition("has softplus", True)
