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
import math
import os
import platform
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from oracles.registry import OracleOutput, get_oracle, oracle_names
from oracles.subjects import Subject, load_subject, reference_subject
from oracles.verdicts.blocks import case_record
from oracles.verdicts.compare import check_case
from oracles.verdicts.precision import apply_strict, imprecise_case
from reference_impl.case import Case
from reference_impl.generate import case_from_index
from reference_impl.stress import STRESS_SHARE, check_share
from reports import oracle_plan
from reports.cli.progress import Progress
from reports.dirlock import exclusive
from reports.oracle_plan import case_plan, requested_oracles
from reports.records import Record, RecordWriter
from reports.resume import completed_cases
from reports.stopping import Interrupted, InterruptGuard
from reports.worker_pool import kill_pool, limit_threads, make_pool

RESULTS_FILE = "results.jsonl"
CAMPAIGN_FILE = "campaign.json"
REFERENCE = "reference"

# Oracles that run on every k-th case only (index % k == 0), unless ``--subsample`` says otherwise.
# Empty: no oracle is subsampled by index.  The exact oracle is *adaptive* by default instead
# (reports.oracle_plan.DEFAULT_ADAPTIVE: every cheap case, a 1/cost share of the dear ones);
# ``--subsample sympy_exact=1`` runs it on every case.
DEFAULT_SUBSAMPLE: dict[str, int] = {}

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
# At most this much finished work is only in the OS's cache (a kill loses none of it; a power cut might).
SYNC_SECONDS = 1.0
CONNECT_TIMEOUT = "10s"  # how long to wait for a Dask scheduler before calling it unreachable


class CampaignError(Exception):
    """A campaign that cannot start as asked (resume of a missing or different campaign, ...)."""


@dataclass(frozen=True)
class CampaignConfig:
    """What defines a campaign: the same config always produces the same records."""

    seed: int
    examples: int
    subject: str = REFERENCE  # "reference" or "MODULE:ATTR"
    oracles: tuple[str, ...] | None = None  # None: every registered oracle that supports the case
    subsample: dict[str, int] = field(default_factory=dict)
    stress: float = STRESS_SHARE  # share of stress cases (reference_impl.stress)
    strict: bool = False  # precision findings count as discrepancies
    adaptive: dict[str, float] = field(default_factory=dict)  # oracle -> cost budget (reports.oracle_plan)

    @classmethod
    def create(
        cls,
        seed: int,
        examples: int,
        subject: str = REFERENCE,
        oracles: Sequence[str] | None = None,
        subsample: dict[str, int] | None = None,
        stress: float = STRESS_SHARE,
        strict: bool = False,
        adaptive: dict[str, float] | None = None,
    ) -> CampaignConfig:
        chosen = tuple(oracles) if oracles else None
        every = dict(DEFAULT_SUBSAMPLE if subsample is None else subsample)
        if any(k < 1 for k in every.values()):
            raise CampaignError(f"subsample periods must be at least 1, got {every}")
        # An oracle named in --subsample follows that rule alone: `sympy_exact=1` means every case.
        budgets = dict(oracle_plan.DEFAULT_ADAPTIVE if adaptive is None else adaptive)
        budgets = {name: float(b) for name, b in budgets.items() if name not in every}
        if any(b <= 0 for b in budgets.values()):
            raise CampaignError(f"adaptive budgets must be positive, got {budgets}")
        base = cls(seed=seed, examples=examples, subject=subject, oracles=chosen, subsample=every, adaptive=budgets)
        return replace(base, stress=check_share(stress), strict=strict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["oracles"] = list(self.oracles) if self.oracles else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignConfig:
        oracles = data.get("oracles")
        return cls(
            seed=int(data["seed"]),
            examples=int(data["examples"]),
            subject=str(data.get("subject", REFERENCE)),
            oracles=tuple(oracles) if oracles else None,
            subsample={str(k): int(v) for k, v in (data.get("subsample") or {}).items()},
            # Campaigns written before the adaptive policy ran every oracle on every case: none here.
            adaptive={str(k): float(v) for k, v in (data.get("adaptive") or {}).items()},
            stress=float(data.get("stress", 0.0)),  # stored before stress cases existed: none, as then
            strict=bool(data.get("strict", False)),
        )


def case_id(seed: int, index: int) -> str:
    return f"{seed}-{index:06d}"


def parse_case_id(text: str) -> tuple[int, int]:
    """``"1-000042"`` -> ``(1, 42)``; raises ValueError for anything else."""
    seed_text, sep, index_text = text.strip().partition("-")
    if not sep or not seed_text.isdigit() or not index_text.isdigit():
        raise ValueError(f"case id must look like SEED-INDEX (e.g. 1-000042), got {text!r}")
    return int(seed_text), int(index_text)


# --- running cases (this part runs in worker processes too) -------------------------------------------

_SUBJECTS: dict[tuple[str, float | None], Subject] = {}


def resolve_subject(target: str, timeout: float | None = None) -> Subject:
    """``"reference"`` (in-process) or ``MODULE:ATTR`` (a supervised worker, ``timeout`` seconds per call;
    None: the default); cached per process, so each worker process loads a subject once."""
    key = (target, timeout)
    if key not in _SUBJECTS:
        _SUBJECTS[key] = reference_subject() if target == REFERENCE else load_subject(target, timeout=timeout)
    return _SUBJECTS[key]


def _entry_values(
    case: Case, records: list[Record], names: list[str], outputs: dict[str, OracleOutput] | None = None
) -> dict[str, Any] | None:
    """Every oracle's value at the worst failing entry, so a reader sees who agrees with whom.

    ``outputs``: oracle outputs the comparisons already computed (reused, not evaluated again)."""
    failing = [r for r in records if r.failed and r.check in ("gradient", "delta") and r.parameter]
    if not failing:
        return None
    worst = max(failing, key=lambda r: (r.abs_err or 0.0) / (r.tolerance or 1e-300))
    assert worst.parameter is not None and worst.index is not None
    parameter, index = worst.parameter, tuple(worst.index)
    values: dict[str, float | str] = {}
    for name in names:
        oracle = get_oracle(name)
        if not oracle.supports_case(case):
            continue
        params, X, Y = case.arrays()
        try:
            output = (outputs or {}).get(name) or oracle.evaluate(case.spec, params, X, Y)
            if parameter.startswith("delta"):
                if output.deltas is None:
                    continue
                values[name] = float(output.deltas[int(parameter[5:]) - 1][index])
            else:
                values[name] = float(output.grads[parameter][index])
        except Exception as exc:  # an oracle's own failure is already its own record; here it is just absent
            values[name] = f"{type(exc).__name__}: {exc}"
    return {
        "entry": f"{parameter}[{','.join(str(i) for i in index)}]",
        "check": worst.check,
        "subject": worst.subject_value,
        "oracles": values,
    }


def run_case(config: CampaignConfig, index: int, timeout: float | None = None) -> list[Record]:
    """All records of one case, tagged with their count (the resume marker)."""
    return planned_case(config, index, timeout)[0]


def planned_case(
    config: CampaignConfig, index: int, timeout: float | None = None
) -> tuple[list[Record], dict[str, str]]:
    """:func:`run_case`, and the requested oracles that did not check the case with the reason."""
    case = case_from_index(config.seed, index, config.stress)
    supported, skipped = case_plan(config, index, case)
    names = supported + [n for n, why in skipped.items() if why == oracle_plan.UNSUPPORTED]
    outputs: dict[str, OracleOutput] = {}
    subject = resolve_subject(config.subject, timeout)
    records = check_case(case, subject, supported, outputs=outputs) if supported else []
    if not records:
        records = [
            case_record(
                case,
                subject.name,
                "-",
                "campaign",
                "skip",
                message=f"no requested oracle supports this case ({', '.join(names) or 'none requested'})",
            )
        ]
    records = apply_strict(records) if config.strict else records
    entry = _entry_values(case, records, supported, outputs)
    for record in records:
        record.extra["campaign"] = {"records": len(records), "index": index}
        if entry is not None and record.failed:
            record.extra["entry_values"] = entry
    return records, skipped


@dataclass
class BatchResult:
    cases: list[tuple[int, list[Record]]]
    compute_seconds: float  # wall time inside the worker: the part that is not scheduling overhead
    skipped: dict[int, dict[str, str]] = field(default_factory=dict)  # index -> {oracle: why it did not check}
    cpu_seconds: float = 0.0  # CPU time of the worker process on the batch: what a busy machine does not inflate


def run_batch(
    config: CampaignConfig, indices: Sequence[int], single_thread: bool = True, timeout: float | None = None
) -> BatchResult:
    """Run a batch of cases; a top-level function so process pools and Dask can ship it by reference."""
    if single_thread:
        limit_threads()
    start, cpu = time.perf_counter(), time.process_time()
    cases: list[tuple[int, list[Record]]] = []
    skipped: dict[int, dict[str, str]] = {}
    for index in indices:
        records, skipped[index] = planned_case(config, index, timeout)
        cases.append((index, records))
    return BatchResult(cases, time.perf_counter() - start, skipped, time.process_time() - cpu)


def batch_size_for(n_cases: int, parallelism: int, per_worker: int = BATCHES_PER_WORKER) -> int:
    return max(MIN_BATCH, min(MAX_BATCH, math.ceil(n_cases / max(1, parallelism * per_worker))))


def batches(indices: Sequence[int], size: int) -> list[list[int]]:
    return [list(indices[i : i + size]) for i in range(0, len(indices), size)]


# --- executors ----------------------------------------------------------------------------------------


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

    When ``stop()`` turns true, no batch is started any more; running ones get STOP_GRACE_SECONDS to
    finish and are yielded, then a pool of our own is killed.
    """
    owned = pool is None
    executor = make_pool(workers) if pool is None else pool
    pending: set[Future[BatchResult]] = set()
    finished = False
    try:
        queue = deque(work)
        # Keep two batches per worker in flight: workers never idle, and an interrupt wastes little.
        while (queue or pending) and not stop():
            while queue and len(pending) < 2 * workers:
                pending.add(executor.submit(run_batch, config, queue.popleft(), True, timeout))
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
    ran = failed_now = written = 0
    try:
        with guard, RecordWriter(results, sync_seconds=SYNC_SECONDS) as writer:
            for result in runner:
                compute += result.compute_seconds
                cpu += result.cpu_seconds
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
