"""SymPy identities behind the audit's symbolic claims: generic functions, exact arithmetic.

Each helper returns a :class:`SymbolicResult` whose ``residual`` is the simplified difference between
the true derivative (computed by SymPy's chain rule) and the article's formula; "0" means an identity.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from reports.audit.core import SymbolicResult

MatrixFormula = Callable[[sp.Matrix, sp.Matrix, sp.Matrix], sp.Matrix]


def scalar_output_rule(names_dl_da: bool) -> SymbolicResult:
    """§3.3 for one output unit: ŷ = a = f(z), L = L(ŷ).

    ``names_dl_da``: the left side is ∂L/∂a (what the article writes), else ∂L/∂z (what δ is).
    """
    z = sp.Symbol("z")
    f, loss = sp.Function("f"), sp.Function("L")
    a = sp.Symbol("a")
    dl_dyhat = sp.diff(loss(a), a).subs(a, f(z))  # ∂L/∂ŷ at ŷ = f(z)
    article = dl_dyhat * sp.diff(f(z), z)
    if names_dl_da:
        lhs = sp.diff(loss(a), a).subs(a, f(z))
        statement = "∂L/∂a − ∂L/∂ŷ·f'(z), with a = ŷ = f(z)"
    else:
        lhs = sp.diff(loss(f(z)), z)
        statement = "∂L(f(z))/∂z − ∂L/∂ŷ·f'(z)"
    residual = sp.simplify(lhs - article)
    return SymbolicResult(residual == 0, statement, str(residual))


def recursion_rule(formula: MatrixFormula, n_prev: int = 3, n: int = 2, statement: str = "") -> SymbolicResult:
    """δ^[l-1] for a layer ``z = W g(z_prev) + b`` with W ``(n, n_prev)``, against ``formula(W, δ, g'(z_prev))``.

    L is any function with ∂L/∂z = δ; L = δᵀz has exactly that gradient, so the chain rule is exact.
    A formula that cannot even be evaluated (a shape error) is reported as such.
    """
    g = sp.Function("g")
    z_prev = sp.symbols(f"zp0:{n_prev}")
    W = sp.Matrix(n, n_prev, lambda i, j: sp.Symbol(f"w{i}{j}"))
    delta = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"d{i}"))
    z = W * sp.Matrix([g(v) for v in z_prev])
    loss = (delta.T * z)[0, 0]
    true = sp.Matrix([sp.diff(loss, v) for v in z_prev])
    g_prime = sp.Matrix([sp.diff(g(v), v) for v in z_prev])
    label = f"{statement} (W {n}×{n_prev}, generic g)"
    try:
        claimed = formula(W, delta, g_prime)
    except (sp.ShapeError, ValueError, TypeError) as exc:
        return SymbolicResult(False, label, f"not evaluable: {type(exc).__name__}: {exc}")
    if claimed.shape != true.shape:
        return SymbolicResult(False, label, f"shape {claimed.shape} where δ^[l-1] is {true.shape}")
    residual = sp.simplify(true - claimed)
    holds = residual == sp.zeros(*true.shape)
    return SymbolicResult(bool(holds), label, "0" if holds else str(list(residual)))
