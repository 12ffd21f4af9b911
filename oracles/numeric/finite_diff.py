"""Central differences: ∂L/∂θ_i ≈ (L(θ + h e_i) − L(θ − h e_i)) / 2h, every entry, batched.

Step ``h_i = ∛eps · max(1, |θ_i|) / max(1, ‖a^[l-1][k, :]‖∞)`` balances the O(h²) truncation against the
O(eps·L/h) rounding of the loss difference; the division makes it a step of ∛eps in ``z`` itself, so large
inputs (which scale the curvature along W[j, k]) do not inflate the truncation.  The perturbation is
applied to ``z^[l]`` directly (``h·a^[l-1][k, :]``), so the step taken is exactly ``h`` with no
representation error in θ + h.  All entries of a block are
evaluated in batches by :mod:`oracles.numeric.perturbed` (no Python loop per parameter; only layers from
the perturbed one onward are recomputed).

Per-entry error estimate: the rounding of the loss difference, ``eps·(|L+| + |L−| + 2|L|)·(depth+1)/2h``.
The O(h²) truncation is covered by the tolerance row's rtol (1e-7).  Kinks: an entry whose ±h
perturbation crosses a relu/leaky_relu kink is flagged and bracketed by its one-sided differences
(see :mod:`oracles.numeric.kink_brackets`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from oracles.numeric.kink_brackets import KinkCollector
from oracles.numeric.perturbed import block_losses, direction_losses
from oracles.numeric.steps import EPS, cbrt_eps_step, difference_rounding, input_scale, loss_terms
from oracles.numeric.tape import base_tape
from oracles.registry import Oracle, OracleOutput, register
from reference_impl.spec import Array, Params, Spec

NAME = "finite_diff"
# Differences of losses need a step that resolves features of width ~1/|W| in pre-activations of
# size ~1000 without drowning in the rounding of losses that large: neither truncation nor rounding is
# under control there, so the exact, autodiff and complex-step oracles judge stress cases.
STRESS_REASON = (
    "a difference step cannot resolve saturated pre-activations of size ~1000 (truncation and rounding uncontrolled)"
)
# One-sided differences at a kink carry an O(h·L'') truncation error, h ≈ 6e-6·max(1, |θ|).
KINK_RELATIVE_SLACK = 1e-4


def central_differences(
    spec: Spec, params: Mapping[str, Array], X: Array, Y: Array, relative_step: float | None = None
) -> OracleOutput:
    """Full gradient by central differences; ``relative_step`` overrides ∛eps (to plant a bad oracle)."""
    start = time.perf_counter()
    tape = base_tape(spec, params, X, Y)
    grads: Params = {}
    errors: Params = {}
    kinks = KinkCollector(KINK_RELATIVE_SLACK)
    for name in spec.parameter_names:
        theta = np.asarray(params[name], dtype=np.float64).ravel()
        if relative_step is None:
            h = cbrt_eps_step(theta) / input_scale(tape, name)
        else:
            h = relative_step * np.maximum(1.0, np.abs(theta))
        evaluation = block_losses(spec, params, X, Y, name, np.stack([h, -h]), tape=tape)
        plus, minus = evaluation.losses
        grads[name] = ((plus - minus) / (2.0 * h)).reshape(params[name].shape)
        errors[name] = difference_rounding(spec, loss_terms(spec, tape.loss, tape.z[-1]), plus, minus, h).reshape(
            params[name].shape
        )
        crossed = np.flatnonzero(evaluation.crossed.any(axis=0))
        if crossed.size:
            kinks.add_differences(spec, params, X, Y, name, crossed, plus[crossed], minus[crossed], h[crossed], tape)
    extra: dict[str, Any] = {
        "step": "cbrt(eps)*max(1,|theta|)/max(1,|a_prev|)" if relative_step is None else relative_step
    }
    extra.update(kinks.extra())
    return OracleOutput(grads=grads, loss=tape.loss, error=errors, elapsed=time.perf_counter() - start, extra=extra)


def evaluate(spec: Spec, params: Params, X: Array, Y: Array) -> OracleOutput:
    return central_differences(spec, params, X, Y)


def direction_step(params: Mapping[str, Array], direction: Mapping[str, Array]) -> float:
    """∛eps scaled so that no entry moves by more than ∛eps·max(1, |θ|∞)."""
    theta_scale = max(1.0, max(float(np.abs(v).max()) for v in params.values()))
    v_scale = max(float(np.abs(v).max()) for v in direction.values())
    return float(np.cbrt(EPS) * theta_scale / max(v_scale, 1e-300))


def directional(spec: Spec, params: Params, X: Array, Y: Array, directions: list[Params]) -> np.ndarray:
    """⟨∇L, v⟩ ≈ (L(θ + hv) − L(θ − hv))/2h: two loss evaluations per direction; NaN across a kink."""
    h = np.array([direction_step(params, v) for v in directions])
    evaluation = direction_losses(spec, params, X, Y, directions, np.stack([h, -h], axis=1))
    values = (evaluation.losses[:, 0] - evaluation.losses[:, 1]) / (2.0 * h)
    return np.where(evaluation.crossed.any(axis=1), np.nan, values)


def gradients(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Params:
    """The subject protocol."""
    return ORACLE.gradients(spec, params, X, Y)


def make_oracle(relative_step: float | None = None, name: str = NAME) -> Oracle:
    """A central-difference oracle with another step, unregistered (to plant a wrong oracle in tests)."""

    def evaluate_with_step(spec: Spec, params: Params, X: Array, Y: Array) -> OracleOutput:
        return central_differences(spec, params, X, Y, relative_step)

    return Oracle(
        name=name,
        evaluate=evaluate_with_step,
        kind="numeric",
        description=f"central differences, relative step {relative_step}",
    )


ORACLE = register(
    Oracle(
        name=NAME,
        evaluate=evaluate,
        kind="numeric",
        directional=directional,
        stress_reason=STRESS_REASON,
        description="central differences, h = ∛eps·max(1,|θ|), batched with rank-one layer updates",
    )
)
