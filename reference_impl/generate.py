"""Drawing architectures and cases from ``(seed, index)`` alone, without Hypothesis (campaigns).

Everything here takes an explicit :class:`numpy.random.Generator`; no global RNG state is touched.
"""

from __future__ import annotations

import numpy as np

from reference_impl.case import Case
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES, LOSS_OUTPUT_ACTIVATION, Spec
from reference_impl.stress import STRESS_BATCHES, STRESS_SHARE, is_stress_index, stress_ordinal, stress_spec


def random_spec(rng: np.random.Generator, max_depth: int = 5, max_width: int = 8) -> Spec:
    """An architecture drawn without Hypothesis (campaigns): widths as a list, so non-square is common."""
    depth = int(rng.integers(1, max_depth + 1))
    widths = [int(w) for w in rng.integers(1, max_width + 1, size=depth + 1)]
    hidden = [a for a in ACTIVATION_NAMES if a != "softmax"]
    activations = [str(rng.choice(hidden)) for _ in range(depth - 1)]
    loss = str(rng.choice(list(LOSS_OUTPUT_ACTIVATION)))
    required = LOSS_OUTPUT_ACTIVATION[loss]
    activations.append(required if required is not None else str(rng.choice(hidden)))
    return Spec(tuple(widths), tuple(activations), loss)


def case_from_index(seed: int, index: int, stress_share: float = STRESS_SHARE) -> Case:
    """Campaign case number ``index`` of campaign ``seed``: a pure function of the two (and the share of
    stress cases, :mod:`reference_impl.stress`; the other cases do not depend on it)."""
    if is_stress_index(index, stress_share):
        return stress_case(seed, index, stress_ordinal(index, stress_share))
    rng = np.random.default_rng([seed, index, 0xCA5E])
    spec = random_spec(rng)
    return Case(
        spec=spec,
        batch=int(rng.integers(1, 9)),
        seed=int(rng.integers(0, 2**31)),
        param_scale=float(rng.choice([0.5, 1.0, 1.0, 2.0])),
        data_scale=float(rng.choice([0.5, 1.0, 1.0, 3.0])),
        kinks=bool(rng.random() < 0.15),
        label=f"{seed}-{index:06d}",
    )


def stress_case(seed: int, index: int, ordinal: int) -> Case:
    """Stress case ``index`` of campaign ``seed``, the ``ordinal``-th of its run: losses in turn (from an
    offset of the seed), saturable hidden and output layers, a larger batch."""
    rng = np.random.default_rng([seed, index, 0x57E55])
    hidden = [a for a in ACTIVATION_NAMES if a != "softmax"]
    required = {loss: act for loss, act in LOSS_OUTPUT_ACTIVATION.items() if act is not None}
    spec = stress_spec(rng, ordinal + seed, LOSS_NAMES, hidden, ACTIVATION_NAMES, required, (1, 5), 8)
    return Case(
        spec=spec,
        batch=int(rng.choice(STRESS_BATCHES)),
        seed=int(rng.integers(0, 2**31)),
        stress=True,
        label=f"{seed}-{index:06d}",
    )
