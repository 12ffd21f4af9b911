"""The results file: plain passes in one lean line per case, full lines for what a reader needs, corrupt lines named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oracles.subjects import Subject, reference_subject
from oracles.verdicts.compare import check_case
from property_tests.mutation.catalogue import MUTANTS
from reference_impl.generate import case_from_index
from reports.records import CorruptLine, CorruptLineError, Record, RecordWriter, read_records
from reports.resultfile import NEAR_MISS, case_lines, is_plain_pass, read_lines

FIELDS = ("case_id", "case", "spec", "subject", "oracle", "check", "verdict", "parameter", "index")


def test_a_passing_case_is_one_lean_line_and_reads_back_with_its_numbers() -> None:
    records = check_case(case_from_index(2, 7), reference_subject())
    assert all(is_plain_pass(r) for r in records) and len(records) >= 5
    lines = case_lines(records)
    assert len(lines) == 1 and lines[0].startswith('{"lean": ')
    full_size = sum(len(r.to_json()) + 1 for r in records)
    assert len(lines[0]) < full_size / 3
    path = Path("unused")
    back = [r for _, rs in _parsed(lines, path) for r in rs]
    assert len(back) == len(records)
    for original, lean in zip(records, back, strict=True):
        assert all(getattr(lean, name) == getattr(original, name) for name in FIELDS)
        for name in ("rel_err", "abs_err", "tolerance"):
            assert getattr(lean, name) == pytest.approx(getattr(original, name), rel=1e-4)
        assert lean.extra.get("campaign") == original.extra.get("campaign") and lean.extra["lean"]


def _parsed(lines: list[str], path: Path) -> list[tuple[int, list[Record]]]:
    from reports.resultfile import parse_line

    return [(n, parse_line(n, line.encode())) for n, line in enumerate(lines, start=1)]


def test_failures_and_near_misses_keep_their_full_records(tmp_path: Path) -> None:
    failing = check_case(case_from_index(2, 3), Subject("bug", MUTANTS["scale_layer1"].gradients), ["torch_autograd"])
    assert any(r.failed for r in failing)
    near = check_case(case_from_index(2, 4), reference_subject(), ["torch_autograd"])[0]
    assert near.tolerance is not None
    near.abs_err = NEAR_MISS * near.tolerance  # as close to its tolerance as counts as a near miss
    assert not is_plain_pass(near)
    path = tmp_path / "results.jsonl"
    with RecordWriter(path) as writer:
        writer.write_case(failing)
        writer.write_case([near])
    lines = path.read_text().splitlines()
    full = [json.loads(line) for line in lines if not line.startswith('{"lean"')]
    assert {d["verdict"] for d in full} >= {"fail"} and any(d["case_id"] == near.case_id for d in full)
    assert all(d["blocks"] for d in full)  # every block and its worst entry, for the report's detail
    assert [r.to_json() for r in read_records(path) if not r.extra.get("lean")] == [
        r.to_json() for r in [*failing, near] if not is_plain_pass(r)
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "not an object"),
        (
            b'{"lean": [["o", "c", null, null, "x", 1, 1, 0]], "case_id": "1-1", "case": "", "subject": "s", '
            b'"spec": {"widths": [1, 1], "activations": ["tanh"], "loss": "mse"}}',
            "not a number",
        ),
        (b'{"lean": [], "case_id": "1-1", "case": "", "subject": "s", "spec": {"widths": "x"}}', "spec.widths"),
    ],
)
def test_each_kind_of_corrupt_line_is_named_and_the_rest_still_read(line: bytes, reason: str, tmp_path: Path) -> None:
    good = case_lines(check_case(case_from_index(2, 1), reference_subject(), ["torch_autograd"]))[0].encode()
    path = tmp_path / "results.jsonl"
    path.write_bytes(good + b"\n" + line + b"\n" + good + b"\n")
    with pytest.raises(CorruptLineError, match=f"results.jsonl:2: corrupt line .*{reason}"):
        list(read_records(path))
    corrupt: list[CorruptLine] = []
    assert [n for n, _ in read_lines(path, corrupt)] == [1, 3]
    assert [c.number for c in corrupt] == [2] and corrupt[0].raw == line


def test_the_report_counts_lean_lines_exactly_as_the_records_they_hold(tmp_path: Path) -> None:
    from reports import html

    path = tmp_path / "results.jsonl"
    bug = Subject("bug", MUTANTS["scale_layer1"].gradients)
    with RecordWriter(path) as writer:
        for index in range(8):
            writer.write_case(check_case(case_from_index(5, index), reference_subject()))
            writer.write_case(check_case(case_from_index(6, index), bug, ["torch_autograd", "complex_step"]))
    assert any(line.startswith('{"lean"') for line in path.read_text().splitlines())
    fast, slow = html.aggregate_file(path), html.aggregate(read_records(path))
    for name in ("records", "verdicts", "log_errors", "case_worst", "case_oracle_failed", "failing_blocks", "cases"):
        assert getattr(fast, name) == getattr(slow, name), name
    assert fast.worst is not None and slow.worst is not None and fast.worst.to_json() == slow.worst.to_json()
    assert [r.to_json() for r in fast.rows()] == [r.to_json() for r in slow.rows()]


def test_a_case_text_of_another_shape_is_kept_whole() -> None:
    records = check_case(case_from_index(2, 9), reference_subject(), ["torch_autograd"])
    for record in records:
        record.case = "made by hand"
    line = json.loads(case_lines(records)[0])
    assert line["case"] == "made by hand" and "case_tail" not in line
    assert {r.case for _, rs in _parsed(case_lines(records), Path("unused")) for r in rs} == {"made by hand"}
