"""Evidence for a diagnosis: the crafted probe cases, the subject's answers on them, and how they compare.

:func:`probe_cases` builds cases that tell defect signatures apart (square and non-square layers, m = 1
and m > 1, one and several outputs, each hidden activation alone, exact kinks); :func:`run_probe` runs
the subject on one case next to the reference, as a :class:`Run`; the comparison helpers
(:func:`close`, :func:`fit_factor`, :func:`same`, …) decide "right", "predicted" and "the same constant".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from oracles.diagnosis.family import Family
from oracles.subjects import ProtocolFailure, Subject, invoke, real_blocks, validate_gradients
from reference_impl import mlp
from reference_impl.case import Case
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params, Spec

RIGHT_RTOL = 1e-11  # "right": within reduction-order noise of the block's largest entry
MODEL_RTOL = 1e-9  # a defect model "predicts" the subject within this
FACTOR_RTOL = 1e-9  # two factors are "the same constant"
HIDDEN_PREFERENCE = ("tanh", "sigmoid", "softplus", "leaky_relu", "relu", "identity")
OUTPUT_PREFERENCE = ("sigmoid", "tanh", "softplus", "leaky_relu", "relu", "identity")


@dataclass
class Run:
    case: Case
    reference: Params
    params: Params
    blocks: dict[str, Array] | None  # what came back, as float64 arrays of any shape
    failure: ProtocolFailure | None
    extra_failures: list[ProtocolFailure] = field(default_factory=list)

    @property
    def m(self) -> int:
        return self.case.batch

    @property
    def valid(self) -> bool:
        return self.blocks is not None and (self.failure is None or self.failure.category == "mutation")


# --- probes -----------------------------------------------------------------------------------------


def _first(preferred: Sequence[str], allowed: Sequence[str]) -> str:
    return next((a for a in preferred if a in allowed), allowed[0])


def probe_cases(family: Family, rng: np.random.Generator) -> list[Case]:
    """Crafted cases that tell signatures apart, for every loss the family allows."""
    probes: list[Case] = []
    depth = min(3, family.deepest)
    hidden = [_first(HIDDEN_PREFERENCE, family.hidden)] * (depth - 1) if depth > 1 else []
    for loss in family.usable_losses:
        output = family.output_for(loss, OUTPUT_PREFERENCE)
        assert output is not None
        activations = (*hidden, output)
        n_out = 3 if loss == "cce" else 2
        inner = [5, 4, 6][: depth - 1]
        shapes = [
            ("nonsquare", [3, *inner, n_out], 4),
            ("square", [3] * (depth + 1), 3),
            ("one-example", [3, *inner, n_out], 1),
        ]
        if loss != "cce":  # one softmax unit has a constant output: nothing to learn from it
            shapes.append(("one-output", [2, *inner, 1], 5))
        for kind, widths, batch in shapes:
            spec = Spec(tuple(widths), activations, loss)
            probes.append(Case(spec, batch=batch, seed=int(rng.integers(0, 2**31)), label=f"probe-{loss}-{kind}"))
            if kind == "nonsquare":
                # Same architecture and batch, new values: a subject that caches by shape answers stale.
                fresh = int(rng.integers(0, 2**31))
                probes.append(Case(spec, batch=batch, seed=fresh, label=f"probe-{loss}-fresh-values"))
        probes.extend(_isolation_probes(family, loss, depth, rng))
    return probes


def _isolation_probes(family: Family, loss: str, depth: int, rng: np.random.Generator) -> list[Case]:
    """One probe per hidden activation (alone in the net), and kinked ones for relu/leaky_relu."""
    if depth < 2:
        return []
    output = family.output_for(loss, ("identity", *OUTPUT_PREFERENCE))
    assert output is not None
    probes: list[Case] = []
    for name in family.hidden:
        spec = Spec((3, *[4] * (depth - 1), 2 if loss != "cce" else 3), (*[name] * (depth - 1), output), loss)
        probes.append(Case(spec, batch=4, seed=int(rng.integers(0, 2**31)), label=f"probe-{loss}-only-{name}"))
        if name in KINKED_ACTIVATIONS:
            seed = int(rng.integers(0, 2**31))
            probes.append(Case(spec, batch=5, seed=seed, kinks=True, label=f"probe-{loss}-kinks-{name}"))
    return probes


def run_probe(subject: Subject, case: Case, timeout: float | None) -> Run:
    params, X, Y = case.arrays()
    reference = mlp.gradients(case.spec, params, X, Y)
    call = invoke(subject, case.spec, params, X, Y, timeout=timeout, repeat=True)
    blocks = real_blocks(call.raw)
    failure = call.failure
    if failure is None or failure.category == "mutation":
        _, value_failure = validate_gradients(case.spec, call.raw)
        if failure is None:
            failure = value_failure
    return Run(case, reference, case.params, blocks, failure)


# --- comparisons ------------------------------------------------------------------------------------


def scale_of(*arrays: Array) -> float:
    return max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)


def close(subject: Array, predicted: Array, rtol: float) -> bool:
    if subject.shape != predicted.shape:
        # A scalar prediction (a bias summed to one number) matches any constant array of it.
        if predicted.size != 1 or subject.size == 0 or not np.all(subject == subject.flat[0]):
            return False
        subject, predicted = np.asarray(subject.flat[0]), np.asarray(predicted).reshape(())
    if not np.all(np.isfinite(subject)):
        return False
    return bool(np.all(np.abs(subject - predicted) <= rtol * scale_of(subject, predicted) + 1e-300))


def blocks_close(blocks: Mapping[str, Array], predicted: Mapping[str, Array], rtol: float) -> bool:
    return set(blocks) == set(predicted) and all(close(blocks[k], predicted[k], rtol) for k in predicted)


def is_right(run: Run) -> bool:
    return run.valid and run.blocks is not None and blocks_close(run.blocks, run.reference, RIGHT_RTOL)


def fit_factor(subject: Array, reference: Array) -> float | None:
    """c with subject = c · reference to rounding, or None (no constant fits, or reference is zero)."""
    denominator = float(np.sum(reference * reference))
    if denominator == 0.0 or subject.shape != reference.shape:
        return None
    c = float(np.sum(subject * reference)) / denominator
    residual = float(np.max(np.abs(subject - c * reference)))
    return c if residual <= RIGHT_RTOL * scale_of(subject, c * reference) else None


def same(a: float, b: float, rtol: float = FACTOR_RTOL) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b))
