"""Campaign throughput: cases per second for small architectures (P ≤ 200), and where the time goes.

    python -m benchmarks.bench_campaign [--cases 600] [--workers 2] [--repeats 3] [--dask]

The subject is the reference (with δ); the oracles are torch autograd, complex step and central
differences.  Printed, measured side by side in one run:

1. throughput of the local process pool (``--workers``), median of ``--repeats`` runs over the same cases,
   with its scheduling overhead (share of worker capacity not spent inside batches);
2. the per-oracle time split, from one in-process pass over the same cases;
3. with ``--dask``, the same cases on a local Dask cluster (2 worker processes on 127.0.0.1) for two batch
   sizes, to show that the campaign's default batch keeps overhead under 5 %.

Target: ≥ 50 cases/s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor

from oracles.registry import all_oracles, get_oracle
from oracles.subjects import call_subject, reference_subject
from oracles.verdicts.compare import compare_to_oracle
from reference_impl.generate import case_from_index
from reports import campaign
from reports.campaign import BatchResult, CampaignConfig

ORACLES = ("torch_autograd", "complex_step", "finite_diff")
MAX_PARAMETERS = 200
SEED = 11


def small_indices(count: int) -> list[int]:
    """The first ``count`` campaign indices whose architecture has at most MAX_PARAMETERS parameters."""
    found: list[int] = []
    index = 0
    while len(found) < count:
        if case_from_index(SEED, index).spec.n_parameters <= MAX_PARAMETERS:
            found.append(index)
        index += 1
    return found


def timed_run(results: list[BatchResult], wall: float, workers: int) -> tuple[float, float]:
    cases = sum(len(r.cases) for r in results)
    compute = sum(r.compute_seconds for r in results)
    return cases / wall, max(0.0, 1.0 - compute / (wall * workers))


def pool_throughput(
    config: CampaignConfig, indices: list[int], workers: int, batch: int, pool: ProcessPoolExecutor | None = None
) -> tuple[float, float]:
    work = campaign.batches(indices, batch)
    start = time.perf_counter()
    results = list(campaign.run_on_pool(config, work, workers, pool))
    return timed_run(results, time.perf_counter() - start, workers)


def oracle_split(indices: list[int]) -> dict[str, float]:
    """Seconds per oracle (and for the subject and δ) over the cases, in-process with one thread like a worker."""
    campaign.limit_threads()
    subject = reference_subject()
    seconds: dict[str, float] = defaultdict(float)
    for index in indices:
        case = case_from_index(SEED, index)
        start = time.perf_counter()
        call = call_subject(subject, case)
        params, X, Y = case.arrays()
        assert subject.deltas is not None and call.grads is not None
        deltas = subject.deltas(case.spec, params, X, Y)
        seconds["subject (reference + δ)"] += time.perf_counter() - start
        for name in ORACLES:
            oracle = get_oracle(name)
            if not oracle.supports_case(case):  # central differences sit out stress cases, as in a campaign
                continue
            start = time.perf_counter()
            records = compare_to_oracle(case, subject.name, call.grads, oracle, subject_deltas=deltas)
            seconds[name] += time.perf_counter() - start
            assert not any(r.failed for r in records), [r.summary() for r in records if r.failed]
    return dict(seconds)


def dask_overhead(config: CampaignConfig, indices: list[int], batches: list[int]) -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    ) as cluster:
        address = cluster.scheduler_address
        list(campaign.run_on_dask(config, campaign.batches(indices[:40], 20), address))  # warm the workers
        for batch in batches:
            start = time.perf_counter()
            results = list(campaign.run_on_dask(config, campaign.batches(indices, batch), address))
            rate, overhead = timed_run(results, time.perf_counter() - start, 2)
            print(f"  dask, batch {batch:4d}: {rate:7.1f} cases/s, scheduling overhead {overhead:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dask", action="store_true", help="also measure a local Dask cluster")
    args = parser.parse_args()

    registered = set(all_oracles())
    oracles = tuple(o for o in ORACLES if o in registered)
    missing = sorted(set(ORACLES) - registered)
    if missing:
        print(f"note: oracles not registered yet, measured without them: {missing}")
    config = CampaignConfig.create(seed=SEED, examples=0, oracles=oracles)
    indices = small_indices(args.cases)
    sizes = [case_from_index(SEED, i).spec.n_parameters for i in indices]
    print(
        f"{len(indices)} cases, P ≤ {MAX_PARAMETERS} (median P {statistics.median(sizes):.0f}), "
        f"reference vs {', '.join(oracles)}"
    )

    batch = campaign.batch_size_for(len(indices), args.workers)
    cold = [pool_throughput(config, indices, args.workers, batch) for _ in range(args.repeats)]
    with campaign.make_pool(args.workers) as pool:
        pool_throughput(config, indices[: 4 * args.workers], args.workers, 2, pool)  # workers import torch here
        warm = [pool_throughput(config, indices, args.workers, batch, pool) for _ in range(args.repeats)]
    for label, runs in (("end to end (spawning workers)", cold), ("steady state (warm workers)", warm)):
        rate = statistics.median(r[0] for r in runs)
        overhead = statistics.median(r[1] for r in runs)
        verdict = "meets" if rate >= 50 else "MISSES"
        print(
            f"process pool ×{args.workers}, batch {batch}, {label}: median {rate:.1f} cases/s over "
            f"{args.repeats} runs ({verdict} the 50 cases/s target); idle worker share {overhead:.1%}"
        )

    split = oracle_split(indices)
    total = sum(split.values())
    print(f"in-process time split over {len(indices)} cases ({len(indices) / total:.1f} cases/s on one core):")
    for name, seconds in sorted(split.items(), key=lambda item: -item[1]):
        print(f"  {name:26s} {seconds:7.3f} s  {seconds / total:6.1%}  {1e3 * seconds / len(indices):6.2f} ms/case")

    if args.dask:
        default = campaign.batch_size_for(len(indices), 2, campaign.DASK_BATCHES_PER_WORKER)
        dask_overhead(config, indices, [4, campaign.batch_size_for(len(indices), 2), default])


if __name__ == "__main__":
    main()
