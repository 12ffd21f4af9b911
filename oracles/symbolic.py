"""Symbolic twins of every activation and loss, for SymPy and SymEngine alike.

Two twins per name, kept apart on purpose:

- the *exact* twin (:attr:`SymbolicActivation.exact`, :attr:`SymbolicLoss.oracle_value`) is what the
  ``sympy_exact`` oracle differentiates.  It is written in exponentials so that its symbolic derivative
  is a ratio of positive terms (``tanh`` as ``1 − 2/(1 + e^{2z})`` differentiates to ``4e^{2z}/(1 + e^{2z})²``,
  not ``1 − tanh² z``): no cancellation, so high-precision evaluation keeps full *relative* accuracy
  however deep the saturation (σ'(−600) ≈ 1e-261 comes out to the last digit);
- the *reference* twin (:attr:`SymbolicActivation.reference_function`, ``reference_derivative``,
  :attr:`SymbolicLoss.gradient`, ``delta_from_logits``) mirrors, formula for formula and branch for
  branch, what the NumPy code in ``reference_impl`` computes.

:func:`is_identity` proves ``expr ≡ 0`` with SymPy; the property tests use it to show that the derivative
of each exact twin *is* the derivative the reference uses, and evaluate the reference twins against the
NumPy functions to bridge the algebra to the code.

Every function takes the expression engine as a module argument (``sympy`` or ``symengine``): both
spell ``exp``, ``log``, ``tanh``, ``Max``, ``Abs``, ``Piecewise`` and ``Rational`` the same way.
Matrices are nested lists ``rows[unit][example]`` of expressions, shape ``(n, m)`` like the arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sympy

Expr = Any  # a sympy.Expr or a symengine.Basic: neither library ships type information
Matrix = list[list[Expr]]  # rows[unit][example], shape (n, m)
ElementwiseFn = Callable[[Expr, ModuleType], Expr]
VectorFn = Callable[[Sequence[Expr], ModuleType], list[Expr]]


def leaky_slope(eng: ModuleType) -> Expr:
    # The suite defines leaky_relu with slope 0.01; the exact rational, not the nearest binary float.
    return eng.Rational(1, 100)


# ---- exact twins (what the oracle differentiates) -------------------------------------------------


def identity_exact(z: Expr, eng: ModuleType) -> Expr:
    return z


def sigmoid_exact(z: Expr, eng: ModuleType) -> Expr:
    # σ' = e^{−z}/(1 + e^{−z})²: no cancellation for any z (σ(1 − σ) would cancel as σ → 1).
    return 1 / (1 + eng.exp(-z))


def tanh_exact(z: Expr, eng: ModuleType) -> Expr:
    # tanh z = 1 − 2/(1 + e^{2z}); its derivative 4e^{2z}/(1 + e^{2z})² is a ratio of positive terms,
    # so it keeps full relative precision where 1 − tanh² z would cancel to nothing.
    return 1 - 2 / (1 + eng.exp(2 * z))


def relu_exact(z: Expr, eng: ModuleType) -> Expr:
    # z = 0 falls in the second branch, so the symbolic derivative is 0 there: relu'(0) = 0.
    return eng.Piecewise((z, z > 0), (0, True))


def leaky_relu_exact(z: Expr, eng: ModuleType) -> Expr:
    # z = 0 falls in the second branch: leaky_relu'(0) = slope, the suite's convention.
    return eng.Piecewise((z, z > 0), (leaky_slope(eng) * z, True))


def softplus_exact(z: Expr, eng: ModuleType) -> Expr:
    # The oracle evaluates log(1 + u) from the exact sum 1 + u, so e^{−600} is not lost to rounding.
    return eng.log(1 + eng.exp(z))


def softmax_exact(zs: Sequence[Expr], eng: ModuleType) -> list[Expr]:
    if len(zs) == 1:
        # e^z/e^z: exactly 1, said symbolically so its derivative is exactly 0, not rounding residue.
        return [eng.Integer(1)]
    exps = [eng.exp(z) for z in zs]
    total = sum(exps[1:], exps[0])
    return [e / total for e in exps]


def log_softmax_exact(zs: Sequence[Expr], eng: ModuleType) -> list[Expr]:
    # No max shift: the evaluation runs at ≥ 30 digits with an unbounded exponent, so e^z cannot overflow.
    if len(zs) == 1:
        return [eng.Integer(0)]  # z − log e^z ≡ 0; see softmax_exact
    log_total = eng.log(sum((eng.exp(z) for z in zs[1:]), eng.exp(zs[0])))
    return [z - log_total for z in zs]


# ---- reference twins (what reference_impl computes, written symbolically) --------------------------


def sigmoid_reference(z: Expr, eng: ModuleType) -> Expr:
    # np.where(z >= 0, 1/(1+e), e/(1+e)) with e = exp(−|z|): both branches, as the code has them.
    return eng.Piecewise((1 / (1 + eng.exp(-z)), z >= 0), (eng.exp(z) / (1 + eng.exp(z)), True))


def softplus_reference(z: Expr, eng: ModuleType) -> Expr:
    # max(z, 0) + log1p(exp(−|z|))
    return eng.Max(z, 0) + eng.log(1 + eng.exp(-eng.Abs(z)))


def softmax_reference(zs: Sequence[Expr], eng: ModuleType, shift: Expr | None = None) -> list[Expr]:
    """``exp(z − shift)/Σ exp(z − shift)``; the code uses ``shift = max(z)``, any shift gives the same."""
    shift = eng.Max(*zs) if shift is None else shift
    exps = [eng.exp(z - shift) for z in zs]
    total = sum(exps[1:], exps[0])
    return [e / total for e in exps]


def log_softmax_reference(zs: Sequence[Expr], eng: ModuleType, shift: Expr | None = None) -> list[Expr]:
    shift = eng.Max(*zs) if shift is None else shift
    shifted = [z - shift for z in zs]
    log_total = eng.log(sum((eng.exp(s) for s in shifted[1:]), eng.exp(shifted[0])))
    return [s - log_total for s in shifted]


def softmax_vjp_reference(
    zs: Sequence[Expr], cotangent: Sequence[Expr], eng: ModuleType, shift: Expr | None = None
) -> list[Expr]:
    """``a ⊙ (g − Σ a g)``: the reference's Jacobian-transpose product for one column."""
    a = softmax_reference(zs, eng, shift)
    inner = sum((ai * gi for ai, gi in zip(a[1:], cotangent[1:], strict=True)), a[0] * cotangent[0])
    return [ai * (gi - inner) for ai, gi in zip(a, cotangent, strict=True)]


@dataclass(frozen=True)
class SymbolicActivation:
    """One activation: the exact twin, and the reference's function and derivative as formulas.

    ``reference_derivative`` is None for softmax, whose Jacobian is not diagonal (see
    :func:`softmax_vjp_reference`); softmax's vector functions live in ``exact_vector`` /
    ``reference_vector``.
    """

    name: str
    exact: ElementwiseFn | None
    reference_function: ElementwiseFn | None
    reference_derivative: ElementwiseFn | None
    kinks: tuple[int, ...] = ()
    exact_vector: VectorFn | None = None
    reference_vector: VectorFn | None = None


ACTIVATIONS: dict[str, SymbolicActivation] = {
    a.name: a
    for a in (
        SymbolicActivation("identity", identity_exact, lambda z, eng: z, lambda z, eng: eng.Integer(1)),
        SymbolicActivation("sigmoid", sigmoid_exact, sigmoid_reference, lambda z, eng: _s(z, eng) * (1 - _s(z, eng))),
        SymbolicActivation("tanh", tanh_exact, lambda z, eng: eng.tanh(z), lambda z, eng: 1 - eng.tanh(z) ** 2),
        SymbolicActivation(
            "relu",
            relu_exact,
            lambda z, eng: eng.Max(z, 0),
            lambda z, eng: eng.Piecewise((1, z > 0), (0, True)),  # (z > 0).astype(float)
            kinks=(0,),
        ),
        SymbolicActivation(
            "leaky_relu",
            leaky_relu_exact,
            lambda z, eng: eng.Piecewise((z, z > 0), (leaky_slope(eng) * z, True)),
            lambda z, eng: eng.Piecewise((1, z > 0), (leaky_slope(eng), True)),
            kinks=(0,),
        ),
        SymbolicActivation("softplus", softplus_exact, softplus_reference, sigmoid_reference),
        SymbolicActivation(
            "softmax",
            None,
            None,
            None,
            exact_vector=softmax_exact,
            reference_vector=lambda zs, eng: softmax_reference(zs, eng),
        ),
    )
}


def _s(z: Expr, eng: ModuleType) -> Expr:
    return sigmoid_reference(z, eng)


def activation_exact(name: str) -> ElementwiseFn:
    """The exact elementwise twin (raises for softmax, which is a vector function)."""
    fn = ACTIVATIONS[name].exact
    if fn is None:
        raise KeyError(f"{name} is not elementwise")
    return fn


# ---- losses --------------------------------------------------------------------------------------


def _total(terms: Sequence[Expr]) -> Expr:
    return sum(terms[1:], terms[0])


def _entries(A: Matrix) -> list[tuple[int, int]]:
    return [(i, k) for i in range(len(A)) for k in range(len(A[0]))]


def mse_value(A: Matrix, Y: Matrix, eng: ModuleType) -> Expr:
    m = len(Y[0])
    return _total([(Y[i][k] - A[i][k]) ** 2 for i, k in _entries(A)]) / m


def mse_gradient(A: Matrix, Y: Matrix, eng: ModuleType) -> Matrix:
    m = len(Y[0])
    return [[2 * (A[i][k] - Y[i][k]) / m for k in range(m)] for i in range(len(A))]


def half_sse_value(A: Matrix, Y: Matrix, eng: ModuleType) -> Expr:
    return _total([(Y[i][k] - A[i][k]) ** 2 for i, k in _entries(A)]) / 2


def half_sse_gradient(A: Matrix, Y: Matrix, eng: ModuleType) -> Matrix:
    return [[A[i][k] - Y[i][k] for k in range(len(A[0]))] for i in range(len(A))]


def bce_value(A: Matrix, Y: Matrix, eng: ModuleType) -> Expr:
    m = len(Y[0])
    return -_total([Y[i][k] * eng.log(A[i][k]) + (1 - Y[i][k]) * eng.log(1 - A[i][k]) for i, k in _entries(A)]) / m


def bce_gradient(A: Matrix, Y: Matrix, eng: ModuleType) -> Matrix:
    m = len(Y[0])
    return [[(A[i][k] - Y[i][k]) / (A[i][k] * (1 - A[i][k])) / m for k in range(m)] for i in range(len(A))]


def bce_value_from_logits(Z: Matrix, Y: Matrix, eng: ModuleType) -> Expr:
    # softplus(z) − y z: the reference's stable form, and the oracle's (no overflow at arbitrary exponent range).
    m = len(Y[0])
    return _total([softplus_exact(Z[i][k], eng) - Y[i][k] * Z[i][k] for i, k in _entries(Z)]) / m


def bce_delta_from_logits(Z: Matrix, Y: Matrix, eng: ModuleType) -> Matrix:
    m = len(Y[0])
    return [[(sigmoid_reference(Z[i][k], eng) - Y[i][k]) / m for k in range(m)] for i in range(len(Z))]


def cce_value(A: Matrix, Y: Matrix, eng: ModuleType) -> Expr:
    m = len(Y[0])
    return -_total([Y[i][k] * eng.log(A[i][k]) for i, k in _entries(A)]) / m


def cce_gradient(A: Matrix, Y: Matrix, eng: ModuleType) -> Matrix:
    m = len(Y[0])
    return [[-Y[i][k] / A[i][k] / m for k in range(m)] for i in range(len(A))]


def _columns(M: Matrix) -> list[list[Expr]]:
    return [[M[i][k] for i in range(len(M))] for k in range(len(M[0]))]


def cce_value_from_logits(Z: Matrix, Y: Matrix, eng: ModuleType, *, exact: bool = True) -> Expr:
    """−(1/m) Σ y · log_softmax(z); ``exact=False`` uses the reference's max-shifted log_softmax."""
    m = len(Y[0])
    log_softmax = log_softmax_exact if exact else log_softmax_reference
    terms: list[Expr] = []
    for k, column in enumerate(_columns(Z)):
        logp = log_softmax(column, eng)
        terms.extend(Y[i][k] * logp[i] for i in range(len(column)))
    return -_total(terms) / m


def cce_delta_from_logits(Z: Matrix, Y: Matrix, eng: ModuleType) -> Matrix:
    """(softmax(z) · Σ_j y_j − y)/m, the reference's shortcut (exact for targets that do not sum to 1).

    Softmax without the max shift: that the shift changes nothing is its own identity
    (``softmax_reference`` with an arbitrary symbolic shift ≡ ``softmax_exact``).
    """
    m = len(Y[0])
    out: Matrix = [[None] * m for _ in Z]
    for k, column in enumerate(_columns(Z)):
        p = softmax_exact(column, eng)
        y_sum = _total([Y[i][k] for i in range(len(column))])
        for i in range(len(column)):
            out[i][k] = (p[i] * y_sum - Y[i][k]) / m
    return out


LossValue = Callable[[Matrix, Matrix, ModuleType], Expr]
LossGradient = Callable[[Matrix, Matrix, ModuleType], Matrix]


@dataclass(frozen=True)
class SymbolicLoss:
    """A loss: reference value and ∂L/∂A, and for cross-entropies the fused forms from the logits Z.

    ``oracle_value(Z, A, Y, eng)`` is what the oracle differentiates: the from-logits form when the loss
    has one, else the value of the output activations.  ``mean_over_batch``: L over m examples is
    (1/m) Σ_k L(example k) (True) or Σ_k L(example k) (False), proved per loss in the tests.
    """

    name: str
    value: LossValue
    gradient: LossGradient
    mean_over_batch: bool
    output_activation: str | None = None
    value_from_logits: LossValue | None = None
    delta_from_logits: LossGradient | None = None

    def oracle_value(self, Z: Matrix, A: Matrix, Y: Matrix, eng: ModuleType) -> Expr:
        if self.value_from_logits is not None:
            return self.value_from_logits(Z, Y, eng)
        return self.value(A, Y, eng)


LOSSES: dict[str, SymbolicLoss] = {
    loss.name: loss
    for loss in (
        SymbolicLoss("mse", mse_value, mse_gradient, True),
        SymbolicLoss("half_sse", half_sse_value, half_sse_gradient, False),
        SymbolicLoss("bce", bce_value, bce_gradient, True, "sigmoid", bce_value_from_logits, bce_delta_from_logits),
        SymbolicLoss("cce", cce_value, cce_gradient, True, "softmax", cce_value_from_logits, cce_delta_from_logits),
    )
}


# ---- identity proofs -----------------------------------------------------------------------------


# SymPy is imported where the proofs need it, not with this module: the exact oracle only uses the twins
# (with SymEngine), and importing SymPy costs every campaign worker and ``verify`` about a second.


def _simplifies_to_zero(expr: sympy.Expr) -> bool:
    import sympy

    if expr == 0:
        return True
    for attempt in (
        lambda e: sympy.simplify(e),
        lambda e: sympy.simplify(sympy.expand_log(e.rewrite(sympy.exp), force=True)),
        lambda e: sympy.simplify(sympy.powsimp(sympy.expand(e.rewrite(sympy.exp)), force=True)),
    ):
        if attempt(expr) == 0:
            return True
    # A difference of logarithms: e^expr = 1 proves expr = 0 for the real-valued expressions used here.
    return bool(sympy.simplify(sympy.exp(expr.rewrite(sympy.exp))) == 1)


def _kinks_of(expr: sympy.Expr, variable: sympy.Symbol) -> set[sympy.Expr]:
    """Points where a branch of ``expr`` switches: roots of Piecewise conditions, Max/Min and Abs arguments."""
    import sympy

    points: set[sympy.Expr] = set()
    for node in sympy.preorder_traversal(expr):
        candidates: list[sympy.Expr] = []
        if isinstance(node, sympy.Piecewise):
            candidates = [c.lhs - c.rhs for _, c in node.args if isinstance(c, sympy.core.relational.Relational)]
        elif isinstance(node, (sympy.Max, sympy.Min)):
            candidates = [a - b for a in node.args for b in node.args if a != b]
        elif isinstance(node, (sympy.Abs, sympy.Heaviside, sympy.sign)):
            candidates = [node.args[0]]
        for candidate in candidates:
            if variable in candidate.free_symbols:
                points.update(sympy.solve(candidate, variable))
    return points


def _branches() -> tuple[type, ...]:
    import sympy

    return (sympy.Piecewise, sympy.Max, sympy.Min, sympy.Abs, sympy.Heaviside, sympy.sign)


def is_identity(
    lhs: sympy.Expr, rhs: sympy.Expr, variables: Sequence[sympy.Symbol] = (), *, at_kinks: bool = True
) -> bool:
    """True when ``lhs ≡ rhs`` is proved for every real value of ``variables``.

    Expressions with branches (Piecewise, Max, Abs of one variable) are split at their kinks: the
    difference must simplify to 0 on each open interval *and* vanish exactly at each kink, so a
    derivative convention at the kink (relu'(0) = 0) is part of the proof, not glossed over.
    ``at_kinks=False`` proves the identity on the open intervals only (for a derivative that SymPy
    itself leaves undetermined at a kink, such as Heaviside(0) from d/dz Max(z, 0)).
    """
    import sympy

    diff = sympy.sympify(lhs - rhs)
    branched = diff.has(*_branches())
    if not branched:
        return _simplifies_to_zero(diff)
    if len(variables) != 1:
        raise ValueError("branched identities are proved for one variable at a time")
    (x,) = variables
    kinks = sorted(_kinks_of(diff, x), key=lambda p: float(p))
    for point in kinks if at_kinks else []:
        if not _simplifies_to_zero(diff.subs(x, point)):
            return False
    # One representative per open interval between kinks, as a shifted positive symbol.
    t = sympy.Symbol("t", positive=True)
    bounds = [sympy.S(k) for k in kinks]
    pieces = [bounds[0] - t] if bounds else [t, -t]
    if bounds:
        pieces += [bounds[-1] + t]
        pieces += [lo + (hi - lo) * t / (1 + t) for lo, hi in itertools.pairwise(bounds)]
    for substitute in pieces:
        piece = sympy.piecewise_fold(diff.subs(x, substitute))
        piece = sympy.simplify(piece)
        if piece.has(*_branches()) or not _simplifies_to_zero(piece):
            return False
    return True
