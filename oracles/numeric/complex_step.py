"""Complex step: ∂L/∂θ_i = Im L(θ + i·h·e_i)/h with h = 1e-20, accurate to rounding.

No difference of two nearby losses is taken, so there is no cancellation and h can be tiny: the
truncation error is O(h²) ≈ 1e-40.  Every activation and loss of :mod:`oracles.numeric.functions` is
written for complex arguments; relu/leaky_relu choose their branch by the real part, which the step
never changes, so at a pre-activation exactly on 0 the complex step gives the suite's convention
(relu'(0) = 0, leaky_relu'(0) = 0.01).  Entries whose derivative depends on that choice are flagged
as kinks: the complex step is run a second time with the branch at 0 forced the other way, and an
entry whose value changes is bracketed by the one-sided derivatives, computed as complex steps at
θ ± r·e_i with a tiny real shift r = 1e-9·max(1, |θ_i|).

Evaluation: a purely imaginary step leaves every real part at the base forward pass, so only the
imaginary parts are propagated, layer by layer, for each perturbation
(:func:`oracles.numeric.imaginary.imaginary_step_losses`).  This is forward-mode differentiation in
effect, with each function's derivative given by the imaginary part of its complex extension; a
property test holds it equal to the full complex evaluation to a few ulps.  Its independence from
the subject is that of a separate forward-mode derivation (no δ recursion, no transposed weights), not
that of a derivative-free method.  Steps with a real shift (the one-sided values) use full complex
arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from oracles.numeric.imaginary import COMPLEX_STEP, complex_step_entries
from oracles.numeric.kink_brackets import KinkCollector, bracket
from oracles.numeric.perturbed import direction_losses
from oracles.numeric.tape import base_tape, has_kinked_zeros
from oracles.registry import Oracle, OracleOutput, register
from reference_impl.spec import Array, Params, Spec

NAME = "complex_step"
ONE_SIDED_SHIFT = 1e-9
# One-sided values are exact derivatives at θ ± r, off by O(r·L'') from the limits at θ.
KINK_RELATIVE_SLACK = 1e-7


def evaluate(spec: Spec, params: Params, X: Array, Y: Array) -> OracleOutput:
    start = time.perf_counter()
    tape = base_tape(spec, params, X, Y)
    at_kink = has_kinked_zeros(spec, tape)
    grads: Params = {}
    kinks = KinkCollector(KINK_RELATIVE_SLACK)
    for name in spec.parameter_names:
        theta = np.asarray(params[name], dtype=np.float64).ravel()
        indices = np.arange(theta.size)
        values = complex_step_entries(spec, params, X, Y, name, indices, tape=tape)
        grads[name] = values.reshape(params[name].shape)
        if not at_kink:
            continue
        other = complex_step_entries(spec, params, X, Y, name, indices, zero_active=True)
        flagged = np.flatnonzero(other != values)
        if flagged.size:
            shift = ONE_SIDED_SHIFT * np.maximum(1.0, np.abs(theta[flagged]))
            plus = complex_step_entries(spec, params, X, Y, name, flagged, real_shift=shift, tape=tape)
            minus = complex_step_entries(spec, params, X, Y, name, flagged, real_shift=-shift, tape=tape)
            lower, upper = bracket(spec, params, X, Y, name, flagged, minus, plus, tape=tape)
            kinks.add(name, params[name].shape, flagged, lower, upper)
    extra: dict[str, Any] = {"step": COMPLEX_STEP}
    extra.update(kinks.extra())
    return OracleOutput(grads=grads, loss=tape.loss, elapsed=time.perf_counter() - start, extra=extra)


def directional(spec: Spec, params: Params, X: Array, Y: Array, directions: list[Params]) -> np.ndarray:
    """⟨∇L, v⟩ = Im L(θ + i·h·v)/h: one complex loss evaluation per direction; NaN at an exact kink."""
    steps = np.full((len(directions), 1), 1j * COMPLEX_STEP)
    evaluation = direction_losses(spec, params, X, Y, directions, steps)
    values = evaluation.losses[:, 0].imag / COMPLEX_STEP
    tape = base_tape(spec, params, X, Y)
    if has_kinked_zeros(spec, tape):
        # The branch at an exact zero is a convention; whether it matters is decided per entry.
        other = direction_losses(spec, params, X, Y, directions, steps, zero_active=True)
        values = np.where(other.losses[:, 0].imag / COMPLEX_STEP != values, np.nan, values)
    return np.asarray(values, dtype=np.float64)


def gradients(spec: Mapping[str, Any] | Spec, params: Mapping[str, Array], X: Array, Y: Array) -> Params:
    """The subject protocol."""
    return ORACLE.gradients(spec, params, X, Y)


ORACLE = register(
    Oracle(
        name=NAME,
        evaluate=evaluate,
        kind="numeric",
        directional=directional,
        description="complex step Im L(θ+ih)/h, h = 1e-20, batched with rank-one layer updates",
    )
)
