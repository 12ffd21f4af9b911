"""Loss conventions: the same loss with another constant in front, named.

Implementations disagree about constants, not calculus: ½ or not, and a sum, a mean over the batch
(1/m) or a mean over every entry (1/(m·n_L)).  Each convention is a factor ``k(m, n_L)`` in front of
the summed per-entry loss; a subject right up to convention C returns ``k_C / k_asked`` times the
asked loss's gradient, the same factor on every parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from reference_impl.spec import Spec

SQUARED_LOSSES = frozenset({"mse", "half_sse"})
CROSS_ENTROPY_LOSSES = frozenset({"bce", "cce"})
REDUCTIONS = ("sum", "batch_mean", "element_mean")


@dataclass(frozen=True)
class Convention:
    name: str
    half: bool  # a ½ in front (squared error only)
    reduction: str  # one of REDUCTIONS
    squared_only: bool
    description: str  # words only: messages show it beside ``formula``, so it must not repeat it
    formula: str = ""

    def constant(self, m: int, n_out: int) -> float:
        """``k(m, n_L)``: the constant in front of the summed per-entry loss."""
        per_reduction = {"sum": 1.0, "batch_mean": 1.0 / m, "element_mean": 1.0 / (m * n_out)}[self.reduction]
        return (0.5 if self.half else 1.0) * per_reduction


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("mse", False, "batch_mean", True, "the suite's mse", "L = (1/m) Σ_i ‖y_i − ŷ_i‖²"),
        Convention("half_sse", True, "sum", True, "½ and no 1/m: the suite's half_sse", "L = ½ Σ (y − ŷ)²"),
        Convention("sse", False, "sum", True, "neither ½ nor 1/m", "L = Σ (y − ŷ)²"),
        Convention(
            "half_mse",
            True,
            "batch_mean",
            True,
            "½ and a mean over the batch",
            "L = (1/2m) Σ_i ‖y_i − ŷ_i‖²",
        ),
        Convention(
            "mean_elements", False, "element_mean", False, "a mean over every entry, ÷ (m·n_L)", "L = (1/(m·n_L)) Σ ℓ"
        ),
        Convention(
            "half_mean_elements",
            True,
            "element_mean",
            True,
            "½ of a mean over every entry, ÷ (2·m·n_L)",
            "L = (1/(2·m·n_L)) Σ (y − ŷ)²",
        ),
        Convention(
            "mean",
            False,
            "batch_mean",
            False,
            "sum over units, mean over the batch: the suite's bce/cce",
            "L = (1/m) Σ_i ℓ(y_i, ŷ_i)",
        ),
        Convention("sum", False, "sum", False, "sum over units and over the batch, no 1/m", "L = Σ_i ℓ(y_i, ŷ_i)"),
    )
}

# The convention each suite loss *is*.
ASKED: dict[str, str] = {"mse": "mse", "half_sse": "half_sse", "bce": "mean", "cce": "mean"}


def applicable(loss: str) -> list[str]:
    """Convention names that make sense for ``loss`` (a ½ only in front of a squared error)."""
    squared = loss in SQUARED_LOSSES
    names = [c.name for c in CONVENTIONS.values() if squared or not c.squared_only]
    if squared:
        # "mean"/"sum" are the cross-entropy spellings of mse/sse; keep one name per constant.
        names = [n for n in names if n not in ("mean", "sum")]
    return names


def resolve(name: str, loss: str) -> Convention:
    """The convention ``name`` means for ``loss`` (``sum``/``mean`` are also accepted for squared errors)."""
    if loss in SQUARED_LOSSES and name in ("sum", "mean"):
        name = {"sum": "sse", "mean": "mse"}[name]
    if name not in CONVENTIONS:
        raise KeyError(f"unknown convention {name!r}; known: {sorted(CONVENTIONS)}")
    if name not in applicable(loss):
        raise KeyError(f"convention {name!r} does not apply to loss {loss!r}; choose from {applicable(loss)}")
    return CONVENTIONS[name]


def factor(name: str, spec: Spec, m: int) -> float:
    """Subject gradient ÷ asked gradient, for a subject following convention ``name`` on ``spec``."""
    n_out = spec.widths[-1]
    asked = CONVENTIONS[ASKED[spec.loss]]
    return resolve(name, spec.loss).constant(m, n_out) / asked.constant(m, n_out)


def drops_batch_mean(name: str, loss: str) -> bool:
    """Whether ``name`` is the asked convention with only its 1/m removed (the classic missing-1/m bug)."""
    asked, other = CONVENTIONS[ASKED[loss]], resolve(name, loss)
    return asked.reduction == "batch_mean" and other.reduction == "sum" and asked.half == other.half
