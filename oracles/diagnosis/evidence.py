"""Evidence for a diagnosis: the crafted probe cases, the subject's answers on them, and how they compare.

:func:`probe_cases` builds cases whose features vary one at a time (square and non-square layers, each
layer square alone, m = 1 and m > 1, one and several outputs, one-hot and soft targets, saturation, each
hidden activation alone, one hidden layer alone, exact kinks); :func:`run_probes` runs the subject on
them in order (and re-asks the first question at the end, so state carried between calls shows), each
answer a :class:`Run` beside the reference.  The comparison helpers decide "right" (the suite's
tolerance formula, Ḡ included), "predicted by a model" and "the same constant".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from oracles.diagnosis.family import Family
from oracles.diagnosis.features import Features, case_features, one_hot_targets
from oracles.diagnosis.wording import Diagnosis
from oracles.subjects import ProtocolFailure, RawCall, Subject, invoke, real_blocks, validate_gradients
from oracles.verdicts.rounding_scale import case_magnitudes
from oracles.verdicts.tolerances import Tolerance, entry_tolerance
from reference_impl import mlp
from reference_impl.case import Case
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params, Spec

RIGHT = Tolerance(1e-11, 1e-300, note="diagnosis: right")  # reduction-order noise, Ḡ included
# A defect model "predicts" the subject within this (relative to the block's scale, Ḡ included): far above
# reduction-order noise, below the smallest defect worth naming (one entry off by 1e-9).
MODEL_RTOL = 1e-10
FACTOR_RTOL = 1e-10  # two factors are "the same constant"
HIDDEN_PREFERENCE = ("tanh", "sigmoid", "softplus", "leaky_relu", "relu", "identity")
OUTPUT_PREFERENCE = ("sigmoid", "tanh", "softplus", "leaky_relu", "relu", "identity")
# What numpy, torch and friends say when operand shapes do not conform: the failure a shape model predicts.
SHAPE_ERROR = re.compile(r"shape|broadcast|align|mismatch|dimension|size|matmul", re.IGNORECASE)
SHAPE_ERROR_TYPES = ("ValueError", "RuntimeError", "IndexError")


@dataclass
class Run:
    """One call of the subject on one case, beside the reference's answer."""

    case: Case
    reference: Params
    params: Params
    blocks: dict[str, Array] | None  # what came back, as float64 arrays of any shape
    failure: ProtocolFailure | None
    order: int = 0
    first_case: Case | None = None
    raw_failure: ProtocolFailure | None = None  # the call's own failure before value checks
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def m(self) -> int:
        return self.case.batch

    @property
    def valid(self) -> bool:
        """Gradients came back with the right keys and shapes, finite, and no protocol fault."""
        return self.blocks is not None and self.failure is None

    @property
    def shaped(self) -> bool:
        """Values came back but some block has the wrong shape (a shape model may still predict them)."""
        return self.blocks is not None and self.failure is not None and self.failure.category == "shape"

    @property
    def raised(self) -> bool:
        return self.failure is not None and self.failure.category == "exception"

    @property
    def shape_error(self) -> bool:
        """Raised the kind of exception non-conforming shapes give (what a transpose model predicts)."""
        if not self.raised or self.failure is None:
            return False
        kind, _, text = self.failure.message.partition(":")
        return kind in SHAPE_ERROR_TYPES and bool(SHAPE_ERROR.search(text))

    @cached_property
    def features(self) -> Features:
        return case_features(self.case, self.first_case)

    @cached_property
    def tape(self) -> mlp.Tape:
        """The reference's forward pass on this case: z^[l], a^[l]."""
        params, X, _ = self.case.arrays()
        return mlp.forward(self.case.spec, params, X)

    @cached_property
    def trace(self) -> mlp.Backward:
        """The reference's backward pass: δ^[l] per layer."""
        return mlp.backward(self.case.spec, self.case.params, self.tape, self.case.Y)

    @cached_property
    def magnitudes(self) -> dict[str, Array]:
        # The magnitude part M of the rounding bound: the models' own rtol (≥ 1e-11) already exceeds
        # the carried error E that textbook formulations add, so M alone sets the scale here.
        return {name: bound.M for name, bound in case_magnitudes(self.case).items()}

    @cached_property
    def right(self) -> dict[str, bool]:
        """Per reference block: whether the subject's block is right (suite tolerance formula)."""
        if self.blocks is None:
            return {name: False for name in self.reference}
        return {
            name: name in self.blocks and agrees(self.blocks[name], ref, RIGHT.rtol, self.magnitudes.get(name))
            for name, ref in self.reference.items()
        }


# --- probes -----------------------------------------------------------------------------------------


def _first(preferred: Sequence[str], allowed: Sequence[str]) -> str:
    return next((a for a in preferred if a in allowed), allowed[0])


def _case(
    spec: Spec, batch: int, rng: np.random.Generator, label: str, one_hot: bool | None = None, **kw: object
) -> Case:
    """A seeded probe; with ``one_hot`` set, seeds are drawn until the targets are (not) one-hot."""
    case = Case(spec, batch=batch, seed=int(rng.integers(0, 2**31)), label=label, **kw)  # type: ignore[arg-type]
    for _ in range(400):
        if one_hot is None or one_hot_targets(case) in (one_hot, None):
            break
        case = Case(spec, batch=batch, seed=int(rng.integers(0, 2**31)), label=label, **kw)  # type: ignore[arg-type]
    return case


def _shapes(depth: int, n_out: int, loss: str) -> list[tuple[str, list[int], int, dict[str, object]]]:
    """(kind, widths, batch, extra Case fields) of the shape probes for a net of ``depth`` layers."""

    def net(*inner: int, first: int = 3, out: int = n_out) -> list[int]:
        return [first, *list(inner)[: depth - 1], out]

    shapes: list[tuple[str, list[int], int, dict[str, object]]] = [
        ("nonsquare", net(5, 4, 6), 4, {}),
        ("square", [3] * (depth + 1), 3, {}),
        ("one-example", net(5, 4, 6), 1, {}),
        ("square-one-example", [3] * (depth + 1), 1, {}),
        ("wide", net(5, 6, 5, first=4, out=4), 2, {}),  # m ≤ every width: each δ^[l] is recoverable
        ("saturated", net(5, 4, 6), 3, {"param_scale": 4.0, "data_scale": 3.0}),
    ]
    if loss != "cce":  # one softmax unit has a constant output: nothing to learn from it
        shapes.append(("one-output", net(5, 4, 6, first=2, out=1), 5, {}))
    if depth >= 2:
        shapes.append(("square-W2", net(4, 4, 5), 4, {}))  # only W^[2] square
        shapes.append(("square-W1", net(3, 5, 4), 3, {}))  # only W^[1] square
    return shapes


def probe_cases(family: Family, rng: np.random.Generator) -> list[Case]:
    """Crafted cases that tell signatures apart, for every loss the family allows."""
    probes: list[Case] = []
    depth = min(3, family.deepest)
    hidden = [_first(HIDDEN_PREFERENCE, family.hidden)] * (depth - 1) if depth > 1 else []
    for loss in family.usable_losses:
        output = family.output_for(loss, OUTPUT_PREFERENCE)
        assert output is not None
        n_out = 3 if loss == "cce" else 2
        soft = False if loss in ("bce", "cce") else None
        for kind, widths, batch, extra in _shapes(depth, n_out, loss):
            spec = Spec(tuple(widths), (*hidden, output), loss)
            probes.append(_case(spec, batch, rng, f"probe-{loss}-{kind}", soft, **extra))
            if kind == "nonsquare":
                # Same architecture and batch, new values: a subject that caches by shape answers stale.
                probes.append(_case(spec, batch, rng, f"probe-{loss}-fresh-values", soft))
        if loss in ("bce", "cce"):
            widths = [3, *[5, 4][: depth - 1], 1 if loss == "bce" else 3]
            spec = Spec(tuple(widths), (*hidden, output), loss)
            probes.append(_case(spec, 2 if loss == "bce" else 3, rng, f"probe-{loss}-one-hot", True))
        probes.extend(_depth_probes(family, loss, depth, rng))
        probes.extend(_isolation_probes(family, loss, depth, rng))
    return [p for p in probes if family.allows(p.spec)]


def _depth_probes(family: Family, loss: str, depth: int, rng: np.random.Generator) -> list[Case]:
    """A net with no hidden layer (a subject may special-case it, or fail only there)."""
    output = family.output_for(loss, OUTPUT_PREFERENCE)
    assert output is not None
    n_out = 3 if loss == "cce" else 2
    soft = False if loss in ("bce", "cce") else None
    if family.min_depth <= 1 and depth > 1:
        return [_case(Spec((3, n_out), (output,), loss), 4, rng, f"probe-{loss}-shallow", soft)]
    return []


def _isolation_probes(family: Family, loss: str, depth: int, rng: np.random.Generator) -> list[Case]:
    """Per hidden activation: alone in the net, alone in one hidden layer, and on exact kinks."""
    if depth < 2:
        return []
    output = family.output_for(loss, ("identity", *OUTPUT_PREFERENCE))
    assert output is not None
    n_out = 2 if loss != "cce" else 3
    soft = False if loss in ("bce", "cce") else None
    probes: list[Case] = []
    for name in family.hidden:
        spec = Spec((3, *[4, 5][: depth - 1], n_out), (*[name] * (depth - 1), output), loss)
        probes.append(_case(spec, 4, rng, f"probe-{loss}-only-{name}", soft))
        if depth > 2:
            single = Spec((3, 5, n_out), (name, output), loss)
            probes.append(_case(single, 3, rng, f"probe-{loss}-one-{name}", soft))
        if name in KINKED_ACTIVATIONS:
            probes.append(_case(spec, 5, rng, f"probe-{loss}-kinks-{name}", None, kinks=True))
    return probes


def _run_from_call(case: Case, call: RawCall, order: int, first: Case | None) -> Run:
    params, X, Y = case.arrays()
    reference = mlp.gradients(case.spec, params, X, Y)
    blocks = real_blocks(call.raw)
    failure = call.failure
    if failure is None or failure.category == "mutation":
        _, value_failure = validate_gradients(case.spec, call.raw)
        if failure is None:
            failure = value_failure
    return Run(case, reference, case.params, blocks, failure, order, first, call.failure)


def run_probe(subject: Subject, case: Case, timeout: float | None, order: int = 0, first: Case | None = None) -> Run:
    params, X, Y = case.arrays()
    call = invoke(subject, case.spec, params, X, Y, timeout=timeout, repeat=True)
    return _run_from_call(case, call, order, first)


def run_probes(subject: Subject, cases: Sequence[Case], timeout: float | None) -> tuple[list[Run], Run | None]:
    """Every case in order, then the first one again (its answer must not depend on what came between)."""
    runs: list[Run] = []
    first = cases[0] if cases else None
    for case in cases:
        run = run_probe(subject, case, timeout, len(runs), first)
        runs.append(run)
        if run.failure is not None and run.failure.category in ("timeout", "crash"):
            return runs, None  # every further probe would wait as long again, or restart a worker to die again
    if first is None:
        return runs, None
    params, X, Y = first.arrays()
    again = invoke(subject, first.spec, params, X, Y, timeout=timeout, repeat=False)
    return runs, _run_from_call(first, again, len(runs), first)


# --- comparisons ------------------------------------------------------------------------------------


def scale_of(*arrays: Array) -> float:
    return max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)


def agrees(subject: Array, predicted: Array, rtol: float, floor: Array | None = None) -> bool:
    """Entrywise within ``rtol`` of max(|p|, ‖p‖∞, ‖s‖∞, Ḡ): the suite's formula, both sides' scale."""
    if subject.shape != predicted.shape:
        # A scalar prediction (a bias summed to one number) matches any constant array of it.
        if predicted.size != 1 or subject.size == 0 or not np.all(subject == subject.flat[0]):
            return False
        scalar_floor = None if floor is None or not np.size(floor) else np.asarray(np.sum(floor))
        subject, predicted, floor = np.asarray(subject.flat[0]), np.asarray(predicted).reshape(()), scalar_floor
    if not np.all(np.isfinite(subject)):
        return False
    allowed = entry_tolerance(predicted, Tolerance(rtol, 1e-300), None, floor)
    allowed = np.maximum(allowed, rtol * scale_of(subject))
    return bool(np.all(np.abs(subject - predicted) <= allowed))


def close(subject: Array, predicted: Array, rtol: float) -> bool:
    return agrees(subject, predicted, rtol)


def blocks_close(blocks: Mapping[str, Array], predicted: Mapping[str, Array], rtol: float) -> bool:
    return set(blocks) == set(predicted) and all(close(blocks[k], predicted[k], rtol) for k in predicted)


def run_predicted(run: Run, predicted: Mapping[str, Array], rtol: float = MODEL_RTOL) -> bool:
    """The subject's blocks on ``run`` are ``predicted`` (keys, shapes and values), Ḡ counted as scale."""
    blocks = run.blocks
    if blocks is None or set(blocks) != set(predicted):
        return False
    return all(agrees(blocks[k], predicted[k], rtol, run.magnitudes.get(k)) for k in predicted)


def prediction_right(run: Run, predicted: Mapping[str, Array]) -> bool:
    """Whether a model's prediction on ``run`` is itself the right answer (keys, shapes and values)."""
    return set(predicted) == set(run.reference) and all(
        agrees(r, predicted[n], RIGHT.rtol, run.magnitudes.get(n)) for n, r in run.reference.items()
    )


def reproduces(run: Run, predicted: Mapping[str, Array], rtol: float = MODEL_RTOL) -> bool:
    """The model predicts the subject on ``run`` and agrees with it about being right or wrong there."""
    if not run_predicted(run, predicted, rtol):
        return False
    return prediction_right(run, predicted) == (run.valid and all(run.right.values()))


def is_right(run: Run) -> bool:
    return run.valid and all(run.right.values())


def fit_factor(subject: Array, reference: Array) -> float | None:
    """c with subject = c · reference to rounding, or None (no constant fits, or reference is zero)."""
    denominator = float(np.sum(reference * reference))
    if denominator == 0.0 or subject.shape != reference.shape:
        return None
    c = float(np.sum(subject * reference)) / denominator
    residual = float(np.max(np.abs(subject - c * reference)))
    return c if residual <= RIGHT.rtol * 10 * scale_of(subject, c * reference) else None


def same(a: float, b: float, rtol: float = FACTOR_RTOL) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b))


# --- what one loss's runs show, and what explains them ------------------------------------------------


@dataclass
class LossEvidence:
    """The runs of one loss, split by what came back (models are fitted on ``valid`` runs only)."""

    loss: str
    valid: list[Run]  # fault-free answers
    shaped: list[Run]  # answers with a wrong-shaped block (a model may predict exactly that)
    raised: list[Run]  # exceptions (evidence only for a model that predicts that failure)
    depth: int  # the deepest net probed at all

    @property
    def wrong(self) -> list[Run]:
        return [run for run in self.valid if not is_right(run)]


@dataclass
class Explanation:
    """Diagnoses that together reproduce every valid run of a loss, and which faulty runs they predict."""

    diagnoses: list[Diagnosis]
    claimed: frozenset[int] = frozenset()  # orders of raised/shaped runs the model predicted
    differing: int = 0  # runs on which the model's answer is not the right one

    def evidence(self, evidence: LossEvidence) -> str:
        """How much of what was seen this explains, in words."""
        total = len(evidence.valid)
        wrong = len(evidence.wrong)
        text = f"reproduces all {total} fault-free probes of {evidence.loss}, the {wrong} wrong ones included"
        raised = [r for r in evidence.raised if r.order in self.claimed]
        shaped = [r for r in evidence.shaped if r.order in self.claimed]
        if raised:
            text += f", and predicts the shape error on {len(raised)} probe{'s' if len(raised) > 1 else ''}"
        if shaped:
            text += f", and the wrong shapes on {len(shaped)} probe{'s' if len(shaped) > 1 else ''}"
        return text
