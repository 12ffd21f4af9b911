"""Tolerances as data: one row per oracle (and dtype), each derived from that oracle's noise floor.

The comparison formula lives in :func:`entry_tolerance` and nowhere else.  An entry passes when

    |s_i − o_i| ≤ rtol · max(|o_i|, ‖o‖∞ of its block, M_i) + carried · E_i + atol + estimate_factor · e_i

where ``e_i`` is the oracle's own per-entry error estimate (Richardson, central differences) or 0, and
(M_i, E_i) the bound of that entry (:mod:`oracles.verdicts.rounding_scale`; 0 when not given): M the
magnitude of the terms it sums, E the errors carried into it from earlier operations (a cancelling
pre-activation under a steep derivative, the absolute error of σ(1 − σ) or 1 − tanh² in saturation).
Scaling by the block's ∞-norm keeps cancellation in small entries from being called a bug, while a
relative error of 1e-9 in a large entry is still far above a 1e-12 floor; M does the same when a whole
block is small because its terms cancel (a saturated output), and E where the admitted textbook formulas
round to a few u absolutely — float64 cannot do better there.

The same formula without the block's ∞-norm and with the ``best`` bounds (cancellation-free formulas)
says what the most careful float64 code achieves: a subject between the two is right but imprecise
(:mod:`oracles.verdicts.precision`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from oracles.verdicts.rounding_scale import Bound
from reference_impl.spec import Array

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


# Errors carried from one earlier rounding (E, in units of u): 16 u covers a fan-in of up to 16 terms in
# the sum that made them, and the subject's and the oracle's rounding together.
CARRIED64 = 16 * EPS64 / 2
CARRIED32 = 16 * EPS32 / 2


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float = 0.0
    estimate_factor: float = 0.0  # how many of the oracle's own error estimates an entry may be off
    note: str = ""
    carried: float = CARRIED64  # per unit of carried error E (rounding_scale)
    precise: bool = False  # as good as the best float64 answer: precision findings are measured against it


# Why each number:
# - reference / autodiff / exact oracles: float64 rounding of a few hundred flops, ≈ 4500 ulps headroom.
# - complex step: no subtractive cancellation, so it sits at the same floor as autodiff.
# - richardson: its own per-entry estimate sets the bar; rtol only covers the estimate's own rounding.
# - central differences: truncation O(h²) + rounding O(eps/h) with h ≈ ∛eps·max(1,|θ|) gives ≈ eps^(2/3)
#   ≈ 4e-11 relative per unit curvature; 1e-7 leaves room for curvature up to ~1e3.
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("reference", "float64"): Tolerance(1e-12, 1e-300, note="float64 rounding", precise=True),
    ("torch_autograd", "float64"): Tolerance(1e-12, 1e-300, note="float64 rounding", precise=True),
    ("torch_autograd", "float32"): Tolerance(1e-4, 1e-30, note="float32 rounding", carried=CARRIED32),
    ("sympy_exact", "float64"): Tolerance(1e-12, 1e-300, note="exact, rounded once to float64", precise=True),
    ("complex_step", "float64"): Tolerance(1e-12, 1e-300, note="no cancellation", precise=True),
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
    oracle_values: Array,
    tolerance: Tolerance,
    estimate: Array | None = None,
    scale: Bound | Array | None = None,
    *,
    block_floor: bool = True,
) -> Array:
    """Per-entry allowed |s − o| for one block (any shape).

    ``scale``: the block's bound (M, E) from :mod:`oracles.verdicts.rounding_scale` (an array is taken as
    M alone); ``block_floor=False`` drops the block's ∞-norm from the floor (the precision yardstick).
    """
    magnitude = np.abs(oracle_values)
    floor = magnitude
    if block_floor and magnitude.size:
        floor = np.maximum(magnitude, float(magnitude.max()))
    M: Array | None
    carried: Array | None
    if isinstance(scale, Bound):
        M, carried = scale.M, scale.E
    else:
        M, carried = scale, None
    if M is not None and np.shape(M) == np.shape(oracle_values):
        floor = np.maximum(floor, M)
    allowed = tolerance.rtol * floor + tolerance.atol
    if carried is not None and np.shape(carried) == np.shape(oracle_values):
        allowed = allowed + tolerance.carried * carried
    if estimate is not None and tolerance.estimate_factor:
        allowed = allowed + tolerance.estimate_factor * np.abs(estimate)
    return np.asarray(allowed, dtype=np.float64)


def relative_error(subject_values: Array, oracle_values: Array) -> Array:
    """|s − o| / |o| with 0/0 = 0 and x/0 = inf: for reporting only, verdicts use entry_tolerance."""
    diff = np.abs(subject_values - oracle_values)
    denom = np.abs(oracle_values)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = np.where(denom > 0, diff / np.where(denom > 0, denom, 1.0), np.where(diff > 0, np.inf, 0.0))
    return np.asarray(rel, dtype=np.float64)
