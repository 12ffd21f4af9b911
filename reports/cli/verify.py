"""``backprop-check verify MODULE:ATTR`` and ``backprop-check fixtures export|check``.

``verify`` draws seeded cases from what the subject supports, compares its gradients with an
independent oracle, and prints the diagnosis first, then a verdict per parameter family.  Exit 0: every
case agrees; 1: something is wrong (including protocol faults and undeclared conventions); 2: usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oracles.diagnosis import conventions
from oracles.diagnosis.diagnose import Diagnosis, diagnose_subject
from oracles.diagnosis.family import Family, family_cases
from oracles.diagnosis.instability import Instability, explain_instability
from oracles.registry import OracleOutput, get_oracle
from oracles.subjects import DEFAULT_TIMEOUT, Subject, call_subject, load_subject, subject_supports
from oracles.verdicts.compare import compare_to_oracle, protocol_record, with_call_notes
from oracles.verdicts.loss_check import loss_record
from oracles.verdicts.precision import apply_strict
from reference_impl.case import Case
from reports.cli.common import EXIT_FOUND, EXIT_OK, UsageError, add_stress_options, stress_share
from reports.dirlock import DirectoryBusy, exclusive
from reports.fixtures import DEFAULT_RTOL, FixtureError, check_results, export_fixtures
from reports.records import Record, RecordWriter

RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.html"
SUMMARY_FILE = "verify.json"
DIAGNOSIS_CASES = 3  # failing cases handed to the diagnoser beside its own probes


def _names(values: Sequence[str] | None) -> list[str] | None:
    """``--activations tanh,relu`` and ``--activations tanh relu`` mean the same."""
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def register(subparsers: argparse._SubParsersAction) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="check your gradients function against the oracles, with a diagnosis",
        description="Check MODULE:ATTR (a gradients function, or an object with .gradients) on seeded cases.",
    )
    verify.add_argument("subject", metavar="MODULE:ATTR")
    verify.add_argument("--examples", type=int, default=25, help="number of cases (default 25)")
    verify.add_argument("--seed", type=int, default=0)
    verify.add_argument("--out", type=Path, help="write results.jsonl, verify.json and report.html here")
    verify.add_argument("--activations", nargs="+", help="only these activations (intersected with SUPPORTS)")
    verify.add_argument("--losses", nargs="+", help="only these losses (intersected with SUPPORTS)")
    verify.add_argument(
        "--timeout",
        type=float,
        help=f"seconds per call before the subject's worker process is killed (default {DEFAULT_TIMEOUT:g})",
    )
    verify.add_argument(
        "--convention",
        help=f"your loss convention, one for every loss or per loss (mse=mean_elements,bce=mean_elements): "
        f"{', '.join(conventions.CONVENTIONS)}",
    )
    verify.add_argument("--oracle", default="torch_autograd", help="oracle to compare with (default torch_autograd)")
    add_stress_options(verify)
    verify.set_defaults(func=run_verify)

    fixtures = subparsers.add_parser("fixtures", help="golden fixtures for implementations in other languages")
    actions = fixtures.add_subparsers(dest="fixtures_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write versioned .npz cases and index.json")
    export.add_argument("directory", type=Path)
    export.add_argument("--count", type=int, default=20)
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--activations", nargs="+")
    export.add_argument("--losses", nargs="+")
    export.add_argument("--max-depth", type=int, default=None)
    export.set_defaults(func=run_fixtures_export)
    check = actions.add_parser("check", help="compare RESULTS/<case>.npz written by another program")
    check.add_argument("directory", type=Path)
    check.add_argument("results", type=Path)
    check.add_argument("--rtol", type=float, default=DEFAULT_RTOL)
    check.set_defaults(func=run_fixtures_check)


# --- verify --------------------------------------------------------------------------------------------


@dataclass
class FamilyVerdict:
    """Per parameter (``W2``, ``b2``, …): how many cases passed and failed, and the worst relative error."""

    passed: int = 0
    failed: int = 0
    worst_rel_err: float = 0.0
    worst_case: str = ""

    def line(self, name: str) -> str:
        total = self.passed + self.failed
        verdict = "FAIL" if self.failed else "pass"
        worst = (
            f", worst rel err {self.worst_rel_err:.3g} in {self.worst_case}" if self.failed and self.worst_case else ""
        )
        return f"  {name:<6} {verdict}  {self.passed}/{total} cases right{worst}"


@dataclass
class VerifyResult:
    records: list[Record] = field(default_factory=list)
    failing_cases: list[Case] = field(default_factory=list)
    verdicts: dict[str, FamilyVerdict] = field(default_factory=dict)
    protocol: dict[str, list[str]] = field(default_factory=dict)  # category -> case ids
    gradient_failing: list[Case] = field(default_factory=list)  # failing cases the diagnosis can look at
    loss_failures: list[Record] = field(default_factory=list)  # the loss companion's failing records
    output_bytes: int = 0  # most the subject printed in one call (captured, not shown)
    unstable_cases: list[Case] = field(default_factory=list)  # NaN/inf where the truth is finite
    precision: list[tuple[Case, Record]] = field(default_factory=list)  # right but imprecise (first record each)

    @property
    def wrong_cases(self) -> list[Case]:
        """Gradient failures that are neither unstable nor only imprecise (what the defect diagnoser explains)."""
        unstable = {c.id for c in self.unstable_cases}
        imprecise = {c.id for c, r in self.precision if r.failed}
        return [c for c in self.gradient_failing if c.id not in unstable and c.id not in imprecise]


def _family(args: argparse.Namespace) -> Family:
    supports = subject_supports(args.subject)
    family = Family.from_supports(supports)
    return family.restricted(_names(args.activations), _names(args.losses))


def _check_convention(value: str | Mapping[str, str] | None, family: Family) -> dict[str, str]:
    """The declaration as loss -> name; a usage error if it is malformed or applies to none of the losses."""
    try:
        declared = conventions.parse_declaration(value)
    except conventions.DeclarationError as exc:
        raise UsageError(str(exc), "usage") from None
    if declared and not conventions.declared_losses(declared, list(family.usable_losses)):
        raise UsageError(
            f"convention {conventions.format_declaration(declared)!r} applies to none of the losses "
            f"{list(family.usable_losses)}; known: {sorted(conventions.CONVENTIONS)}",
            "usage",
        )
    return declared


def _declared_factor(declared: Mapping[str, str] | None, case: Case) -> float:
    return conventions.declared_factor(declared or {}, case.spec, case.batch)


def _tally(result: VerifyResult, record: Record) -> None:
    if record.check == "loss" and record.failed:
        result.loss_failures.append(record)
        if not record.blocks:  # the companion raised or returned no number: no block to tally
            result.verdicts.setdefault("loss", FamilyVerdict()).failed += 1
            return
    if record.check == "protocol":
        result.protocol.setdefault(record.category or "exception", []).append(record.case_id)
        if record.parameter:
            result.verdicts.setdefault(record.parameter, FamilyVerdict()).failed += 1
        return
    for name, block in record.blocks.items():
        verdict = result.verdicts.setdefault(name, FamilyVerdict())
        if block.get("verdict") == "fail":
            verdict.failed += 1
            rel = float(block.get("rel_err") or 0.0)
            if rel >= verdict.worst_rel_err:
                verdict.worst_rel_err, verdict.worst_case = rel, record.case_id
        else:
            verdict.passed += 1


def verify_subject(
    subject: Subject,
    cases: Sequence[Case],
    *,
    oracle_name: str = "torch_autograd",
    convention: str | Mapping[str, str] | None = None,
    timeout: float | None = None,
    writer: RecordWriter | None = None,
    strict: bool = False,
) -> VerifyResult:
    """Run every case (protocol guards on, nondeterminism checked) and compare with one oracle.

    ``convention``: the subject's declared convention(s), one name or per loss (see
    :func:`oracles.diagnosis.conventions.parse_declaration`); ``strict``: a precision finding fails its case.
    """
    convention = conventions.parse_declaration(convention)
    oracle = get_oracle(oracle_name)
    result = VerifyResult()
    for case in cases:
        call = call_subject(subject, case, timeout=timeout, repeat=True)
        if call.failure is not None or call.grads is None:
            failure = call.failure
            assert failure is not None
            records = [
                protocol_record(case, subject.name, oracle.name, failure.category, failure.message, failure.parameter)
            ]
        elif not oracle.supports_case(case):
            continue
        else:
            factor = _declared_factor(convention, case)
            grads = {name: value / factor for name, value in call.grads.items()}
            outputs: dict[str, OracleOutput] = {}
            records = compare_to_oracle(case, subject.name, grads, oracle, outputs=outputs)
            for record in records:
                record.elapsed += call.elapsed
            if subject.loss is not None:
                output = outputs.get(oracle.name)
                records.append(loss_record(case, subject, oracle, output, factor=factor, timeout=timeout))
            name = conventions.declared_name(convention or {}, case.spec.loss)
            if name is not None:
                for record in records:
                    record.extra["convention"] = {"name": name, "factor": factor}
        result.output_bytes = max(result.output_bytes, call.output_bytes)
        records = with_call_notes(records, call)
        if strict:
            records = apply_strict(records)
        for record in records:
            _tally(result, record)
            result.records.append(record)
            if writer is not None:
                writer.write(record)
        if any(r.failed for r in records):
            result.failing_cases.append(case)
        if any(r.failed and r.check != "loss" for r in records):
            result.gradient_failing.append(case)
        if any(r.category == "unstable" for r in records):
            result.unstable_cases.append(case)
        imprecise = [r for r in records if r.category == "precision"]
        if imprecise and not any(r.failed and r.category != "precision" for r in records):
            result.precision.append((case, imprecise[0]))
    return result


def _parameter_order(name: str) -> tuple[int, str]:
    digits = name.lstrip("Wbdelta")
    return (int(digits) if digits.isdigit() else 0, name)


def _write_report(out: Path, records: list[Record], summary: dict[str, Any]) -> str:
    """report.html through reports.html when that module is there; otherwise say so."""
    try:
        html = importlib.import_module("reports.html")
    except ModuleNotFoundError as exc:
        if exc.name != "reports.html":
            raise
        return "HTML report not written (reports.html is not installed); results.jsonl has every record"
    render = getattr(html, "render_report", None)
    if render is None:
        return "HTML report not written (reports.html has no render_report); results.jsonl has every record"
    (out / REPORT_FILE).write_text(render(records, {"verify": summary}, out), encoding="utf-8")
    return f"report: {out / REPORT_FILE}"


def run_verify(args: argparse.Namespace) -> int:
    if args.examples < 1:
        raise UsageError("--examples must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    # The subject runs in a supervised worker; its time limit per call is the worker's own from here on.
    subject = load_subject(args.subject, timeout=args.timeout)
    family = _family(args)
    supports = subject_supports(args.subject) or {}
    declared = _check_convention(args.convention or supports.get("convention"), family)
    try:
        get_oracle(args.oracle)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    if "torch" in sys.modules:
        # One torch thread: on the small networks verify draws, a second intra-op thread only contends
        # (measured: 100 cases' torch comparisons 13x slower with two threads on a busy 2-core machine).
        sys.modules["torch"].set_num_threads(1)
    cases = family_cases(family, args.seed, args.examples, stress_share(args.stress))
    if args.out is None:
        return _verify(args, subject, family, cases, declared)
    try:
        with exclusive(args.out, "verify"):
            return _verify(args, subject, family, cases, declared)
    except DirectoryBusy as exc:
        raise UsageError(str(exc), "busy") from None


def _verify(
    args: argparse.Namespace, subject: Subject, family: Family, cases: list[Case], declared: dict[str, str]
) -> int:
    writer = None
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / RESULTS_FILE).unlink(missing_ok=True)
        writer = RecordWriter(args.out / RESULTS_FILE)
    try:
        result = verify_subject(
            subject, cases, oracle_name=args.oracle, convention=declared, writer=writer, strict=args.strict
        )
    finally:
        if writer is not None:
            writer.close()
    diagnoses: list[Diagnosis] = []
    if result.wrong_cases:
        diagnoses = diagnose_subject(
            conventions.declared_subject(subject, declared),
            result.wrong_cases[:DIAGNOSIS_CASES],
            rng_seed=args.seed,
            supports=family,
        )
    instabilities: list[Instability] = []
    if result.unstable_cases:
        instabilities = explain_instability(subject, result.unstable_cases[0], family)
    lines = _render(
        args, cases, result, diagnoses, instabilities, conventions.format_declaration(declared) if declared else None
    )
    print("\n".join(lines))
    if args.out is not None:
        summary = {
            "subject": args.subject,
            "cases": len(cases),
            "failing_cases": [c.id for c in result.failing_cases],
            "convention": declared or None,
            "diagnoses": [d.__dict__ | {"losses": list(d.losses)} for d in diagnoses],
            "instabilities": [i.as_dict() for i in instabilities],
            "unstable_cases": [c.id for c in result.unstable_cases],
            "precision_cases": [c.id for c, _ in result.precision],
            "stress": stress_share(args.stress),
            "strict": bool(args.strict),
            "protocol": result.protocol,
        }
        (args.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
        print(_write_report(args.out, result.records, summary))
        print(f"records: {args.out / RESULTS_FILE}")
    return EXIT_FOUND if result.failing_cases else EXIT_OK


def _headline(first: Diagnosis) -> str:
    """The first line; when it is not a bug it says why the exit code is still 1."""
    if first.is_bug:
        return f"diagnosis: {first.line()}"
    return f"diagnosis: {first.line()} (not a bug, but undeclared: these cases count as failures until declared)"


def _render(
    args: argparse.Namespace,
    cases: Sequence[Case],
    result: VerifyResult,
    diagnoses: list[Diagnosis],
    instabilities: Sequence[Instability] = (),
    declared: str | None = None,
) -> list[str]:
    lines: list[str] = []
    if not result.failing_cases:
        note = f" (declared convention: {declared})" if declared else ""
        lines.append(f"diagnosis: none needed: all {len(cases)} cases agree with {args.oracle}{note}")
    elif not result.gradient_failing:
        lines.append(f"diagnosis: loss: the gradients agree with {args.oracle}; the loss companion does not")
    elif instabilities:
        lines.append(f"diagnosis: {instabilities[0].line()}")
        also = [i.line() for i in instabilities[1:]] + [d.line() for d in diagnoses]
        lines.extend(f"  also: {line}" for line in also)
    elif diagnoses:
        lines.append(_headline(diagnoses[0]))
        lines.extend(f"  also: {d.line()}" for d in diagnoses[1:])
    elif result.wrong_cases:
        lines.append("diagnosis: no known defect or convention explains the disagreement (see the records)")
    else:
        lines.append("diagnosis: right, but less precise than float64 allows (failing under --strict)")
    for category, ids in sorted(result.protocol.items()):
        lines.append(f"protocol [{category}]: {len(ids)} case(s), first {ids[0]}")
    if result.precision:
        case, record = result.precision[0]
        status = "failing under --strict" if args.strict else "not a failure; --strict makes it one"
        lines.append(f"precision: {len(result.precision)} case(s) right but imprecise ({status}); first {case.id}:")
        lines.append(f"  {record.message}")
    if result.loss_failures:
        first = result.loss_failures[0]
        lines.append(f"loss [loss]: {len(result.loss_failures)} case(s), first {first.case_id}: {first.message}")
    if result.output_bytes:
        lines.append(
            f"subject output: up to {result.output_bytes} bytes per call, captured (the start is kept in the records)"
        )
    lines.append("verdict per parameter:")
    for name in sorted(result.verdicts, key=_parameter_order):
        lines.append(result.verdicts[name].line(name))
    wrong = len(result.failing_cases)
    status = "FAIL" if wrong else "PASS"
    lines.append(f"{status}: {wrong} of {len(cases)} cases wrong; subject {args.subject}, seed {args.seed}")
    if wrong:
        lines.append(f"first failing case: {result.failing_cases[0]!r}")
    return lines


# --- fixtures -----------------------------------------------------------------------------------------------


def run_fixtures_export(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    family = Family().restricted(_names(args.activations), _names(args.losses))
    if args.max_depth is not None:
        if args.max_depth < 1:
            raise UsageError("--max-depth must be at least 1")
        family = Family(family.hidden, family.outputs, family.losses, 1, args.max_depth)
    try:
        index = export_fixtures(args.directory, args.count, seed=args.seed, family=family)
    except FixtureError as exc:
        raise UsageError(str(exc), "internal") from None
    version = index["schema_version"]
    print(f"wrote {len(index['cases'])} cases and index.json (schema version {version}) to {args.directory}")
    return EXIT_OK


def run_fixtures_check(args: argparse.Namespace) -> int:
    try:
        findings = check_results(args.directory, args.results, rtol=args.rtol)
    except FixtureError as exc:
        raise UsageError(str(exc), "input") from None
    failed = [f for f in findings if not f.passed]
    for finding in failed:
        print(finding.line())
    cases = {f.case_id for f in findings}
    bad_cases = {f.case_id for f in failed}
    status = "FAIL" if failed else "PASS"
    print(f"{status}: {len(cases) - len(bad_cases)} of {len(cases)} cases right, {len(failed)} wrong block(s)")
    return EXIT_FOUND if failed else EXIT_OK
