"""``backprop-check mutants``: the kill matrix of the planted-bug catalogue, its figure and report;
``--generated``: the held-out measurement on machine-made mutants of independent implementations.

Exit 0 when every bug mutant is killed by at least one oracle or check and every kink mutant is
classified as a kink (and killed nowhere) — with ``--generated``, when the held-out split meets its
targets (kill rate ≥ 99 %, diagnosis precision ≥ 98 %) — 1 otherwise, 2 on usage errors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reports.cli.common import EXIT_FOUND, EXIT_OK, UsageError, add_list_option, joined, quiet, say
from reports.cli.outdir import OWN_FILES, check_directory, claim_directory, refresh_campaign_report

DEFAULT_EXAMPLES = 24
DEFAULT_GENERATED_EXAMPLES = 25  # what verify draws by default: the generated mutants meet verify
GENERATED_JSON, GENERATED_HTML = OWN_FILES["mutants --generated"]
DEFAULT_SEED = 0
DEFAULT_SHRINK_EXAMPLES = 150
JSON_FILE, HTML_FILE = OWN_FILES["mutants"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mutants",
        help="run every planted bug through every oracle and check; print and write the kill matrix",
        description=(
            "Measure the suite's own power: each mutant of the reference backward pass against every oracle "
            "and check, on the curated cases plus N campaign cases; Hypothesis shrinks each to the smallest "
            "architecture that exposes it."
        ),
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=None,
        metavar="N",
        help=f"campaign cases (default {DEFAULT_EXAMPLES}); with --generated, verify's cases per mutant "
        f"(default {DEFAULT_GENERATED_EXAMPLES})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S", help=f"seed (default {DEFAULT_SEED})")
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"write DIR/{JSON_FILE} and DIR/{HTML_FILE} (into a campaign directory, its report.html gains the "
        "matrix); refused if they are already there",
    )
    parser.add_argument(
        "--shrink-examples",
        type=int,
        default=DEFAULT_SHRINK_EXAMPLES,
        metavar="K",
        help=f"Hypothesis examples per mutant when shrinking (0: do not shrink; default {DEFAULT_SHRINK_EXAMPLES})",
    )
    add_list_option(parser, "--mutants", metavar="NAME", help="only these mutants (default: all)")
    add_list_option(parser, "--oracles", metavar="NAME", help="only these oracles (default: all)")
    parser.add_argument("--no-diagnosis", action="store_true", help="do not ask the diagnoser to name each mutant")
    generated = parser.add_argument_group("generated mutants (--generated)")
    generated.add_argument(
        "--generated", action="store_true", help="measure kill rate and diagnosis precision on generated mutants"
    )
    generated.add_argument("--per-base", type=int, default=None, metavar="N", help="at most N mutants per base")
    add_list_option(generated, "--bases", metavar="NAME", help="only these base implementations")
    generated.add_argument("--workers", type=int, default=1, metavar="K", help="processes (default 1)")
    generated.add_argument(
        "--equivalence-cases", type=int, default=60, metavar="N", help="random truth cases per mutant (default 60)"
    )
    parser.set_defaults(func=mutants_command)


def _names(text: str | None, known: dict[str, Any], flag: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"{flag} needs at least one name", "usage")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown {flag[2:]} {unknown}; known: {sorted(known)}", "usage")
    return names


def generated_command(args: Any) -> int:
    from property_tests.mutation.generated import Settings, run_generated
    from property_tests.mutation.generator import BASES
    from reports.generated_view import render_page, render_text, targets_met

    examples = DEFAULT_GENERATED_EXAMPLES if args.examples is None else args.examples
    for flag, value, least in (("--examples", examples, 1), ("--per-base", args.per_base, 1)):
        if value is not None and value < least:
            raise UsageError(f"{flag} must be ≥ {least}, got {value}", "usage")
    if args.workers < 1 or args.equivalence_cases < 1:
        raise UsageError("--workers and --equivalence-cases must be ≥ 1", "usage")
    bases = _names(joined(args.bases), {b: b for b in BASES}, "--bases") or list(BASES)
    out = Path(args.out) if args.out is not None else None
    if out is not None:
        check_directory(out, "mutants --generated")
    settings = Settings(
        examples=examples,
        equivalence_cases=args.equivalence_cases,
        seed=args.seed,
        per_base=args.per_base,
        bases=tuple(bases),
        workers=args.workers,
    )

    def progress(line: str) -> None:
        if not quiet(args):
            print(f"[generated] {line}", file=sys.stderr, flush=True)

    data = run_generated(settings, progress)
    if out is not None:
        claim_directory(out, "mutants --generated")
        (out / GENERATED_JSON).write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        (out / GENERATED_HTML).write_text(render_page(data), encoding="utf-8")
        say(args, f"wrote {out / GENERATED_JSON} and {out / GENERATED_HTML}")
        report = refresh_campaign_report(out)
        if report is not None:
            say(args, f"report: {report} (with the generated mutants)")
    text = render_text(data)
    print(text.rstrip().splitlines()[-1] if quiet(args) and text.strip() else text)
    return EXIT_OK if targets_met(data) else EXIT_FOUND


def mutants_command(args: Any) -> int:
    if args.generated:
        return generated_command(args)
    from oracles.registry import all_oracles
    from property_tests.mutation.catalogue import MUTANTS
    from property_tests.mutation.killmatrix import run_matrix
    from reports.mutation_view import figure_line, render_page, render_text

    if args.examples is None:
        args.examples = DEFAULT_EXAMPLES
    if args.examples < 0:
        raise UsageError(f"--examples must be non-negative, got {args.examples}", "usage")
    if args.shrink_examples < 0:
        raise UsageError(f"--shrink-examples must be non-negative, got {args.shrink_examples}", "usage")
    if args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}", "usage")
    registered = all_oracles()
    mutant_names = _names(joined(args.mutants), dict(MUTANTS), "--mutants")
    oracle_names = _names(joined(args.oracles), registered, "--oracles")
    out = Path(args.out) if args.out is not None else None
    if out is not None:
        check_directory(out, "mutants")

    def progress(line: str) -> None:
        if not quiet(args):
            print(f"[mutants] {line}", file=sys.stderr, flush=True)

    import torch

    # Tiny matrices: torch's intra-op threads only contend (several times slower on a busy 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = run_matrix(
            examples=args.examples,
            seed=args.seed,
            mutants=[MUTANTS[n] for n in mutant_names] if mutant_names else None,
            oracles={n: registered[n] for n in oracle_names} if oracle_names else None,
            shrink_examples=args.shrink_examples,
            diagnosis=not args.no_diagnosis,
            progress=progress,
        )
    finally:
        torch.set_num_threads(threads)
    data = run.to_dict()
    if out is not None:
        claim_directory(out, "mutants")
        (out / JSON_FILE).write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        (out / HTML_FILE).write_text(render_page(data), encoding="utf-8")
        say(args, f"wrote {out / JSON_FILE} and {out / HTML_FILE}")
        report = refresh_campaign_report(out)
        if report is not None:
            say(args, f"report: {report} (with the kill matrix)")
    print(figure_line(data) if quiet(args) else render_text(data))  # ends with the figure: killed / total
    return EXIT_OK if data["summary"]["ok"] else EXIT_FOUND
