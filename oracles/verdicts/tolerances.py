"""Tolerances as data: one row per oracle (and dtype), each derived from that oracle's noise floor.

The comparison formula lives in :func:`entry_tolerance` and nowhere else.  An entry passes when

    |s_i − o_i| ≤ rtol · max(|o_i|, ‖o‖∞ of its block, Ḡ_i) + atol + estimate_factor · e_i

where ``e_i`` is the oracle's own per-entry error estimate (Richardson, central differences) or 0, and
Ḡ_i the magnitude of the terms that entry sums (:mod:`oracles.verdicts.rounding_scale`; 0 when not given).
Scaling by the block's ∞-norm keeps cancellation in small entries from being called a bug, while a
relative error of 1e-9 in a large entry is still far above a 1e-12 floor; Ḡ does the same when a whole
block is small because its terms cancel (a saturated output), where float64 cannot do better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference_impl.spec import Array

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float = 0.0
    estimate_factor: float = 0.0  # how many of the oracle's own error estimates an entry may be off
    note: str = ""


# Why each number:
# - reference / autodiff / exact oracles: float64 rounding of a few hundred flops, ≈ 4500 ulps headroom.
# - complex step: no subtractive cancellation, so it sits at the same floor as autodiff.
# - richardson: its own per-entry estimate sets the bar; rtol only covers the estimate's own rounding.
# - central differences: truncation O(h²) + rounding O(eps/h) with h ≈ ∛eps·max(1,|θ|) gives ≈ eps^(2/3)
#   ≈ 4e-11 relative per unit curvature; 1e-7 leaves room for curvature up to ~1e3.
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("reference", "float64"): Tolerance(1e-12, 1e-300, note="float64 rounding"),
    ("torch_autograd", "float64"): Tolerance(1e-12, 1e-300, note="float64 rounding"),
    ("torch_autograd", "float32"): Tolerance(1e-4, 1e-30, note="float32 rounding"),
    ("sympy_exact", "float64"): Tolerance(1e-12, 1e-300, note="exact, rounded once to float64"),
    ("complex_step", "float64"): Tolerance(1e-12, 1e-300, note="no cancellation"),
    ("richardson", "float64"): Tolerance(1e-12, 1e-300, estimate_factor=10.0, note="own error estimate"),
    ("finite_diff", "float64"): Tolerance(1e-7, 1e-10, estimate_factor=10.0, note="O(h²)+O(eps/h)"),
}
DEFAULT = Tolerance(1e-12, 1e-300, note="default float64 floor")
# A subject's loss value (its ``loss`` companion) against an oracle's.  Every loss here is a sum of
# non-negative terms, so a stable float64 evaluation is good to a few ulps; a naive log(1 − σ(z)) of a
# saturated unit loses digits (≈ 1e-7 relative at z = 25) without being a wrong formula, while a wrong
# formula (2L + 1, a missing 1/m, a ½) is off by a factor.
LOSS_TOLERANCE = Tolerance(1e-6, 1e-300, note="loss value; naive saturated logs lose digits")


def tolerance_for(oracle: str, dtype: str = "float64") -> Tolerance:
    return TOLERANCES.get((oracle, dtype), DEFAULT)


def entry_tolerance(
    oracle_values: Array, tolerance: Tolerance, estimate: Array | None = None, scale: Array | None = None
) -> Array:
    """Per-entry allowed |s − o| for one block (any shape); ``scale`` is Ḡ of the block, if known."""
    magnitude = np.abs(oracle_values)
    block_scale = float(magnitude.max()) if magnitude.size else 0.0
    floor = np.maximum(magnitude, block_scale)
    if scale is not None and np.shape(scale) == np.shape(oracle_values):
        floor = np.maximum(floor, scale)
    allowed = tolerance.rtol * floor + tolerance.atol
    if estimate is not None and tolerance.estimate_factor:
        allowed = allowed + tolerance.estimate_factor * np.abs(estimate)
    return np.asarray(allowed, dtype=np.float64)


def relative_error(subject_values: Array, oracle_values: Array) -> Array:
    """|s − o| / |o| with 0/0 = 0 and x/0 = inf: for reporting only, verdicts use entry_tolerance."""
    diff = np.abs(subject_values - oracle_values)
    denom = np.abs(oracle_values)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(denom > 0, diff / np.where(denom > 0, denom, 1.0), np.where(diff > 0, np.inf, 0.0))
    return np.asarray(rel, dtype=np.float64)
