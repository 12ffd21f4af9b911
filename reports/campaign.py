"""Campaigns: many ``(seed, index)`` cases, one subject, every oracle, records appended as they finish.

A case is a pure function of ``(seed, index)`` (:func:`reference_impl.generate.case_from_index`), so the
work is just a list of indices.  It is cut into batches (so per-task scheduling overhead stays small)
and run in-process, on a local process pool, or on a Dask distributed cluster; whichever way, the
records of a case are the same, because everything in them is computed from the case alone.

Durability: the main process writes each case's records together (plain passes in one lean line, see
:mod:`reports.resultfile`) and flushes them (fsynced at least every :data:`SYNC_SECONDS` and at the end),
and tags every record with how many records its case has (``extra["campaign"]["records"]``).  Resuming
keeps the cases whose records are all there, drops a half-written one, moves a corrupt line aside
(:mod:`reports.resume`) and runs the rest.  One campaign writes into a directory at a time
(:mod:`reports.dirlock`).

Stopping (:mod:`reports.stopping`): on SIGINT/SIGTERM no new batch starts; batches already running get
``STOP_GRACE_SECONDS`` to finish (their cases are written), then the workers are killed.  Batches are
small, so little is lost.  Pool workers ignore both signals (the parent decides) and exit when their
parent dies, even by ``kill -9``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from oracles.registry import get_oracle, oracle_names
from oracles.verdicts.precision import imprecise_case
from reference_impl.generate import case_from_index
from reports import oracle_plan
from reports.casework import (
    DEFAULT_SUBSAMPLE,
    REFERENCE,
    BatchResult,
    CampaignConfig,
    CampaignError,
    EarlyPart,
    case_id,
    early_part,
    parse_case_id,
    planned_case,
    resolve_subject,
    run_batch,
    run_case,
)
from reports.cli.progress import Progress
from reports.dirlock import exclusive
from reports.executors import (
    BATCHES_PER_WORKER,
    CONNECT_TIMEOUT,
    DASK_BATCHES_PER_WORKER,
    MAX_BATCH,
    MIN_BATCH,
    POLL_SECONDS,
    STOP_GRACE_SECONDS,
    batch_size_for,
    batches,
    dask_parallelism,
    run_in_process,
    run_on_dask,
    run_on_pool,
)
from reports.oracle_plan import case_plan, requested_oracles
from reports.records import RecordWriter
from reports.resume import completed_cases
from reports.stopping import Interrupted, InterruptGuard
from reports.worker_pool import kill_pool, limit_threads, make_pool

__all__ = [  # what this module's users import from here (the case and the executors live below it)
    "BATCHES_PER_WORKER",
    "CONNECT_TIMEOUT",
    "DASK_BATCHES_PER_WORKER",
    "DEFAULT_SUBSAMPLE",
    "MAX_BATCH",
    "MIN_BATCH",
    "POLL_SECONDS",
    "REFERENCE",
    "STOP_GRACE_SECONDS",
    "BatchResult",
    "CampaignConfig",
    "CampaignError",
    "EarlyPart",
    "batch_size_for",
    "batches",
    "case_id",
    "early_part",
    "kill_pool",
    "limit_threads",
    "make_pool",
    "parse_case_id",
    "planned_case",
    "resolve_subject",
    "run_batch",
    "run_campaign",
    "run_case",
    "run_in_process",
    "run_on_dask",
    "run_on_pool",
]

RESULTS_FILE = "results.jsonl"
CAMPAIGN_FILE = "campaign.json"
# At most this much finished work is only in the OS's cache (a kill loses none of it; a power cut might).
SYNC_SECONDS = 1.0


# --- campaign files -----------------------------------------------------------------------------------


def environment_versions() -> dict[str, str]:
    """Versions a reader needs to trust (or reproduce) the numbers."""
    versions: dict[str, str] = {"python": platform.python_version(), "platform": platform.platform()}
    import numpy

    versions["numpy"] = numpy.__version__
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        versions["blas"] = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy has no dict mode; the BLAS name is then simply unknown
        versions["blas"] = "unknown"
    # Installed distributions' metadata, not imports: importing torch or sympy only to print a version costs seconds.
    for name in ("torch", "sympy", "hypothesis", "dask", "distributed"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def read_campaign(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / CAMPAIGN_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CampaignError(f"{path} is not valid JSON: {exc}") from None
    return data if isinstance(data, dict) else None


def write_campaign(out_dir: Path, data: dict[str, Any]) -> None:
    path = out_dir / CAMPAIGN_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: a kill never leaves half a campaign.json


@dataclass
class CampaignResult:
    out_dir: Path
    config: CampaignConfig
    cases: int  # cases in the JSONL at the end (resumed ones included)
    ran: int  # cases run by this invocation
    failed_cases: int
    records: int
    wall_seconds: float
    compute_seconds: float
    batches: int
    batch_size: int
    parallelism: int
    quarantined: list[str] = field(default_factory=list)  # corrupt lines this resume moved aside
    precision_cases: int = 0  # cases right within the tolerance but less precise than the best float64 answer

    @property
    def scheduling_overhead(self) -> float:
        """Share of worker capacity not spent computing: (wall × parallelism − compute) / (wall × parallelism)."""
        capacity = self.wall_seconds * max(1, min(self.parallelism, self.batches))
        return max(0.0, 1.0 - self.compute_seconds / capacity) if capacity > 0 else 0.0


def run_campaign(
    config: CampaignConfig,
    out_dir: str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    batch_size: int | None = None,
    show_progress: bool = False,
    timeout: float | None = None,
) -> CampaignResult:
    """Run (or resume) a campaign into ``out_dir``; returns what is on disk at the end.

    ``timeout``: seconds per call of a third-party subject (None: the supervisor's default).  Raises
    :class:`reports.dirlock.DirectoryBusy` when another process is writing into ``out_dir``.
    """
    with exclusive(out_dir, "run"):
        return _run_campaign(
            config, Path(out_dir), workers, scheduler, resume, progress, batch_size, show_progress, timeout
        )


def _run_campaign(
    config: CampaignConfig,
    out: Path,
    workers: int,
    scheduler: str | None,
    resume: bool,
    progress: Progress | None,
    batch_size: int | None,
    show_progress: bool,
    timeout: float | None,
) -> CampaignResult:
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS_FILE
    for name in config.oracles or ():
        try:
            get_oracle(name)
        except KeyError as exc:
            raise CampaignError(str(exc.args[0])) from None
    stored = read_campaign(out)
    if resume:
        if stored is None:
            raise CampaignError(f"nothing to resume: {out / CAMPAIGN_FILE} does not exist")
        if CampaignConfig.from_dict(stored["config"]) != config:
            raise CampaignError(f"{out} holds a different campaign ({stored['config']}); use another --out")
    elif results.exists() and results.stat().st_size > 0:
        raise CampaignError(f"{results} already has records; pass --resume to continue it or choose another --out")
    done, corrupt = completed_cases(results) if resume else ({}, [])
    meta: dict[str, Any] = dict(stored) if (resume and stored) else {}
    meta.update(
        {
            "config": config.to_dict(),
            "registered_oracles": oracle_names(),
            "versions": environment_versions(),
            "started": meta.get("started") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "finished": None,
        }
    )
    write_campaign(out, meta)

    todo = [i for i in range(config.examples) if case_id(config.seed, i) not in done]
    parallelism = dask_parallelism(scheduler) if scheduler else max(1, workers)
    per_worker = DASK_BATCHES_PER_WORKER if scheduler else BATCHES_PER_WORKER
    size = batch_size or batch_size_for(len(todo), parallelism, per_worker)
    work = batches(todo, size)
    in_process = not scheduler and not (workers > 1 and len(work) > 1)
    guard = InterruptGuard(immediate=in_process)
    if scheduler:
        runner: Generator[BatchResult, None, None] = run_on_dask(
            config, work, scheduler, stop=guard.stopping, timeout=timeout
        )
    elif not in_process:
        runner = run_on_pool(config, work, workers, stop=guard.stopping, timeout=timeout)
    else:
        runner = run_in_process(config, work, timeout)

    failed_before = sum(1 for stored_case in done.values() if stored_case.failed)
    tally = oracle_plan.Tally()
    for cid, stored_case in done.items():
        index = stored_case.index if stored_case.index is not None else parse_case_id(cid)[1]
        tally.add_checks(
            stored_case.checks, case_plan(config, index, case_from_index(config.seed, index, config.stress))[1]
        )
    imprecise = sum(1 for stored_case in done.values() if stored_case.imprecise)
    if progress is None and show_progress:
        progress = Progress(config.examples, already_done=len(done))
    if progress is not None:
        progress.failures = failed_before
    start = time.perf_counter()
    compute = cpu = 0.0
    started_early = 0
    ran = failed_now = written = 0
    try:
        with guard, RecordWriter(results, sync_seconds=SYNC_SECONDS) as writer:
            for result in runner:
                compute += result.compute_seconds
                cpu += result.cpu_seconds
                started_early += result.started_elsewhere
                for index, records in result.cases:
                    tally.add(records, result.skipped.get(index, {}))
                    with guard.writing_case():
                        writer.write_case(records)
                    written += len(records)
                    failing = any(r.failed for r in records)
                    failed_now += failing
                    imprecise += imprecise_case(records)
                    ran += 1
                    if progress is not None:
                        progress.update(1, int(failing))
            if guard.stop_requested:
                raise Interrupted()
    finally:
        runner.close()  # on an interrupt: cancel queued batches and stop the workers now, not at GC
        if progress is not None:
            progress.close()
    wall = time.perf_counter() - start
    total_records = sum(v.records for v in done.values()) + written
    result_summary = CampaignResult(
        out_dir=out,
        config=config,
        cases=len(done) + ran,
        ran=ran,
        failed_cases=failed_before + failed_now,
        records=total_records,
        wall_seconds=wall,
        compute_seconds=compute,
        batches=len(work),
        batch_size=size,
        parallelism=parallelism,
        quarantined=[c.describe(results) for c in corrupt],
        precision_cases=imprecise,
    )
    meta["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta["last_run"] = {
        "executor": f"dask {scheduler}" if scheduler else (f"process pool ×{workers}" if workers > 1 else "in-process"),
        "cases_run": ran,
        "wall_seconds": round(wall, 3),
        "compute_seconds": round(compute, 3),
        "compute_cpu_seconds": round(cpu, 3),
        # Cases whose light oracles this process compared while the pool's workers were starting.
        "cases_started_while_workers_booted": started_early,
        "batch_size": size,
        "batches": len(work),
        "scheduling_overhead": round(result_summary.scheduling_overhead, 4),
    }
    meta["elapsed_seconds"] = round(float(meta.get("elapsed_seconds", 0.0)) + wall, 3)
    meta["cases"] = result_summary.cases
    # Which oracle checked how many cases, counted from the records, beside the rule that chose them.
    meta["coverage"] = tally.to_dict(requested_oracles(config), config.subsample, config.adaptive)
    meta["failed_cases"] = result_summary.failed_cases
    meta["precision_cases"] = result_summary.precision_cases
    write_campaign(out, meta)
    return result_summary


def campaign_exit_code(result: CampaignResult) -> int:
    return 1 if result.failed_cases else 0
