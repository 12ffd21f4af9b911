"""The main job, measured side by side in one run: the README campaign, each oracle, gradcheck, ``verify``.

    python -m benchmarks.bench_main [--examples 500] [--seed 1] [--cases 200] [--exact-every 40]
                                    [--verify-examples 100] [--repeats 3] [--skip-cli]

Printed, in this order:

1. the README's first command, ``backprop-check run --examples 500 --seed 1 --out DIR``, run as a user
   runs it (a fresh process, the default oracle set and workers), ``--repeats`` times: the median
   cases per second over the whole command, how many cases the main process started while the workers
   imported torch, the CPU of each part (and the wall time all of it needs on two idle cores at best),
   and which oracle checked how many cases (``campaign.json``'s coverage, counted from the records);
2. where the time goes, in one process on one thread over the first ``--cases`` cases of the same
   campaign, in CPU seconds (sections 2-4 use CPU time, which other processes on a shared machine
   inflate far less than wall time): the subject, each oracle's comparisons on the cases the default
   policy gives it (cases/s per oracle), records to JSON, and ``sympy_exact``'s compile and the rest;
3. ``sympy_exact`` on *every* one of the first ``--exact-every`` cases (what the adaptive policy saves);
4. the same cases through a plain loop of ``torch.autograd.gradcheck`` (float64, its defaults), the
   check a user would otherwise write around torch alone;
5. ``backprop-check verify --examples 100`` on a correct subject (the reference) and on a buggy one (a
   planted mutant), diagnosis included: median wall and CPU time of each command (one process: on an
   idle machine its wall time is about its CPU time).

Targets (2 cores): ≥ 100 cases/s for (1) with every oracle; verify ≤ 5 s correct, ≤ 15 s buggy.  On a
shared machine the absolute figures move with the load and with the host's speed: the load average and
the time of a fixed Python loop are printed before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from oracles import sympy_exact
from oracles.registry import get_oracle
from oracles.subjects import call_subject, reference_subject
from oracles.torch_autograd import _forward, _loss
from oracles.verdicts.compare import compare_to_oracle
from reference_impl.case import Case
from reference_impl.generate import case_from_index
from reports import campaign, oracle_plan
from reports.worker_pool import WORKER_PRELOAD

BUGGY_SUBJECT = "property_tests.mutation.planted:scale_layer1"
CORRECT_SUBJECT = "reference_impl:gradients"


def python_loop_seconds() -> float:
    """Seconds for a fixed pure-Python loop: how fast this (shared, virtual) machine runs right now.

    On the development VM it moved by 1.7x within an hour at the same load average, and every wall-time
    figure here moves with it: compare runs by this figure as well as by the load."""
    start = time.perf_counter()
    total = 0
    for i in range(10**7):
        total += i
    return time.perf_counter() - start


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(args: list[str]) -> tuple[float, float, int, str]:
    """Wall time, CPU time of the command's own process, exit code and stdout of ``backprop-check ARGS``.

    The CPU time is the process's and the children it waited for: a campaign's workers, forked by the
    fork server, are not among them (their CPU is in campaign.json)."""
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "reports", *args], capture_output=True, text=True, check=False, env=dict(os.environ)
    )
    return time.perf_counter() - start, _children_cpu() - cpu, done.returncode, done.stdout


def preload_cpu() -> float:
    """CPU seconds of the fork server's imports (torch, SymPy, the oracles), in a fresh process."""
    start = _children_cpu()
    modules = ", ".join(WORKER_PRELOAD)
    subprocess.run([sys.executable, "-c", f"import {modules}"], check=True, env=dict(os.environ))
    return _children_cpu() - start


def readme_campaign(examples: int, seed: int, repeats: int) -> None:
    walls: list[float] = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "results"
            wall, parent_cpu, code, _ = command(
                ["run", "--examples", str(examples), "--seed", str(seed), "--out", str(out)]
            )
            meta = json.loads((out / campaign.CAMPAIGN_FILE).read_text(encoding="utf-8"))
        walls.append(wall)
    last = meta["last_run"]
    median = float(np.median(walls))
    print(f"1. README command: backprop-check run --examples {examples} --seed {seed} (exit {code}), {repeats} runs")
    print(
        f"   whole command    {median:7.2f} s  {examples / median:7.1f} cases/s median (start-up, workers, report "
        f"included; runs {min(walls):.2f}-{max(walls):.2f} s)"
    )
    early = last.get("cases_started_while_workers_booted", 0)
    print(
        f"   campaign phase   {last['wall_seconds']:7.2f} s  ({last['executor']}; the main process compared "
        f"{early} cases with the light oracles while the workers imported torch, the workers finished them)"
    )
    cpu = last.get("compute_cpu_seconds", 0.0)
    boot = preload_cpu()
    idle = (parent_cpu + cpu + boot) / 2
    print(
        f"   CPU of the last run: main process {parent_cpu:.2f} s (imports, early cases, records, report), "
        f"workers {cpu:.2f} s, worker imports ≈ {boot:.2f} s once; all of it on 2 idle cores ≥ {idle:.2f} s "
        f"= ≤ {examples / idle:.0f} cases/s"
    )
    print("   oracle coverage (from the records):")
    for name, row in meta["coverage"]["oracles"].items():
        print(f"     {name:15s} {row['cases']:6d} cases  {row['share']:6.1%}   {row['rule']}")


def per_oracle(cases: int, seed: int, exact_every: int) -> list[Case]:
    """Section 2 and 3: one thread, the default campaign's plan, each stage timed on its own."""
    campaign.limit_threads()
    config = campaign.CampaignConfig.create(seed=seed, examples=cases)
    subject = reference_subject()
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    exact_stages: dict[str, float] = defaultdict(float)
    chosen: list[Case] = []
    for index in range(cases):
        case = case_from_index(seed, index)
        chosen.append(case)
        start = time.process_time()
        names, _ = oracle_plan.case_plan(config, index, case)
        seconds["plan (policy, supports)"] += time.process_time() - start
        start = time.process_time()
        call = call_subject(subject, case)
        params, X, Y = case.arrays()
        assert subject.deltas is not None and call.grads is not None
        deltas = subject.deltas(case.spec, params, X, Y)
        seconds["subject (reference + δ)"] += time.process_time() - start
        counts["subject (reference + δ)"] += 1
        records = []
        for name in names:
            start = time.process_time()
            if name == "sympy_exact":
                # compile first, timed on its own (the comparison then finds it cached)
                sympy_exact.compiled(case.spec, 1)
                exact_stages["compile (build, diff, tape)"] += time.process_time() - start
            records += compare_to_oracle(case, subject.name, call.grads, get_oracle(name), subject_deltas=deltas)
            seconds[name] += time.process_time() - start
            counts[name] += 1
        start = time.process_time()
        for record in records:
            record.to_json()
        seconds["records to JSON"] += time.process_time() - start
        assert not any(r.failed for r in records), [r.summary() for r in records if r.failed]
    total = sum(seconds.values())
    exact_compile = sum(exact_stages.values())
    exact_stages["evaluate and compare"] = seconds.get("sympy_exact", 0.0) - exact_compile
    print(
        f"2. where the time goes: first {cases} cases in one process, one thread: {total:.2f} CPU s "
        f"= {cases / total:.1f} cases/s on one core"
    )
    for name, value in sorted(seconds.items(), key=lambda item: -item[1]):
        n = counts.get(name, cases)
        rate = f"{n / value:9.1f} cases/s" if value > 0 else ""
        per_case = 1e3 * value / max(n, 1)
        print(f"   {name:26s} {value:7.3f} s {value / total:6.1%}  {n:5d} cases {per_case:7.2f} ms/case {rate}")
    if exact_compile:
        stages = ", ".join(f"{k} {v:.2f} CPU s" for k, v in exact_stages.items())
        print(f"   sympy_exact stages: {stages}")

    n = min(exact_every, cases)
    sympy_exact.clear_cache()
    oracle = get_oracle("sympy_exact")
    start = time.process_time()
    checked = 0
    for case in chosen[:n]:
        if oracle.supports(case.spec):
            oracle.evaluate(case.spec, *case.arrays())
            checked += 1
    spent = time.process_time() - start
    print(
        f"3. sympy_exact on every one of the first {n} cases ({checked} supported): {spent:.2f} s = "
        f"{1e3 * spent / max(checked, 1):.1f} ms/case, {checked / spent:.1f} cases/s on one core"
    )
    return chosen


def gradcheck_loop(cases: list[Case]) -> None:
    torch.set_num_threads(1)
    start = time.process_time()
    passed = 0
    for case in cases:
        params, X, Y = case.arrays()
        names = list(case.spec.parameter_names)
        tensors = [torch.tensor(params[n], requires_grad=True) for n in names]
        data = (torch.tensor(X), torch.tensor(Y))

        def loss(
            *theta: torch.Tensor, case: Case = case, names: list[str] = names, data: tuple[torch.Tensor, ...] = data
        ) -> torch.Tensor:
            zs, a_out = _forward(case.spec, dict(zip(names, theta, strict=True)), data[0])
            return _loss(case.spec, zs[-1], a_out, data[1])

        with contextlib.suppress(RuntimeError):  # gradcheck raises on a disagreement (relu kinks)
            passed += bool(torch.autograd.gradcheck(loss, tuple(tensors)))
    spent = time.process_time() - start
    print(
        f"4. torch.autograd.gradcheck, plain loop over the same {len(cases)} cases (one thread): {spent:.2f} s = "
        f"{len(cases) / spent:.1f} cases/s on one core; passed {passed}/{len(cases)} "
        "(it checks torch against its own finite differences: no δ, no other oracle)"
    )


def verify_times(examples: int, repeats: int) -> None:
    print(f"5. backprop-check verify --examples {examples}, diagnosis included ({repeats} runs each, medians):")
    for label, subject in (("correct", CORRECT_SUBJECT), ("buggy", BUGGY_SUBJECT)):
        runs = [command(["verify", subject, "--examples", str(examples)]) for _ in range(repeats)]
        wall, cpu = float(np.median([r[0] for r in runs])), float(np.median([r[1] for r in runs]))
        code, out = runs[-1][2], runs[-1][3]
        first = out.splitlines()[0] if out else ""
        print(f"   {label:8s} {subject:45s} {wall:6.2f} s wall, {cpu:5.2f} s CPU (exit {code}) {first[:70]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=200, help="cases for the per-oracle split and gradcheck")
    parser.add_argument("--exact-every", type=int, default=40, help="cases for sympy_exact on every case")
    parser.add_argument("--verify-examples", type=int, default=100)
    parser.add_argument("--skip-cli", action="store_true", help="skip the two commands run as subprocesses")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each command (medians are printed)")
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}; numpy {np.__version__}; "
        f"machine speed: a 10^7-step Python loop takes {python_loop_seconds():.2f} s"
    )
    if not args.skip_cli:
        readme_campaign(args.examples, args.seed, args.repeats)
    cases = per_oracle(args.cases, args.seed, args.exact_every)
    gradcheck_loop(cases)
    if not args.skip_cli:
        verify_times(args.verify_examples, args.repeats)
    print(f"load average after: {os.getloadavg()[0]:.2f}; the Python loop now takes {python_loop_seconds():.2f} s")


if __name__ == "__main__":
    main()
