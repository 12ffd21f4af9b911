"""The article audit: claims as executable encodings, verdicts computed by searching over settings.

A :class:`Claim` quotes one statement of the article and carries one or more :class:`Reading` s — the
ways its text can be read, each an executable encoding of exactly what it says.  A reading is checked on
Hypothesis-generated instances of every *setting* of the claim's search grid (activation/loss pairing,
square or non-square layers, m = 1 or m > 1, ...).  Verdicts follow from where it held:

- a reading that held in every applicable setting ``holds``; in none, it is ``wrong``; in some, it
  ``holds under conditions`` — the conditions are a description of the settings where it held, derived
  from the search (:func:`describe_conditions`), never written by hand;
- a claim with one reading of its text takes that reading's verdict; with several readings that
  disagree it is ``ambiguous`` (readings marked ``literal=False`` are what the text presumably *means*:
  reported, but they do not decide the verdict);
- every failing reading gets a minimal counterexample, shrunk by :func:`hypothesis.find`.

Nothing here knows any claim's verdict; ``reports.audit.catalogue`` lists the claims themselves and
``reports.audit.view`` renders the results as HTML.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import combinations
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample, Unsatisfiable

from oracles.verdicts.tolerances import entry_tolerance, tolerance_for
from reference_impl.spec import Array, Params, Spec
from reports.audit.truth import Truth, truth

SCHEMA = "backprop-check.audit"
SCHEMA_VERSION = 1
HOLDS, CONDITIONS, WRONG, AMBIGUOUS = "holds", "holds under conditions", "wrong", "ambiguous"
VERDICTS: tuple[str, ...] = (HOLDS, CONDITIONS, WRONG, AMBIGUOUS)
DEFAULT_EXAMPLES = 6  # Hypothesis instances per setting and reading
SHRINK_EXAMPLES = 300  # budget of hypothesis.find when shrinking a counterexample
TRUTH_ORACLE = "torch_autograd"

# A setting is one point of a claim's search grid: ordered (dimension, value) pairs.
Setting = tuple[tuple[str, str], ...]


def setting(**dimensions: object) -> Setting:
    return tuple((name, str(value)) for name, value in dimensions.items())


def setting_label(point: Setting) -> str:
    """``loss=bce, m>1``: a value that is itself a comparison (``">1"``) is not written ``m=>1``."""
    parts = (f"{name}{value}" if value[:1] in "<>≤≥" else f"{name}={value}" for name, value in point)
    return ", ".join(parts) or "(single setting)"


# --- instances and outcomes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One concrete problem of a setting: ``params`` W{l} ``(n_l, n_{l-1})``, ``X`` ``(n_0, m)``, ``Y`` ``(n_L, m)``.

    ``extra`` carries what a claim needs beyond the network (a learning rate, say); ``label`` names a
    fixed instance such as the article's own example data.
    """

    setting: Setting
    spec: Spec
    params: Params
    X: Array
    Y: Array
    extra: Mapping[str, float] = field(default_factory=dict)
    label: str = ""

    @cached_property
    def truth(self) -> Truth:
        return truth(self.spec, self.params, self.X, self.Y)

    @property
    def m(self) -> int:
        return int(self.X.shape[1])

    def to_json(self) -> dict[str, Any]:
        return {
            "setting": setting_label(self.setting),
            "label": self.label,
            "spec": self.spec.to_dict(),
            "params": {k: np.asarray(v).tolist() for k, v in self.params.items()},
            "X": self.X.tolist(),
            "Y": self.Y.tolist(),
            "extra": dict(self.extra),
        }


@dataclass(frozen=True)
class Outcome:
    """Whether an encoding agreed with the oracle on one instance, with both values for the report."""

    holds: bool
    claimed: Any = None
    expected: Any = None
    note: str = ""


def compare(claimed: Any, expected: Any, *, oracle: str = TRUTH_ORACLE, note: str = "") -> Outcome:
    """Shape must match exactly; values within the oracle's tolerance row (:func:`entry_tolerance`)."""
    got = np.asarray(claimed, dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    if got.shape != want.shape:
        shape_note = f"shape {got.shape} where the oracle has {want.shape}"
        return Outcome(False, claimed, expected, "; ".join(filter(None, [shape_note, note])))
    if not np.all(np.isfinite(got)):
        return Outcome(False, claimed, expected, "; ".join(filter(None, ["non-finite value", note])))
    allowed = entry_tolerance(want, tolerance_for(oracle))
    diff = np.abs(got - want)
    holds = bool(np.all(diff <= allowed))
    detail = "" if holds else f"max |claimed − oracle| = {float(diff.max()):.3g}"
    return Outcome(holds, claimed, expected, "; ".join(filter(None, [detail, note])))


Check = Callable[[Instance], Outcome]


def _everywhere(point: Setting) -> bool:
    return True


@dataclass(frozen=True)
class SymbolicResult:
    """A SymPy identity check: ``residual`` is the simplified difference of the two sides ("0" if it holds)."""

    holds: bool
    statement: str
    residual: str


@dataclass(frozen=True)
class Reading:
    name: str
    encoding: str  # the literal formula or code that ``check`` evaluates, shown in the report
    check: Check
    literal: bool = True  # False: what the text presumably means, reported but not deciding the verdict
    applies: Callable[[Setting], bool] = _everywhere
    symbolic: Callable[[], SymbolicResult] | None = None


@dataclass(frozen=True)
class Claim:
    key: str  # "§3.4", or "§3.2 vs §4.2" for consistency claims
    title: str
    quote: str  # as the article writes it
    gloss: str  # English
    kind: str  # "formula", "listing" or "consistency"
    settings: tuple[Setting, ...]
    instances: Callable[[Setting], st.SearchStrategy[Instance]]
    readings: tuple[Reading, ...]
    correction: str
    oracle: str = TRUTH_ORACLE
    note: str = ""  # what the audit observed beyond the verdict (e.g. what a listing prints)


# --- evaluation --------------------------------------------------------------------------------------


def run_check(check: Check, instance: Instance) -> Outcome:
    """A literal encoding that raises (a shape error, say) or warns has failed on this instance."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            outcome = check(instance)
        except Exception as exc:
            return Outcome(False, None, None, f"{type(exc).__name__}: {exc}")
    if caught:
        messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
        outcome = Outcome(outcome.holds, outcome.claimed, outcome.expected, "; ".join([outcome.note, *messages]))
    return outcome


def draw_instances(strategy: st.SearchStrategy[Instance], count: int) -> list[Instance]:
    """``count`` Hypothesis-generated instances, derandomised so an audit is reproducible."""
    drawn: list[Instance] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(instance: Instance) -> None:
        drawn.append(instance)

    collect()
    return drawn


@dataclass
class ReadingResult:
    name: str
    encoding: str
    literal: bool
    verdict: str
    condition: str
    holds_in: list[str]
    fails_in: list[str]
    instances: int
    observations: list[str] = field(default_factory=list)
    counterexample: dict[str, Any] | None = None
    symbolic: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ClaimResult:
    key: str
    title: str
    quote: str
    gloss: str
    kind: str
    verdict: str
    condition: str
    readings: list[ReadingResult]
    correction: str
    oracle: str
    note: str
    elapsed: float

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["readings"] = [r.to_json() for r in self.readings]
        return data

    def line(self) -> str:
        suffix = f" [{self.condition}]" if self.verdict in (CONDITIONS, AMBIGUOUS) and self.condition else ""
        return f"{self.key:<14} {self.verdict:<23} {self.title}{suffix}"


def _project(point: Setting, names: tuple[str, ...]) -> tuple[str, ...]:
    values = dict(point)
    return tuple(values[n] for n in names)


def _one_dimension(holding: Sequence[Setting], failing: Sequence[Setting], name: str) -> str | None:
    good = {dict(p)[name] for p in holding}
    bad = {dict(p)[name] for p in failing}
    if not good.isdisjoint(bad):
        return None
    # Name the shorter side: "pairing ∉ {softmax+cce}" reads better than twelve pairings.
    if len(bad) < len(good):
        return f"{name} ∉ {{{', '.join(sorted(bad))}}}"
    return f"{name} ∈ {{{', '.join(sorted(good))}}}"


def _two_dimensions(holding: Sequence[Setting], failing: Sequence[Setting], names: tuple[str, ...]) -> str | None:
    good = {_project(p, names) for p in holding}
    if not good.isdisjoint({_project(p, names) for p in failing}):
        return None
    pairs = ", ".join("(" + ", ".join(v) + ")" for v in sorted(good))
    return f"({', '.join(names)}) ∈ {{{pairs}}}"


def describe_conditions(holding: Sequence[Setting], failing: Sequence[Setting]) -> str:
    """The shortest description of ``holding`` (over the grid) that excludes every setting in ``failing``.

    One dimension (``loss ∈ {bce}``) if that separates; else the shortest of: a pair of dimensions, or a
    whole slice of one dimension plus a remainder (``eta ∈ {0.001}, or (eta, loss) ∈ {(1.0, bce)}``);
    else the settings themselves.
    """
    if not holding:
        return "nowhere tried"
    if not failing:
        return "everywhere tried"
    dimensions = [name for name, _ in holding[0]]
    for name in dimensions:
        single = _one_dimension(holding, failing, name)
        if single is not None:
            return single
    candidates = [d for names in combinations(dimensions, 2) if (d := _two_dimensions(holding, failing, names))]
    for name in dimensions:
        whole = sorted({dict(p)[name] for p in holding} - {dict(p)[name] for p in failing})
        rest = [p for p in holding if dict(p)[name] not in whole]
        if whole and rest:
            remainder = describe_conditions(rest, failing)
            if not remainder.startswith("only in"):
                candidates.append(f"{name} ∈ {{{', '.join(whole)}}}, or {remainder}")
    if candidates:
        return min(candidates, key=len)
    return "only in: " + "; ".join(setting_label(p) for p in holding)


def reading_verdict(holding: Sequence[Setting], applicable: Sequence[Setting]) -> str:
    if not holding:
        return WRONG
    return HOLDS if len(holding) == len(applicable) else CONDITIONS


def claim_verdict(readings: Sequence[ReadingResult]) -> tuple[str, str]:
    """One literal reading decides; several that disagree make the claim ambiguous."""
    literal = [r for r in readings if r.literal and r.instances]
    if not literal:
        raise ValueError("a claim needs at least one literal reading that applies somewhere")
    if len(literal) == 1:
        only = literal[0]
        return only.verdict, only.condition if only.verdict == CONDITIONS else ""
    verdicts = {r.verdict for r in literal}
    if verdicts == {HOLDS}:
        return HOLDS, ""
    if verdicts == {WRONG}:
        return WRONG, ""
    held = [r.name for r in literal if r.verdict == HOLDS]
    partly = [f"{r.name} ({r.condition})" for r in literal if r.verdict == CONDITIONS]
    summary = "; ".join(
        filter(None, ["holds: " + ", ".join(held) if held else "", "only if: " + ", ".join(partly) if partly else ""])
    )
    return AMBIGUOUS, summary


def _shrink(claim: Claim, reading: Reading, failing: Sequence[Setting], budget: int) -> Instance | None:
    strategy = st.one_of([claim.instances(p) for p in failing])
    try:
        return find(
            strategy,
            lambda instance: not run_check(reading.check, instance).holds,
            settings=settings(
                max_examples=budget,
                # No explain phase: it re-runs the shrunk example many times, for a note the report does not show.
                phases=[Phase.generate, Phase.shrink],
                database=None,
                derandomize=True,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    except (NoSuchExample, Unsatisfiable):
        return None


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)):  # several quantities of one claim may have different shapes
        return [_jsonable(v) for v in value]
    array = np.asarray(value)
    if array.dtype.kind in "biu":
        return array.tolist()
    if array.dtype.kind == "f":
        # JSON has no inf/nan: keep them readable as strings rather than hiding them.
        as_objects = np.vectorize(lambda v: float(v) if np.isfinite(v) else repr(float(v)), otypes=[object])
        return as_objects(array).tolist() if array.size else array.tolist()
    return str(value)


def counterexample_json(instance: Instance, outcome: Outcome) -> dict[str, Any]:
    data = instance.to_json()
    data.update(claimed=_jsonable(outcome.claimed), oracle=_jsonable(outcome.expected), note=outcome.note)
    return data


def _symbolic_json(reading: Reading) -> dict[str, Any] | None:
    if reading.symbolic is None:
        return None
    sym = reading.symbolic()
    return {"holds": sym.holds, "statement": sym.statement, "residual": sym.residual}


def evaluate_claim(claim: Claim, examples: int = DEFAULT_EXAMPLES, shrink_budget: int = SHRINK_EXAMPLES) -> ClaimResult:
    """Every reading on the same instances of every setting, then one shrunk counterexample per failing reading."""
    start = time.perf_counter()
    n = len(claim.readings)
    applicable: list[list[Setting]] = [[] for _ in range(n)]
    holding: list[list[Setting]] = [[] for _ in range(n)]
    failing: list[list[Setting]] = [[] for _ in range(n)]
    observations: list[list[str]] = [[] for _ in range(n)]
    first_failure: list[tuple[Instance, Outcome] | None] = [None] * n
    counts = [0] * n
    for point in claim.settings:
        readings = [k for k, r in enumerate(claim.readings) if r.applies(point)]
        if not readings:
            continue
        instances = draw_instances(claim.instances(point), examples)
        for k in readings:
            outcomes = [(i, run_check(claim.readings[k].check, i)) for i in instances]
            applicable[k].append(point)
            counts[k] += len(outcomes)
            bad = [(i, o) for i, o in outcomes if not o.holds]
            (failing[k] if bad else holding[k]).append(point)
            notes = sorted({o.note for _, o in (bad or outcomes) if o.note})
            if notes:
                observations[k].append(f"{setting_label(point)}: {notes[0]}")
            if bad and first_failure[k] is None:
                first_failure[k] = bad[0]
    results = []
    for k, reading in enumerate(claim.readings):
        counterexample = None
        if failing[k]:
            smallest = _shrink(claim, reading, failing[k], shrink_budget)
            found = (smallest, run_check(reading.check, smallest)) if smallest is not None else first_failure[k]
            if found is not None:
                counterexample = counterexample_json(*found)
                counterexample["shrunk"] = smallest is not None
        results.append(
            ReadingResult(
                name=reading.name,
                encoding=reading.encoding,
                literal=reading.literal,
                verdict=reading_verdict(holding[k], applicable[k]) if applicable[k] else WRONG,
                condition=describe_conditions(holding[k], failing[k]) if applicable[k] else "applies nowhere",
                holds_in=[setting_label(p) for p in holding[k]],
                fails_in=[setting_label(p) for p in failing[k]],
                instances=counts[k],
                observations=observations[k],
                counterexample=counterexample,
                symbolic=_symbolic_json(reading),
            )
        )
    verdict, condition = claim_verdict(results)
    return ClaimResult(
        key=claim.key,
        title=claim.title,
        quote=claim.quote,
        gloss=claim.gloss,
        kind=claim.kind,
        verdict=verdict,
        condition=condition,
        readings=results,
        correction=claim.correction if verdict != HOLDS else "",
        oracle=claim.oracle,
        note=claim.note,
        elapsed=time.perf_counter() - start,
    )


def run_audit(
    claims: Iterable[Claim], examples: int = DEFAULT_EXAMPLES, on_result: Callable[[ClaimResult], None] | None = None
) -> dict[str, Any]:
    """Evaluate every claim; returns the ``audit.json`` document."""
    start = time.perf_counter()
    results: list[ClaimResult] = []
    for claim in claims:
        result = evaluate_claim(claim, examples)
        results.append(result)
        if on_result is not None:
            on_result(result)
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "examples_per_setting": examples,
        "elapsed": time.perf_counter() - start,
        "counts": counts,
        "claims": [r.to_json() for r in results],
    }
