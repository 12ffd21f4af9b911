"""The exact-derivative oracle: agreement with the reference, kinks, and that its precision is real."""

from __future__ import annotations

from fractions import Fraction
from typing import SupportsFloat

import hypothesis
import mpmath
import numpy as np
import pytest
import symengine as se
import sympy
from hypothesis import given, settings

from oracles import sympy_exact
from oracles.registry import get_oracle
from oracles.subjects import Subject, reference_subject
from oracles.verdicts.compare import check_case
from property_tests.strategies import cases, specs
from reference_impl import Case, Spec, gradients, loss, run

SMALL = specs(max_depth=3, max_width=4)


def _explain(records: list) -> str:
    return "\n".join(r.explain() for r in records)


SATURATED_SOFTMAX = Case(
    Spec((1, 1, 3), ("identity", "softmax"), "cce"), batch=1, seed=1, param_scale=2.0, data_scale=3.0
)


@settings(max_examples=40)
@given(cases(SMALL, max_batch=4))
# Found by Hypothesis: p_true rounds next to 1, δ = p − y ≈ −3e-6 is formed from terms of size 1, and the
# float64 reference is 2e-11 off the exact value; only the magnitude floor (Ḡ) tells that from a bug.
@hypothesis.example(case=SATURATED_SOFTMAX)
def test_agrees_with_the_reference_on_random_architectures(case: Case) -> None:
    records = check_case(case, reference_subject(), ["sympy_exact"])
    # Gradients and, because the reference exposes them, every layer's δ.
    assert {r.check for r in records} == {"gradient", "delta"}
    assert not any(r.failed for r in records), _explain(records)


@settings(max_examples=15)
@given(cases(specs(max_depth=3, max_width=4, activations=("relu", "leaky_relu", "identity")), kinks=True))
def test_agrees_exactly_on_the_kink(case: Case) -> None:
    # Pre-activations placed exactly on 0 evaluate to exactly 0 at 200 bits and take the convention's branch.
    records = check_case(case, reference_subject(), ["sympy_exact"])
    assert not any(r.failed for r in records), _explain(records)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_kink_sites_are_really_on_the_kink_and_follow_the_convention(activation: str) -> None:
    case = Case(Spec((3, 4, 2), (activation, "identity"), "mse"), batch=3, seed=4, kinks=True)
    assert case.problem.kink_sites, "the case must put a pre-activation on 0"
    params, X, Y = case.arrays()
    exact = sympy_exact.evaluate(case.spec, params, X, Y)
    tape, backward, _ = run(case.spec, params, X, Y)
    for layer, unit, example in case.problem.kink_sites:
        assert tape.z(layer)[unit, example] == 0.0
    for name, block in backward.grads.items():
        np.testing.assert_allclose(exact.grads[name], block, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(("activation", "slope_at_zero"), [("relu", 0.0), ("leaky_relu", 0.01)])
def test_derivative_at_exactly_zero_is_the_convention(activation: str, slope_at_zero: float) -> None:
    # z = 1·3 − 3 = 0 and y = 1: ∂L/∂b = (g(0) − y)·g'(0) = −g'(0), so the convention is read off directly.
    spec = Spec((1, 1), (activation,), "half_sse")
    params = {"W1": np.array([[1.0]]), "b1": np.array([[-3.0]])}
    output = sympy_exact.evaluate(spec, params, np.array([[3.0]]), np.array([[1.0]]))
    assert output.grads["b1"][0, 0] == -slope_at_zero
    assert output.grads["W1"][0, 0] == -3.0 * slope_at_zero


@pytest.mark.parametrize(
    "spec",
    [
        Spec((2, 3, 2), ("sigmoid", "sigmoid"), "bce"),
        Spec((2, 3, 3), ("softplus", "softmax"), "cce"),
        Spec((2, 2), ("tanh",), "half_sse"),
    ],
)
def test_loss_value_matches_the_reference(spec: Spec) -> None:
    params, X, Y = Case(spec, batch=3, seed=2).arrays()
    output = sympy_exact.evaluate(spec, params, X, Y)
    assert output.loss == pytest.approx(loss(spec, params, X, Y), rel=1e-14)


def test_stable_from_logits_at_fifty() -> None:
    # |z| = 50 on the output of bce and cce: no overflow, and δ = (σ(z) − y)/m to full precision.
    spec = Spec((1, 2), ("sigmoid",), "bce")
    params = {"W1": np.array([[50.0], [-50.0]]), "b1": np.zeros((2, 1))}
    X, Y = np.ones((1, 1)), np.array([[0.0], [1.0]])
    output = sympy_exact.evaluate(spec, params, X, Y)
    with mpmath.workdps(60):
        expected = [float(1 / (1 + mpmath.exp(-50)) - 0), float(1 / (1 + mpmath.exp(50)) - 1)]
    np.testing.assert_allclose(output.grads["b1"][:, 0], expected, rtol=1e-15)
    assert output.grads["b1"][0, 0] == pytest.approx(1.0 - float(mpmath.exp(-50)), rel=0, abs=1e-16)
    spec = Spec((1, 3), ("softmax",), "cce")
    params = {"W1": np.array([[50.0], [-50.0], [0.0]]), "b1": np.zeros((3, 1))}
    Y = np.array([[0.2], [0.3], [0.5]])
    np.testing.assert_allclose(
        sympy_exact.evaluate(spec, params, X, Y).grads["W1"], gradients(spec, params, X, Y)["W1"], rtol=1e-14
    )


def test_high_precision_keeps_digits_float64_loses() -> None:
    # a = w x + b cancels in float64 (1e8 + 9e-5 − 1e8); at 200 bits it is exact.  The exact rational
    # gradient 2(a − y)/m with y = 0 is then rounded once, so the oracle returns it to the last bit.
    spec = Spec((1, 1), ("identity",), "mse")
    w, x, b = 1.0 + 2.0**-40, 1e8, -1e8
    params = {"W1": np.array([[w]]), "b1": np.array([[b]])}
    X, Y = np.array([[x]]), np.array([[0.0]])
    a_exact = Fraction(w) * Fraction(x) + Fraction(b)
    exact_db = float(2 * a_exact)
    exact_dw = float(2 * a_exact * Fraction(x))
    output = sympy_exact.evaluate(spec, params, X, Y)
    assert output.grads["b1"][0, 0] == exact_db
    assert output.grads["W1"][0, 0] == exact_dw
    # The same symbolic derivative evaluated in float64 (SymEngine's own Lambdify) loses ~4 digits.
    problem = sympy_exact.build_problem(spec, 1)
    inputs = [problem.parameters["W1"][0][0], problem.parameters["b1"][0][0], problem.X[0][0], problem.Y[0][0]]
    shift = problem.shifts[0][0][0]
    float64 = se.Lambdify([*inputs, shift], [se.diff(problem.loss, problem.parameters["b1"][0][0])])
    float64_db = float(np.asarray(float64([w, b, x, 0.0, 0.0])).ravel()[0])
    assert abs(float64_db - exact_db) / abs(exact_db) > 1e-6


def _rational(value: SupportsFloat) -> sympy.Rational:
    exact = Fraction(float(value))  # every float64 is an exact binary fraction
    return sympy.Rational(exact.numerator, exact.denominator)


def test_high_precision_matches_exact_rational_arithmetic() -> None:
    # Identity and relu layers with mse: the gradient is a rational function of the inputs, so SymPy
    # with exact Rationals gives the true value; the 200-bit result agrees to ~60 digits.
    spec = Spec((2, 3, 2), ("relu", "identity"), "mse")
    params, X, Y = Case(spec, batch=2, seed=8).arrays()
    ours = sympy_exact.evaluate_high_precision(spec, params, X, Y)
    rational = {f"W1_{i}_{j}": _rational(params["W1"][i, j]) for i in range(3) for j in range(2)}
    rational |= {f"W2_{i}_{j}": _rational(params["W2"][i, j]) for i in range(2) for j in range(3)}
    rational |= {f"b1_{i}": _rational(params["b1"][i, 0]) for i in range(3)}
    rational |= {f"b2_{i}": _rational(params["b2"][i, 0]) for i in range(2)}
    W1 = sympy.Matrix(3, 2, lambda i, j: rational[f"W1_{i}_{j}"])
    W2 = sympy.Matrix(2, 3, lambda i, j: rational[f"W2_{i}_{j}"])
    b1 = sympy.Matrix(3, 1, lambda i, _: sympy.Symbol(f"b1_{i}"))
    Xr = sympy.Matrix(2, 2, lambda i, k: _rational(X[i, k]))
    Yr = sympy.Matrix(2, 2, lambda i, k: _rational(Y[i, k]))
    Z1 = W1 * Xr + b1 * sympy.ones(1, 2)
    A1 = Z1.applyfunc(lambda v: sympy.Piecewise((v, v > 0), (0, True)))
    A2 = W2 * A1 + sympy.Matrix(2, 1, lambda i, _: rational[f"b2_{i}"]) * sympy.ones(1, 2)
    L = sum((Yr[i, k] - A2[i, k]) ** 2 for i in range(2) for k in range(2)) / 2
    values = {sympy.Symbol(f"b1_{i}"): rational[f"b1_{i}"] for i in range(3)}
    for i in range(3):
        truth = sympy.diff(L, sympy.Symbol(f"b1_{i}")).subs(values)
        assert truth.is_Rational
        with mpmath.workprec(400):
            assert abs(ours.grads["b1"][i][0] - mpmath.mpf(truth.p) / truth.q) <= mpmath.mpf(2) ** -190 * (
                1 + abs(mpmath.mpf(truth.p) / truth.q)
            )


@pytest.mark.parametrize(("activation", "z"), [("tanh", 40.0), ("tanh", -300.0), ("sigmoid", -300.0)])
def test_deep_saturation_keeps_full_relative_accuracy(activation: str, z: float) -> None:
    # tanh'(−300) = sech²(300) ≈ 1e-260 and σ'(−300) ≈ 5e-131: 1 − tanh² or σ(1 − σ) would give 0 even
    # at 200 bits; the exact twins' derivatives have no cancellation, so every digit survives.
    spec = Spec((1, 1), (activation,), "half_sse")
    params = {"W1": np.array([[1.0]]), "b1": np.array([[0.0]])}
    X, Y = np.array([[z]]), np.array([[0.0]])
    output = sympy_exact.evaluate(spec, params, X, Y)
    with mpmath.workdps(80):
        if activation == "tanh":
            expected = float(mpmath.tanh(z) * mpmath.sech(z) ** 2)
        else:
            s = 1 / (1 + mpmath.exp(-z))
            expected = float(s * s * (1 - s))
    assert expected != 0.0
    assert output.grads["b1"][0, 0] == pytest.approx(expected, rel=1e-15)


def test_bce_delta_deep_in_saturation() -> None:
    # δ = (σ(z) − y)/m with z = −600 and y = 0: σ(−600) ≈ 2.7e-261, relative accuracy kept.
    spec = Spec((1, 1), ("sigmoid",), "bce")
    params = {"W1": np.array([[600.0]]), "b1": np.array([[0.0]])}
    output = sympy_exact.evaluate(spec, params, np.array([[-1.0]]), np.array([[0.0]]))
    with mpmath.workdps(80):
        expected = float(1 / (1 + mpmath.exp(600)))
    assert output.grads["b1"][0, 0] == pytest.approx(expected, rel=1e-15)


def test_per_example_compilation_equals_the_whole_batch_expression() -> None:
    spec = Spec((2, 3, 2), ("tanh", "sigmoid"), "bce")
    params, X, Y = Case(spec, batch=3, seed=6).arrays()
    per_example = sympy_exact.evaluate_high_precision(spec, params, X, Y)
    whole = sympy_exact.evaluate_high_precision(spec, params, X, Y, per_example=False)
    with mpmath.workprec(sympy_exact.PRECISION_BITS + 50):
        bound = mpmath.mpf(2) ** -180
        pairs = [
            (a, b)
            for name, block in per_example.grads.items()
            for row_a, row_b in zip(block, whole.grads[name], strict=True)
            for a, b in zip(row_a, row_b, strict=True)
        ]
        pairs += [
            (a, b)
            for delta_a, delta_b in zip(per_example.deltas, whole.deltas, strict=True)
            for row_a, row_b in zip(delta_a, delta_b, strict=True)
            for a, b in zip(row_a, row_b, strict=True)
        ]
        pairs.append((per_example.loss, whole.loss))
        assert all(abs(a - b) <= bound * (1 + abs(b)) for a, b in pairs)


def test_the_compiled_derivative_is_cached_per_architecture() -> None:
    spec = Spec((3, 2, 2), ("softplus", "identity"), "half_sse")
    sympy_exact.clear_cache()
    first = sympy_exact.compiled(spec)
    assert sympy_exact.compiled(spec) is first
    a = sympy_exact.evaluate(spec, *Case(spec, batch=2, seed=1).arrays())
    b = sympy_exact.evaluate(spec, *Case(spec, batch=5, seed=2).arrays())  # another batch size: same entry
    assert sympy_exact.compiled(spec) is first
    assert not np.array_equal(a.grads["W1"], b.grads["W1"])


def test_supports_declares_its_tractability_limit() -> None:
    oracle = get_oracle("sympy_exact")
    assert oracle.kind == "exact"
    assert oracle.supports(Spec((10, 20, 10, 5), ("tanh", "relu", "sigmoid"), "mse"))  # 485 parameters
    assert oracle.supports(Spec((8,) * 9, ("tanh",) * 8, "mse"))  # 576 parameters, 8 layers
    too_big = Spec((30, 30, 10), ("tanh", "identity"), "mse")  # 1240 parameters
    assert not oracle.supports(too_big)
    assert "1240" in (oracle.why_unsupported(too_big) or "")
    too_deep = Spec((2,) * 10, ("tanh",) * 9, "mse")
    assert not oracle.supports(too_deep)
    assert "9" in (oracle.why_unsupported(too_deep) or "")
    # Piecewise layers: ≥ 500 parameters up to depth 5; deeper only while small (measured, see the module).
    piecewise = ("relu", "leaky_relu", "relu", "leaky_relu")
    assert oracle.supports(Spec((10,) * 6, (*piecewise, "identity"), "mse"))  # 550 parameters, 5 layers
    assert oracle.supports(Spec((4,) * 9, (*piecewise, *piecewise[:3], "identity"), "mse"))  # 160, 8 layers
    deep_relu = Spec((6,) * 9, (*piecewise, *piecewise[:3], "identity"), "mse")  # 336 parameters: minutes
    assert not oracle.supports(deep_relu)
    assert "relu" in (oracle.why_unsupported(deep_relu) or "")


def test_a_wrong_subject_is_caught_at_1e_minus_9() -> None:
    case = Case(Spec((3, 4, 2), ("tanh", "identity"), "mse"), batch=3, seed=2)

    def perturbed(spec: dict, params: dict, X: np.ndarray, Y: np.ndarray) -> dict:
        grads = gradients(spec, params, X, Y)
        grads["W1"][0, 0] += 1e-9 * np.abs(grads["W1"]).max()
        return grads

    records = check_case(case, Subject("perturbed", perturbed), ["sympy_exact"])
    assert [r.parameter for r in records if r.failed] == ["W1"]
