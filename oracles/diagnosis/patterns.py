"""Per-block and pattern diagnoses, tried when no whole-gradient model fits: each parameter block's
factor (scale, sign, 1/m on one layer), weight decay, flipped entries or float32 noise; a block in the
wrong shape; and patterns across probes (kinks only, batches only, one activation's derivative)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from oracles.diagnosis.evidence import MODEL_RTOL, RIGHT_RTOL, Run, close, fit_factor, is_right, same, scale_of
from oracles.diagnosis.wording import Diagnosis, formula_b, formula_block, formula_recursion, formula_W
from oracles.subjects import ProtocolFailure
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Spec

FLOAT32_RTOL = 1e-5  # float32 arithmetic: wrong at 1e-12, right to ~1e-7 of the block


def block_diagnosis(name: str, runs: Sequence[Run], loss: str) -> Diagnosis | None:
    pairs = [
        (run, run.blocks[name], run.reference[name])
        for run in runs
        if run.valid and run.blocks is not None and name in run.blocks and name in run.reference
    ]
    wrong = [(run, s, r) for run, s, r in pairs if s.shape == r.shape and not close(s, r, RIGHT_RTOL)]
    if not wrong:
        return None
    layer = int(name[1:])
    formula = formula_block(name)
    what = f"∂L/∂{name[0]}^[{layer}]"
    factors = [fit_factor(s, r) for _, s, r in wrong]
    if all(c is not None for c in factors):
        values = [float(c) for c in factors if c is not None]
        if all(same(c, -1.0) for c in values):
            return Diagnosis("sign", layer, formula, f"{what} has the wrong sign.", 0.9, (loss,))
        if all(same(c, float(run.m)) for c, (run, _, _) in zip(values, wrong, strict=True)):
            message = f"{what} is m times too large: the batch mean's 1/m is missing on this layer only."
            return Diagnosis("batch_normalisation", layer, formula, message, 0.9, (loss,))
        if all(same(c, 1.0 / run.m) for c, (run, _, _) in zip(values, wrong, strict=True)):
            message = f"{what} is divided by m a second time (δ^[L] already carries the 1/m)."
            return Diagnosis("batch_normalisation", layer, formula, message, 0.9, (loss,))
        if all(same(c, values[0]) for c in values):
            message = f"{what} is {values[0]:.10g} times the right value, a stray constant factor."
            return Diagnosis("scale", layer, formula, message, 0.9, (loss,))
    if name.startswith("W"):
        decay = [fit_factor(s - r, run.params[name]) for run, s, r in wrong]
        if all(c is not None for c in decay) and all(same(float(c or 0.0), float(decay[0] or 0.0)) for c in decay):
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
        np.all(np.abs(s + r)[~np.isclose(s, r, rtol=RIGHT_RTOL, atol=0)] <= RIGHT_RTOL * scale_of(r) + 1e-300)
        for _, s, r in wrong
    )
    if flipped:
        entries = sorted({tuple(int(i) for i in idx) for _, s, r in wrong for idx in np.argwhere(~np.isclose(s, r))})
        message = f"{what} has the sign of entr{'y' if len(entries) == 1 else 'ies'} {entries[:4]} flipped."
        return Diagnosis("sign", layer, formula, message, 0.85, (loss,))
    if all(float(np.max(np.abs(s - r))) <= FLOAT32_RTOL * scale_of(r) for _, s, r in wrong):
        representable = all(np.array_equal(s.astype(np.float32).astype(np.float64), s) for _, s, _ in wrong)
        message = f"{what} is right to about 1e-7 but wrong at 1e-12: it is computed in float32" + (
            " (every entry is exactly a float32 number)." if representable else "."
        )
        return Diagnosis("float32", layer, formula + "  (in float64)", message, 0.9 if representable else 0.6, (loss,))
    message = f"{what} disagrees with the right value and no known defect explains the pattern."
    return Diagnosis("mismatch", layer, formula, message, 0.3, (loss,))


def _single_entry_factor(wrong: Sequence[tuple[Run, Array, Array]]) -> float | None:
    """The factor when exactly one entry per run is off, by the same factor everywhere."""
    factors: list[float] = []
    for _, s, r in wrong:
        off = ~np.isclose(s, r, rtol=RIGHT_RTOL, atol=0.0)
        if int(off.sum()) != 1 or not np.all(r[off] != 0):
            return None
        factors.append(float((s[off] / r[off])[0]))
    if factors and all(same(c, factors[0]) for c in factors) and not same(factors[0], -1.0):
        return factors[0]
    return None


def _nonsquare(spec: Spec) -> bool:
    return any(a != b for a, b in itertools.pairwise(spec.widths))


def _shape_diagnosis(runs: Sequence[Run], loss: str) -> Diagnosis | None:
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
                return Diagnosis("protocol:shape", layer, formula_b(layer), message, 0.9, (loss,))
            if value.shape == expected.T.shape and close(value, expected.T, MODEL_RTOL):
                message = f"∂L/∂W^[{layer}] is returned transposed, shape {value.shape} instead of {expected.shape}."
                return Diagnosis("transpose", layer, formula_W(layer), message, 0.9, (loss,))
    return None


def unexplained_failures(runs: Sequence[Run], loss: str) -> list[Diagnosis]:
    shaped = _shape_diagnosis(runs, loss)
    if shaped is not None:
        return [shaped]
    raised = [r for r in runs if r.failure is not None and r.failure.category == "exception"]
    answered = [r for r in runs if r not in raised]
    if (
        raised
        and all(_nonsquare(r.case.spec) for r in raised)
        and any(not _nonsquare(r.case.spec) for r in answered)
        and all(is_right(r) for r in answered)
    ):
        message = (
            "Right whenever consecutive layers have equal widths, and fails on every non-square net "
            f"({raised[0].failure.message if raised[0].failure else ''}): a weight or gradient buffer is used "
            "transposed somewhere."
        )
        return [Diagnosis("transpose", None, formula_recursion("l"), message, 0.75, (loss,))]
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


def kink_diagnosis(runs: Sequence[Run], loss: str) -> Diagnosis | None:
    kinked = [r for r in runs if r.case.kinks and r.case.problem.kink_sites]
    plain = [r for r in runs if r not in kinked]
    if not kinked or all(is_right(r) for r in kinked):
        return None
    if not plain or not all(is_right(r) for r in plain):
        return None
    names = sorted({a for r in kinked if not is_right(r) for a in r.case.spec.activations if a in KINKED_ACTIVATIONS})
    message = (
        f"Right everywhere except where a {'/'.join(names)} pre-activation is exactly 0: another value of g'(0), "
        "a convention at a non-differentiable point, not a bug (the suite uses relu'(0) = 0, leaky_relu'(0) = 0.01)."
    )
    return Diagnosis("kink", None, "g'(0) by convention: relu'(0) = 0, leaky_relu'(0) = 0.01", message, 0.9, (loss,))


def batch_diagnosis(runs: Sequence[Run], loss: str) -> Diagnosis | None:
    single = [r for r in runs if r.m == 1]
    wrong = [r for r in runs if not is_right(r)]
    if not single or not wrong or not all(is_right(r) for r in single) or any(r.m == 1 for r in wrong):
        return None
    message = (
        "Right for a single example, wrong for every batch with m > 1: the batch dimension is mishandled "
        "(examples dropped, averaged before the outer product, or mixed)."
    )
    formula = "∂L/∂W^[l] = Σ_i δ^[l]_(:,i) (a^[l-1]_(:,i))ᵀ, a sum over every example"
    return Diagnosis("batch", None, formula, message, 0.8, (loss,))


def isolated_activation(runs: Sequence[Run], loss: str) -> Diagnosis | None:
    """An activation present in every wrong run and in no right one: its derivative is wrong."""
    answered = [r for r in runs if r.valid]
    wrong = [set(r.case.spec.activations) for r in answered if not is_right(r)]
    right = [set(r.case.spec.activations) for r in answered if is_right(r)]
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
