"""Batched loss evaluation under parameter perturbations, in real or complex arithmetic.

The numeric oracles (central differences, Richardson, complex step, the Taylor test) all need the
loss at many perturbed parameter vectors.  This module evaluates them in batches, never one Python
call per parameter, and recomputes only what a perturbation can change:

- perturbing ``W^[l][j, k]`` by ``h`` changes only row ``j`` of ``z^[l]``, by ``h · a^[l-1][k, :]``;
  perturbing ``b^[l][j]`` changes the same row by ``h``.  Layers before ``l`` are reused from the
  base forward pass.
- an elementwise activation keeps that change in row ``j`` of ``a^[l]``, so ``z^[l+1]`` moves by the
  rank-one term ``W^[l+1][:, j] ⊗ Δa^[l][j, :]`` (``n_{l+1}·m`` flops instead of ``n_{l+1}·n_l·m``).
- only from layer ``l+2`` on is a batched matrix product needed.

Batched arrays use the layout ``(units, batch, examples)`` so that the matrix product of every
perturbation is one BLAS call on ``(n, batch·m)``.

Every activation and loss here is written for complex arguments as well (the complex step needs
that): no ``abs``/``max`` of a complex value; the stable sigmoid and softplus branch on the sign of
the *real* part; log-sum-exp shifts by the maximum real part; relu/leaky_relu choose their branch by
the real part.  This is a separate implementation from ``reference_impl``: an oracle must not share
the subject's code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

from reference_impl.spec import KINKED_ACTIVATIONS, Array, Spec

LEAKY_SLOPE = 0.01
EPS = float(np.finfo(np.float64).eps)
# Elements of the widest batched intermediate per chunk: large enough to amortise Python overhead,
# small enough to stay in cache-sized pieces and bounded memory on big layers.
CHUNK_ELEMENTS = 1 << 17


def input_scale(tape: BaseTape, block: str) -> Array:
    """Per entry of ``block`` (flattened): max(1, ‖a^[l-1][k, :]‖∞) for W^[l][j, k], 1 for b^[l][j].

    The loss sees W[j, k] only through z = W a + b, where a step h moves z by h·a[k, :]: dividing the
    step by this scale makes it a step of the intended size *in z*, so large inputs do not inflate the
    O(h²) truncation error.
    """
    layer = int(block[1:])
    a_prev = tape.a[layer - 1]
    rows = tape.z[layer - 1].shape[0]
    if block[0] == "b":
        return np.ones(rows)
    per_input = np.maximum(1.0, np.abs(a_prev).max(axis=1))  # (n_{l-1},)
    return np.tile(per_input, rows)


@cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """The batched products here are many small GEMMs: a threaded BLAS spends more time waking and
    synchronising its threads than multiplying (30x slower on a loaded 2-core machine), so one thread."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def cbrt_eps_step(theta: Array) -> Array:
    """Central-difference step ∛eps·max(1, |θ|): balances O(h²) truncation against O(eps/h) rounding."""
    return np.cbrt(EPS) * np.maximum(1.0, np.abs(theta))


# --- complex-safe activations (unit axis 0) ---------------------------------------------------


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
    q = np.abs(x)
    q *= -2.0
    np.exp(q, out=q)
    denominator = q + 1.0
    denominator *= denominator
    q *= 4.0
    q /= denominator  # sech² x = 4e^{−2|x|} / (1 + e^{−2|x|})²
    if y.size == 0 or float(np.abs(y).max()) < 1e-8:
        np.multiply(y, q, out=out.imag)
        return out
    t = out.real.copy()
    s, c = np.sin(y), np.cos(y)
    denominator = c * c + t * t * s * s
    out.real = t / denominator
    out.imag = s * c * q / denominator
    return out


def _active(z: np.ndarray, zero_active: bool) -> np.ndarray:
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
        return np.where(_active(z, zero_active), z, 0.0)
    if name == "leaky_relu":
        return np.where(_active(z, zero_active), z, LEAKY_SLOPE * z)
    if name == "softplus":
        return softplus(z)
    if name == "softmax":
        return np.exp(log_softmax(z))
    raise KeyError(f"unknown activation {name!r}")


def loss_values(spec: Spec, z_out: np.ndarray, a_out: np.ndarray, Y: Array) -> np.ndarray:
    """Loss per batch member.  ``z_out``/``a_out`` ``(n_L, B, m)``, ``Y`` ``(n_L, m)`` -> ``(B,)``."""
    m = Y.shape[1]
    targets = Y[:, None, :]
    if spec.loss == "mse":
        return ((a_out - targets) ** 2).sum(axis=(0, 2)) / m
    if spec.loss == "half_sse":
        return 0.5 * ((a_out - targets) ** 2).sum(axis=(0, 2))
    if spec.loss == "bce":
        # From the logits: −[y log σ(z) + (1−y) log(1−σ(z))] = softplus(z) − y z, finite for any z.
        return (softplus(z_out) - targets * z_out).sum(axis=(0, 2)) / m
    if spec.loss == "cce":
        return -(targets * log_softmax(z_out)).sum(axis=(0, 2)) / m
    raise KeyError(f"unknown loss {spec.loss!r}")


# --- the base forward pass --------------------------------------------------------------------


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


@dataclass(frozen=True)
class Evaluation:
    """Losses ``(B,)`` (complex for complex steps) and whether each crossed a relu/leaky_relu kink.

    ``crossed[b]`` is True when some relu/leaky_relu pre-activation changed branch (by its real part)
    between the base point and perturbation ``b``: the loss is then not one smooth branch along the step.
    """

    losses: np.ndarray
    crossed: np.ndarray


def _propagate(
    spec: Spec,
    params: Mapping[str, Array],
    tape: BaseTape,
    Y: Array,
    start_layer: int,
    z: np.ndarray,
    crossed: np.ndarray,
    zero_active: bool,
) -> np.ndarray:
    """From a batched ``z^[start_layer]`` ``(n, B, m)`` to the losses ``(B,)``, flagging kink crossings."""
    batch, m = z.shape[1], z.shape[2]
    for layer in range(start_layer, spec.depth + 1):
        name = spec.activations[layer - 1]
        if name in KINKED_ACTIVATIONS:
            base_branch = _active(tape.z[layer - 1], zero_active)[:, None, :]
            crossed |= np.any(_active(z, zero_active) != base_branch, axis=(0, 2))
        if layer == spec.depth:
            return loss_values(spec, z, activate(name, z, zero_active), Y)
        # Hidden z is not needed again: tanh, the costly case, overwrites it in place.
        a = np.tanh(z, out=z) if name == "tanh" and not np.iscomplexobj(z) else activate(name, z, zero_active)
        W, b = params[f"W{layer + 1}"], params[f"b{layer + 1}"]
        z = real_matmul(W, a.reshape(a.shape[0], batch * m)).reshape(W.shape[0], batch, m) + b[:, :, None]
    raise AssertionError("unreachable: the loop returns at the output layer")


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


def _chunk_size(spec: Spec, layer: int, m: int) -> int:
    widest = max(spec.widths[layer:])
    return max(1, CHUNK_ELEMENTS // max(1, widest * m))


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
    """
    if tape is None:
        tape = base_tape(spec, params, X, Y, zero_active)
    flat_indices = np.asarray(flat_indices, dtype=np.int64)
    steps = np.asarray(steps)
    dtype = np.result_type(steps.dtype, np.float64)
    layer = int(block[1:])
    m = X.shape[1]
    a_prev = tape.a[layer - 1]
    if block[0] == "W":
        rows, cols = np.divmod(flat_indices, a_prev.shape[0])
    else:
        rows, cols = flat_indices, None
    losses = np.empty(flat_indices.size, dtype=dtype)
    crossed = np.zeros(flat_indices.size, dtype=bool)
    size = _chunk_size(spec, layer, m)
    with single_threaded_blas():
        for lo in range(0, flat_indices.size, size):
            sl = slice(lo, lo + size)
            _fill_chunk(spec, params, tape, Y, layer, rows, cols, steps, dtype, sl, zero_active, losses, crossed)
    return Evaluation(losses, crossed)


def _fill_chunk(
    spec: Spec,
    params: Mapping[str, Array],
    tape: BaseTape,
    Y: Array,
    layer: int,
    rows: np.ndarray,
    cols: np.ndarray | None,
    steps: np.ndarray,
    dtype: np.dtype,
    sl: slice,
    zero_active: bool,
    losses: np.ndarray,
    crossed: np.ndarray,
) -> None:
    """Evaluate the perturbations ``sl``, writing into ``losses[sl]``/``crossed[sl]``."""
    m = Y.shape[1]
    a_prev = tape.a[layer - 1]
    row, step = rows[sl], steps[sl]
    # The perturbed row of z^[l]: h times a row of a^[l-1] (W) or h itself (b).
    shift = step[:, None] * (a_prev[cols[sl], :] if cols is not None else np.ones((1, m)))
    z_rows = tape.z[layer - 1][row, :] + shift  # (B, m)
    chunk_crossed = np.zeros(row.size, dtype=bool)
    name = spec.activations[layer - 1]
    if layer == spec.depth or name == "softmax":
        z = np.repeat(tape.z[layer - 1][:, None, :].astype(dtype), row.size, axis=1)
        z[row, np.arange(row.size), :] = z_rows
        losses[sl] = _propagate(spec, params, tape, Y, layer, z, chunk_crossed, zero_active)
    else:
        if name in KINKED_ACTIVATIONS:
            base_branch = _active(tape.z[layer - 1][row, :], zero_active)
            chunk_crossed |= np.any(_active(z_rows, zero_active) != base_branch, axis=1)
        delta_a = activate(name, z_rows, zero_active) - tape.a[layer][row, :]  # (B, m)
        W_next = params[f"W{layer + 1}"]
        # Rank-one update of z^[l+1]: column j of W^[l+1] times the change in row j of a^[l].
        z_next = np.multiply(W_next[:, row][:, :, None], delta_a[None, :, :])
        z_next += tape.z[layer][:, None, :]
        losses[sl] = _propagate(spec, params, tape, Y, layer + 1, z_next, chunk_crossed, zero_active)
    crossed[sl] = chunk_crossed


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
            base_branch = _active(tape.z[layer - 1], zero_active)[:, None, :]
            crossed |= np.any(_active(z, zero_active) != base_branch, axis=(0, 2))
        a = activate(name, z, zero_active)
        if layer == spec.depth:
            losses = loss_values(spec, z, a, Y)
            return Evaluation(losses.reshape(n_dir, n_steps), crossed.reshape(n_dir, n_steps))
    raise AssertionError("unreachable: a spec has at least one layer")


def flat(params: Mapping[str, Array], names: Sequence[str]) -> Array:
    return np.concatenate([np.asarray(params[n], dtype=np.float64).ravel() for n in names])


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
) -> Array:
    """∂L/∂θ_i at θ + real_shift·e_i as Im L(θ + (real_shift + i·h)e_i)/h, h = 1e-20: no cancellation."""
    flat_indices = np.asarray(flat_indices, dtype=np.int64)
    steps = np.broadcast_to(np.asarray(real_shift, dtype=np.float64), flat_indices.shape) + 1j * COMPLEX_STEP
    evaluation = entry_losses(spec, params, X, Y, block, flat_indices, steps, tape=tape, zero_active=zero_active)
    return np.asarray(evaluation.losses.imag / COMPLEX_STEP, dtype=np.float64)


def has_kinked_zeros(spec: Spec, tape: BaseTape) -> bool:
    """Whether some relu/leaky_relu pre-activation sits exactly on its kink at the base point."""
    return any(
        bool(np.any(tape.z[layer - 1] == 0.0))
        for layer, name in enumerate(spec.activations, start=1)
        if name in KINKED_ACTIVATIONS
    )
