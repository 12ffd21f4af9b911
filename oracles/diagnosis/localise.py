"""Where an unexplained defect is: which blocks are wrong, where δ first goes wrong, what failures depend on.

Without naming a defect the subject's own blocks still say a lot.  ∂L/∂W^[l] = δ^[l] (a^[l-1])ᵀ and
∂L/∂b^[l] = δ^[l] 1 determine the δ^[l] the subject used whenever [a^[l-1]ᵀ 1] has rank m (m examples,
at most n_{l-1} + 1 of them); :func:`trace_run` recovers it layer by layer from the output down and
checks each against the right δ^[L] or against the recursion applied to the subject's own δ^[l+1].  The
first disagreement is where the error enters: the output's δ^[L] (reported once — the layers below only
inherit it), the recursion into a hidden layer, or a block formula that no δ satisfies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from oracles.diagnosis.evidence import LossEvidence, Run, agrees, is_right
from oracles.diagnosis.features import Condition, common, separate
from oracles.diagnosis.wording import Diagnosis, formula_b, formula_recursion, formula_W
from reference_impl.activations import get_activation
from reference_impl.spec import Array

TRACE_RTOL = 1e-8  # a recovered δ is "the same" as the one expected (solving adds a little rounding)


@dataclass(frozen=True)
class Entry:
    """Where the error enters on one run: ``kind`` is output, recursion or formula, at ``layer``."""

    kind: str
    layer: int

    def text(self, depth: int) -> str:
        if self.kind == "output":
            return f"δ^[{self.layer}] at the output is wrong, and every layer below follows from it correctly"
        if self.kind == "recursion":
            return (
                f"δ^[{self.layer}] does not follow from the subject's own δ^[{self.layer + 1}]: the recursion into "
                f"layer {self.layer} is wrong"
            )
        return (
            f"∂L/∂W^[{self.layer}] and ∂L/∂b^[{self.layer}] are not δ (a^[{self.layer - 1}])ᵀ and Σ_i δ_i for any δ: "
            f"the block formula of layer {self.layer} is wrong"
        )

    def formula(self) -> str:
        if self.kind == "output":
            return "δ^[L] = ∂L/∂a^[L] ⊙ g'(z^[L])"
        if self.kind == "recursion":
            return formula_recursion(self.layer + 1)
        return f"{formula_W(self.layer)}; {formula_b(self.layer)}"


def _implied(run: Run, layer: int) -> tuple[Array | None, bool]:
    """(δ^[layer] the subject used, or None if not determined; whether any δ reproduces W and b)."""
    assert run.blocks is not None
    W, b = run.blocks[f"W{layer}"], run.blocks[f"b{layer}"]
    a_prev = run.tape.a(layer - 1)
    m = run.m
    S = np.hstack([W, b])
    B = np.hstack([a_prev.T, np.ones((m, 1))])  # (m, n_{l-1} + 1)
    delta = S @ np.linalg.pinv(B)
    scale = max(float(np.max(np.abs(S))), 1e-300)
    consistent = float(np.max(np.abs(delta @ B - S))) <= 1e-8 * scale
    determined = consistent and int(np.linalg.matrix_rank(B)) == m
    return (delta if determined else None), consistent


def _same(a: Array, b: Array) -> bool:
    return agrees(a, b, TRACE_RTOL)


def trace_run(run: Run) -> Entry | None:
    """Where the error first enters on ``run`` (None: nothing wrong, or it cannot be traced)."""
    if run.blocks is None or is_right(run):
        return None
    spec, params, tape = run.case.spec, run.case.params, run.tape
    expected = run.trace.delta(spec.depth)
    for layer in range(spec.depth, 0, -1):
        delta, consistent = _implied(run, layer)
        if not consistent:
            return Entry("formula", layer)
        if delta is None:
            if not (run.right[f"W{layer}"] and run.right[f"b{layer}"]):
                return None  # wrong here, and this layer's δ is not determined: cannot say where it entered
            delta = run.trace.delta(layer)  # right blocks: take the right δ as the one used
        if not _same(delta, expected):
            return Entry("output" if layer == spec.depth else "recursion", layer)
        if layer > 1:
            carried = params[f"W{layer}"].T @ delta
            act = get_activation(spec.activations[layer - 2])
            expected = act.vjp(tape.z(layer - 1), tape.a(layer - 1), carried)
    return None


def _wrong_blocks(runs: Sequence[Run]) -> str:
    counts: Counter[str] = Counter()
    for run in runs:
        counts.update(name for name, ok in run.right.items() if not ok)
    names = sorted(counts, key=lambda n: (-int(n[1:]), n))
    return ", ".join(f"{n} ({counts[n]})" for n in names)


def conditions_text(wrong: Sequence[Run], right: Sequence[Run]) -> str:
    """ "wrong exactly when …" (or a weaker "every wrong case has …") from the runs' features."""
    exact = separate([r.features for r in wrong], [r.features for r in right])
    if exact:
        return "Wrong exactly when " + "; equally, when ".join(c.text() for c in exact) + "."
    hints: list[Condition] = common([r.features for r in wrong], [r.features for r in right])
    if hints and right:
        return "Every wrong case has " + ", ".join(c.text() for c in hints) + " (but so do some right ones)."
    return "Wrong on every probe." if not right else "No case feature separates wrong from right cases."


def unexplained(evidence: LossEvidence) -> Diagnosis | None:
    """An honest "unexplained" that still says which blocks, where δ first goes wrong, and on which cases."""
    wrong = evidence.wrong
    if not wrong:
        return None
    right = [r for r in evidence.valid if is_right(r)]
    depth = max(r.case.spec.depth for r in evidence.valid)
    entries = [entry for entry in (trace_run(r) for r in wrong) if entry is not None]
    counts = Counter(entries)
    parts = [
        f"No known defect reproduces every probe; wrong on {len(wrong)} of {len(evidence.valid)} fault-free probes.",
        f"Wrong blocks (probes): {_wrong_blocks(wrong)}.",
    ]
    layer: int | None = None
    formula = ""
    if counts:
        entry, seen = counts.most_common(1)[0]
        layer = entry.layer
        formula = entry.formula()
        share = (
            "on every probe where it can be traced"
            if seen == len(entries)
            else f"on {seen} of {len(entries)} traced probes"
        )
        parts.append(f"Where it enters: {entry.text(depth)} ({share}).")
    parts.append(conditions_text(wrong, right))
    where = ""
    if counts:
        entry = counts.most_common(1)[0][0]
        where = "output layer" if entry.kind == "output" else ""
        suspect = _suspect_activation(wrong, right, entry)
        if suspect:
            parts.append(
                f"It enters where {suspect}'(z) is applied and only nets with a {suspect} layer are wrong: the "
                f"derivative of {suspect} is the first place to look."
            )
    return Diagnosis(
        "unexplained", layer, formula, " ".join(parts), 0.5, (evidence.loss,), kind="unexplained", where=where
    )


def _suspect_activation(wrong: Sequence[Run], right: Sequence[Run], entry: Entry) -> str | None:
    """An activation whose presence separates wrong from right runs, used at the layer where δ goes wrong."""
    if entry.kind == "formula":
        return None
    exact = separate([r.features for r in wrong], [r.features for r in right])
    for condition in exact:
        if condition.other is None and condition.feature.startswith("has ") and condition.value is True:
            name = condition.feature[4:]
            if all(name == r.case.spec.activations[entry.layer - 1] for r in wrong if trace_run(r) == entry):
                return name
    return None
