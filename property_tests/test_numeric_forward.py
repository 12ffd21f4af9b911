"""The batched, rank-one perturbed loss evaluator against explicit recomputation with the reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from oracles.numeric.functions import activate, loss_values
from oracles.numeric.imaginary import complex_step_entries
from oracles.numeric.perturbed import direction_losses, entry_losses
from oracles.numeric.steps import EPS
from oracles.numeric.tape import base_tape
from oracles.verdicts.rounding_scale import magnitudes
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, gradients, loss
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES


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


def test_hidden_tanh_in_the_sigmoid_form_matches_recomputation_deep_in_saturation() -> None:
    # Hidden tanh runs as 2σ(2z) − 1 in the real batched path; e^{−2z} overflows for z < −354 and must
    # give tanh = −1 exactly, with no overflow warning (warnings are errors in this suite).
    spec = Spec((3, 5, 4, 2), ("tanh", "tanh", "tanh"), "mse")
    params, X, Y = Case(spec, batch=3, seed=7).arrays()
    params = {k: v * (400.0 if k in ("W1", "W2") else 1.0) for k, v in params.items()}
    assert base_tape(spec, params, X, Y).z[1].min() < -354.0  # the folded layer overflows e^{−2z}
    for name in spec.parameter_names:
        indices = np.arange(params[name].size)
        for step in (1e-3, -1e-3):
            got = entry_losses(spec, params, X, Y, name, indices, np.full(indices.size, step)).losses
            for index in indices:
                moved = {k: v.copy() for k, v in params.items()}
                moved[name].flat[index] += step
                expected = loss(spec, moved, X, Y)
                scale = max(1.0, abs(expected)) * (1.0 + abs(params[name].flat[index]))
                assert abs(got[index] - expected) <= 1e-12 * scale, (name, index, step)


def _whole_block_against_recomputation(spec: Spec, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> None:
    """Every entry of every block at ± a central-difference-sized step, against an explicit forward pass."""
    for name in spec.parameter_names:
        size = params[name].size
        steps = np.concatenate([np.full(size, 6e-6), np.full(size, -6e-6)])
        got = entry_losses(spec, params, X, Y, name, np.tile(np.arange(size), 2), steps).losses
        for k, (index, step) in enumerate(zip(np.tile(np.arange(size), 2), steps, strict=True)):
            moved = {key: value.copy() for key, value in params.items()}
            moved[name].flat[index] += step
            expected = loss(spec, moved, X, Y)
            scale = max(1.0, abs(expected)) * (1.0 + abs(params[name].flat[index]))
            assert abs(got[k] - expected) <= 1e-13 * scale, (name, int(index), float(step), got[k], expected)


@pytest.mark.parametrize(
    ("hidden", "output", "loss_name"),
    [
        ("tanh", "identity", "mse"),
        ("sigmoid", "identity", "mse"),
        ("tanh", "tanh", "mse"),
        ("sigmoid", "sigmoid", "half_sse"),
        ("tanh", "sigmoid", "mse"),
        ("relu", "tanh", "half_sse"),
    ],
)
def test_the_exponential_series_path_equals_recomputation(
    hidden: str, output: str, loss_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oracles.numeric import perturbed

    # Fan-in ≥ SERIES_MIN_RUN: whole rows of W1/W2 take the series path into a folded hidden layer 2
    # or, for W2, into a tanh/sigmoid output under mse/half_sse.
    spec = Spec((20, 24, 20, 3), (hidden, hidden, output), loss_name)
    params, X, Y = Case(spec, batch=5, seed=3).arrays()
    taken = {"n": 0}
    original = perturbed.shifted_activation

    def counting(*args: np.ndarray) -> np.ndarray | None:
        r = original(*args)
        taken["n"] += r is not None
        return r

    monkeypatch.setattr(perturbed, "shifted_activation", counting)
    _whole_block_against_recomputation(spec, params, X, Y)
    assert taken["n"] > 0


def test_the_exponential_series_path_deep_in_saturation() -> None:
    # e^u beyond e^700 is clamped; the factors are normalised so nothing overflows (warnings are errors).
    spec = Spec((20, 24, 20, 3), ("tanh", "tanh", "identity"), "mse")
    params, X, Y = Case(spec, batch=3, seed=5).arrays()
    params = {k: v * (300.0 if k in ("W1", "W2") else 1.0) for k, v in params.items()}
    assert np.abs(base_tape(spec, params, X, Y).z[1]).max() > 350.0
    _whole_block_against_recomputation(spec, params, X, Y)


@pytest.mark.parametrize("x_max", [0.0, 1e-300, 1e-12, 1e-6, 1e-4, 1e-3, 1e-2, 0.0247])
def test_the_series_term_count_meets_its_bound(x_max: float) -> None:
    import mpmath

    from oracles.numeric.series import exp_series_terms

    count = exp_series_terms(x_max)
    assert count is not None
    with mpmath.workprec(200):
        for x in np.linspace(-x_max, x_max, 101):
            exact_x = mpmath.mpf(float(x))
            truncated = mpmath.fsum(exact_x**p / mpmath.factorial(p) for p in range(count))
            # The truncation alone (rounding is the evaluation's business): within eps/32 of e^x.
            assert abs(truncated - mpmath.exp(exact_x)) <= mpmath.mpf(EPS) / 32 * mpmath.exp(exact_x), (x, count)


def test_the_series_declines_large_and_non_finite_steps() -> None:
    from oracles.numeric.series import exp_series_terms

    assert exp_series_terms(0.1) is None
    assert exp_series_terms(float("nan")) is None
    assert exp_series_terms(float("inf")) is None


@settings(max_examples=40)
@given(
    cases(
        specs(min_width=16, max_width=24, max_depth=3, activations=("tanh", "sigmoid", "relu", "identity", "softmax"))
    ),
    st.integers(0, 10_000),
    st.sampled_from([6e-6, -3e-5, 1e-4, 1e-2]),
)
def test_whole_blocks_of_wide_layers_equal_recomputation(case: Case, pick: int, step: float) -> None:
    # Fan-in ≥ 16: whole W rows take the series route where the next layer is tanh/sigmoid (hidden, or
    # the output under mse/half_sse) and the step is small, the plain route otherwise (1e-2 is beyond
    # the series' range); both must agree with an explicit forward pass.
    params, X, Y = case.arrays()
    spec = case.spec
    weights = [n for n in spec.parameter_names if n.startswith("W")]
    name = weights[pick % len(weights)]
    size = params[name].size
    got = entry_losses(spec, params, X, Y, name, np.arange(size), np.full(size, step)).losses
    for index in np.random.default_rng(pick).choice(size, size=min(size, 8), replace=False):
        moved = {k: v.copy() for k, v in params.items()}
        moved[name].flat[index] += step
        expected = loss(spec, moved, X, Y)
        scale = max(1.0, abs(expected)) * (1.0 + abs(params[name].flat[index]))
        assert abs(got[index] - expected) <= 1e-12 * scale * (1 + spec.depth), (name, int(index), repr(case))


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
    from oracles.numeric import parallel, perturbed, tape

    spec = Spec((20, 30, 25, 3), ("tanh", "sigmoid", "identity"), "mse")
    params, X, Y = Case(spec, batch=4, seed=1).arrays()
    calls = {"n": 0}
    original = perturbed.activate

    def counting(name: str, z: np.ndarray, zero_active: bool = False) -> np.ndarray:
        calls["n"] += 1
        return original(name, z, zero_active)

    # The base pass and the propagation call it from the tape module, the perturbed layer from perturbed.
    for module in (tape, perturbed):
        monkeypatch.setattr(module, "activate", counting)
    size = params["W1"].size  # 600 entries, ± steps: 1,200 perturbed losses
    steps = np.concatenate([np.full(size, 1e-5), np.full(size, -1e-5)])
    perturbed.entry_losses(spec, params, X, Y, "W1", np.tile(np.arange(size), 2), steps)
    # One call per layer per chunk of perturbations (and the base pass), never one per perturbation.
    per_chunk = parallel.chunk_size(spec, 1, X.shape[1], 2 * size)
    chunks = -(-2 * size // per_chunk)
    assert calls["n"] <= spec.depth * (1 + chunks) < 2 * size


# --- the complex step's imaginary-parts-only path against full complex arithmetic ---------------


def _fast_versus_generic(case: Case, zero_active: bool = False, conditioned: bool = True) -> float:
    """Worst |fast − generic| over the allowance, across every block of ``case`` (≤ 1 is agreement).

    Both paths sum the same chain-rule products in different orders.  Each product has at most
    ``depth + 1`` factors and each sum at most ``max width + batch`` terms, so with
    ``n = (depth + 1)·(max width + batch)`` each path is within γ_n ≈ n·eps of the exact value *relative to
    the sum of the terms' magnitudes* M (:func:`oracles.verdicts.rounding_scale.magnitudes`), not to the
    result: where terms cancel, |g| ≪ M (the W1 entry of the ``@example`` below is 8.8e-4 out of terms
    near 0.1).  Two paths: 2·n·eps·max(M, |g|), plus the bound's carried error E (a slope read off a
    pre-activation that each path rounds its own way), a few u·E.  ``conditioned=False`` drops M and E (a
    few ulps of the block only), for kinks, where the bounds follow relu'(0) = 0 and the other convention
    is asked.
    """
    params, X, Y = case.arrays()
    scale = magnitudes(case.spec, params, X, Y)
    n = (case.spec.depth + 1) * (max(case.spec.widths) + case.batch)
    worst = 0.0
    for name in case.spec.parameter_names:
        indices = np.arange(params[name].size)
        fast = complex_step_entries(case.spec, params, X, Y, name, indices, zero_active=zero_active)
        generic = complex_step_entries(case.spec, params, X, Y, name, indices, zero_active=zero_active, generic=True)
        if conditioned:
            bound = scale[name]
            allowed = 2 * n * EPS * np.maximum(bound.M.ravel(), np.abs(generic)) + 8 * EPS * bound.E.ravel()
        else:
            allowed = np.full(generic.shape, 16 * EPS * float(np.abs(generic).max()))
        difference = np.abs(fast - generic)
        ratio = np.divide(difference, allowed, out=np.full(difference.shape, np.inf), where=allowed > 0)
        worst = max(worst, float(np.max(np.where(difference > 0, ratio, 0.0))))
    return worst


@settings(max_examples=60)
@given(cases(kinks=False))
@example(
    Case(Spec((1, 1, 2), ("identity", "sigmoid"), "bce"), batch=5, seed=2, param_scale=0.5, data_scale=1.0, kinks=False)
)
def test_imaginary_parts_alone_equal_full_complex_arithmetic(case: Case) -> None:
    assert _fast_versus_generic(case) <= 1.0, repr(case)


@pytest.mark.parametrize("loss_name", LOSS_NAMES)
@pytest.mark.parametrize("hidden", [a for a in ACTIVATION_NAMES if a != "softmax"])
def test_imaginary_parts_alone_for_every_activation_and_loss(hidden: str, loss_name: str) -> None:
    output = {"bce": "sigmoid", "cce": "softmax"}.get(loss_name, hidden)
    spec = Spec((3, 5, 4, 3), (hidden, hidden, output), loss_name)
    case = Case(spec, batch=4, seed=11)
    assert _fast_versus_generic(case) <= 1.0
    # No pre-activation is exactly 0 here: the other branch at 0 must change nothing on either path.
    assert _fast_versus_generic(case, zero_active=True) <= 1.0


def test_the_convention_at_an_exact_zero_is_honoured_by_both_paths() -> None:
    case = Case(Spec((3, 6, 5, 2), ("relu", "leaky_relu", "identity"), "mse"), batch=4, seed=3, kinks=True)
    assert case.problem.kink_sites
    for zero_active in (False, True):
        # The reference takes relu'(0) = 0: no conditioning allowance from it, a few ulps only.
        assert _fast_versus_generic(case, zero_active, conditioned=False) <= 1.0


def test_a_planted_slope_error_of_1e_minus_12_breaks_the_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    from oracles.numeric import imaginary

    case = Case(Spec((3, 5, 4, 2), ("tanh", "sigmoid", "identity"), "mse"), batch=4, seed=9)
    assert _fast_versus_generic(case) <= 1.0
    original = imaginary.imaginary_slope

    def off_by_a_little(name: str, z: np.ndarray, zero_active: bool = False) -> np.ndarray | None:
        slope = original(name, z, zero_active)
        return slope * (1.0 + 1e-12) if slope is not None and name == "sigmoid" else slope

    monkeypatch.setattr(imaginary, "imaginary_slope", off_by_a_little)
    assert _fast_versus_generic(case) > 1.0


def test_a_real_shift_takes_full_complex_arithmetic() -> None:
    case = Case(Spec((3, 5, 2), ("tanh", "tanh"), "mse"), batch=4, seed=2)
    params, X, Y = case.arrays()
    shift = 1e-3
    got = complex_step_entries(case.spec, params, X, Y, "W1", np.array([4]), real_shift=shift)
    moved = {k: v.copy() for k, v in params.items()}
    moved["W1"].flat[4] += shift
    assert got[0] == pytest.approx(gradients(case.spec, moved, X, Y)["W1"].flat[4], rel=1e-12)


# --- worker threads and the run-wise outer product -------------------------------------------------


@settings(max_examples=20)
@given(cases())
def test_results_do_not_depend_on_the_number_of_worker_threads(case: Case) -> None:
    from oracles.numeric import parallel

    params, X, Y = case.arrays()
    name = case.spec.parameter_names[0]
    size = params[name].size
    indices = np.tile(np.arange(size), 2)
    real_steps = np.concatenate([np.full(size, 1e-4), np.full(size, -1e-4)])
    results = []
    for workers in (1, 2, 3):
        # Tiny chunks, so that even these small blocks are split across the threads.
        with parallel.worker_threads(workers), pytest.MonkeyPatch.context() as patch:
            patch.setattr(parallel, "CHUNK_ELEMENTS", 8)
            real = entry_losses(case.spec, params, X, Y, name, indices, real_steps).losses
            imaginary = complex_step_entries(case.spec, params, X, Y, name, indices)
        results.append((real, imaginary))
    for real, imaginary in results[1:]:
        np.testing.assert_array_equal(real, results[0][0])
        np.testing.assert_array_equal(imaginary, results[0][1])


def test_worker_threads_rejects_zero() -> None:
    from oracles.numeric import parallel

    with pytest.raises(ValueError, match="at least 1"), parallel.worker_threads(0):
        pass


@pytest.mark.parametrize("rows", [[0, 0, 0, 2, 2, 1], [3, 1, 0, 2, 1, 3, 0, 2, 1, 0, 3, 2]])
def test_outer_rows_equals_the_explicit_products(rows: list[int]) -> None:
    from oracles.numeric.tape import outer_rows

    rng = np.random.default_rng(8)
    W = rng.standard_normal((5, 4))
    delta = rng.standard_normal((len(rows), 3))
    out = np.empty((5, len(rows), 3))
    outer_rows(W, np.array(rows), delta, out)
    expected = np.stack([np.outer(W[:, j], delta[b]) for b, j in enumerate(rows)], axis=1)
    np.testing.assert_array_equal(out, expected)
