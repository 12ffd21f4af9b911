"""``backprop-check fixtures export|check``: golden cases for implementations that cannot be imported.

``check`` prints one line per failing block or case, each with its category, and completes whatever one
case holds.  Exit 0: every case right; 1: some answer is wrong or unreadable; 2: bad input (the index, or a
fixture that is missing, changed or points outside its directory), after every other case got its verdict.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from oracles.diagnosis.family import Family
from reports.cli.common import EXIT_FOUND, EXIT_OK, EXIT_USAGE, UsageError, add_list_option, listed, say
from reports.cli.outdir import claim_directory
from reports.fixtures import DEFAULT_RTOL, FixtureError, check_results, export_files, export_fixtures


def register(subparsers: argparse._SubParsersAction) -> None:
    fixtures = subparsers.add_parser(
        "fixtures",
        help="golden fixtures for implementations in other languages",
        description="Export golden .npz cases, and check the answers another program wrote for them.",
    )
    actions = fixtures.add_subparsers(dest="fixtures_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write versioned .npz cases and index.json",
        description="Write COUNT cases (inputs, parameters, expected gradients and loss) and index.json to DIR.",
    )
    export.add_argument("directory", type=Path, metavar="DIR", help="where to write (refused if it holds fixtures)")
    export.add_argument("--count", type=int, default=20, metavar="N", help="number of cases (default 20)")
    export.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the drawn cases (default 0)")
    add_list_option(export, "--activations", metavar="NAME", help="only these activations (default: all)")
    add_list_option(export, "--losses", metavar="NAME", help="only these losses (default: all)")
    export.add_argument("--max-depth", type=int, default=None, metavar="K", help="at most K layers")
    export.set_defaults(func=run_fixtures_export)
    check = actions.add_parser(
        "check",
        help="compare RESULTS/<case>.npz written by another program",
        description="Compare every RESULTS/<file> with its fixture in DIR; one categorised line per failure.",
    )
    check.add_argument("directory", type=Path, metavar="DIR", help="the exported fixtures (with index.json)")
    check.add_argument("results", type=Path, metavar="RESULTS", help="the other program's answers, one .npz per case")
    check.add_argument(
        "--rtol", type=float, default=DEFAULT_RTOL, metavar="R", help=f"relative tolerance (default {DEFAULT_RTOL:g})"
    )
    check.set_defaults(func=run_fixtures_check)


def run_fixtures_export(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise UsageError("--count must be at least 1")
    if args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}")
    family = Family().restricted(listed(args.activations), listed(args.losses))
    if args.max_depth is not None:
        if args.max_depth < 1:
            raise UsageError("--max-depth must be at least 1")
        family = Family(family.hidden, family.outputs, family.losses, 1, args.max_depth)
    claim_directory(args.directory, "fixtures export", export_files(args.seed, args.count), flag="DIR")
    try:
        index = export_fixtures(args.directory, args.count, seed=args.seed, family=family)
    except FixtureError as exc:
        raise UsageError(str(exc), "internal") from None
    version = index["schema_version"]
    print(f"wrote {len(index['cases'])} cases and index.json (schema version {version}) to {args.directory}")
    return EXIT_OK


def run_fixtures_check(args: argparse.Namespace) -> int:
    if not math.isfinite(args.rtol) or args.rtol <= 0:
        raise UsageError(f"--rtol must be a positive number, got {args.rtol:g}")
    try:
        findings = check_results(args.directory, args.results, rtol=args.rtol)
    except FixtureError as exc:
        raise UsageError(str(exc), "input") from None
    if not findings:
        raise UsageError(f"{args.directory / 'index.json'} lists no cases: nothing to check", "input")
    failed = [f for f in findings if not f.passed]
    for finding in failed:
        say(args, finding.line())
    cases = {f.case_id for f in findings}
    bad_cases = {f.case_id for f in failed}
    unusable = sorted({f.case_id for f in failed if f.fixture_problem})
    status = "FAIL" if failed else "PASS"
    print(f"{status}: {len(cases) - len(bad_cases)} of {len(cases)} cases right, {len(failed)} wrong block(s)")
    if unusable:
        first = next(f for f in failed if f.fixture_problem)
        more = f" (and {len(unusable) - 1} more)" if len(unusable) > 1 else ""
        print(
            f"backprop-check: error[input]: {len(unusable)} fixture case(s) could not be checked: "
            f"{first.case_id} [{first.category}] {first.message}{more}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return EXIT_FOUND if failed else EXIT_OK
