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


def loss_terms(spec: Spec, base_loss: float, z_out: Array) -> float:
    """The size of the terms a loss value is summed from, ≥ |L|.

    A cross-entropy is formed from terms of the size of the logits (log-sum-exp of z minus y·z, softplus(z)
    minus y·z) that cancel when the network is confidently right: L ≈ 1e-9 out of terms near 20 still
    rounds at eps·20, not at eps·|L|.  Squared losses sum non-negative terms, so |L| is their size.
    """
    if spec.loss in ("bce", "cce"):
        m = z_out.shape[1]
        return max(abs(base_loss), 2.0 * float(np.abs(z_out).sum()) / m)
    return abs(base_loss)


def difference_rounding(spec: Spec, terms: float, plus: Array, minus: Array, steps: Array) -> Array:
    """Rounding in (L+ − L−)/2h: eps·(|L+| + |L−| + 2T)·(depth + 1)/2h per entry (any common shape), T the
    size of the loss's terms (:func:`loss_terms`), which bounds the rounding of L± as well."""
    spread = np.maximum(np.abs(plus), terms) + np.maximum(np.abs(minus), terms) + 2.0 * terms
    return EPS * spread * (spec.depth + 1) / (2.0 * steps)


def flat(params: Mapping[str, Array], names: Sequence[str]) -> Array:
    return np.concatenate([np.asarray(params[n], dtype=np.float64).ravel() for n in names])
