"""Richardson extrapolation of central differences, with an error estimate per entry.

Central differences at the steps ``h_k = h_0 / 2^k`` (k = 0..K−1) with
``h_0 = 2^-6·max(1, |θ|) / max(1, ‖a^[l-1][k, :]‖∞)`` (a step of that size in z) obey
``D(h) = L' + c_1 h² + c_2 h⁴ + …``, so the Neville tableau

    T[k][0] = D(h_k),   T[k][j] = (4^j T[k][j−1] − T[k−1][j−1]) / (4^j − 1)

removes one power of h² per column.  As in Ridders' method, each tableau element gets the error
estimate max(|T[k][j] − T[k][j−1]|, |T[k][j] − T[k−1][j−1]|), and each entry takes the element with the
smallest estimate; its estimate (plus the amplified rounding of the loss difference) is reported in
``OracleOutput.error`` and sets that entry's tolerance (``estimate_factor`` in the tolerance table).

Steps that cross a relu/leaky_relu kink are not one smooth branch: tableau elements that use them are
discarded.  An entry left without an extrapolated element (its two smallest steps cross) is a kink,
bracketed like central differences (:mod:`oracles.numeric.kink_brackets`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from oracles.numeric.kink_brackets import KinkCollector
from oracles.numeric.perturbed import block_losses, direction_losses
from oracles.numeric.steps import EPS, difference_rounding, input_scale, loss_terms
from oracles.numeric.tape import base_tape
from oracles.registry import Oracle, OracleOutput, register
from reference_impl.spec import Array, Params, Spec

NAME = "richardson"
# Differences of losses need a step that resolves features of width ~1/|W| in pre-activations of
# size ~1000 without drowning in the rounding of losses that large: neither truncation nor rounding is
# under control there, so the exact, autodiff and complex-step oracles judge stress cases.
STRESS_REASON = (
    "a difference step cannot resolve saturated pre-activations of size ~1000 (truncation and rounding uncontrolled)"
)
FIRST_STEP = 2.0**-6
N_STEPS = 5
KINK_RELATIVE_SLACK = 1e-3  # one-sided differences at the smallest step, h ≈ 1e-3·max(1, |θ|)


def extrapolate(
    differences: Array, steps: Array, valid: np.ndarray, rounding: Array
) -> tuple[Array, Array, np.ndarray]:
    """Ridders/Neville tableau over axis 0.

    ``differences``/``valid``/``rounding`` ``(K, n)`` for steps halving along axis 0; ``steps`` ``(K, n)``.
    Returns (best value, its error estimate, whether an extrapolated element existed) per entry ``(n,)``.
    """
    n_steps, n = differences.shape
    best = differences[-1].copy()
    best_error = np.full(n, np.inf)
    previous = differences[0][None]
    previous_valid = valid[0][None]
    previous_rounding = rounding[0][None]
    for k in range(1, n_steps):
        row = [differences[k]]
        row_valid = [valid[k]]
        row_rounding = [rounding[k]]
        for j in range(1, k + 1):
            factor = 4.0**j
            value = (factor * row[j - 1] - previous[j - 1]) / (factor - 1.0)
            ok = row_valid[j - 1] & previous_valid[j - 1]
            # Rounding in each difference is amplified by the extrapolation weights.
            noise = (factor * row_rounding[j - 1] + previous_rounding[j - 1]) / (factor - 1.0)
            error = np.maximum(np.abs(value - row[j - 1]), np.abs(value - previous[j - 1])) + noise
            better = ok & (error < best_error)
            best = np.where(better, value, best)
            best_error = np.where(better, error, best_error)
            row.append(value)
            row_valid.append(ok)
            row_rounding.append(noise)
        previous = np.stack(row)
        previous_valid = np.stack(row_valid)
        previous_rounding = np.stack(row_rounding)
    extrapolated = np.isfinite(best_error)
    return best, np.where(extrapolated, best_error, np.abs(steps[-1])), extrapolated


def evaluate(spec: Spec, params: Params, X: Array, Y: Array) -> OracleOutput:
    start = time.perf_counter()
    tape = base_tape(spec, params, X, Y)
    grads: Params = {}
    errors: Params = {}
    kinks = KinkCollector(KINK_RELATIVE_SLACK)
    for name in spec.parameter_names:
        theta = np.asarray(params[name], dtype=np.float64).ravel()
        first = FIRST_STEP * np.maximum(1.0, np.abs(theta)) / input_scale(tape, name)
        steps = first[None, :] / 2.0 ** np.arange(N_STEPS)[:, None]
        evaluation = block_losses(spec, params, X, Y, name, np.concatenate([steps, -steps]), tape=tape)
        plus, minus = evaluation.losses[:N_STEPS], evaluation.losses[N_STEPS:]
        crossed = evaluation.crossed[:N_STEPS] | evaluation.crossed[N_STEPS:]
        differences = (plus - minus) / (2.0 * steps)
        rounding = difference_rounding(spec, loss_terms(spec, tape.loss, tape.z[-1]), plus, minus, steps)
        value, error, extrapolated = extrapolate(differences, steps, ~crossed, rounding)
        grads[name] = value.reshape(params[name].shape)
        errors[name] = error.reshape(params[name].shape)
        flagged = np.flatnonzero(~extrapolated)
        if flagged.size:
            last = (-1, flagged)
            kinks.add_differences(spec, params, X, Y, name, flagged, plus[last], minus[last], steps[last], tape)
    extra: dict[str, Any] = {"steps": [FIRST_STEP / 2.0**k for k in range(N_STEPS)]}
    extra.update(kinks.extra())
    return OracleOutput(grads=grads, loss=tape.loss, error=errors, elapsed=time.perf_counter() - start, extra=extra)


def directional(spec: Spec, params: Params, X: Array, Y: Array, directions: list[Params]) -> np.ndarray:
    """⟨∇L, v⟩ by the same tableau along each v: 2·K loss evaluations per direction; NaN at a kink."""
    theta_scale = max(1.0, max(float(np.abs(v).max()) for v in params.values()))
    v_scale = np.array([max(float(np.abs(v).max()) for v in d.values()) for d in directions])
    first = FIRST_STEP * theta_scale / np.maximum(v_scale, 1e-300)
    steps = first[None, :] / 2.0 ** np.arange(N_STEPS)[:, None]  # (K, D)
    evaluation = direction_losses(spec, params, X, Y, directions, np.concatenate([steps, -steps]).T)
    losses, crossed = evaluation.losses.T, evaluation.crossed.T  # (2K, D)
    differences = (losses[:N_STEPS] - losses[N_STEPS:]) / (2.0 * steps)
    rounding = EPS * np.abs(losses[:N_STEPS]) * 4.0 / (2.0 * steps)
    value, _error, extrapolated = extrapolate(differences, steps, ~(crossed[:N_STEPS] | crossed[N_STEPS:]), rounding)
    return np.where(extrapolated, value, np.nan)


def gradients(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Params:
    """The subject protocol."""
    return ORACLE.gradients(spec, params, X, Y)


ORACLE = register(
    Oracle(
        name=NAME,
        evaluate=evaluate,
        kind="numeric",
        directional=directional,
        stress_reason=STRESS_REASON,
        description="Richardson/Ridders extrapolation of central differences, per-entry error estimate",
    )
)
