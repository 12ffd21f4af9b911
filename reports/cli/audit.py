"""``backprop-check audit``: every formula and listing of the article, verified or refuted by the oracles."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from reports.cli.common import EXIT_OK, UsageError, quiet, say
from reports.cli.outdir import OWN_FILES, check_directory, claim_directory, refresh_campaign_report

DEFAULT_OUT = "audit"
AUDIT_JSON, AUDIT_HTML = OWN_FILES["audit"]


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser(
        "audit",
        help="audit the article: each formula and listing as an executable claim, with verdicts",
        description=(
            "Evaluate every claim of the article against the oracles; print one line per claim and write "
            "DIR/audit.json and DIR/audit.html (into a campaign directory, its report.html gains the audit). "
            "Exit 0 whatever the verdicts."
        ),
    )
    audit.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"output directory (default {DEFAULT_OUT}); refused if it already holds an audit",
    )
    audit.add_argument(
        "--examples", type=int, default=None, metavar="N", help="Hypothesis instances per setting and reading"
    )
    audit.add_argument("--only", default=None, metavar="KEY", help="only claims whose key starts with KEY (e.g. §5.2)")
    audit.set_defaults(func=audit_command)


def audit_command(args: Any) -> int:
    from reports.audit.catalogue import UNCHECKED, all_claims
    from reports.audit.core import DEFAULT_EXAMPLES, run_audit
    from reports.audit.view import render_page

    examples = DEFAULT_EXAMPLES if args.examples is None else args.examples
    if examples < 1:
        raise UsageError(f"--examples must be at least 1, got {examples}", "usage")
    out = Path(args.out)
    check_directory(out, "audit")
    claims = all_claims()
    if args.only:
        wanted = args.only.lstrip("§")
        claims = [c for c in claims if c.key.lstrip("§").startswith(wanted)]
        if not claims:
            raise UsageError(f"no claim key starts with {args.only!r}", "usage")

    def show(result: Any) -> None:
        if not quiet(args):
            print(result.line(), flush=True)

    data = run_audit(claims, examples, on_result=show)
    data["unchecked"] = [{"key": key, "reason": reason} for key, reason in UNCHECKED]
    claim_directory(out, "audit")
    try:
        (out / AUDIT_JSON).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        (out / AUDIT_HTML).write_text(render_page(data), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the audit to {out}: {exc}", "io") from None
    report = refresh_campaign_report(out)
    if report is not None:
        say(args, f"report: {report} (with the audit section)")
    counts = ", ".join(f"{n} {verdict}" for verdict, n in data["counts"].items())
    print(
        f"audit: {len(data['claims'])} claims ({counts}) in {data['elapsed']:.1f}s -> {out / AUDIT_JSON}",
        file=sys.stderr,
    )
    return EXIT_OK
