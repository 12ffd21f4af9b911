"""Executors: the pool's main process starts cases with the light oracles while its workers boot, and the
records are the same as when every case runs in one process."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path

import pytest

from reports import campaign, executors
from reports.campaign import CampaignConfig, run_campaign
from reports.casework import EarlyPart
from reports.records import read_records

from .test_campaign import assert_every_case_once, comparable


def ready_after(cases: int, monkeypatch: pytest.MonkeyPatch) -> Future[None]:
    """A first worker that comes up once the main process has started ``cases`` cases."""
    ready: Future[None] = Future()
    if cases == 0:
        ready.set_result(None)
    real = executors.early_part
    started: list[int] = []

    def counting(config: CampaignConfig, index: int, timeout: float | None = None) -> EarlyPart | None:
        started.append(index)
        if len(started) == cases:
            ready.set_result(None)
        return real(config, index, timeout)

    monkeypatch.setattr(executors, "early_part", counting)
    return ready


def test_the_main_process_starts_cases_in_order_until_a_worker_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    config = CampaignConfig.create(seed=4, examples=10)
    work = executors.batches(list(range(10)), 4)
    started = executors.start_while_workers_boot(config, work, ready_after(6, monkeypatch))
    assert [list(part) for part in started] == [[0, 1, 2, 3], [4, 5]]  # the work's order and batch size
    assert all(part is not None and "complex_step" in part.oracles for batch in started for part in batch.values())


def test_a_warm_pool_or_a_stop_leaves_nothing_to_the_main_process(monkeypatch: pytest.MonkeyPatch) -> None:
    config = CampaignConfig.create(seed=4, examples=10)
    work = executors.batches(list(range(10)), 4)
    assert executors.start_while_workers_boot(config, work, ready_after(0, monkeypatch)) == []
    assert executors.start_while_workers_boot(config, work, Future(), stop=lambda: True) == []


@pytest.mark.parametrize("early_cases", [3, 11])
def test_a_pool_campaign_with_an_early_phase_writes_the_records_of_an_in_process_one(
    early_cases: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = CampaignConfig.create(seed=8, examples=11, subsample={"sympy_exact": 4})
    run_campaign(config, tmp_path / "serial")
    ready = ready_after(early_cases, monkeypatch)
    monkeypatch.setattr(executors, "first_worker", lambda executor: ready)
    pooled = run_campaign(config, tmp_path / "pool", workers=2, batch_size=4)
    assert pooled.cases == 11 and pooled.failed_cases == 0
    written = assert_every_case_once(tmp_path / "pool" / campaign.RESULTS_FILE, 8, 11)
    assert comparable(written) == comparable(list(read_records(tmp_path / "serial" / campaign.RESULTS_FILE)))
    meta = json.loads((tmp_path / "pool" / campaign.CAMPAIGN_FILE).read_text(encoding="utf-8"))
    assert meta["last_run"]["cases_started_while_workers_booted"] == early_cases


def test_the_first_worker_future_completes_once_the_pool_runs_a_task() -> None:
    with campaign.make_pool(1) as pool:
        ready = executors.first_worker(pool)
        assert ready.result(timeout=120) is None
