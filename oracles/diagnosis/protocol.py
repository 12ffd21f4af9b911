"""Protocol faults first: what went wrong with the calls themselves, each summarised by where it happens.

Faults of the call — timeouts, crashes of the subject's worker, answers that depend on earlier calls
(nondeterminism, stale or accumulated state), inputs changed in place, NaN/inf, missing keys, wrong
dtypes, exceptions and wrong shapes — are named before any numeric model is fitted, and each comes with
the region of the case space where it happens ("raises AttributeError on every case where there is a
softplus layer, and only there"), found by :func:`oracles.diagnosis.features.separate`.  Exceptions and
wrong shapes that a numeric model predicts exactly are that model's evidence instead (:func:`call_faults`
leaves them out).

NaN/inf where the truth is finite has a slot for a recogniser of numerically unstable formulations: an
``explain_nonfinite(runs) -> Diagnosis | None`` in ``oracles.diagnosis.instability``, when that module
exists, is asked first and its finding replaces the plain ``protocol:nonfinite`` one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import numpy as np

from oracles.diagnosis.evidence import Run, is_right
from oracles.diagnosis.features import Condition, common, separate
from oracles.diagnosis.patterns import shape_interpretations
from oracles.diagnosis.wording import Diagnosis

PURE_FORMULA = "gradients(spec, params, X, Y) -> {name: ∂L/∂θ}, a pure function of its inputs"
SHAPE_FORMULA = "gradients(spec, params, X, Y) -> {name: array shaped like params[name]}"
CALL_FORMULA = "gradients(spec, params, X, Y) answers for every architecture its SUPPORTS allows"
HARD = ("timeout", "crash", "nondeterminism", "mutation", "nonfinite", "missing", "dtype")
# No numeric evidence is trustworthy then (or none came).
STOP = ("protocol:timeout", "protocol:crash", "protocol:nondeterminism", "state")
_TEXT = {
    "timeout": "does not answer in time",
    "crash": "takes its worker process down (a crash: exit status or signal)",
    "nondeterminism": "answers two identical consecutive calls differently",
    "mutation": "modifies its inputs in place",
    "nonfinite": "returns NaN or inf where every gradient is finite",
    "missing": "returns the wrong set of keys",
    "dtype": "returns something that is not an array of real floats",
}


def located(inside: Sequence[Run], everyone: Sequence[Run]) -> tuple[str, list[Condition]]:
    """Where the runs in ``inside`` sit among ``everyone`` ("on every case where …, and only there (k of n)"),
    and the conditions that separate them exactly."""
    orders = {r.order for r in inside}
    outside = [r for r in everyone if r.order not in orders]
    count = f"{len(inside)} of {len(everyone)} probes"
    if not outside:
        return f"on every case ({count})", []
    conditions = separate([r.features for r in inside], [r.features for r in outside])
    if conditions:
        alternatives = "".join(f" (equally: where {c.text()})" for c in conditions[1:2])
        return f"on every case where {conditions[0].text()}, and only there ({count}){alternatives}", conditions
    hints = common([r.features for r in inside], [r.features for r in outside])
    if hints:
        return f"on {count}, each one where {hints[0].text()} (but not on every such case)", []
    return f"on {count}, with no case feature in common", []


def region(inside: Sequence[Run], everyone: Sequence[Run]) -> str:
    return located(inside, everyone)[0]


def _history(runs: Sequence[Run], again: Run | None) -> Diagnosis | None:
    """The first question asked again at the end got another answer: the subject keeps state."""
    if again is None or not runs:
        return None
    first = runs[0]

    def answer(run: Run) -> str:
        if run.raw_failure is not None and run.raw_failure.category == "exception":
            return f"raises {run.raw_failure.message.split(':', 1)[0]}"
        return "returns values" if run.blocks is not None else "returns no values"

    if answer(first) != answer(again):
        change = f"first it {answer(first)}, then it {answer(again)}"
    elif first.blocks is not None and again.blocks is not None:
        if set(first.blocks) == set(again.blocks) and all(
            first.blocks[k].shape == again.blocks[k].shape
            and np.allclose(first.blocks[k], again.blocks[k], rtol=1e-12, atol=0.0, equal_nan=True)
            for k in first.blocks
        ):
            return None
        change = "the values differ"
    else:
        return None
    message = (
        f"Asked the first probe's question again after {len(runs) - 1} other calls, the subject answered "
        f"differently ({change}): its answers depend on earlier calls (state kept between calls)."
    )
    return Diagnosis("state", None, PURE_FORMULA, message, 0.95, kind="protocol")


def _stale(runs: Sequence[Run]) -> Diagnosis | None:
    """Every first sighting of an architecture and batch size right, repeated ones with new values wrong."""
    seen: set[tuple[object, int]] = set()
    first_wrong: Run | None = None
    for run in runs:
        if not run.valid or run.case.kinks:
            continue  # a kink convention is wrong on first sight too; it is not state
        key = (run.case.spec, run.m)
        right = is_right(run)
        if key not in seen and not right:
            return None
        if key in seen and not right and first_wrong is None:
            first_wrong = run
        seen.add(key)
    if first_wrong is None:
        return None
    message = (
        "Right the first time each architecture and batch size is seen, wrong when asked again with new values "
        f"(first: {first_wrong.case.id}): something is cached by shape, not by value."
    )
    return Diagnosis("state", None, PURE_FORMULA, message, 0.9, kind="protocol")


def _nonfinite(inside: Sequence[Run]) -> Diagnosis | None:
    """The slot for a recogniser of unstable formulations (see the module docstring)."""
    try:
        module = importlib.import_module("oracles.diagnosis.instability")
    except ModuleNotFoundError as exc:
        if exc.name != "oracles.diagnosis.instability":
            raise
        return None
    explain: Callable[[Sequence[Run]], Diagnosis | None] | None = getattr(module, "explain_nonfinite", None)
    return explain(inside) if explain is not None else None


def hard_faults(runs: Sequence[Run], again: Run | None) -> list[Diagnosis]:
    """Faults that make the numbers untrustworthy or unusable, each with its region, most severe first."""
    found: list[Diagnosis] = []
    for category in HARD:
        inside = [r for r in runs if r.failure is not None and r.failure.category == category]
        if category == "mutation":
            inside = [r for r in runs if r.raw_failure is not None and r.raw_failure.category == "mutation"]
        if not inside:
            continue
        failure = inside[0].failure if category != "mutation" else inside[0].raw_failure
        assert failure is not None
        if category == "nonfinite":
            recognised = _nonfinite(inside)
            if recognised is not None:
                found.append(recognised)
                continue
        message = f"The subject {_TEXT[category]} {region(inside, runs)}; first: {failure.message}."
        found.append(Diagnosis(f"protocol:{category}", None, PURE_FORMULA, message, 1.0, kind="protocol"))
    for check in (_history(runs, again), _stale(runs)):
        if check is not None and not any(d.key == "state" for d in found):
            found.append(check)
    return found


def call_faults(runs: Sequence[Run], claimed: set[int]) -> list[Diagnosis]:
    """Exceptions and wrong shapes that no numeric model predicted, grouped by kind, with their regions."""
    found: list[Diagnosis] = []
    shaped = [r for r in runs if r.shaped and r.order not in claimed]
    interpreted = shape_interpretations(shaped)
    for _, diagnosis in interpreted:
        found.append(diagnosis.with_(kind="protocol" if diagnosis.key.startswith("protocol") else "defect"))
    if shaped and not interpreted:
        first = shaped[0].failure
        assert first is not None
        message = f"The subject returns a block of the wrong shape {region(shaped, runs)}; first: {first.message}."
        found.append(Diagnosis("protocol:shape", None, SHAPE_FORMULA, message, 0.9, kind="protocol"))
    raised = [r for r in runs if r.raised and r.order not in claimed]
    groups: dict[str, list[Run]] = {}
    for run in raised:
        assert run.failure is not None
        groups.setdefault(run.failure.message.split(":", 1)[0], []).append(run)
    for kind, group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        first = group[0].failure
        assert first is not None
        where, conditions = located(group, runs)
        key = "protocol:exception"
        if any(c.feature == "widths of the first call" and c.other is None for c in conditions):
            key = "state"
            where += ": something sized by the first call is kept between calls"
        message = f"The subject raises {kind} {where}; first: {first.message}."
        formula = PURE_FORMULA if key == "state" else CALL_FORMULA
        found.append(Diagnosis(key, None, formula, message, 0.9, kind="protocol"))
    return found
