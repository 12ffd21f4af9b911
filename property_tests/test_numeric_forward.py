"""The batched, rank-one perturbed loss evaluator against explicit recomputation with the reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oracles.numeric_forward import activate, base_tape, direction_losses, entry_losses, loss_values
from property_tests.strategies import cases
from reference_impl import Case, Spec, loss
from reference_impl.spec import ACTIVATION_NAMES


@settings(max_examples=40)
@given(cases(), st.floats(-0.5, 0.5).filter(lambda h: h != 0), st.integers(0, 10_000))
def test_rank_one_updates_equal_a_full_recomputation(case: Case, step: float, pick: int) -> None:
    params, X, Y = case.arrays()
    for name in case.spec.parameter_names:
        flat_index = pick % params[name].size
        evaluation = entry_losses(case.spec, params, X, Y, name, np.array([flat_index]), np.array([step]))
        moved = {k: v.copy() for k, v in params.items()}
        moved[name].flat[flat_index] += step
        # The evaluator applies exactly `step`; the explicit copy rounds θ + step once: allow that.
        expected = loss(case.spec, moved, X, Y)
        scale = max(1.0, abs(expected)) * (1.0 + abs(params[name].flat[flat_index]))
        assert abs(evaluation.losses[0] - expected) <= 1e-12 * scale * (1 + case.spec.depth), (name, repr(case))


@settings(max_examples=40)
@given(cases())
def test_a_purely_imaginary_step_leaves_the_real_part_at_the_base_loss(case: Case) -> None:
    params, X, Y = case.arrays()
    base = loss(case.spec, params, X, Y)
    for name in case.spec.parameter_names:
        size = params[name].size
        evaluation = entry_losses(case.spec, params, X, Y, name, np.arange(size), np.full(size, 1e-20j))
        np.testing.assert_allclose(evaluation.losses.real, base, rtol=1e-12, atol=1e-30)  # Re gains O(h²)
        assert not evaluation.crossed.any()


@settings(max_examples=30)
@given(cases())
def test_direction_losses_equal_explicit_moves(case: Case) -> None:
    params, X, Y = case.arrays()
    rng = np.random.default_rng(case.seed)
    directions = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(2)]
    steps = np.array([[0.1, -0.2], [0.05, 0.3]])
    evaluation = direction_losses(case.spec, params, X, Y, directions, steps)
    for d in range(2):
        for s in range(2):
            moved = {k: params[k] + steps[d, s] * directions[d][k] for k in params}
            expected = loss(case.spec, moved, X, Y)
            assert abs(evaluation.losses[d, s] - expected) <= 1e-12 * max(1.0, abs(expected)) * 4


def test_base_tape_loss_is_the_reference_loss_for_every_loss() -> None:
    for spec in (
        Spec((2, 3, 2), ("tanh", "sigmoid"), "bce"),
        Spec((2, 3, 3), ("softplus", "softmax"), "cce"),
        Spec((2, 3, 2), ("relu", "leaky_relu"), "half_sse"),
        Spec((2, 3, 2), ("identity", "tanh"), "mse"),
    ):
        params, X, Y = Case(spec, batch=3, seed=4).arrays()
        assert base_tape(spec, params, X, Y).loss == pytest.approx(loss(spec, params, X, Y), rel=1e-13)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activations_are_complex_safe_far_from_zero(name: str) -> None:
    z = np.array([[-800.0, -30.0, -1e-3, 0.0, 2.5, 40.0, 800.0]]).T + 1e-20j  # softmax: one column of units
    values = activate(name, z)  # warnings are errors: no overflow, no invalid value
    assert np.all(np.isfinite(values))
    real = activate(name, z.real)
    np.testing.assert_allclose(values.real, real, rtol=1e-15, atol=1e-300)


def test_complex_losses_from_logits_are_finite_when_saturated() -> None:
    z = np.array([[-900.0], [0.5], [900.0]])[:, None, :] + 1e-20j
    Y = np.array([[0.2], [0.3], [0.5]])
    for name, out in (("bce", "sigmoid"), ("cce", "softmax")):
        spec = Spec((1, 3), (out,), name)
        value = loss_values(spec, z, activate(out, z), Y)
        assert np.all(np.isfinite(value))


def test_a_whole_block_is_one_batch_not_a_python_loop_per_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from oracles import numeric_forward

    spec = Spec((20, 30, 25, 3), ("tanh", "sigmoid", "identity"), "mse")
    params, X, Y = Case(spec, batch=4, seed=1).arrays()
    calls = {"n": 0}
    original = numeric_forward.activate

    def counting(name: str, z: np.ndarray, zero_active: bool = False) -> np.ndarray:
        calls["n"] += 1
        return original(name, z, zero_active)

    monkeypatch.setattr(numeric_forward, "activate", counting)
    size = params["W1"].size  # 600 entries, ± steps: 1,200 perturbed losses
    steps = np.concatenate([np.full(size, 1e-5), np.full(size, -1e-5)])
    numeric_forward.entry_losses(spec, params, X, Y, "W1", np.tile(np.arange(size), 2), steps)
    # One call per layer per chunk of perturbations (and the base pass), never one per perturbation.
    chunks = -(-2 * size * max(spec.widths[1:]) * X.shape[1] // numeric_forward.CHUNK_ELEMENTS)
    assert calls["n"] <= spec.depth * (1 + chunks) < 2 * size
