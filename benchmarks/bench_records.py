"""Record size at campaign scale: results.jsonl on disk and ``backprop-check report`` time and peak memory.

    python -m benchmarks.bench_records [--cases 100000] [--full-cases 20000] [--failure-rate 0.01]

Targets for 10^5 cases: results ≤ 200 MB, report ≤ 10 s and ≤ 1 GB peak memory.

A campaign's records are synthesised from real ones: ``run_case`` of the default campaign (every
oracle) on 40 cases of the reference and 40 of a planted bug, copied onto ``--cases`` case ids (errors
jittered log-uniformly by up to a decade), and written exactly as the campaign writes them — plain passes
in one lean line per case, the rest in full (without the per-case fsync, which only costs time here).
Side by side, the same records written one full line each, as before lean lines (at ``--full-cases``:
a 10^5-case full file is over a gigabyte).  ``report`` runs in a fresh process, timed from the command
line, its peak resident memory read from the kernel.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reports.campaign import RESULTS_FILE, CampaignConfig, environment_versions, run_case, write_campaign
from reports.records import Record
from reports.resultfile import case_lines, is_plain_pass

SEED = 9
PLANTED = "property_tests.mutation.planted:scale_layer1"
TEMPLATES = 40
MEASURE = (
    "import resource, sys, time\n"
    "from reports.cli.app import main\n"
    "start, cpu = time.perf_counter(), time.process_time()\n"
    "code = main(['report', sys.argv[1]])\n"
    "seconds, cpu = time.perf_counter() - start, time.process_time() - cpu\n"
    # VmHWM is this program's own peak; ru_maxrss would also count the benchmark it was forked from.
    "try:\n"
    "    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
    "    peak = int(status.split()[0])\n"
    "except OSError:\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(code, seconds, cpu, peak, file=sys.stderr)\n"
)


def templates() -> tuple[list[list[Record]], list[list[Record]]]:
    """Every record of real cases: the reference (all pass) and a planted bug (failures in full)."""
    config = CampaignConfig.create(seed=SEED, examples=TEMPLATES)
    passing = [run_case(config, i) for i in range(TEMPLATES)]
    buggy = CampaignConfig.create(seed=SEED, examples=TEMPLATES, subject=PLANTED)
    failing = [run_case(buggy, i) for i in range(TEMPLATES)]
    return passing, failing


def write_results(
    directory: Path, count: int, failure_rate: float, lean: bool, sources: tuple[list[list[Record]], ...]
) -> tuple[float, int, int]:
    """Write ``count`` cases; returns (MB on disk, records, failing cases)."""
    rng = np.random.default_rng(20261130)
    passing, failing = sources
    records_written = failures = 0
    with (directory / RESULTS_FILE).open("w", encoding="utf-8") as handle:
        for number in range(count):
            fails = rng.random() < failure_rate
            source = (failing if fails else passing)[int(rng.integers(TEMPLATES))]
            failures += fails
            cid = f"{SEED}-{number:06d}"
            label = source[0].case_id
            jitter = float(10.0 ** rng.uniform(-1, 1))
            case = [
                dataclasses.replace(
                    r,
                    case_id=cid,
                    case=r.case.replace(f"label='{label}'", f"label='{cid}'"),
                    rel_err=None if r.rel_err is None else r.rel_err * (jitter if is_plain_pass(r) else 1.0),
                    extra={**r.extra, "campaign": {"records": len(source), "index": number}},
                )
                for r in source
            ]
            lines = case_lines(case) if lean else [r.to_json() for r in case]
            handle.write("".join(line + "\n" for line in lines))
            records_written += len(case)
    config = CampaignConfig.create(seed=SEED, examples=count)
    write_campaign(directory, {"config": config.to_dict(), "versions": environment_versions()})
    return (directory / RESULTS_FILE).stat().st_size / 1e6, records_written, failures


def measure_report(directory: Path) -> tuple[float, float, float, float]:
    """(wall seconds of the whole command, seconds and CPU seconds inside ``report``, peak RSS in MB)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, str(directory)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    code, seconds, cpu, peak_kb = done.stderr.strip().splitlines()[-1].split()
    if int(code) not in (0, 1):
        raise SystemExit(f"report failed: {done.stderr}")
    return wall, float(seconds), float(cpu), int(peak_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--full-cases", type=int, default=20_000, help="cases for the full-line comparison (0: skip)")
    parser.add_argument("--failure-rate", type=float, default=0.01)
    args = parser.parse_args()
    start = time.perf_counter()
    sources = templates()
    per_case = np.mean([len(c) for c in sources[0]])
    took = time.perf_counter() - start
    print(f"templates: {TEMPLATES} + {TEMPLATES} real cases, {per_case:.1f} records per case ({took:.0f} s)")
    rows = []
    runs = [("lean", args.cases, True)]
    if args.full_cases:
        runs = [("lean", args.full_cases, True), ("full", args.full_cases, False), *runs]
    for name, count, lean in runs:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            mb, records, failures = write_results(directory, count, args.failure_rate, lean, sources)
            wall, seconds, cpu, peak = measure_report(directory)
            rows.append((name, count, records, failures, mb, wall, seconds, cpu, peak))
    # On a shared machine the wall time also counts waiting for a core; the CPU column does not.
    columns = ("lines", "cases", "records", "failing", "MB", "B/case", "report s", "in report", "CPU s", "peak MB")
    print(f"{columns[0]:<6} " + " ".join(f"{c:>9}" for c in columns[1:]))
    for name, count, records, failures, mb, wall, seconds, cpu, peak in rows:
        print(
            f"{name:<6} {count:>9} {records:>9} {failures:>9} {mb:>9.1f} {mb * 1e6 / count:>9.0f} {wall:>9.2f} "
            f"{seconds:>9.2f} {cpu:>9.2f} {peak:>9.0f}"
        )
    if args.full_cases:
        lean_row, full_row = rows[0], rows[1]
        print(
            f"at {args.full_cases} cases, lean vs full: size {full_row[4] / lean_row[4]:.1f}x smaller, "
            f"report {full_row[7] / lean_row[7]:.1f}x less CPU, peak memory {full_row[8] / lean_row[8]:.1f}x lower"
        )
    final = rows[-1]
    verdicts = [
        f"results {final[4]:.0f} MB (target ≤ 200: {'met' if final[4] <= 200 else 'MISSED'})",
        f"report {final[5]:.1f} s wall, {final[7]:.1f} s CPU (target ≤ 10: {'met' if final[5] <= 10 else 'MISSED'})",
        f"peak {final[8]:.0f} MB (target ≤ 1024: {'met' if final[8] <= 1024 else 'MISSED'})",
    ]
    print(f"at {final[1]} cases: " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
