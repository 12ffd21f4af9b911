from __future__ import annotations

import dataclasses
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from oracles.registry import all_oracles
from reference_impl.generate import case_from_index
from reports import campaign, oracle_plan
from reports.campaign import CampaignConfig, CampaignError, run_campaign
from reports.cli.progress import Progress, format_eta
from reports.records import Record, read_records
from reports.resultfile import case_lines

TORCH = ("torch_autograd",)
PLANTED = "property_tests.mutation.planted:scale_layer1"


def names_for(config: CampaignConfig, index: int) -> list[str]:
    return oracle_plan.oracle_names_for(config, index, case_from_index(config.seed, index))


def comparable(records: list[Record]) -> list[dict[str, Any]]:
    """Records without timing, sorted by case: what must not depend on how or where a case ran."""
    rows = []
    for record in records:
        data = json.loads(record.to_json())
        data.pop("elapsed")
        rows.append(data)
    return sorted(rows, key=lambda d: (d["case_id"], d["oracle"], d["check"]))


def assert_every_case_once(path: Path, seed: int, examples: int) -> list[Record]:
    records = list(read_records(path))
    per_case = Counter(r.case_id for r in records)
    assert set(per_case) == {campaign.case_id(seed, i) for i in range(examples)}
    for record in records:
        # every record's case is complete, and no case's records were written twice
        assert per_case[record.case_id] == record.extra["campaign"]["records"]
    return records


def test_campaign_writes_every_case_once_and_the_campaign_file(tmp_path: Path) -> None:
    config = CampaignConfig.create(seed=4, examples=12, oracles=TORCH)
    result = run_campaign(config, tmp_path)
    assert (result.cases, result.ran, result.failed_cases) == (12, 12, 0)
    records = assert_every_case_once(tmp_path / campaign.RESULTS_FILE, 4, 12)
    assert {r.check for r in records} == {"gradient", "delta"}  # the reference exposes δ
    stored = json.loads((tmp_path / campaign.CAMPAIGN_FILE).read_text())
    assert CampaignConfig.from_dict(stored["config"]) == config
    assert stored["cases"] == 12 and stored["finished"] and stored["versions"]["numpy"]
    assert records[0].case == repr(case_from_index(4, int(records[0].case_id.split("-")[1])))


def test_batching_does_not_change_records(tmp_path: Path) -> None:
    config = CampaignConfig.create(seed=5, examples=9, oracles=TORCH)
    one = run_campaign(config, tmp_path / "one", batch_size=1)
    four = run_campaign(config, tmp_path / "four", batch_size=4)
    assert (one.batches, four.batches) == (9, 3)
    assert comparable(list(read_records(tmp_path / "one" / campaign.RESULTS_FILE))) == comparable(
        list(read_records(tmp_path / "four" / campaign.RESULTS_FILE))
    )


def test_process_pool_gives_the_same_records_as_in_process(tmp_path: Path) -> None:
    config = CampaignConfig.create(seed=6, examples=10, oracles=TORCH)
    run_campaign(config, tmp_path / "serial")
    pooled = run_campaign(config, tmp_path / "pool", workers=2, batch_size=3)
    assert pooled.batches == 4
    assert comparable(list(read_records(tmp_path / "serial" / campaign.RESULTS_FILE))) == comparable(
        list(read_records(tmp_path / "pool" / campaign.RESULTS_FILE))
    )


def test_resume_drops_a_partial_case_and_redoes_nothing_complete(tmp_path: Path) -> None:
    config = CampaignConfig.create(seed=7, examples=10, oracles=TORCH)
    run_campaign(config, tmp_path / "full")
    full = list(read_records(tmp_path / "full" / campaign.RESULTS_FILE))
    # Simulate a kill: cases 0-4 complete, case 5 half written, a torn line at the end.
    interrupted = tmp_path / "cut"
    run_campaign(CampaignConfig.create(seed=7, examples=10, oracles=TORCH), interrupted)
    kept = [r for r in full if int(r.case_id.split("-")[1]) < 5]
    partial = [r for r in full if r.case_id == campaign.case_id(7, 5)]
    assert len(partial) == 2
    with (interrupted / campaign.RESULTS_FILE).open("w") as handle:
        for index in range(5):
            handle.writelines(
                line + "\n" for line in case_lines([r for r in kept if r.case_id == campaign.case_id(7, index)])
            )
        handle.write(partial[0].to_json() + "\n" + partial[1].to_json()[:40])
    result = run_campaign(config, interrupted, resume=True)
    assert result.ran == 5 and result.cases == 10
    resumed = assert_every_case_once(interrupted / campaign.RESULTS_FILE, 7, 10)
    assert comparable(resumed) == comparable(full)
    again = run_campaign(config, interrupted, resume=True)  # nothing left: nothing redone
    assert again.ran == 0 and again.cases == 10


def test_resume_and_fresh_runs_refuse_to_mix_campaigns(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="nothing to resume"):
        run_campaign(CampaignConfig.create(seed=1, examples=2, oracles=TORCH), tmp_path, resume=True)
    run_campaign(CampaignConfig.create(seed=1, examples=2, oracles=TORCH), tmp_path)
    with pytest.raises(CampaignError, match="already has records"):
        run_campaign(CampaignConfig.create(seed=1, examples=2, oracles=TORCH), tmp_path)
    with pytest.raises(CampaignError, match="different campaign"):
        run_campaign(CampaignConfig.create(seed=2, examples=2, oracles=TORCH), tmp_path, resume=True)
    with pytest.raises(CampaignError, match="unknown oracle"):
        run_campaign(CampaignConfig.create(seed=1, examples=2, oracles=("no_such",)), tmp_path / "x")


def test_planted_bug_is_found_at_its_layer_with_every_oracle_value(tmp_path: Path) -> None:
    result = run_campaign(CampaignConfig.create(seed=1, examples=8, subject=PLANTED, oracles=TORCH), tmp_path)
    assert result.failed_cases >= 6
    failing = [r for r in read_records(tmp_path / campaign.RESULTS_FILE) if r.failed]
    assert failing and all(r.parameter == "W1" and r.layer == 1 for r in failing)
    for record in failing:
        entry = record.extra["entry_values"]
        assert entry["entry"].startswith("W1[") and entry["subject"] == record.subject_value
        # the oracle's value at the worst entry is the one the subject was measured against
        assert entry["oracles"]["torch_autograd"] == pytest.approx(record.oracle_value, rel=1e-15, abs=1e-300)


def test_a_subsampled_oracle_runs_on_every_kth_case_and_the_others_on_all() -> None:
    registered = sorted(all_oracles())
    everything = CampaignConfig.create(seed=1, examples=100, adaptive={})
    assert all(
        oracle_plan.oracle_names_for(everything, i, case_from_index(everything.seed, i)) == registered for i in range(5)
    )
    default = CampaignConfig.create(seed=1, examples=100)  # only the adaptive exact oracle may leave cases out
    assert all(
        set(registered) - set(oracle_plan.oracle_names_for(default, i, case_from_index(default.seed, i)))
        <= {"sympy_exact"}
        for i in range(20)
    )
    sampled = CampaignConfig.create(seed=1, examples=100, subsample={"torch_autograd": 3}, adaptive={})
    assert CampaignConfig.from_dict(json.loads(json.dumps(sampled.to_dict()))) == sampled  # survives campaign.json
    for index in range(9):
        names = names_for(sampled, index)
        assert ("torch_autograd" in names) == (index % 3 == 0)
        assert set(registered) - set(names) <= {"torch_autograd"}
    with pytest.raises(CampaignError, match="at least 1"):
        CampaignConfig.create(seed=1, examples=1, subsample={"torch_autograd": 0})


def test_a_case_no_oracle_supports_is_one_skip_record(monkeypatch: pytest.MonkeyPatch) -> None:
    refusing = dataclasses.replace(all_oracles()["torch_autograd"], supports_fn=lambda spec: "not this one")
    monkeypatch.setattr(oracle_plan, "get_oracle", lambda name: refusing)
    records = campaign.run_case(CampaignConfig.create(seed=1, examples=1, oracles=TORCH), 0)
    assert [(r.verdict, r.check, r.extra["campaign"]["records"]) for r in records] == [("skip", "campaign", 1)]


def test_case_ids_round_trip_and_bad_ones_are_rejected() -> None:
    assert campaign.parse_case_id(campaign.case_id(12, 345)) == (12, 345)
    assert case_from_index(12, 345).id == campaign.case_id(12, 345)
    for bad in ("12", "a-1", "1-", "-3", "1-2-3"):
        with pytest.raises(ValueError, match="SEED-INDEX"):
            campaign.parse_case_id(bad)


def test_batch_sizes_stay_within_bounds_and_cover_every_index() -> None:
    assert campaign.batch_size_for(10, 2) == campaign.MIN_BATCH
    assert campaign.batch_size_for(10**7, 2) == campaign.MAX_BATCH
    work = campaign.batches(list(range(23)), 5)
    assert [len(b) for b in work] == [5, 5, 5, 5, 3] and [i for b in work for i in b] == list(range(23))


def test_progress_redraws_a_bar_on_a_tty_and_prints_plain_lines_otherwise() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    plain, tty = io.StringIO(), io.StringIO()
    for stream, is_tty in ((plain, False), (tty, True)):
        progress = Progress(10, stream=stream, tty=is_tty, interval=1.0, clock=clock)
        for step in range(10):
            now[0] = (step + 1) * 0.5
            progress.update(1, failures=int(step == 3))
        progress.close()
        now[0] = 0.0
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue() and len(lines) == 6  # the first, then one a second, and the last
    assert lines[0] == "progress: 1/10 cases (10%), -- cases/s, 0 failing, ETA --:--"  # too early for a rate
    assert lines[-1] == "progress: 10/10 cases (100%), 2.0 cases/s, 1 failing, ETA 00:00"
    assert tty.getvalue().count("\r") == 6 and tty.getvalue().endswith("\n")
    assert "[############################] 10/10 cases" in tty.getvalue()
    assert format_eta(3725) == "1:02:05" and format_eta(float("inf")) == "--:--"
