"""The verify page, ``DIR/verify.html``: the diagnosis and a verdict per parameter first, then the records.

It is the campaign report's page (summary, histograms, the expandable table) with ``verify.json``'s
diagnosis as its lead section, its header filled from the verify run, and replay commands that name the
subject and the directory, so each runs as shown from where ``verify`` ran.  :func:`render_section` is
the short form a campaign's ``report.html`` shows when a verify run wrote beside it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from reports.html import TEMPLATES, _fmt, aggregate_file, render_report

RESULTS_FILE, SUMMARY_FILE, PAGE_FILE = "verify.jsonl", "verify.json", "verify.html"

_ENV = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True))


def rerun_command(summary: dict[str, Any]) -> str:
    """The ``verify`` command that draws the same cases again (without ``--out``: that one is taken)."""
    words = ["backprop-check", "verify", str(summary.get("subject", "?"))]
    examples = summary.get("examples", summary.get("cases", "?"))
    words += ["--examples", str(examples), "--seed", str(summary.get("seed", 0))]
    for flag in ("activations", "losses"):
        if summary.get(flag):
            words += [f"--{flag}", ",".join(summary[flag])]
    for flag in ("convention", "oracle", "timeout"):
        if summary.get(flag) is not None and not (flag == "oracle" and summary[flag] == "torch_autograd"):
            words += [f"--{flag}", str(summary[flag])]
    return shlex.join(words)


def replay_options(summary: dict[str, Any]) -> str:
    """What ``replay CASE_ID`` needs to find a verify case and judge it the way verify did."""
    words = ["--subject", str(summary.get("subject", "?")), "--out", str(summary.get("out") or ".")]
    if summary.get("oracle"):
        words += ["--oracles", str(summary["oracle"])]
    if summary.get("convention"):
        words += ["--convention", str(summary["convention"])]
    return " " + shlex.join(words)


def lead_html(summary: dict[str, Any], link: str | None = None) -> str:
    return _ENV.get_template("verify_lead.html.j2").render(s=summary, fmt=_fmt, rerun=rerun_command(summary), link=link)


def render_section(summary: dict[str, Any]) -> str:
    """The campaign report's "Verify" section: the same lead, pointing at verify.html for the records."""
    return lead_html(summary, link=PAGE_FILE)


def write_verify_report(directory: str | Path, *, corrupt: list[str] | None = None) -> Path:
    """Render ``DIR/verify.html`` from ``DIR/verify.jsonl`` and ``DIR/verify.json``.

    Corrupt lines are skipped and flagged in the page; their descriptions are appended to ``corrupt``.
    """
    directory = Path(directory)
    summary_path = directory / SUMMARY_FILE
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        loaded = json.loads(summary_path.read_text(encoding="utf-8"))
        summary = loaded if isinstance(loaded, dict) else {}
    header = {
        "kind": "verify",
        "config": {
            "subject": summary.get("subject", "?"),
            "seed": summary.get("seed", "?"),
            "examples": summary.get("cases", summary.get("examples", "?")),
            "oracles": [summary["oracle"]] if summary.get("oracle") else [],
        },
        "elapsed_seconds": summary.get("elapsed_seconds"),
        "started": summary.get("started"),
        "finished": summary.get("finished"),
        "replay_options": replay_options(summary),
    }
    data = aggregate_file(directory / RESULTS_FILE)
    if corrupt is not None:
        corrupt.extend(data.corrupt)
    html = render_report(
        data,
        header,
        directory,
        lead=lead_html(summary) if summary else None,
        records_file=RESULTS_FILE,
        sections=False,
    )
    target = directory / PAGE_FILE
    partial = target.with_suffix(".html.tmp")
    partial.write_text(html, encoding="utf-8")
    partial.replace(target)
    return target
