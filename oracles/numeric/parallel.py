"""Running a block's perturbations in chunks on worker threads, with single-threaded BLAS and scratch buffers.

Chunks of perturbations run on one thread per core: NumPy ufuncs and single-threaded BLAS release the
GIL, so two chunks overlap.  How a block is cut into chunks depends on the work only, never on the
thread count, and each chunk writes its own slice, so the results do not depend on the thread count.
Each chunk's batched intermediates live in per-thread scratch buffers, reused from chunk to chunk.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache

import numpy as np
from threadpoolctl import ThreadpoolController

from reference_impl.spec import Spec

# Elements of the widest batched intermediate per chunk: large enough to amortise Python overhead,
# small enough to bound memory on big layers (1 << 19 measured fastest on the [64,128,128,10] benchmark).
CHUNK_ELEMENTS = 1 << 19
# Chunks run on up to this many threads (one per available core).
MAX_WORKERS = 8
# Arrays of the output layer's size alive at once while the loss is evaluated (see `chunk_size`).
OUTPUT_ARRAYS = 4


@cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()


_BLAS_PINNED: list[bool] = [False]


def pin_single_threaded_blas() -> None:
    """One BLAS thread for the rest of this process (a campaign's processes, which only multiply small
    matrices): limiting and restoring it around every block costs ~0.15 ms, a tenth of a cheap check."""
    _blas_controller().limit(limits=1, user_api="blas")  # not restored: the limit stays
    _BLAS_PINNED[0] = True


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """The batched products here are many small GEMMs: a threaded BLAS spends more time waking and
    synchronising its threads than multiplying (30x slower on a loaded 2-core machine), so one thread."""
    if _BLAS_PINNED[0]:
        yield
        return
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


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


def chunk_size(
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


def run_chunks(n_items: int, size: int, fill: Callable[[slice], None]) -> None:
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
