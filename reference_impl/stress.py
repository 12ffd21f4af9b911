"""Stress cases: float64's hard corners, always where the exact gradient is finite.

A stress case is an ordinary :class:`~reference_impl.case.Case` with ``stress=True``: its parameters are
drawn as usual, then every sigmoid, tanh, softplus and softmax layer is rescaled row by row (an affine map
of each unit's pre-activations, applied to its weights and bias) so that

- one unit per such layer spans about ±750 … ±950 (±1000 for softmax logits): e^z overflows there,
  σ(z) rounds to exactly 0 and 1, tanh to ±1, a softmax probability to exactly 0 (beside a softmax unit
  left as drawn; and if no logit passed 709.78, all of them are shifted past it);
- about half the other units saturate at |z| drawn log-uniformly from 20 to 600, on one side or both;
- the rest stay as drawn, so saturated and ordinary units meet in one network (scaled down only where
  a stressed softplus below them would push them past the extreme range; other layers likewise).

Batches are larger (:data:`STRESS_BATCHES`).  Everything is a pure function of the case's seed (a stream of
its own, so the ordinary draw is unchanged), and the reference stays finite and accurate there: its
activations, derivatives and fused losses have no overflow and no cancellation (a test holds it to the
exact oracle on stress cases).

Which cases are stress cases is a pure function of the index and the share: case ``i`` is one when
⌊(i + 1)·share⌋ > ⌊i·share⌋, so a share of 0.2 makes cases 4, 9, 14, … stress cases, exactly one in five.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from reference_impl.activations import get_activation
from reference_impl.spec import Array, Params, Spec

STRESS_SHARE = 0.2  # the default share of stress cases in run, verify, check_subject and the plugin
STRESS_BATCHES: tuple[int, ...] = (16, 24, 32, 48)
SATURABLE: tuple[str, ...] = ("sigmoid", "tanh", "softplus")
EXTREME = (750.0, 950.0)  # beyond log(max float64) ≈ 709.78 and past σ's underflow to 0 at ≈ −745
EXTREME_LOGITS = (750.0, 1000.0)
SATURATED = (20.0, 600.0)
MAX_CONDITION = 100.0  # how far a unit's affine map may stretch a narrow spread of values


def check_share(share: float) -> float:
    if not (0.0 <= share <= 1.0) or math.isnan(share):
        raise ValueError(f"the stress share must be between 0 and 1, got {share}")
    return float(share)


def _count(index: int, share: float) -> int:
    # A tiny nudge so that 5 × 0.2 counts as 1 although 0.2 is not exact in binary.
    return math.floor(index * share + 1e-9)


def is_stress_index(index: int, share: float) -> bool:
    """Whether case ``index`` of a run with this share is a stress case (exactly ⌊n·share⌋ of the first n)."""
    return _count(index + 1, share) > _count(index, share)


def stress_ordinal(index: int, share: float) -> int:
    """0 for the first stress case of a run, 1 for the second, … (used to cycle losses and activations)."""
    return _count(index, share)


def stress_spec(
    rng: np.random.Generator,
    ordinal: int,
    losses: Sequence[str],
    hidden: Sequence[str],
    outputs: Sequence[str],
    output_for: dict[str, str],
    depth_range: tuple[int, int],
    max_width: int,
    uniform_hidden: bool = False,
) -> Spec:
    """An architecture for stress case number ``ordinal``: losses taken in turn, saturable layers in turn.

    ``output_for`` maps a loss to the output activation it requires (absent: any of ``outputs``).  Cycling
    (rather than drawing) guarantees that a handful of stress cases meets every loss and every saturable
    activation the caller allows.
    """
    loss = losses[ordinal % len(losses)]
    low, high = depth_range
    # At least one hidden layer where allowed (the recursion's derivatives are where textbook code saturates).
    depth = int(rng.integers(max(low, min(2, high)), max(low, min(4, high)) + 1))
    saturable_hidden = [a for a in SATURABLE if a in hidden] or list(hidden)
    if uniform_hidden:
        layers = [saturable_hidden[ordinal % len(saturable_hidden)]] * (depth - 1) if saturable_hidden else []
    else:
        layers = [saturable_hidden[(ordinal + i) % len(saturable_hidden)] for i in range(depth - 1)]
    if loss in output_for:
        output = output_for[loss]
    else:
        elementwise = [a for a in outputs if a != "softmax"]
        saturable_out = [a for a in SATURABLE if a in elementwise] or elementwise
        output = saturable_out[ordinal % len(saturable_out)]
    widths = [int(w) for w in rng.integers(1, max_width + 1, size=depth + 1)]
    if loss == "cce":
        widths[-1] = max(widths[-1], 2)
    return Spec(tuple(widths), (*layers, output), loss)


def _affine(values: Array, low: float, high: float) -> tuple[float, float]:
    """(α, β) mapping the spread of ``values`` onto [low, high] — or, if that would stretch a narrow spread
    far from zero (an ill-conditioned map), scaling the largest |value| to the larger bound instead."""
    spread = float(values.max() - values.min())
    largest = float(np.abs(values).max())
    if largest == 0.0:
        return 1.0, high
    if spread > 0.0 and largest / spread <= MAX_CONDITION:
        alpha = (high - low) / spread
        return alpha, low - alpha * float(values.min())
    target = max(abs(low), abs(high))
    return target / largest, 0.0


def _unit_targets(
    rng: np.random.Generator, n_units: int, extreme: tuple[float, float], calm: bool
) -> list[tuple[float, float] | None]:
    """Per unit, the interval its pre-activations are mapped onto (None: left as drawn).  ``calm`` keeps
    one unit besides the extreme one as drawn (softmax: a logit gap beyond 745 next to the extreme unit)."""
    targets: list[tuple[float, float] | None] = []
    for _ in range(n_units):
        if rng.random() < 0.5:
            targets.append(None)
            continue
        magnitude = float(np.exp(rng.uniform(np.log(SATURATED[0]), np.log(SATURATED[1]))))
        if rng.random() < 0.5:  # one side: every example saturated the same way
            sign = 1.0 if rng.random() < 0.5 else -1.0
            ends = sorted((sign * magnitude, sign * magnitude * float(rng.uniform(0.05, 1.0))))
            targets.append((ends[0], ends[1]))
        else:  # both sides, through the unsaturated middle
            targets.append((-magnitude * float(rng.uniform(0.2, 1.0)), magnitude))
    extreme_unit = int(rng.integers(0, n_units))
    targets[extreme_unit] = (-float(rng.uniform(*extreme)), float(rng.uniform(*extreme)))
    if calm and n_units > 1:
        targets[(extreme_unit + 1 + int(rng.integers(0, n_units - 1))) % n_units] = None
    return targets


def stress_params(spec: Spec, params: Params, X: Array, rng: np.random.Generator) -> Params:
    """``params`` with the rows of every saturable and softmax layer rescaled (see the module docstring)."""
    stressed = {name: value.copy() for name, value in params.items()}
    a = X
    for layer, name in enumerate(spec.activations, start=1):
        W, b = stressed[f"W{layer}"], stressed[f"b{layer}"]
        z = W @ a + b
        extreme = EXTREME_LOGITS if name == "softmax" else EXTREME
        stressable = name in SATURABLE or name == "softmax"
        targets = _unit_targets(rng, W.shape[0], extreme, name == "softmax") if stressable else [None] * W.shape[0]
        for unit, target in enumerate(targets):
            if target is not None:
                alpha, beta = _affine(z[unit], *target)
            else:
                # Units left as drawn still see the large outputs of a stressed softplus below them: keep
                # every pre-activation within the stated range.
                largest = float(np.abs(z[unit]).max())
                alpha, beta = (min(1.0, extreme[1] / largest) if largest > 0 else 1.0), 0.0
            W[unit] *= alpha
            b[unit, 0] = alpha * b[unit, 0] + beta
        if name == "softmax":
            # A common shift leaves the probabilities alone but must be survived by the formula: at least
            # one logit beyond e^z's overflow, wherever the units' own maps left the largest.
            top = float((W @ a + b).max())
            if top < extreme[0]:
                b += float(rng.uniform(*extreme)) - top
        a = get_activation(name).function(W @ a + b)
    return stressed
