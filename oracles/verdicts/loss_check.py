"""A subject's optional ``loss`` companion against an oracle's loss value: one record, category ``loss``.

The value must be one real, finite number; it passes when it is within :data:`LOSS_TOLERANCE` of the
oracle's loss (the comparison formula is :func:`oracles.verdicts.tolerances.entry_tolerance`, as for
gradients).  A companion that raises, crashes, hangs or returns something else fails with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oracles.registry import Oracle, OracleOutput
from oracles.subjects import Subject, call_loss
from oracles.verdicts.blocks import case_record, compare_block
from oracles.verdicts.records import Record
from oracles.verdicts.tolerances import LOSS_TOLERANCE
from reference_impl.case import Case

CHECK = "loss"


def loss_value(raw: Any) -> tuple[float | None, str | None]:
    """``raw`` as one finite float, or the reason it is not one."""
    try:
        array = np.asarray(raw)
    except (TypeError, ValueError) as exc:
        return None, f"returned {type(raw).__name__}, not a number ({exc})"
    if array.size != 1:
        return None, f"returned an array of shape {array.shape}, expected one number"
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        return None, f"returned {type(raw).__name__} of dtype {array.dtype}, expected a real number"
    value = float(array.reshape(()))
    if not np.isfinite(value):
        return None, f"returned {value!r}"
    return value, None


def _failed(case: Case, subject: Subject, oracle: Oracle, message: str) -> Record:
    return case_record(
        case, subject.name, oracle.name, CHECK, "fail", category="loss", parameter="loss", message=message
    )


def loss_record(
    case: Case,
    subject: Subject,
    oracle: Oracle,
    output: OracleOutput | None = None,
    *,
    factor: float = 1.0,
    timeout: float | None = None,
) -> Record:
    """The subject's loss on ``case`` (divided by a declared convention's ``factor``) against ``oracle``'s.

    ``output``: the oracle's evaluation of this case when the caller already has it.
    """
    call = call_loss(subject, case, timeout=timeout)
    if call.failure is not None:
        failure = call.failure
        return _failed(case, subject, oracle, f"the loss companion failed [{failure.category}]: {failure.message}")
    value, problem = loss_value(call.raw)
    if value is None:
        return _failed(case, subject, oracle, f"the loss companion {problem}")
    if output is None or output.loss is None:
        params, X, Y = case.arrays()
        try:
            output = oracle.evaluate(case.spec, params, X, Y)
        except Exception as exc:  # the oracle's own failure is not the subject's
            return case_record(
                case, subject.name, oracle.name, CHECK, "skip", message=f"oracle failed: {type(exc).__name__}: {exc}"
            )
    if output.loss is None:
        return case_record(case, subject.name, oracle.name, CHECK, "skip", message=f"{oracle.name} gives no loss")
    subject_loss = value / factor
    block, _ = compare_block("loss", np.array([subject_loss]), np.array([output.loss]), LOSS_TOLERANCE)
    verdict = "pass" if block.passed else "fail"
    summary = {
        "verdict": verdict,
        "index": [0],
        "subject": block.subject_value,
        "oracle": block.oracle_value,
        "abs_err": block.abs_err,
        "rel_err": block.rel_err,
        "tolerance": block.tolerance,
        "ratio": block.ratio,
    }
    message = "" if block.passed else f"the loss companion returned {value!r}; {oracle.name}'s loss is {output.loss!r}"
    if factor != 1.0:
        message += f" (divided by the declared convention's factor {factor:g})" if message else ""
    return case_record(
        case,
        subject.name,
        oracle.name,
        CHECK,
        verdict,
        category=None if block.passed else "loss",
        parameter="loss",
        index=[0],
        subject_value=block.subject_value,
        oracle_value=block.oracle_value,
        abs_err=block.abs_err,
        rel_err=block.rel_err,
        tolerance=block.tolerance,
        message=message,
        elapsed=call.elapsed,
        blocks={"loss": summary},
        extra={"tolerance_note": LOSS_TOLERANCE.note},
    )
