"""Judging kink entries: gradient entries where relu/leaky_relu is not differentiable along the perturbation.

A numeric oracle flags such entries and gives each a bracket (:mod:`oracles.numeric.kink_brackets`).
There the derivative is a convention, so the entry is not compared with the oracle's central value;
the subject's value must lie inside its bracket.  Flagged entries are never dropped:
:func:`kink_record` lists every one in the record, passes the record as ``verdict="kink"`` when all lie
inside their bracket, and fails it otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oracles.registry import OracleOutput
from oracles.verdicts.blocks import record_from_blocks
from oracles.verdicts.records import Record
from oracles.verdicts.rounding_scale import case_magnitudes
from oracles.verdicts.tolerances import Tolerance, entry_tolerance
from reference_impl.case import Case
from reference_impl.spec import Array, Params

MAX_LISTED_KINKS = 200


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
