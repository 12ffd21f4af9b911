"""Kink classification for the kill matrix: is a failing comparison only a slope choice at an exact kink?

At a pre-activation exactly on a relu/leaky_relu kink the derivative is a convention: central
differences cannot tell the two sides apart, and the precise oracles (autodiff, exact, complex step)
follow the suite's convention (g'(0) = left slope).  A failing comparison is therefore classified
*kink* when the subject agrees, within the comparing oracle's tolerance, with the reference computed
under *some* admissible choice of slope (left or right) at each site whose pre-activation is exactly
on a kink — i.e. when the mismatch is confined to what those sites decide.  Records the comparer
itself already marks ``kink`` (numeric oracles' brackets) count the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from oracles.verdicts.blocks import compare_block
from oracles.verdicts.records import Record
from oracles.verdicts.tolerances import tolerance_for
from reference_impl.activations import LEAKY_SLOPE, get_activation
from reference_impl.case import Case
from reference_impl.losses import get_loss
from reference_impl.mlp import forward
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params

MAX_KINK_PATTERNS = 64  # per-site slope choices tried exhaustively up to 2^6 sites

KinkVariant = tuple[Params, tuple[Array, ...]]


def kink_sites(case: Case) -> list[tuple[int, tuple[int, int]]]:
    """(layer, (unit, example)) of every relu/leaky_relu pre-activation exactly on 0."""
    params, X, _ = case.arrays()
    tape = forward(case.spec, params, X)
    return [
        (layer, (int(unit), int(example)))
        for layer, name in enumerate(case.spec.activations, start=1)
        if name in KINKED_ACTIVATIONS
        for unit, example in zip(*np.nonzero(tape.z(layer) == 0.0), strict=True)
    ]


def _one_sided_slopes(name: str) -> tuple[float, float]:
    return (0.0 if name == "relu" else LEAKY_SLOPE, 1.0)


def _backward_with_slopes(case: Case, slopes: Mapping[tuple[int, tuple[int, int]], float]) -> KinkVariant:
    """The reference's gradients and δ with g'(0) replaced by ``slopes`` at the given kink sites."""
    spec = case.spec
    params, X, Y = case.arrays()
    tape = forward(spec, params, X)

    def derivative(layer: int) -> Array | None:
        name = spec.activations[layer - 1]
        base = get_activation(name).derivative
        if base is None:
            return None
        d = base(tape.z(layer)).copy()
        for (site_layer, index), slope in slopes.items():
            if site_layer == layer:
                d[index] = slope
        return d

    loss = get_loss(spec.loss)
    out = derivative(spec.depth)
    if out is None or (loss.delta_from_logits is not None and spec.activations[-1] == loss.output_activation):
        assert loss.delta_from_logits is not None
        delta = loss.delta_from_logits(tape.pre_activations[-1], Y)
    else:
        delta = loss.gradient(tape.output, Y) * out
    deltas = [delta]
    for layer in range(spec.depth, 1, -1):
        below = derivative(layer - 1)
        assert below is not None  # softmax is output-only
        delta = (params[f"W{layer}"].T @ delta) * below
        deltas.append(delta)
    deltas.reverse()
    grads: Params = {}
    for layer in range(1, spec.depth + 1):
        grads[f"W{layer}"] = deltas[layer - 1] @ tape.a(layer - 1).T
        grads[f"b{layer}"] = deltas[layer - 1].sum(axis=1, keepdims=True)
    return grads, tuple(deltas)


def kink_variants(case: Case) -> list[KinkVariant]:
    """Reference gradients under every admissible slope choice at the case's kink sites ([] without sites)."""
    sites = kink_sites(case)
    if not sites:
        return []
    choices = [_one_sided_slopes(case.spec.activations[layer - 1]) for layer, _ in sites]
    if 2 ** len(sites) <= MAX_KINK_PATTERNS:
        patterns: Iterable[tuple[float, ...]] = itertools.product(*choices)
    else:  # too many sites for every pattern: one convention everywhere, either side
        patterns = [tuple(c[0] for c in choices), tuple(c[1] for c in choices)]
    return [_backward_with_slopes(case, dict(zip(sites, pattern, strict=True))) for pattern in patterns]


def _matches(subject: Mapping[str, Array], variant: Mapping[str, Array], oracle: str) -> bool:
    tolerance = tolerance_for(oracle)
    return all(
        name in subject
        and np.shape(subject[name]) == np.shape(value)
        and compare_block(name, np.asarray(subject[name]), value, tolerance)[0].passed
        for name, value in variant.items()
    )


def classify_kink(
    record: Record, grads: Params, deltas: Sequence[Array] | None, variants: Sequence[KinkVariant]
) -> str:
    """``record.verdict``, or ``"kink"`` when a failure is explained by a slope choice at exact kinks."""
    if not record.failed or not variants or record.check not in ("gradient", "projection", "delta"):
        return record.verdict
    for variant_grads, variant_deltas in variants:
        if record.check == "delta":
            if deltas is None:
                continue
            names = [f"delta{layer}" for layer in range(1, len(variant_deltas) + 1)]
            if _matches(
                dict(zip(names, deltas, strict=False)), dict(zip(names, variant_deltas, strict=True)), record.oracle
            ):
                return "kink"
        elif _matches(grads, variant_grads, record.oracle):
            return "kink"
    return record.verdict
