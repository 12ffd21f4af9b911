"""Loss conventions: the same loss with another constant in front, named, and how a subject declares its own.

Implementations disagree about constants, not calculus: ½ or not, and a sum, a mean over the batch
(1/m) or a mean over every entry (1/(m·n_L)).  Each convention is a factor ``k(m, n_L)`` in front of
the summed per-entry loss; a subject right up to convention C returns ``k_C / k_asked`` times the
asked loss's gradient, the same factor on every parameter.

A *declaration* says which convention a subject follows: one name for every loss it applies to
(``mean_elements``), or one per loss (``mse=mean_elements,bce=mean_elements``; losses left out follow the
suite's own).  The same text (or a dict) works on the command line, in ``check_subject`` and in ``SUPPORTS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from oracles.guarded import RawCall
from oracles.subjects import Subject
from oracles.supervisor import IsolatedGradients
from reference_impl.spec import LOSS_NAMES, Array, Params, Spec

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


LOSS_ORDER: tuple[str, ...] = LOSS_NAMES
EVERY_LOSS = "*"
Declaration = dict[str, str]  # loss -> convention name; EVERY_LOSS: every loss the name applies to


class DeclarationError(ValueError):
    """A convention declaration that names an unknown loss or convention, or one that does not apply."""


def parse_declaration(value: str | Mapping[str, str] | None) -> Declaration:
    """``"half_sse"``, ``"mse=mean_elements,bce=mean_elements"`` or ``{"mse": "mean_elements"}`` as a dict."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        declared = {str(k): str(v) for k, v in value.items()}
    else:
        text = value.strip()
        if not text:
            raise DeclarationError("empty convention declaration")
        if "=" not in text:
            declared = {EVERY_LOSS: text}
        else:
            declared = {}
            for part in text.split(","):
                loss, sep, name = part.partition("=")
                if not sep or not loss.strip() or not name.strip():
                    raise DeclarationError(f"{part!r} is not LOSS=CONVENTION (e.g. mse=mean_elements)")
                declared[loss.strip()] = name.strip()
    for loss, name in declared.items():
        if name not in CONVENTIONS and name not in ("sum", "mean"):
            raise DeclarationError(f"unknown convention {name!r}; known: {sorted(CONVENTIONS)}")
        if loss == EVERY_LOSS:
            continue
        if loss not in LOSS_NAMES:
            raise DeclarationError(f"unknown loss {loss!r} in the convention declaration; known: {list(LOSS_NAMES)}")
        try:
            resolve(name, loss)
        except KeyError as exc:
            raise DeclarationError(str(exc.args[0])) from None
    return declared


def declared_name(declared: Mapping[str, str], loss: str) -> str | None:
    """The convention declared for ``loss`` (a name for every loss only where it applies), or None."""
    if loss in declared:
        return declared[loss]
    name = declared.get(EVERY_LOSS)
    if name is None:
        return None
    try:
        resolve(name, loss)
    except KeyError:
        return None
    return name


def declared_factor(declared: Mapping[str, str], spec: Spec, m: int) -> float:
    """Subject gradient ÷ asked gradient under the declaration (1 where nothing is declared for the loss)."""
    name = declared_name(declared, spec.loss)
    return 1.0 if name is None else factor(name, spec, m)


def declared_losses(declared: Mapping[str, str], losses: tuple[str, ...] | list[str]) -> list[str]:
    """The losses among ``losses`` that the declaration changes."""
    return [loss for loss in losses if declared_name(declared, loss) is not None]


def format_declaration(declared: Mapping[str, str]) -> str:
    if set(declared) == {EVERY_LOSS}:
        return declared[EVERY_LOSS]
    return ",".join(f"{loss}={name}" for loss, name in declared.items())


def _rescaled(raw: Any, declared: Mapping[str, str], spec: Any, X: Any) -> Any:
    """A subject's raw answer divided by its declared factor (left alone when it is not a dict of numbers)."""
    if not isinstance(raw, Mapping):
        return raw
    try:
        k = declared_factor(declared, spec if isinstance(spec, Spec) else Spec.from_dict(spec), int(np.shape(X)[1]))
    except Exception:  # an unusable spec or batch: leave the answer to the protocol checks
        return raw
    out: dict[Any, Any] = {}
    for name, value in raw.items():
        array = np.asarray(value)
        out[name] = array / k if array.dtype.kind in "fiu" else value
    return out


class _DeclaredIsolated(IsolatedGradients):
    """An isolated subject's gradients seen through its declaration; the guarded call stays in its worker."""

    def __init__(self, inner: IsolatedGradients, declared: Mapping[str, str]) -> None:
        super().__init__(inner.supervisor)
        self.declared = dict(declared)

    def __call__(self, spec: Any, params: dict[str, Any], X: Any, Y: Any) -> Any:
        return _rescaled(super().__call__(spec, params, X, Y), self.declared, spec, X)

    def guarded(
        self, spec: Spec, params: Params, X: Array, Y: Array, *, repeat: bool, timeout: float | None
    ) -> RawCall:
        call = super().guarded(spec, params, X, Y, repeat=repeat, timeout=timeout)
        return replace(call, raw=_rescaled(call.raw, self.declared, spec, X))


def declared_subject(subject: Subject, declared: Mapping[str, str] | None) -> Subject:
    """``subject`` seen through its declaration (gradients divided by the declared factor), so a check or a
    diagnosis looks only for what the declaration does not explain."""
    if not declared:
        return subject
    if isinstance(subject.gradients, IsolatedGradients):
        return Subject(subject.name, _DeclaredIsolated(subject.gradients, declared), subject.loss, subject.deltas)

    def rescaled(spec: dict[str, Any], params: dict[str, Any], X: Any, Y: Any) -> Any:
        return _rescaled(subject.gradients(spec, params, X, Y), declared, spec, X)

    return Subject(subject.name, rescaled, subject.loss, subject.deltas)
