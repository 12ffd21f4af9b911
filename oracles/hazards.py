"""Where float64 breaks standard formulas in one case: the hazards that make NaN or inf an *instability*.

A subject's NaN/inf is called ``unstable`` (not ``nonfinite``) when the case holds values at which some
standard formula of backprop overflows or rounds to an exact 0 or 1 although the exact gradient is finite:
e^z beyond 709.78, σ(z) rounding to exactly 1 (z ≥ 36.74) or 0 (z ≤ −745.13), tanh(z) to ±1
(|z| ≥ 19.06), a softmax logit beyond 709.78 or a probability rounding to exactly 0.  The hazards are read
from the reference's own forward pass (which has none of these failure modes), layer by layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from reference_impl import mlp
from reference_impl.case import Case
from reference_impl.spec import Array, Spec

LOG_MAX = float(np.log(np.finfo(np.float64).max))  # 709.78: e^z overflows above
EXP_ZERO = float(np.log(np.finfo(np.float64).smallest_subnormal) - np.log(2.0))  # ≈ −745.13: e^z rounds to 0 below


@dataclass(frozen=True)
class Hazard:
    """``count`` entries of layer ``layer`` (activation ``activation``) sit where ``kind`` happens."""

    layer: int
    activation: str
    kind: str
    count: int
    extreme: float  # the value furthest into the hazard (a pre-activation, or a logit gap)

    def text(self) -> str:
        where = f"layer {self.layer} ({self.activation})"
        return f"{where}: {DESCRIPTIONS[self.kind]}, {self.count} entries (up to {self.extreme:.4g})"


DESCRIPTIONS: dict[str, str] = {
    "exp_overflow": "e^|z| overflows (|z| > 709.78)",
    "exp2_overflow": "e^(2|z|) overflows (|z| > 354.89)",
    "rounds_to_one": "the activation rounds to exactly ±1",
    "rounds_to_zero": "the activation rounds to exactly 0",
    "logit_overflow": "a logit exceeds 709.78, so e^z overflows unless the column maximum is subtracted",
    "probability_zero": "a softmax probability rounds to exactly 0 (a logit gap beyond 745)",
    "all_underflow": "every e^z of a column underflows to 0 unless the column maximum is subtracted",
}


def _add(found: list[Hazard], layer: int, name: str, kind: str, mask: np.ndarray, values: Array) -> None:
    if np.any(mask):
        extreme = float(values[mask][np.argmax(np.abs(values[mask]))])
        found.append(Hazard(layer, name, kind, int(mask.sum()), extreme))


def hazards(spec: Spec, params: Mapping[str, Array], X: Array) -> list[Hazard]:
    """Every float64 hazard of one forward pass, in layer order."""
    tape = mlp.forward(spec, params, X)
    found: list[Hazard] = []
    for layer, name in enumerate(spec.activations, start=1):
        z, a = tape.z(layer), tape.a(layer)
        if name == "sigmoid":
            _add(found, layer, name, "rounds_to_one", a == 1.0, z)
            _add(found, layer, name, "rounds_to_zero", a == 0.0, z)
            _add(found, layer, name, "exp_overflow", np.abs(z) > LOG_MAX, z)
        elif name == "tanh":
            _add(found, layer, name, "rounds_to_one", np.abs(a) == 1.0, z)
            _add(found, layer, name, "exp2_overflow", np.abs(z) > LOG_MAX / 2, z)
        elif name == "softplus":
            _add(found, layer, name, "exp_overflow", np.abs(z) > LOG_MAX, z)
        elif name == "softmax":
            _add(found, layer, name, "logit_overflow", z > LOG_MAX, z)
            gap = z.max(axis=0, keepdims=True) - z
            _add(found, layer, name, "probability_zero", a == 0.0, gap)
            low = np.broadcast_to(z.max(axis=0, keepdims=True) < EXP_ZERO, z.shape)
            _add(found, layer, name, "all_underflow", low, z)
    return found


def case_hazards(case: Case) -> list[Hazard]:
    params, X, _ = case.arrays()
    return hazards(case.spec, params, X)


def summary(found: list[Hazard], limit: int = 3) -> str:
    """The first few hazards in one phrase (for a record's message)."""
    shown = "; ".join(h.text() for h in found[:limit])
    more = f"; and {len(found) - limit} more" if len(found) > limit else ""
    return shown + more
