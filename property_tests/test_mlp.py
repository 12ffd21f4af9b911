"""The reference against PyTorch autograd, and the reference's own properties."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, example, given

from oracles import torch_autograd
from oracles.subjects import reference_subject
from oracles.verdicts.compare import check_case
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, gradient_descent_step, gradients, loss, run, vjp


@given(cases())
# A saturated tanh output: 1 − tanh² would cancel here (relative error ~1e-9) on either side.
@example(Case(Spec((1, 1, 1), ("identity", "tanh"), "mse"), batch=1, seed=0, param_scale=5.0, data_scale=0.5))
def test_reference_agrees_with_torch_on_every_gradient_and_delta(case: Case) -> None:
    records = check_case(case, reference_subject(), ["torch_autograd"])
    assert {r.check for r in records} == {"gradient", "delta"}
    for record in records:
        assert not record.failed, record.explain()
        assert record.blocks, "nothing was compared"


@given(cases())
def test_loss_values_agree_with_torch(case: Case) -> None:
    params, X, Y = case.arrays()
    ours, theirs = loss(case.spec, params, X, Y), torch_autograd.loss(case.spec.to_dict(), params, X, Y)
    assert abs(ours - theirs) <= 1e-12 * max(1.0, abs(theirs)), (ours, theirs, repr(case))


@given(cases())
def test_gradients_have_the_keys_shapes_and_dtype_of_params(case: Case) -> None:
    params, X, Y = case.arrays()
    grads = gradients(case.spec.to_dict(), params, X, Y)
    assert set(grads) == set(params)
    for name, value in grads.items():
        assert value.shape == params[name].shape and value.dtype == np.float64


@given(cases())
def test_zero_output_cotangent_gives_zero_gradients(case: Case) -> None:
    params, X, _ = case.arrays()
    pulled = vjp(case.spec, params, X, np.zeros((case.spec.widths[-1], case.batch)))
    assert all(not np.any(g) for g in pulled.grads.values())
    assert all(not np.any(d) for d in pulled.deltas)


@given(cases())
def test_random_output_cotangent_agrees_with_torch(case: Case) -> None:
    """A non-uniform cotangent: a ones cotangent (a plain sum) would hide whole terms."""
    params, X, _ = case.arrays()
    rng = np.random.default_rng(case.seed)
    cotangent = rng.standard_normal((case.spec.widths[-1], case.batch))
    ours = vjp(case.spec, params, X, cotangent)
    torch_grads, torch_deltas = torch_autograd.vjp(case.spec, params, X, cotangent)
    for name, value in torch_grads.items():
        np.testing.assert_allclose(ours.grads[name], value, rtol=1e-11, atol=1e-13 * (1 + np.abs(value).max()))
    for ours_delta, theirs in zip(ours.deltas, torch_deltas, strict=True):
        np.testing.assert_allclose(ours_delta, theirs, rtol=1e-11, atol=1e-13 * (1 + np.abs(theirs).max()))


@given(cases())
def test_same_call_twice_is_bit_identical_and_inputs_are_untouched(case: Case) -> None:
    params, X, Y = case.arrays()
    before = ({k: v.copy() for k, v in params.items()}, X.copy(), Y.copy())
    first = gradients(case.spec.to_dict(), params, X, Y)
    second = gradients(case.spec.to_dict(), params, X, Y)
    for name in first:
        assert first[name].tobytes() == second[name].tobytes()
        np.testing.assert_array_equal(params[name], before[0][name])
    np.testing.assert_array_equal(X, before[1])
    np.testing.assert_array_equal(Y, before[2])


@given(cases(kinks=False))
def test_a_small_gradient_descent_step_decreases_the_loss(case: Case) -> None:
    """Article §4.4: for a small enough η, L(θ − η∇L) < L(θ) whenever ∇L ≠ 0."""
    params, X, Y = case.arrays()
    _, backward, start = run(case.spec, params, X, Y)
    norm2 = sum(float(np.sum(g**2)) for g in backward.grads.values())
    # Below this the first-order decrease η‖g‖² is lost in the rounding of L itself.
    assume(norm2 > 1e-12 * max(1.0, abs(start)))
    eta = 1.0 / np.sqrt(norm2)
    for _ in range(60):
        if loss(case.spec, gradient_descent_step(params, backward.grads, eta), X, Y) < start:
            break
        eta /= 2
        if eta * norm2 < 1e-13 * max(1.0, abs(start)):
            break
    assert loss(case.spec, gradient_descent_step(params, backward.grads, eta), X, Y) < start, repr(case)


@given(cases(specs(max_depth=3), param_scales=(400.0,), data_scales=(3.0,)))
def test_saturated_networks_stay_finite(case: Case) -> None:
    """|z| in the hundreds: stable sigmoid, softplus, log-sum-exp and from-logit losses (no warnings)."""
    params, X, Y = case.arrays()
    _tape, backward, value = run(case.spec, params, X, Y)
    assert np.isfinite(value)
    assert all(np.all(np.isfinite(g)) for g in backward.grads.values())
