"""Activations and loss values for real and complex arguments alike (units on axis 0).

The complex step needs every activation and loss to accept complex arguments: no ``abs``/``max`` of a
complex value; the stable sigmoid and softplus branch on the sign of the *real* part; log-sum-exp
shifts by the maximum real part; relu/leaky_relu choose their branch by the real part.  This is a
separate implementation from ``reference_impl``: an oracle must not share the subject's code.
"""

from __future__ import annotations

import numpy as np

from oracles.numeric.parallel import scratch
from reference_impl.spec import Array, Spec

LEAKY_SLOPE = 0.01


def _real(z: np.ndarray) -> np.ndarray:
    return z.real if np.iscomplexobj(z) else z


def _sign_of_real(z: np.ndarray) -> np.ndarray:
    return np.where(_real(z) >= 0, 1.0, -1.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    # exp(−s·z) has a non-positive real part: no overflow, for real and complex z alike.
    s = _sign_of_real(z)
    e = np.exp(-s * z)
    return np.where(s > 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log1p(w: np.ndarray) -> np.ndarray:
    """log(1 + w), accurate for small |w| also when w is complex (NumPy's complex log1p is not)."""
    if not np.iscomplexobj(w):
        return np.log1p(w)
    a, b = w.real, w.imag
    # |1 + w|² − 1 = a(2 + a) + b², formed without cancellation.
    return 0.5 * np.log1p(a * (2.0 + a) + b * b) + 1j * np.arctan2(b, 1.0 + a)


def softplus(z: np.ndarray) -> np.ndarray:
    # log(1 + e^z) = [z if Re z ≥ 0] + log1p(e^{−s z}), exact and overflow-free.
    s = _sign_of_real(z)
    return np.where(s > 0, z, 0.0) + log1p(np.exp(-s * z))


def sech_squared(x: Array) -> Array:
    """sech² x = 1 − tanh² x for real x, formed from e^{−2|x|} so it keeps its digits where tanh x rounds to ±1."""
    q = np.abs(x)
    q *= -2.0
    np.exp(q, out=q)
    denominator = q + 1.0
    denominator *= denominator
    q *= 4.0
    q /= denominator  # 4e^{−2|x|} / (1 + e^{−2|x|})²
    return q


def tanh(z: np.ndarray) -> np.ndarray:
    """tanh for real or complex z; complex via real functions (NumPy's complex tanh is ~20x slower).

    With t = tanh x, q = 1 − t² = sech² x (formed from e^{−2|x|}, so it keeps its digits when t rounds
    to ±1), s = sin y and c = cos y, the addition theorem gives exactly
    tanh(x + iy) = (t + i·s·c·q) / (c² + t²·s²).
    When every |y| < 1e-8 (the complex step's imaginary parts), sin y, cos y and the denominator round
    to y, 1 and 1 in float64, so the same formula is evaluated without the libm calls.
    """
    if not np.iscomplexobj(z):
        return np.tanh(z)
    x, y = z.real, z.imag
    out = np.empty(z.shape, dtype=np.complex128)
    np.tanh(x, out=out.real)
    q = sech_squared(x)
    if y.size == 0 or float(np.abs(y).max()) < 1e-8:
        np.multiply(y, q, out=out.imag)
        return out
    t = out.real.copy()
    s, c = np.sin(y), np.cos(y)
    denominator = c * c + t * t * s * s
    out.real = t / denominator
    out.imag = s * c * q / denominator
    return out


def active(z: np.ndarray, zero_active: bool) -> np.ndarray:
    """The branch of relu/leaky_relu: decided by the real part; at exactly 0 by the convention."""
    r = _real(z)
    return r >= 0 if zero_active else r > 0


def log_softmax(z: np.ndarray) -> np.ndarray:
    shift = _real(z).max(axis=0, keepdims=True)
    shifted = z - shift
    return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))


def activate(name: str, z: np.ndarray, zero_active: bool = False) -> np.ndarray:
    """g(z) for any array with units on axis 0; ``zero_active`` picks relu'(0)=1 instead of 0."""
    if name == "identity":
        return z
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return tanh(z)
    if name == "relu":
        return np.where(active(z, zero_active), z, 0.0)
    if name == "leaky_relu":
        return np.where(active(z, zero_active), z, LEAKY_SLOPE * z)
    if name == "softplus":
        return softplus(z)
    if name == "softmax":
        return np.exp(log_softmax(z))
    raise KeyError(f"unknown activation {name!r}")


def total_per_member(terms: np.ndarray) -> np.ndarray:
    """Σ over units and examples of ``(n, B, m)`` terms -> ``(B,)``.

    Units first (whole contiguous rows), then the short example axis: several times faster than one
    reduction over axes (0, 2), whose inner loops have length m.
    """
    return terms.sum(axis=0).sum(axis=-1)


def tiled_targets(Y: Array, batch: int) -> Array:
    """``Y`` ``(n_L, m)`` repeated for ``batch`` members ``(n_L, batch, m)``, contiguous."""
    return np.tile(Y, (1, batch)).reshape(Y.shape[0], batch, Y.shape[1])


def loss_values(
    spec: Spec, z_out: np.ndarray, a_out: np.ndarray, Y: Array, targets: np.ndarray | None = None
) -> np.ndarray:
    """Loss per batch member.  ``z_out``/``a_out`` ``(n_L, B, m)``, ``Y`` ``(n_L, m)`` -> ``(B,)``.

    ``targets``, if given, is ``tiled_targets(Y, B)``: with it every elementwise operation runs over
    contiguous rows instead of broadcasting ``Y`` with inner loops of length m.
    """
    m = Y.shape[1]
    if targets is None:
        targets = Y[:, None, :]
    if spec.loss in ("mse", "half_sse"):
        residual = np.subtract(a_out, targets, out=scratch("residual", a_out.shape, np.result_type(a_out, targets)))
        residual *= residual
        total = total_per_member(residual)
        return total / m if spec.loss == "mse" else 0.5 * total
    if spec.loss == "bce":
        # From the logits: −[y log σ(z) + (1−y) log(1−σ(z))] = softplus(z) − y z, finite for any z.
        return total_per_member(softplus(z_out) - targets * z_out) / m
    if spec.loss == "cce":
        return -total_per_member(targets * log_softmax(z_out)) / m
    raise KeyError(f"unknown loss {spec.loss!r}")
