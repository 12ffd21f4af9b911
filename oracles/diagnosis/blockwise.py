"""Per-block models: each wrong parameter block explained on its own, on every fault-free run.

A block model predicts one block (``W{l}`` or ``b{l}``) from the reference's intermediates: a constant
(scale, sign, a normalisation 2^k·m^a·n_L^b such as a second 1/m), entries with their sign flipped, one
entry off by a factor, an extra λ·W (weight decay), float32 rounding, all zeros (never computed), or the
examples of the batch combined wrongly (only the first one; δ summed and a averaged before the outer
product).  :func:`blockwise_explanation` succeeds only when every block that is wrong anywhere has a model
that reproduces it everywhere; findings shared by W and b of a layer, by every layer, or by every block
below some layer (δ^[l] itself scaled) are reported once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from oracles.diagnosis.evidence import (
    MODEL_RTOL,
    RIGHT,
    Explanation,
    LossEvidence,
    Run,
    agrees,
    fit_factor,
    same,
    scale_of,
)
from oracles.diagnosis.models import NORMALISATIONS, constant_text
from oracles.diagnosis.wording import Diagnosis, formula_b, formula_W
from reference_impl.spec import Array

FLOAT32_RTOL = 1e-5  # float32 arithmetic: wrong at 1e-12, right to ~1e-7 of the block

Triple = tuple[Run, str, Array, Array]  # (run, the block's name on that run, subject block, reference block)


@dataclass(frozen=True)
class Finding:
    """One block's model: ``detail`` is layer-free so findings can be merged across layers.

    ``name`` is ``W{l}``/``b{l}`` counted from the input, or ``W{L-k}``-style (``from_output`` = k) when
    the block is the same one counted from the output on nets of different depths.
    """

    name: str
    key: str
    detail: str  # "is m times too large: …"
    confidence: float = 0.9
    from_output: int | None = None

    @property
    def layer(self) -> int:
        return int(self.name[1:])

    @property
    def where(self) -> str:
        if self.from_output is None:
            return str(self.layer)
        return "L" if self.from_output == 0 else f"L-{self.from_output}"

    @property
    def what(self) -> str:
        return f"∂L/∂{self.name[0]}^[{self.where}]"


def _factor(name: str, triples: Sequence[Triple]) -> Finding | None:
    factors: list[tuple[Run, float]] = []
    for run, _, s, r in triples:
        if not np.any(r):
            continue
        c = fit_factor(s, r)
        if c is None:
            return None
        factors.append((run, c))
    if not factors or all(same(c, 1.0) for _, c in factors):
        return None
    values = [c for _, c in factors]
    if all(same(c, -1.0) for c in values):
        return Finding(name, "sign", "has the wrong sign")
    for k, a, b in NORMALISATIONS:
        if all(same(c, k * float(run.m) ** a * float(run.case.spec.widths[-1]) ** b) for run, c in factors):
            if (k, a, b) == (1.0, 1, 0):
                return Finding(
                    name, "batch_normalisation", "is m times too large: the batch mean's 1/m is missing here"
                )
            if (k, a, b) == (1.0, -1, 0):
                return Finding(
                    name, "batch_normalisation", "is divided by m a second time (δ^[L] already carries the 1/m)"
                )
            return Finding(name, "normalisation", f"is {constant_text(k, a, b)} times the right value")
    if all(same(c, values[0]) for c in values):
        return Finding(name, "scale", f"is {values[0]:.10g} times the right value, a stray constant factor")
    return None


def _zeros(name: str, triples: Sequence[Triple]) -> Finding | None:
    if all(not np.any(s) for _, _, s, _ in triples) and any(np.any(r) for _, _, _, r in triples):
        return Finding(name, "never_computed", "is all zeros: it is never computed (or computed and then not stored)")
    return None


def _flipped(name: str, triples: Sequence[Triple]) -> Finding | None:
    """The same entries, and only they, have the wrong sign on every run."""
    entries: set[tuple[int, ...]] | None = None
    for _, _, s, r in triples:
        off = ~np.isclose(s, r, rtol=RIGHT.rtol, atol=0.0)
        if not np.all(np.abs(s + r)[off] <= RIGHT.rtol * scale_of(r) + 1e-300):
            return None
        here = {tuple(int(i) for i in idx) for idx in np.argwhere(off)}
        nonzero = {tuple(int(i) for i in idx) for idx in np.argwhere(r != 0)}
        if entries is None and here:
            entries = here
        elif entries is not None and (here != entries & nonzero):
            return None
    if not entries:
        return None
    shown = sorted(entries)[:4]
    return Finding(name, "sign", f"has the sign of entr{'y' if len(entries) == 1 else 'ies'} {shown} flipped", 0.85)


def _single_entry(name: str, triples: Sequence[Triple]) -> Finding | None:
    """Exactly one entry per run is off, by the same factor everywhere."""
    factors: list[float] = []
    for _, _, s, r in triples:
        off = ~np.isclose(s, r, rtol=RIGHT.rtol, atol=0.0)
        if int(off.sum()) == 0:
            continue
        if int(off.sum()) != 1 or not np.all(r[off] != 0):
            return None
        factors.append(float((s[off] / r[off])[0]))
    if factors and all(same(c, factors[0]) for c in factors) and not same(factors[0], -1.0):
        return Finding(
            name, "scale", f"has one entry {factors[0]:.12g} times its right value; every other is right", 0.85
        )
    return None


def _decay(name: str, triples: Sequence[Triple]) -> Finding | None:
    if not name.startswith("W"):
        return None
    decay = [fit_factor(s - r, run.params[here]) for run, here, s, r in triples]
    if any(c is None for c in decay) or not all(same(float(c or 0.0), float(decay[0] or 0.0)) for c in decay):
        return None
    layer = int(name[1:])
    return Finding(
        name,
        "regularisation",
        f"contains an extra {float(decay[0] or 0.0):.6g}·W^[{layer}]: an L2 penalty (weight decay) the loss "
        "does not have",
    )


def _float32(name: str, triples: Sequence[Triple]) -> Finding | None:
    if not all(float(np.max(np.abs(s - r))) <= FLOAT32_RTOL * scale_of(r) for _, _, s, r in triples):
        return None
    representable = all(np.array_equal(s.astype(np.float32).astype(np.float64), s) for _, _, s, _ in triples)
    if not representable:
        return None
    return Finding(name, "float32", "is right to about 1e-7 but wrong at 1e-12: it is computed in float32")


def _batch_matrices(m: int) -> list[tuple[str, Array, str]]:
    """Ways to combine the examples wrongly: (label, M with ∂L/∂W = δ M aᵀ, words)."""
    first = np.zeros((m, m))
    first[0, 0] = 1.0
    ones = np.ones((m, m))
    return [
        ("first", first, "uses only the first example of the batch: δ_(:,1) (a_(:,1))ᵀ, the other m − 1 dropped"),
        ("first·m", m * first, "uses only the first example of the batch, weighted m (the loss re-averaged over one)"),
        (
            "mean-outer",
            ones / m,
            "sums δ and averages a over the batch before one outer product: (Σ_i δ_i)(mean_j a_j)ᵀ",
        ),
        ("sum-outer", ones, "sums δ and a over the batch before one outer product: (Σ_i δ_i)(Σ_j a_j)ᵀ"),
    ]


def _batch(name: str, triples: Sequence[Triple]) -> Finding | None:
    """The examples of the batch combined by one wrong rule on every run (∂L/∂W = δ M aᵀ, ∂L/∂b = δ M 1)."""
    if all(run.m == 1 for run, _, _, _ in triples):
        return None
    labels = [label for label, _, _ in _batch_matrices(2)]
    for index, label in enumerate(labels):
        words = ""
        for run, here, s, _ in triples:
            at = int(here[1:])
            delta, a_prev = run.trace.delta(at), run.tape.a(at - 1)
            _, M, words_here = _batch_matrices(run.m)[index]
            predicted = delta @ M @ a_prev.T if name.startswith("W") else delta @ M @ np.ones((run.m, 1))
            if not agrees(s, predicted, MODEL_RTOL, run.magnitudes.get(here)):
                break
            words = words or words_here
        else:
            if name.startswith("b"):
                words = (
                    words.replace("δ_(:,1) (a_(:,1))ᵀ", "δ_(:,1)")
                    .replace(" and averages a", "")
                    .replace("(Σ_i δ_i)(mean_j a_j)ᵀ", "Σ_i δ_i")
                )
            return Finding(name, "batch", words, 0.85) if label != "mean-outer" or name.startswith("W") else None
    return None


BLOCK_MODELS: tuple[Callable[[str, Sequence[Triple]], Finding | None], ...] = (
    _zeros,
    _factor,
    _flipped,
    _single_entry,
    _decay,
    _batch,
    _float32,
)


def block_finding(name: str, triples: Sequence[Triple]) -> Finding | None:
    """The first block model that reproduces the block on every run (None: none does)."""
    if not triples or any(s.shape != r.shape for _, _, s, r in triples):
        return None
    for model in BLOCK_MODELS:
        found = model(name, triples)
        if found is not None:
            return found
    return None


def _formula(finding: Finding) -> str:
    where: int | str = finding.layer if finding.from_output is None else finding.where
    return formula_W(where) if finding.name.startswith("W") else formula_b(where)


def _groups(runs: Sequence[Run], from_output: bool) -> dict[tuple[str, int], list[tuple[Run, str]]]:
    """Each block of each run under its (kind, index): layer from the input, or distance from the output."""
    groups: dict[tuple[str, int], list[tuple[Run, str]]] = {}
    for run in runs:
        depth = run.case.spec.depth
        for name in run.reference:
            layer = int(name[1:])
            groups.setdefault((name[0], depth - layer if from_output else layer), []).append((run, name))
    return groups


def _findings(runs: Sequence[Run], from_output: bool, depth: int) -> list[Finding] | None:
    findings: list[Finding] = []
    for (kind, index), members in sorted(_groups(runs, from_output).items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if all(run.right[name] for run, name in members):
            continue
        triples = [
            (run, name, run.blocks[name], run.reference[name]) for run, name in members if run.blocks is not None
        ]
        layer = depth - index if from_output else index
        found = block_finding(f"{kind}{layer}", triples)
        if found is None:
            return None
        findings.append(Finding(found.name, found.key, found.detail, found.confidence, index if from_output else None))
    return findings


def _delta_scaled(findings: Sequence[Finding], depth: int, loss: str) -> Diagnosis | None:
    """Every block of layers ≤ l off by one constant and the rest right: δ^[l] itself carries it."""
    if not findings or any(f.key not in ("scale", "sign") for f in findings):
        return None
    details = {f.detail for f in findings}
    layers = {f.layer for f in findings}
    top = max(layers)
    names = {f.name for f in findings}
    expected = {f"{kind}{layer}" for layer in range(1, top + 1) for kind in "Wb"}
    if len(details) != 1 or names != expected or top >= depth or top < 1:
        return None
    detail = details.pop()
    message = f"δ^[{top}] {detail}; every layer below inherits it (W and b of layers 1..{top})."
    formula = f"δ^[{top}] = (W^[{top + 1}])ᵀ δ^[{top + 1}] ⊙ g'(z^[{top}])"
    return Diagnosis(findings[0].key, top, formula, message, 0.85, (loss,))


def _merged(findings: Sequence[Finding], layers: int, loss: str) -> list[Diagnosis]:
    """One diagnosis per (key, detail): per layer (W and b together), or once for every layer."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.key, finding.detail), []).append(finding)
    found: list[Diagnosis] = []
    for (key, detail), group in groups.items():
        kinds = {f.name[0] for f in group}
        at = sorted({f.layer for f in group})
        confidence = min(f.confidence for f in group)
        if len(at) == layers and layers > 1 and all(f.from_output is None for f in group):
            subject = " and ".join(f"∂L/∂{k}^[l]" for k in sorted(kinds, reverse=True))
            formulas = "; ".join((formula_W if k == "W" else formula_b)("l") for k in sorted(kinds, reverse=True))
            found.append(Diagnosis(key, None, formulas, f"{subject} at every layer {detail}.", confidence, (loss,)))
            continue
        for layer in at:
            here = [f for f in group if f.layer == layer]
            subject = " and ".join(f.what for f in sorted(here, key=lambda f: f.name, reverse=True))
            formula = "; ".join(_formula(f) for f in sorted(here, key=lambda f: f.name, reverse=True))
            found.append(Diagnosis(key, layer, formula, f"{subject} {detail}.", confidence, (loss,)))
    return found


def blockwise_explanation(evidence: LossEvidence) -> Explanation | None:
    """Per-block models for every block that is wrong somewhere; None unless all of them have one.

    Blocks are matched by layer number first, then (nets of several depths) by distance from the output.
    """
    if evidence.shaped or not evidence.wrong:
        return None
    runs = evidence.valid
    depth = max(run.case.spec.depth for run in runs)
    for from_output in (False, True):
        findings = _findings(runs, from_output, depth)
        if not findings:
            continue
        scaled = _delta_scaled(findings, depth, evidence.loss) if not from_output else None
        diagnoses = [scaled] if scaled is not None else _merged(findings, depth, evidence.loss)
        return Explanation(diagnoses, differing=len(evidence.wrong))
    return None
