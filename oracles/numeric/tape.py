"""The base forward pass, and the batched propagation of perturbed pre-activations to the losses.

The numeric oracles (central differences, Richardson, complex step, the Taylor test) all need the
loss at many perturbed parameter vectors.  They are evaluated in batches, never one Python call per
parameter, recomputing only what a perturbation can change:

- perturbing ``W^[l][j, k]`` by ``h`` changes only row ``j`` of ``z^[l]``, by ``h · a^[l-1][k, :]``;
  perturbing ``b^[l][j]`` changes the same row by ``h``.  Layers before ``l`` are reused from the
  base forward pass (:class:`BaseTape`).
- an elementwise activation keeps that change in row ``j`` of ``a^[l]``, so ``z^[l+1]`` moves by the
  rank-one term ``W^[l+1][:, j] ⊗ Δa^[l][j, :]`` (``n_{l+1}·m`` flops instead of ``n_{l+1}·n_l·m``);
  runs of perturbations sharing a row get one contiguous outer product (:func:`outer_rows`).
- only from layer ``l+2`` on is a batched matrix product needed (:func:`propagate`).

Batched arrays use the layout ``(units, batch, examples)`` so that the matrix product of every
perturbation is one BLAS call on ``(n, batch·m)``.

In real arithmetic a hidden tanh or sigmoid layer is evaluated as r = 1/(1 + e^u) with u = −2z
(tanh z = 2r − 1, the factor 2 and the −1 moved into the next layer's weights) or u = −z (σ(z) = r)
(:class:`RealLayers`), which takes exp-heavy work off the per-element path; the loss values stay those
at θ ± h (tests hold them to an explicit forward pass to 1e-13).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from oracles.numeric.functions import activate, active, loss_values
from oracles.numeric.parallel import scratch
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Spec


@dataclass(frozen=True)
class BaseTape:
    """Unperturbed intermediates: ``z[l-1]`` is z^[l] ``(n_l, m)``; ``a[l]`` is a^[l] (``a[0]`` = X)."""

    z: tuple[Array, ...]
    a: tuple[Array, ...]
    loss: float


def base_tape(spec: Spec, params: Mapping[str, Array], X: Array, Y: Array, zero_active: bool = False) -> BaseTape:
    zs: list[Array] = []
    acts: list[Array] = [X]
    a = X
    for layer, name in enumerate(spec.activations, start=1):
        z = params[f"W{layer}"] @ a + params[f"b{layer}"]
        a = activate(name, z, zero_active)
        zs.append(z)
        acts.append(a)
    value = loss_values(spec, zs[-1][:, None, :], acts[-1][:, None, :], Y)[0]
    return BaseTape(tuple(zs), tuple(acts), float(value))


def has_kinked_zeros(spec: Spec, tape: BaseTape) -> bool:
    """Whether some relu/leaky_relu pre-activation sits exactly on its kink at the base point."""
    return any(
        bool(np.any(tape.z[layer - 1] == 0.0))
        for layer, name in enumerate(spec.activations, start=1)
        if name in KINKED_ACTIVATIONS
    )


@dataclass(frozen=True)
class RealLayers:
    """How the real batched path stores each layer, and the affine maps that produce what it stores.

    A hidden tanh or sigmoid layer is evaluated through r = 1/(1 + e^u): one exp, an add and a divide
    instead of np.tanh, which is ~25% slower and dominates a central-difference sweep (tens of millions
    of perturbed activations).  For sigmoid u = −z and r = σ(z) itself.  For tanh u = −2z and
    r = σ(2z) = (1 + tanh z)/2, since tanh z = 2σ(2z) − 1; the next layer absorbs the factor 2 and the
    −1: W a + b = (2W) r + (b − W·1).  Such a layer stores u in place of z (scaling by −1 or −2 is
    exact: u is bit for bit that multiple of the unscaled product) and r in place of a.  The value is
    still the loss at the perturbed parameters, evaluated through identities of tanh and σ.

    Index l−1 describes layer l: ``folded`` whether it is stored that way, ``scale`` the factor between
    its stored pre-activation and z^[l] (−2, −1 or 1), ``weights``/``biases`` the map from layer l−1's
    stored activation to layer l's stored pre-activation.
    """

    folded: tuple[bool, ...]
    scale: tuple[float, ...]
    weights: tuple[Array, ...]
    biases: tuple[Array, ...]


# Stored pre-activation u = scale·z of a folded layer, per activation.
FOLD_SCALE = {"tanh": -2.0, "sigmoid": -1.0}


def real_layers(spec: Spec, params: Mapping[str, Array]) -> RealLayers:
    names = spec.activations
    folded = tuple(name in FOLD_SCALE and layer < spec.depth for layer, name in enumerate(names, start=1))
    scale = tuple(FOLD_SCALE[name] if f else 1.0 for name, f in zip(names, folded, strict=True))
    weights: list[Array] = []
    biases: list[Array] = []
    for layer in range(1, spec.depth + 1):
        W, b = params[f"W{layer}"], params[f"b{layer}"]
        if layer > 1 and folded[layer - 2] and names[layer - 2] == "tanh":
            W, b = 2.0 * W, b - W.sum(axis=1, keepdims=True)
        weights.append(scale[layer - 1] * W)
        biases.append(scale[layer - 1] * b)
    return RealLayers(folded, scale, tuple(weights), tuple(biases))


def real_matmul(W: Array, a: np.ndarray) -> np.ndarray:
    """W @ a for real W ``(p, n)`` and real or complex a ``(n, k)``.

    A complex ``a`` is viewed as interleaved (re, im) float columns: one real GEMM on ``(n, 2k)``
    instead of a complex GEMM with four times the flops.
    """
    if not np.iscomplexobj(a):
        return W @ a
    a = np.ascontiguousarray(a, dtype=np.complex128)
    product = W @ a.view(np.float64)
    return product.view(np.complex128)


def affine_next(params: Mapping[str, Array], plan: RealLayers | None, layer: int, a: np.ndarray) -> np.ndarray:
    """The (stored) z^[layer+1] ``(n', B, m)`` from the (stored) activation of ``layer`` ``(n, B, m)``."""
    batch, m = a.shape[1], a.shape[2]
    if plan is not None:
        W, b = plan.weights[layer], plan.biases[layer]
    else:
        W, b = params[f"W{layer + 1}"], params[f"b{layer + 1}"]
    a_flat = a.reshape(a.shape[0], batch * m)
    if np.iscomplexobj(a):
        z_flat = real_matmul(W, a_flat)
    else:
        z_flat = np.matmul(W, a_flat, out=scratch(f"z{layer + 1}", (W.shape[0], batch * m), a.dtype))
    z = z_flat.reshape(W.shape[0], batch, m)
    z += b[:, :, None]
    return z


def propagate(
    spec: Spec,
    params: Mapping[str, Array],
    tape: BaseTape,
    Y: Array,
    start_layer: int,
    z: np.ndarray,
    crossed: np.ndarray,
    zero_active: bool,
    targets: np.ndarray | None = None,
    plan: RealLayers | None = None,
) -> np.ndarray:
    """From a batched ``z^[start_layer]`` ``(n, B, m)`` to the losses ``(B,)``, flagging kink crossings.

    With a ``plan`` (real arithmetic only) ``z`` and every later layer are stored as the plan says.
    """
    for layer in range(start_layer, spec.depth + 1):
        name = spec.activations[layer - 1]
        if name in KINKED_ACTIVATIONS:
            base_branch = active(tape.z[layer - 1], zero_active)[:, None, :]
            crossed |= np.any(active(z, zero_active) != base_branch, axis=(0, 2))
        real = not np.iscomplexobj(z)
        if layer == spec.depth:
            if real and name == "tanh":
                a_out = np.tanh(z, out=scratch("a_out", z.shape, z.dtype))
            else:
                a_out = activate(name, z, zero_active)
            return loss_values(spec, z, a_out, Y, targets)
        # Hidden z is not needed again: the costly activations overwrite it in place.
        if plan is not None and plan.folded[layer - 1]:
            # z holds u: e^u overflows to inf only where the activation has saturated, and then r = 0 exactly.
            with np.errstate(over="ignore"):
                a = np.exp(z, out=z)
            a += 1.0
            np.divide(1.0, a, out=a)
        else:
            a = np.tanh(z, out=z) if name == "tanh" and real else activate(name, z, zero_active)
        z = affine_next(params, plan, layer, a)
    raise AssertionError("unreachable: the loop returns at the output layer")


@dataclass(frozen=True)
class BlockEntries:
    """Which entries of a block are perturbed: ``rows``/``cols`` of W^[l] (``cols`` None for b^[l]), and the
    length of one W row (1 for b), by which chunks are aligned."""

    layer: int
    rows: np.ndarray
    cols: np.ndarray | None
    row_length: int


def block_entries(tape: BaseTape, block: str, flat_indices: np.ndarray) -> BlockEntries:
    layer = int(block[1:])
    if block[0] == "W":
        fan_in = tape.a[layer - 1].shape[0]
        rows, cols = np.divmod(flat_indices, fan_in)
        return BlockEntries(layer, rows, cols, fan_in)
    return BlockEntries(layer, flat_indices, None, 1)


def run_bounds(rows: np.ndarray) -> np.ndarray:
    """Start of each run of equal consecutive ``rows``, then ``rows.size``: ``(runs + 1,)``."""
    starts = np.flatnonzero(rows[1:] != rows[:-1]) + 1
    return np.concatenate(([0], starts, [rows.size]))


# Beyond this many runs of equal rows in a chunk, one broadcast product beats a product per run.
MAX_RUNS = 8


def outer_rows(W_next: Array, rows: np.ndarray, delta: np.ndarray, out: np.ndarray) -> None:
    """``out[:, b, :] = W_next[:, rows[b]] · delta[b, :]``: ``delta`` ``(B, m)``, ``out`` C-ordered ``(n, B, m)``.

    A W block's entries are row-major, so consecutive perturbations share their row: each run of
    equal rows is one outer product over contiguous rows of run·m elements, several times faster than
    the general broadcast, whose inner loops have length m.  Runs of one length (chunks aligned to a
    W row, see :func:`chunk_size`) are all done by one call: fewer calls, fewer waits for the GIL
    when two chunks run at once.  Scattered rows take the broadcast.
    """
    m = delta.shape[1]
    bounds = run_bounds(rows)
    lengths = np.diff(bounds)
    if lengths.size > 1 and np.all(lengths == lengths[0]):
        n_runs, run = lengths.size, int(lengths[0])
        by_run = out.reshape(out.shape[0], n_runs, run * m)
        np.einsum("ir,rj->irj", W_next[:, rows[bounds[:-1]]], delta.reshape(n_runs, run * m), out=by_run)
        return
    if lengths.size > MAX_RUNS:
        np.multiply(W_next[:, rows][:, :, None], delta[None, :, :], out=out)
        return
    flat_out = out.reshape(out.shape[0], rows.size * m)
    for lo, hi in itertools.pairwise(bounds.tolist()):
        # einsum's outer product is faster here than the broadcast multiply of a column by a row.
        np.einsum("i,j->ij", W_next[:, rows[lo]], delta[lo:hi].reshape(-1), out=flat_out[:, lo * m : hi * m])
