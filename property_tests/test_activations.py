from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reference_impl.activations import ACTIVATIONS, get_activation, softmax
from reference_impl.spec import ACTIVATION_NAMES

moderate = arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=st.floats(-30, 30))
extreme = arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 4)), elements=st.floats(-1e3, 1e3))


def test_registry_covers_every_name() -> None:
    assert set(ACTIVATIONS) == set(ACTIVATION_NAMES)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@given(z=extreme)
def test_no_overflow_or_nan_up_to_1e3(name: str, z: np.ndarray) -> None:
    act = get_activation(name)
    a = act.function(z)  # warnings are errors in this suite: an overflow would fail here
    assert np.all(np.isfinite(a))
    grad = act.vjp(z, a, np.ones_like(z) * 0.5 + np.arange(z.size).reshape(z.shape) / z.size)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", [n for n in ACTIVATION_NAMES if n != "softmax"])
@given(z=moderate)
def test_elementwise_vjp_is_derivative_times_cotangent(name: str, z: np.ndarray) -> None:
    act = get_activation(name)
    assert act.derivative is not None
    cotangent = np.linspace(-1.0, 2.0, z.size).reshape(z.shape)
    np.testing.assert_array_equal(act.vjp(z, act.function(z), cotangent), cotangent * act.derivative(z))


@given(z=moderate)
def test_softmax_vjp_equals_the_explicit_jacobian(z: np.ndarray) -> None:
    a = softmax(z)
    cotangent = np.cos(np.arange(z.size, dtype=float)).reshape(z.shape)
    got = get_activation("softmax").vjp(z, a, cotangent)
    for k in range(z.shape[1]):
        jacobian = np.diag(a[:, k]) - np.outer(a[:, k], a[:, k])
        np.testing.assert_allclose(got[:, k], jacobian.T @ cotangent[:, k], rtol=1e-12, atol=1e-15)


def test_kink_conventions() -> None:
    zero = np.zeros((1, 1))
    assert get_activation("relu").derivative(zero)[0, 0] == 0.0  # type: ignore[misc]
    assert get_activation("leaky_relu").derivative(zero)[0, 0] == 0.01  # type: ignore[misc]


def test_softplus_is_exact_where_a_threshold_switch_would_not_be() -> None:
    z = np.array([[20.0, 30.0, -40.0]])
    exact = np.array([[20.0 + np.log1p(np.exp(-20.0)), 30.0 + np.log1p(np.exp(-30.0)), np.log1p(np.exp(-40.0))]])
    np.testing.assert_array_equal(get_activation("softplus").function(z), exact)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softplus"])
@given(z=st.floats(-700, 700))
def test_smooth_derivatives_are_accurate_to_a_few_ulps_even_when_saturated(name: str, z: float) -> None:
    """Against 40-digit mpmath: no cancellation in σ(1 − σ) or 1 − tanh² form."""
    mpmath.mp.dps = 40
    exact = {
        "sigmoid": lambda x: mpmath.exp(-x) / (1 + mpmath.exp(-x)) ** 2,
        "tanh": lambda x: mpmath.sech(x) ** 2,
        "softplus": lambda x: 1 / (1 + mpmath.exp(-x)),
    }[name](mpmath.mpf(z))
    derivative = get_activation(name).derivative
    assert derivative is not None
    got = float(derivative(np.array([[z]]))[0, 0])
    if exact < mpmath.mpf(2.0) ** -1000:  # the true value underflows float64: only ask for a tiny answer
        assert got < 1e-290
    else:
        assert abs(mpmath.mpf(got) - exact) <= 1e-14 * exact
