from __future__ import annotations

import json
from pathlib import Path

import pytest

from oracles.subjects import Subject, reference_subject
from oracles.verdicts.compare import check_case
from property_tests.mutation.catalogue import MUTANTS
from reference_impl import Case, Spec
from reports.records import Record, RecordWriter, read_records

CASE = Case(Spec((3, 4, 2), ("tanh", "identity"), "mse"), batch=3, seed=2)


def test_record_json_round_trip_keeps_every_field() -> None:
    record = check_case(CASE, Subject("scaled", MUTANTS["scale_layer1"].gradients), ["torch_autograd"])[0]
    assert record.failed and record.parameter == "W1" and record.layer == 1
    again = Record.from_dict(json.loads(record.to_json()))
    assert again == record


def test_failure_message_is_a_view_of_the_record() -> None:
    record = check_case(CASE, Subject("sign", MUTANTS["bias_sign_flip"].gradients), ["torch_autograd"])[0]
    text = record.explain()
    assert "b2[0,0]" in text and "torch_autograd" in text and repr(CASE) in text


def test_writer_appends_and_reader_skips_a_truncated_tail(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    records = check_case(CASE, reference_subject(), ["torch_autograd"])
    with RecordWriter(path) as writer:
        writer.write_all(records)
    with path.open("a") as handle:
        handle.write('{"case_id": "half-writ')  # a kill in the middle of a line
    assert list(read_records(path)) == records
    with RecordWriter(path) as writer:  # reopening repairs the tail before appending
        writer.write(records[0])
    assert list(read_records(path)) == [*records, records[0]]


def test_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text("not json\n" + check_case(CASE, reference_subject(), ["torch_autograd"])[0].to_json() + "\n")
    with pytest.raises(ValueError, match="corrupt"):
        list(read_records(path))
