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
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oracles.diagnosis import conventions
from oracles.diagnosis.family import Family, family_of_cases
from oracles.diagnosis.signatures import NotApplicable, Variant, WouldRaise, predict, variants_for
from oracles.subjects import ProtocolFailure, Subject, invoke, real_blocks, validate_gradients
from reference_impl import mlp
from reference_impl.case import Case
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params, Spec

RIGHT_RTOL = 1e-11  # "right": within reduction-order noise of the block's largest entry
MODEL_RTOL = 1e-9  # a defect model "predicts" the subject within this
FACTOR_RTOL = 1e-9  # two factors are "the same constant"
FLOAT32_RTOL = 1e-5  # float32 arithmetic: wrong at 1e-12, right to ~1e-7 of the block
HARD_CATEGORIES = ("timeout", "crash", "mutation", "nondeterminism", "nonfinite", "missing", "dtype")
HIDDEN_PREFERENCE = ("tanh", "sigmoid", "softplus", "leaky_relu", "relu", "identity")
OUTPUT_PREFERENCE = ("sigmoid", "tanh", "softplus", "leaky_relu", "relu", "identity")


@dataclass(frozen=True)
class Diagnosis:
    """One recognised defect or convention; ``formula`` is the right formula that the subject breaks."""

    key: str
    layer: int | None
    formula: str
    message: str
    confidence: float
    losses: tuple[str, ...] = ()

    def line(self) -> str:
        where = f"layer {self.layer}" if self.layer is not None else "all layers"
        losses = f" [{', '.join(self.losses)}]" if self.losses else ""
        return f"{self.key} ({where}){losses}: {self.message} Right formula: {self.formula}"


@dataclass
class _Run:
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


def _formula_W(layer: int | str) -> str:
    prev = f"{layer}-1" if isinstance(layer, str) else str(layer - 1)
    return f"∂L/∂W^[{layer}] = δ^[{layer}] (a^[{prev}])ᵀ"


def _formula_b(layer: int | str) -> str:
    return f"∂L/∂b^[{layer}] = Σ_i δ^[{layer}]_(:,i)  (a sum over the batch, axis=1)"


def _formula_recursion(layer: int | str) -> str:
    """The δ recursion that carries δ^[layer] back to layer − 1."""
    prev = f"{layer}-1" if isinstance(layer, str) else str(layer - 1)
    return f"δ^[{prev}] = (W^[{layer}])ᵀ δ^[{layer}] ⊙ g'(z^[{prev}])"


def _formula_block(name: str) -> str:
    layer = int(name[1:])
    return _formula_W(layer) if name.startswith("W") else _formula_b(layer)


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


def _run(subject: Subject, case: Case, timeout: float | None) -> _Run:
    params, X, Y = case.arrays()
    reference = mlp.gradients(case.spec, params, X, Y)
    call = invoke(subject, case.spec, params, X, Y, timeout=timeout, repeat=True)
    blocks = real_blocks(call.raw)
    failure = call.failure
    if failure is None or failure.category == "mutation":
        _, value_failure = validate_gradients(case.spec, call.raw)
        if failure is None:
            failure = value_failure
    return _Run(case, reference, case.params, blocks, failure)


# --- comparisons ------------------------------------------------------------------------------------


def _scale(*arrays: Array) -> float:
    return max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)


def _close(subject: Array, predicted: Array, rtol: float) -> bool:
    if subject.shape != predicted.shape:
        # A scalar prediction (a bias summed to one number) matches any constant array of it.
        if predicted.size != 1 or subject.size == 0 or not np.all(subject == subject.flat[0]):
            return False
        subject, predicted = np.asarray(subject.flat[0]), np.asarray(predicted).reshape(())
    if not np.all(np.isfinite(subject)):
        return False
    return bool(np.all(np.abs(subject - predicted) <= rtol * _scale(subject, predicted) + 1e-300))


def _blocks_close(blocks: Mapping[str, Array], predicted: Mapping[str, Array], rtol: float) -> bool:
    return set(blocks) == set(predicted) and all(_close(blocks[k], predicted[k], rtol) for k in predicted)


def _is_right(run: _Run) -> bool:
    return run.valid and run.blocks is not None and _blocks_close(run.blocks, run.reference, RIGHT_RTOL)


def _fit_factor(subject: Array, reference: Array) -> float | None:
    """c with subject = c · reference to rounding, or None (no constant fits, or reference is zero)."""
    denominator = float(np.sum(reference * reference))
    if denominator == 0.0 or subject.shape != reference.shape:
        return None
    c = float(np.sum(subject * reference)) / denominator
    residual = float(np.max(np.abs(subject - c * reference)))
    return c if residual <= RIGHT_RTOL * _scale(subject, c * reference) else None


def _same(a: float, b: float, rtol: float = FACTOR_RTOL) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b))


# --- 1. protocol -------------------------------------------------------------------------------------


PURE_FORMULA = "gradients(spec, params, X, Y) -> {name: ∂L/∂θ}, a pure function of its inputs"


def _protocol_diagnoses(runs: Sequence[_Run]) -> list[Diagnosis]:
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


def _stale_run(runs: Sequence[_Run]) -> _Run | None:
    """The first wrong run, if every wrong run repeats an earlier (spec, batch) and every first sighting is right."""
    seen: set[tuple[Spec, int]] = set()
    first_wrong: _Run | None = None
    for run in runs:
        if run.case.kinks:
            continue  # a kink convention is wrong on first sight too; it is not state
        key = (run.case.spec, run.m)
        right = _is_right(run)
        if key not in seen and not right:
            return None
        if key in seen and not right and first_wrong is None:
            first_wrong = run
        seen.add(key)
    return first_wrong


# --- 2. conventions -----------------------------------------------------------------------------------


def _global_factors(runs: Sequence[_Run]) -> list[tuple[_Run, float]] | None:
    """Per run, the one factor relating every block to the reference; None if any run has none."""
    factors: list[tuple[_Run, float]] = []
    for run in runs:
        if not run.valid or run.blocks is None or set(run.blocks) != set(run.reference):
            return None
        names = sorted(run.reference)
        subject = np.concatenate([run.blocks[n].ravel() for n in names])
        reference = np.concatenate([run.reference[n].ravel() for n in names])
        if not np.any(reference):
            continue
        c = _fit_factor(subject, reference)
        if c is None:
            return None
        # One fit over all blocks could hide a block that is wrong but tiny: check each block too.
        if not all(_close(run.blocks[n], c * run.reference[n], MODEL_RTOL) for n in names):
            return None
        factors.append((run, c))
    return factors or None


def _convention_diagnosis(loss: str, factors: Sequence[tuple[_Run, float]]) -> Diagnosis | None:
    if all(_same(c, 1.0) for _, c in factors):
        return None
    if all(_same(c, float(run.m)) for run, c in factors):
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
        if all(_same(c, conventions.factor(name, run.case.spec, run.m)) for run, c in factors):
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
    if all(_same(c, -1.0) for _, c in factors):
        return Diagnosis(
            "sign",
            None,
            "∂L/∂θ (the update then subtracts it: θ ← θ − η ∂L/∂θ)",
            "Every gradient has the wrong sign: the subject returns −∂L/∂θ, the descent direction.",
            0.95,
            (loss,),
        )
    first = factors[0][1]
    if all(_same(c, first) for _, c in factors):
        return Diagnosis(
            "scale",
            None,
            "∂L/∂θ with no extra constant",
            f"Every gradient is {first:.10g} times the right one, a constant no known convention explains.",
            0.8,
            (loss,),
        )
    return None


# --- 3. structural models -------------------------------------------------------------------------------

_VARIANT_TEXT: dict[str, tuple[str, str]] = {
    "transpose": (
        "transpose",
        "The δ recursion multiplies by W^[{l}] where its transpose (W^[{l}])ᵀ belongs{every}: it only runs when "
        "layers {lm1} and {l} have the same width, and gives wrong values there.",
    ),
    "weight_off_by_one": (
        "off_by_one",
        "The δ recursion into layer {lm1} uses (W^[{lm1}])ᵀ instead of (W^[{l}])ᵀ{every}: the weight is one layer off.",
    ),
    "derivative_off_by_one": (
        "off_by_one",
        "The δ recursion into layer {lm1} uses layer {l}'s activation derivative instead of layer {lm1}'s{every}: "
        "the activation is one layer off.",
    ),
    "derivative_of_a": (
        "derivative_of_a",
        "g'(a^[{h}]) is used where g'(z^[{h}]) belongs{every}: the activation's derivative is evaluated at its "
        "output instead of its pre-activation.",
    ),
    "hidden_derivative_missing": (
        "hidden_derivative",
        "The δ recursion into layer {lm1} forgets the ⊙ g'(z^[{lm1}]) factor{every}.",
    ),
    "delta_off_by_one": (
        "wrong_layer_delta",
        "Layer {l}'s gradients use δ^[{lm1}] instead of δ^[{l}]{every}: δ is updated before it is used "
        "(one layer off).",
    ),
    "activation_off_by_one": (
        "off_by_one",
        "∂L/∂W^[{l}] uses a^[{l}], the layer's own output, instead of its input a^[{lm1}]{every} (one layer off).",
    ),
    "bias_axis0": (
        "bias_axis",
        "∂L/∂b^[{l}] sums δ^[{l}] over units (axis 0) instead of over the examples (axis 1){every}; it only "
        "has the right shape when m = n_l.",
    ),
    "bias_scalar": (
        "bias_axis",
        "∂L/∂b^[{l}] sums δ^[{l}] over every entry to one scalar (a sum without an axis){every}, instead of one "
        "sum over the batch per unit.",
    ),
    "output_missing": (
        "output_derivative",
        "δ^[L] is ∂L/∂a^[L] alone: the output activation's derivative g'(z^[L]) is missing (L = {l}).",
    ),
    "output_double": (
        "output_derivative",
        "The output activation's derivative g'(z^[L]) is applied twice: δ^[L] already contains it and is "
        "multiplied by it again (L = {l}).",
    ),
    "shortcut_delta": (
        "loss_gradient",
        "δ^[L] is (a^[L] − y)/m, the cross-entropy shortcut, which is not the derivative of this loss (L = {l}).",
    ),
    "softmax_diagonal": (
        "softmax_jacobian",
        "The softmax Jacobian is taken as diag(a ⊙ (1 − a)): its off-diagonal −a_i a_j terms are missing (L = {l}).",
    ),
}


def _variant_formula(kind: str, layer: int) -> str:
    if kind == "derivative_of_a":
        return f"δ^[{layer}] = (W^[{layer + 1}])ᵀ δ^[{layer + 1}] ⊙ g'(z^[{layer}])"
    if kind in ("output_missing", "output_double", "shortcut_delta"):
        return "δ^[L] = ∂L/∂a^[L] ⊙ g'(z^[L])"
    if kind == "softmax_diagonal":
        return "δ^[L] = J_softmax(z^[L])ᵀ ∂L/∂a^[L],  J = diag(a) − a aᵀ"
    if kind in ("bias_axis0", "bias_scalar"):
        return _formula_b(layer)
    if kind == "activation_off_by_one":
        return _formula_W(layer)
    if kind == "delta_off_by_one":
        return f"{_formula_W(layer)}; {_formula_b(layer)}"
    return _formula_recursion(layer)


def _variant_diagnoses(variant: Variant, depth: int, losses: tuple[str, ...], confidence: float) -> list[Diagnosis]:
    key, template = _VARIANT_TEXT[variant.kind]
    every = variant.layers is None
    if variant.kind == "derivative_of_a":
        layer = depth - 1 if every else min(variant.layers or {depth - 1})
    else:
        layer = depth if every else max(variant.layers or {depth})
    text = template.format(l=layer, h=layer, lm1=layer - 1, every=" (at every layer)" if every else "")
    found = [Diagnosis(key, layer, _variant_formula(variant.kind, layer), text, confidence, losses)]
    if variant.bias is not None:
        found += _variant_diagnoses(Variant(variant.bias, None), depth, losses, confidence)
    return found


def _prediction(variant: Variant, case: Case) -> Params | None:
    """What ``variant`` returns on ``case``; None when it would raise there."""
    params, X, Y = case.arrays()
    try:
        return predict(variant, case.spec, params, X, Y)
    except WouldRaise:
        return None


def _structural_diagnoses(runs: Sequence[_Run], loss: str, depth: int) -> list[Diagnosis]:
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
                consistent = _blocks_close(run.blocks, predicted, MODEL_RTOL)
                distinguishing += not _blocks_close(predicted, run.reference, RIGHT_RTOL)
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
        for diagnosis in _variant_diagnoses(variant, depth, (loss,), confidence / len(specific) ** 0.5):
            found.setdefault((diagnosis.key, diagnosis.layer), diagnosis)
    return list(found.values())


# --- 4. per block -----------------------------------------------------------------------------------------


def _block_diagnosis(name: str, runs: Sequence[_Run], loss: str) -> Diagnosis | None:
    pairs = [
        (run, run.blocks[name], run.reference[name])
        for run in runs
        if run.valid and run.blocks is not None and name in run.blocks and name in run.reference
    ]
    wrong = [(run, s, r) for run, s, r in pairs if s.shape == r.shape and not _close(s, r, RIGHT_RTOL)]
    if not wrong:
        return None
    layer = int(name[1:])
    formula = _formula_block(name)
    what = f"∂L/∂{name[0]}^[{layer}]"
    factors = [_fit_factor(s, r) for _, s, r in wrong]
    if all(c is not None for c in factors):
        values = [float(c) for c in factors if c is not None]
        if all(_same(c, -1.0) for c in values):
            return Diagnosis("sign", layer, formula, f"{what} has the wrong sign.", 0.9, (loss,))
        if all(_same(c, float(run.m)) for c, (run, _, _) in zip(values, wrong, strict=True)):
            message = f"{what} is m times too large: the batch mean's 1/m is missing on this layer only."
            return Diagnosis("batch_normalisation", layer, formula, message, 0.9, (loss,))
        if all(_same(c, 1.0 / run.m) for c, (run, _, _) in zip(values, wrong, strict=True)):
            message = f"{what} is divided by m a second time (δ^[L] already carries the 1/m)."
            return Diagnosis("batch_normalisation", layer, formula, message, 0.9, (loss,))
        if all(_same(c, values[0]) for c in values):
            message = f"{what} is {values[0]:.10g} times the right value, a stray constant factor."
            return Diagnosis("scale", layer, formula, message, 0.9, (loss,))
    if name.startswith("W"):
        decay = [_fit_factor(s - r, run.params[name]) for run, s, r in wrong]
        if all(c is not None for c in decay) and all(_same(float(c or 0.0), float(decay[0] or 0.0)) for c in decay):
            message = (
                f"{what} contains an extra {float(decay[0] or 0.0):.6g}·W^[{layer}]: an L2 penalty (weight decay) "
                "that the loss does not have."
            )
            return Diagnosis("regularisation", layer, formula, message, 0.9, (loss,))
    single = _single_entry_factor(wrong)
    if single is not None:
        message = f"One entry of {what} is {single:.12g} times its right value; every other entry is right."
        return Diagnosis("scale", layer, formula, message, 0.85, (loss,))
    flipped = all(
        np.all(np.abs(s + r)[~np.isclose(s, r, rtol=RIGHT_RTOL, atol=0)] <= RIGHT_RTOL * _scale(r) + 1e-300)
        for _, s, r in wrong
    )
    if flipped:
        entries = sorted({tuple(int(i) for i in idx) for _, s, r in wrong for idx in np.argwhere(~np.isclose(s, r))})
        message = f"{what} has the sign of entr{'y' if len(entries) == 1 else 'ies'} {entries[:4]} flipped."
        return Diagnosis("sign", layer, formula, message, 0.85, (loss,))
    if all(float(np.max(np.abs(s - r))) <= FLOAT32_RTOL * _scale(r) for _, s, r in wrong):
        representable = all(np.array_equal(s.astype(np.float32).astype(np.float64), s) for _, s, _ in wrong)
        message = f"{what} is right to about 1e-7 but wrong at 1e-12: it is computed in float32" + (
            " (every entry is exactly a float32 number)." if representable else "."
        )
        return Diagnosis("float32", layer, formula + "  (in float64)", message, 0.9 if representable else 0.6, (loss,))
    message = f"{what} disagrees with the right value and no known defect explains the pattern."
    return Diagnosis("mismatch", layer, formula, message, 0.3, (loss,))


def _single_entry_factor(wrong: Sequence[tuple[_Run, Array, Array]]) -> float | None:
    """The factor when exactly one entry per run is off, by the same factor everywhere."""
    factors: list[float] = []
    for _, s, r in wrong:
        off = ~np.isclose(s, r, rtol=RIGHT_RTOL, atol=0.0)
        if int(off.sum()) != 1 or not np.all(r[off] != 0):
            return None
        factors.append(float((s[off] / r[off])[0]))
    if factors and all(_same(c, factors[0]) for c in factors) and not _same(factors[0], -1.0):
        return factors[0]
    return None


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


def _nonsquare(spec: Spec) -> bool:
    return any(a != b for a, b in itertools.pairwise(spec.widths))


def _shape_diagnosis(runs: Sequence[_Run], loss: str) -> Diagnosis | None:
    """A block of the right size in the wrong shape: a bias without keepdims, or a transposed ∂L/∂W."""
    for run in runs:
        if run.blocks is None or run.failure is None or run.failure.category != "shape":
            continue
        for name, value in run.blocks.items():
            expected = run.reference.get(name)
            if expected is None or value.shape == expected.shape or value.size != expected.size:
                continue
            layer = int(name[1:])
            if name.startswith("b"):
                message = (
                    f"∂L/∂b^[{layer}] has shape {value.shape}, not {expected.shape}: the batch sum dropped its "
                    "kept dimension (keepdims)."
                )
                return Diagnosis("protocol:shape", layer, _formula_b(layer), message, 0.9, (loss,))
            if value.shape == expected.T.shape and _close(value, expected.T, MODEL_RTOL):
                message = f"∂L/∂W^[{layer}] is returned transposed, shape {value.shape} instead of {expected.shape}."
                return Diagnosis("transpose", layer, _formula_W(layer), message, 0.9, (loss,))
    return None


def _unexplained_failures(runs: Sequence[_Run], loss: str) -> list[Diagnosis]:
    shaped = _shape_diagnosis(runs, loss)
    if shaped is not None:
        return [shaped]
    raised = [r for r in runs if r.failure is not None and r.failure.category == "exception"]
    answered = [r for r in runs if r not in raised]
    if (
        raised
        and all(_nonsquare(r.case.spec) for r in raised)
        and any(not _nonsquare(r.case.spec) for r in answered)
        and all(_is_right(r) for r in answered)
    ):
        message = (
            "Right whenever consecutive layers have equal widths, and fails on every non-square net "
            f"({raised[0].failure.message if raised[0].failure else ''}): a weight or gradient buffer is used "
            "transposed somewhere."
        )
        return [Diagnosis("transpose", None, _formula_recursion("l"), message, 0.75, (loss,))]
    seen: dict[str, ProtocolFailure] = {}
    for run in runs:
        if run.failure is not None and run.failure.category in ("exception", "shape"):
            seen.setdefault(run.failure.category, run.failure)
    return [
        Diagnosis(
            f"protocol:{category}",
            None,
            "gradients(spec, params, X, Y) -> {name: array shaped like params[name]}",
            f"On some cases the subject fails: {failure.message}.",
            0.7,
            (loss,),
        )
        for category, failure in seen.items()
    ]


def _kink_diagnosis(runs: Sequence[_Run], loss: str) -> Diagnosis | None:
    kinked = [r for r in runs if r.case.kinks and r.case.problem.kink_sites]
    plain = [r for r in runs if r not in kinked]
    if not kinked or all(_is_right(r) for r in kinked):
        return None
    if not plain or not all(_is_right(r) for r in plain):
        return None
    names = sorted({a for r in kinked if not _is_right(r) for a in r.case.spec.activations if a in KINKED_ACTIVATIONS})
    message = (
        f"Right everywhere except where a {'/'.join(names)} pre-activation is exactly 0: another value of g'(0), "
        "a convention at a non-differentiable point, not a bug (the suite uses relu'(0) = 0, leaky_relu'(0) = 0.01)."
    )
    return Diagnosis("kink", None, "g'(0) by convention: relu'(0) = 0, leaky_relu'(0) = 0.01", message, 0.9, (loss,))


def _batch_diagnosis(runs: Sequence[_Run], loss: str) -> Diagnosis | None:
    single = [r for r in runs if r.m == 1]
    wrong = [r for r in runs if not _is_right(r)]
    if not single or not wrong or not all(_is_right(r) for r in single) or any(r.m == 1 for r in wrong):
        return None
    message = (
        "Right for a single example, wrong for every batch with m > 1: the batch dimension is mishandled "
        "(examples dropped, averaged before the outer product, or mixed)."
    )
    formula = "∂L/∂W^[l] = Σ_i δ^[l]_(:,i) (a^[l-1]_(:,i))ᵀ, a sum over every example"
    return Diagnosis("batch", None, formula, message, 0.8, (loss,))


def _isolated_activation(runs: Sequence[_Run], loss: str) -> Diagnosis | None:
    """An activation present in every wrong run and in no right one: its derivative is wrong."""
    answered = [r for r in runs if r.valid]
    wrong = [set(r.case.spec.activations) for r in answered if not _is_right(r)]
    right = [set(r.case.spec.activations) for r in answered if _is_right(r)]
    if not wrong or not right:
        return None
    suspects = set.intersection(*wrong).difference(*right)
    if len(suspects) != 1:
        return None
    name = suspects.pop()
    key = "leaky_slope" if name == "leaky_relu" else "activation_derivative"
    message = (
        f"Every wrong case has a {name} layer and every case without one is right: the derivative of {name} "
        "is wrong" + (" (the slope for z < 0 should be 0.01)." if name == "leaky_relu" else ".")
    )
    formula = f"δ^[l] = (W^[l+1])ᵀ δ^[l+1] ⊙ {name}'(z^[l])"
    return Diagnosis(key, None, formula, message, 0.85, (loss,))


# --- the driver -------------------------------------------------------------------------------------------


def _diagnose_loss(loss: str, runs: Sequence[_Run], depth: int) -> list[Diagnosis]:
    if all(_is_right(run) for run in runs):
        return []
    kink = _kink_diagnosis(runs, loss)
    if kink is not None:
        return [kink]
    if all(run.valid for run in runs):
        factors = _global_factors(runs)
        if factors is not None:
            found = _convention_diagnosis(loss, factors)
            if found is not None:
                return [found]
    structural = _structural_diagnoses(runs, loss, depth)
    if structural:
        return structural
    names = sorted({n for run in runs for n in run.reference}, key=lambda n: (-int(n[1:]), n))
    blockwise = _merge_layer_blocks([d for d in (_block_diagnosis(n, runs, loss) for n in names) if d is not None])
    if any(d.key == "mismatch" for d in blockwise):
        for rule in (_isolated_activation, _batch_diagnosis):
            found_rule = rule(runs, loss)
            if found_rule is not None:
                return [found_rule]
    return blockwise + _unexplained_failures(runs, loss)


def _global_batch_factor(runs: Sequence[_Run]) -> Diagnosis | None:
    """Every gradient of every loss m times (or 1/m times) the right one: a batch normalisation slip."""
    if not runs or not all(run.valid for run in runs):
        return None
    factors = _global_factors(runs)
    if factors is None or all(_same(c, 1.0) for _, c in factors):
        return None
    losses = tuple(sorted({run.case.spec.loss for run in runs}))
    formula = "L = (1/m) Σ_i ℓ(y_i, ŷ_i), so every ∂L/∂θ carries the batch mean's 1/m exactly once"
    if all(_same(c, float(run.m)) for run, c in factors):
        message = "Every gradient is exactly m times the right one: the 1/m of the batch mean is missing."
        return Diagnosis("batch_normalisation", None, formula, message, 0.95, losses)
    if all(_same(c, 1.0 / run.m) for run, c in factors):
        message = "Every gradient is divided by m a second time: δ^[L] already carries the batch mean's 1/m."
        return Diagnosis("batch_normalisation", None, formula, message, 0.95, losses)
    return None


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
    runs: list[_Run] = []
    for case in [*probe_cases(family, rng), *given]:
        run = _run(subject, case, timeout)
        runs.append(run)
        if run.failure is not None and run.failure.category in ("timeout", "crash"):
            break  # every further probe would wait as long again, or restart a worker to die again
    found = _protocol_diagnoses(runs)
    if any(d.key in ("state", "protocol:nondeterminism") for d in found):
        return found
    usable = [r for r in runs if r.failure is None or r.failure.category not in HARD_CATEGORIES or r.valid]
    losses = {run.case.spec.loss for run in usable}
    batch_factor = _global_batch_factor(usable) if len(losses) > 1 else None
    if batch_factor is not None:
        return [*found, batch_factor]
    by_loss: dict[str, list[_Run]] = {}
    for run in usable:
        by_loss.setdefault(run.case.spec.loss, []).append(run)
    depth = max((run.case.spec.depth for run in usable), default=1)
    per_loss = [d for loss, group in by_loss.items() for d in _diagnose_loss(loss, group, depth)]
    found += _merge_losses(per_loss)
    return sorted(found, key=lambda d: (-d.confidence, -(d.layer or 0)))
