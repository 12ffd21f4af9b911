"""Two patterns read off whole runs rather than fitted: a wrong value only at exact kinks (another g'(0),
a convention), and a block of the right size in the wrong shape (a bias without keepdims, a transposed
∂L/∂W)."""

from __future__ import annotations

from collections.abc import Sequence

from oracles.diagnosis.evidence import MODEL_RTOL, Explanation, LossEvidence, Run, close, is_right
from oracles.diagnosis.wording import Diagnosis, formula_b, formula_W
from reference_impl.spec import KINKED_ACTIVATIONS


def kink_explanation(evidence: LossEvidence) -> Explanation | None:
    """Right on every fault-free run except where a relu/leaky_relu pre-activation is exactly 0."""
    runs = evidence.valid
    kinked = [r for r in runs if r.case.kinks and r.case.problem.kink_sites]
    plain = [r for r in runs if r not in kinked]
    wrong = [r for r in kinked if not is_right(r)]
    if not wrong or evidence.shaped or not plain or not all(is_right(r) for r in plain):
        return None
    names = sorted({a for r in wrong for a in r.case.spec.activations if a in KINKED_ACTIVATIONS})
    message = (
        f"Right everywhere except where a {'/'.join(names)} pre-activation is exactly 0: another value of g'(0), "
        "a convention at a non-differentiable point, not a bug (the suite uses relu'(0) = 0, leaky_relu'(0) = 0.01)."
    )
    formula = "g'(0) by convention: relu'(0) = 0, leaky_relu'(0) = 0.01"
    found = Diagnosis("kink", None, formula, message, 0.9, (evidence.loss,), kind="kink")
    return Explanation([found], differing=len(wrong))


def shape_interpretations(runs: Sequence[Run]) -> list[tuple[Run, Diagnosis]]:
    """Wrong-shaped blocks that are right once reshaped: a bias without keepdims, a transposed ∂L/∂W.

    One finding per kind, listing its layers and losses (the first run showing it comes with it).
    """
    seen: dict[str, tuple[Run, set[int], set[str], str]] = {}
    for run in runs:
        if not run.shaped or run.blocks is None:
            continue
        for name, value in run.blocks.items():
            expected = run.reference.get(name)
            if expected is None or value.shape == expected.shape or value.size != expected.size:
                continue
            if name.startswith("b") and close(value.reshape(expected.shape), expected, MODEL_RTOL):
                kind = "keepdims"
            elif value.shape == expected.T.shape and close(value, expected.T, MODEL_RTOL):
                kind = "transposed"
            else:
                continue
            first, layers, losses, example = seen.get(kind, (run, set(), set(), f"{name} {value.shape}"))
            layers.add(int(name[1:]))
            losses.add(run.case.spec.loss)
            seen[kind] = (first, layers, losses, example)
    found: list[tuple[Run, Diagnosis]] = []
    for kind, (run, layers, losses, example) in seen.items():
        layer = min(layers) if len(layers) == 1 else None
        where = f"layer {layer}" if layer is not None else f"layers {', '.join(map(str, sorted(layers)))}"
        ordered = tuple(sorted(losses))
        if kind == "keepdims":
            message = (
                f"∂L/∂b^[l] comes back flat, shape (n_l,) instead of (n_l, 1) ({where}; e.g. {example}): the batch "
                "sum dropped its kept dimension (keepdims)."
            )
            found.append((run, Diagnosis("protocol:shape", layer, formula_b("l"), message, 0.9, ordered)))
        else:
            message = f"∂L/∂W^[l] is returned transposed, shape (n_(l-1), n_l) ({where}; e.g. {example})."
            found.append((run, Diagnosis("transpose", layer, formula_W("l"), message, 0.9, ordered)))
    return found
