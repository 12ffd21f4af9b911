"""Whole-gradient models: a constant factor on every block (a loss convention, the batch mean's 1/m, a
sign or a stray scale) and the structural defect models of :mod:`oracles.diagnosis.signatures`, kept when
they predict the subject's output, exceptions included, on every probe."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from oracles.diagnosis import conventions
from oracles.diagnosis.evidence import MODEL_RTOL, RIGHT_RTOL, Run, blocks_close, close, fit_factor, same
from oracles.diagnosis.signatures import NotApplicable, Variant, WouldRaise, predict, variants_for
from oracles.diagnosis.wording import Diagnosis, variant_diagnoses
from reference_impl.case import Case
from reference_impl.spec import Params

# --- 2. conventions -----------------------------------------------------------------------------------


def global_factors(runs: Sequence[Run]) -> list[tuple[Run, float]] | None:
    """Per run, the one factor relating every block to the reference; None if any run has none."""
    factors: list[tuple[Run, float]] = []
    for run in runs:
        if not run.valid or run.blocks is None or set(run.blocks) != set(run.reference):
            return None
        names = sorted(run.reference)
        subject = np.concatenate([run.blocks[n].ravel() for n in names])
        reference = np.concatenate([run.reference[n].ravel() for n in names])
        if not np.any(reference):
            continue
        c = fit_factor(subject, reference)
        if c is None:
            return None
        # One fit over all blocks could hide a block that is wrong but tiny: check each block too.
        if not all(close(run.blocks[n], c * run.reference[n], MODEL_RTOL) for n in names):
            return None
        factors.append((run, c))
    return factors or None


def convention_diagnosis(loss: str, factors: Sequence[tuple[Run, float]]) -> Diagnosis | None:
    if all(same(c, 1.0) for _, c in factors):
        return None
    if all(same(c, float(run.m)) for run, c in factors):
        asked = conventions.CONVENTIONS[conventions.ASKED[loss]]
        alias = (
            next((n for n in conventions.applicable(loss) if conventions.drops_batch_mean(n, loss)), None)
            if asked.reduction == "batch_mean"
            else None
        )
        hint = f" (or the '{alias}' convention: declare it with --convention {alias})" if alias else ""
        return Diagnosis(
            "batch_normalisation",
            None,
            "L = (1/m) Σ_i ℓ(y_i, ŷ_i), so every ∂L/∂θ carries the batch mean's 1/m",
            f"Every gradient is exactly m times the right one: the 1/m of the batch mean is missing{hint}.",
            0.95,
            (loss,),
        )
    for name in conventions.applicable(loss):
        if name == conventions.ASKED[loss]:
            continue
        if all(same(c, conventions.factor(name, run.case.spec, run.m)) for run, c in factors):
            theirs = conventions.CONVENTIONS[name]
            asked = conventions.CONVENTIONS[conventions.ASKED[loss]]
            return Diagnosis(
                f"convention:{name}",
                None,
                f"{loss}: {asked.formula}",
                f"Right up to a convention: for {loss!r} the gradients are exactly those of {name} "
                f"({theirs.formula}: {theirs.description}), not a bug; declare it with --convention {name}.",
                0.95,
                (loss,),
            )
    if all(same(c, -1.0) for _, c in factors):
        return Diagnosis(
            "sign",
            None,
            "∂L/∂θ (the update then subtracts it: θ ← θ − η ∂L/∂θ)",
            "Every gradient has the wrong sign: the subject returns −∂L/∂θ, the descent direction.",
            0.95,
            (loss,),
        )
    first = factors[0][1]
    if all(same(c, first) for _, c in factors):
        return Diagnosis(
            "scale",
            None,
            "∂L/∂θ with no extra constant",
            f"Every gradient is {first:.10g} times the right one, a constant no known convention explains.",
            0.8,
            (loss,),
        )
    return None


def global_batch_factor(runs: Sequence[Run]) -> Diagnosis | None:
    """Every gradient of every loss m times (or 1/m times) the right one: a batch normalisation slip."""
    if not runs or not all(run.valid for run in runs):
        return None
    factors = global_factors(runs)
    if factors is None or all(same(c, 1.0) for _, c in factors):
        return None
    losses = tuple(sorted({run.case.spec.loss for run in runs}))
    formula = "L = (1/m) Σ_i ℓ(y_i, ŷ_i), so every ∂L/∂θ carries the batch mean's 1/m exactly once"
    if all(same(c, float(run.m)) for run, c in factors):
        message = "Every gradient is exactly m times the right one: the 1/m of the batch mean is missing."
        return Diagnosis("batch_normalisation", None, formula, message, 0.95, losses)
    if all(same(c, 1.0 / run.m) for run, c in factors):
        message = "Every gradient is divided by m a second time: δ^[L] already carries the batch mean's 1/m."
        return Diagnosis("batch_normalisation", None, formula, message, 0.95, losses)
    return None


# --- 3. structural models -------------------------------------------------------------------------------


def _prediction(variant: Variant, case: Case) -> Params | None:
    """What ``variant`` returns on ``case``; None when it would raise there."""
    params, X, Y = case.arrays()
    try:
        return predict(variant, case.spec, params, X, Y)
    except WouldRaise:
        return None


def structural_diagnoses(runs: Sequence[Run], loss: str, depth: int) -> list[Diagnosis]:
    """Defect models that predict every run of one loss; ``depth`` is the deepest net probed at all."""
    explaining: list[tuple[Variant, int]] = []
    for variant in variants_for(depth):
        distinguishing, consistent = 0, True
        for run in runs:
            try:
                predicted = _prediction(variant, run.case)
            except NotApplicable:
                continue
            raised = run.blocks is None and run.failure is not None and run.failure.category == "exception"
            if predicted is None:
                consistent = raised
                distinguishing += 1
            elif raised or run.blocks is None:
                consistent = False
            else:
                consistent = blocks_close(run.blocks, predicted, MODEL_RTOL)
                distinguishing += not blocks_close(predicted, run.reference, RIGHT_RTOL)
            if not consistent:
                break
        if consistent and distinguishing:
            explaining.append((variant, distinguishing))
    if not explaining:
        return []
    # Prefer the most specific variant among those with the most evidence: one layer over "every layer"
    # when the probes cannot tell them apart.
    best = max(count for _, count in explaining)
    chosen = [v for v, count in explaining if count == best]
    specific = [v for v in chosen if v.layers is not None] or chosen
    confidence = 0.95 if best >= 2 else 0.8
    found: dict[tuple[str, int | None], Diagnosis] = {}
    for variant in specific:
        for diagnosis in variant_diagnoses(variant, depth, (loss,), confidence / len(specific) ** 0.5):
            found.setdefault((diagnosis.key, diagnosis.layer), diagnosis)
    return list(found.values())
