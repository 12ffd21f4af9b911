"""Which oracle checks which campaign case (reports.oracle_plan), and the account of it in campaign.json."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from oracles import registry
from reference_impl.generate import case_from_index
from reports import campaign, oracle_plan
from reports.campaign import CampaignConfig, run_campaign
from reports.html import write_report
from reports.records import read_records

EXACT = "sympy_exact"


def names_for(config: CampaignConfig, index: int) -> list[str]:
    return oracle_plan.oracle_names_for(config, index, case_from_index(config.seed, index))


def test_the_default_policy_checks_every_cheap_case_and_a_one_over_cost_share_of_the_dear_ones() -> None:
    config = CampaignConfig.create(seed=3, examples=2000)
    budget = config.adaptive[EXACT]
    cheap_seen = dear_seen = 0
    expected = 0.0
    for index in range(2000):
        case = case_from_index(3, index)
        names = oracle_plan.oracle_names_for(config, index, case)
        assert set(oracle_plan.requested_oracles(config)) - set(names) <= {EXACT}
        cost = oracle_plan.exact_cost(case.spec, case.batch)
        if cost <= budget:
            assert EXACT in names
            cheap_seen += 1
        else:
            expected += budget / cost
            dear_seen += EXACT in names
    assert cheap_seen > 200
    # The dear cases are drawn with probability budget/cost: the count is a sum of Bernoulli trials.
    assert abs(dear_seen - expected) < 4 * np.sqrt(expected) + 1


def test_the_selection_is_a_function_of_the_case_alone() -> None:
    config = CampaignConfig.create(seed=8, examples=200)
    first = [names_for(config, i) for i in range(200)]
    again = [names_for(config, i) for i in reversed(range(200))][::-1]
    assert first == again
    other_seed = CampaignConfig.create(seed=9, examples=200)
    assert first != [names_for(other_seed, i) for i in range(200)]


def test_subsample_replaces_the_adaptive_rule_and_the_policy_survives_campaign_json() -> None:
    every = CampaignConfig.create(seed=1, examples=50, subsample={EXACT: 1})
    assert every.adaptive == {}
    assert all(EXACT in names_for(every, i) for i in range(50))
    default = CampaignConfig.create(seed=1, examples=50)
    assert CampaignConfig.from_dict(json.loads(json.dumps(default.to_dict()))) == default
    # A campaign.json from before the policy (no "adaptive" key) ran every oracle on every case.
    old = default.to_dict()
    del old["adaptive"]
    assert CampaignConfig.from_dict(old).adaptive == {}
    with pytest.raises(campaign.CampaignError, match="positive"):
        CampaignConfig.create(seed=1, examples=1, adaptive={EXACT: 0.0})


def _coverage_from_records(path: Path) -> Counter[str]:
    seen: dict[str, set[str]] = {}
    for record in read_records(path):
        if record.check != "campaign":
            seen.setdefault(record.oracle, set()).add(record.case_id)
    return Counter({name: len(cases) for name, cases in seen.items()})


def test_campaign_json_counts_which_oracle_checked_which_case(tmp_path: Path) -> None:
    # A small budget so that a short campaign has cases the exact oracle leaves out.
    config = CampaignConfig.create(seed=2, examples=16, oracles=("torch_autograd", EXACT), adaptive={EXACT: 300.0})
    run_campaign(config, tmp_path)
    coverage = json.loads((tmp_path / campaign.CAMPAIGN_FILE).read_text())["coverage"]
    from_records = _coverage_from_records(tmp_path / campaign.RESULTS_FILE)
    assert coverage["cases"] == 16
    rows = coverage["oracles"]
    assert set(rows) == {"torch_autograd", EXACT}
    for name, row in rows.items():
        assert row["cases"] == from_records[name]
        assert row["cases"] + row["not_selected"] + row["unsupported"] == 16
        assert row["share"] == pytest.approx(row["cases"] / 16, abs=1e-4)
    assert rows["torch_autograd"]["cases"] == 16 and rows["torch_autograd"]["rule"] == "every case it supports"
    planned = [i for i in range(16) if EXACT in names_for(config, i)]
    assert rows[EXACT]["cases"] == len(planned) and 0 < len(planned) < 16
    assert "adaptive" in rows[EXACT]["rule"]
    html = write_report(tmp_path).read_text(encoding="utf-8")
    assert "Which oracle checked which cases" in html and f"{len(planned)} of 16" in html


def test_a_resumed_campaign_counts_its_earlier_cases_too(tmp_path: Path) -> None:
    config = CampaignConfig.create(seed=2, examples=10, oracles=("torch_autograd", EXACT), adaptive={EXACT: 300.0})
    run_campaign(config, tmp_path / "whole")
    whole = json.loads((tmp_path / "whole" / campaign.CAMPAIGN_FILE).read_text())["coverage"]
    part = tmp_path / "part"
    run_campaign(config, part)
    results = part / campaign.RESULTS_FILE
    lines = results.read_text(encoding="utf-8").splitlines(keepends=True)
    results.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")  # as if killed half-way
    run_campaign(config, part, resume=True)
    assert json.loads((part / campaign.CAMPAIGN_FILE).read_text())["coverage"] == whole


def test_the_entry_table_reuses_the_comparisons_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Counter[str]()
    torch = registry.get_oracle("torch_autograd")

    def counted(*args: object) -> registry.OracleOutput:
        calls["torch_autograd"] += 1
        return torch.evaluate(*args)  # type: ignore[arg-type]

    monkeypatch.setitem(registry._REGISTRY, "torch_autograd", dataclasses.replace(torch, evaluate=counted))
    config = CampaignConfig.create(seed=1, examples=1, subject="property_tests.mutation.planted:scale_layer1")
    config = dataclasses.replace(config, oracles=("torch_autograd",))
    records = campaign.run_case(config, 0)
    assert any(r.failed for r in records)
    assert all("entry_values" in r.extra for r in records if r.failed)
    assert calls["torch_autograd"] == 1  # compared once, and that output fed the entry table
