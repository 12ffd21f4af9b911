"""One campaign case: the campaign's config, and a case's records from it, in one part or in two.

A case is a pure function of ``(seed, index)`` (:func:`reference_impl.generate.case_from_index`), and so
are its records, whichever process computes them.  This module runs in the campaign's worker processes
(and Dask workers), so it imports no report or CLI code.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from oracles.registry import LIGHT_ORACLES, OracleOutput, get_oracle
from oracles.subjects import Subject, load_subject, reference_subject
from oracles.verdicts.blocks import case_record
from oracles.verdicts.compare import SubjectAnswer, check_case, subject_answer
from oracles.verdicts.precision import apply_strict
from reference_impl.case import Case
from reference_impl.generate import case_from_index
from reference_impl.stress import STRESS_SHARE, check_share
from reports import oracle_plan
from reports.oracle_plan import case_plan, requested_oracles
from reports.records import Record
from reports.worker_pool import limit_threads

REFERENCE = "reference"

# Oracles that run on every k-th case only (index % k == 0), unless ``--subsample`` says otherwise.
# Empty: no oracle is subsampled by index.  The exact oracle is *adaptive* by default instead
# (reports.oracle_plan.DEFAULT_ADAPTIVE: every cheap case, a 1/cost share of the dear ones);
# ``--subsample sympy_exact=1`` runs it on every case.
DEFAULT_SUBSAMPLE: dict[str, int] = {}


class CampaignError(Exception):
    """A campaign that cannot start as asked (resume of a missing or different campaign, ...)."""


@dataclass(frozen=True)
class CampaignConfig:
    """What defines a campaign: the same config always produces the same records."""

    seed: int
    examples: int
    subject: str = REFERENCE  # "reference" or "MODULE:ATTR"
    oracles: tuple[str, ...] | None = None  # None: every registered oracle that supports the case
    subsample: dict[str, int] = field(default_factory=dict)
    stress: float = STRESS_SHARE  # share of stress cases (reference_impl.stress)
    strict: bool = False  # precision findings count as discrepancies
    adaptive: dict[str, float] = field(default_factory=dict)  # oracle -> cost budget (reports.oracle_plan)

    @classmethod
    def create(
        cls,
        seed: int,
        examples: int,
        subject: str = REFERENCE,
        oracles: Sequence[str] | None = None,
        subsample: dict[str, int] | None = None,
        stress: float = STRESS_SHARE,
        strict: bool = False,
        adaptive: dict[str, float] | None = None,
    ) -> CampaignConfig:
        chosen = tuple(oracles) if oracles else None
        every = dict(DEFAULT_SUBSAMPLE if subsample is None else subsample)
        if any(k < 1 for k in every.values()):
            raise CampaignError(f"subsample periods must be at least 1, got {every}")
        # An oracle named in --subsample follows that rule alone: `sympy_exact=1` means every case.
        budgets = dict(oracle_plan.DEFAULT_ADAPTIVE if adaptive is None else adaptive)
        budgets = {name: float(b) for name, b in budgets.items() if name not in every}
        if any(b <= 0 for b in budgets.values()):
            raise CampaignError(f"adaptive budgets must be positive, got {budgets}")
        base = cls(seed=seed, examples=examples, subject=subject, oracles=chosen, subsample=every, adaptive=budgets)
        return replace(base, stress=check_share(stress), strict=strict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["oracles"] = list(self.oracles) if self.oracles else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CampaignConfig:
        oracles = data.get("oracles")
        return cls(
            seed=int(data["seed"]),
            examples=int(data["examples"]),
            subject=str(data.get("subject", REFERENCE)),
            oracles=tuple(oracles) if oracles else None,
            subsample={str(k): int(v) for k, v in (data.get("subsample") or {}).items()},
            # Campaigns written before the adaptive policy ran every oracle on every case: none here.
            adaptive={str(k): float(v) for k, v in (data.get("adaptive") or {}).items()},
            stress=float(data.get("stress", 0.0)),  # stored before stress cases existed: none, as then
            strict=bool(data.get("strict", False)),
        )


def case_id(seed: int, index: int) -> str:
    return f"{seed}-{index:06d}"


def parse_case_id(text: str) -> tuple[int, int]:
    """``"1-000042"`` -> ``(1, 42)``; raises ValueError for anything else."""
    seed_text, sep, index_text = text.strip().partition("-")
    if not sep or not seed_text.isdigit() or not index_text.isdigit():
        raise ValueError(f"case id must look like SEED-INDEX (e.g. 1-000042), got {text!r}")
    return int(seed_text), int(index_text)


_SUBJECTS: dict[tuple[str, float | None], Subject] = {}


def resolve_subject(target: str, timeout: float | None = None) -> Subject:
    """``"reference"`` (in-process) or ``MODULE:ATTR`` (a supervised worker, ``timeout`` seconds per call;
    None: the default); cached per process, so each worker process loads a subject once."""
    key = (target, timeout)
    if key not in _SUBJECTS:
        _SUBJECTS[key] = reference_subject() if target == REFERENCE else load_subject(target, timeout=timeout)
    return _SUBJECTS[key]


def _entry_values(
    case: Case, records: list[Record], names: list[str], outputs: dict[str, OracleOutput] | None = None
) -> dict[str, Any] | None:
    """Every oracle's value at the worst failing entry, so a reader sees who agrees with whom.

    ``outputs``: oracle outputs the comparisons already computed (reused, not evaluated again)."""
    failing = [r for r in records if r.failed and r.check in ("gradient", "delta") and r.parameter]
    if not failing:
        return None
    worst = max(failing, key=lambda r: (r.abs_err or 0.0) / (r.tolerance or 1e-300))
    assert worst.parameter is not None and worst.index is not None
    parameter, index = worst.parameter, tuple(worst.index)
    values: dict[str, float | str] = {}
    for name in names:
        oracle = get_oracle(name)
        if not oracle.supports_case(case):
            continue
        params, X, Y = case.arrays()
        try:
            output = (outputs or {}).get(name) or oracle.evaluate(case.spec, params, X, Y)
            if parameter.startswith("delta"):
                if output.deltas is None:
                    continue
                values[name] = float(output.deltas[int(parameter[5:]) - 1][index])
            else:
                values[name] = float(output.grads[parameter][index])
        except Exception as exc:  # an oracle's own failure is already its own record; here it is just absent
            values[name] = f"{type(exc).__name__}: {exc}"
    return {
        "entry": f"{parameter}[{','.join(str(i) for i in index)}]",
        "check": worst.check,
        "subject": worst.subject_value,
        "oracles": values,
    }


def run_case(config: CampaignConfig, index: int, timeout: float | None = None) -> list[Record]:
    """All records of one case, tagged with their count (the resume marker)."""
    return planned_case(config, index, timeout)[0]


@dataclass
class EarlyPart:
    """What a campaign's main process compared of one case while its workers started: the subject's
    answer, the cheap oracles' records and full outputs (see :mod:`reports.executors`).  A worker
    finishes the case from it."""

    oracles: tuple[str, ...]
    answer: SubjectAnswer
    records: list[Record]
    outputs: dict[str, OracleOutput]


def early_part(config: CampaignConfig, index: int, timeout: float | None = None) -> EarlyPart | None:
    """Compare case ``index`` with the policy's :data:`~oracles.registry.LIGHT_ORACLES` only (None: none).

    Only light oracles are asked, so neither torch nor SymPy is imported: the process computing this is
    the one that should not pay for them.  The loss check stays with the worker, which sees every oracle.
    """
    case = case_from_index(config.seed, index, config.stress)
    names = [
        name
        for name in requested_oracles(config)
        if name in LIGHT_ORACLES
        and oracle_plan.selected(name, case, index, config.seed, config.subsample, config.adaptive)
        and get_oracle(name).supports_case(case)
    ]
    if not names:
        return None
    outputs: dict[str, OracleOutput] = {}
    subject = resolve_subject(config.subject, timeout)
    answer = subject_answer(subject, case)
    records = check_case(case, subject, names, outputs=outputs, check_loss=False, answer=answer)
    return EarlyPart(tuple(names), answer, records, outputs)


def planned_case(
    config: CampaignConfig, index: int, timeout: float | None = None, early: EarlyPart | None = None
) -> tuple[list[Record], dict[str, str]]:
    """:func:`run_case`, and the requested oracles that did not check the case with the reason.

    ``early``: the part :func:`early_part` computed elsewhere; the records are the same as without it.
    """
    case = case_from_index(config.seed, index, config.stress)
    supported, skipped = case_plan(config, index, case)
    names = supported + [n for n, why in skipped.items() if why == oracle_plan.UNSUPPORTED]
    done = [n for n in early.oracles if n in supported] if early else []
    outputs: dict[str, OracleOutput] = {n: early.outputs[n] for n in done if n in early.outputs} if early else {}
    subject = resolve_subject(config.subject, timeout)
    records = [r for r in early.records if r.oracle in done] if early else []
    if supported and (len(done) < len(supported) or subject.loss is not None):
        answer = early.answer if early else None
        records += check_case(case, subject, supported, outputs=outputs, compared=done, answer=answer)
    # One order whichever process compared what: the plan's oracle order, the loss check last.
    position = {name: i for i, name in enumerate(supported)}
    records.sort(key=lambda r: (r.check == "loss", position.get(r.oracle, len(position))))
    if not records:
        records = [
            case_record(
                case,
                subject.name,
                "-",
                "campaign",
                "skip",
                message=f"no requested oracle supports this case ({', '.join(names) or 'none requested'})",
            )
        ]
    records = apply_strict(records) if config.strict else records
    entry = _entry_values(case, records, supported, outputs)
    for record in records:
        record.extra["campaign"] = {"records": len(records), "index": index}
        if entry is not None and record.failed:
            record.extra["entry_values"] = entry
    return records, skipped


@dataclass
class BatchResult:
    cases: list[tuple[int, list[Record]]]
    compute_seconds: float  # wall time inside the worker: the part that is not scheduling overhead
    skipped: dict[int, dict[str, str]] = field(default_factory=dict)  # index -> {oracle: why it did not check}
    cpu_seconds: float = 0.0  # CPU time of the worker process on the batch: what a busy machine does not inflate
    started_elsewhere: int = 0  # cases of the batch whose light oracles the main process compared


def run_batch(
    config: CampaignConfig,
    indices: Sequence[int],
    single_thread: bool = True,
    timeout: float | None = None,
    early: Mapping[int, EarlyPart | None] | None = None,
) -> BatchResult:
    """Run a batch of cases (finishing those with an ``early`` part); a top-level function so process pools
    and Dask can ship it by reference."""
    if single_thread:
        limit_threads()
    start, cpu = time.perf_counter(), time.process_time()
    cases: list[tuple[int, list[Record]]] = []
    skipped: dict[int, dict[str, str]] = {}
    for index in indices:
        records, skipped[index] = planned_case(config, index, timeout, (early or {}).get(index))
        cases.append((index, records))
    elsewhere = sum(1 for index in indices if (early or {}).get(index) is not None)
    return BatchResult(cases, time.perf_counter() - start, skipped, time.process_time() - cpu, elsewhere)
