"""Step sizes of the real-step oracles, and the rounding error of a difference of two perturbed losses.

Also θ as one flat vector, the form in which steps and gradients are compared entry by entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from oracles.numeric.tape import BaseTape
from reference_impl.spec import Array, Spec

EPS = float(np.finfo(np.float64).eps)


def cbrt_eps_step(theta: Array) -> Array:
    """Central-difference step ∛eps·max(1, |θ|): balances O(h²) truncation against O(eps/h) rounding."""
    return np.cbrt(EPS) * np.maximum(1.0, np.abs(theta))


def input_scale(tape: BaseTape, block: str) -> Array:
    """Per entry of ``block`` (flattened): max(1, ‖a^[l-1][k, :]‖∞) for W^[l][j, k], 1 for b^[l][j].

    The loss sees W[j, k] only through z = W a + b, where a step h moves z by h·a[k, :]: dividing the
    step by this scale makes it a step of the intended size *in z*, so large inputs do not inflate the
    O(h²) truncation error.
    """
    layer = int(block[1:])
    a_prev = tape.a[layer - 1]
    rows = tape.z[layer - 1].shape[0]
    if block[0] == "b":
        return np.ones(rows)
    per_input = np.maximum(1.0, np.abs(a_prev).max(axis=1))  # (n_{l-1},)
    return np.tile(per_input, rows)


def difference_rounding(spec: Spec, base_loss: float, plus: Array, minus: Array, steps: Array) -> Array:
    """Rounding in (L+ − L−)/2h: eps·(|L+| + |L−| + 2|L|)·(depth + 1)/2h, per entry (any common shape)."""
    return EPS * (np.abs(plus) + np.abs(minus) + 2.0 * abs(base_loss)) * (spec.depth + 1) / (2.0 * steps)


def flat(params: Mapping[str, Array], names: Sequence[str]) -> Array:
    return np.concatenate([np.asarray(params[n], dtype=np.float64).ravel() for n in names])
