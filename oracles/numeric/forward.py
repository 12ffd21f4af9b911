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

Speed: chunks of perturbations run on one thread per core (NumPy ufuncs and single-threaded BLAS
release the GIL; the result does not depend on the thread count); intermediates live in per-thread
scratch buffers; runs of perturbations sharing a row get one contiguous outer product.  In real
arithmetic two identities take the exp-heavy work off the per-element path, and the loss values stay
those at θ ± h (tests hold them to an explicit forward pass to 1e-13):

- a hidden tanh or sigmoid layer is evaluated as r = 1/(1 + e^u) with u = −2z (tanh z = 2r − 1, the
  factor 2 and the −1 moved into the next layer's weights) or u = −z (σ(z) = r) (:class:`RealLayers`);
- a rank-one step x into such a layer (or into a tanh/sigmoid output under mse/half_sse) uses
  e^{u+x} = e^u·e^x with e^x from its Taylor series, exact to eps/32 for the tiny |x| of a numeric
  step: per run of one row, a matrix product with K ≤ 8 inner terms (:func:`_shifted_activation`).

Purely imaginary steps (the complex step without a real shift) have a second, faster evaluation,
:func:`imaginary_step_losses`.  Their real parts are the base forward pass, so the real-part factors
(sech² z, σ'(z), the relu branch, softmax probabilities, the loss residual) are computed once per
layer and only the imaginary parts are carried through the layers, one tangent per perturbation.
That is forward-mode differentiation in effect: what makes it the complex step, and not the
reference's δ recursion, is that each factor is the imaginary part complex arithmetic gives the
function at x + iy (the complex extension defines the derivative), that every perturbation is
propagated forward on its own, and that a test holds it equal, to a few ulps, to the full complex
evaluation (:func:`entry_losses` with complex steps, kept for steps with a real shift).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

from reference_impl.spec import KINKED_ACTIVATIONS, Array, Spec

LEAKY_SLOPE = 0.01
EPS = float(np.finfo(np.float64).eps)
# Elements of the widest batched intermediate per chunk: large enough to amortise Python overhead,
# small enough to bound memory on big layers (1 << 19 measured fastest on the [64,128,128,10] benchmark).
CHUNK_ELEMENTS = 1 << 19
# Chunks run on up to this many threads (one per available core).
MAX_WORKERS = 8
# Arrays of the output layer's size alive at once while the loss is evaluated (see `_chunk_size`).
OUTPUT_ARRAYS = 4
# Beyond this many runs of equal rows in a chunk, one broadcast product beats a product per run.
MAX_RUNS = 8


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


def difference_rounding(spec: Spec, base_loss: float, plus: Array, minus: Array, steps: Array) -> Array:
    """Rounding in (L+ − L−)/2h: eps·(|L+| + |L−| + 2|L|)·(depth + 1)/2h, per entry (any common shape)."""
    return EPS * (np.abs(plus) + np.abs(minus) + 2.0 * abs(base_loss)) * (spec.depth + 1) / (2.0 * steps)


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


def _total_per_member(terms: np.ndarray) -> np.ndarray:
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
        total = _total_per_member(residual)
        return total / m if spec.loss == "mse" else 0.5 * total
    if spec.loss == "bce":
        # From the logits: −[y log σ(z) + (1−y) log(1−σ(z))] = softplus(z) − y z, finite for any z.
        return _total_per_member(softplus(z_out) - targets * z_out) / m
    if spec.loss == "cce":
        return -_total_per_member(targets * log_softmax(z_out)) / m
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


def _affine_next(params: Mapping[str, Array], plan: RealLayers | None, layer: int, a: np.ndarray) -> np.ndarray:
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


def _propagate(
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
            base_branch = _active(tape.z[layer - 1], zero_active)[:, None, :]
            crossed |= np.any(_active(z, zero_active) != base_branch, axis=(0, 2))
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
        z = _affine_next(params, plan, layer, a)
    raise AssertionError("unreachable: the loop returns at the output layer")


_scratch_space = threading.local()


def scratch(tag: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """A per-thread reusable buffer for the batched intermediates of one chunk, tagged by role.

    A fresh multi-megabyte array per chunk is handed back to the operating system when freed, and
    touching it again costs a page fault per 4 KiB: that took longer than the arithmetic on it.
    A tag must not be used for two arrays alive at the same time.
    """
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    buffers: dict[tuple[str, str], np.ndarray] = _scratch_space.__dict__.setdefault("buffers", {})
    buffer = buffers.get((tag, dtype.str))
    if buffer is None or buffer.size < size:
        buffer = np.empty(size, dtype)
        buffers[(tag, dtype.str)] = buffer
    return buffer[:size].reshape(shape)


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


def _chunk_size(
    spec: Spec, layer: int, m: int, n_items: int, row_length: int = 1, output_arrays: int = OUTPUT_ARRAYS
) -> int:
    """Perturbations per chunk for ``n_items`` perturbations in ``layer``: sized by the widest batched array.

    A perturbation of an elementwise hidden layer materialises ``(n, B, m)`` arrays only from layer
    ``layer + 1`` on (its own layer changes one row); the output layer and softmax need the full layer.
    Work worth splitting (more than ``CHUNK_ELEMENTS / 8``) gets at least two chunks, so that a block
    that fits in one chunk still uses two cores; the split depends on the work only, never on the
    worker count, so results stay bit-identical for any number of threads.  A chunk holding several
    whole rows of a W block (``row_length`` entries each) is cut at a row boundary, so that its runs
    of equal rows have one length (see :func:`outer_rows`).
    """
    full_from = layer if layer == spec.depth or spec.activations[layer - 1] == "softmax" else layer + 1
    # The plain route holds OUTPUT_ARRAYS arrays of the output layer's size at once (z, a, residual,
    # targets): when it is the widest, they, not one array, must stay within the chunk budget (measured:
    # 15% faster).  The series route into the output layer holds one (``output_arrays=1``).
    per_item = max(1, max(spec.widths[full_from:]) * m, output_arrays * spec.widths[-1] * m)
    size = max(1, CHUNK_ELEMENTS // per_item)
    if n_items * per_item > CHUNK_ELEMENTS // 8:
        size = min(size, -(-n_items // 2))
    if size >= 2 * row_length:
        size -= size % row_length
    return size


def default_workers() -> int:
    """Worker threads for the chunks: one per core this process may run on, at most ``MAX_WORKERS``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform has affinity masks
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


_workers: int | None = None


@contextmanager
def worker_threads(count: int) -> Iterator[None]:
    """Evaluate chunks on ``count`` threads inside the block (1: serial), e.g. to compare speeds."""
    global _workers
    if count < 1:
        raise ValueError(f"worker count must be at least 1, got {count}")
    previous, _workers = _workers, count
    try:
        yield
    finally:
        _workers = previous


def workers() -> int:
    return _workers if _workers is not None else default_workers()


@cache
def _executor(count: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=count, thread_name_prefix="numeric-forward")


def _run_chunks(n_items: int, size: int, fill: Callable[[slice], None]) -> None:
    """``fill`` every chunk of ``size`` items.

    Chunks write disjoint slices and each chunk's arithmetic does not depend on which thread runs it,
    so the result is bit-identical for any worker count.  NumPy ufuncs and (single-threaded) BLAS calls
    release the GIL, which is what lets two chunks overlap.
    """
    chunks = [slice(lo, lo + size) for lo in range(0, n_items, size)]
    count = min(workers(), len(chunks))
    with single_threaded_blas():
        if count <= 1:
            for chunk in chunks:
                fill(chunk)
        else:
            for _ in _executor(count).map(fill, chunks):
                pass


@dataclass(frozen=True)
class _Series:
    """Layer l+1 evaluated through the exponential series of :func:`_shifted_activation`.

    Its pre-activation, stored as u = s·z^[l+1] (s = −2 for tanh, −1 for sigmoid), moves by
    ``W[:, j]`` · Δa_j for a step in row j of layer l; ``exp_u`` ``(n, m)`` is e^u at the base point.
    For the output layer under mse/half_sse, a − y = ``residual_scale``·(r − ``residual_shift``) with
    r = 1/(1 + e^u): for tanh a = 2r − 1, so 2·(r − (1 + y)/2); for sigmoid a = r.
    """

    W: Array
    exp_u: Array
    residual_shift: Array | None = None
    residual_scale: float = 1.0


@dataclass(frozen=True)
class _BlockSetup:
    """What every chunk of one block's perturbations shares, built once per block.

    ``tiled_base`` is the stored z^[l+1] repeated along the columns ``(n_{l+1}, B_max·m)`` (the output
    z^[L] itself when l = L): adding it is one contiguous pass instead of a broadcast with inner loops of
    length m.  ``W_next`` is W^[l+1] scaled as ``plan`` stores layer l+1.  ``series``, when layer l+1
    can take it, is what :func:`_shifted_activation` needs.
    """

    dtype: np.dtype
    plan: RealLayers | None
    W_next: Array | None
    tiled_base: Array
    series: _Series | None
    targets: Array


# e^{±700} is finite; beyond it r = 1/(1 + e^u) is 0 or 1 to double precision anyway.
EXP_CLAMP = 700.0


def _series_for(spec: Spec, params: Mapping[str, Array], tape: BaseTape, Y: Array, layer: int) -> _Series | None:
    """The series set-up for steps in layer ``layer`` (real arithmetic), or None where it does not apply."""
    following = layer + 1
    name = spec.activations[following - 1]
    if name not in FOLD_SCALE:
        return None
    scale = FOLD_SCALE[name]
    exp_u = np.exp(np.clip(scale * tape.z[following - 1], -EXP_CLAMP, EXP_CLAMP))
    W = scale * params[f"W{following}"]
    if following < spec.depth:
        return _Series(W, exp_u)
    if spec.loss not in ("mse", "half_sse"):
        return None
    if name == "tanh":
        return _Series(W, exp_u, (1.0 + Y) / 2.0, 2.0)
    return _Series(W, exp_u, Y, 1.0)


def _block_setup(
    spec: Spec,
    params: Mapping[str, Array],
    tape: BaseTape,
    Y: Array,
    layer: int,
    dtype: np.dtype,
    widest: int,
    series: _Series | None,
) -> _BlockSetup:
    plan = None if np.issubdtype(dtype, np.complexfloating) else real_layers(spec, params)
    targets = tiled_targets(Y, widest)
    if layer == spec.depth:
        return _BlockSetup(dtype, plan, None, tape.z[-1], None, targets)
    scale = plan.scale[layer] if plan is not None else 1.0
    base = scale * tape.z[layer]
    return _BlockSetup(dtype, plan, scale * params[f"W{layer + 1}"], np.tile(base, (1, widest)), series, targets)


def _series_output_losses(spec: Spec, r: np.ndarray, series: _Series) -> np.ndarray:
    """mse/half_sse per perturbation ``(B,)`` from the output r ``(n_L, runs, m, run)`` of the series path."""
    assert series.residual_shift is not None
    m = r.shape[2]
    residual = np.subtract(r, series.residual_shift[:, None, :, None], out=r)
    residual *= residual
    total = residual.sum(axis=0).sum(axis=1).reshape(-1) * series.residual_scale**2
    return total / m if spec.loss == "mse" else 0.5 * total


@dataclass(frozen=True)
class _Entries:
    """Which entries of a block are perturbed: ``rows``/``cols`` of W^[l] (``cols`` None for b^[l]), and the
    length of one W row (1 for b), by which chunks are aligned."""

    layer: int
    rows: np.ndarray
    cols: np.ndarray | None
    row_length: int


def _entries(tape: BaseTape, block: str, flat_indices: np.ndarray) -> _Entries:
    layer = int(block[1:])
    if block[0] == "W":
        fan_in = tape.a[layer - 1].shape[0]
        rows, cols = np.divmod(flat_indices, fan_in)
        return _Entries(layer, rows, cols, fan_in)
    return _Entries(layer, flat_indices, None, 1)


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
    entries = _entries(tape, block, flat_indices)
    layer, rows, cols = entries.layer, entries.rows, entries.cols
    m = X.shape[1]
    losses = np.empty(flat_indices.size, dtype=dtype)
    crossed = np.zeros(flat_indices.size, dtype=bool)

    real = not np.issubdtype(dtype, np.complexfloating)
    series = _series_for(spec, params, tape, Y, layer) if real and cols is not None and layer < spec.depth else None
    output_arrays = 1 if series is not None and series.residual_shift is not None else OUTPUT_ARRAYS
    size = _chunk_size(spec, layer, m, flat_indices.size, entries.row_length, output_arrays)
    setup = _block_setup(spec, params, tape, Y, layer, dtype, min(size, flat_indices.size), series)

    def fill(sl: slice) -> None:
        _fill_chunk(spec, params, tape, Y, layer, rows, cols, steps, sl, zero_active, losses, crossed, setup)

    _run_chunks(flat_indices.size, size, fill)
    return Evaluation(losses, crossed)


def run_bounds(rows: np.ndarray) -> np.ndarray:
    """Start of each run of equal consecutive ``rows``, then ``rows.size``: ``(runs + 1,)``."""
    starts = np.flatnonzero(rows[1:] != rows[:-1]) + 1
    return np.concatenate(([0], starts, [rows.size]))


# At most this many terms of the exponential series in `_shifted_activation` (then |x| ≤ 0.0247).
SERIES_MAX_TERMS = 8
# The series path needs runs of equal rows, each at least this long (a run is a batch of small products).
SERIES_MIN_RUN = 16


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


def _shifted_activation(W_next: Array, rows: np.ndarray, delta: np.ndarray, exp_u: Array) -> np.ndarray | None:
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


def outer_rows(W_next: Array, rows: np.ndarray, delta: np.ndarray, out: np.ndarray) -> None:
    """``out[:, b, :] = W_next[:, rows[b]] · delta[b, :]``: ``delta`` ``(B, m)``, ``out`` C-ordered ``(n, B, m)``.

    A W block's entries are row-major, so consecutive perturbations share their row: each run of
    equal rows is one outer product over contiguous rows of run·m elements, several times faster than
    the general broadcast, whose inner loops have length m.  Runs of one length (chunks aligned to a
    W row, see :func:`_chunk_size`) are all done by one call: fewer calls, fewer waits for the GIL
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
        losses[sl] = _propagate(spec, params, tape, Y, layer, z, chunk_crossed, zero_active, targets, plan)
        crossed[sl] = chunk_crossed
        return
    if name in KINKED_ACTIVATIONS:
        base_branch = _active(tape.z[layer - 1][row, :], zero_active)
        chunk_crossed |= np.any(_active(z_rows, zero_active) != base_branch, axis=1)
    delta_a = activate(name, z_rows, zero_active) - tape.a[layer][row, :]  # (B, m)
    series = setup.series
    r = None if series is None else _shifted_activation(series.W, row, delta_a, series.exp_u)
    if series is not None and r is not None:
        if series.residual_shift is not None:
            losses[sl] = _series_output_losses(spec, r, series)
        else:
            n_runs, run = r.shape[1], r.shape[3]
            z_after = _affine_next(params, plan, layer + 1, r.reshape(r.shape[0], n_runs * m, run))
            # Back to the (units, perturbations, examples) layout the rest of the network uses.
            z_later = scratch(f"z{layer + 2} by perturbation", (z_after.shape[0], row.size, m), setup.dtype)
            np.copyto(z_later.reshape(-1, n_runs, run, m), z_after.reshape(-1, n_runs, m, run).transpose(0, 1, 3, 2))
            losses[sl] = _propagate(
                spec, params, tape, Y, layer + 2, z_later, chunk_crossed, zero_active, targets, plan
            )
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
        losses[sl] = _propagate(spec, params, tape, Y, layer + 1, z_next, chunk_crossed, zero_active, targets, plan)
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
        return np.where(_active(z, zero_active), 1.0, 0.0)
    if name == "leaky_relu":
        return np.where(_active(z, zero_active), 1.0, LEAKY_SLOPE)
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
        total = _total_per_member(weight * da)
        return total / m if spec.loss == "mse" else 0.5 * total
    if spec.loss == "bce":
        # Im [softplus(z) − y z] from the logits, as `loss_values` evaluates it.
        return _total_per_member(sigmoid(tape.z[-1])[:, None, :] * dz - targets * dz) / m
    if spec.loss == "cce":
        p = np.exp(log_softmax(tape.z[-1]))[:, None, :]
        log_softmax_imag = dz - (p * dz).sum(axis=0, keepdims=True)
        return -_total_per_member(targets * log_softmax_imag) / m
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
    entries = _entries(tape, block, flat_indices)
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

    _run_chunks(flat_indices.size, _chunk_size(spec, layer, m, flat_indices.size, entries.row_length), fill)
    return out


def has_kinked_zeros(spec: Spec, tape: BaseTape) -> bool:
    """Whether some relu/leaky_relu pre-activation sits exactly on its kink at the base point."""
    return any(
        bool(np.any(tape.z[layer - 1] == 0.0))
        for layer, name in enumerate(spec.activations, start=1)
        if name in KINKED_ACTIVATIONS
    )
