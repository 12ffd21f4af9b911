"""Term coverage: do the generated cases exercise every term of every backprop formula?

A comparison can only catch a bug in a term that is non-zero somewhere.  A transposed weight is only
visible when a layer is non-square, a missing 1/m only when the batch has more than one example, a
dropped off-diagonal softmax term only with several output units, a kink convention only when a
pre-activation sits exactly on the kink.  Each :class:`Term` measures, on one case, the magnitude of
one such term (0 when it vanishes); :func:`measure` accumulates them over a run, and
:func:`warn_if_uncovered` warns (:class:`CoverageWarning`) about every term that was identically zero.

Shapes as in the reference: ``z^[l]``, ``a^[l]``, ``δ^[l]`` ``(n_l, m)``; targets ``Y`` ``(n_L, m)``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference_impl.activations import get_activation
from reference_impl.case import Case
from reference_impl.losses import get_loss
from reference_impl.mlp import Backward, Tape, run
from reference_impl.spec import ACTIVATION_NAMES, KINKED_ACTIVATIONS, LOSS_NAMES, Array

# |z| beyond which sigmoid'(z) < 7e-3 and tanh'(z) < 2e-4: the derivative term is nearly gone.
SATURATION = 5.0
# |z| below which the derivative term is still of order one.
UNSATURATED = 1.0
SATURATING = frozenset({"sigmoid", "tanh"})


class CoverageWarning(UserWarning):
    """A term of a formula was identically zero across a whole run: bugs in it cannot be seen."""


@dataclass(frozen=True)
class Evaluated:
    """One case with the reference's intermediates, so every term reads the same arrays."""

    case: Case
    tape: Tape
    backward: Backward
    Y: Array


@dataclass(frozen=True)
class Term:
    name: str
    description: str  # which formula term, and which bugs it exposes
    magnitude: Callable[[Evaluated], float]  # ≥ 0; 0 when the term vanishes on this case


def _layers_with(evaluated: Evaluated, names: Iterable[str]) -> list[int]:
    wanted = set(names)
    return [layer for layer, act in enumerate(evaluated.case.spec.activations, start=1) if act in wanted]


def _count(evaluated: Evaluated, names: Iterable[str], predicate: Callable[[Array], np.ndarray]) -> float:
    return float(
        sum(int(np.count_nonzero(predicate(evaluated.tape.z(layer)))) for layer in _layers_with(evaluated, names))
    )


def _batch_beyond_first(evaluated: Evaluated) -> float:
    # Σ_{j ≥ 2} δ_j a_jᵀ: what a gradient that ignores all but the first example misses.
    total = 0.0
    for layer in range(1, evaluated.case.spec.depth + 1):
        delta, a_prev = evaluated.backward.delta(layer), evaluated.tape.a(layer - 1)
        total += float(np.abs(delta[:, 1:] @ a_prev[:, 1:].T).sum())
    return total


def _non_square(evaluated: Evaluated) -> float:
    widths = evaluated.case.spec.widths
    return float(sum(abs(widths[layer] - widths[layer - 1]) for layer in range(1, len(widths))))


def _batch_differs_from_width(evaluated: Evaluated) -> float:
    # A bias summed over the wrong axis has shape (m, 1): indistinguishable by shape when m = n_l.
    return float(sum(1 for width in evaluated.case.spec.widths[1:] if width != evaluated.case.batch))


def _hidden_recursion(evaluated: Evaluated) -> float:
    # (W^[l])ᵀ δ^[l] ⊙ g'(z^[l-1]) only exists below the output layer.
    return float(sum(np.abs(evaluated.backward.delta(layer)).sum() for layer in range(1, evaluated.case.spec.depth)))


def _output_cotangent(evaluated: Evaluated) -> Array:
    loss = get_loss(evaluated.case.spec.loss)
    return loss.gradient(evaluated.tape.output, evaluated.Y)


def _non_uniform_cotangent(evaluated: Evaluated) -> float:
    # A cotangent equal in every entry (a plain sum) cannot tell which entry went where.
    with np.errstate(all="ignore"):
        cotangent = _output_cotangent(evaluated)
    finite = cotangent[np.isfinite(cotangent)]
    return float(np.ptp(finite)) if finite.size > 1 else 0.0


def _soft_targets(evaluated: Evaluated) -> float:
    if evaluated.case.spec.loss not in ("bce", "cce"):
        return 0.0
    Y = evaluated.Y
    return float(np.count_nonzero((Y > 0.0) & (Y < 1.0)))


def _multi_unit_output(evaluated: Evaluated) -> float:
    return float(max(evaluated.case.spec.widths[-1] - 1, 0))


def _softmax_off_diagonal(evaluated: Evaluated) -> float:
    # The −a_i a_j terms of the softmax Jacobian, summed: zero with one output unit.
    if evaluated.case.spec.activations[-1] != "softmax":
        return 0.0
    a = evaluated.tape.output
    return float((a.sum(axis=0) ** 2 - (a**2).sum(axis=0)).sum())


def _output_derivative(evaluated: Evaluated) -> float:
    # ⊙ g'(z^[L]) in δ^[L] for the unfused losses: absent (≡ 1) for an identity output.
    spec = evaluated.case.spec
    derivative = get_activation(spec.activations[-1]).derivative
    if spec.loss in ("bce", "cce") or derivative is None:
        return 0.0
    return float(np.abs(derivative(evaluated.tape.pre_activations[-1]) - 1.0).sum())


def _distinct_adjacent_activations(evaluated: Evaluated) -> float:
    acts = evaluated.case.spec.activations
    return float(sum(1 for left, right in itertools.pairwise(acts) if left != right))


def _kink_sites(evaluated: Evaluated) -> float:
    return _count(evaluated, KINKED_ACTIVATIONS, lambda z: z == 0.0)


def _activation_term(name: str) -> Callable[[Evaluated], float]:
    def magnitude(evaluated: Evaluated) -> float:
        return float(sum(evaluated.tape.z(layer).size for layer in _layers_with(evaluated, [name])))

    return magnitude


def _loss_term(name: str) -> Callable[[Evaluated], float]:
    def magnitude(evaluated: Evaluated) -> float:
        return 1.0 if evaluated.case.spec.loss == name else 0.0

    return magnitude


TERMS: tuple[Term, ...] = (
    Term(
        "batch_beyond_first_example",
        "Σ over examples 2..m in ∂L/∂W: m > 1 (1/m, first-example bugs)",
        _batch_beyond_first,
    ),
    Term("non_square_layer", "n_l ≠ n_{l-1}: W and Wᵀ differ in shape (transpose bugs)", _non_square),
    Term(
        "batch_differs_from_width",
        "m ≠ n_l: the batch and unit axes differ in length (bias-axis bugs)",
        _batch_differs_from_width,
    ),
    Term("hidden_recursion", "(W^[l])ᵀ δ^[l] ⊙ g'(z^[l-1]) below the output (depth > 1)", _hidden_recursion),
    Term(
        "non_uniform_cotangent",
        "∂L/∂a^[L] differs between entries (a sum would hide permutations)",
        _non_uniform_cotangent,
    ),
    Term("non_one_hot_targets", "cross-entropy targets strictly between 0 and 1", _soft_targets),
    Term("multi_unit_output", "n_L > 1 (bias-to-scalar, softmax off-diagonal)", _multi_unit_output),
    Term("softmax_off_diagonal", "−a_i a_j terms of the softmax Jacobian", _softmax_off_diagonal),
    Term("output_derivative", "⊙ g'(z^[L]) ≠ 1 in δ^[L] of a squared loss", _output_derivative),
    Term(
        "distinct_adjacent_activations",
        "layers l-1 and l use different activations (off-by-one layer)",
        _distinct_adjacent_activations,
    ),
    Term(
        "saturated_activation",
        f"sigmoid/tanh with |z| > {SATURATION:g} (g' nearly 0)",
        lambda e: _count(e, SATURATING, lambda z: np.abs(z) > SATURATION),
    ),
    Term(
        "unsaturated_activation",
        f"sigmoid/tanh with |z| < {UNSATURATED:g} (g' of order 1)",
        lambda e: _count(e, SATURATING, lambda z: np.abs(z) < UNSATURATED),
    ),
    Term(
        "negative_kinked_region",
        "relu/leaky_relu with z < 0 (the zero or leaky slope)",
        lambda e: _count(e, KINKED_ACTIVATIONS, lambda z: z < 0),
    ),
    Term(
        "positive_kinked_region",
        "relu/leaky_relu with z > 0 (slope 1)",
        lambda e: _count(e, KINKED_ACTIVATIONS, lambda z: z > 0),
    ),
    Term("kink_site", "a relu/leaky_relu pre-activation exactly on the kink (the convention decides)", _kink_sites),
    *(Term(f"activation:{name}", f"a layer uses {name}", _activation_term(name)) for name in ACTIVATION_NAMES),
    *(Term(f"loss:{name}", f"the loss is {name}", _loss_term(name)) for name in LOSS_NAMES),
)
TERM_NAMES: tuple[str, ...] = tuple(term.name for term in TERMS)


def evaluate(case: Case) -> Evaluated:
    params, X, Y = case.arrays()
    tape, backward, _ = run(case.spec, params, X, Y)
    return Evaluated(case, tape, backward, Y)


def term_magnitudes(case: Case) -> dict[str, float]:
    """Every term's magnitude on one case (0.0 where it vanishes)."""
    evaluated = evaluate(case)
    return {term.name: term.magnitude(evaluated) for term in TERMS}


@dataclass
class TermStats:
    cases_hit: int = 0
    max_magnitude: float = 0.0


@dataclass
class CoverageReport:
    """How many cases of a run exercised each term (a non-zero magnitude), and by how much at most."""

    n_cases: int = 0
    terms: dict[str, TermStats] = field(default_factory=lambda: {name: TermStats() for name in TERM_NAMES})

    def add(self, case: Case) -> None:
        self.n_cases += 1
        for name, magnitude in term_magnitudes(case).items():
            if magnitude > 0.0 and np.isfinite(magnitude):
                stats = self.terms[name]
                stats.cases_hit += 1
                stats.max_magnitude = max(stats.max_magnitude, magnitude)

    @property
    def uncovered(self) -> list[str]:
        """Terms identically zero on every case of the run."""
        return [name for name, stats in self.terms.items() if stats.cases_hit == 0]

    @property
    def complete(self) -> bool:
        return self.n_cases > 0 and not self.uncovered

    def to_dict(self) -> dict[str, Any]:
        descriptions = {term.name: term.description for term in TERMS}
        return {
            "n_cases": self.n_cases,
            "uncovered": self.uncovered,
            "terms": {
                name: {"cases_hit": s.cases_hit, "max_magnitude": s.max_magnitude, "description": descriptions[name]}
                for name, s in self.terms.items()
            },
        }

    def lines(self) -> list[str]:
        width = max(len(name) for name in self.terms)
        return [
            f"{name:<{width}}  {stats.cases_hit:>6}/{self.n_cases:<6} {'UNCOVERED' if stats.cases_hit == 0 else ''}"
            for name, stats in self.terms.items()
        ]


def measure(cases: Iterable[Case]) -> CoverageReport:
    report = CoverageReport()
    for case in cases:
        report.add(case)
    return report


def warn_if_uncovered(report: CoverageReport) -> list[str]:
    """Warn once per term that was identically zero across the run; returns those terms."""
    descriptions = {term.name: term.description for term in TERMS}
    for name in report.uncovered:
        warnings.warn(
            f"term {name!r} ({descriptions[name]}) was zero on all {report.n_cases} cases: bugs in it cannot be seen",
            CoverageWarning,
            stacklevel=2,
        )
    return report.uncovered
