"""Symbolic identity proofs: every derivative the reference uses is the derivative of its function.

Two halves.  The algebra: SymPy differentiates each twin in :mod:`oracles.symbolic` and
:func:`oracles.symbolic.is_identity` proves the result equal to the reference's derivative formula (kinks
included).  The bridge: the reference's NumPy functions are evaluated beside those formulas at many
random points, so the formulas proved are the ones the code computes.  Planted wrong formulas must fail
both halves.
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np
import pytest
import sympy

from oracles import symbolic
from oracles.symbolic import ACTIVATIONS, LOSSES, is_identity
from reference_impl.activations import ACTIVATIONS as NUMPY_ACTIVATIONS
from reference_impl.losses import LOSSES as NUMPY_LOSSES
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES

z = sympy.Symbol("z", real=True)
ELEMENTWISE = [name for name in ACTIVATION_NAMES if name != "softmax"]
BRIDGE_RTOL = 1e-13
BRIDGE_DPS = 50


def _matrix(prefix: str, n: int, m: int, **assumptions: bool) -> list[list[sympy.Symbol]]:
    return [[sympy.Symbol(f"{prefix}{i}{k}", **assumptions) for k in range(m)] for i in range(n)]


def test_every_name_has_a_twin() -> None:
    assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)
    assert set(LOSSES) == set(LOSS_NAMES)


# ---- the algebra ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_of_the_exact_twin_is_the_reference_derivative(name: str) -> None:
    twin = ACTIVATIONS[name]
    assert twin.exact is not None and twin.reference_derivative is not None
    derivative = sympy.diff(twin.exact(z, sympy), z)
    assert is_identity(derivative, twin.reference_derivative(z, sympy), [z])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_exact_twin_is_the_reference_function(name: str) -> None:
    twin = ACTIVATIONS[name]
    assert twin.exact is not None and twin.reference_function is not None
    assert is_identity(twin.exact(z, sympy), twin.reference_function(z, sympy), [z])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_of_the_reference_function_away_from_kinks(name: str) -> None:
    # At a kink SymPy itself leaves d/dz max(z, 0) as Heaviside(0) = 1/2; the convention is proved
    # on the exact twin above and in test_kink_conventions, so only the open intervals are claimed here.
    twin = ACTIVATIONS[name]
    assert twin.reference_function is not None and twin.reference_derivative is not None
    derivative = sympy.diff(twin.reference_function(z, sympy), z)
    assert is_identity(derivative, twin.reference_derivative(z, sympy), [z], at_kinks=not twin.kinks)


@pytest.mark.parametrize(("name", "expected"), [("relu", 0), ("leaky_relu", sympy.Rational(1, 100))])
def test_kink_conventions(name: str, expected: sympy.Expr) -> None:
    exact = ACTIVATIONS[name].exact
    assert exact is not None
    assert sympy.diff(exact(z, sympy), z).subs(z, 0) == expected


def test_the_exact_twins_are_the_textbook_functions() -> None:
    assert is_identity(symbolic.tanh_exact(z, sympy), sympy.tanh(z))
    assert is_identity(symbolic.sigmoid_exact(z, sympy), 1 / (1 + sympy.exp(-z)))
    assert is_identity(symbolic.softplus_exact(z, sympy), sympy.log(1 + sympy.exp(z)))


def _sigmoid(x: sympy.Expr) -> sympy.Expr:
    return symbolic.sigmoid_exact(x, sympy)


@pytest.mark.parametrize(
    ("description", "function", "wrong_derivative"),
    [
        ("tanh' = 1 - tanh", sympy.tanh, lambda x: 1 - sympy.tanh(x)),
        ("sigmoid' = sigmoid", _sigmoid, _sigmoid),
        ("softplus' = tanh", lambda x: symbolic.softplus_exact(x, sympy), sympy.tanh),
        ("relu'(0) = 1", lambda x: symbolic.relu_exact(x, sympy), lambda x: sympy.Piecewise((1, x >= 0), (0, True))),
        (
            "leaky'(0) = 0",
            lambda x: symbolic.leaky_relu_exact(x, sympy),
            lambda x: sympy.Piecewise((1, x > 0), (0, sympy.Eq(x, 0)), (sympy.Rational(1, 100), True)),
        ),
    ],
)
def test_a_planted_wrong_derivative_fails_the_identity(
    description: str, function: Callable[[sympy.Expr], sympy.Expr], wrong_derivative: Callable[[sympy.Expr], sympy.Expr]
) -> None:
    assert not is_identity(sympy.diff(function(z), z), wrong_derivative(z), [z]), description


def test_softmax_is_shift_invariant_and_its_vjp_is_the_jacobian_transpose() -> None:
    zs = list(sympy.symbols("z0:3", real=True))
    g = list(sympy.symbols("g0:3", real=True))
    shift = sympy.Symbol("shift", real=True)
    exact = symbolic.softmax_exact(zs, sympy)
    for shifted, plain in zip(symbolic.softmax_reference(zs, sympy, shift), exact, strict=True):
        assert is_identity(shifted, plain)
    for shifted, plain in zip(
        symbolic.log_softmax_reference(zs, sympy, shift), symbolic.log_softmax_exact(zs, sympy), strict=True
    ):
        assert is_identity(shifted, plain)
    jacobian_transpose = [sum(g[i] * sympy.diff(exact[i], zs[j]) for i in range(3)) for j in range(3)]
    vjp = symbolic.softmax_vjp_reference(zs, g, sympy, shift)
    for from_diff, reference in zip(jacobian_transpose, vjp, strict=True):
        assert is_identity(from_diff, reference)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_gradient_is_the_derivative_of_the_loss(name: str) -> None:
    loss = LOSSES[name]
    A, Y = _matrix("a", 2, 2, positive=True), _matrix("y", 2, 2, real=True)
    value, gradient = loss.value(A, Y, sympy), loss.gradient(A, Y, sympy)
    for i in range(2):
        for k in range(2):
            assert is_identity(sympy.diff(value, A[i][k]), gradient[i][k]), (i, k)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_over_a_batch_is_the_declared_sum_of_examples(name: str) -> None:
    # The oracle compiles one example and combines the batch as c · Σ_k ℓ_k: this is that claim.
    loss = LOSSES[name]
    A, Y = _matrix("a", 2, 3, positive=True), _matrix("y", 2, 3, real=True)
    per_example = sum(loss.value([[row[k]] for row in A], [[row[k]] for row in Y], sympy) for k in range(3))
    scale = sympy.Rational(1, 3) if loss.mean_over_batch else 1
    assert is_identity(loss.value(A, Y, sympy), scale * per_example)


def test_fused_sigmoid_bce_shortcut() -> None:
    loss = LOSSES["bce"]
    assert loss.value_from_logits is not None and loss.delta_from_logits is not None
    Z, Y = _matrix("z", 2, 2, real=True), _matrix("y", 2, 2, real=True)
    S = [[symbolic.sigmoid_exact(entry, sympy) for entry in row] for row in Z]
    unfused = loss.value(S, Y, sympy)
    assert is_identity(loss.value_from_logits(Z, Y, sympy), unfused)
    shortcut = loss.delta_from_logits(Z, Y, sympy)  # (σ(z) − y)/m
    for i in range(2):
        for k in range(2):
            assert is_identity(sympy.diff(unfused, Z[i][k]), shortcut[i][k], [Z[i][k]])


def test_fused_softmax_cce_shortcut_keeps_the_target_sum() -> None:
    loss = LOSSES["cce"]
    assert loss.value_from_logits is not None and loss.delta_from_logits is not None
    # Targets are free symbols: columns need not sum to 1, so the Σy factor is part of the proof.
    Z, Y = _matrix("z", 3, 2, real=True), _matrix("y", 3, 2, real=True)
    columns = [symbolic.softmax_exact([Z[i][k] for i in range(3)], sympy) for k in range(2)]
    P = [[columns[k][i] for k in range(2)] for i in range(3)]
    unfused = loss.value(P, Y, sympy)
    assert is_identity(loss.value_from_logits(Z, Y, sympy), unfused)
    shortcut = loss.delta_from_logits(Z, Y, sympy)  # (softmax(z)·Σy − y)/m
    for i in range(3):
        for k in range(2):
            assert is_identity(sympy.diff(unfused, Z[i][k]), shortcut[i][k])
    textbook = [[P[i][k] - Y[i][k] for k in range(2)] for i in range(3)]  # p − y, valid only when Σy = 1
    assert not is_identity(sympy.diff(unfused, Z[0][0]), textbook[0][0] / 2)


# ---- the bridge to the NumPy code ----------------------------------------------------------------


def _evaluate(expr: sympy.Expr, symbols: list[sympy.Symbol], points: np.ndarray) -> np.ndarray:
    """``expr`` at each row of ``points`` ``(n_points, len(symbols))``, at 50 digits, as float64."""
    fn = sympy.lambdify(symbols, expr, modules="mpmath")
    with mpmath.workdps(BRIDGE_DPS):
        return np.array([float(fn(*(mpmath.mpf(float(v)) for v in row))) for row in points])


def bridge_mismatch(numpy_values: np.ndarray, symbolic_values: np.ndarray, floor: float = 0.0) -> float:
    """Worst |numpy − symbolic| / max(|symbolic|, floor) (0/0 = 0).

    ``floor`` is the size of the terms a formula subtracts (σ(z) − y with σ, y ≤ 1): float64 can only
    be relative to that, not to a difference that cancels.
    """
    diff = np.abs(numpy_values - symbolic_values)
    scale = np.maximum(np.abs(symbolic_values), floor)
    return float(np.max(np.where(diff == 0, 0.0, diff / np.where(scale > 0, scale, 1e-300))))


def _points(rng: np.random.Generator, n: int, span: float) -> np.ndarray:
    # Exact kinks and a spread of magnitudes: 0, tiny, moderate and wide.
    fixed = np.array([0.0, 1e-300, -1e-300, 1e-8, -1e-8])
    return np.concatenate([fixed, rng.uniform(-span, span, size=n), rng.standard_normal(n)])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_numpy_activation_matches_its_symbolic_function_and_derivative(name: str) -> None:
    twin, code = ACTIVATIONS[name], NUMPY_ACTIVATIONS[name]
    assert twin.reference_function and twin.reference_derivative and twin.exact and code.derivative
    rng = np.random.default_rng([7, ELEMENTWISE.index(name)])
    values = _points(rng, 60, 30.0)
    column = values[:, None]
    function = _evaluate(twin.reference_function(z, sympy), [z], column)
    assert bridge_mismatch(code.function(values[None, :])[0], function) <= BRIDGE_RTOL
    exact = _evaluate(twin.exact(z, sympy), [z], column)
    # 1 − 2/(1 + e^{2z}) is accurate to the working precision absolutely, not relatively, at z ≈ 1e-300.
    assert bridge_mismatch(code.function(values[None, :])[0], exact, floor=1e-40) <= BRIDGE_RTOL
    # The derivative formulas 1 − tanh² and s(1 − s) cancel in float64 beyond |z| ≈ 3: compare where
    # the formula is well conditioned, which is all the bridge needs (the algebra is proved above).
    derivative_points = _points(rng, 60, 3.0)
    derivative = _evaluate(twin.reference_derivative(z, sympy), [z], derivative_points[:, None])
    assert bridge_mismatch(code.derivative(derivative_points[None, :])[0], derivative) <= BRIDGE_RTOL


def test_a_planted_numpy_derivative_bug_fails_the_bridge() -> None:
    values = _points(np.random.default_rng(3), 40, 3.0)
    derivative = _evaluate(ACTIVATIONS["tanh"].reference_derivative(z, sympy), [z], values[:, None])  # type: ignore[misc]
    assert bridge_mismatch(1.0 - np.tanh(values), derivative) > 1e-3


def test_numpy_softmax_matches_the_symbolic_softmax() -> None:
    zs = list(sympy.symbols("z0:4", real=True))
    points = np.random.default_rng(5).uniform(-40, 40, size=(30, 4))
    code = NUMPY_ACTIVATIONS["softmax"].function(points.T).T
    for i, expr in enumerate(symbolic.softmax_exact(zs, sympy)):
        assert bridge_mismatch(code[:, i], _evaluate(expr, zs, points)) <= BRIDGE_RTOL


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_numpy_loss_matches_its_symbolic_value_gradient_and_fused_forms(name: str) -> None:
    loss, code = LOSSES[name], NUMPY_LOSSES[name]
    n, m = 3, 2
    rng = np.random.default_rng([11, LOSS_NAMES.index(name)])
    A, Y, Z = _matrix("a", n, m, positive=True), _matrix("y", n, m, real=True), _matrix("z", n, m, real=True)
    symbols = [s for M in (A, Y, Z) for row in M for s in row]
    for _ in range(20):
        a = rng.uniform(0.05, 0.95, size=(n, m)) if name in ("bce", "cce") else rng.normal(size=(n, m))
        y = rng.dirichlet(np.ones(n), size=m).T if name == "cce" else rng.uniform(0, 1, size=(n, m))
        logits = rng.uniform(-20, 20, size=(n, m))
        point = np.concatenate([a.ravel(), y.ravel(), logits.ravel()])[None, :]
        terms = float(max(np.abs(a).max(), np.abs(y).max())) / m  # a − y terms of the mse/half_sse gradients
        value = _evaluate(loss.value(A, Y, sympy), symbols, point)
        assert bridge_mismatch(np.array([code.value(a, y)]), value) <= BRIDGE_RTOL
        gradient = loss.gradient(A, Y, sympy)
        got = code.gradient(a, y)
        for i in range(n):
            for k in range(m):
                expected = _evaluate(gradient[i][k], symbols, point)
                assert bridge_mismatch(got[i : i + 1, k], expected, terms) <= BRIDGE_RTOL
        if loss.value_from_logits is None or loss.delta_from_logits is None:
            assert code.value_from_logits is None and code.delta_from_logits is None
            continue
        assert code.value_from_logits is not None and code.delta_from_logits is not None
        fused = _evaluate(loss.value_from_logits(Z, Y, sympy), symbols, point)
        assert bridge_mismatch(np.array([code.value_from_logits(logits, y)]), fused) <= BRIDGE_RTOL
        delta = loss.delta_from_logits(Z, Y, sympy)
        got = code.delta_from_logits(logits, y)
        for i in range(n):
            for k in range(m):
                expected = _evaluate(delta[i][k], symbols, point)
                assert bridge_mismatch(got[i : i + 1, k], expected, 1.0 / m) <= BRIDGE_RTOL
