"""Precision findings: a subject inside the tolerance but measurably worse than the best float64 answer.

The tolerance admits every standard formulation (:mod:`oracles.verdicts.rounding_scale`, ``admitted``).
The same formula with the ``best`` bounds — cancellation-free derivatives, no block ∞-norm floor — says
what the most careful float64 code achieves against a precise oracle (exact, autodiff, complex step).  An
entry between the two is right but imprecise: the record stays a pass with category ``precision`` and
says how many digits are lost, in which block, and under which condition (the layer whose textbook
formulas explain the loss, and how saturated it is).  ``strict`` mode (:func:`apply_strict`) makes such
records failures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracles.verdicts.records import Record
from oracles.verdicts.rounding_scale import Bound, magnitudes
from oracles.verdicts.tolerances import EPS64, Tolerance, entry_tolerance
from reference_impl import mlp
from reference_impl.case import Case
from reference_impl.spec import Array

UNIT = EPS64 / 2
DIGITS = 15.95  # float64's significant decimal digits, log10(2^53)
FORMULAS = {
    "sigmoid": "σ'(z) formed with cancellation (σ(1 − σ), or σ itself as ½(1 + tanh(z/2)) or 1 − σ(−z))",
    "tanh": "tanh'(z) formed with cancellation (1 − tanh², or tanh as 2σ(2z) − 1)",
    "softplus": "softplus or its derivative σ(z) formed with an absolute error (log(1 + e^z), ½(1 + tanh(z/2)))",
}


@dataclass(frozen=True)
class BlockPrecision:
    """The entry of one block furthest beyond the best float64 bound."""

    index: tuple[int, ...]
    digits_lost: float  # log10 of the error over the best float64 error at that entry
    rel_err: float

    @property
    def digits_kept(self) -> float:
        return max(0.0, min(DIGITS, -math.log10(self.rel_err))) if self.rel_err > 0 else DIGITS


def block_precision(subject: Array, oracle: Array, tolerance: Tolerance, best: Bound | None) -> BlockPrecision | None:
    """None unless some entry of a (passing) block is beyond the best float64 bound of a precise oracle."""
    if not tolerance.precise or best is None or np.shape(best.M) != np.shape(oracle) or not np.size(oracle):
        return None
    diff = np.abs(subject - oracle)
    allowed = entry_tolerance(oracle, tolerance, None, best, block_floor=False)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        excess = np.where(allowed > 0, diff / allowed, np.where(diff > 0, np.inf, 0.0))
    flat = int(np.argmax(excess))
    if excess.flat[flat] <= 1.0:
        return None
    index = tuple(int(i) for i in np.unravel_index(flat, np.shape(oracle)))
    achievable = UNIT * max(float(np.abs(oracle[index])), float(best.M[index] + best.E[index]))
    lost = math.log10(float(diff[index]) / achievable) if achievable > 0 else DIGITS
    magnitude = abs(float(oracle[index]))
    rel = float(diff[index]) / magnitude if magnitude > 0 else math.inf
    return BlockPrecision(index, round(min(lost, DIGITS), 1), rel)


def _layer_of(block: str) -> int:
    digits = block.lstrip("Wbdelta")
    return int(digits) if digits.isdigit() else 1


def condition(case: Case, block: str, index: tuple[int, ...], error: float) -> str:
    """Which layer's textbook formulas explain an error of ``error`` at ``block[index]``, and in what regime."""
    params, X, Y = case.arrays()
    spec = case.spec
    first = max(1, _layer_of(block) - (1 if block.startswith("W") else 0))
    best = magnitudes(spec, params, X, Y, "best")[block]
    floor = float(best.E[index])
    costs: dict[int, float] = {}
    for layer in range(first, spec.depth + 1):
        if spec.activations[layer - 1] in FORMULAS:
            costs[layer] = float(magnitudes(spec, params, X, Y, "best", {layer})[block].E[index]) - floor
    if not costs or max(costs.values()) <= 0:
        return "not explained by a textbook formula on any one layer"
    layer = max(costs, key=lambda k: costs[k])
    name = spec.activations[layer - 1]
    z = mlp.forward(spec, params, X).z(layer)
    explained = "" if 16 * UNIT * costs[layer] >= error else " (only in part)"
    largest = float(np.abs(z).max())
    return f"layer {layer} ({name}): {FORMULAS[name]} in saturation, |z| up to {largest:.3g} here{explained}"


def precision_extra(
    case: Case, block: str, found: BlockPrecision, subject_value: float, oracle_value: float
) -> dict[str, Any]:
    error = abs(subject_value - oracle_value)
    return {
        "block": block,
        "index": list(found.index),
        "digits_lost": found.digits_lost,
        "digits_kept": round(found.digits_kept, 1),
        "subject": subject_value,
        "oracle": oracle_value,
        "condition": condition(case, block, found.index, error),
    }


def message(extra: dict[str, Any]) -> str:
    where = f"{extra['block']}[{','.join(str(i) for i in extra['index'])}]"
    return (
        f"right within the tolerance, but {where} keeps {extra['digits_kept']:.0f} of 16 digits "
        f"({extra['digits_lost']:.1f} fewer than the best float64 answer): {extra['condition']}"
    )


def imprecise_case(records: Iterable[Record]) -> bool:
    """A case right everywhere but with a precision finding somewhere."""
    listed = list(records)
    return not any(r.failed for r in listed) and any(r.category == "precision" for r in listed)


def apply_strict(records: Iterable[Record]) -> list[Record]:
    """``--strict``: a precision finding is a failure."""
    out = []
    for record in records:
        if record.category == "precision" and record.verdict == "pass":
            record.verdict = "fail"
            record.message = f"strict: {record.message}"
        out.append(record)
    return out
