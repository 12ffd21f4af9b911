from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reference_impl.generate import case_from_index
from reports import campaign
from reports.cli.app import main
from reports.records import Record, read_records

PLANTED = "property_tests.mutation.planted:scale_layer1"
ROOT = Path(__file__).resolve().parents[1]


def start_run(out: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "reports", "run", "--out", str(out), "--workers", "1", *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"run ended before {count} records were written: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    process.communicate()
    pytest.fail(f"no {count} records in {path} within {timeout} s")


def cases_on_disk(path: Path) -> Counter[str]:
    return Counter(r.case_id for r in read_records(path))


def test_kill_9_mid_run_then_resume_gives_every_case_exactly_once(tmp_path: Path) -> None:
    results = tmp_path / campaign.RESULTS_FILE
    # batch size 1: records reach the disk case by case, so the kill lands mid-campaign
    process = start_run(tmp_path, "--examples", "60", "--seed", "3", "--oracles", "torch_autograd", "--batch-size", "1")
    wait_for_lines(results, 12, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    before = cases_on_disk(results)
    assert 0 < len(before) < 60, "the kill should land mid-run"
    assert main(["run", "--out", str(tmp_path), "--resume", "--workers", "1"]) == 0
    after = cases_on_disk(results)
    assert set(after) == {campaign.case_id(3, i) for i in range(60)}
    records = list(read_records(results))
    assert all(after[r.case_id] == r.extra["campaign"]["records"] for r in records)
    assert (tmp_path / "report.html").exists()


def test_sigterm_stops_cleanly_keeping_what_was_written(tmp_path: Path) -> None:
    results = tmp_path / campaign.RESULTS_FILE
    process = start_run(
        tmp_path, "--examples", "400", "--seed", "4", "--oracles", "torch_autograd", "--batch-size", "1"
    )
    wait_for_lines(results, 10, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    kept = cases_on_disk(results)
    assert kept and all(count == 2 for count in kept.values())  # gradient + δ: no case half written


def test_run_exit_codes_outputs_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    common = ["--examples", "6", "--seed", "2", "--oracles", "torch_autograd", "--workers", "1"]
    assert main(["run", "--out", str(good), "--junit", str(good / "junit.xml"), *common]) == 0
    assert main(["run", "--out", str(bad), "--subject", PLANTED, "--junit", str(bad / "junit.xml"), *common]) == 1
    for directory in (good, bad):
        for name in ("results.jsonl", "report.html", "campaign.json", "junit.xml"):
            assert (directory / name).stat().st_size > 0
    out = capsys.readouterr().out
    assert "6 cases, 0 with discrepancies" in out
    junit = (bad / "junit.xml").read_text()
    assert 'failures="' in junit and "W1[" in junit and "<failure" in junit
    assert "<failure" not in (good / "junit.xml").read_text()


@pytest.mark.parametrize(
    ("argv", "category"),
    [
        (["run", "--oracles", "no_such_oracle"], "usage"),
        (["run", "--subject", "no_such_module_xyz:gradients", "--examples", "1"], "import"),
        (["run", "--examples", "-1"], "usage"),
        (["run", "--subsample", "sympy_exact=0"], "usage"),
        (["run", "--subsample", "no_such_oracle=3"], "usage"),
        (["run", "--resume", "--out", "{tmp}/empty"], "usage"),
        (["replay", "not-a-case"], "input"),
        (["report", "{tmp}/missing"], "io"),
    ],
)
def test_bad_input_is_one_categorised_line_and_exit_2(
    argv: list[str], category: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"backprop-check: error[{category}]:"), err


def test_resume_with_a_conflicting_flag_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["run", "--out", str(tmp_path), "--examples", "2", "--oracles", "torch_autograd", "--workers", "1"]) == 0
    )
    assert main(["run", "--out", str(tmp_path), "--resume", "--seed", "99"]) == 2
    assert "--seed 99" in capsys.readouterr().err


def test_replay_prints_the_comparison_and_a_snippet_that_reproduces_the_case(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", "1-000007", "--subject", PLANTED, "--oracles", "torch_autograd"]) == 1
    out = capsys.readouterr().out
    case = case_from_index(1, 7)
    assert f"@example(case={case!r})" in out and "FAIL" in out and "W1" in out
    snippet = out[out.index("from oracles.verdicts.compare import check_case") : out.index("DISCREPANCIES FOUND")]
    found: list[Record] = []
    namespace: dict[str, Any] = {"found": found}
    exec(compile(snippet.replace("print(record.summary())", "found.append(record)"), "<snippet>", "exec"), namespace)
    assert namespace["case"] == case and any(r.failed and r.parameter == "W1" for r in found)
    assert main(["replay", "1-000007", "--oracles", "torch_autograd"]) == 0
    assert "all oracles agree" in capsys.readouterr().out


def test_report_rerenders_from_a_jsonl_with_a_truncated_last_line(tmp_path: Path) -> None:
    assert (
        main(["run", "--out", str(tmp_path), "--examples", "3", "--oracles", "torch_autograd", "--workers", "1"]) == 0
    )
    (tmp_path / "report.html").unlink()
    with (tmp_path / campaign.RESULTS_FILE).open("a") as handle:
        handle.write('{"case_id": "1-0000')
    assert main(["report", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "All 3 cases agree" in html
    json.loads((tmp_path / campaign.CAMPAIGN_FILE).read_text())  # untouched and valid
    assert os.path.getsize(tmp_path / "report.html") > 1000
