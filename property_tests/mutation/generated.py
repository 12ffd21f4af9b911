"""The held-out measurement: generated mutants of independent implementations, killed and diagnosed.

For each mutant (:mod:`property_tests.mutation.generator`):

1. **equivalent?**  Its gradients are compared with complex-step truth on many cases (random campaign
   cases plus edge cases: m = 1, one output, square layers, every activation and loss).  Agreeing on all
   of them, it is *equivalent* and set aside; agreeing everywhere except at exact kinks, it is a *kink*
   convention and set aside too; raising, or a protocol fault anywhere, makes it non-equivalent.
2. **killed?**  What ``verify`` does: ``examples`` cases drawn from every architecture, each call guarded
   (exceptions, shapes, mutation, two identical calls) and compared with torch autograd.
3. **diagnosed?**  What ``verify`` then prints first: the diagnosis of the killed mutant given its first
   failing cases, judged by :func:`property_tests.mutation.judge.verdict` from the mutant's label.

The bases are split: ``TUNE`` (looked at while the diagnoser was written) and ``HELD_OUT`` (reported).
Kill rate = killed / non-equivalent; precision = right / specific findings; recall = right / killed.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import signal
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import numpy as np

from oracles.diagnosis.diagnose import diagnose_subject
from oracles.diagnosis.family import Family, family_cases
from oracles.registry import Oracle, get_oracle
from oracles.subjects import Subject, call_subject, invoke, validate_gradients
from oracles.verdicts.blocks import compare_block
from oracles.verdicts.compare import compare_to_oracle
from oracles.verdicts.rounding_scale import case_magnitudes
from oracles.verdicts.tolerances import tolerance_for
from property_tests.mutation.generator import BASES, GeneratedMutant, all_mutants
from property_tests.mutation.judge import verdict
from property_tests.mutation.outcomes import memoised
from reference_impl.case import Case
from reference_impl.generate import case_from_index
from reference_impl.spec import ACTIVATION_NAMES, LOSS_NAMES, Params, Spec

TUNE: tuple[str, ...] = ("g_loop", "g_class")
HELD_OUT: tuple[str, ...] = tuple(b for b in BASES if b not in TUNE)
EQUIVALENCE_SEED = 912_345  # far from any seed verify or the diagnoser use


@dataclass(frozen=True)
class Settings:
    """How big the measurement is: every knob has a cheap value for tests and a full one for the report."""

    examples: int = 25  # verify's cases per mutant (its default)
    equivalence_cases: int = 60  # random truth cases per mutant (edge cases come on top)
    seed: int = 0
    per_base: int | None = None  # at most this many mutants per base (evenly spaced), None: all
    bases: tuple[str, ...] = BASES
    workers: int = 1
    time_limit: int = 120  # seconds per mutant before it counts as hanging


def equivalence_cases(count: int) -> list[Case]:
    """Random campaign cases (off the kinks) plus edge cases: each loss at m = 1, one output, square layers."""
    cases = [dataclasses.replace(case_from_index(EQUIVALENCE_SEED, i), kinks=False) for i in range(count)]
    hidden = [a for a in ACTIVATION_NAMES if a != "softmax"]
    for i, loss in enumerate(LOSS_NAMES):
        out = {"bce": "sigmoid", "cce": "softmax"}.get(loss, "identity")
        n_out = 3 if loss == "cce" else 1
        for j, act in enumerate(hidden):
            spec = Spec((2, 3, 3, n_out), (act, hidden[(j + 1) % len(hidden)], out), loss)
            cases.append(
                Case(spec, batch=1 + (i + j) % 3, seed=EQUIVALENCE_SEED + 10 * i + j, label=f"eq-{loss}-{act}")
            )
        square = Spec((3, 3, 3), ("tanh", out if loss in ("bce", "cce") else "tanh"), loss)
        cases.append(Case(square, batch=3, seed=EQUIVALENCE_SEED + i, label=f"eq-{loss}-square"))
    return cases


def kink_cases(count: int) -> list[Case]:
    """Cases with relu/leaky_relu pre-activations exactly on 0, where the derivative is a convention."""
    made = [dataclasses.replace(case_from_index(EQUIVALENCE_SEED, i), kinks=True, stress=False) for i in range(count)]
    own = [
        Case(
            Spec((3, 4, 3, 2), (a, a, "identity"), "mse"),
            batch=4,
            seed=EQUIVALENCE_SEED + k,
            kinks=True,
            label=f"kink-{a}",
        )
        for k, a in enumerate(("relu", "leaky_relu"))
    ]
    return own + [case for case in made if case.problem.kink_sites]


@dataclass
class Context:
    """What every mutant is measured against: truth per equivalence case, verify's cases and oracle."""

    settings: Settings
    truth: list[tuple[Case, Params]] = field(default_factory=list)
    kinks: list[tuple[Case, Params]] = field(default_factory=list)
    verify_cases: list[Case] = field(default_factory=list)
    oracles: dict[str, Oracle] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Context:
        exact = get_oracle("complex_step")

        def truth(case: Case) -> Params:
            params, X, Y = case.arrays()
            return exact.evaluate(case.spec, params, X, Y).grads

        context = cls(settings)
        context.truth = [(c, truth(c)) for c in equivalence_cases(settings.equivalence_cases)]
        context.kinks = [(c, truth(c)) for c in kink_cases(settings.equivalence_cases)]
        context.verify_cases = family_cases(Family(), settings.seed, settings.examples)
        torch = get_oracle("torch_autograd")
        context.oracles = {c.id: memoised(torch) for c in context.verify_cases}
        return context


def _agrees(fn: Callable[..., Any], case: Case, truth: Params) -> bool:
    params, X, Y = case.arrays()
    call = invoke(Subject("mutant", fn), case.spec, params, X, Y)
    if call.failure is not None:
        return False
    grads, failure = validate_gradients(case.spec, call.raw)
    if grads is None or failure is not None:
        return False
    tolerance = tolerance_for("complex_step")
    scales = case_magnitudes(case)
    return all(compare_block(n, grads[n], t, tolerance, None, scales.get(n))[0].passed for n, t in truth.items())


def equivalence(fn: Callable[..., Any], context: Context) -> str:
    """``equivalent``, ``kink`` (differs only at exact kinks) or ``different``."""
    if not all(_agrees(fn, case, truth) for case, truth in context.truth):
        return "different"
    if not all(_agrees(fn, case, truth) for case, truth in context.kinks):
        return "kink"
    return "equivalent"


def failing_cases(subject: Subject, context: Context) -> list[Case]:
    """verify's verdict: the cases on which the subject breaks the protocol or disagrees with torch."""
    failing: list[Case] = []
    for case in context.verify_cases:
        call = call_subject(subject, case, repeat=True)
        if call.failure is not None or call.grads is None:
            failing.append(case)
            continue
        if any(r.failed for r in compare_to_oracle(case, subject.name, call.grads, context.oracles[case.id])):
            failing.append(case)
    return failing


class _Hung(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hung


def measure(mutant: GeneratedMutant, context: Context) -> dict[str, Any]:
    """One mutant's record: status, its failing cases, the diagnosis' first line and its verdict."""
    record: dict[str, Any] = {"name": mutant.name, "label": mutant.site.label, **mutant.site.__dict__}
    start = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(context.settings.time_limit)
    try:
        # A mutant's overflows and NaNs are its own business (they are judged), not warnings of ours.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            record.update(_measure(mutant, context))
    except _Hung:
        record.update(status="killed", verdict="protocol", headline="protocol:timeout (the measurement's limit)")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


def _measure(mutant: GeneratedMutant, context: Context) -> dict[str, Any]:
    try:
        fn = mutant.load()
    except Exception as exc:  # a mutant whose module fails to run at import is not a gradient defect
        return {"status": "invalid", "reason": f"{type(exc).__name__}: {exc}"}
    status = equivalence(fn, context)
    if status != "different":
        return {"status": status}
    subject = Subject(mutant.name, fn)
    failing = failing_cases(subject, context)
    if not failing:
        return {"status": "survived"}
    found = diagnose_subject(subject, failing[:3], rng_seed=context.settings.seed, supports=Family())
    return {
        "status": "killed",
        "failing": len(failing),
        "verdict": verdict(mutant.site, found),
        "headline": found[0].line() if found else "",
        "key": found[0].key if found else None,
    }


# --- running and summarising ----------------------------------------------------------------------------

_CONTEXT: Context | None = None
_MUTANTS: list[GeneratedMutant] = []


def _worker(index: int) -> dict[str, Any]:
    assert _CONTEXT is not None
    import torch

    torch.set_num_threads(1)
    return measure(_MUTANTS[index], _CONTEXT)


def chosen_mutants(settings: Settings) -> list[GeneratedMutant]:
    """Every mutant of the chosen bases, or ``per_base`` of each, evenly spaced (a pure function of settings)."""
    chosen: list[GeneratedMutant] = []
    for base in settings.bases:
        mutants = all_mutants((base,))
        if settings.per_base is not None and len(mutants) > settings.per_base:
            picks = np.linspace(0, len(mutants) - 1, settings.per_base).round().astype(int)
            mutants = [mutants[i] for i in sorted(set(picks.tolist()))]
        chosen.extend(mutants)
    return chosen


def run_generated(settings: Settings, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure every chosen mutant (in ``workers`` forked processes) and summarise per split."""
    global _CONTEXT, _MUTANTS
    start = time.perf_counter()
    _CONTEXT = Context.build(settings)
    _MUTANTS = chosen_mutants(settings)
    records: list[dict[str, Any]] = []
    indices = range(len(_MUTANTS))
    if settings.workers > 1:
        with multiprocessing.get_context("fork").Pool(settings.workers) as pool:
            results: Iterator[dict[str, Any]] = pool.imap(_worker, indices, chunksize=2)
            for done, record in enumerate(results, start=1):
                records.append(record)
                _report(progress, done, len(_MUTANTS), record)
    else:
        for done, index in enumerate(indices, start=1):
            records.append(_worker(index))
            _report(progress, done, len(_MUTANTS), records[-1])
    return {
        "settings": settings.__dict__ | {"bases": list(settings.bases)},
        "tune": list(TUNE),
        "held_out": list(HELD_OUT),
        "elapsed": round(time.perf_counter() - start, 1),
        "summary": {
            "held_out": summarise([r for r in records if r["base"] in HELD_OUT]),
            "tune": summarise([r for r in records if r["base"] in TUNE]),
            "all": summarise(records),
        },
        "mutants": records,
    }


def _report(progress: Callable[[str], None] | None, done: int, total: int, record: dict[str, Any]) -> None:
    if progress is not None:
        progress(f"{done}/{total} {record['name']}: {record['status']} {record.get('verdict', '')}")


def _share(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts and rates for one split (also per operator and per role)."""
    status = Counter(r["status"] for r in records)
    killed = [r for r in records if r["status"] == "killed"]
    verdicts = Counter(r.get("verdict") for r in killed)
    different = status["killed"] + status["survived"]
    specific = verdicts["right"] + verdicts["wrong"]
    return {
        "generated": len(records),
        "invalid": status["invalid"],
        "equivalent": status["equivalent"],
        "kink": status["kink"],
        "non_equivalent": different,
        "killed": status["killed"],
        "survived": status["survived"],
        "kill_rate": _share(status["killed"], different),
        "specific": specific,
        "right": verdicts["right"],
        "wrong": verdicts["wrong"],
        "protocol": verdicts["protocol"],
        "unexplained": verdicts["unexplained"] + verdicts["none"],
        "precision": _share(verdicts["right"], specific),
        "recall": _share(verdicts["right"], status["killed"]),
        "by_operator": _breakdown(killed, "operator"),
        "by_role": _breakdown(killed, "role"),
    }


def _breakdown(killed: Sequence[dict[str, Any]], field_name: str) -> dict[str, dict[str, int]]:
    table: dict[str, Counter[str]] = {}
    for record in killed:
        table.setdefault(record[field_name], Counter())[record.get("verdict") or "none"] += 1
    return {name: dict(counts) for name, counts in sorted(table.items())}
