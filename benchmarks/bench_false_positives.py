"""False-positive rate: the correct reference over a large campaign must never be called wrong.

    python -m benchmarks.bench_false_positives [--cases 10000] [--seed 0] [--oracles A,B]

Every campaign case ``(seed, 0..N-1)`` is checked against the cheap oracles (torch and every numeric
oracle that is registered; the exact symbolic one costs seconds per case), with the same kink
classification as the kill matrix.  Prints the figure (failures / comparisons), the kink count, the
term coverage of the campaign and the time per case; exits 1 if any comparison failed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import torch

from property_tests.coverage import measure, warn_if_uncovered
from property_tests.mutation.false_positives import cheap_oracles, false_positive_campaign
from reference_impl import case_from_index

CHUNK = 500


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oracles", default=None, help="comma-separated (default: torch + numeric oracles)")
    args = parser.parse_args(argv)
    # The matrices are tiny: intra-op threads only spin against each other on a shared 2-core machine
    # (measured: 74 ms vs 11 ms per torch comparison while another process was running).
    torch.set_num_threads(1)
    names = args.oracles.split(",") if args.oracles else list(cheap_oracles())
    print(f"reference vs {names} on {args.cases} campaign cases (seed {args.seed})", flush=True)
    failures, comparisons, kinks, raw = 0, 0, 0, 0
    per_case: list[float] = []
    start = time.perf_counter()
    # Chunks only for progress lines: case (seed, i) is the same whichever chunk computes it.
    for first in range(0, args.cases, CHUNK):
        count = min(CHUNK, args.cases - first)
        chunk_start = time.perf_counter()
        result = false_positive_campaign(count, args.seed, names, start=first)
        per_case.append((time.perf_counter() - chunk_start) / count)
        failures += len(result.failures)
        comparisons += result.n_comparisons
        kinks += result.kinks
        raw += result.raw_failures
        for record in result.failures[:5]:
            print("  FALSE POSITIVE:", record.summary(), record.case, flush=True)
        print(f"  {first + count}/{args.cases} cases, {failures} false positives so far", flush=True)
    elapsed = time.perf_counter() - start
    coverage = measure(case_from_index(args.seed, i) for i in range(args.cases))
    print(f"term coverage: {coverage.n_cases} cases, uncovered terms: {warn_if_uncovered(coverage) or 'none'}")
    print(f"kink verdicts: {kinks} (raw failures before kink classification: {raw})")
    print(f"time: {elapsed:.1f} s total, median {1e3 * statistics.median(per_case):.2f} ms per case")
    rate = failures / comparisons if comparisons else 0.0
    print(f"false positives: {failures}/{comparisons} comparisons over {args.cases} cases (rate {rate:.2e})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
