"""Record.to_json writes what a deep copy of the record (dataclasses.asdict) would, byte for byte."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from oracles.verdicts.records import SCHEMA_VERSION, Record, _finite_or_none, _json_default
from reports import campaign
from reports.campaign import CampaignConfig


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
