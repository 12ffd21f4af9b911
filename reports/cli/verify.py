"""``backprop-check verify MODULE:ATTR``: a subject checked on seeded cases, with a diagnosis.

``verify`` draws seeded cases from what the subject supports, compares its gradients with an
independent oracle, and prints the diagnosis first, then a verdict per parameter family.  Exit 0: every
case agrees; 1: something is wrong (including protocol faults and undeclared conventions); 2: usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
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
from reports.cli.common import (
    EXIT_FOUND,
    EXIT_OK,
    UsageError,
    add_list_option,
    add_stress_options,
    listed,
    quiet,
    stress_share,
)
from reports.cli.outdir import OWN_FILES, check_directory, claim_directory, refresh_campaign_report
from reports.dirlock import DirectoryBusy, exclusive
from reports.records import Record, RecordWriter

# verify's own files: beside a campaign's results.jsonl/report.html, never over them
RESULTS_FILE, SUMMARY_FILE, REPORT_FILE = OWN_FILES["verify"]
DIAGNOSIS_CASES = 3  # failing cases handed to the diagnoser beside its own probes


SUBJECT_HELP = (
    "a gradients function, or an object with .gradients, as MODULE:ATTR; imported from the current "
    "directory first (like python -m), then from the installed packages"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="check your gradients function against the oracles, with a diagnosis",
        description=(
            "Check MODULE:ATTR (a gradients function, or an object with .gradients) on seeded cases. "
            "MODULE is imported from the current directory first."
        ),
    )
    verify.add_argument("subject", metavar="MODULE:ATTR", help=SUBJECT_HELP)
    verify.add_argument("--examples", type=int, default=25, metavar="N", help="number of cases (default 25)")
    verify.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the drawn cases (default 0)")
    verify.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"write {RESULTS_FILE}, {SUMMARY_FILE} and {REPORT_FILE} here (beside other commands' files; "
        "refused if this command's files are already there)",
    )
    add_list_option(verify, "--activations", metavar="NAME", help="only these activations (intersected with SUPPORTS)")
    add_list_option(verify, "--losses", metavar="NAME", help="only these losses (intersected with SUPPORTS)")
    verify.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help=f"seconds per call before the subject's worker process is killed (default {DEFAULT_TIMEOUT:g})",
    )
    verify.add_argument(
        "--convention",
        metavar="NAME",
        help=f"your loss convention, one for every loss or per loss (mse=mean_elements,bce=mean_elements): "
        f"{', '.join(conventions.CONVENTIONS)}",
    )
    verify.add_argument(
        "--oracle", default="torch_autograd", metavar="NAME", help="oracle to compare with (default torch_autograd)"
    )
    add_stress_options(verify)
    verify.set_defaults(func=run_verify)


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
        worst = ""
        if self.failed and self.worst_rel_err > 0:
            worst = f", worst rel err {self.worst_rel_err:.3g} in {self.worst_case}"
        elif self.failed and self.worst_case:
            worst = f", first in {self.worst_case}"
        return f"  {name:<6} {verdict}  {self.passed}/{total} cases right{worst}"

    def to_dict(self, name: str) -> dict[str, Any]:
        return {
            "parameter": name,
            "verdict": "fail" if self.failed else "pass",
            "passed": self.passed,
            "failed": self.failed,
            "worst_rel_err": self.worst_rel_err if self.failed else None,
            "worst_case": self.worst_case or None,
        }


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
    return family.restricted(listed(args.activations), listed(args.losses))


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
            verdict = result.verdicts.setdefault("loss", FamilyVerdict())
            verdict.failed += 1
            verdict.worst_case = verdict.worst_case or record.case_id
            return
    if record.check == "protocol":
        # A protocol fault is the call's, not a parameter's: no gradient was compared (an input mutated
        # in place names the input, a NaN names the first block it met); it has its own line.
        result.protocol.setdefault(record.category or "exception", []).append(record.case_id)
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


def run_verify(args: argparse.Namespace) -> int:
    if args.examples < 1:
        raise UsageError("--examples must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}")
    if args.out is not None:
        check_directory(args.out, "verify")  # refuse before any work; create it once the inputs are good
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
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    writer = None
    if args.out is not None:
        claim_directory(args.out, "verify")
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
    status = next(line for line in lines if line.startswith(("PASS:", "FAIL:")))
    print("\n".join([lines[0], status] if quiet(args) else lines))
    if args.out is not None:
        summary = _summary(args, family, cases, result, diagnoses, lines, declared)
        summary.update(
            instabilities=[i.as_dict() for i in instabilities],
            unstable_cases=[c.id for c in result.unstable_cases],
            precision_cases=[c.id for c, _ in result.precision],
            stress=stress_share(args.stress),
            strict=bool(args.strict),
            started=started.isoformat(timespec="seconds"),
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            elapsed_seconds=round(time.perf_counter() - clock, 3),
        )
        (args.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
        from reports.verify_view import write_verify_report

        page = write_verify_report(args.out)
        campaign_page = refresh_campaign_report(args.out)  # a campaign beside: its page gains a Verify section
        if not quiet(args):
            print(f"report: {page}\nrecords: {args.out / RESULTS_FILE}")
            if campaign_page is not None:
                print(f"report: {campaign_page} (the campaign's, with this verify run)")
    return EXIT_FOUND if result.failing_cases else EXIT_OK


def _summary(
    args: argparse.Namespace,
    family: Family,
    cases: Sequence[Case],
    result: VerifyResult,
    diagnoses: list[Diagnosis],
    lines: list[str],
    declared: Mapping[str, str],
) -> dict[str, Any]:
    """verify.json: everything the page shows above the records, and what replaying a row needs."""
    return {
        "command": "verify",
        "subject": args.subject,
        "seed": args.seed,
        "examples": args.examples,
        "cases": len(cases),
        "oracle": args.oracle,
        "convention": conventions.format_declaration(dict(declared)) if declared else None,
        "timeout": args.timeout,
        "activations": listed(args.activations),
        "losses": listed(args.losses),
        "family": {
            "hidden": list(family.hidden),
            "outputs": list(family.outputs),
            "losses": list(family.usable_losses),
            "max_depth": family.deepest,
        },
        "failing_cases": [c.id for c in result.failing_cases],
        "diagnoses": [d.__dict__ | {"losses": list(d.losses)} for d in diagnoses],
        "diagnosis_line": lines[0],
        "status_line": next(line for line in lines if line.startswith(("PASS:", "FAIL:"))),
        "verdicts": [result.verdicts[n].to_dict(n) for n in sorted(result.verdicts, key=_parameter_order)],
        "protocol": result.protocol,
        "loss_failures": [{"case": r.case_id, "message": r.message} for r in result.loss_failures],
        "out": str(args.out),
    }


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
    if result.verdicts:
        lines.append("verdict per parameter:")
        for name in sorted(result.verdicts, key=_parameter_order):
            lines.append(result.verdicts[name].line(name))
    else:
        lines.append("verdict per parameter: none (no call returned gradients to compare)")
    wrong = len(result.failing_cases)
    status = "FAIL" if wrong else "PASS"
    lines.append(f"{status}: {wrong} of {len(cases)} cases wrong; subject {args.subject}, seed {args.seed}")
    if wrong:
        lines.append(f"first failing case: {result.failing_cases[0]!r}")
    return lines
