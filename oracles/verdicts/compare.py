"""The one comparer: subject gradients vs oracle gradients -> :class:`Record`.

Cheap first: where an oracle has a directional-derivative route (numeric oracles), a few random
projections ⟨∇L, v⟩ are compared before any full gradient is computed; only a failing projection pays
for full localisation.  Where the oracle's full gradient is as cheap as a projection (autodiff, exact),
the comparison is always per entry.  Localisation is per parameter block, then per layer's δ.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from oracles.registry import Oracle, OracleOutput, oracles_for_case
from oracles.subjects import Subject, SubjectCall, call_subject
from oracles.verdicts.blocks import case_record, record_from_blocks
from oracles.verdicts.kinks import kink_record
from oracles.verdicts.loss_check import loss_record
from oracles.verdicts.records import Record
from oracles.verdicts.tolerances import Tolerance, tolerance_for
from reference_impl.case import Case
from reference_impl.spec import Array, Params

N_PROJECTIONS = 3


def projection_directions(case: Case, n: int = N_PROJECTIONS) -> list[Params]:
    """Random, non-uniform directions (never all-ones) drawn from the case's own seed (read-only arrays)."""
    return list(_directions(case, n))


@lru_cache(maxsize=16)
def _directions(case: Case, n: int) -> tuple[Params, ...]:
    # Cached: every numeric oracle projects one case along the same directions.
    rng = np.random.default_rng([case.seed, 0xD1EC])
    shapes = {name: case.spec.parameter_shape(name) for name in case.spec.parameter_names}
    directions = tuple({name: rng.standard_normal(shape) for name, shape in shapes.items()} for _ in range(n))
    for direction in directions:
        for array in direction.values():
            array.setflags(write=False)
    return directions


def projection_record(
    case: Case, subject: str, oracle: Oracle, subject_grads: Params, tolerance: Tolerance
) -> tuple[Record, bool]:
    """⟨g_subject, v⟩ vs the oracle's directional derivative along v, for a few random v."""
    assert oracle.directional is not None
    params, X, Y = case.arrays()
    directions = projection_directions(case)
    start = time.perf_counter()
    oracle_values = np.asarray(oracle.directional(case.spec, params, X, Y, directions), dtype=np.float64)
    if not np.all(np.isfinite(oracle_values)):
        # A numeric oracle returns NaN along a direction that crosses a relu kink: the projection
        # says nothing there, so it is recorded as skipped and the full per-entry check decides.
        skipped = case_record(
            case,
            subject,
            oracle.name,
            "projection",
            "skip",
            message="projection inconclusive (a direction crosses a kink); compared per entry instead",
            elapsed=time.perf_counter() - start,
        )
        return skipped, False
    names = list(directions[0])
    terms = np.stack([np.concatenate([np.ravel(v[k]) for k in names]) for v in directions]) * np.concatenate(
        [np.ravel(subject_grads[k]) for k in names]
    )
    subject_values = terms.sum(axis=1)
    # The scale of a projection is Σ|g||v|, the size of the terms that were summed.
    scale = np.abs(terms).sum(axis=1)
    record = record_from_blocks(
        case,
        subject,
        oracle.name,
        "projection",
        {"projection": subject_values},
        {"projection": oracle_values},
        # The projection's own estimate below is already the summed-term scale: counted once, not
        # estimate_factor times, or a 1e-9 error in one entry would hide in a numeric oracle's projection.
        Tolerance(tolerance.rtol * 10, tolerance.atol, 1.0 if tolerance.estimate_factor else 0.0, tolerance.note),
        {"projection": scale * tolerance.rtol * 10},
        elapsed=time.perf_counter() - start,
    )
    return record, not record.failed


def protocol_record(
    case: Case, subject: str, oracle: str, category: str, message: str, parameter: str | None = None
) -> Record:
    return case_record(
        case, subject, oracle, "protocol", "fail", category=category, parameter=parameter, message=message
    )


def compare_to_oracle(
    case: Case,
    subject_name: str,
    subject_grads: Params,
    oracle: Oracle,
    *,
    dtype: str = "float64",
    subject_deltas: Sequence[Array] | None = None,
    outputs: dict[str, OracleOutput] | None = None,
) -> list[Record]:
    """Records for one subject against one oracle: gradients (and δ when both sides expose them).

    ``outputs``, when given, keeps the oracle's full output (if one was computed) under its name, so a
    caller that needs its values again (the entry table, the loss check) does not evaluate the oracle twice."""
    tolerance = tolerance_for(oracle.name, dtype)
    if oracle.directional is not None:
        record, passed = projection_record(case, subject_name, oracle, subject_grads, tolerance)
        if passed:
            return [record]
    params, X, Y = case.arrays()
    start = time.perf_counter()
    try:
        output: OracleOutput = oracle.evaluate(case.spec, params, X, Y)
    except Exception as exc:
        # An oracle that fails is a defect of the suite, reported as such rather than blamed on the subject.
        return [
            protocol_record(case, subject_name, oracle.name, "exception", f"oracle failed: {type(exc).__name__}: {exc}")
        ]
    if outputs is not None:
        outputs[oracle.name] = output
    return records_from_output(
        case, subject_name, subject_grads, oracle.name, output, tolerance, time.perf_counter() - start, subject_deltas
    )


def records_from_output(
    case: Case,
    subject_name: str,
    subject_grads: Params,
    oracle_name: str,
    output: OracleOutput,
    tolerance: Tolerance,
    elapsed: float = 0.0,
    subject_deltas: Sequence[Array] | None = None,
) -> list[Record]:
    """Gradient (and δ) records from an oracle output already computed (triangulation reuses outputs)."""
    if output.extra.get("kink_mask"):
        gradient = kink_record(case, subject_name, oracle_name, subject_grads, output, tolerance, elapsed)
    else:
        gradient = record_from_blocks(
            case, subject_name, oracle_name, "gradient", subject_grads, output.grads, tolerance, output.error, elapsed
        )
    records = [gradient]
    if subject_deltas is not None and output.deltas is not None:
        names = [f"delta{layer}" for layer in range(1, len(output.deltas) + 1)]
        records.append(
            record_from_blocks(
                case,
                subject_name,
                oracle_name,
                "delta",
                dict(zip(names, subject_deltas, strict=True)),
                dict(zip(names, output.deltas, strict=True)),
                tolerance,
            )
        )
    return records


def check_case(
    case: Case,
    subject: Subject,
    oracle_names: list[str] | None = None,
    *,
    dtype: str = "float64",
    outputs: dict[str, OracleOutput] | None = None,
    compared: Collection[str] = (),
    check_loss: bool = True,
    answer: SubjectAnswer | None = None,
) -> list[Record]:
    """Run ``subject`` on ``case`` and compare it with every (chosen) oracle that supports the case.

    ``outputs``: filled with the oracles' full outputs, as :func:`compare_to_oracle` does.  A subject with
    a ``loss`` companion also gets a ``loss`` record against the first oracle (one whose full evaluation
    was made anyway, when there is one).  What an isolated subject printed during the call is kept,
    bounded, in every record's ``extra["subject_output"]``.

    A case can be checked in two parts (a campaign's main process compares the cheap oracles while its
    workers start): ``compared`` names oracles among the chosen ones that the other part compared, which
    are not compared again, though their full outputs, passed in ``outputs``, still choose the loss
    check's judge as they would in one part; ``check_loss=False`` leaves the loss check to the other part;
    ``answer`` is the subject's answer that part got (:func:`subject_answer`), so it is not asked twice.
    """
    answer = subject_answer(subject, case) if answer is None else answer
    call, deltas = answer.call, answer.deltas
    oracles = oracles_for_case(case, oracle_names)
    todo = [o for o in oracles if o.name not in compared]
    if call.failure is not None or call.grads is None:
        failure = call.failure
        assert failure is not None
        faults = [
            protocol_record(case, subject.name, o.name, failure.category, failure.message, failure.parameter)
            for o in todo
        ]
        return with_call_notes(faults, call)
    records: list[Record] = []
    if outputs is None:
        outputs = {}
    for oracle in todo:
        compared_now = compare_to_oracle(
            case, subject.name, call.grads, oracle, dtype=dtype, subject_deltas=deltas, outputs=outputs
        )
        for record in compared_now:
            record.elapsed += call.elapsed
            records.append(record)
    if check_loss and subject.loss is not None and oracles:
        judge = next((o for o in oracles if o.name in outputs), oracles[0])
        records.append(loss_record(case, subject, judge, outputs.get(judge.name)))
    return with_call_notes(records, call)


@dataclass(frozen=True)
class SubjectAnswer:
    """A subject's answer on one case: its call (gradients or fault) and its δ (``deltas[l-1]`` is
    ``(n_l, m)``) when it exposes them and the call succeeded."""

    call: SubjectCall
    deltas: tuple[Array, ...] | None


def subject_answer(subject: Subject, case: Case) -> SubjectAnswer:
    call = call_subject(subject, case)
    deltas = None
    if subject.deltas is not None and call.failure is None and call.grads is not None:
        params, X, Y = case.arrays()
        deltas = tuple(subject.deltas(case.spec, params, X, Y))
    return SubjectAnswer(call, deltas)


def with_call_notes(records: list[Record], call: SubjectCall) -> list[Record]:
    """Records of one subject call, carrying what it printed (bounded, isolated subjects) and what it
    warned (captured, not printed)."""
    for record in records:
        if call.output_bytes:
            record.extra["subject_output"] = {"bytes": call.output_bytes, "start": call.output}
        if call.warnings:
            record.extra["subject_warnings"] = list(call.warnings)
    return records
