"""The false-positive campaign: the correct reference through the cheap oracles on campaign cases, where
every failing comparison that is not a kink is a false alarm of the suite."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from oracles.registry import Oracle, all_oracles
from oracles.subjects import reference_subject
from oracles.verdicts.compare import check_case
from oracles.verdicts.records import Record
from property_tests.mutation.kinks import KinkVariant, classify_kink, kink_variants
from reference_impl.generate import case_from_index


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
