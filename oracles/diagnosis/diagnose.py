"""Diagnosis, not only a red light: what is wrong with a subject, said only as far as the evidence goes.

:func:`diagnose_subject` runs the subject on crafted probes (:mod:`oracles.diagnosis.evidence`) plus any
cases given, then reports, in this order:

1. **protocol faults** (:mod:`oracles.diagnosis.protocol`): timeouts, answers that depend on earlier
   calls, mutated inputs, NaN/inf, wrong keys or dtypes, and exceptions or wrong shapes that no model
   predicts — each with the region of the case space where it happens;
2. **defects**: per loss, the first model that reproduces *every* fault-free probe within its tolerance
   (exceptions count only where a model predicts that exact failure) — an exact kink convention, one
   constant per run (:mod:`oracles.diagnosis.models`: conventions, normalisations, sign, scale, clipping
   by norm), a structural defect (:mod:`oracles.diagnosis.signatures`), one activation's derivative
   (:mod:`oracles.diagnosis.derivatives`), clipping by value, or per-block models
   (:mod:`oracles.diagnosis.blockwise`);
3. otherwise an honest **unexplained** finding that still localises (:mod:`oracles.diagnosis.localise`):
   wrong blocks, where δ first goes wrong, what the failures depend on;
4. **conventions** and **kinks** (right up to a constant or a slope at a kink: not bugs) last, with the
   declaration that makes them pass — per loss when the constants differ by loss.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from oracles.diagnosis import conventions
from oracles.diagnosis.blockwise import blockwise_explanation
from oracles.diagnosis.derivatives import derivative_explanation
from oracles.diagnosis.evidence import Explanation, LossEvidence, Run, probe_cases, run_probes
from oracles.diagnosis.family import Family, family_of_cases
from oracles.diagnosis.localise import unexplained
from oracles.diagnosis.models import clip_explanation, factor_explanation, structural_explanation
from oracles.diagnosis.patterns import kink_explanation
from oracles.diagnosis.protocol import STOP, call_faults, hard_faults
from oracles.diagnosis.wording import KINDS, Diagnosis
from oracles.subjects import Subject
from reference_impl.case import Case

__all__ = ["Diagnosis", "declaration_for", "diagnose_subject"]

# Tried in this order; the first that reproduces every fault-free probe of a loss is the diagnosis.
STAGES: tuple[Callable[[LossEvidence], Explanation | None], ...] = (
    kink_explanation,
    factor_explanation,
    structural_explanation,
    derivative_explanation,
    clip_explanation,
    blockwise_explanation,
)


def explain(evidence: LossEvidence) -> Explanation | None:
    """The first model that reproduces every fault-free run of one loss, or a localised "unexplained"."""
    if not evidence.valid and not evidence.shaped and not evidence.raised:
        return None
    nothing_wrong = not evidence.wrong and not evidence.shaped
    if nothing_wrong and not any(r.shape_error for r in evidence.raised):
        return None
    for stage in STAGES:
        found = stage(evidence)
        if found is not None:
            for diagnosis in found.diagnoses:
                if diagnosis.kind in ("defect", "convention", "kink") and not diagnosis.evidence:
                    index = found.diagnoses.index(diagnosis)
                    found.diagnoses[index] = diagnosis.with_(evidence=found.evidence(evidence))
            return found
    if nothing_wrong:
        return None
    lost = unexplained(evidence)
    return Explanation([lost]) if lost is not None else None


def _by_loss(runs: Sequence[Run]) -> list[LossEvidence]:
    depth = max((run.case.spec.depth for run in runs), default=1)
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.case.spec.loss, []).append(run)
    return [
        LossEvidence(
            loss,
            [r for r in group if r.valid],
            [r for r in group if r.shaped],
            [r for r in group if r.raised],
            depth,
        )
        for loss, group in groups.items()
    ]


def _merge_losses(diagnoses: list[Diagnosis]) -> list[Diagnosis]:
    """The same finding on several losses is one finding (its losses listed)."""
    merged: dict[tuple[str, int | None, str, str], Diagnosis] = {}
    for d in diagnoses:
        if d.kind == "convention":
            key: tuple[str, int | None, str, str] = (d.key, d.layer, "", "")
        else:
            key = (d.key, d.layer, d.formula, d.message if d.kind == "unexplained" else "")
        if key in merged:
            old = merged[key]
            formula = old.formula if d.kind != "convention" else f"{old.formula}; {d.formula}"
            merged[key] = old.with_(
                confidence=max(old.confidence, d.confidence), losses=old.losses + d.losses, formula=formula
            )
        else:
            merged[key] = d
    return list(merged.values())


def declaration_for(found: Sequence[Diagnosis], losses: Sequence[str]) -> str | None:
    """The ``--convention`` value that declares every convention found: one name when one fits every loss."""
    chosen: dict[str, str] = {}
    for d in found:
        if d.kind == "convention" and d.key.startswith("convention:"):
            for loss in d.losses:
                chosen[loss] = d.key.split(":", 1)[1]
    if not chosen:
        return None
    names = set(chosen.values())
    if len(names) == 1 and set(chosen) >= set(losses):
        return names.pop()
    return ",".join(f"{loss}={chosen[loss]}" for loss in sorted(chosen, key=conventions.LOSS_ORDER.index))


def _with_declaration(found: list[Diagnosis], losses: Sequence[str]) -> list[Diagnosis]:
    declaration = declaration_for(found, losses)
    if declaration is None:
        return found
    others = [loss for loss in losses if not any(loss in d.losses for d in found)]
    rest = f" ({', '.join(others)} already follow{'s' if len(others) == 1 else ''} the suite's own)" if others else ""
    suffix = f" Declare it with --convention {declaration}{rest}."
    return [d.with_(message=d.message + suffix) if d.kind == "convention" else d for d in found]


def _order(found: list[Diagnosis]) -> list[Diagnosis]:
    return sorted(found, key=lambda d: (KINDS.index(d.kind), -d.confidence, -(d.layer or 0)))


def diagnose_runs(runs: Sequence[Run], again: Run | None, losses: Sequence[str]) -> list[Diagnosis]:
    """Every finding on these runs, protocol faults first, then defects, unexplained, conventions, kinks."""
    found = hard_faults(runs, again)
    if any(d.key in STOP for d in found):
        # The answers depend on history or never came: no numeric model can be trusted; exceptions and
        # shapes are still described (they often show where the state came from).
        return _order(found + [d for d in call_faults(runs, set()) if d.key not in {f.key for f in found}])
    numeric: list[Diagnosis] = []
    claimed: set[int] = set()
    for evidence in _by_loss(runs):
        explanation = explain(evidence)
        if explanation is not None:
            numeric += explanation.diagnoses
            claimed |= explanation.claimed
    found += call_faults(runs, claimed)
    found += _with_declaration(_merge_losses(numeric), losses)
    return _order(found)


def diagnose_subject(
    subject: Subject,
    cases: Sequence[Case] | None = None,
    *,
    rng_seed: int = 0,
    supports: Mapping[str, Any] | Family | None = None,
    timeout: float | None = None,
) -> list[Diagnosis]:
    """Findings about ``subject``, most severe first; ``[]``: right on every probe.

    ``supports`` (a ``SUPPORTS`` dict or :class:`Family`) limits the crafted probes to what the subject
    implements; without it, the family of ``cases`` is used, and without cases every architecture.
    """
    given = list(cases or [])
    if isinstance(supports, Family):
        family = supports
    elif supports is not None:
        family = Family.from_supports(supports)
    elif given:
        family = family_of_cases(given)
    else:
        family = Family()
    rng = np.random.default_rng([rng_seed, 0xD1A6])
    runs, again = run_probes(subject, [*probe_cases(family, rng), *given], timeout)
    return diagnose_runs(runs, again, family.usable_losses)


def headline_is_bug(found: Sequence[Diagnosis]) -> bool:
    """Whether the first finding is a bug (protocol, defect, unexplained) rather than a convention or kink."""
    return bool(found) and found[0].is_bug
