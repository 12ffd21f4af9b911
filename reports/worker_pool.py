"""How a campaign's local worker processes start: forked from a fork server that has imported the oracles.

Spawning a worker costs it a full import of the oracles (torch alone takes ~2 s of CPU), once per worker
and after the parent's own imports, which for the README's 500-case campaign was about half its time.
A fork server is a fresh, single-threaded process that imports :data:`WORKER_PRELOAD` once; each worker
is a fork of it and starts with everything imported.  Forking the parent itself is not an option: it has
imported torch and may have live BLAS/OpenMP thread pools, and forking a process with live thread pools
can deadlock the children; the fork server runs none.  Where the platform has no fork server, workers
are spawned.

Workers ignore SIGINT/SIGTERM (the campaign decides when to stop, and kills them then) and exit when
the campaign dies, even by ``kill -9``: their parent is the fork server, which the workers themselves
keep alive, so each watches a pipe whose write end only the campaign holds.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from oracles.lifeline import exit_when_closed
from oracles.registry import ORACLE_MODULES

WORKER_PRELOAD = ("reports.executors", *ORACLE_MODULES)


def worker_context() -> multiprocessing.context.BaseContext:
    """forkserver (preloading :data:`WORKER_PRELOAD`) where the platform has it, else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(WORKER_PRELOAD))
        return context
    return multiprocessing.get_context("spawn")


def start_workers_early() -> None:
    """Start the fork server now, so that it imports the oracles while this process does its own start-up."""
    context = worker_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def limit_threads() -> None:
    # Two processes on two cores: nested BLAS/torch threads on tiny matrices only contend.
    from oracles.numeric.parallel import pin_single_threaded_blas

    pin_single_threaded_blas()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


def _pool_initializer(lifeline: Any) -> None:
    # The parent decides when to stop (and kills the pool then): a worker dying on a Ctrl-C or SIGTERM sent
    # to the whole process group would only lose a batch and print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Our parent is the fork server, which the workers themselves keep alive: watch the campaign instead.
    exit_when_closed(lifeline)
    limit_threads()


_LIFELINE: list[Any] = []  # [read end, write end, owner pid] of this process's lifeline pipe


def _lifeline() -> Any:
    """The read end of a pipe whose write end only this process holds: EOF there means it has died."""
    if not _LIFELINE or _LIFELINE[2:] != [os.getpid()]:
        reader, writer = worker_context().Pipe(duplex=False)
        _LIFELINE[:] = [reader, writer, os.getpid()]
    return _LIFELINE[0]


def make_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=worker_context(), initializer=_pool_initializer, initargs=(_lifeline(),)
    )


def kill_pool(executor: ProcessPoolExecutor) -> None:
    """Stop now: running batches are abandoned (their workers killed), queued ones cancelled."""
    # The executor's process table is private, but it is the only handle on the workers, and
    # shutdown() alone would wait for every running batch.
    workers = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        if process.is_alive():
            process.kill()
    for process in workers:
        process.join(timeout=5)
