"""One rule for every command that writes a directory: its own files beside others, never over any.

And ``run --resume`` appends only to its own campaign; ``audit``/``mutants``/``verify`` written into a
campaign directory re-render its ``report.html`` with their section.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from reports.cli.app import main
from reports.records import read_records

FAST_MUTANTS = ["--examples", "0", "--shrink-examples", "0", "--no-diagnosis", "--quiet"]


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def campaign_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("campaign") / "results"
    args = ["run", "--examples", "3", "--oracles", "torch_autograd", "--workers", "1", "--out", str(directory)]
    assert main([*args, "--quiet"]) == 0
    return directory


@pytest.fixture
def campaign(campaign_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "results"
    copy.mkdir()
    for path in campaign_template.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    return copy


def _error(capsys: pytest.CaptureFixture[str], category: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"backprop-check: error[{category}]: "), err
    return err[0]


def test_verify_into_a_campaign_writes_beside_it_and_the_campaign_report_gains_it(
    campaign: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digest(campaign)
    assert main(["verify", "reference_impl:gradients", "--examples", "2", "--out", str(campaign), "--quiet"]) == 0
    after = _digest(campaign)
    for name in ("results.jsonl", "campaign.json"):
        assert after[name] == before[name], f"{name} changed"
    assert {"verify.jsonl", "verify.json", "verify.html"} <= set(after)
    assert {r.subject for r in read_records(campaign / "results.jsonl")} == {"reference"}
    assert {r.case_id.split("-")[0] for r in read_records(campaign / "verify.jsonl")} == {"verify"}
    report = (campaign / "report.html").read_text(encoding="utf-8")
    assert 'id="verify"' in report and 'href="verify.html"' in report
    # report re-renders both pages, and the campaign can still be resumed (its file holds only its records)
    assert main(["report", str(campaign), "--quiet"]) == 0
    assert main(["run", "--out", str(campaign), "--resume", "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()


def test_a_second_verify_into_the_same_directory_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "v"
    assert main(["verify", "reference_impl:gradients", "--examples", "1", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    before = _digest(out)
    assert main(["verify", "reference_impl:gradients", "--examples", "1", "--out", str(out)]) == 2
    message = _error(capsys, "usage")
    assert "already holds verify.jsonl" in message and "never writes over results" in message
    assert _digest(out) == before


@pytest.mark.parametrize("leftover", ["results.jsonl", "campaign.json", "report.html"])
def test_run_refuses_a_directory_holding_any_of_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], leftover: str
) -> None:
    (tmp_path / leftover).write_text("someone's results\n")
    assert main(["run", "--examples", "1", "--out", str(tmp_path)]) == 2
    assert f"already holds {leftover}" in _error(capsys, "usage")
    assert (tmp_path / leftover).read_text() == "someone's results\n"


def test_run_writes_beside_other_commands_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "verify.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    args = ["run", "--examples", "1", "--oracles", "torch_autograd", "--workers", "1", "--out", str(tmp_path)]
    assert main([*args, "--quiet"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "verify.json").read_text() == "{}"
    capsys.readouterr()


@pytest.mark.parametrize(
    ("command", "own"),
    [
        (["mutants", *FAST_MUTANTS, "--mutants", "scale_layer1", "--oracles", "torch_autograd"], "mutants.json"),
        (["audit", "--only", "§5.1", "--examples", "1", "--quiet"], "audit.html"),
    ],
)
def test_audit_and_mutants_refuse_over_their_own_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], own: str
) -> None:
    (tmp_path / own).write_text("earlier")
    assert main([*command, "--out", str(tmp_path)]) == 2
    assert f"already holds {own}" in _error(capsys, "usage")
    assert (tmp_path / own).read_text() == "earlier"


def test_mutants_into_a_campaign_directory_updates_its_report(
    campaign: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 'id="mutants"' not in (campaign / "report.html").read_text(encoding="utf-8")
    command = ["mutants", *FAST_MUTANTS, "--mutants", "scale_layer1", "--oracles", "torch_autograd"]
    assert main([*command, "--out", str(campaign)]) == 0
    report = (campaign / "report.html").read_text(encoding="utf-8")
    assert 'id="mutants"' in report and "killed 1/1 bug mutants" in report
    capsys.readouterr()


def test_audit_into_a_campaign_directory_updates_its_report(campaign: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--only", "§5.1", "--examples", "1", "--quiet", "--out", str(campaign)]) == 0
    report = (campaign / "report.html").read_text(encoding="utf-8")
    assert 'id="audit"' in report and "§5.1" in report
    capsys.readouterr()


def _append_record(results: Path, **changes: str) -> None:
    first = json.loads(results.read_text().splitlines()[0])
    first.update(changes)
    with results.open("a") as handle:
        handle.write(json.dumps(first, sort_keys=True) + "\n")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"subject": "mymod:gradients"}, "a record of subject 'mymod:gradients'"),
        ({"case_id": "2-000001"}, "not of campaign seed 1"),
        ({"case_id": "verify-0-0001"}, "not of campaign seed 1"),
    ],
)
def test_resume_refuses_records_of_another_subject_or_seed(
    campaign: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, str], fragment: str
) -> None:
    results = campaign / "results.jsonl"
    _append_record(results, **changes)
    before = results.read_bytes()
    assert main(["run", "--out", str(campaign), "--resume", "--workers", "1"]) == 2
    message = _error(capsys, "input")
    assert fragment in message and "cannot resume" in message
    assert results.read_bytes() == before
