"""The audit's ground truth agrees with the torch oracle and the reference on everything they share."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from oracles import torch_autograd
from property_tests.strategies import cases
from reference_impl import Case, run
from reference_impl.spec import Spec
from reports.audit.truth import batch_normaliser, truth


@settings(max_examples=40)
@given(cases(kinks=False, param_scales=(0.5, 1.0), data_scales=(0.5, 1.0)))
def test_truth_matches_the_reference_and_the_torch_oracle(case: Case) -> None:
    params, X, Y = case.arrays()
    t = truth(case.spec, params, X, Y)
    tape, backward, loss = run(case.spec, params, X, Y)
    np.testing.assert_allclose(t.loss, loss, rtol=1e-10)
    np.testing.assert_allclose(t.loss, torch_autograd.loss(case.spec, params, X, Y), rtol=1e-10)
    for mine, theirs in zip(t.z, tape.pre_activations, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(t.delta, backward.deltas, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-9, atol=1e-12)
    for name, grad in backward.grads.items():
        np.testing.assert_allclose(t.grads[name], grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(t.per_example_delta, batch_normaliser(case.spec.loss, X.shape[1]) * t.delta[-1])


def test_dl_da_is_counted_once_even_when_a_is_z() -> None:
    # identity output: a^[L] and z^[L] are the same value; each gradient must still be counted once.
    spec = Spec((1, 1), ("identity",), "half_sse")
    t = truth(spec, {"W1": np.array([[2.0]]), "b1": np.array([[0.0]])}, np.array([[1.0]]), np.array([[0.5]]))
    assert t.grad_a[-1].tolist() == [[1.5]] and t.delta[-1].tolist() == [[1.5]]
    assert t.per_example_delta.tolist() == [[1.5]]
