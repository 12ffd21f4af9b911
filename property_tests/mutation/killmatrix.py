"""The suite's own power: every planted bug against every oracle and check (the kill matrix).

Each mutant (:mod:`property_tests.mutation.catalogue`) is run on a fixed batch of diverse cases; per case,
every column's outcome comes from :mod:`property_tests.mutation.outcomes` (warm-up call,
guarded and validated call, every oracle, δ, repeatability; kinks classified by
:mod:`property_tests.mutation.kinks`).

A cell is *killed* when some case failed there, *kink* when the only disagreements were classified as
kinks, *survived* when it ran and never failed, *n/a* when it never applied (oracle unsupported, no
gradients to compare).

For each mutant, Hypothesis then shrinks (``hypothesis.find``) to the smallest architecture on which
the cheapest killing check still kills it, and the diagnoser (when :mod:`oracles.diagnosis.diagnose` exists) is
asked to name it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oracles.registry import Oracle, all_oracles
from oracles.subjects import Subject
from property_tests.coverage import measure
from property_tests.mutation.catalogue import MUTANTS, Mutant
from property_tests.mutation.outcomes import (
    DELTA_COLUMN,
    KILLED,
    KINK,
    NOT_APPLICABLE,
    PROTOCOL_COLUMNS,
    RANK,
    CaseContext,
    Outcome,
    run_case,
)
from reference_impl.case import Case
from reference_impl.generate import case_from_index
from reference_impl.spec import Spec

SCHEMA_VERSION = 1
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
        if RANK[outcome.state] > RANK[self.state]:
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
