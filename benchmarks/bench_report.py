"""HTML report at scale: render time and file size for 100,000 records (targets: ≤ 5 s, ≤ 5 MB).

    python -m benchmarks.bench_report [--records 100000] [--failure-rate 0.01] [--repeats 3]

Records are synthetic but shaped like real ones: a few real comparisons (the reference and a planted
bug against torch autograd) are copied onto 100,000 campaign case ids with random architectures and
log-uniform errors, so the JSONL has realistic per-block summaries and, for failures, |Δ| heatmaps.
The time measured is the whole ``backprop-check report DIR``: reading the JSONL, aggregating, plotting,
rendering and writing the file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from oracles.subjects import Subject, reference_subject
from oracles.verdicts.compare import check_case
from property_tests.mutation.catalogue import MUTANTS
from reference_impl.generate import case_from_index
from reports.campaign import RESULTS_FILE, CampaignConfig, environment_versions, write_campaign
from reports.html import write_report
from reports.records import Record


def synthesise(count: int, failure_rate: float, rng: np.random.Generator) -> Iterator[str]:
    """JSONL lines: real records' shapes on ``count`` campaign case ids, errors drawn log-uniformly."""
    passing = [r.to_json() for i in range(20) for r in check_case(case_from_index(3, i), reference_subject())]
    planted = Subject("planted", MUTANTS["transpose_W"].gradients)
    failing = [r.to_json() for i in range(40) for r in check_case(case_from_index(3, i), planted) if r.failed]
    oracles = ["torch_autograd", "complex_step", "finite_diff"]
    for number in range(count):
        fails = rng.random() < failure_rate
        templates = failing if fails else passing
        record = Record.from_dict(json.loads(templates[int(rng.integers(len(templates)))]))
        case = case_from_index(9, number)
        record.case_id, record.case, record.spec = case.id, repr(case), case.spec.to_dict()
        record.oracle = oracles[int(rng.integers(len(oracles)))]
        record.rel_err = float(10.0 ** (rng.uniform(-6, 0) if fails else rng.uniform(-17, -13)))
        record.extra["campaign"] = {"records": 1, "index": number}
        yield record.to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--failure-rate", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(20261128)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        start = time.perf_counter()
        failures = 0
        with (directory / RESULTS_FILE).open("w", encoding="utf-8") as handle:
            for line in synthesise(args.records, args.failure_rate, rng):
                failures += line.endswith('"verdict": "fail"}')
                handle.write(line + "\n")
        jsonl_mb = (directory / RESULTS_FILE).stat().st_size / 1e6
        config = CampaignConfig.create(seed=9, examples=args.records)
        write_campaign(directory, {"config": config.to_dict(), "versions": environment_versions()})
        print(
            f"{args.records} records ({failures} failing), JSONL {jsonl_mb:.1f} MB, "
            f"synthesised in {time.perf_counter() - start:.1f} s"
        )
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            path = write_report(directory)
            times.append(time.perf_counter() - start)
        size_mb = path.stat().st_size / 1e6
        render = statistics.median(times)
        print(
            f"report: median {render:.2f} s over {args.repeats} renders (target ≤ 5 s: "
            f"{'met' if render <= 5 else 'MISSED'}), {size_mb:.2f} MB (target ≤ 5 MB: "
            f"{'met' if size_mb <= 5 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
