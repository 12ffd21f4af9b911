"""One mutant on one case: the outcome (killed, kink, survived, n/a) of every column of the kill matrix.

Per case:

1. a *warm-up* call on a sibling case (same architecture and batch, other values) comes first, so
   state carried between calls shows in the measured call, as it would in a campaign;
2. the measured call is guarded (private copies compared before and after: ``input_mutation``) and
   validated (exceptions, keys, shapes, dtype, finiteness: ``protocol``);
3. its gradients are compared with every oracle that supports the case (one column per oracle), its
   δ per layer with every oracle that gives δ (``delta``), failures classified by
   :mod:`property_tests.mutation.kinks`;
4. two more identical calls must agree (``repeatability``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from oracles.registry import Oracle, OracleOutput
from oracles.subjects import ProtocolFailure, Subject, validate_gradients
from oracles.verdicts.compare import compare_to_oracle
from property_tests.mutation.catalogue import Mutant
from property_tests.mutation.kinks import KinkVariant, classify_kink, kink_variants
from reference_impl.case import Case
from reference_impl.spec import Array, Params, Spec

PROTOCOL_COLUMNS: tuple[str, ...] = ("protocol", "input_mutation", "repeatability")
DELTA_COLUMN = "delta"
KILLED, KINK, SURVIVED, NOT_APPLICABLE = "killed", "kink", "survived", "n/a"
# Merging a column over cases: the strongest outcome seen wins.
RANK = {KILLED: 3, KINK: 2, SURVIVED: 1, NOT_APPLICABLE: 0}
REPEAT_RTOL = 1e-12  # two identical calls may differ by reduction-order noise, never more
PROTOCOL_VALUE_CATEGORIES = ("exception", "missing", "shape", "dtype", "nonfinite", "timeout")


def sibling(case: Case) -> Case:
    """Same architecture and batch, other values: the warm-up call's case."""
    return dataclasses.replace(case, seed=case.seed + 7919, label=f"{case.id}-sibling")


def memoised(oracle: Oracle) -> Oracle:
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
        supported = [memoised(o) for o in oracles.values() if o.supports_case(case)]
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
    if current is None or RANK[new.state] > RANK[current.state]:
        return new
    return current
