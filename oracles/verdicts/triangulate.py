"""Triangulation: several independent oracles, an agreement matrix, and the odd one out.

One wrong oracle should not make a correct subject look wrong n−1 times, and a coarse oracle should not
be blamed for missing an error below its noise floor.  :func:`triangulate` evaluates every oracle on a
case once, compares every pair of participants (the subject and each oracle) at the pair's *looser*
tolerance (each row of :mod:`oracles.verdicts.tolerances` is that oracle's noise floor), and:

- names the **odd one out** when every disagreement involves one participant, and it disagrees with at
  least two others and with more than half of them; a subject record against an odd *oracle* is
  re-labelled ``skip`` (the oracle is at fault, not the subject);
- marks a passing record ``extra["below_noise_floor"] = True`` when the subject failed against a
  finer oracle that this coarser oracle agrees with: the difference is real but under its floor.

Entries flagged as kinks by either side of a pair are judged by the subject records' brackets, not by
the pairwise matrix; the matrix says how many it set aside.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oracles.registry import Oracle, OracleOutput, get_oracle
from oracles.subjects import Subject, call_subject
from oracles.verdicts.blocks import compare_block
from oracles.verdicts.compare import protocol_record, records_from_output
from oracles.verdicts.records import Record
from oracles.verdicts.rounding_scale import Bound, case_magnitudes
from oracles.verdicts.tolerances import Tolerance, relative_error, tolerance_for
from reference_impl.case import Case
from reference_impl.spec import Array, Params


@dataclass(frozen=True)
class Participant:
    name: str
    grads: Params
    tolerance: Tolerance
    error: Params | None = None
    kink_mask: Mapping[str, Array] | None = None


@dataclass
class Triangulation:
    """``ratios[i][j]``: worst |Δ|/allowed between participants i and j (≤ 1 agrees); index 0 is the subject."""

    case_id: str
    participants: list[str]
    ratios: list[list[float]]
    odd_one_out: str | None
    records: list[Record]
    set_aside_kinks: dict[str, int] = field(default_factory=dict)

    @property
    def agreement(self) -> list[list[bool]]:
        return [[r <= 1.0 for r in row] for row in self.ratios]

    def disagreeing_pairs(self) -> list[tuple[str, str]]:
        names = self.participants
        return [
            (names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names)) if self.ratios[i][j] > 1.0
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "participants": self.participants,
            "ratios": self.ratios,
            "agreement": self.agreement,
            "odd_one_out": self.odd_one_out,
            "set_aside_kinks": self.set_aside_kinks,
        }

    def table(self) -> str:
        """The agreement matrix as text: ✓ agree, ✗ disagree, with the worst ratio."""
        width = max(len(n) for n in self.participants)
        lines = [" " * width + "  " + "  ".join(f"{n[:10]:>10}" for n in self.participants)]
        for name, row in zip(self.participants, self.ratios, strict=True):
            cells = "  ".join(f"{('✓' if r <= 1 else '✗') + f' {r:.1e}':>10}" for r in row)
            lines.append(f"{name:>{width}}  {cells}")
        if self.odd_one_out:
            lines.append(f"odd one out: {self.odd_one_out}")
        return "\n".join(lines)


def looser(a: Tolerance, b: Tolerance) -> Tolerance:
    return Tolerance(
        max(a.rtol, b.rtol),
        max(a.atol, b.atol),
        max(a.estimate_factor, b.estimate_factor),
        f"looser of ({a.note}) and ({b.note})",
    )


def pair_ratio(first: Participant, second: Participant, scales: Mapping[str, Bound] | None = None) -> tuple[float, int]:
    """Worst |Δ|/allowed over all blocks at the looser tolerance, and how many kink entries were set aside.

    ``scales``: the bound per block (:mod:`oracles.verdicts.rounding_scale`), the same the records use."""
    tolerance = looser(first.tolerance, second.tolerance)
    worst, set_aside = 0.0, 0
    for name, values in second.grads.items():
        other = first.grads[name]
        masks = [p.kink_mask[name] for p in (first, second) if p.kink_mask and name in p.kink_mask]
        if masks:
            mask = np.logical_or.reduce(masks)
            set_aside += int(np.count_nonzero(mask))
            other = np.where(mask, values, other)
        estimates = [np.abs(p.error[name]) for p in (first, second) if p.error and name in p.error]
        estimate = np.sum(estimates, axis=0) if estimates else None
        block, _ = compare_block(name, other, values, tolerance, estimate, scales.get(name) if scales else None)
        worst = max(worst, block.ratio)
    return worst, set_aside


def odd_one_out(names: Sequence[str], ratios: Sequence[Sequence[float]]) -> str | None:
    """The participant in every disagreement, disagreeing with ≥ 2 others and with more than half."""
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names)) if ratios[i][j] > 1.0]
    if not pairs:
        return None
    for candidate in range(len(names)):
        if all(candidate in pair for pair in pairs):
            against = len(pairs)
            if against >= 2 and against > (len(names) - 1) / 2:
                return names[candidate]
    return None


def _resolve(oracles: Sequence[str | Oracle] | None) -> list[Oracle]:
    if oracles is None:
        from oracles.registry import all_oracles

        return list(all_oracles().values())
    return [o if isinstance(o, Oracle) else get_oracle(o) for o in oracles]


def triangulate(
    case: Case, subject: Subject, oracles: Sequence[str | Oracle] | None = None, *, dtype: str = "float64"
) -> Triangulation:
    """Subject records against every (supporting) oracle, the agreement matrix and the odd one out."""
    chosen = [o for o in _resolve(oracles) if o.supports_case(case)]
    call = call_subject(subject, case)
    if call.failure is not None or call.grads is None:
        failure = call.failure
        assert failure is not None
        protocol = [
            protocol_record(case, subject.name, o.name, failure.category, failure.message, failure.parameter)
            for o in chosen
        ]
        return Triangulation(case.id, [subject.name], [[0.0]], None, protocol)
    participants = [Participant(subject.name, call.grads, tolerance_for(subject.name, dtype))]
    records: list[Record] = []
    tolerances: dict[str, Tolerance] = {}
    for oracle in chosen:
        params, X, Y = case.arrays()
        start = time.perf_counter()
        try:
            output: OracleOutput = oracle.evaluate(case.spec, params, X, Y)
        except Exception as exc:
            message = f"oracle failed: {type(exc).__name__}: {exc}"
            records.append(protocol_record(case, subject.name, oracle.name, "exception", message))
            continue
        tolerance = tolerance_for(oracle.name, dtype)
        tolerances[oracle.name] = tolerance
        for record in records_from_output(
            case, subject.name, call.grads, oracle.name, output, tolerance, time.perf_counter() - start
        ):
            record.elapsed += call.elapsed
            records.append(record)
        participants.append(
            Participant(oracle.name, output.grads, tolerance, output.error, output.extra.get("kink_mask"))
        )
    names = [p.name for p in participants]
    ratios = [[0.0] * len(participants) for _ in participants]
    set_aside: dict[str, int] = {}
    for i, first in enumerate(participants):
        for j in range(i + 1, len(participants)):
            ratio, kinks = pair_ratio(first, participants[j], case_magnitudes(case))
            ratios[i][j] = ratios[j][i] = ratio
            if kinks:
                set_aside[f"{first.name}|{participants[j].name}"] = kinks
    odd = odd_one_out(names, ratios) if len(participants) >= 4 else None
    _annotate(records, subject.name, names, ratios, odd, tolerances, call.grads)
    return Triangulation(case.id, names, ratios, odd, records, set_aside)


def _annotate(
    records: list[Record],
    subject_name: str,
    names: list[str],
    ratios: list[list[float]],
    odd: str | None,
    tolerances: Mapping[str, Tolerance],
    subject_grads: Params,
) -> None:
    index = {name: i for i, name in enumerate(names)}
    gradient_records = [r for r in records if r.check == "gradient"]
    failed = [r for r in gradient_records if r.failed and r.category == "mismatch"]
    for record in records:
        record.extra["triangulation"] = {"participants": names, "odd_one_out": odd}
        if odd is not None and odd != subject_name and record.oracle == odd and record.failed:
            record.verdict, record.category = "skip", None
            record.message = (
                f"oracle {odd} is the odd one out: it disagrees with every other participant, "
                f"who all agree; not counted against the subject ({record.message})"
            )
    for record in gradient_records:
        if record.failed or record.oracle not in tolerances:
            continue
        own = tolerances[record.oracle]
        finer = [
            r
            for r in failed
            if r.oracle in tolerances
            and tolerances[r.oracle].rtol < own.rtol
            and ratios[index[r.oracle]][index[record.oracle]] <= 1.0
        ]
        if finer:
            witness = min(finer, key=lambda r: tolerances[r.oracle].rtol)
            rel = float(np.max(relative_error(np.array(witness.subject_value), np.array(witness.oracle_value))))
            record.extra["below_noise_floor"] = True
            record.extra["caught_by"] = [r.oracle for r in finer]
            record.message = (
                f"subject differs from {witness.oracle} by {rel:.2g} relative at {witness.parameter}"
                f"{witness.index}: real, but below {record.oracle}'s noise floor (rtol {own.rtol:g})"
            )
