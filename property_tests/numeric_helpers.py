"""Shared helpers for the numeric-oracle tests: full (not projected) comparison and planted subjects."""

from __future__ import annotations

from typing import Any

import numpy as np

from oracles.registry import get_oracle
from oracles.subjects import Subject
from oracles.verdicts.compare import records_from_output
from oracles.verdicts.records import Record
from oracles.verdicts.tolerances import tolerance_for
from reference_impl import Case, gradients


def full_records(case: Case, oracle_name: str, subject_grads: dict[str, np.ndarray] | None = None) -> list[Record]:
    """Every entry compared (no projection shortcut): the oracle's full output against the subject."""
    params, X, Y = case.arrays()
    grads = subject_grads if subject_grads is not None else gradients(case.spec, params, X, Y)
    output = get_oracle(oracle_name).evaluate(case.spec, params, X, Y)
    return records_from_output(case, "reference", grads, oracle_name, output, tolerance_for(oracle_name))


def perturbed_subject(name: str, relative: float) -> Subject:
    """The reference with its largest entry of block ``name`` scaled by 1 + relative."""

    def subject(spec: dict[str, Any], params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict:
        grads = gradients(spec, params, X, Y)
        block = grads[name]
        index = np.unravel_index(np.argmax(np.abs(block)), block.shape)
        block[index] *= 1.0 + relative
        return grads

    return Subject(f"perturbed-{name}-{relative:g}", subject)
