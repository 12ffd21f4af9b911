from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, SpecError, case_from_index, forward
from reference_impl.spec import check_arrays


@given(cases())
def test_case_repr_is_pasteable_python(case: Case) -> None:
    rebuilt = eval(repr(case), {"Case": Case, "Spec": Spec})
    assert rebuilt == case
    np.testing.assert_array_equal(rebuilt.X, case.X)
    for name in case.spec.parameter_names:
        np.testing.assert_array_equal(rebuilt.params[name], case.params[name])


@given(specs())
def test_spec_round_trips_through_the_public_dict(spec: Spec) -> None:
    assert Spec.from_dict(spec.to_dict()) == spec
    assert set(spec.to_dict()) == {"widths", "activations", "loss"}


@given(cases())
def test_case_arrays_have_the_article_shapes(case: Case) -> None:
    params, X, Y = case.arrays()
    check_arrays(case.spec, params, X, Y)
    assert X.dtype == Y.dtype == np.float64
    if case.spec.loss == "cce":
        np.testing.assert_allclose(Y.sum(axis=0), 1.0, rtol=1e-12)
    if case.spec.loss == "bce":
        assert np.all((Y >= 0) & (Y <= 1))


def test_campaign_cases_are_a_pure_function_of_seed_and_index() -> None:
    assert case_from_index(7, 3) == case_from_index(7, 3)
    assert case_from_index(7, 3).id == "7-000003"
    assert case_from_index(7, 3) != case_from_index(7, 4)


@given(cases(specs(activations=("relu", "leaky_relu", "identity"), losses=("mse", "half_sse")), kinks=True))
def test_kink_sites_are_exactly_on_zero(case: Case) -> None:
    tape = forward(case.spec, case.params, case.X)
    for layer, unit, example in case.problem.kink_sites:
        assert tape.z(layer)[unit, example] == 0.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"widths": [2], "activations": [], "loss": "mse"}, "at least"),
        ({"widths": [2, 0], "activations": ["tanh"], "loss": "mse"}, "positive"),
        ({"widths": [2, 3], "activations": ["tanh", "tanh"], "loss": "mse"}, "activations"),
        ({"widths": [2, 3], "activations": ["swish"], "loss": "mse"}, "unknown activation"),
        ({"widths": [2, 3], "activations": ["tanh"], "loss": "hinge"}, "unknown loss"),
        ({"widths": [2, 3, 2], "activations": ["softmax", "softmax"], "loss": "cce"}, "only allowed"),
        ({"widths": [2, 3], "activations": ["tanh"], "loss": "bce"}, "sigmoid"),
        ({"widths": [2, 3], "activations": ["softmax"], "loss": "mse"}, "softmax"),
        ({"widths": [2, 3], "activations": ["tanh"]}, "missing"),
    ],
)
def test_invalid_specs_are_rejected_with_a_clear_message(spec: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Spec.from_dict(spec)
