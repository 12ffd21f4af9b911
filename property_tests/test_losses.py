"""The fused shortcuts (sigmoid+bce ⇒ σ(z) − y, softmax+cce ⇒ p − y) against the unfused composition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.activations import get_activation
from reference_impl.losses import LOSSES, get_loss
from reference_impl.spec import LOSS_NAMES


def test_registry_covers_every_name() -> None:
    assert set(LOSSES) == set(LOSS_NAMES)


@st.composite
def logits_and_targets(draw: st.DrawFn, loss: str) -> tuple[np.ndarray, np.ndarray]:
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    Z = rng.normal(0, draw(st.sampled_from([0.5, 2.0, 8.0])), size=(n, m))
    Y = rng.dirichlet(np.ones(n), size=m).T if loss == "cce" else rng.uniform(0, 1, size=(n, m))
    return Z, Y


@pytest.mark.parametrize("name", ["bce", "cce"])
@given(data=st.data())
def test_fused_delta_equals_unfused_composition(name: str, data: st.DataObject) -> None:
    Z, Y = data.draw(logits_and_targets(name))
    loss = get_loss(name)
    assert loss.output_activation is not None and loss.delta_from_logits is not None
    act = get_activation(loss.output_activation)
    A = act.function(Z)
    unfused = act.vjp(Z, A, loss.gradient(A, Y))
    fused = loss.delta_from_logits(Z, Y)
    # The unfused form divides by A(1 − A), where 1 − A cancels as σ(z) → 1: its own rounding error is
    # ~eps/(A(1 − A)) relative, so that (not the shortcut) sets the bar, plus a 1e-9 floor.
    conditioning = 1.0 / (A * (1.0 - A)) if name == "bce" else np.ones_like(A)
    allowed = (1e-9 + 16 * np.finfo(float).eps * conditioning) * np.abs(unfused) + 1e-12
    assert np.all(np.abs(fused - unfused) <= allowed), (Z, Y)


@pytest.mark.parametrize("name", ["bce", "cce"])
@given(data=st.data())
def test_fused_value_equals_unfused_value(name: str, data: st.DataObject) -> None:
    Z, Y = data.draw(logits_and_targets(name))
    loss = get_loss(name)
    assert loss.output_activation is not None and loss.value_from_logits is not None
    A = get_activation(loss.output_activation).function(Z)
    fused, unfused = loss.value_from_logits(Z, Y), loss.value(A, Y)
    # log(1 − A) (bce) and log(A) are off by ~eps/(1 − A) and ~eps/A absolute once A has been rounded:
    # the unfused value's own error, which the fused form does not have.
    rounding = 16 * np.finfo(float).eps * float(np.sum(1.0 / A + (1.0 / (1.0 - A) if name == "bce" else 0.0)))
    assert abs(fused - unfused) <= 1e-9 * abs(fused) + rounding / Z.shape[1], (Z, Y)


def test_p_minus_y_is_only_right_for_normalised_targets() -> None:
    """The textbook shortcut assumes Σ y = 1; the reference keeps the exact form for other targets."""
    Z = np.array([[0.3], [-1.2], [2.0]])
    Y = np.array([[0.5], [0.5], [0.5]])  # sums to 1.5
    loss = get_loss("cce")
    assert loss.delta_from_logits is not None
    act = get_activation("softmax")
    A = act.function(Z)
    unfused = act.vjp(Z, A, loss.gradient(A, Y))
    np.testing.assert_allclose(loss.delta_from_logits(Z, Y), unfused, rtol=1e-12)
    assert not np.allclose((A - Y) / 1, unfused, rtol=1e-3)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_normalisations(name: str) -> None:
    A = np.full((2, 4), 0.25)
    Y = np.zeros((2, 4))
    Y[0] = 1.0
    loss = get_loss(name)
    value = loss.value(A, Y)
    expected = {
        "mse": (0.75**2 + 0.25**2) * 4 / 4,
        "half_sse": 0.5 * (0.75**2 + 0.25**2) * 4,
        "bce": -(np.log(0.25) + np.log(0.75)) * 4 / 4,
        "cce": -np.log(0.25) * 4 / 4,
    }[name]
    assert value == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("name", ["bce", "cce"])
def test_fused_forms_are_finite_at_extreme_logits(name: str) -> None:
    Z = np.array([[1e3, -1e3], [-1e3, 1e3]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]]) if name == "cce" else np.array([[0.0, 1.0], [1.0, 0.0]])
    loss = get_loss(name)
    assert loss.value_from_logits is not None and loss.delta_from_logits is not None
    assert np.isfinite(loss.value_from_logits(Z, Y))
    assert np.all(np.isfinite(loss.delta_from_logits(Z, Y)))
