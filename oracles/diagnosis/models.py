"""Whole-gradient models, each kept only when it reproduces every fault-free run of a loss.

- a constant per run relating every block to the reference: a loss convention, the batch mean's 1/m, any
  other normalisation 2^k·m^a·n_L^b (÷ n_L instead of ÷ m, …), a sign, a stray scale, or clipping by norm;
- every entry clipped to one interval (gradient clipping by value);
- the structural defect models of :mod:`oracles.diagnosis.signatures`, which may also predict that the
  subject raises a shape error (then such a run counts for the model) or returns a block of another shape.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from oracles.diagnosis import conventions
from oracles.diagnosis.evidence import (
    MODEL_RTOL,
    Explanation,
    LossEvidence,
    Run,
    agrees,
    fit_factor,
    reproduces,
    same,
)
from oracles.diagnosis.signatures import BIAS_KINDS, Variant, WouldRaise, predict, variants_for
from oracles.diagnosis.wording import Diagnosis, variant_diagnoses
from reference_impl.spec import Array, Params

# --- a constant per run -------------------------------------------------------------------------------


def run_factor(run: Run) -> float | None:
    """The one constant c with every block = c · reference on ``run`` (nan: the reference is all zero)."""
    if run.blocks is None or set(run.blocks) != set(run.reference):
        return None
    names = sorted(run.reference)
    subject = np.concatenate([run.blocks[n].ravel() for n in names])
    reference = np.concatenate([run.reference[n].ravel() for n in names])
    if subject.shape != reference.shape:
        return None
    if not np.any(reference):
        return float("nan")
    c = fit_factor(subject, reference)
    if c is None:
        return None
    # One fit over all blocks could hide a block that is wrong but tiny: check each block too.
    ok = all(agrees(run.blocks[n], c * run.reference[n], MODEL_RTOL, abs(c) * run.magnitudes[n]) for n in names)
    return c if ok else None


# (k, a, b): the constant k·m^a·n_L^b, simplest first.
# Small integer powers: a 1/m written as ·m, or applied twice, is m² off; the probes vary m and n_L apart.
POWERS = (-2, -1, 0, 1, 2)
NORMALISATIONS: list[tuple[float, int, int]] = sorted(
    ((k, a, b) for k in (1.0, 2.0, 0.5) for a in POWERS for b in POWERS if (k, a, b) != (1.0, 0, 0)),
    key=lambda t: ((t[0] != 1.0) + (t[1] != 0) + (t[2] != 0), abs(t[1]) + abs(t[2]), t[1] == 0, -t[1], -t[2], t[0]),
)
ASKED_CONSTANT: dict[str, tuple[float, int, int]] = {
    "mse": (1.0, -1, 0),
    "half_sse": (0.5, 0, 0),
    "bce": (1.0, -1, 0),
    "cce": (1.0, -1, 0),
}


def constant_text(k: float, a: int, b: int) -> str:
    """k·m^a·n_L^b in words: ``1/m``, ``1/(m·n_L)``, ``2``, ``m/n_L``."""
    top = [] if k < 1 else ([] if k == 1 else [f"{k:g}"])
    bottom = ["2"] if k < 1 else []
    for symbol, power in (("m", a), ("n_L", b)):
        if power:
            (top if power > 0 else bottom).append(symbol + ("²" if abs(power) == 2 else ""))
    numerator = "·".join(top) or "1"
    if not bottom:
        return numerator
    denominator = bottom[0] if len(bottom) == 1 else f"({'·'.join(bottom)})"
    return f"{numerator}/{denominator}"


def _pattern_holds(factors: Sequence[tuple[Run, float]], k: float, a: int, b: int) -> bool:
    return all(same(c, k * float(run.m) ** a * float(run.case.spec.widths[-1]) ** b) for run, c in factors)


def _convention(loss: str, factors: Sequence[tuple[Run, float]]) -> Diagnosis | None:
    if _pattern_holds(factors, 1.0, 1, 0) or _pattern_holds(factors, 1.0, -1, 0):
        missing = _pattern_holds(factors, 1.0, 1, 0)
        asked = conventions.CONVENTIONS[conventions.ASKED[loss]]
        alias = next((n for n in conventions.applicable(loss) if conventions.drops_batch_mean(n, loss)), None)
        hint = f" (or the '{alias}' convention: declare it with --convention {alias})" if alias else ""
        if missing and asked.reduction == "batch_mean":
            message = f"Every gradient is exactly m times the right one: the 1/m of the batch mean is missing{hint}."
        elif missing:
            return None  # half_sse has no 1/m to miss: an m factor there is a normalisation slip
        else:
            message = "Every gradient is divided by m a second time: δ^[L] already carries the batch mean's 1/m."
        formula = "L = (1/m) Σ_i ℓ(y_i, ŷ_i), so every ∂L/∂θ carries the batch mean's 1/m exactly once"
        return Diagnosis("batch_normalisation", None, formula, message, 0.95, (loss,))
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
                f"Right up to a convention: the gradients are exactly those of {name} "
                f"({theirs.formula}: {theirs.description}), not a bug.",
                0.95,
                (loss,),
                kind="convention",
            )
    return None


def _normalisation(loss: str, factors: Sequence[tuple[Run, float]]) -> Diagnosis | None:
    asked = ASKED_CONSTANT[loss]
    for k, a, b in NORMALISATIONS:
        if not _pattern_holds(factors, k, a, b):
            continue
        mine = (asked[0] * k, asked[1] + a, asked[2] + b)
        message = (
            f"Every gradient is {constant_text(k, a, b)} times the right one: the loss is normalised by "
            f"{constant_text(*mine)} where {loss} has {constant_text(*asked)} (a slip in the loss's constant, "
            "not a known convention)."
        )
        formula = f"{loss}: {conventions.CONVENTIONS[conventions.ASKED[loss]].formula}"
        return Diagnosis("normalisation", None, formula, message, 0.9, (loss,))
    return None


def _norm_clipping(loss: str, factors: Sequence[tuple[Run, float]]) -> Diagnosis | None:
    """c = min(1, C/‖∇L‖) on every run, one C: the gradient rescaled to a maximum norm."""
    norms = [float(np.sqrt(sum(float(np.sum(v * v)) for v in run.reference.values()))) for run, _ in factors]
    clipped = [(c * n, n) for (_, c), n in zip(factors, norms, strict=True) if not same(c, 1.0)]
    if not clipped or any(c > 1.0 for _, c in factors):
        return None
    limit = clipped[0][0]
    if not all(same(value, limit, 1e-8) for value, _ in clipped):
        return None
    if any(same(c, 1.0) and n > limit * (1 + 1e-8) for (_, c), n in zip(factors, norms, strict=True)):
        return None
    message = (
        f"Whenever ‖∂L/∂θ‖ exceeds {limit:.6g}, the whole gradient is rescaled to that norm (clipping by norm); "
        "below it the gradient is right."
    )
    return Diagnosis(
        "clipped", None, "∂L/∂θ, unclipped (clip in the optimiser, not in the gradient)", message, 0.9, (loss,)
    )


def factor_explanation(evidence: LossEvidence) -> Explanation | None:
    """One constant per run on every block: which convention, normalisation, sign or scale it is."""
    if evidence.shaped or not evidence.valid:
        return None
    factors: list[tuple[Run, float]] = []
    for run in evidence.valid:
        c = run_factor(run)
        if c is None:
            return None
        if not np.isnan(c):
            factors.append((run, c))
    if not factors or all(same(c, 1.0) for _, c in factors):
        return None
    loss = evidence.loss
    found = _convention(loss, factors) or _normalisation(loss, factors)
    if found is None and all(same(c, -1.0) for _, c in factors):
        found = Diagnosis(
            "sign",
            None,
            "∂L/∂θ (the update then subtracts it: θ ← θ − η ∂L/∂θ)",
            "Every gradient has the wrong sign: the subject returns −∂L/∂θ, the descent direction.",
            0.95,
            (loss,),
        )
    if found is None and all(same(c, factors[0][1]) for _, c in factors):
        found = Diagnosis(
            "scale",
            None,
            "∂L/∂θ with no extra constant",
            f"Every gradient is {factors[0][1]:.10g} times the right one, a constant no known convention explains.",
            0.8,
            (loss,),
        )
    found = found or _norm_clipping(loss, factors)
    if found is None:
        return None
    differing = sum(1 for _, c in factors if not same(c, 1.0))
    return Explanation([found], differing=differing)


# --- clipping by value ----------------------------------------------------------------------------------


def _stack(run: Run) -> tuple[Array, Array]:
    assert run.blocks is not None
    names = sorted(run.reference)
    return (
        np.concatenate([run.blocks[n].ravel() for n in names]),
        np.concatenate([run.reference[n].ravel() for n in names]),
    )


def clip_explanation(evidence: LossEvidence) -> Explanation | None:
    """Every entry is min(max(∂L/∂θ, lo), hi) for one interval [lo, hi] on every run."""
    if evidence.shaped or not evidence.valid:
        return None
    highs, lows = [], []
    for run in evidence.valid:
        if run.blocks is None or set(run.blocks) != set(run.reference):
            return None
        if any(run.blocks[n].shape != r.shape for n, r in run.reference.items()):
            return None
        subject, reference = _stack(run)
        scale = max(float(np.max(np.abs(reference))), 1e-300)
        above = subject < reference - 1e-9 * scale
        below = subject > reference + 1e-9 * scale
        highs.extend(subject[above].tolist())
        lows.extend(subject[below].tolist())
    if not highs and not lows:
        return None
    hi = max(highs) if highs else np.inf
    lo = min(lows) if lows else -np.inf
    if (highs and not np.allclose(highs, hi, rtol=1e-12, atol=0)) or (lows and not np.allclose(lows, lo, rtol=1e-12)):
        return None
    differing = 0
    for run in evidence.valid:
        predicted = {n: np.clip(r, lo, hi) for n, r in run.reference.items()}
        if not reproduces(run, predicted):
            return None
        differing += any(np.any(predicted[n] != r) for n, r in run.reference.items())
    bounds = f"[{lo:.6g}, {hi:.6g}]"
    message = (
        f"Every gradient entry is clipped to {bounds} (gradient clipping by value); inside it the entries are right."
    )
    formula = "∂L/∂θ, unclipped (clip in the optimiser, not in the gradient)"
    return Explanation([Diagnosis("clipped", None, formula, message, 0.9, (evidence.loss,))], differing=differing)


# --- structural models ------------------------------------------------------------------------------------


def _prediction(variant: Variant, run: Run) -> Params | None:
    """What ``variant`` returns on ``run``'s case; None when it would raise there."""
    params, X, Y = run.case.arrays()
    try:
        return predict(variant, run.case.spec, params, X, Y)
    except WouldRaise:
        return None


def _differs(predicted: Params, run: Run) -> bool:
    return any(
        predicted[n].shape != r.shape or not agrees(predicted[n], r, 1e-11, run.magnitudes.get(n))
        for n, r in run.reference.items()
    )


def _variant_support(variant: Variant, evidence: LossEvidence) -> tuple[int, frozenset[int]] | None:
    """(runs it tells apart from the right answer, faulty runs it predicts), or None if a run contradicts it."""
    differing = 0
    claimed: set[int] = set()
    for run in itertools.chain(evidence.valid, evidence.shaped):
        predicted = _prediction(variant, run)
        if predicted is None or not reproduces(run, predicted):
            return None
        differing += _differs(predicted, run)
        if run.shaped:
            claimed.add(run.order)
    for run in evidence.raised:
        if run.shape_error and _prediction(variant, run) is None:
            claimed.add(run.order)
            differing += 1
    return differing, frozenset(claimed)


def structural_explanation(evidence: LossEvidence) -> Explanation | None:
    """Defect models that reproduce every valid (and wrong-shaped) run of one loss."""
    explaining: list[tuple[Variant, int, frozenset[int]]] = []
    for variant in variants_for(evidence.depth):
        support = _variant_support(variant, evidence)
        if support is not None and support[0]:
            explaining.append((variant, *support))
    # An output defect paired with a bias defect is only that pair when the bias defect alone does not do.
    alone = {v.kind for v, _, _ in explaining if v.kind in BIAS_KINDS and v.bias is None}
    explaining = [(v, n, c) for v, n, c in explaining if v.bias is None or v.bias not in alone]
    if not explaining:
        return None
    # Prefer the most specific variant among those with the most evidence: one layer over "every layer"
    # when the probes cannot tell them apart.
    best = max(count for _, count, _ in explaining)
    chosen = [(v, claimed) for v, count, claimed in explaining if count == best]
    specific = [(v, c) for v, c in chosen if v.layers is not None] or chosen
    confidence = 0.95 if best >= 2 else 0.8
    found: dict[tuple[str, int | None], Diagnosis] = {}
    for variant, _ in specific:
        for diagnosis in variant_diagnoses(
            variant, evidence.depth, (evidence.loss,), confidence / len(specific) ** 0.5
        ):
            found.setdefault((diagnosis.key, diagnosis.layer), diagnosis)
    claimed_all = frozenset().union(*(c for _, c in specific))
    return Explanation(list(found.values()), claimed_all, best)
