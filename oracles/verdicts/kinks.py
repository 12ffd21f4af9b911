"""Kinks: gradient entries where relu/leaky_relu is not differentiable along the perturbation.

A numeric oracle flags an entry as a kink when its own perturbation moves a relu/leaky_relu
pre-activation across 0 (central differences, Richardson) or when the entry's derivative depends on the
branch chosen at a pre-activation that is exactly 0 (complex step).  There the derivative is a
convention, so the entry is not compared with the oracle's central value; it is checked against a
*bracket*: the subject's value must lie between the one-sided derivatives.

When one perturbation crosses several kinks at once, the two one-sided derivatives choose each
kink's branch by the sign of that kink's own movement, so a subject that applies one convention at
every kink (relu'(0) = 0 everywhere, or = 1 everywhere) need not lie between them.  The bracket is
therefore the hull of the one-sided derivatives *and* the derivatives under both conventions, computed
exactly by complex step with the branch at 0 forced each way.  With a single kink the conventions
coincide with the one-sided values, so the bracket is exactly [min(D−, D+), max(D−, D+)].

Flagged entries are never dropped: :func:`kink_record` lists every one in the record, passes the
record as ``verdict="kink"`` when all lie inside their bracket, and fails it otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oracles.numeric.forward import BaseTape, complex_step_entries
from oracles.registry import OracleOutput
from oracles.verdicts.blocks import record_from_blocks
from oracles.verdicts.records import Record
from oracles.verdicts.rounding_scale import case_magnitudes
from oracles.verdicts.tolerances import Tolerance, entry_tolerance
from reference_impl.case import Case
from reference_impl.spec import Array, Params, Spec

MAX_LISTED_KINKS = 200


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


def kink_entries(output: OracleOutput) -> int:
    masks = output.extra.get("kink_mask") or {}
    return int(sum(int(np.count_nonzero(m)) for m in masks.values()))


def kink_record(
    case: Case,
    subject: str,
    oracle: str,
    subject_grads: Params,
    output: OracleOutput,
    tolerance: Tolerance,
    elapsed: float = 0.0,
) -> Record:
    """The gradient record for an oracle that flagged kinks: smooth entries as usual, kinks by bracket."""
    masks: Mapping[str, Array] = output.extra.get("kink_mask") or {}
    lowers: Mapping[str, Array] = output.extra.get("kink_lower") or {}
    uppers: Mapping[str, Array] = output.extra.get("kink_upper") or {}
    slack = float(output.extra.get("kink_slack", 0.0))
    # Kink entries are judged against their bracket below, so the smooth comparison skips them.
    smooth_oracle = {
        name: np.where(masks[name], subject_grads[name], values) if name in masks else values
        for name, values in output.grads.items()
    }
    record = record_from_blocks(
        case, subject, oracle, "gradient", subject_grads, smooth_oracle, tolerance, output.error, elapsed
    )
    listed: list[dict[str, Any]] = []
    outside: list[dict[str, Any]] = []
    for name, mask in masks.items():
        if not np.any(mask):
            continue
        oracle_block = output.grads[name]
        estimate = output.error.get(name) if output.error else None
        scale = case_magnitudes(case).get(name)
        allowed = entry_tolerance(oracle_block, tolerance, estimate, scale) + slack * float(np.abs(oracle_block).max())
        s = subject_grads[name]
        inside = (s >= lowers[name] - allowed) & (s <= uppers[name] + allowed)
        for index in zip(*np.nonzero(mask), strict=True):
            entry = {
                "parameter": name,
                "index": [int(i) for i in index],
                "subject": float(s[index]),
                "lower": float(lowers[name][index]),
                "upper": float(uppers[name][index]),
                "oracle": float(oracle_block[index]),
                "allowed": float(allowed[index]),
                "inside": bool(inside[index]),
            }
            listed.append(entry)
            if not entry["inside"]:
                outside.append(entry)
        block = record.blocks[name]
        if not np.all(inside[mask]):
            block["verdict"] = "fail"
        elif block["verdict"] == "pass":
            block["verdict"] = "kink"
    record.extra["kinks"] = listed[:MAX_LISTED_KINKS]
    record.extra["n_kink_entries"] = len(listed)
    if outside:
        worst = max(outside, key=lambda e: min(abs(e["subject"] - e["lower"]), abs(e["subject"] - e["upper"])))
        if not record.failed:
            record.parameter, record.index = worst["parameter"], worst["index"]
            record.subject_value, record.oracle_value = worst["subject"], worst["oracle"]
            record.abs_err = min(abs(worst["subject"] - worst["lower"]), abs(worst["subject"] - worst["upper"]))
            record.tolerance = worst["allowed"]
        record.verdict, record.category = "fail", "mismatch"
        record.message = (
            f"{len(outside)} kink entries outside their one-sided derivatives, e.g. {worst['parameter']}"
            f"{worst['index']}: subject {worst['subject']!r} not in [{worst['lower']!r}, {worst['upper']!r}]"
            + (f"; {record.message}" if record.message else "")
        )
    elif not record.failed:
        record.verdict, record.category = "kink", "kink"
        record.message = (
            f"{len(listed)} entries at relu/leaky_relu kinks, each between its one-sided derivatives; "
            "all other entries agree"
        )
    return record
