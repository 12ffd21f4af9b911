"""Diagnosis, not only a red light: which known defect or convention explains a subject's gradients.

:func:`diagnose_subject` runs the subject on crafted probes (square and non-square layers, m = 1 and
m > 1, one and several outputs, nonlinear outputs) plus any cases given, then, per loss:

1. protocol faults (timeouts, mutated inputs, nondeterminism, NaN, wrong keys) are named as such;
2. a constant factor on *every* parameter that matches a loss convention (½ or not; sum, 1/m or
   1/(m·n_L)) names the convention — or, when it is exactly the missing 1/m, the batch normalisation;
3. structural defects are fitted by models (:mod:`oracles.diagnosis.signatures`) that predict the subject's
   output, exceptions included, on every probe;
4. otherwise each parameter block is classified: a constant factor (scale, sign, 1/m on one layer),
   sign-flipped entries, or float32-sized noise.

Every diagnosis names the layer and the formula (article notation) that is wrong.

This module is the driver: it orders the steps and merges what they find. The probes and comparisons
live in :mod:`oracles.diagnosis.evidence`, the whole-gradient models (2, 3) in :mod:`oracles.diagnosis.models`,
the per-block and pattern rules (4) in :mod:`oracles.diagnosis.patterns`, the words in
:mod:`oracles.diagnosis.wording`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from oracles.diagnosis.evidence import Run, is_right, probe_cases, run_probe
from oracles.diagnosis.family import Family, family_of_cases
from oracles.diagnosis.models import convention_diagnosis, global_batch_factor, global_factors, structural_diagnoses
from oracles.diagnosis.patterns import (
    batch_diagnosis,
    block_diagnosis,
    isolated_activation,
    kink_diagnosis,
    unexplained_failures,
)
from oracles.diagnosis.wording import Diagnosis
from oracles.subjects import ProtocolFailure, Subject
from reference_impl.case import Case
from reference_impl.spec import Spec

__all__ = ["Diagnosis", "diagnose_subject"]

HARD_CATEGORIES = ("timeout", "crash", "mutation", "nondeterminism", "nonfinite", "missing", "dtype")


# --- 1. protocol -------------------------------------------------------------------------------------


PURE_FORMULA = "gradients(spec, params, X, Y) -> {name: ∂L/∂θ}, a pure function of its inputs"


def _protocol_diagnoses(runs: Sequence[Run]) -> list[Diagnosis]:
    seen: dict[str, ProtocolFailure] = {}
    for run in runs:
        if run.failure is not None and run.failure.category in HARD_CATEGORIES:
            seen.setdefault(run.failure.category, run.failure)
    found = [
        Diagnosis(
            key=f"protocol:{category}",
            layer=None,
            formula=PURE_FORMULA,
            message=f"{failure.message}.",
            confidence=1.0,
        )
        for category, failure in seen.items()
    ]
    stale = _stale_run(runs)
    if stale is not None:
        found.append(
            Diagnosis(
                "state",
                None,
                PURE_FORMULA,
                "Right the first time each architecture and batch size is seen, wrong when asked again with new "
                f"values (first: {stale.case.id}): something is cached by shape, not by value.",
                0.9,
            )
        )
    return found


def _stale_run(runs: Sequence[Run]) -> Run | None:
    """The first wrong run, if every wrong run repeats an earlier (spec, batch) and every first sighting is right."""
    seen: set[tuple[Spec, int]] = set()
    first_wrong: Run | None = None
    for run in runs:
        if run.case.kinks:
            continue  # a kink convention is wrong on first sight too; it is not state
        key = (run.case.spec, run.m)
        right = is_right(run)
        if key not in seen and not right:
            return None
        if key in seen and not right and first_wrong is None:
            first_wrong = run
        seen.add(key)
    return first_wrong


# --- the driver -------------------------------------------------------------------------------------------


def _diagnose_loss(loss: str, runs: Sequence[Run], depth: int) -> list[Diagnosis]:
    if all(is_right(run) for run in runs):
        return []
    kink = kink_diagnosis(runs, loss)
    if kink is not None:
        return [kink]
    if all(run.valid for run in runs):
        factors = global_factors(runs)
        if factors is not None:
            found = convention_diagnosis(loss, factors)
            if found is not None:
                return [found]
    structural = structural_diagnoses(runs, loss, depth)
    if structural:
        return structural
    names = sorted({n for run in runs for n in run.reference}, key=lambda n: (-int(n[1:]), n))
    blockwise = _merge_layer_blocks([d for d in (block_diagnosis(n, runs, loss) for n in names) if d is not None])
    if any(d.key == "mismatch" for d in blockwise):
        for rule in (isolated_activation, batch_diagnosis):
            found_rule = rule(runs, loss)
            if found_rule is not None:
                return [found_rule]
    return blockwise + unexplained_failures(runs, loss)


def _merge_layer_blocks(diagnoses: list[Diagnosis]) -> list[Diagnosis]:
    """W^[l] and b^[l] wrong the same way are one defect of layer l (δ^[l] itself)."""
    merged: list[Diagnosis] = []
    for diagnosis in diagnoses:
        twin = next((d for d in merged if d.key == diagnosis.key and d.layer == diagnosis.layer), None)
        if twin is None:
            merged.append(diagnosis)
            continue
        index = merged.index(twin)
        message = twin.message.rstrip(".") + f"; so is {diagnosis.message.split(' ', 1)[0]}."
        merged[index] = Diagnosis(
            twin.key, twin.layer, f"{twin.formula}; {diagnosis.formula}", message, twin.confidence, twin.losses
        )
    return merged


def _merge_losses(diagnoses: list[Diagnosis]) -> list[Diagnosis]:
    merged: dict[tuple[str, int | None, str], Diagnosis] = {}
    for d in diagnoses:
        key = (d.key, d.layer, d.formula)
        if key in merged:
            old = merged[key]
            merged[key] = Diagnosis(
                d.key, d.layer, d.formula, old.message, max(old.confidence, d.confidence), old.losses + d.losses
            )
        else:
            merged[key] = d
    return list(merged.values())


def diagnose_subject(
    subject: Subject,
    cases: Sequence[Case] | None = None,
    *,
    rng_seed: int = 0,
    supports: Mapping[str, Any] | Family | None = None,
    timeout: float | None = None,
) -> list[Diagnosis]:
    """Recognised defects and conventions of ``subject``, most certain first; ``[]``: none recognised.

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
    runs: list[Run] = []
    for case in [*probe_cases(family, rng), *given]:
        run = run_probe(subject, case, timeout)
        runs.append(run)
        if run.failure is not None and run.failure.category in ("timeout", "crash"):
            break  # every further probe would wait as long again, or restart a worker to die again
    found = _protocol_diagnoses(runs)
    if any(d.key in ("state", "protocol:nondeterminism") for d in found):
        return found
    usable = [r for r in runs if r.failure is None or r.failure.category not in HARD_CATEGORIES or r.valid]
    losses = {run.case.spec.loss for run in usable}
    batch_factor = global_batch_factor(usable) if len(losses) > 1 else None
    if batch_factor is not None:
        return [*found, batch_factor]
    by_loss: dict[str, list[Run]] = {}
    for run in usable:
        by_loss.setdefault(run.case.spec.loss, []).append(run)
    depth = max((run.case.spec.depth for run in usable), default=1)
    per_loss = [d for loss, group in by_loss.items() for d in _diagnose_loss(loss, group, depth)]
    found += _merge_losses(per_loss)
    return sorted(found, key=lambda d: (-d.confidence, -(d.layer or 0)))
