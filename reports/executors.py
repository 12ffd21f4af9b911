"""Where a campaign's batches run: in this process, on a local process pool, or on a Dask cluster.

Each executor yields :class:`~reports.casework.BatchResult` objects as batches finish; the campaign
(:mod:`reports.campaign`) writes them.  Whichever executor runs a case, its records are the same.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from oracles.numeric.parallel import pin_single_threaded_blas
from reports.casework import BatchResult, CampaignConfig, CampaignError, EarlyPart, early_part, run_batch
from reports.worker_pool import kill_pool, make_pool

# Batches aim at this many batches per worker: enough to balance load and show progress, few enough
# that per-task overhead (pickling, scheduler round trips: ~1-5 ms) stays well under 5 % of a batch
# that computes for hundreds of milliseconds.
BATCHES_PER_WORKER = 16
# A Dask task costs more to schedule (a scheduler round trip, cloudpickle) than a local pool submission.
DASK_BATCHES_PER_WORKER = 6
# MAX_BATCH bounds what a stop can cost: at most two batches per worker are in flight, and a batch of 16
# cases takes ~0.1 s (seconds with the exact oracle on dear cases), so they finish within the grace period.
MIN_BATCH, MAX_BATCH = 4, 16
STOP_GRACE_SECONDS = 3.0
POLL_SECONDS = 0.2  # how often the pool loop looks for a stop request
CONNECT_TIMEOUT = "10s"  # how long to wait for a Dask scheduler before calling it unreachable


def batch_size_for(n_cases: int, parallelism: int, per_worker: int = BATCHES_PER_WORKER) -> int:
    return max(MIN_BATCH, min(MAX_BATCH, math.ceil(n_cases / max(1, parallelism * per_worker))))


def batches(indices: Sequence[int], size: int) -> list[list[int]]:
    return [list(indices[i : i + size]) for i in range(0, len(indices), size)]


def _never() -> bool:
    return False


def run_in_process(
    config: CampaignConfig, work: list[list[int]], timeout: float | None = None
) -> Generator[BatchResult, None, None]:
    for indices in work:
        for index in indices:  # case by case: an interrupt loses at most the case being computed
            yield run_batch(config, [index], single_thread=False, timeout=timeout)


def run_on_pool(
    config: CampaignConfig,
    work: list[list[int]],
    workers: int,
    pool: ProcessPoolExecutor | None = None,
    *,
    stop: Callable[[], bool] = _never,
    timeout: float | None = None,
) -> Generator[BatchResult, None, None]:
    """Batches on a local process pool (a fresh one unless ``pool`` is given; a given pool is left running).

    Until the pool's first worker is up, this process compares the first cases with the light oracles
    (:func:`start_while_workers_boot`); the workers finish those cases first.  When ``stop()`` turns true,
    no batch is started any more; running ones get STOP_GRACE_SECONDS to finish and are yielded, then a
    pool of our own is killed.
    """
    owned = pool is None
    executor = make_pool(workers) if pool is None else pool
    pending: set[Future[BatchResult]] = set()
    finished = False
    try:
        started = start_while_workers_boot(config, work, first_worker(executor), stop, timeout)
        begun = {index for part in started for index in part}
        rest = [[i for i in indices if i not in begun] for indices in work]
        queue: deque[tuple[list[int], dict[int, EarlyPart | None] | None]] = deque(
            [(list(part), part) for part in started] + [(indices, None) for indices in rest if indices]
        )
        # Keep two batches per worker in flight: workers never idle, and an interrupt wastes little.
        while (queue or pending) and not stop():
            while queue and len(pending) < 2 * workers:
                indices, early = queue.popleft()
                pending.add(executor.submit(run_batch, config, indices, True, timeout, early))
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
        if pending:  # stopping: keep what finishes within the grace period
            for future in pending:
                future.cancel()  # the ones no worker has picked up yet
            done, pending = wait(pending, timeout=STOP_GRACE_SECONDS)
            for future in done:
                if not future.cancelled() and future.exception() is None:
                    yield future.result()
        finished = not pending and not queue
    finally:
        for future in pending:
            future.cancel()
        if owned:
            if finished:
                executor.shutdown(wait=True)
            else:
                kill_pool(executor)


def worker_ready() -> None:
    """A task that does nothing: its completion says a worker is up (its imports done)."""


def first_worker(executor: ProcessPoolExecutor) -> Future[None]:
    """A future done when the pool's first worker has run a task, without waiting here for it to start.

    Submitting to a pool whose fork server is still importing blocks until that server can fork, so the
    first submission happens on another thread.
    """
    ready: Future[None] = Future()

    def submit() -> None:
        try:
            executor.submit(worker_ready).add_done_callback(lambda done: ready.set_result(None))
        except BaseException as exc:  # a pool shut down or broken meanwhile: nobody waits for it any more
            ready.set_exception(exc)

    threading.Thread(target=submit, name="first-worker", daemon=True).start()
    return ready


def start_while_workers_boot(
    config: CampaignConfig,
    work: list[list[int]],
    ready: Future[None],
    stop: Callable[[], bool] = _never,
    timeout: float | None = None,
) -> list[dict[int, EarlyPart | None]]:
    """Compare cases in ``work``'s order with the light oracles here until ``ready`` is done; returns the
    early parts cut into batches of ``work``'s size (None: the case had no light oracle).

    A worker starts only once it has imported torch and SymPy (seconds), and this process, which need not
    import them, would meanwhile sit idle: on a small machine that wait was a third of the README
    campaign's time.  The cheap oracles' comparisons fill it; a worker then makes the rest of each case's
    records and returns them all, so the records are the same as when a worker computes the whole case.
    """
    parts: dict[int, EarlyPart | None] = {}
    if not ready.done():
        pin_single_threaded_blas()  # this process multiplies small matrices only, from here on
    for index in (i for indices in work for i in indices):
        if ready.done() or stop():
            break
        parts[index] = early_part(config, index, timeout)
    size = max((len(indices) for indices in work), default=1)
    indices = list(parts)
    return [{i: parts[i] for i in indices[k : k + size]} for k in range(0, len(indices), size)]


def dask_parallelism(address: str) -> int:
    client = _dask_client(address)
    try:
        return max(1, sum(client.nthreads().values()))
    finally:
        client.close()


def _dask_client(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError as exc:
        raise CampaignError("--scheduler needs dask[distributed]: pip install 'backprop-check[dask]'") from exc
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise CampaignError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def run_on_dask(
    config: CampaignConfig,
    work: list[list[int]],
    address: str,
    *,
    stop: Callable[[], bool] = _never,
    timeout: float | None = None,
) -> Generator[BatchResult, None, None]:
    from distributed import as_completed

    client = _dask_client(address)
    try:
        # pure=False: the same batch submitted twice (a resumed campaign) must really run again.
        futures = [client.submit(run_batch, config, indices, True, timeout, pure=False) for indices in work]
        try:
            for future in as_completed(futures, loop=client.loop):
                yield future.result()
                if stop():
                    break
        finally:
            client.cancel(futures)
    finally:
        client.close()
