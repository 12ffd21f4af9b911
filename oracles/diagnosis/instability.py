"""Naming the operation behind an ``unstable`` subject: which float64 hazard makes it return NaN or inf.

A subject is ``unstable`` when it returns NaN/inf (or raises an arithmetic error) on a case whose exact
gradient is finite and whose forward pass holds float64 hazards (:mod:`oracles.hazards`).  To say *which*
operation breaks, the subject is run on one-example probes that put a single pre-activation (or a
column of logits) of the hazardous layer on a ladder of values around each threshold — e^z's overflow at
709.78, σ(z) rounding to 1 at 36.74 and to 0 at −745.13, tanh(z) rounding to ±1 at 19.06, e^(2z)'s
overflow at 354.89, a probability rounding to 0 at a logit gap of 745 — while every other layer stays
tame.  The first rung where the subject breaks and the last where it did not identify the operation,
which comes with the stable formula.  Probes the subject's family does not allow are skipped; what is
left is then the hazard itself, named from the case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from oracles.diagnosis.family import Family
from oracles.hazards import Hazard, case_hazards
from oracles.subjects import Subject, invoke, validate_gradients
from reference_impl.case import Case
from reference_impl.spec import Array, Params, Spec, SpecError

TAME_HIDDEN = ("identity", "leaky_relu", "relu", "tanh", "sigmoid", "softplus")
# Rungs per activation: the thresholds sit between neighbours.
LADDERS: dict[str, tuple[float, ...]] = {
    "sigmoid": (30.0, 36.0, 37.0, 700.0, 709.0, 710.0, -30.0, -700.0, -709.0, -710.0, -745.0, -746.0),
    "tanh": (15.0, 19.0, 20.0, 354.0, 355.0, 709.0, 710.0, -15.0, -19.0, -20.0, -354.0, -355.0, -709.0, -710.0),
    "softplus": (30.0, 700.0, 709.0, 710.0, -30.0, -700.0, -709.0, -710.0, -745.0, -746.0),
}
# Softmax probes: (name, logits column).
SOFTMAX_PROBES: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("shift 700", (700.0, 699.0, 698.0)),
    ("shift 710", (710.0, 709.0, 708.0)),
    ("shift -745", (-745.0, -746.0, -747.0)),
    ("shift -800", (-800.0, -801.0, -802.0)),
    ("gap 700", (0.0, -700.0, -1.0)),
    ("gap 746", (0.0, -746.0, -1.0)),
)


@dataclass(frozen=True)
class Instability:
    """One recognised unstable operation: where, what breaks, the evidence, and the stable formula."""

    layer: int
    activation: str
    operation: str
    formula: str
    evidence: str
    confidence: float  # 1.0 when a probe reproduced it; lower when only the case's hazards name it

    @property
    def key(self) -> str:
        return "unstable"

    def line(self) -> str:
        return (
            f"unstable (layer {self.layer}, {self.activation}): {self.operation} {self.evidence}. "
            f"Stable formula: {self.formula}"
        )

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key, **self.__dict__}


def _breaks(subject: Subject, spec: Spec, params: Params, X: Array, Y: Array, timeout: float | None) -> bool:
    call = invoke(subject, spec, params, X, Y, timeout=timeout)
    if call.failure is not None:
        return call.failure.category == "exception" and _arithmetic(call.failure.message)
    _, failure = validate_gradients(spec, call.raw)
    return failure is not None and failure.category == "nonfinite"


def _arithmetic(message: str) -> bool:
    return message.split(":", 1)[0] in ("FloatingPointError", "OverflowError", "ZeroDivisionError")


def _probe_spec(family: Family | None, case: Case, layer: int) -> Spec | None:
    """The smallest architecture with the case's activation at ``layer``'s role (hidden or output)."""
    spec = case.spec
    name = spec.activations[layer - 1]
    output = spec.activations[-1]
    is_output = layer == spec.depth
    n_out = max(2, spec.widths[-1]) if spec.loss == "cce" else 1
    min_depth = family.min_depth if family is not None else 1
    depth = max(min_depth, 1 if is_output else 2)
    hidden_allowed = family.hidden if family is not None else TAME_HIDDEN
    if is_output:
        filler = next((a for a in TAME_HIDDEN if a in hidden_allowed), None)
        hidden = [filler] * (depth - 1)
    else:
        filler = (
            name
            if family is not None and family.uniform_hidden
            else next((a for a in TAME_HIDDEN if a in hidden_allowed), None)
        )
        hidden = [filler] * (depth - 2) + [name]
    if any(h is None for h in hidden):
        return None
    try:
        probe = Spec(tuple([1] * depth + [n_out]), (*[str(h) for h in hidden], output), spec.loss)
    except SpecError:
        return None
    if family is not None and not family.allows(probe):
        return None
    return probe


def _probe_arrays(spec: Spec, target: int, values: Sequence[float]) -> tuple[Params, Array, Array]:
    """One example; layer ``target``'s pre-activations are exactly ``values``; every other layer is tame."""
    params: Params = {}
    for layer in range(1, spec.depth + 1):
        rows, cols = spec.widths[layer], spec.widths[layer - 1]
        if layer == target:
            params[f"W{layer}"] = np.zeros((rows, cols))
            params[f"b{layer}"] = np.asarray(values, dtype=np.float64).reshape(rows, 1)
        else:
            # Small weights after the target keep whatever it outputs (up to ~800) out of the next hazards.
            params[f"W{layer}"] = np.full((rows, cols), 0.5 if layer < target else 1e-3)
            params[f"b{layer}"] = np.zeros((rows, 1))
    X = np.ones((1, 1))
    n_out = spec.widths[-1]
    if spec.loss == "cce":
        Y = np.full((n_out, 1), 1.0 / n_out)
    elif spec.loss == "bce" or spec.activations[-1] == "sigmoid":
        Y = np.full((n_out, 1), 0.5)
    else:
        Y = np.full((n_out, 1), 0.3)
    return params, X, Y


def _ladder(subject: Subject, spec: Spec, target: int, timeout: float | None) -> dict[float, bool]:
    name = spec.activations[target - 1]
    width = spec.widths[target]
    return {
        value: _breaks(subject, spec, *_probe_arrays(spec, target, [value] * width), timeout) for value in LADDERS[name]
    }


def _softmax_ladder(subject: Subject, spec: Spec, timeout: float | None) -> dict[str, bool]:
    n = spec.widths[-1]
    out: dict[str, bool] = {}
    for label, logits in SOFTMAX_PROBES:
        column = [*logits[:n], *([logits[-1]] * max(0, n - len(logits)))]
        out[label] = _breaks(subject, spec, *_probe_arrays(spec, spec.depth, column), timeout)
    return out


def _between(broke: dict[float, bool], ok: float, bad: float) -> bool:
    return broke.get(bad, False) and not broke.get(ok, True)


def _from_ladder(layer: int, name: str, loss: str, is_output: bool, broke: dict[float, bool]) -> list[Instability]:
    found: list[Instability] = []

    def add(operation: str, formula: str, ok: float, bad: float) -> None:
        found.append(
            Instability(layer, name, operation, formula, f"(NaN/inf from z = {bad:g} on; finite at z = {ok:g})", 1.0)
        )

    stable_sigmoid = "σ(z) = 1/(1 + e^(−z)) for z ≥ 0 and e^z/(1 + e^z) for z < 0 (no exponential of a positive number)"
    if name == "sigmoid":
        if _between(broke, 709.0, 710.0):
            add(
                "e^z overflows for z > 709.78 (σ written e^z/(1 + e^z), or σ' as e^z/(1 + e^z)²)",
                stable_sigmoid,
                709.0,
                710.0,
            )
        if _between(broke, -709.0, -710.0):
            operation = (
                "e^(−z) overflows for z < −709.78: σ written 1/(1 + e^(−z)) is then exactly 0 and the subject divides"
                " by a or takes log(a) (or σ' written e^(−z)/(1 + e^(−z))² is inf/inf)"
            )
            fused = "δ^[L] = (σ(z) − y)/m from the logits (the fused sigmoid + cross-entropy gradient)"
            add(operation, fused if is_output and loss == "bce" else stable_sigmoid, -709.0, -710.0)
        if _between(broke, 36.0, 37.0):
            if is_output and loss == "bce":
                formula = "δ^[L] = (σ(z) − y)/m from the logits (the fused sigmoid + cross-entropy gradient)"
                operation = (
                    "σ(z) rounds to exactly 1 for z ≥ 36.74 and the subject divides by 1 − a or a(1 − a)"
                    " (dA = −(y/a − (1 − y)/(1 − a)))"
                )
            else:
                formula = "σ' = σ(1 − σ) needs no division; or e^(−|z|)/(1 + e^(−|z|))²"
                operation = "σ(z) rounds to exactly 1 for z ≥ 36.74 and the subject divides by 1 − σ"
            add(operation, formula, 36.0, 37.0)
        if _between(broke, -745.0, -746.0) and not _between(broke, -709.0, -710.0):
            formula = (
                "δ^[L] = (σ(z) − y)/m from the logits (the fused sigmoid + cross-entropy gradient)"
                if is_output and loss == "bce"
                else "no division by σ(z) or log σ(z): use log σ(z) = −softplus(−z)"
            )
            add(
                "σ(z) rounds to exactly 0 for z ≤ −745.13 and the subject divides by a or takes log(a)",
                formula,
                -745.0,
                -746.0,
            )
    elif name == "tanh":
        stable = "np.tanh(z), and tanh' = 1 − tanh² (or sech²(z) = (2e^(−|z|)/(1 + e^(−2|z|)))²)"
        thresholds = (
            (354.0, "e^(2z) overflows for |z| > 354.89 (tanh written (e^(2z) − 1)/(e^(2z) + 1))"),
            (709.0, "e^|z| overflows for |z| > 709.78 (tanh written (e^z − e^(−z))/(e^z + e^(−z)))"),
            (19.0, "tanh(z) rounds to exactly ±1 for |z| ≥ 19.06 and the subject divides by 1 − tanh²"),
        )
        for sign in (1.0, -1.0):
            hit = next((t for t in thresholds if _between(broke, t[0] * sign, (t[0] + 1.0) * sign)), None)
            if hit is not None:
                add(hit[1], stable, hit[0] * sign, (hit[0] + 1.0) * sign)
                break
    elif name == "softplus":
        stable = "softplus(z) = max(z, 0) + log1p(e^(−|z|)) (np.logaddexp(0, z)), softplus' = 1/(1 + e^(−z))"
        if _between(broke, 709.0, 710.0):
            add(
                "e^z overflows for z > 709.78 (softplus written log(1 + e^z), or its derivative e^z/(1 + e^z))",
                stable,
                709.0,
                710.0,
            )
        if _between(broke, -709.0, -710.0):
            add("e^(−z) overflows for z < −709.78 (softplus' written e^(−z)-based)", stable, -709.0, -710.0)
    return found


def _from_softmax(layer: int, broke: dict[str, bool]) -> list[Instability]:
    found: list[Instability] = []
    stable = "p = e^(z − max z)/Σ e^(z − max z) (subtract the column maximum)"
    if broke["shift 710"] and not broke["shift 700"]:
        evidence = "(NaN/inf once a logit passes 709.78; finite at logits near 700)"
        found.append(Instability(layer, "softmax", "e^z overflows in the softmax", stable, evidence, 1.0))
    elif broke["shift -800"] and not broke["shift -745"]:
        evidence = "(NaN once every logit is below −745.13; finite at −745)"
        found.append(Instability(layer, "softmax", "every e^z underflows to 0 and p = 0/0", stable, evidence, 1.0))
    if broke["gap 746"] and not broke["gap 700"]:
        evidence = "(NaN/inf once a logit trails the largest by 746; finite at a gap of 700)"
        formula = "δ^[L] = (p − y)/m from the logits (the fused softmax + cross-entropy gradient)"
        operation = "a probability rounds to exactly 0 and the subject divides by it (∂L/∂p = −y/p) or takes log p"
        found.append(Instability(layer, "softmax", operation, formula, evidence, 1.0))
    return found


def _from_hazard(hazard: Hazard) -> Instability:
    """What the case alone says, when no probe could be run or none reproduced the failure."""
    formulas = {
        "sigmoid": "σ from e^(−|z|) only; the fused (σ(z) − y)/m for cross-entropy",
        "tanh": "np.tanh and 1 − tanh², no exponentials of |z|",
        "softplus": "max(z, 0) + log1p(e^(−|z|))",
        "softmax": "subtract the column maximum; the fused (p − y)/m for cross-entropy",
    }
    return Instability(
        hazard.layer,
        hazard.activation,
        f"NaN/inf where {hazard.text()}",
        "; ".join(v for k, v in formulas.items() if k == hazard.activation) or "avoid the overflowing operation",
        "(named from the case; no probe reproduced it)",
        0.5,
    )


def explain_instability(
    subject: Subject, case: Case, family: Family | None = None, *, timeout: float | None = None
) -> list[Instability]:
    """The unstable operations behind a subject's NaN/inf on ``case`` (empty when the case has no hazard)."""
    hazards = case_hazards(case)
    if not hazards:
        return []
    found: list[Instability] = []
    seen: set[tuple[str, bool]] = set()
    for hazard in hazards:
        layer, name = hazard.layer, hazard.activation
        role = (name, layer == case.spec.depth)
        if role in seen:
            continue
        seen.add(role)
        spec = _probe_spec(family, case, layer)
        if spec is None:
            continue
        target = spec.depth if layer == case.spec.depth else spec.depth - 1
        if name == "softmax":
            found.extend(_from_softmax(layer, _softmax_ladder(subject, spec, timeout)))
        else:
            found.extend(
                _from_ladder(
                    layer, name, case.spec.loss, layer == case.spec.depth, _ladder(subject, spec, target, timeout)
                )
            )
    return found or [_from_hazard(hazards[0])]
