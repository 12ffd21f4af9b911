"""The suite's own power: every planted bug against every oracle and check (the kill matrix).

Each mutant (:mod:`property_tests.mutation.catalogue`) is run on a fixed batch of diverse cases.  Per case:

1. a *warm-up* call on a sibling case (same architecture and batch, other values) comes first, so
   state carried between calls shows in the measured call, as it would in a campaign;
2. the measured call is guarded (private copies compared before and after: ``input_mutation``) and
   validated (exceptions, keys, shapes, dtype, finiteness: ``protocol``);
3. its gradients are compared with every oracle that supports the case (one column per oracle), its
   δ per layer with every oracle that gives δ (``delta``);
4. two more identical calls must agree (``repeatability``).

A cell is *killed* when some case failed there, *kink* when the only disagreements were classified as
kinks, *survived* when it ran and never failed, *n/a* when it never applied (oracle unsupported, no
gradients to compare).

Kinks.  At a pre-activation exactly on a relu/leaky_relu kink the derivative is a convention: central
differences cannot tell the two sides apart, and the precise oracles (autodiff, exact, complex step)
follow the suite's convention (g'(0) = left slope).  A failing comparison is therefore classified
*kink* when the subject agrees, within the comparing oracle's tolerance, with the reference computed
under *some* admissible choice of slope (left or right) at each site whose pre-activation is exactly
on a kink — i.e. when the mismatch is confined to what those sites decide.  Records the comparer
itself already marks ``kink`` (numeric oracles' brackets) count the same way.

For each mutant, Hypothesis then shrinks (``hypothesis.find``) to the smallest architecture on which
the cheapest killing check still kills it, and the diagnoser (when :mod:`oracles.diagnosis.diagnose` exists) is
asked to name it.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oracles.registry import Oracle, OracleOutput, all_oracles
from oracles.subjects import ProtocolFailure, Subject, reference_subject, validate_gradients
from oracles.verdicts.blocks import compare_block
from oracles.verdicts.compare import check_case, compare_to_oracle
from oracles.verdicts.records import Record
from oracles.verdicts.tolerances import tolerance_for
from property_tests.coverage import measure
from property_tests.mutation.catalogue import MUTANTS, Mutant
from reference_impl.activations import LEAKY_SLOPE, get_activation
from reference_impl.case import Case
from reference_impl.generate import case_from_index
from reference_impl.losses import get_loss
from reference_impl.mlp import forward
from reference_impl.spec import KINKED_ACTIVATIONS, Array, Params, Spec

SCHEMA_VERSION = 1
PROTOCOL_COLUMNS: tuple[str, ...] = ("protocol", "input_mutation", "repeatability")
DELTA_COLUMN = "delta"
KILLED, KINK, SURVIVED, NOT_APPLICABLE = "killed", "kink", "survived", "n/a"
# Merging a column over cases: the strongest outcome seen wins.
_RANK = {KILLED: 3, KINK: 2, SURVIVED: 1, NOT_APPLICABLE: 0}
REPEAT_RTOL = 1e-12  # two identical calls may differ by reduction-order noise, never more
MAX_KINK_PATTERNS = 64  # per-site slope choices tried exhaustively up to 2^6 sites
PROTOCOL_VALUE_CATEGORIES = ("exception", "missing", "shape", "dtype", "nonfinite", "timeout")
# Cheapest first: which killing column to re-check while shrinking.
SHRINK_PREFERENCE: tuple[str, ...] = ("protocol", "input_mutation", "repeatability", "torch_autograd", DELTA_COLUMN)

# --- the fixed batch of cases ----------------------------------------------------------------------

CURATED: tuple[Case, ...] = (
    Case(Spec((3, 5, 4, 2), ("tanh", "leaky_relu", "sigmoid"), "mse"), batch=4, seed=11, kinks=True, label="curated-1"),
    Case(Spec((4, 3, 3), ("relu", "softmax"), "cce"), batch=5, seed=12, kinks=True, label="curated-2"),
    Case(Spec((2, 4, 3), ("tanh", "sigmoid"), "bce"), batch=3, seed=13, label="curated-3"),
    Case(Spec((3, 6, 2), ("softplus", "identity"), "half_sse"), batch=4, seed=14, label="curated-4"),
    Case(Spec((5, 3, 4, 3), ("sigmoid", "relu", "tanh"), "mse"), batch=2, seed=15, kinks=True, param_scale=2.0,
         label="curated-5"),
    Case(Spec((2, 3, 2), ("leaky_relu", "relu"), "half_sse"), batch=3, seed=16, kinks=True, label="curated-6"),
    Case(Spec((3, 3, 3), ("tanh", "identity"), "mse"), batch=3, seed=17, label="curated-7"),
    Case(Spec((2, 3, 1), ("sigmoid", "sigmoid"), "bce"), batch=1, seed=18, param_scale=5.0, label="curated-8"),
)  # fmt: skip


def default_cases(examples: int, seed: int) -> list[Case]:
    """The curated cases (every activation, loss and shape feature) plus ``examples`` campaign cases."""
    return [*CURATED, *(case_from_index(seed, index) for index in range(examples))]


def sibling(case: Case) -> Case:
    """Same architecture and batch, other values: the warm-up call's case."""
    return dataclasses.replace(case, seed=case.seed + 7919, label=f"{case.id}-sibling")


# --- kink classification ---------------------------------------------------------------------------

KinkVariant = tuple[Params, tuple[Array, ...]]


def kink_sites(case: Case) -> list[tuple[int, tuple[int, int]]]:
    """(layer, (unit, example)) of every relu/leaky_relu pre-activation exactly on 0."""
    params, X, _ = case.arrays()
    tape = forward(case.spec, params, X)
    return [
        (layer, (int(unit), int(example)))
        for layer, name in enumerate(case.spec.activations, start=1)
        if name in KINKED_ACTIVATIONS
        for unit, example in zip(*np.nonzero(tape.z(layer) == 0.0), strict=True)
    ]


def _one_sided_slopes(name: str) -> tuple[float, float]:
    return (0.0 if name == "relu" else LEAKY_SLOPE, 1.0)


def _backward_with_slopes(case: Case, slopes: Mapping[tuple[int, tuple[int, int]], float]) -> KinkVariant:
    """The reference's gradients and δ with g'(0) replaced by ``slopes`` at the given kink sites."""
    spec = case.spec
    params, X, Y = case.arrays()
    tape = forward(spec, params, X)

    def derivative(layer: int) -> Array | None:
        name = spec.activations[layer - 1]
        base = get_activation(name).derivative
        if base is None:
            return None
        d = base(tape.z(layer)).copy()
        for (site_layer, index), slope in slopes.items():
            if site_layer == layer:
                d[index] = slope
        return d

    loss = get_loss(spec.loss)
    out = derivative(spec.depth)
    if out is None or (loss.delta_from_logits is not None and spec.activations[-1] == loss.output_activation):
        assert loss.delta_from_logits is not None
        delta = loss.delta_from_logits(tape.pre_activations[-1], Y)
    else:
        delta = loss.gradient(tape.output, Y) * out
    deltas = [delta]
    for layer in range(spec.depth, 1, -1):
        below = derivative(layer - 1)
        assert below is not None  # softmax is output-only
        delta = (params[f"W{layer}"].T @ delta) * below
        deltas.append(delta)
    deltas.reverse()
    grads: Params = {}
    for layer in range(1, spec.depth + 1):
        grads[f"W{layer}"] = deltas[layer - 1] @ tape.a(layer - 1).T
        grads[f"b{layer}"] = deltas[layer - 1].sum(axis=1, keepdims=True)
    return grads, tuple(deltas)


def kink_variants(case: Case) -> list[KinkVariant]:
    """Reference gradients under every admissible slope choice at the case's kink sites ([] without sites)."""
    sites = kink_sites(case)
    if not sites:
        return []
    choices = [_one_sided_slopes(case.spec.activations[layer - 1]) for layer, _ in sites]
    if 2 ** len(sites) <= MAX_KINK_PATTERNS:
        patterns: Iterable[tuple[float, ...]] = itertools.product(*choices)
    else:  # too many sites for every pattern: one convention everywhere, either side
        patterns = [tuple(c[0] for c in choices), tuple(c[1] for c in choices)]
    return [_backward_with_slopes(case, dict(zip(sites, pattern, strict=True))) for pattern in patterns]


def _matches(subject: Mapping[str, Array], variant: Mapping[str, Array], oracle: str) -> bool:
    tolerance = tolerance_for(oracle)
    return all(
        name in subject
        and np.shape(subject[name]) == np.shape(value)
        and compare_block(name, np.asarray(subject[name]), value, tolerance)[0].passed
        for name, value in variant.items()
    )


def classify_kink(
    record: Record, grads: Params, deltas: Sequence[Array] | None, variants: Sequence[KinkVariant]
) -> str:
    """``record.verdict``, or ``"kink"`` when a failure is explained by a slope choice at exact kinks."""
    if not record.failed or not variants or record.check not in ("gradient", "projection", "delta"):
        return record.verdict
    for variant_grads, variant_deltas in variants:
        if record.check == "delta":
            if deltas is None:
                continue
            names = [f"delta{layer}" for layer in range(1, len(variant_deltas) + 1)]
            if _matches(
                dict(zip(names, deltas, strict=False)), dict(zip(names, variant_deltas, strict=True)), record.oracle
            ):
                return "kink"
        elif _matches(grads, variant_grads, record.oracle):
            return "kink"
    return record.verdict


# --- one mutant on one case ------------------------------------------------------------------------


def _memoised(oracle: Oracle) -> Oracle:
    """The oracle with its answers on one case remembered: every mutant is compared with the same output."""
    evaluated: dict[str, OracleOutput | Exception] = {}
    projected: dict[str, np.ndarray] = {}

    def evaluate(spec: Spec, params: Params, X: Array, Y: Array) -> OracleOutput:
        if "output" not in evaluated:
            try:
                evaluated["output"] = oracle.evaluate(spec, params, X, Y)
            except Exception as exc:  # remembered and re-raised: the comparer reports it as the oracle's fault
                evaluated["output"] = exc
        result = evaluated["output"]
        if isinstance(result, Exception):
            raise result
        return result

    directional = None
    if oracle.directional is not None:
        inner = oracle.directional

        def directional(spec: Spec, params: Params, X: Array, Y: Array, directions: list[Params]) -> np.ndarray:
            if "values" not in projected:
                projected["values"] = np.asarray(inner(spec, params, X, Y, directions))
            return projected["values"]

    return dataclasses.replace(oracle, evaluate=evaluate, directional=directional)


@dataclass
class CaseContext:
    """What every mutant shares on one case: memoised oracles and the kink variants."""

    case: Case
    oracles: list[Oracle]
    unsupported: dict[str, str]
    variants: list[KinkVariant]

    @classmethod
    def build(cls, case: Case, oracles: Mapping[str, Oracle]) -> CaseContext:
        supported = [_memoised(o) for o in oracles.values() if o.supports_case(case)]
        unsupported = {
            name: o.why_unsupported_case(case) or "" for name, o in oracles.items() if not o.supports_case(case)
        }
        return cls(case, supported, unsupported, kink_variants(case))


@dataclass(frozen=True)
class Outcome:
    state: str  # killed, kink, survived, n/a
    detail: str = ""


def _guarded_call(fn: Callable[..., Any], case: Case) -> tuple[Any, ProtocolFailure | None]:
    """One call on private copies; input mutation is a failure (uses the subjects guard when present)."""
    from oracles import subjects

    params, X, Y = case.arrays()
    invoke = getattr(subjects, "invoke", None)
    if invoke is not None:
        call = invoke(Subject("mutant", fn), case.spec, params, X, Y)
        return call.raw, call.failure
    # Fallback for a subjects module without guards: the same before/after comparison.
    before = {**{k: v.copy() for k, v in params.items()}, "X": X.copy(), "Y": Y.copy()}
    try:
        raw = fn(case.spec.to_dict(), params, X, Y)
    except Exception as exc:
        return None, ProtocolFailure("exception", f"{type(exc).__name__}: {exc}")
    after = {**params, "X": X, "Y": Y}
    changed = [k for k, v in before.items() if not np.array_equal(after[k], v)]
    if changed:
        return raw, ProtocolFailure("mutation", f"the subject modified its input(s) {changed} in place", changed[0])
    return raw, None


def _differ(first: Mapping[str, Array], second: Mapping[str, Array]) -> str | None:
    if set(first) != set(second):
        return "keys"
    for name in sorted(first):
        a, b = np.asarray(first[name], np.float64), np.asarray(second[name], np.float64)
        if a.shape != b.shape:
            return name
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        if np.any(np.abs(a - b) > REPEAT_RTOL * scale):
            return name
    return None


def _repeatability(fn: Callable[..., Any], case: Case) -> Outcome:
    """Two more identical calls must agree (the subjects guard's ``repeat`` when present)."""
    from oracles import subjects

    invoke = getattr(subjects, "invoke", None)
    if invoke is not None:
        params, X, Y = case.arrays()
        call = invoke(Subject("mutant", fn), case.spec, params, X, Y, repeat=True)
        if call.failure is not None and call.failure.category == "nondeterminism":
            return Outcome(KILLED, call.failure.message)
        return Outcome(SURVIVED if isinstance(call.raw, Mapping) else NOT_APPLICABLE)
    first, _ = _guarded_call(fn, case)
    second, _ = _guarded_call(fn, case)
    if not (isinstance(first, Mapping) and isinstance(second, Mapping)):
        return Outcome(NOT_APPLICABLE, "no gradients to compare")
    try:
        block = _differ(first, second)
    except (TypeError, ValueError):
        return Outcome(NOT_APPLICABLE, "gradients are not arrays")
    return Outcome(KILLED, f"two identical calls differ in {block}") if block else Outcome(SURVIVED)


def run_case(mutant: Mutant, context: CaseContext, columns: Iterable[str] | None = None) -> dict[str, Outcome]:
    """Every (or the chosen) column's outcome for one mutant on one case; state is reset first."""
    case = context.case
    wanted = set(columns) if columns is not None else None
    captured: dict[str, tuple[Array, ...]] = {}

    def gradients(spec: dict[str, Any], params: dict[str, Array], X: Array, Y: Array) -> Params:
        grads, deltas = mutant.backward(spec, params, X, Y)
        captured["deltas"] = deltas
        return grads

    def want(column: str) -> bool:
        return wanted is None or column in wanted

    mutant.reset()
    _guarded_call(gradients, sibling(case))  # warm-up; its outcome is not judged
    captured.clear()
    raw, failure = _guarded_call(gradients, case)
    deltas = captured.get("deltas")
    outcomes: dict[str, Outcome] = {}
    if want("input_mutation"):
        mutated = failure is not None and failure.category == "mutation"
        outcomes["input_mutation"] = Outcome(KILLED, failure.message) if mutated and failure else Outcome(SURVIVED)
    grads: Params | None = None
    value_failure = failure if failure is not None and failure.category != "mutation" else None
    if value_failure is None:
        grads, value_failure = validate_gradients(case.spec, raw)
    if want("protocol"):
        outcomes["protocol"] = (
            Outcome(KILLED, f"[{value_failure.category}] {value_failure.message}")
            if value_failure
            else Outcome(SURVIVED)
        )
    if want("repeatability"):
        outcomes["repeatability"] = _repeatability(gradients, case)
    if deltas is not None and grads is not None:
        shapes_ok = len(deltas) == case.spec.depth and all(
            np.shape(d) == (case.spec.widths[layer], case.batch) for layer, d in enumerate(deltas, start=1)
        )
    else:
        shapes_ok = False
    delta_outcomes: list[Outcome] = []
    for oracle in context.oracles:
        if not (want(oracle.name) or want(DELTA_COLUMN)):
            continue
        if grads is None:
            outcomes[oracle.name] = Outcome(NOT_APPLICABLE, "no valid gradients to compare")
            continue
        records = compare_to_oracle(
            case, mutant.name, grads, oracle, subject_deltas=deltas if shapes_ok and want(DELTA_COLUMN) else None
        )
        for record in records:
            if record.check == "protocol":  # the oracle itself failed: not the mutant's verdict
                outcome = Outcome(NOT_APPLICABLE, record.message)
            else:
                verdict = classify_kink(record, grads, deltas, context.variants)
                state = {"fail": KILLED, "kink": KINK, "pass": SURVIVED}.get(verdict, NOT_APPLICABLE)
                outcome = Outcome(state, record.summary() if state in (KILLED, KINK) else "")
            if record.check == "delta":
                delta_outcomes.append(outcome)
            elif want(oracle.name):
                outcomes[oracle.name] = _stronger(outcomes.get(oracle.name), outcome)
    for name, reason in context.unsupported.items():
        if want(name):
            outcomes[name] = Outcome(NOT_APPLICABLE, reason)
    if want(DELTA_COLUMN):
        if grads is not None and deltas is not None and not shapes_ok:
            outcomes[DELTA_COLUMN] = Outcome(KILLED, "δ of the wrong shape")
        else:
            merged: Outcome | None = None
            for outcome in delta_outcomes:
                merged = _stronger(merged, outcome)
            outcomes[DELTA_COLUMN] = merged or Outcome(NOT_APPLICABLE, "no oracle compared δ")
    return outcomes


def _stronger(current: Outcome | None, new: Outcome) -> Outcome:
    if current is None or _RANK[new.state] > _RANK[current.state]:
        return new
    return current


# --- the matrix ------------------------------------------------------------------------------------


@dataclass
class Cell:
    state: str = NOT_APPLICABLE
    case_id: str | None = None
    detail: str = ""
    cases_run: int = 0

    def merge(self, outcome: Outcome, case: Case) -> None:
        if outcome.state != NOT_APPLICABLE:
            self.cases_run += 1
        if _RANK[outcome.state] > _RANK[self.state]:
            self.state, self.case_id, self.detail = outcome.state, case.id, outcome.detail

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "case_id": self.case_id, "detail": self.detail, "cases_run": self.cases_run}


@dataclass
class MutantResult:
    mutant: Mutant
    cells: dict[str, Cell]
    smallest: dict[str, Any] | None = None
    diagnosis: dict[str, Any] = field(default_factory=lambda: {"status": NOT_APPLICABLE})

    @property
    def killers(self) -> list[str]:
        return [name for name, cell in self.cells.items() if cell.state == KILLED]

    @property
    def kink_columns(self) -> list[str]:
        return [name for name, cell in self.cells.items() if cell.state == KINK]

    @property
    def ok(self) -> bool:
        """A bug must be killed somewhere; a kink convention must be classified as kink and killed nowhere."""
        if self.mutant.kind == "kink":
            return bool(self.kink_columns) and not self.killers
        return bool(self.killers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.mutant.name,
            "description": self.mutant.description,
            "expected": self.mutant.expected,
            "kind": self.mutant.kind,
            "ok": self.ok,
            "killers": self.killers,
            "kink_columns": self.kink_columns,
            "cells": {name: cell.to_dict() for name, cell in self.cells.items()},
            "smallest": self.smallest,
            "diagnosis": self.diagnosis,
        }


def columns_for(oracles: Mapping[str, Oracle]) -> list[str]:
    return [*oracles, DELTA_COLUMN, *PROTOCOL_COLUMNS]


def compute_matrix(
    mutants: Sequence[Mutant],
    cases: Sequence[Case],
    oracles: Mapping[str, Oracle] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[MutantResult]:
    """Every mutant × every column, merged over ``cases`` (oracle answers computed once per case)."""
    chosen = dict(oracles) if oracles is not None else all_oracles()
    columns = columns_for(chosen)
    results = [MutantResult(m, {c: Cell() for c in columns}) for m in mutants]
    for number, case in enumerate(cases, start=1):
        context = CaseContext.build(case, chosen)
        for result in results:
            for column, outcome in run_case(result.mutant, context).items():
                result.cells[column].merge(outcome, case)
        if progress is not None:
            progress(f"case {number}/{len(cases)} {case.id} {case.spec.to_dict()}")
    return results


# --- shrinking and diagnosis -------------------------------------------------------------------------


def _shrink_column(result: MutantResult) -> tuple[str, str] | None:
    """(column, state to reproduce) for shrinking: the cheapest killing (or kink) column."""
    target = KINK if result.mutant.kind == "kink" else KILLED
    candidates = result.kink_columns if target == KINK else result.killers
    if not candidates:
        return None
    ordered = sorted(
        candidates, key=lambda c: SHRINK_PREFERENCE.index(c) if c in SHRINK_PREFERENCE else len(SHRINK_PREFERENCE)
    )
    return ordered[0], target


def smallest_exposing_case(
    mutant: Mutant, column: str, state: str, oracles: Mapping[str, Oracle], max_examples: int
) -> Case | None:
    """Hypothesis-shrunk smallest case on which ``column`` still reports ``state`` for ``mutant``."""
    from hypothesis import HealthCheck, find, settings
    from hypothesis.errors import NoSuchExample

    from property_tests.strategies import cases

    if column in oracles:
        needed = {column: oracles[column]}
    elif column == DELTA_COLUMN:  # δ from torch when it is there: the cheapest oracle that gives δ
        needed = {n: o for n, o in oracles.items() if n == "torch_autograd"} or dict(oracles)
    else:
        needed = {}

    def exposes(case: Case) -> bool:
        outcome = run_case(mutant, CaseContext.build(case, needed), [column]).get(column)
        return outcome is not None and outcome.state == state

    strategy = cases(kinks=True) if state == KINK else cases()
    try:
        return find(
            strategy,
            exposes,
            settings=settings(
                database=None,
                max_examples=max_examples,
                derandomize=True,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    except NoSuchExample:
        return None


def _case_summary(case: Case) -> dict[str, Any]:
    return {
        "case_id": case.id,
        "spec": case.spec.to_dict(),
        "batch": case.batch,
        "n_parameters": case.spec.n_parameters,
        "reproduce": repr(case),
    }


def diagnose(mutant: Mutant, seed: int) -> dict[str, Any]:
    """Whether :mod:`oracles.diagnosis.diagnose` names the mutant's expected key first ("n/a" while it is absent)."""
    try:
        module = importlib.import_module("oracles.diagnosis.diagnose")
    except ModuleNotFoundError as exc:
        if exc.name != "oracles.diagnosis.diagnose":
            raise
        return {"status": NOT_APPLICABLE, "reason": "oracles.diagnosis.diagnose is not available"}
    subject = Subject(mutant.name, mutant.gradients, None, mutant.deltas)
    mutant.reset()
    try:
        found = list(module.diagnose_subject(subject, None, rng_seed=seed))
    except Exception as exc:  # a diagnoser crash is reported in the matrix, not fatal to it
        return {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    keys = [str(d.key) for d in found]
    top = keys[0] if keys else None
    return {
        "status": "correct" if top == mutant.expected else "wrong",
        "top": top,
        "keys": keys,
        "message": found[0].message if found else "no diagnosis",
    }


@dataclass
class MatrixRun:
    results: list[MutantResult]
    cases: list[Case]
    columns: list[str]
    seed: int
    examples: int
    elapsed: float
    coverage: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        bugs = [r for r in self.results if r.mutant.kind != "kink"]
        kinks = [r for r in self.results if r.mutant.kind == "kink"]
        diagnosed = [r for r in self.results if r.diagnosis.get("status") in ("correct", "wrong")]
        return {
            "bug_total": len(bugs),
            "bug_killed": sum(1 for r in bugs if r.killers),
            "kink_total": len(kinks),
            "kink_classified": sum(1 for r in kinks if r.ok),
            "diagnosed": len(diagnosed),
            "diagnosed_correctly": sum(1 for r in diagnosed if r.diagnosis.get("status") == "correct"),
            "ok": all(r.ok for r in self.results),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "seed": self.seed,
            "examples": self.examples,
            "elapsed": self.elapsed,
            "columns": self.columns,
            "cases": [_case_summary(c) for c in self.cases],
            "summary": self.summary(),
            "coverage": self.coverage,
            "mutants": [r.to_dict() for r in self.results],
        }


def run_matrix(
    *,
    examples: int = 24,
    seed: int = 0,
    mutants: Sequence[Mutant] | None = None,
    oracles: Mapping[str, Oracle] | None = None,
    shrink_examples: int = 150,
    diagnosis: bool = True,
    progress: Callable[[str], None] | None = None,
) -> MatrixRun:
    """The whole measurement: matrix over the fixed batch, then shrinking and diagnosis per mutant."""
    start = time.perf_counter()
    chosen_mutants = list(mutants) if mutants is not None else list(MUTANTS.values())
    chosen = dict(oracles) if oracles is not None else all_oracles()
    cases = default_cases(examples, seed)
    results = compute_matrix(chosen_mutants, cases, chosen, progress)
    for result in results:
        target = _shrink_column(result)
        if shrink_examples > 0 and target is not None:
            smallest = smallest_exposing_case(result.mutant, target[0], target[1], chosen, shrink_examples)
            result.smallest = (
                {**_case_summary(smallest), "column": target[0], "state": target[1]} if smallest is not None else None
            )
        if diagnosis:
            result.diagnosis = diagnose(result.mutant, seed)
        if progress is not None:
            progress(f"shrunk/diagnosed {result.mutant.name}")
    return MatrixRun(
        results=results,
        cases=cases,
        columns=columns_for(chosen),
        seed=seed,
        examples=examples,
        elapsed=time.perf_counter() - start,
        coverage=measure(cases).to_dict(),
    )


# --- false positives ---------------------------------------------------------------------------------


def cheap_oracles() -> dict[str, Oracle]:
    """Torch and the numeric oracles (everything but the exact/symbolic ones, which cost seconds per case)."""
    return {name: o for name, o in all_oracles().items() if o.kind != "exact"}


@dataclass
class FalsePositiveResult:
    n_cases: int
    n_comparisons: int = 0
    raw_failures: int = 0  # failing records before kink classification
    kinks: int = 0
    failures: list[Record] = field(default_factory=list)
    per_oracle: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.failures) / self.n_comparisons if self.n_comparisons else 0.0


def false_positive_campaign(
    n_cases: int, seed: int = 0, oracle_names: Sequence[str] | None = None, *, start: int = 0
) -> FalsePositiveResult:
    """The correct reference on campaign cases ``(seed, start..start+n_cases-1)``: every failure is a false positive."""
    names = list(oracle_names) if oracle_names is not None else list(cheap_oracles())
    result = FalsePositiveResult(n_cases=n_cases, per_oracle=dict.fromkeys(names, 0))
    subject = reference_subject()
    began = time.perf_counter()
    for index in range(start, start + n_cases):
        case = case_from_index(seed, index)
        records = check_case(case, subject, names)
        variants: list[KinkVariant] | None = None
        for record in records:
            result.n_comparisons += 1
            result.per_oracle[record.oracle] = result.per_oracle.get(record.oracle, 0) + 1
            verdict = record.verdict
            if record.failed:
                result.raw_failures += 1
                if variants is None:
                    variants = kink_variants(case)
                params, X, Y = case.arrays()
                grads = dict(subject.gradients(case.spec.to_dict(), params, X, Y))
                deltas = subject.deltas(case.spec, params, X, Y) if subject.deltas is not None else None
                verdict = classify_kink(record, grads, deltas, variants)
            if verdict == "kink":
                result.kinks += 1
            elif verdict == "fail":
                result.failures.append(record)
    result.elapsed = time.perf_counter() - began
    return result
