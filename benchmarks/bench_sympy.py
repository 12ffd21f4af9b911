"""The exact oracle's speed: cold and warm against the naive SymPy route, measured side by side in one run.

    python -m benchmarks.bench_sympy [--quick] [--warm-cases 9] [--tractability]

Architecture of the issue: widths [4, 8, 8, 2], m = 4, tanh on every layer, mse (130 parameters).

- naive: the scalar loss built in SymPy (data as symbols too), ``sympy.diff`` per parameter,
  ``sympy.lambdify(..., cse=True)``, one evaluation (about two minutes here; ``--quick`` skips it);
- cold: ``oracles.sympy_exact`` on a first case with an empty cache (SymEngine expression and
  derivatives, DAG sharing, compilation to 200-bit Python, one evaluation);
- warm: further cases of the same architecture (new parameters and data), median and worst.

Targets: cold ≤ 5 s, warm ≤ 50 ms.  Also printed: sympy_exact's relative error against the NumPy
reference (≈ 1e-16, float64 rounding of the reference itself), and with ``--tractability`` cold/warm
times of larger shapes up to the declared limit.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy

from oracles import sympy_exact
from reference_impl import Case, Spec, gradients
from reference_impl.spec import Array, Params

SPEC = Spec((4, 8, 8, 2), ("tanh", "tanh", "tanh"), "mse")
BATCH = 4
COLD_TARGET = 5.0
WARM_TARGET = 0.050
TRACTABILITY = [
    (Spec((10, 20, 10, 5), ("tanh", "relu", "sigmoid"), "mse"), 8),
    (Spec((8, 16, 16, 8), ("softplus", "leaky_relu", "softmax"), "cce"), 8),
    (Spec((8,) * 9, ("tanh",) * 8, "mse"), 4),  # 576 parameters at the depth limit: the slowest supported kind
]


def block_relative_error(ours: Params, reference: Params) -> float:
    """Worst |ours − reference| over each block, relative to the block's largest entry."""
    return max(float(np.max(np.abs(ours[k] - reference[k])) / np.max(np.abs(reference[k]))) for k in reference)


def naive_gradients(spec: Spec, batch: int) -> Callable[..., Any]:
    """The naive route: SymPy expression, sympy.diff per parameter, lambdify with cse."""
    symbols: dict[str, Any] = {}
    for name in spec.parameter_names:
        rows, cols = spec.parameter_shape(name)
        symbols[name] = sympy.Matrix(rows, cols, lambda i, j, n=name: sympy.Symbol(f"{n}_{i}_{j}"))
    X = sympy.Matrix(spec.widths[0], batch, lambda i, k: sympy.Symbol(f"X_{i}_{k}"))
    Y = sympy.Matrix(spec.widths[-1], batch, lambda i, k: sympy.Symbol(f"Y_{i}_{k}"))
    A = X
    for layer in range(1, spec.depth + 1):
        Z = symbols[f"W{layer}"] * A + symbols[f"b{layer}"] * sympy.ones(1, batch)
        A = Z.applyfunc(sympy.tanh)
    loss = sum((Y[i, k] - A[i, k]) ** 2 for i in range(Y.rows) for k in range(batch)) / batch
    parameters = [s for name in spec.parameter_names for s in symbols[name]]
    derivatives = [sympy.diff(loss, p) for p in parameters]
    return sympy.lambdify([*parameters, *X, *Y], derivatives, modules="numpy", cse=True)


def naive_evaluate(fn: Callable[..., Any], spec: Spec, params: Params, X: Array, Y: Array) -> Params:
    flat = fn(*(v for n in spec.parameter_names for v in params[n].ravel()), *X.ravel(), *Y.ravel())
    values = iter(np.asarray(flat, dtype=np.float64).ravel())
    return {n: np.array([next(values) for _ in range(params[n].size)]).reshape(params[n].shape) for n in params}


def run_naive(spec: Spec, batch: int) -> tuple[float, Params, Params]:
    params, X, Y = Case(spec, batch=batch, seed=1).arrays()
    start = time.perf_counter()
    fn = naive_gradients(spec, batch)
    grads = naive_evaluate(fn, spec, params, X, Y)
    return time.perf_counter() - start, grads, gradients(spec, params, X, Y)


def run_ours(spec: Spec, batch: int, warm_cases: int) -> tuple[float, list[float], list[float], dict[str, float]]:
    """Cold seconds, warm seconds per case, relative errors vs the reference, compile breakdown."""
    sympy_exact.clear_cache()
    params, X, Y = Case(spec, batch=batch, seed=1).arrays()
    start = time.perf_counter()
    output = sympy_exact.evaluate(spec, params, X, Y)
    cold = time.perf_counter() - start
    errors = [block_relative_error(output.grads, gradients(spec, params, X, Y))]
    warm: list[float] = []
    for seed in range(2, 2 + warm_cases):
        params, X, Y = Case(spec, batch=batch, seed=seed).arrays()
        start = time.perf_counter()
        output = sympy_exact.evaluate(spec, params, X, Y)
        warm.append(time.perf_counter() - start)
        errors.append(block_relative_error(output.grads, gradients(spec, params, X, Y)))
    return cold, warm, errors, dict(sympy_exact.compiled(spec).seconds)


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the naive SymPy route (about two minutes)")
    parser.add_argument("--warm-cases", type=int, default=9)
    parser.add_argument("--tractability", action="store_true", help="also time larger shapes up to the limit")
    args = parser.parse_args(argv)

    print(
        f"architecture {list(SPEC.widths)} {SPEC.activations[0]} {SPEC.loss}, m = {BATCH}, "
        f"{SPEC.n_parameters} parameters"
    )
    cold, warm, errors, seconds = run_ours(SPEC, BATCH, args.warm_cases)
    warm_median = statistics.median(warm)
    breakdown = ", ".join(f"{k} {v:.3f} s" for k, v in seconds.items())
    print(f"sympy_exact cold : {cold:8.3f} s   ({breakdown}; {sympy_exact.compiled(SPEC).n_operations} operations)")
    print(
        f"sympy_exact warm : {warm_median * 1e3:8.2f} ms median, {max(warm) * 1e3:.2f} ms worst over {len(warm)} cases"
    )
    print(f"accuracy vs reference: median {statistics.median(errors):.1e}, worst {max(errors):.1e} (block-relative)")
    print(
        f"cold ≤ {COLD_TARGET:.0f} s: {_verdict(cold <= COLD_TARGET)};  warm ≤ {WARM_TARGET * 1e3:.0f} ms: "
        f"{_verdict(warm_median <= WARM_TARGET)}"
    )
    if not args.quick:
        naive_seconds, naive_grads, reference = run_naive(SPEC, BATCH)
        print(f"naive SymPy      : {naive_seconds:8.1f} s   (build, diff per parameter, lambdify cse, evaluate)")
        print(f"ratio naive/cold : {naive_seconds / cold:8.0f}x")
        print(f"ratio naive/warm : {naive_seconds / warm_median:8.0f}x")
        print(f"naive (float64 lambdify) vs reference: {block_relative_error(naive_grads, reference):.1e}")
    if args.tractability:
        print("\ntractability (cold includes compiling; warm is one further case):")
        for spec, batch in TRACTABILITY:
            cold, warm, errors, _ = run_ours(spec, batch, 1)
            print(
                f"  {spec.n_parameters:4d} params, depth {spec.depth:2d}, m = {batch}: cold {cold:6.2f} s, "
                f"warm {warm[0]:6.3f} s, error {max(errors):.1e}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
