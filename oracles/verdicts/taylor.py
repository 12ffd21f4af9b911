"""An eps-free verdict per parameter block: the Taylor-remainder convergence rate.

For a direction ``v`` that moves only one block, the remainder

    r(ε) = |L(θ + εv) − L(θ) − ε⟨g, v⟩|

is O(ε²) when ``g`` is the gradient and O(ε) when it is not (then ``⟨g − ∇L, v⟩ ≠ 0`` survives).  Over a
halving sequence of ε the observed rate ``log(r_k/r_{k+1}) / log 2`` is ≈ 2 for a right gradient and
≈ 1 for a wrong one, with no tolerance to choose.  Remainders within a few hundred ulps of the loss are
rounding, not signal, and are left out; steps that cross a relu/leaky_relu kink are left out too.

Verdicts per block: ``pass`` (asymptotic rate ≥ 1.7), ``fail`` (≤ 1.3), ``inconclusive`` in between,
``pass`` with ``at_noise_floor`` when every remainder is rounding (L is linear along v and g is exact
along it), ``kink`` when every step crosses a kink.

One direction can be unlucky: where the second-order term along v nearly vanishes (the Hessian is
indefinite, so such directions exist), ``c₂ε² + c₃ε³`` changes sign inside the ε range, and the rates
around that dip mean nothing; when the clean remainders end there, the verdict is ``inconclusive``.  Such
a block is tried again along fresh directions (up to :data:`DIRECTIONS` in all), which a wrong gradient
fails as surely as the first: ``⟨g − ∇L, v⟩`` vanishes only on a hyperplane of directions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from oracles.numeric.perturbed import direction_losses
from oracles.numeric.steps import EPS
from oracles.numeric.tape import base_tape
from oracles.verdicts.blocks import case_record
from oracles.verdicts.records import Record
from reference_impl.case import Case
from reference_impl.spec import Array, Params, Spec

EPSILONS: tuple[float, ...] = tuple(2.0**-k for k in range(1, 25))
NOISE_ULPS = 256.0
RIGHT_RATE = 1.7
WRONG_RATE = 1.3
ASYMPTOTIC_PAIRS = 3
DIRECTIONS = 3  # directions tried for one block while the verdict is inconclusive


@dataclass(frozen=True)
class TaylorResult:
    """Remainders and rates of one block; ``rate`` is the median of the last few clean rates."""

    block: str
    epsilons: list[float]
    residuals: list[float]
    rates: list[float]
    rate: float | None
    verdict: str  # pass, fail, inconclusive, kink
    notes: dict[str, Any] = field(default_factory=dict)


def block_direction(spec: Spec, params: Mapping[str, Array], block: str, rng: np.random.Generator) -> Params:
    """A random direction moving only ``block``, scaled to the block (never all-ones)."""
    direction = {name: np.zeros(spec.parameter_shape(name)) for name in spec.parameter_names}
    scale = max(1.0, float(np.abs(params[block]).max()))
    direction[block] = rng.standard_normal(spec.parameter_shape(block)) * scale
    return direction


def taylor_block(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    grads: Mapping[str, Array],
    block: str,
    rng: np.random.Generator,
    epsilons: Sequence[float] = EPSILONS,
) -> TaylorResult:
    """The block's verdict along a random direction, or along the first of up to :data:`DIRECTIONS` that
    is conclusive (``notes["directions"]``: how many were tried)."""
    eps = np.asarray(epsilons, dtype=np.float64)
    base = base_tape(spec, params, X, Y).loss
    tried = 0
    while True:
        tried += 1
        direction = block_direction(spec, params, block, rng)
        evaluation = direction_losses(spec, params, X, Y, [direction], eps[None, :])
        slope = float(np.sum(np.asarray(grads[block]) * direction[block]))
        result = _verdict(block, eps, evaluation.losses[0].real, evaluation.crossed[0], base, slope, spec.depth)
        if result.verdict != "inconclusive" or tried == DIRECTIONS:
            return replace(result, notes={**result.notes, "directions": tried})


def _verdict(
    block: str, eps: Array, losses: Array, crossed: np.ndarray, base: float, slope: float, depth: int
) -> TaylorResult:
    """Rates and verdict from L(θ + εv) for each ε, L(θ) and ⟨g, v⟩ along one direction."""
    residuals = np.abs(losses - base - eps * slope)
    # Rounding of L(θ+εv) − L(θ) − ε⟨g,v⟩: a few hundred ulps of the values that were subtracted.
    noise = NOISE_ULPS * EPS * (np.abs(losses) + abs(base) + np.abs(eps * slope)) * depth
    clean = (residuals > noise) & ~crossed
    rates: list[float] = []
    for k in range(eps.size - 1):
        if clean[k] and clean[k + 1]:
            rates.append(float(np.log(residuals[k] / residuals[k + 1]) / np.log(eps[k] / eps[k + 1])))
    notes: dict[str, Any] = {"slope": slope, "crossed": int(np.count_nonzero(crossed))}
    if not rates:
        if np.all(crossed):
            verdict = "kink"
        elif not np.any(clean):
            verdict, notes["at_noise_floor"] = "pass", True
        else:
            verdict = "inconclusive"
        rate = None
    else:
        rate = float(np.median(rates[-ASYMPTOTIC_PAIRS:]))
        verdict = "pass" if rate >= RIGHT_RATE else "fail" if rate <= WRONG_RATE else "inconclusive"
    return TaylorResult(block, eps.tolist(), residuals.tolist(), rates, rate, verdict, notes)


def taylor_test(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    grads: Mapping[str, Array],
    rng: np.random.Generator,
    blocks: Sequence[str] | None = None,
    epsilons: Sequence[float] = EPSILONS,
) -> dict[str, TaylorResult]:
    """One :class:`TaylorResult` per block (default: every block)."""
    names = list(blocks) if blocks is not None else list(spec.parameter_names)
    return {name: taylor_block(spec, params, X, Y, grads, name, rng, epsilons) for name in names}


def taylor_record(case: Case, subject: str, grads: Mapping[str, Array]) -> Record:
    """The Taylor verdict of a subject's gradients on a case as one record (blocks carry the rates)."""
    params, X, Y = case.arrays()
    rng = np.random.default_rng([case.seed, 0x7A7107])
    results = taylor_test(case.spec, params, X, Y, grads, rng)
    failing = [r for r in results.values() if r.verdict == "fail"]
    blocks = {
        name: {"verdict": r.verdict, "rate": r.rate, "rates": r.rates, "residuals": r.residuals, **r.notes}
        for name, r in results.items()
    }
    worst = failing[0] if failing else None
    return case_record(
        case,
        subject,
        "taylor",
        "taylor",
        "fail" if failing else "pass",
        category="mismatch" if failing else None,
        parameter=worst.block if worst else None,
        layer=int(worst.block[1:]) if worst else None,
        message=", ".join(
            f"{n}: rate {r.rate:.2f}" if r.rate is not None else f"{n}: {r.verdict}" for n, r in results.items()
        ),
        blocks=blocks,
        extra={"rates": {n: r.rate for n, r in results.items()}},
    )
