"""``results.jsonl`` line by line: lean lines for plain passes, streamed reading, one policy for corrupt lines.

Two kinds of line.  A *full* line is one :class:`Record` (``Record.to_json``).  A *lean* line holds the
plain passes of one case — passing comparisons whose worst entry used less than ``NEAR_MISS`` of its
tolerance — one short row each, with the case's text, spec and subject written once::

    {"lean": [[oracle, check, parameter, index, rel_err, abs_err, tolerance, elapsed], ...],
     "case_id": ..., "case_tail": ..., "spec": {...}, "subject": ..., "campaign": {...}, "schema": 2}

``case_tail`` is the case's text after its spec (``batch=4, seed=…, label='1-000042'``): the spec part
is rebuilt from ``spec``.  A case whose text does not have that shape is written whole, as ``case``.

Failures, kinks, skips and near-misses keep full lines (every block, heatmaps, every oracle's value).
Read back, a lean row is a Record without blocks or entry values (``extra["lean"]`` is true).  Errors
in lean rows keep ``LEAN_DIGITS`` significant digits: enough for histograms and for ranking by ratio.

Reading streams the file.  A torn *last* line (a kill mid-write) is dropped silently; any other line
that is not a valid record — bad UTF-8, bad JSON, a field of the wrong type — is *corrupt*: strict readers
raise :class:`CorruptLineError` naming it, lenient ones collect it as a :class:`CorruptLine` and go on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oracles.verdicts.blocks import layer_of
from oracles.verdicts.records import VERDICTS, Record

NEAR_MISS = 0.1  # a pass using at least this share of its tolerance keeps its full record
LEAN_DIGITS = 5
LEAN_SCHEMA = 2
LEAN_PREFIX = b'{"lean": '
_LEAN_EXTRA = ("campaign", "subject_output")  # kept once per lean line; other extras of a plain pass are dropped


@dataclass(frozen=True)
class CorruptLine:
    """A line of the results file that is not a record, with what is wrong and its raw bytes."""

    number: int
    reason: str
    raw: bytes

    def describe(self, path: str | Path) -> str:
        return f"{path}:{self.number}: corrupt line ({self.reason})"


class CorruptLineError(ValueError):
    """A strict reader met a corrupt line; the message names the file and line."""

    def __init__(self, path: str | Path, corrupt: CorruptLine) -> None:
        super().__init__(corrupt.describe(path))
        self.corrupt = corrupt


# --- writing ------------------------------------------------------------------------------------------


def is_plain_pass(record: Record) -> bool:
    """A pass far inside its tolerance, with nothing a reader would look at beyond its numbers."""
    if record.verdict != "pass" or record.abs_err is None or record.rel_err is None or record.tolerance is None:
        return False
    return record.tolerance > 0 and record.abs_err < NEAR_MISS * record.tolerance


def _short(value: float) -> float | str:
    if not math.isfinite(value):
        return repr(value)
    return float(f"{value:.{LEAN_DIGITS}g}")


def _spec_text(spec: dict[str, Any]) -> str:
    """The repr of the Spec a spec dict describes (what a Case's repr starts with)."""
    return f"Spec(widths={tuple(spec['widths'])!r}, activations={tuple(spec['activations'])!r}, loss={spec['loss']!r})"


def _case_fields(case: str, spec: dict[str, Any]) -> dict[str, str]:
    """``{"case_tail": ...}`` when ``case`` is ``Case(spec=<spec>, <tail>)``, else ``{"case": case}``."""
    head = f"Case(spec={_spec_text(spec)}, "
    if case.startswith(head) and case.endswith(")"):
        return {"case_tail": case[len(head) : -1]}
    return {"case": case}


def _case_text(data: dict[str, Any]) -> str:
    if "case_tail" in data:
        return f"Case(spec={_spec_text(data['spec'])}, {data['case_tail']})"
    return str(data["case"])


def case_lines(records: Sequence[Record]) -> list[str]:
    """The JSONL lines for one case's records: full lines for what matters, one lean line per subject for the rest."""
    full: list[str] = []
    lean: dict[str, list[Record]] = {}
    for record in records:
        if is_plain_pass(record):
            lean.setdefault(record.subject, []).append(record)
        else:
            full.append(record.to_json())
    for subject, passes in lean.items():
        first = passes[0]
        line: dict[str, Any] = {
            "lean": [
                [
                    r.oracle,
                    r.check,
                    r.parameter,
                    r.index,
                    _short(r.rel_err or 0.0),
                    _short(r.abs_err or 0.0),
                    _short(r.tolerance or 0.0),
                    round(r.elapsed, 6),
                ]
                for r in passes
            ],
            "case_id": first.case_id,
            **_case_fields(first.case, first.spec),
            "spec": first.spec,
            "subject": subject,
            "schema": LEAN_SCHEMA,
        }
        for key in _LEAN_EXTRA:
            if key in first.extra:
                line[key] = first.extra[key]
        full.append(json.dumps(line, ensure_ascii=False))
    return full


# --- reading ------------------------------------------------------------------------------------------


def stream_lines(path: str | Path, torn: list[int] | None = None) -> Iterator[tuple[int, bytes]]:
    """``(line number, raw line without its newline)`` for every non-blank line, streamed.

    The last non-blank line is dropped when it is not valid JSON: a kill in the middle of writing it
    (its number is appended to ``torn`` when given).
    """
    pending: tuple[int, bytes] | None = None
    with Path(path).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if pending is not None:
                yield pending
            pending = (number, raw.rstrip(b"\r\n"))
    if pending is not None:
        try:
            json.loads(pending[1])
        except (ValueError, UnicodeDecodeError):
            if torn is not None:
                torn.append(pending[0])
            return
        yield pending


def _number_problem(value: Any) -> bool:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return False
    if isinstance(value, str):
        try:
            float(value)
            return False
        except ValueError:
            return True
    return True


def _spec_problem(spec: Any) -> str | None:
    if not isinstance(spec, dict):
        return "spec is not an object"
    widths, activations = spec.get("widths"), spec.get("activations")
    # set(map(type, ...)): the per-item check runs in C, which matters at 10^5 lines.
    if type(widths) is not list or not set(map(type, widths)) <= {int}:
        return "spec.widths is not a list of integers"
    if type(activations) is not list or not set(map(type, activations)) <= {str}:
        return "spec.activations is not a list of names"
    if not isinstance(spec.get("loss"), str):
        return "spec.loss is not a name"
    return None


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in value)


def record_problem(data: Any) -> str | None:
    """What makes ``data`` (one parsed full line) not a record, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    for key in ("case_id", "case", "subject", "oracle", "check", "verdict"):
        if not isinstance(data.get(key), str):
            return f"{key!r} is missing or not text"
    if data["verdict"] not in VERDICTS:
        return f"unknown verdict {data['verdict']!r}"
    for key in ("category", "parameter"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key!r} is not text"
    if not isinstance(data.get("message", ""), str):
        return "'message' is not text"
    for key in ("subject_value", "oracle_value", "abs_err", "rel_err", "tolerance"):
        if _number_problem(data.get(key)):
            return f"{key!r} is not a number"
    elapsed = data.get("elapsed", 0.0)
    if not isinstance(elapsed, (int, float)) or isinstance(elapsed, bool):
        return "'elapsed' is not a number"
    if data.get("index") is not None and not _int_list(data["index"]):
        return "'index' is not a list of integers"
    layer = data.get("layer")
    if layer is not None and (not isinstance(layer, int) or isinstance(layer, bool)):
        return "'layer' is not an integer"
    spec_problem = _spec_problem(data.get("spec"))
    if spec_problem:
        return spec_problem
    blocks = data.get("blocks", {})
    if not isinstance(blocks, dict) or not all(isinstance(b, dict) for b in blocks.values()):
        return "'blocks' is not an object of objects"
    extra = data.get("extra", {})
    if not isinstance(extra, dict):
        return "'extra' is not an object"
    first_wrong = extra.get("first_wrong_layer")
    if first_wrong is not None and (not isinstance(first_wrong, int) or isinstance(first_wrong, bool)):
        return "'extra.first_wrong_layer' is not an integer"
    if "campaign" in extra and not isinstance(extra["campaign"], dict):
        return "'extra.campaign' is not an object"
    return None


# [oracle, check, parameter, index, rel_err, abs_err, tolerance, elapsed], numbers as floats once checked.
LeanRow = list[Any]
_RIGHT_ROW_TYPES = {
    (str, str, parameter, index, float, float, float, float)
    for parameter in (str, type(None))
    for index in (list, type(None))
}
_ROW_SHAPE = "lean line: a row is not [oracle, check, parameter, index, rel, abs, tol, elapsed]"


def _checked_row(row: Any) -> LeanRow:
    """The slow path of :func:`lean_rows`: a row that is not already all the right types."""
    if type(row) is not list or len(row) != 8:
        raise ValueError(_ROW_SHAPE)
    oracle, check, parameter, index, *numbers = row
    if type(oracle) is not str or type(check) is not str or not (parameter is None or type(parameter) is str):
        raise ValueError("lean line: oracle, check or parameter is not text")
    if not (index is None or type(index) is list):
        raise ValueError("lean line: an index is not a list")
    if type(numbers[3]) is str or any(type(n) in (list, dict, bool) or n is None for n in numbers):
        raise ValueError("lean line: an error, tolerance or time is not a number")
    try:
        return [oracle, check, parameter, index, *(float(n) for n in numbers)]  # "inf" arrives as text
    except (TypeError, ValueError):
        raise ValueError("lean line: an error, tolerance or time is not a number") from None


def lean_rows(data: dict[str, Any]) -> list[LeanRow]:
    """A lean line's rows, checked, numbers as floats: [oracle, check, parameter, index, rel, abs, tol, elapsed].

    Raises ValueError naming what is wrong.  Cheap on purpose: a 10^5-case report reads 7·10^5 rows, so
    a row already of the right types is taken as it is.
    """
    for key in ("case_id", "case_tail" if "case_tail" in data else "case", "subject"):
        if type(data.get(key)) is not str:
            raise ValueError(f"lean line: {key!r} is missing or not text")
    spec_problem = _spec_problem(data.get("spec"))
    if spec_problem:
        raise ValueError(f"lean line: {spec_problem}")
    if "campaign" in data and not isinstance(data["campaign"], dict):
        raise ValueError("lean line: 'campaign' is not an object")
    rows = data["lean"]
    if type(rows) is not list:
        raise ValueError("lean line: 'lean' is not a list")
    for position, row in enumerate(rows):
        if type(row) is not list or tuple(map(type, row)) not in _RIGHT_ROW_TYPES:
            rows[position] = _checked_row(row)
    return rows


def lean_record(data: dict[str, Any], row: LeanRow) -> Record:
    """One lean row as a Record (no blocks, no values at the worst entry; ``extra["lean"]`` is true)."""
    oracle, check, parameter, index, rel, absolute, tolerance, elapsed = row
    extra = {key: data[key] for key in _LEAN_EXTRA if key in data}
    return Record(
        case_id=data["case_id"],
        case=_case_text(data),
        spec=data["spec"],
        subject=data["subject"],
        oracle=oracle,
        check=check,
        verdict="pass",
        parameter=parameter,
        index=index,
        abs_err=absolute,
        rel_err=rel,
        tolerance=tolerance,
        layer=layer_of(parameter) if parameter else None,
        elapsed=elapsed,
        extra={**extra, "lean": True},
    )


def _lean_records(data: dict[str, Any]) -> list[Record]:
    return [lean_record(data, row) for row in lean_rows(data)]


def parse_lean(number: int, raw: bytes) -> tuple[dict[str, Any], list[LeanRow]]:
    """A lean line as (the line's object, its checked rows); raises :class:`BadLine`."""
    try:
        data = json.loads(raw.decode("utf-8"))  # decoding first is faster than letting json sniff bytes
    except UnicodeDecodeError:
        raise BadLine(CorruptLine(number, "not UTF-8 text", raw)) from None
    except ValueError:
        raise BadLine(CorruptLine(number, "not JSON", raw)) from None
    try:
        if type(data) is not dict:
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        return data, lean_rows(data)
    except ValueError as exc:
        raise BadLine(CorruptLine(number, str(exc), raw)) from None


def is_lean(raw: bytes | str) -> bool:
    return raw[: len(LEAN_PREFIX)] == (LEAN_PREFIX if isinstance(raw, bytes) else LEAN_PREFIX.decode())


def parse_line(number: int, raw: bytes) -> list[Record]:
    """The records one line holds (one, or a lean line's several); raises :class:`BadLine`."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise BadLine(CorruptLine(number, "not UTF-8 text", raw)) from None
    except ValueError:
        raise BadLine(CorruptLine(number, "not JSON", raw)) from None
    return records_from_data(number, raw, data)


def records_from_data(number: int, raw: bytes, data: Any) -> list[Record]:
    """The records of one already-parsed line; raises :class:`BadLine`."""
    try:
        if isinstance(data, dict) and "lean" in data:
            return _lean_records(data)
        problem = record_problem(data)
        if problem:
            raise ValueError(problem)
        return [Record.from_dict(data)]
    except (ValueError, TypeError) as exc:
        raise BadLine(CorruptLine(number, str(exc), raw)) from None


class BadLine(ValueError):
    """Raised by :func:`parse_line` for a corrupt line; ``corrupt`` says which and why."""

    def __init__(self, corrupt: CorruptLine) -> None:
        super().__init__(corrupt.reason)
        self.corrupt = corrupt


def read_lines(
    path: str | Path, corrupt: list[CorruptLine] | None = None, torn: list[int] | None = None
) -> Iterator[tuple[int, list[Record]]]:
    """``(line number, records)`` per line.  Corrupt lines go to ``corrupt`` when given, else raise."""
    for number, raw in stream_lines(path, torn):
        try:
            yield number, parse_line(number, raw)
        except BadLine as exc:
            if corrupt is None:
                raise CorruptLineError(path, exc.corrupt) from None
            corrupt.append(exc.corrupt)


def read_records(path: str | Path, corrupt: list[CorruptLine] | None = None) -> Iterator[Record]:
    for _, records in read_lines(path, corrupt):
        yield from records
