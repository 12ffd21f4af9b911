"""The complex step's perturbed losses: imaginary parts alone for purely imaginary steps, else full complex.

Purely imaginary steps (the complex step without a real shift) have a second, faster evaluation,
:func:`imaginary_step_losses`.  Their real parts are the base forward pass, so the real-part factors
(sech² z, σ'(z), the relu branch, softmax probabilities, the loss residual) are computed once per
layer and only the imaginary parts are carried through the layers, one tangent per perturbation.
That is forward-mode differentiation in effect: what makes it the complex step, and not the
reference's δ recursion, is that each factor is the imaginary part complex arithmetic gives the
function at x + iy (the complex extension defines the derivative), that every perturbation is
propagated forward on its own, and that a test holds it equal, to a few ulps, to the full complex
evaluation (:func:`oracles.numeric.perturbed.entry_losses` with complex steps, kept for steps with a
real shift).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from oracles.numeric.functions import LEAKY_SLOPE, active, log_softmax, sech_squared, sigmoid, total_per_member
from oracles.numeric.parallel import chunk_size, run_chunks, scratch
from oracles.numeric.perturbed import entry_losses
from oracles.numeric.tape import BaseTape, base_tape, block_entries, outer_rows
from reference_impl.spec import Array, Spec

COMPLEX_STEP = 1e-20


def complex_step_entries(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    block: str,
    flat_indices: np.ndarray,
    *,
    real_shift: np.ndarray | float = 0.0,
    zero_active: bool = False,
    tape: BaseTape | None = None,
    generic: bool = False,
) -> Array:
    """∂L/∂θ_i at θ + real_shift·e_i as Im L(θ + (real_shift + i·h)e_i)/h, h = 1e-20: no cancellation.

    Without a real shift the step is purely imaginary and only imaginary parts are propagated
    (:func:`imaginary_step_losses`); ``generic=True``, or any real shift, evaluates every perturbed
    loss in full complex arithmetic (:func:`entry_losses`).
    """
    flat_indices = np.asarray(flat_indices, dtype=np.int64)
    shift = np.broadcast_to(np.asarray(real_shift, dtype=np.float64), flat_indices.shape)
    if generic or np.any(shift != 0.0):
        steps = shift + 1j * COMPLEX_STEP
        evaluation = entry_losses(spec, params, X, Y, block, flat_indices, steps, tape=tape, zero_active=zero_active)
        return np.asarray(evaluation.losses.imag / COMPLEX_STEP, dtype=np.float64)
    seeds = np.full(flat_indices.shape, COMPLEX_STEP)
    imaginary = imaginary_step_losses(
        spec, params, X, Y, block, flat_indices, seeds, tape=tape, zero_active=zero_active
    )
    return imaginary / COMPLEX_STEP


# --- purely imaginary steps: the imaginary parts alone ------------------------------------------
#
# With θ + i·y·e_i and |y| ≤ 1e-20·max|a|, every real part of the perturbed forward pass is the base
# pass: the real GEMM of a complex matrix is two real GEMMs, and each function's real part moves by
# O(y²), which is below the last bit of any value not itself ~1e-20.  What the complex arithmetic of
# `entry_losses` computes for the imaginary parts is then, to rounding, y times a real factor of the
# base point: Im tanh(x + iy) = y·sech² x (the formula `tanh` uses), Im σ(x + iy) = y·e^{−|x|}/(1 +
# e^{−|x|})², Im softplus = y·σ(x), relu/leaky_relu y times the slope of the branch chosen by the real
# part, Im log-softmax = y − Σ_k p_k y_k, Im (a − t)² = 2(a − t)·Im a.  Those factors are computed once
# per layer from the base tape and only the imaginary parts are carried per perturbation: no
# transcendental function per perturbation, and real GEMMs on arrays of half the size.


@dataclass(frozen=True)
class ImaginaryFactors:
    """Per layer l (index l−1): Im a / Im z for an elementwise activation ``(n_l, m)``, or None.

    None means the identity (factor 1) or softmax, whose imaginary part couples the units of a column
    and uses ``probabilities[l−1]`` (the base softmax ``(n_l, m)``) instead.
    """

    slopes: tuple[Array | None, ...]
    probabilities: tuple[Array | None, ...]


def imaginary_slope(name: str, z: Array, zero_active: bool = False) -> Array | None:
    """Im g(z + iy)/y for small y, as complex arithmetic yields it; None for identity and softmax."""
    if name in ("identity", "softmax"):
        return None
    if name == "tanh":
        return sech_squared(z)
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        return e / ((1.0 + e) * (1.0 + e))
    if name == "softplus":
        return sigmoid(z)
    if name == "relu":
        return np.where(active(z, zero_active), 1.0, 0.0)
    if name == "leaky_relu":
        return np.where(active(z, zero_active), 1.0, LEAKY_SLOPE)
    raise KeyError(f"unknown activation {name!r}")


def imaginary_factors(spec: Spec, tape: BaseTape, zero_active: bool = False) -> ImaginaryFactors:
    slopes = tuple(imaginary_slope(name, z, zero_active) for name, z in zip(spec.activations, tape.z, strict=True))
    probabilities = tuple(
        a if name == "softmax" else None for name, a in zip(spec.activations, tape.a[1:], strict=True)
    )
    return ImaginaryFactors(slopes, probabilities)


def _imaginary_activation(factors: ImaginaryFactors, layer: int, dz: np.ndarray, in_place: bool) -> np.ndarray:
    """Im a^[layer] ``(n, B, m)`` from Im z^[layer] of the same shape."""
    probabilities = factors.probabilities[layer - 1]
    if probabilities is not None:
        p = probabilities[:, None, :]
        return p * (dz - (p * dz).sum(axis=0, keepdims=True))
    slope = factors.slopes[layer - 1]
    if slope is None:
        return dz
    return np.multiply(dz, slope[:, None, :], out=dz if in_place else None)


def _imaginary_loss(
    spec: Spec, tape: BaseTape, factors: ImaginaryFactors, Y: Array, dz: np.ndarray, da: np.ndarray
) -> np.ndarray:
    """Im of the loss per perturbation ``(B,)`` from Im z^[L], Im a^[L] ``(n_L, B, m)``."""
    m = Y.shape[1]
    targets = Y[:, None, :]
    if spec.loss in ("mse", "half_sse"):
        weight = 2.0 * (tape.a[-1] - Y)[:, None, :]
        total = total_per_member(weight * da)
        return total / m if spec.loss == "mse" else 0.5 * total
    if spec.loss == "bce":
        # Im [softplus(z) − y z] from the logits, as `loss_values` evaluates it.
        return total_per_member(sigmoid(tape.z[-1])[:, None, :] * dz - targets * dz) / m
    if spec.loss == "cce":
        p = np.exp(log_softmax(tape.z[-1]))[:, None, :]
        log_softmax_imag = dz - (p * dz).sum(axis=0, keepdims=True)
        return -total_per_member(targets * log_softmax_imag) / m
    raise KeyError(f"unknown loss {spec.loss!r}")


def _propagate_imaginary(
    spec: Spec,
    params: Mapping[str, Array],
    tape: BaseTape,
    factors: ImaginaryFactors,
    Y: Array,
    start_layer: int,
    dz: np.ndarray,
) -> np.ndarray:
    """From Im z^[start_layer] ``(n, B, m)`` to the imaginary parts of the losses ``(B,)``."""
    batch, m = dz.shape[1], dz.shape[2]
    for layer in range(start_layer, spec.depth + 1):
        if layer == spec.depth:
            return _imaginary_loss(spec, tape, factors, Y, dz, _imaginary_activation(factors, layer, dz, False))
        da = _imaginary_activation(factors, layer, dz, True)
        W = params[f"W{layer + 1}"]
        # The real bias adds nothing imaginary.
        dz_flat = scratch(f"imaginary z{layer + 1}", (W.shape[0], batch * m), np.float64)
        dz = np.matmul(W, da.reshape(da.shape[0], batch * m), out=dz_flat).reshape(W.shape[0], batch, m)
    raise AssertionError("unreachable: the loop returns at the output layer")


def imaginary_step_losses(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    block: str,
    flat_indices: np.ndarray,
    seeds: np.ndarray,
    *,
    tape: BaseTape | None = None,
    zero_active: bool = False,
) -> Array:
    """Im L(θ + i·seeds[b]·e_{flat_indices[b]}) ``(B,)`` for tiny real ``seeds`` (≤ 1e-20 or so).

    Equal, to a few ulps, to the imaginary parts :func:`entry_losses` returns for the same purely
    imaginary steps, at a fraction of the cost.
    """
    if tape is None:
        tape = base_tape(spec, params, X, Y, zero_active)
    factors = imaginary_factors(spec, tape, zero_active)
    flat_indices = np.asarray(flat_indices, dtype=np.int64)
    seeds = np.asarray(seeds, dtype=np.float64)
    entries = block_entries(tape, block, flat_indices)
    layer, rows, cols = entries.layer, entries.rows, entries.cols
    m = X.shape[1]
    a_prev = tape.a[layer - 1]
    out = np.empty(flat_indices.size)
    name = spec.activations[layer - 1]
    full_layer = layer == spec.depth or name == "softmax"

    def fill(sl: slice) -> None:
        row = rows[sl]
        # Im z^[layer] of the perturbed row: the seed times a row of a^[l-1] (W) or the seed (b).
        seed_rows = seeds[sl, None] * (a_prev[cols[sl], :] if cols is not None else np.ones((1, m)))
        if full_layer:
            dz = np.zeros((tape.z[layer - 1].shape[0], row.size, m))
            dz[row, np.arange(row.size), :] = seed_rows
            out[sl] = _propagate_imaginary(spec, params, tape, factors, Y, layer, dz)
            return
        slope = factors.slopes[layer - 1]
        da_rows = seed_rows * slope[row, :] if slope is not None else seed_rows
        W_next = params[f"W{layer + 1}"]
        dz = scratch(f"imaginary z{layer + 1}", (W_next.shape[0], row.size, m), np.float64)
        outer_rows(W_next, row, np.broadcast_to(da_rows, (row.size, m)), dz)
        out[sl] = _propagate_imaginary(spec, params, tape, factors, Y, layer + 1, dz)

    run_chunks(flat_indices.size, chunk_size(spec, layer, m, flat_indices.size, entries.row_length), fill)
    return out
