"""How a campaign's local worker processes start: forked from a fork server that has imported the oracles.

Spawning a worker costs it a full import of the oracles (torch alone takes ~2 s of CPU), once per worker
and after the parent's own imports, which for the README's 500-case campaign was about half its time.
A fork server is a fresh, single-threaded process that imports :data:`WORKER_PRELOAD` once; each worker
is a fork of it and starts with everything imported.  Forking the parent itself is not an option: it has
imported torch and may have live BLAS/OpenMP thread pools, and forking a process with live thread pools
can deadlock the children; the fork server runs none.  Where the platform has no fork server, workers
are spawned.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context

from oracles.registry import ORACLE_MODULES

WORKER_PRELOAD = ("reports.campaign", *ORACLE_MODULES)


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
