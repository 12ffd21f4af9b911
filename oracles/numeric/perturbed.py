"""Losses at perturbed parameters, in full real or complex arithmetic: per block entry, or along directions.

:func:`entry_losses` moves one entry per perturbation and recomputes only what that can change (see
:mod:`oracles.numeric.tape`); per chunk it takes the exponential-series route
(:mod:`oracles.numeric.series`) where it applies and the plain rank-one route otherwise.  Steps may be
complex: this is also the generic evaluation of the complex step, kept for steps with a real shift and
as the yardstick of the imaginary-parts-only path.  :func:`direction_losses` moves every parameter at
once, along given directions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from oracles.numeric.functions import activate, active, loss_values, tiled_targets
from oracles.numeric.parallel import OUTPUT_ARRAYS, chunk_size, run_chunks, scratch
from oracles.numeric.series import Series, series_for, series_output_losses, shifted_activation
from oracles.numeric.tape import (
    BaseTape,
    RealLayers,
    affine_next,
    base_tape,
    block_entries,
    outer_rows,
    propagate,
    real_layers,
)
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Spec


@dataclass(frozen=True)
class Evaluation:
    """Losses ``(B,)`` (complex for complex steps) and whether each crossed a relu/leaky_relu kink.

    ``crossed[b]`` is True when some relu/leaky_relu pre-activation changed branch (by its real part)
    between the base point and perturbation ``b``: the loss is then not one smooth branch along the step.
    """

    losses: np.ndarray
    crossed: np.ndarray


@dataclass(frozen=True)
class _BlockSetup:
    """What every chunk of one block's perturbations shares, built once per block.

    ``tiled_base`` is the stored z^[l+1] repeated along the columns ``(n_{l+1}, B_max·m)`` (the output
    z^[L] itself when l = L): adding it is one contiguous pass instead of a broadcast with inner loops of
    length m.  ``W_next`` is W^[l+1] scaled as ``plan`` stores layer l+1.  ``series``, when layer l+1
    can take it, is what :func:`shifted_activation` needs.
    """

    dtype: np.dtype
    plan: RealLayers | None
    W_next: Array | None
    tiled_base: Array
    series: Series | None
    targets: Array


def _block_setup(
    spec: Spec,
    params: Mapping[str, Array],
    tape: BaseTape,
    Y: Array,
    layer: int,
    dtype: np.dtype,
    widest: int,
    series: Series | None,
) -> _BlockSetup:
    plan = None if np.issubdtype(dtype, np.complexfloating) else real_layers(spec, params)
    targets = tiled_targets(Y, widest)
    if layer == spec.depth:
        return _BlockSetup(dtype, plan, None, tape.z[-1], None, targets)
    scale = plan.scale[layer] if plan is not None else 1.0
    base = scale * tape.z[layer]
    return _BlockSetup(dtype, plan, scale * params[f"W{layer + 1}"], np.tile(base, (1, widest)), series, targets)


def _fill_chunk(
    spec: Spec,
    params: Mapping[str, Array],
    tape: BaseTape,
    Y: Array,
    layer: int,
    rows: np.ndarray,
    cols: np.ndarray | None,
    steps: np.ndarray,
    sl: slice,
    zero_active: bool,
    losses: np.ndarray,
    crossed: np.ndarray,
    setup: _BlockSetup,
) -> None:
    """Evaluate the perturbations ``sl``, writing into ``losses[sl]``/``crossed[sl]``."""
    m = Y.shape[1]
    a_prev = tape.a[layer - 1]
    row, step = rows[sl], steps[sl]
    targets = setup.targets[:, : row.size]
    # The perturbed row of z^[l]: h times a row of a^[l-1] (W) or h itself (b).
    shift = step[:, None] * (a_prev[cols[sl], :] if cols is not None else np.ones((1, m)))
    z_rows = tape.z[layer - 1][row, :] + shift  # (B, m)
    chunk_crossed = np.zeros(row.size, dtype=bool)
    name = spec.activations[layer - 1]
    plan = setup.plan
    if layer == spec.depth or name == "softmax":
        z = np.repeat(tape.z[layer - 1][:, None, :].astype(setup.dtype), row.size, axis=1)
        z[row, np.arange(row.size), :] = z_rows
        losses[sl] = propagate(spec, params, tape, Y, layer, z, chunk_crossed, zero_active, targets, plan)
        crossed[sl] = chunk_crossed
        return
    if name in KINKED_ACTIVATIONS:
        base_branch = active(tape.z[layer - 1][row, :], zero_active)
        chunk_crossed |= np.any(active(z_rows, zero_active) != base_branch, axis=1)
    delta_a = activate(name, z_rows, zero_active) - tape.a[layer][row, :]  # (B, m)
    series = setup.series
    r = None if series is None else shifted_activation(series.W, row, delta_a, series.exp_u)
    if series is not None and r is not None:
        if series.residual_shift is not None:
            losses[sl] = series_output_losses(spec, r, series)
        else:
            n_runs, run = r.shape[1], r.shape[3]
            z_after = affine_next(params, plan, layer + 1, r.reshape(r.shape[0], n_runs * m, run))
            # Back to the (units, perturbations, examples) layout the rest of the network uses.
            z_later = scratch(f"z{layer + 2} by perturbation", (z_after.shape[0], row.size, m), setup.dtype)
            np.copyto(z_later.reshape(-1, n_runs, run, m), z_after.reshape(-1, n_runs, m, run).transpose(0, 1, 3, 2))
            losses[sl] = propagate(spec, params, tape, Y, layer + 2, z_later, chunk_crossed, zero_active, targets, plan)
    else:
        W_next = setup.W_next
        assert W_next is not None
        # Rank-one update of z^[l+1]: column j of W^[l+1] times the change in row j of a^[l].  The
        # output is allocated C-ordered: left to itself a ufunc follows the gathered column's strides,
        # and the reshape before the next product would then copy the whole array.
        z_next = scratch(f"z{layer + 1}", (W_next.shape[0], row.size, m), setup.dtype)
        outer_rows(W_next, row, delta_a, z_next)
        flat_next = z_next.reshape(W_next.shape[0], row.size * m)
        flat_next += setup.tiled_base[:, : row.size * m]
        losses[sl] = propagate(spec, params, tape, Y, layer + 1, z_next, chunk_crossed, zero_active, targets, plan)
    crossed[sl] = chunk_crossed


def entry_losses(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    block: str,
    flat_indices: np.ndarray,
    steps: np.ndarray,
    *,
    tape: BaseTape | None = None,
    zero_active: bool = False,
) -> Evaluation:
    """L(θ + steps[b]·e_{flat_indices[b]}) for every b, θ's entry taken in block ``block`` (``"W2"``…).

    ``steps`` may be complex (complex step, or a real shift plus an imaginary step).  Cost per
    perturbation: one row of ``z^[l]``, a rank-one update of ``z^[l+1]``, full products only beyond.
    This is the generic evaluation: every perturbed loss in full (real or complex) arithmetic.
    """
    if tape is None:
        tape = base_tape(spec, params, X, Y, zero_active)
    flat_indices = np.asarray(flat_indices, dtype=np.int64)
    steps = np.asarray(steps)
    dtype = np.result_type(steps.dtype, np.float64)
    entries = block_entries(tape, block, flat_indices)
    layer, rows, cols = entries.layer, entries.rows, entries.cols
    m = X.shape[1]
    losses = np.empty(flat_indices.size, dtype=dtype)
    crossed = np.zeros(flat_indices.size, dtype=bool)

    real = not np.issubdtype(dtype, np.complexfloating)
    series = series_for(spec, params, tape, Y, layer) if real and cols is not None and layer < spec.depth else None
    output_arrays = 1 if series is not None and series.residual_shift is not None else OUTPUT_ARRAYS
    size = chunk_size(spec, layer, m, flat_indices.size, entries.row_length, output_arrays)
    setup = _block_setup(spec, params, tape, Y, layer, dtype, min(size, flat_indices.size), series)

    def fill(sl: slice) -> None:
        _fill_chunk(spec, params, tape, Y, layer, rows, cols, steps, sl, zero_active, losses, crossed, setup)

    run_chunks(flat_indices.size, size, fill)
    return Evaluation(losses, crossed)


def block_losses(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    block: str,
    steps: np.ndarray,
    *,
    tape: BaseTape | None = None,
    zero_active: bool = False,
) -> Evaluation:
    """``steps`` ``(S, size)``: losses ``(S, size)`` with entry i of ``block`` moved by ``steps[s, i]``."""
    steps = np.asarray(steps)
    n_steps, size = steps.shape
    indices = np.tile(np.arange(size), n_steps)
    evaluation = entry_losses(spec, params, X, Y, block, indices, steps.reshape(-1), tape=tape, zero_active=zero_active)
    return Evaluation(evaluation.losses.reshape(n_steps, size), evaluation.crossed.reshape(n_steps, size))


def direction_losses(
    spec: Spec,
    params: Mapping[str, Array],
    X: Array,
    Y: Array,
    directions: Sequence[Mapping[str, Array]],
    steps: np.ndarray,
    *,
    zero_active: bool = False,
) -> Evaluation:
    """L(θ + steps[d, s]·v_d) for directions ``v_d`` (dicts like params): losses ``(D, S)``.

    Every parameter moves, so this is a full batched forward pass, one BLAS-batched product per layer.
    """
    steps = np.asarray(steps)
    n_dir, n_steps = steps.shape
    dtype = np.result_type(steps.dtype, np.float64)
    tape = base_tape(spec, params, X, Y, zero_active)
    flat_steps = steps.reshape(-1)
    which = np.repeat(np.arange(n_dir), n_steps)
    batch = flat_steps.size
    m = X.shape[1]
    a: np.ndarray = np.broadcast_to(X[:, None, :], (X.shape[0], batch, m))
    crossed = np.zeros(batch, dtype=bool)
    # einsum over a batch of different weight matrices: no BLAS here, nothing to limit.
    for layer, name in enumerate(spec.activations, start=1):
        W = np.stack([directions[d][f"W{layer}"] for d in range(n_dir)])[which]  # (B, n, n_prev)
        b = np.stack([directions[d][f"b{layer}"] for d in range(n_dir)])[which]  # (B, n, 1)
        W_batch = params[f"W{layer}"][None] + flat_steps[:, None, None] * W
        b_batch = params[f"b{layer}"][None] + flat_steps[:, None, None] * b
        z = np.einsum("bij,jbm->ibm", W_batch.astype(dtype), a) + b_batch.transpose(1, 0, 2)
        if name in KINKED_ACTIVATIONS:
            base_branch = active(tape.z[layer - 1], zero_active)[:, None, :]
            crossed |= np.any(active(z, zero_active) != base_branch, axis=(0, 2))
        a = activate(name, z, zero_active)
        if layer == spec.depth:
            losses = loss_values(spec, z, a, Y)
            return Evaluation(losses.reshape(n_dir, n_steps), crossed.reshape(n_dir, n_steps))
    raise AssertionError("unreachable: a spec has at least one layer")
