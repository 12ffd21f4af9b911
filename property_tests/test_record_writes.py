"""Cheap record writes that keep their promises: to_json is byte for byte the deep-copy serialisation, and a
writer with ``sync_seconds`` flushes every write but fsyncs at most once per interval and always at close."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from oracles.verdicts.records import SCHEMA_VERSION, Record, _finite_or_none, _json_default
from reports import campaign
from reports.campaign import CampaignConfig
from reports.records import RecordWriter, read_records


def deep_copy_json(record: Record) -> str:
    data = {k: _finite_or_none(v) for k, v in dataclasses.asdict(record).items()}
    data["schema"] = SCHEMA_VERSION
    return json.dumps(data, sort_keys=True, default=_json_default)


@dataclasses.dataclass
class Nested:
    value: float


def test_to_json_matches_the_deep_copy_on_passing_failing_and_odd_records() -> None:
    planted = CampaignConfig.create(seed=1, examples=3, subject="property_tests.mutation.planted:scale_layer1")
    records = [r for i in range(3) for r in campaign.run_case(planted, i)]
    assert any(r.failed and "abs_diff" in r.extra and "entry_values" in r.extra for r in records)
    odd = Record(
        case_id="x",
        case="Case(...)",
        spec={"widths": [1, 1]},
        subject="s",
        oracle="o",
        check="gradient",
        verdict="fail",
        abs_err=math.inf,
        rel_err=math.nan,
        index=[0, 0],
        blocks={"W1": {"ratio": np.float64(2.0), "index": (0, 1)}},
        extra={"nested": Nested(1.5), "array": np.arange(3)},
    )
    for record in [*records, odd]:
        assert record.to_json() == deep_copy_json(record)


def test_a_syncing_writer_flushes_every_case_and_fsyncs_once_per_interval_and_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr("reports.records.os.fsync", lambda fd: synced.append(fd))
    clock = [100.0]
    monkeypatch.setattr("reports.records.time.monotonic", lambda: clock[0])
    records = campaign.run_case(CampaignConfig.create(seed=1, examples=1, oracles=("torch_autograd",)), 0)
    path = tmp_path / "r.jsonl"
    writer = RecordWriter(path, sync_seconds=1.0)
    for step in range(5):
        clock[0] += 0.3
        writer.write_all(records)
        # flushed: another reader sees every case written so far, synced or not
        assert len(list(read_records(path))) == len(records) * (step + 1)
    assert len(synced) == 1  # 1.5 s of writes: one fsync, after the first second
    writer.close()
    assert len(synced) == 2
    every = RecordWriter(tmp_path / "s.jsonl")  # the default: an fsync after every write
    every.write_all(records)
    every.write(records[0])
    assert len(synced) == 4
    every.close()
