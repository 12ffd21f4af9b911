"""The exponential-series route: a folded tanh/sigmoid layer after a rank-one step, with no exp per element.

A rank-one step x into a folded layer (see :class:`oracles.numeric.tape.RealLayers`), or into a
tanh/sigmoid output under mse/half_sse, uses e^{u+x} = e^u·e^x with e^x from its Taylor series, exact
to eps/32 for the tiny |x| of a numeric step: per run of one row, a matrix product with K ≤ 8 inner
terms (:func:`shifted_activation`).  This is an evaluation of exp at the perturbed point, not a
derivative: the loss values stay those at θ ± h (tests hold them to an explicit forward pass to 1e-13).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from oracles.numeric.parallel import scratch
from oracles.numeric.steps import EPS
from oracles.numeric.tape import FOLD_SCALE, BaseTape, run_bounds
from reference_impl.spec import Array, Spec

# e^{±700} is finite; beyond it r = 1/(1 + e^u) is 0 or 1 to double precision anyway.
EXP_CLAMP = 700.0


# At most this many terms of the exponential series in `shifted_activation` (then |x| ≤ 0.0247).
SERIES_MAX_TERMS = 8
# The series path needs runs of equal rows, each at least this long (a run is a batch of small products).
SERIES_MIN_RUN = 16


@dataclass(frozen=True)
class Series:
    """Layer l+1 evaluated through the exponential series of :func:`shifted_activation`.

    Its pre-activation, stored as u = s·z^[l+1] (s = −2 for tanh, −1 for sigmoid), moves by
    ``W[:, j]`` · Δa_j for a step in row j of layer l; ``exp_u`` ``(n, m)`` is e^u at the base point.
    For the output layer under mse/half_sse, a − y = ``residual_scale``·(r − ``residual_shift``) with
    r = 1/(1 + e^u): for tanh a = 2r − 1, so 2·(r − (1 + y)/2); for sigmoid a = r.
    """

    W: Array
    exp_u: Array
    residual_shift: Array | None = None
    residual_scale: float = 1.0


def series_for(spec: Spec, params: Mapping[str, Array], tape: BaseTape, Y: Array, layer: int) -> Series | None:
    """The series set-up for steps in layer ``layer`` (real arithmetic), or None where it does not apply."""
    following = layer + 1
    name = spec.activations[following - 1]
    if name not in FOLD_SCALE:
        return None
    scale = FOLD_SCALE[name]
    exp_u = np.exp(np.clip(scale * tape.z[following - 1], -EXP_CLAMP, EXP_CLAMP))
    W = scale * params[f"W{following}"]
    if following < spec.depth:
        return Series(W, exp_u)
    if spec.loss not in ("mse", "half_sse"):
        return None
    if name == "tanh":
        return Series(W, exp_u, (1.0 + Y) / 2.0, 2.0)
    return Series(W, exp_u, Y, 1.0)


def series_output_losses(spec: Spec, r: np.ndarray, series: Series) -> np.ndarray:
    """mse/half_sse per perturbation ``(B,)`` from the output r ``(n_L, runs, m, run)`` of the series path."""
    assert series.residual_shift is not None
    m = r.shape[2]
    residual = np.subtract(r, series.residual_shift[:, None, :, None], out=r)
    residual *= residual
    total = residual.sum(axis=0).sum(axis=1).reshape(-1) * series.residual_scale**2
    return total / m if spec.loss == "mse" else 0.5 * total


def exp_series_terms(x_max: float) -> int | None:
    """How many terms of Σ x^p/p! give e^x to within eps/32 for every |x| ≤ ``x_max``; None if > 8."""
    left_out = 1.0
    for count in range(1, SERIES_MAX_TERMS + 1):
        # x_max^count / count!, the first term left out: with |x| < 0.03 the whole tail is within 1.01 of it
        # and e^x ≥ 0.97, so eps/64 here keeps the tail below eps/32 relative to e^x.
        left_out *= x_max / count
        if left_out <= EPS / 64:
            return count
    return None


def _powers(v: np.ndarray, count: int) -> np.ndarray:
    """``(count, *v.shape)``: v^0, v^1, …, v^(count−1)."""
    out = np.empty((count, *v.shape))
    out[0] = 1.0
    for p in range(1, count):
        np.multiply(out[p - 1], v, out=out[p])
    return out


def shifted_activation(W_next: Array, rows: np.ndarray, delta: np.ndarray, exp_u: Array) -> np.ndarray | None:
    """The folded layer l+1's activation r = 1/(1 + e^{u+x}) after a rank-one step, with no exp per element.

    ``rows`` ``(B,)`` are runs of one length (``run``) of equal rows of a W^[l] block, ``delta`` ``(B, m)``
    the change Δa of each perturbed row of a^[l].  The stored pre-activation u ``(n, m)`` moves by
    x = W_next[:, rows[b]] · delta[b, :].  Since e^{u+x} = e^u·e^x and the steps are tiny (|x| ~ h·|W|),
    e^x is its own Taylor series to within eps/32 after a few terms: an evaluation of exp at the
    perturbed point as accurate as libm's, not a derivative.  So, per run with column w and per example,
    1 + e^{u+x} = (1 + e^u) + Σ_{p≥1} e^u (w^p/p!) d^p: one small matrix product ``(n, K) @ (K, run)``,
    K ≤ 8, where the plain route takes an outer product, an add, an exp, an add and a divide per element.

    Returns r in the layout ``(n, runs, m, run)`` (perturbation ``g·run + j`` at ``[:, g, :, j]``), or
    None, having computed nothing, for uneven or short runs or steps too large for the series.
    """
    bounds = run_bounds(rows)
    lengths = np.diff(bounds)
    if not np.all(lengths == lengths[0]) or lengths[0] < SERIES_MIN_RUN:
        return None
    n_runs, run, m, n = lengths.size, int(lengths[0]), delta.shape[1], W_next.shape[0]
    columns = W_next[:, rows[bounds[:-1]]].T  # (runs, n)
    w_scale, d_scale = float(np.abs(columns).max()), float(np.abs(delta).max())
    count = exp_series_terms(w_scale * d_scale)
    if count is None:  # also NaN or inf
        return None
    # (w^p/p!)(d^p) = ((w/s)^p/p!)((s·d)^p) with s = max|w|: both factors stay ≤ 1 in size, so no
    # product with e^u (≤ e^700) can overflow.
    w_scale = w_scale if w_scale > 0.0 else 1.0
    inverse_factorials = np.array([1.0 / math.factorial(p) for p in range(count)])[:, None, None]
    coefficients = _powers(columns / w_scale, count) * inverse_factorials  # (K, runs, n)
    left = np.empty((n_runs, m, count, n))
    np.multiply(exp_u.T[None, :, None, :], coefficients.transpose(1, 0, 2)[:, None, :, :], out=left)
    left[:, :, 0, :] += 1.0  # the 1 of 1 + e^{u+x}, carried by the power d^0 = 1
    scaled = (w_scale * delta).reshape(n_runs, run, m).transpose(0, 2, 1)  # (runs, m, run)
    right = _powers(scaled, count).transpose(1, 2, 0, 3)  # (runs, m, K, run)
    out = scratch("series r", (n, n_runs, m, run), np.float64)
    np.matmul(left.transpose(0, 1, 3, 2), right, out=out.transpose(1, 2, 0, 3))
    np.divide(1.0, out, out=out)
    return out
