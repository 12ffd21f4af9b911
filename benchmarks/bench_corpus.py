"""Verdicts on code nobody here tuned to: the held-out corpus through ``verify``.

    python -m benchmarks.bench_corpus [--seeds 5] [--examples 300] [--unstable-seeds 5] [--only NAME]

1. Every correct implementation in ``property_tests/corpus/correct`` (textbook loops, per example,
   row-major behind an adapter, classes, einsum, the logistic as 1/(1 + e^(−z)), a tape autodiff) runs
   through ``verify``'s own path (:func:`reports.cli.verify.verify_subject`, torch oracle, protocol guards)
   over ``--seeds`` seeds × ``--examples`` cases, stress cases included at the default share.  Target: 0
   cases flagged.  Precision findings (right, but less precise than float64 allows) are counted beside.
2. Every unstable implementation in ``property_tests/corpus/unstable`` runs through the real CLI,
   ``backprop-check verify MODULE:ATTR --seed S`` at the default ``--examples``, for ``--unstable-seeds``
   seeds.  Target: exit 1 with an ``unstable`` diagnosis first, every time.

Exits 1 if either target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from collections.abc import Sequence

import torch

from oracles.diagnosis.family import Family, family_cases
from oracles.subjects import load_subject, subject_supports
from property_tests.corpus import targets
from reports.cli.app import main as cli
from reports.cli.verify import verify_subject


def correct_corpus(names: list[str], seeds: Sequence[int], examples: int) -> tuple[int, int, int]:
    """(cases, flagged, with a precision finding) over every correct implementation × seed."""
    total = flagged = imprecise = 0
    for target in names:
        subject = load_subject(target)
        family = Family.from_supports(subject_supports(target))
        start = time.perf_counter()
        cases = wrong = precision = stressed = 0
        first = ""
        for seed in seeds:
            drawn = family_cases(family, seed, examples)
            result = verify_subject(subject, drawn)
            cases += len(drawn)
            stressed += sum(c.stress for c in drawn)
            wrong += len(result.failing_cases)
            precision += len(result.precision)
            if result.failing_cases and not first:
                first = repr(result.failing_cases[0])
        short = target.split(".")[-1]
        print(
            f"  {short:<28} {cases:>6} cases ({stressed} stress)  flagged {wrong:>3}  precision {precision:>4}"
            f"  {time.perf_counter() - start:6.1f} s",
            flush=True,
        )
        if first:
            print(f"    first flagged: {first}", flush=True)
        total, flagged, imprecise = total + cases, flagged + wrong, imprecise + precision
    return total, flagged, imprecise


def unstable_corpus(names: list[str], seeds: Sequence[int]) -> tuple[int, int]:
    """(runs, runs reported unstable with exit 1) over every unstable implementation × seed."""
    runs = caught = 0
    for target in names:
        outcomes = []
        for seed in seeds:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                code = cli(["verify", target, "--seed", str(seed)])
            lines = buffer.getvalue().splitlines()
            unstable = code == 1 and bool(lines) and lines[0].startswith("diagnosis: unstable")
            outcomes.append(unstable)
            if not unstable:
                print(f"    seed {seed}: exit {code}, {lines[0] if lines else 'no output'}", flush=True)
        first = next((line for line in lines if line.startswith("diagnosis:")), "")
        short = target.split(".")[-1]
        print(f"  {short:<28} unstable on {sum(outcomes)}/{len(outcomes)} seeds; {first[:150]}", flush=True)
        runs, caught = runs + len(outcomes), caught + sum(outcomes)
    return runs, caught


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per correct implementation (1..N)")
    parser.add_argument("--examples", type=int, default=300, help="verify cases per seed")
    parser.add_argument("--unstable-seeds", type=int, default=5, help="seeds per unstable implementation (0..N-1)")
    parser.add_argument("--only", default=None, help="only implementations whose module name contains this")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny matrices: intra-op threads only contend on a shared machine
    pick = (lambda names: [n for n in names if args.only in n]) if args.only else (lambda names: names)
    start = time.perf_counter()
    print(f"correct corpus: verify over seeds 1..{args.seeds} x {args.examples} examples", flush=True)
    cases, flagged, imprecise = correct_corpus(pick(targets("correct")), range(1, args.seeds + 1), args.examples)
    print(f"unstable corpus: verify at the default --examples, seeds 0..{args.unstable_seeds - 1}", flush=True)
    runs, caught = unstable_corpus(pick(targets("unstable")), range(args.unstable_seeds))
    print(f"time: {time.perf_counter() - start:.0f} s")
    print(f"correct corpus: {flagged} of {cases} verify cases flagged ({imprecise} with a precision finding)")
    print(f"unstable corpus: {caught} of {runs} verify runs reported unstable with exit 1")
    return 0 if flagged == 0 and caught == runs else 1


if __name__ == "__main__":
    sys.exit(main())
