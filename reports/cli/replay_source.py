"""Where ``replay`` finds its case and subject: a campaign id alone, or any id recorded in a directory.

A campaign case (``SEED-INDEX``) is a pure function of its id.  Any other case (``verify-0-0014``) is
read back from the records that name it in ``--out DIR``: each record carries the case's ``repr``, which
is parsed here as data (only ``Case(...)`` and ``Spec(...)`` with literal arguments), never evaluated.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from reference_impl.case import Case
from reference_impl.spec import Spec
from reports.cli.common import UsageError

RECORD_FILES = ("verify.jsonl", "results.jsonl")
SUMMARY_FILES = ("campaign.json", "verify.json")


def parse_case(text: str) -> Case:
    """``Case(spec=Spec(...), batch=..., ...)`` as written by ``repr(case)``; ValueError for anything else."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"not a Case(...) expression: {exc.msg}") from None
    return Case(**_call_arguments(tree, "Case"))


def _call_arguments(node: ast.expr, name: str) -> dict[str, Any]:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name):
        raise ValueError(f"expected {name}(...)")
    fields = ("widths", "activations", "loss") if name == "Spec" else ("spec",)
    arguments: dict[str, Any] = dict(zip(fields, node.args, strict=False))
    if len(node.args) > len(fields):
        raise ValueError(f"{name}(...) takes keyword arguments after {', '.join(fields)}")
    arguments.update({keyword.arg: keyword.value for keyword in node.keywords if keyword.arg})
    values: dict[str, Any] = {}
    for key, value in arguments.items():
        if name == "Case" and key == "spec":
            values[key] = Spec(**_call_arguments(value, "Spec"))
        else:
            values[key] = ast.literal_eval(value)
    return values


def find_case(case_id: str, directory: Path | None, stress_share: float) -> Case:
    """The case named ``case_id``: from its campaign id (under the campaign's ``stress_share``), else from
    the records in ``directory``."""
    from reference_impl.generate import case_from_index
    from reports.campaign import parse_case_id

    try:
        seed, index = parse_case_id(case_id)
    except ValueError as exc:
        if directory is None:
            message = f"{exc}; for another id (e.g. from verify) add --out DIR holding its records"
            raise UsageError(message, "input") from None
        return _recorded_case(case_id, directory)
    return case_from_index(seed, index, stress_share)


def _recorded_case(case_id: str, directory: Path) -> Case:
    needle = json.dumps(case_id)
    for name in RECORD_FILES:
        path = directory / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if needle not in line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and record.get("case_id") == case_id and record.get("case"):
                    try:
                        return parse_case(str(record["case"]))
                    except (ValueError, TypeError) as exc:
                        raise UsageError(f"{path}: the case of {case_id} cannot be read: {exc}", "input") from None
    raise UsageError(f"no record in {directory} ({', '.join(RECORD_FILES)}) names case {case_id!r}", "input")


def stored_subject(directory: Path) -> str | None:
    """The subject a directory's campaign or verify run checked (None when it holds neither)."""
    for name in SUMMARY_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        subject = data.get("config", data).get("subject") if isinstance(data, dict) else None
        if isinstance(subject, str):
            return subject
    return None
