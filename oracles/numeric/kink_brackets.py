"""Kink brackets: where a numeric oracle's own perturbation meets a relu/leaky_relu kink, the interval a
right subject's value must lie in.

An entry is flagged when its perturbation moves a relu/leaky_relu pre-activation across 0 (central
differences, Richardson) or when its derivative depends on the branch chosen at a pre-activation that is
exactly 0 (complex step).

When one perturbation crosses several kinks at once, the two one-sided derivatives choose each
kink's branch by the sign of that kink's own movement, so a subject that applies one convention at
every kink (relu'(0) = 0 everywhere, or = 1 everywhere) need not lie between them.  The bracket is
therefore the hull of the one-sided derivatives *and* the derivatives under both conventions, computed
exactly by complex step with the branch at 0 forced each way.  With a single kink the conventions
coincide with the one-sided values, so the bracket is exactly [min(D−, D+), max(D−, D+)].
The verdict on flagged entries is :mod:`oracles.numeric.kink_brackets`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oracles.numeric.imaginary import complex_step_entries
from oracles.numeric.tape import BaseTape
from reference_impl.spec import Array, Spec


def bracket(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    block: str,
    flat_indices: np.ndarray,
    one_sided_minus: Array,
    one_sided_plus: Array,
    *,
    tape: BaseTape | None = None,
) -> tuple[Array, Array]:
    """(lower, upper) per flagged entry: hull of D−, D+ and both conventions' exact derivatives."""
    inactive = complex_step_entries(spec, params, X, Y, block, flat_indices, zero_active=False)
    active = complex_step_entries(spec, params, X, Y, block, flat_indices, zero_active=True)
    stacked = np.stack([one_sided_minus, one_sided_plus, inactive, active])
    return stacked.min(axis=0), stacked.max(axis=0)


class KinkCollector:
    """Accumulates per-block kink masks and brackets into ``OracleOutput.extra``."""

    def __init__(self, relative_slack: float) -> None:
        self.relative_slack = relative_slack
        self.mask: dict[str, Array] = {}
        self.lower: dict[str, Array] = {}
        self.upper: dict[str, Array] = {}

    def add(self, block: str, shape: tuple[int, ...], flat_indices: np.ndarray, lower: Array, upper: Array) -> None:
        mask = np.zeros(int(np.prod(shape)), dtype=bool)
        lo = np.full(mask.size, np.nan)
        hi = np.full(mask.size, np.nan)
        mask[flat_indices], lo[flat_indices], hi[flat_indices] = True, lower, upper
        self.mask[block], self.lower[block], self.upper[block] = (
            mask.reshape(shape),
            lo.reshape(shape),
            hi.reshape(shape),
        )

    def add_differences(
        self,
        spec: Spec,
        params: Mapping[str, Array],
        X: Array,
        Y: Array,
        block: str,
        flat_indices: np.ndarray,
        plus: Array,
        minus: Array,
        h: Array,
        tape: BaseTape,
    ) -> None:
        """Bracket flagged entries from their losses L(θ ± h·e_i) and add them: D− = (L − L−)/h, D+ = (L+ − L)/h."""
        lower, upper = bracket(
            spec, params, X, Y, block, flat_indices, (tape.loss - minus) / h, (plus - tape.loss) / h, tape=tape
        )
        self.add(block, params[block].shape, flat_indices, lower, upper)

    def extra(self) -> dict[str, Any]:
        if not self.mask:
            return {}
        return {
            "kink_mask": self.mask,
            "kink_lower": self.lower,
            "kink_upper": self.upper,
            "kink_slack": self.relative_slack,
        }
