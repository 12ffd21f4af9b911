"""``backprop-check run``, ``replay`` and ``report``: campaigns, one case alone, and re-rendering a report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from reference_impl.stress import STRESS_SHARE
from reports.cli.common import (
    EXIT_FOUND,
    EXIT_OK,
    UsageError,
    add_list_option,
    add_stress_options,
    joined,
    positive_seconds,
    quiet,
    say,
    stress_share,
)
from reports.cli.outdir import check_directory, foreign_record

DEFAULT_EXAMPLES = 500
DEFAULT_SEED = 1
DEFAULT_OUT = "results"


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="check many random architectures against every oracle; write JSONL + HTML",
        description="Run a campaign: cases (seed, 0..N-1), each checked against every oracle that supports it.",
    )
    run.add_argument(
        "--subject",
        default=None,
        metavar="MODULE:ATTR",
        help="gradients function (default: reference); imported from the current directory first, like python -m",
    )
    run.add_argument("--examples", type=int, default=None, metavar="N", help=f"cases (default {DEFAULT_EXAMPLES})")
    run.add_argument("--seed", type=int, default=None, metavar="S", help=f"campaign seed (default {DEFAULT_SEED})")
    add_list_option(run, "--oracles", metavar="NAME", help="oracle names (default: all registered)")
    run.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"output directory (default {DEFAULT_OUT}); refused if it already holds a campaign (see --resume)",
    )
    run.add_argument("--workers", type=int, default=None, metavar="K", help="local worker processes (default: cores)")
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler, e.g. tcp://host:8786 (default: $DASK_SCHEDULER_ADDRESS, else run locally)",
    )
    add_list_option(
        run,
        "--subsample",
        metavar="NAME=K",
        help="run these oracles only on every K-th case (e.g. sympy_exact=10); the others run on every case",
    )
    run.add_argument("--resume", action="store_true", help="continue the campaign in DIR without redoing cases")
    run.add_argument(
        "--timeout",
        type=positive_seconds,
        default=None,
        metavar="S",
        help="seconds per call of a MODULE:ATTR subject before its worker is killed (default 30)",
    )
    run.add_argument("--junit", default=None, metavar="PATH", help="also write JUnit XML here")
    add_stress_options(run)
    run.add_argument("--batch-size", type=int, default=None, metavar="B", help=argparse.SUPPRESS)
    run.set_defaults(func=run_command)

    replay = subparsers.add_parser(
        "replay",
        help="re-run one case and print the full comparison and a pasteable snippet",
        description=(
            "Re-run one case by id: a campaign id (SEED-INDEX, e.g. 1-000042) on its own, or any id recorded in "
            "--out DIR (e.g. verify-0-0014 from a verify report)."
        ),
    )
    replay.add_argument("case_id", metavar="CASE_ID", help="SEED-INDEX, or an id recorded in --out DIR")
    replay.add_argument(
        "--subject",
        default=None,
        metavar="MODULE:ATTR",
        help="default: the subject of --out DIR, else reference; imported from the current directory first",
    )
    add_list_option(replay, "--oracles", metavar="NAME", help="oracle names (default: all registered)")
    replay.add_argument(
        "--out", default=None, metavar="DIR", help="a run or verify directory: its records name the case and subject"
    )
    replay.add_argument(
        "--convention", default=None, metavar="NAME", help="the loss convention the subject declared to verify"
    )
    replay.add_argument(
        "--stress",
        type=float,
        default=None,
        metavar="SHARE",
        help=f"the campaign's stress share (default: the campaign's, else {STRESS_SHARE})",
    )
    replay.add_argument(
        "--timeout", type=positive_seconds, default=None, metavar="S", help="seconds per call of the subject"
    )
    replay.set_defaults(func=replay_command)

    report = subparsers.add_parser(
        "report",
        help="re-render DIR/report.html from DIR/results.jsonl (and DIR/verify.html from DIR/verify.jsonl)",
        description=(
            "Re-render the HTML reports of a directory: report.html of a campaign, verify.html of a verify run "
            "(a truncated last JSONL line is ignored; a corrupt line is named, skipped and flagged in the page, "
            "and the exit code is 1; a file with no record at all is an input error)."
        ),
    )
    report.add_argument("directory", metavar="DIR", help="a directory written by run and/or verify")
    report.add_argument("--junit", default=None, metavar="PATH", help="also write JUnit XML here")
    report.set_defaults(func=report_command)


def _oracle_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--oracles needs at least one oracle name", "usage")
    from oracles.registry import oracle_names

    known = oracle_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown oracle(s) {unknown}; registered: {sorted(known)}", "usage")
    return names


def _subsample(text: str | None) -> dict[str, int] | None:
    if text is None:
        return None
    periods: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, sep, period = item.partition("=")
        if not sep or not period.strip().isdigit() or int(period) < 1:
            raise UsageError(f"--subsample takes NAME=K with K >= 1, got {item!r}", "usage")
        periods[name.strip()] = int(period)
    _oracle_list(",".join(periods))  # the names must be registered oracles
    return periods


def _positive(value: int | None, flag: str, *, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise UsageError(f"{flag} must be {'non-negative' if allow_zero else 'positive'}, got {value}", "usage")


def run_command(args: argparse.Namespace) -> int:
    from reports.worker_pool import start_workers_early

    scheduler = args.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    if not scheduler and (args.workers is None or args.workers > 1):
        start_workers_early()  # the workers' imports overlap this process's own start-up
    from reports import campaign
    from reports.dirlock import DirectoryBusy, exclusive

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory", "io")
    args.oracles, args.subsample = joined(args.oracles), joined(args.subsample)
    _positive(args.examples, "--examples")  # an empty run is an error, not a pass
    _positive(args.workers, "--workers")
    _positive(args.batch_size, "--batch-size")
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}", "usage")
    oracles = _oracle_list(args.oracles)
    if args.resume:
        stored = campaign.read_campaign(out)
        if stored is None:
            raise UsageError(f"nothing to resume in {out} (no {campaign.CAMPAIGN_FILE})", "usage")
        config = campaign.CampaignConfig.from_dict(stored["config"])
        _check_resume_flags(args, config, oracles)
        foreign = foreign_record(out / campaign.RESULTS_FILE, config.subject, config.seed)
        if foreign is not None:
            raise UsageError(f"cannot resume {out / campaign.RESULTS_FILE}: {foreign}; use another --out", "input")
    else:
        check_directory(out, "run")
        subject = args.subject or campaign.REFERENCE
        config = campaign.CampaignConfig.create(
            seed=DEFAULT_SEED if args.seed is None else args.seed,
            examples=DEFAULT_EXAMPLES if args.examples is None else args.examples,
            subject=subject,
            oracles=oracles,
            subsample=_subsample(args.subsample),
            stress=stress_share(args.stress),
            strict=bool(args.strict),
        )
    # Load the subject here, so a bad MODULE:ATTR is one line before any worker starts.
    campaign.resolve_subject(config.subject, args.timeout)
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    try:
        # One writer at a time, from the first record to the last byte of the report.
        with exclusive(out, "run"):
            return _run_and_report(args, config, out, workers, scheduler)
    except DirectoryBusy as exc:
        raise UsageError(str(exc), "busy") from None


def _run_and_report(args: argparse.Namespace, config: Any, out: Path, workers: int, scheduler: str | None) -> int:
    from reports import campaign
    from reports.html import write_report
    from reports.resume import QUARANTINE_FILE

    try:
        result = campaign.run_campaign(
            config,
            out,
            workers=workers,
            scheduler=scheduler,
            resume=args.resume,
            batch_size=args.batch_size,
            show_progress=not quiet(args),
            timeout=args.timeout,
        )
    except campaign.CampaignError as exc:
        raise UsageError(str(exc), "usage") from None
    for line in result.quarantined:
        print(f"backprop-check: {line} moved to {out / QUARANTINE_FILE}; its case was run again", file=sys.stderr)
    report_path = write_report(out)
    if args.junit:
        from reports.junit import write_junit

        write_junit(out / campaign.RESULTS_FILE, Path(args.junit))
    precision = f", {result.precision_cases} right but imprecise (precision)" if result.precision_cases else ""
    print(
        f"{result.cases} cases, {result.failed_cases} with discrepancies{precision}, {result.records} records "
        f"({result.ran} run now in {result.wall_seconds:.1f} s)"
    )
    say(args, f"records: {out / campaign.RESULTS_FILE}\nreport:  {report_path}")
    return EXIT_FOUND if result.failed_cases else EXIT_OK


def _check_resume_flags(args: argparse.Namespace, config: Any, oracles: list[str] | None) -> None:
    """A flag given with --resume must agree with the stored campaign; silently ignoring it would mislead."""
    conflicts = []
    if args.seed is not None and args.seed != config.seed:
        conflicts.append(f"--seed {args.seed} (campaign: {config.seed})")
    if args.examples is not None and args.examples != config.examples:
        conflicts.append(f"--examples {args.examples} (campaign: {config.examples})")
    if args.subject is not None and args.subject != config.subject:
        conflicts.append(f"--subject {args.subject} (campaign: {config.subject})")
    if args.subsample is not None and _subsample(args.subsample) != config.subsample:
        conflicts.append(f"--subsample {args.subsample} (campaign: {config.subsample or 'none'})")
    if oracles is not None and tuple(oracles) != config.oracles:
        conflicts.append(f"--oracles {','.join(oracles)} (campaign: {config.oracles or 'all'})")
    if args.stress is not None and stress_share(args.stress) != config.stress:
        conflicts.append(f"--stress {args.stress} (campaign: {config.stress})")
    if args.strict and not config.strict:
        conflicts.append("--strict (campaign: not strict)")
    if conflicts:
        raise UsageError("--resume continues the stored campaign; conflicting flags: " + "; ".join(conflicts), "usage")


def replay_command(args: argparse.Namespace) -> int:
    from oracles.verdicts.compare import check_case
    from reports import campaign
    from reports.cli.replay_source import find_case, stored_subject

    directory = Path(args.out) if args.out is not None else None
    if directory is not None and not directory.is_dir():
        raise UsageError(f"--out {directory} is not a directory", "io")
    # A campaign case depends on its campaign's stress share: the flag, else the stored campaign's.
    share = None if args.stress is None else stress_share(args.stress)
    if share is None and directory is not None:
        stored = campaign.read_campaign(directory)
        if stored is not None:
            share = campaign.CampaignConfig.from_dict(stored["config"]).stress
    case = find_case(args.case_id, directory, STRESS_SHARE if share is None else share)
    oracles = _oracle_list(joined(args.oracles))
    subject_target = args.subject or (stored_subject(directory) if directory is not None else None)
    subject_target = subject_target or campaign.REFERENCE
    subject = campaign.resolve_subject(subject_target, args.timeout)
    if args.convention is not None:
        from oracles.diagnosis import conventions

        try:
            declared = conventions.parse_declaration(args.convention)
        except conventions.DeclarationError as exc:
            raise UsageError(str(exc), "usage") from None
        subject = conventions.declared_subject(subject, declared)
    records = check_case(case, subject, oracles)
    failed = any(r.failed for r in records)
    verdict = f"{'DISCREPANCIES FOUND' if failed else 'all oracles agree'} ({len(records)} records)"
    if quiet(args):
        print(verdict)
        return EXIT_FOUND if failed else EXIT_OK
    out = sys.stdout
    out.write(f"case {case.id}: {case.spec.to_dict()}, batch {case.batch}, {case.spec.n_parameters} parameters\n")
    out.write(f"subject: {subject_target}\ncase: {case!r}\n\n")
    for record in records:
        out.write(record.summary() + "\n")
        for name, block in record.blocks.items():
            index_text = ",".join(str(i) for i in block.get("index", []))
            out.write(
                f"    {block['verdict']:4s} {name}[{index_text}] subject={block['subject']!r} "
                f"oracle={block['oracle']!r} rel_err={block['rel_err']:.3g} ratio={block['ratio']:.3g}\n"
            )
        out.write("\n")
    out.write(replay_snippet(case, subject_target))
    out.write(f"\n{verdict}\n")
    return EXIT_FOUND if failed else EXIT_OK


def replay_snippet(case: Any, subject_target: str) -> str:
    """Pasteable Python: a Hypothesis ``@example`` and a plain reproduction."""
    from reports.campaign import REFERENCE

    load = "reference_subject()" if subject_target == REFERENCE else f"load_subject({subject_target!r})"
    return (
        "# Pin this case in a Hypothesis test:\n"
        f"@example(case={case!r})\n\n"
        "# Or reproduce it directly:\n"
        "from oracles.verdicts.compare import check_case\n"
        "from oracles.subjects import load_subject, reference_subject\n"
        "from reference_impl import Case, Spec\n\n"
        f"case = {case!r}\n"
        f"for record in check_case(case, {load}):\n"
        "    print(record.summary())\n"
    )


def report_command(args: argparse.Namespace) -> int:
    from reports.campaign import RESULTS_FILE
    from reports.cli.verify import RESULTS_FILE as VERIFY_RESULTS
    from reports.dirlock import DirectoryBusy, exclusive
    from reports.html import write_report
    from reports.records import read_records
    from reports.verify_view import write_verify_report

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory", "io")
    present = [name for name in (RESULTS_FILE, VERIFY_RESULTS) if (directory / name).exists()]
    if not present:
        raise UsageError(f"{directory} holds neither {RESULTS_FILE} (run) nor {VERIFY_RESULTS} (verify)", "io")
    for name in present:
        # Garbage, or JSON that is not records, is not "all 0 cases agree": with no record at all, say so.
        skipped: list[Any] = []
        if next(iter(read_records(directory / name, skipped)), None) is None:
            why = f": {len(skipped)} corrupt line(s), the first {skipped[0].describe(name)}" if skipped else ""
            raise UsageError(f"{directory / name} holds no records{why}", "input")
    corrupt: list[str] = []
    written: list[Path] = []
    try:
        with exclusive(directory, "report"):
            if RESULTS_FILE in present:
                written.append(write_report(directory, corrupt=corrupt))
                if args.junit:
                    from reports.junit import write_junit

                    write_junit(directory / RESULTS_FILE, Path(args.junit))
            if VERIFY_RESULTS in present:
                written.append(write_verify_report(directory, corrupt=corrupt))
    except DirectoryBusy as exc:
        raise UsageError(str(exc), "busy") from None
    for line in corrupt:
        print(f"backprop-check: {line}: skipped; the report flags it", file=sys.stderr)
    for path in written:
        say(args, f"report: {path}")
    return EXIT_FOUND if corrupt else EXIT_OK
