"""A campaign on a real Dask cluster (scheduler + 2 worker processes on loopback) gives the local records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from property_tests.test_campaign import assert_every_case_once, comparable
from reports import campaign, executors
from reports.campaign import CampaignConfig, run_campaign
from reports.cli.app import main
from reports.records import read_records

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed (extra: dask)")
    # The scheduler always serves HTTP (dashboard, /health); left to its default it takes port 8787 and, when
    # another cluster on this shared machine holds that port, warns "Port 8787 is already in use", which this
    # suite's warnings-as-errors turns into a failure that says nothing about our results.  An ephemeral
    # loopback port avoids the collision instead of silencing the warning; no warning filter is needed.
    local = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    try:
        yield local
    finally:
        local.close()


def test_dask_campaign_gives_the_same_records_as_the_local_run(cluster: Any, tmp_path: Path) -> None:
    config = CampaignConfig.create(seed=8, examples=16, oracles=("torch_autograd",))
    run_campaign(config, tmp_path / "local")
    distributed_run = run_campaign(config, tmp_path / "dask", scheduler=cluster.scheduler_address, batch_size=4)
    assert distributed_run.batches == 4 and distributed_run.parallelism == 2
    remote = assert_every_case_once(tmp_path / "dask" / campaign.RESULTS_FILE, 8, 16)
    local = list(read_records(tmp_path / "local" / campaign.RESULTS_FILE))
    assert comparable(remote) == comparable(local)
    assert all(r.elapsed > 0 for r in remote)  # timing is the only thing allowed to differ, and it is there


def test_cli_takes_the_scheduler_from_the_environment(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
    argv = ["run", "--out", str(tmp_path), "--examples", "4", "--seed", "9", "--oracles", "torch_autograd"]
    assert main([*argv, "--subject", "property_tests.mutation.planted:scale_layer1"]) == 1
    stored = campaign.read_campaign(tmp_path)
    assert stored is not None and stored["last_run"]["executor"] == f"dask {cluster.scheduler_address}"
    assert_every_case_once(tmp_path / campaign.RESULTS_FILE, 9, 4)


def test_unreachable_scheduler_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", "1s")
    argv = ["run", "--out", str(tmp_path), "--examples", "1", "--oracles", "torch_autograd"]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Dask scheduler" in err[0]
