"""The one rule for every command that writes a directory: write only its own files, never over any.

Each command owns a few file names (``OWN_FILES``).  It may share a directory with other commands' files
(``verify`` beside a campaign, ``audit`` into it), but when one of *its* files is already there — results
that an earlier run left — it refuses before writing anything, naming the file.  ``run --resume``
continues its own campaign and is the one sanctioned way to add to an existing file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from reports.cli.common import UsageError

OWN_FILES: dict[str, tuple[str, ...]] = {
    "run": ("results.jsonl", "campaign.json", "report.html"),
    "verify": ("verify.jsonl", "verify.json", "verify.html"),
    "audit": ("audit.json", "audit.html"),
    "mutants": ("mutants.json", "mutants.html"),
    "mutants --generated": ("generated.json", "generated.html"),
}


def check_directory(directory: Path, command: str, names: Iterable[str] | None = None, flag: str = "--out") -> None:
    """Refuse (one categorised line, nothing written) if ``directory`` is a file or holds a file we would write."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{flag} {directory} exists and is not a directory", "io")
    wanted = tuple(names) if names is not None else OWN_FILES[command]
    taken = [name for name in wanted if (directory / name).exists()]
    if taken:
        shown = ", ".join(taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        resume = ""
        if command == "run":
            resume = f"; to continue that campaign: backprop-check run {flag} {directory} --resume"
        raise UsageError(
            f"{directory} already holds {shown}; {command} never writes over results: "
            f"choose another {flag} or move them away{resume}",
            "usage",
        )


def claim_directory(directory: Path, command: str, names: Iterable[str] | None = None, flag: str = "--out") -> Path:
    """:func:`check_directory`, then create the directory; returns it."""
    check_directory(directory, command, names, flag)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {flag} {directory}: {exc.strerror or exc}", "io") from None
    return directory


def foreign_record(results: Path, subject: str, seed: int) -> str | None:
    """The first line of ``results`` that is not this campaign's (another subject or seed), described; else None.

    ``run --resume`` appends to the file: records that another command or campaign left there would be
    reported as this campaign's.  Lines are screened as text and parsed only when the screen is unsure.
    """
    if not results.is_file():
        return None
    subject_key = '"subject": ' + json.dumps(subject)
    case_prefix = '"case_id": ' + json.dumps(f"{seed}-")[:-1]
    with results.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip() or (subject_key in line and case_prefix in line):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn or corrupt line is the resume's own business, not a foreign record
            if not isinstance(record, dict) or not isinstance(record.get("subject"), str):
                continue  # not a record at all: resume quarantines such a line, it is not another campaign's
            if not isinstance(record.get("case_id"), str):
                continue
            case_id, owner = record["case_id"], record["subject"]
            head, _, index = case_id.partition("-")
            if owner != subject:
                return f"line {number} is a record of subject {owner!r} (campaign: {subject!r})"
            if head != str(seed) or not index.isdigit():
                return f"line {number} is a record of case {case_id!r}, not of campaign seed {seed}"
    return None


def refresh_campaign_report(directory: Path) -> Path | None:
    """Re-render ``report.html`` when ``directory`` holds a campaign, so it gains the section just written.

    report.html is a view of results.jsonl plus the other commands' files beside it: rewriting it loses
    nothing.  Returns its path, or None when there is no campaign there.
    """
    from reports.campaign import RESULTS_FILE
    from reports.html import write_report

    if not (directory / RESULTS_FILE).is_file():
        return None
    return write_report(directory)
