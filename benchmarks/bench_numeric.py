"""Numeric oracles against torch.autograd.gradcheck, side by side in one run; and an accuracy table.

    python -m benchmarks.bench_numeric [--repeats 5] [--gradcheck-repeats 1] [--accuracy-cases 200]
                                       [--skip-speed]

1. Full gradient by central differences and by complex step on widths [64, 128, 128, 10], m = 16, tanh,
   mse, float64 (26,122 parameters), against ``torch.autograd.gradcheck(..., fast_mode=False)`` on an
   equivalent torch function of the flat parameter vector.  Ours run with one worker thread per core
   (the default) and with one thread; gradcheck with torch's default intra-op thread count and with one
   thread.  The ratios use the faster gradcheck.  Ours are timed before and after gradcheck, and the
   medians of both rounds are printed, so a load change during the run is visible.
2. Accuracy: each oracle's median and worst relative error against ``sympy_exact`` (or the reference
   when it is not registered) over random small architectures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from oracles.numeric import complex_step, finite_diff
from oracles.numeric.parallel import default_workers, worker_threads
from oracles.numeric.steps import flat
from oracles.registry import OracleOutput, all_oracles
from reference_impl import Case, Spec, case_from_index, gradients
from reference_impl.spec import Array

SPEC = Spec((64, 128, 128, 10), ("tanh", "tanh", "tanh"), "mse")
DEGENERATE = 1e-12


def median_time(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def torch_loss_of_flat(spec: Spec, X: Array, Y: Array) -> Callable[[torch.Tensor], torch.Tensor]:
    shapes = [spec.parameter_shape(n) for n in spec.parameter_names]
    X_t, Y_t = torch.tensor(X), torch.tensor(Y)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        offset, a = 0, X_t
        blocks = []
        for rows, cols in shapes:
            blocks.append(theta[offset : offset + rows * cols].reshape(rows, cols))
            offset += rows * cols
        for layer in range(spec.depth):
            a = torch.tanh(blocks[2 * layer] @ a + blocks[2 * layer + 1])
        return ((a - Y_t) ** 2).sum() / Y_t.shape[1]

    return loss


def relative(a: dict[str, Array], b: dict[str, Array]) -> float:
    """max |a − b| / max |b| over the whole gradient (the block-scaled measure of the tolerances)."""
    names = list(b)
    return float(np.abs(flat(a, names) - flat(b, names)).max() / np.abs(flat(b, names)).max())


def gradcheck_seconds(spec: Spec, params: dict[str, Array], X: Array, Y: Array, threads: int, repeats: int) -> float:
    """Median wall time of ``gradcheck(..., fast_mode=False)`` with ``threads`` torch intra-op threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        theta = torch.tensor(flat(params, spec.parameter_names), requires_grad=True)
        fn = torch_loss_of_flat(spec, X, Y)
        seconds, passed = median_time(lambda: torch.autograd.gradcheck(fn, (theta,), fast_mode=False), repeats)
    finally:
        torch.set_num_threads(previous)
    if passed is not True:
        raise RuntimeError("gradcheck did not pass on the benchmark network")
    return seconds


def speed(repeats: int, gradcheck_repeats: int) -> None:
    case = Case(SPEC, batch=16, seed=2024)
    params, X, Y = case.arrays()
    cores = default_workers()
    torch_default = torch.get_num_threads()
    print(f"architecture {list(SPEC.widths)}, m = 16, tanh, mse, float64: {SPEC.n_parameters} parameters")
    print(f"cores available {cores}; machine load average before the run {os.getloadavg()[0]:.2f}")
    # Ours at the default worker count (one thread per core) and at one thread, measured first and
    # again after gradcheck so that a load change during the run shows up rather than flattering us.
    ours: dict[tuple[str, int], list[float]] = {}
    results: dict[str, OracleOutput] = {}

    def measure_ours() -> None:
        for workers in sorted({cores, 1}, reverse=True):
            with worker_threads(workers):
                for label, oracle in (("fd", finite_diff.evaluate), ("cs", complex_step.evaluate)):
                    seconds, output = median_time(lambda oracle=oracle: oracle(SPEC, params, X, Y), repeats)
                    ours.setdefault((label, workers), []).append(seconds)
                    results[label] = output  # type: ignore[assignment]

    t_ref, ref = median_time(lambda: gradients(SPEC, params, X, Y), repeats)
    measure_ours()
    gradcheck: dict[int, float] = {}
    for threads in sorted({torch_default, 1}, reverse=True):
        gradcheck[threads] = gradcheck_seconds(SPEC, params, X, Y, threads, gradcheck_repeats)
    measure_ours()
    print(f"  reference backprop                        {t_ref * 1e3:9.2f} ms  (median of {repeats})")
    for (label, workers), times in sorted(ours.items()):
        name = "central differences" if label == "fd" else "complex step"
        spread = ", ".join(f"{t * 1e3:.1f}" for t in times)
        median = statistics.median(times) * 1e3
        print(f"  {name:20} {workers} thread(s)          {median:9.2f} ms  (before/after gradcheck: {spread})")
    for threads, seconds in gradcheck.items():
        label = f"gradcheck(fast_mode=False), {threads} torch thread(s)"
        print(f"  {label} {seconds * 1e3:9.2f} ms  ({gradcheck_repeats} run(s))")
    best_threads = min(gradcheck, key=lambda t: gradcheck[t])
    t_gc = gradcheck[best_threads]
    print(f"  baseline: the faster gradcheck ({best_threads} torch thread(s))")
    # The target is for the oracle as shipped (one worker thread per core, against gradcheck's faster
    # thread count); the one-thread ratio is printed beside it for machines with fewer free cores.
    for label, target, name in (("fd", 100, "central differences"), ("cs", 50, "complex step")):
        for workers in sorted({cores, 1}, reverse=True):
            ratio = t_gc / statistics.median(ours[(label, workers)])
            if workers == cores:
                verdict = f"target >= {target}x: {'met' if ratio >= target else 'NOT met'}"
            else:
                verdict = "one worker thread, for information"
            print(f"  ratio gradcheck / {name}, {workers} thread(s): {ratio:8.1f}x   ({verdict})")
    fd_err = relative(results["fd"].grads, results["cs"].grads)
    cs_err = relative(results["cs"].grads, ref)
    print(f"  central differences vs complex step: max|Δ|/max|g| = {fd_err:.2e}   (target <= 1e-8)")
    print(f"  complex step vs reference:           max|Δ|/max|g| = {cs_err:.2e}   (target <= 1e-14)")


def accuracy(n_cases: int) -> None:
    oracles = all_oracles()
    truth = "sympy_exact" if "sympy_exact" in oracles else None
    print(f"\naccuracy over {n_cases} random small architectures, against {truth or 'the reference (no sympy_exact)'}")
    errors: dict[str, list[float]] = {name: [] for name in oracles if name != truth}
    errors.setdefault("reference", [])
    skipped: dict[str, int] = {name: 0 for name in errors}
    kink_entries: dict[str, int] = {name: 0 for name in errors}
    degenerate = 0
    for index in range(n_cases):
        case = case_from_index(2024, index)
        params, X, Y = case.arrays()
        if truth is not None and not oracles[truth].supports(case.spec):
            continue
        exact = oracles[truth].evaluate(case.spec, params, X, Y).grads if truth else gradients(case.spec, params, X, Y)
        if not np.abs(flat(exact, case.spec.parameter_names)).max() > DEGENERATE:
            # e.g. a one-unit softmax: the gradient is exactly 0 and every oracle returns rounding noise.
            degenerate += 1
            continue
        for name in errors:
            if name == "reference":
                got = gradients(case.spec, params, X, Y)
            elif oracles[name].supports(case.spec):
                output = oracles[name].evaluate(case.spec, params, X, Y)
                masks = output.extra.get("kink_mask") or {}
                # A kink entry has no single right value (it is bracketed instead): left out, and counted.
                got = {k: np.where(masks[k], exact[k], v) if k in masks else v for k, v in output.grads.items()}
                kink_entries[name] += sum(int(np.count_nonzero(m)) for m in masks.values())
            else:
                skipped[name] += 1
                continue
            errors[name].append(relative(got, exact))
    print(f"  cases with an identically zero gradient (max|g| < {DEGENERATE:g}) left out: {degenerate}")
    print(f"  {'oracle':16} {'cases':>6} {'median':>10} {'worst':>10}  (max|Δ|/max|g| per case)")
    for name, values in errors.items():
        if values:
            print(
                f"  {name:16} {len(values):6d} {statistics.median(values):10.2e} {max(values):10.2e}"
                f"  unsupported {skipped[name]}, kink entries left out {kink_entries[name]}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gradcheck-repeats", type=int, default=1)
    parser.add_argument("--accuracy-cases", type=int, default=200)
    parser.add_argument("--skip-speed", action="store_true", help="only the accuracy table")
    args = parser.parse_args()
    if not args.skip_speed:
        speed(args.repeats, args.gradcheck_repeats)
    accuracy(args.accuracy_cases)


if __name__ == "__main__":
    main()
