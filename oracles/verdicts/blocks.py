"""Block-wise comparison: one parameter (or δ) block of a subject against an oracle's, and the record
built from all blocks of one check.  The per-entry pass/fail formula itself lives in
:func:`oracles.verdicts.tolerances.entry_tolerance`; this module applies it block by block and summarises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracles.verdicts.precision import BlockPrecision, block_precision, precision_extra
from oracles.verdicts.precision import message as precision_message
from oracles.verdicts.records import Record
from oracles.verdicts.rounding_scale import Bound, case_magnitudes
from oracles.verdicts.tolerances import Tolerance, entry_tolerance, relative_error
from reference_impl.case import Case
from reference_impl.spec import Array

HEATMAP_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class BlockResult:
    name: str
    passed: bool
    index: tuple[int, ...]
    subject_value: float
    oracle_value: float
    abs_err: float
    rel_err: float
    tolerance: float
    ratio: float  # abs_err / tolerance at the worst entry: > 1 fails
    estimate: float | None = None  # the oracle's own error estimate at that entry (Richardson, FD)
    precision: BlockPrecision | None = None  # passing, but beyond the best float64 answer somewhere


def layer_of(block: str) -> int | None:
    """``"W3"``/``"b3"``/``"delta3"`` -> 3; blocks that are not a layer's (``"projection"``) -> None."""
    digits = block.lstrip("Wbdelta")
    return int(digits) if digits.isdigit() else None


def compare_block(
    name: str,
    subject: Array,
    oracle: Array,
    tolerance: Tolerance,
    estimate: Array | None = None,
    scale: Bound | None = None,
    best: Bound | None = None,
) -> tuple[BlockResult, Array]:
    """Compare one block entrywise; returns the worst entry and the |Δ| array.  ``scale``: the block's
    bound (M, E) from :mod:`oracles.verdicts.rounding_scale`; ``best``: its bound for the cancellation-free
    formulas, against which a passing block's precision is measured."""
    diff = np.abs(subject - oracle)
    allowed = entry_tolerance(oracle, tolerance, estimate, scale)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(allowed > 0, diff / allowed, np.where(diff > 0, np.inf, 0.0))
    flat = int(np.argmax(ratio)) if ratio.size else 0
    index = tuple(int(i) for i in np.unravel_index(flat, ratio.shape)) if ratio.size else ()
    rel = relative_error(subject, oracle)
    worst_ratio = float(ratio[index]) if ratio.size else 0.0
    passed = bool(np.all(ratio <= 1.0))
    return (
        BlockResult(
            name=name,
            passed=passed,
            index=index,
            subject_value=float(subject[index]) if ratio.size else 0.0,
            oracle_value=float(oracle[index]) if ratio.size else 0.0,
            abs_err=float(diff[index]) if ratio.size else 0.0,
            rel_err=float(rel[index]) if ratio.size else 0.0,
            tolerance=float(allowed[index]) if ratio.size else 0.0,
            ratio=worst_ratio,
            estimate=float(np.abs(estimate)[index]) if estimate is not None and ratio.size else None,
            precision=block_precision(subject, oracle, tolerance, best) if passed else None,
        ),
        diff,
    )


def _block_dict(block: BlockResult) -> dict[str, Any]:
    out = {
        "verdict": "pass" if block.passed else "fail",
        "index": list(block.index),
        "subject": block.subject_value,
        "oracle": block.oracle_value,
        "abs_err": block.abs_err,
        "rel_err": block.rel_err,
        "tolerance": block.tolerance,
        "ratio": block.ratio,
    }
    if block.estimate is not None:
        out["estimate"] = block.estimate  # part of the record: it set this entry's tolerance
    if block.precision is not None:
        out["digits_lost"] = block.precision.digits_lost
    return out


def record_from_blocks(
    case: Case,
    subject: str,
    oracle: str,
    check: str,
    subject_blocks: Mapping[str, Array],
    oracle_blocks: Mapping[str, Array],
    tolerance: Tolerance,
    estimates: Mapping[str, Array] | None = None,
    elapsed: float = 0.0,
) -> Record:
    """Compare every block, and summarise in one record led by the worst entry."""
    blocks: list[BlockResult] = []
    heat: dict[str, list[Any]] = {}
    scales = case_magnitudes(case)
    best = case_magnitudes(case, "best") if tolerance.precise else {}
    for name, oracle_values in oracle_blocks.items():
        estimate = estimates.get(name) if estimates else None
        block, diff = compare_block(
            name, subject_blocks[name], oracle_values, tolerance, estimate, scales.get(name), best.get(name)
        )
        blocks.append(block)
        if diff.size <= HEATMAP_MAX_ENTRIES:
            heat[name] = diff.tolist()
    failing = [b for b in blocks if not b.passed]
    worst = max(blocks, key=lambda b: b.ratio)
    # Backprop flows from the output: the deepest failing layer is where the error entered.
    failing_layers = [layer for layer in (layer_of(b.name) for b in failing) if layer is not None]
    first_wrong = max(failing_layers, default=None)
    extra: dict[str, Any] = {"tolerance_note": tolerance.note}
    if worst.estimate is not None:
        extra["oracle_estimate"] = worst.estimate
    if failing:
        extra["abs_diff"] = heat
        extra["first_wrong_layer"] = first_wrong
    imprecise = [b for b in blocks if b.precision is not None]
    category = "mismatch" if failing else None
    message = f"{len(failing)} of {len(blocks)} blocks outside tolerance" if failing else ""
    if imprecise and not failing:
        found = max(imprecise, key=lambda b: b.precision.digits_lost if b.precision else 0.0)
        assert found.precision is not None
        index = found.precision.index
        finding = precision_extra(
            case,
            found.name,
            found.precision,
            float(subject_blocks[found.name][index]),
            float(oracle_blocks[found.name][index]),
        )
        extra["precision"] = finding
        category, message = "precision", precision_message(finding)
    return Record(
        case_id=case.id,
        case=repr(case),
        spec=case.spec.to_dict(),
        subject=subject,
        oracle=oracle,
        check=check,
        verdict="fail" if failing else "pass",
        category=category,
        parameter=worst.name,
        index=list(worst.index),
        subject_value=worst.subject_value,
        oracle_value=worst.oracle_value,
        abs_err=worst.abs_err,
        rel_err=worst.rel_err,
        tolerance=worst.tolerance,
        layer=first_wrong if failing else layer_of(worst.name),
        message=message,
        elapsed=elapsed,
        blocks={b.name: _block_dict(b) for b in blocks},
        extra=extra,
    )


def case_record(case: Case, subject: str, oracle: str, check: str, verdict: str, **fields: Any) -> Record:
    """A record about ``case`` with no compared entries (protocol faults, skipped checks)."""
    return Record(
        case_id=case.id,
        case=repr(case),
        spec=case.spec.to_dict(),
        subject=subject,
        oracle=oracle,
        check=check,
        verdict=verdict,
        **fields,
    )
