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
    """Wrong-shaped blocks that are right once reshaped: a bias without keepdims, a transposed ∂L/∂W."""
    found: list[tuple[Run, Diagnosis]] = []
    seen: set[tuple[str, int]] = set()
    for run in runs:
        if not run.shaped or run.blocks is None:
            continue
        for name, value in run.blocks.items():
            expected = run.reference.get(name)
            if expected is None or value.shape == expected.shape or value.size != expected.size:
                continue
            layer = int(name[1:])
            if name.startswith("b") and close(value.reshape(expected.shape), expected, MODEL_RTOL):
                key = ("keepdims", layer)
                message = (
                    f"∂L/∂b^[{layer}] has shape {value.shape}, not {expected.shape}: the batch sum dropped its "
                    "kept dimension (keepdims)."
                )
                diagnosis = Diagnosis("protocol:shape", layer, formula_b(layer), message, 0.9, (run.case.spec.loss,))
            elif value.shape == expected.T.shape and close(value, expected.T, MODEL_RTOL):
                key = ("transposed", layer)
                message = f"∂L/∂W^[{layer}] is returned transposed, shape {value.shape} instead of {expected.shape}."
                diagnosis = Diagnosis("transpose", layer, formula_W(layer), message, 0.9, (run.case.spec.loss,))
            else:
                continue
            if key not in seen:
                seen.add(key)
                found.append((run, diagnosis))
    return found
