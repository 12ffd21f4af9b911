"""Subjects loaded by name run in a supervised worker: no subject takes ``verify`` or ``run`` down, by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oracles import supervisor
from oracles.subjects import call_subject, load_subject
from reference_impl import Case, Spec
from reports import campaign
from reports.cli import verify as verify_cli
from reports.cli.app import main
from reports.records import read_records

HOSTILE = '''
import ctypes
import os
import sys
import time

from reference_impl import gradients, loss as right_loss


def exits(spec, params, X, Y):
    os._exit(3)


def segfault(spec, params, X, Y):
    ctypes.string_at(0)


def interrupt(spec, params, X, Y):
    raise KeyboardInterrupt("pressed by the subject")


def hangs(spec, params, X, Y):
    time.sleep(3600)


def chatty(spec, params, X, Y):
    sys.stdout.write("x" * 10_000_000)
    print("and a word on stderr", file=sys.stderr)
    return gradients(spec, params, X, Y)


class WrongLoss:
    """Right gradients, a loss companion that returns 2L + 1."""

    def gradients(self, spec, params, X, Y):
        return gradients(spec, params, X, Y)

    def loss(self, spec, params, X, Y):
        return 2 * right_loss(spec, params, X, Y) + 1


wrong_loss = WrongLoss()


class RightLoss(WrongLoss):
    def loss(self, spec, params, X, Y):
        return right_loss(spec, params, X, Y)


right_loss_subject = RightLoss()
'''

CASE = Case(Spec((3, 4, 2), ("tanh", "identity"), "mse"), batch=3, seed=5)
RUN = ["run", "--oracles", "torch_autograd", "--batch-size", "1"]


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "isolation_hostile.py").write_text(HOSTILE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "isolation_hostile"


@pytest.fixture
def short_default(monkeypatch: pytest.MonkeyPatch) -> float:
    """The default time limit (no --timeout given), shortened so a hang costs a test half a second."""
    monkeypatch.setattr(supervisor, "DEFAULT_TIMEOUT", 0.5)
    return 0.5


CRASHES = [
    ("exits", "crash", "exited with status 3"),
    ("segfault", "crash", "killed by signal 11 (SIGSEGV)"),
    ("interrupt", "exception", "KeyboardInterrupt raised by the subject"),
    ("hangs", "timeout", "no answer within 0.5 s"),
]


@pytest.mark.parametrize(("name", "category", "fragment"), CRASHES)
def test_verify_without_flags_categorises_the_subject_and_completes(
    name: str,
    category: str,
    fragment: str,
    hostile: str,
    short_default: float,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    code = main(["verify", f"{hostile}:{name}", "--examples", "2", "--losses", "mse", "--out", str(out)])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert code == 1 and captured.err == ""  # no traceback, no noise: the subject's faults are records
    assert lines[0].startswith("diagnosis: ")
    assert f"protocol [{category}]: 2 case(s), first verify-0-0000" in lines
    records = list(read_records(out / verify_cli.RESULTS_FILE))
    assert records and all(r.category == category and fragment in r.message for r in records), records[0].message
    assert (out / verify_cli.REPORT_FILE).stat().st_size > 0


@pytest.mark.parametrize(("name", "category", "fragment"), CRASHES)
def test_run_without_flags_categorises_every_case_and_writes_the_report(
    name: str,
    category: str,
    fragment: str,
    hostile: str,
    short_default: float,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main([*RUN, "--subject", f"{hostile}:{name}", "--examples", "3", "--workers", "1", "--out", str(tmp_path)])
    assert code == 1 and "Traceback" not in capsys.readouterr().err
    records = list(read_records(tmp_path / campaign.RESULTS_FILE))
    assert len({r.case_id for r in records}) == 3
    assert all(r.category == category and fragment in r.message for r in records), records[0].message
    assert "3 of 3 cases disagree" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_subject_that_segfaults_in_pool_workers_does_not_break_the_pool(
    hostile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*RUN, "--subject", f"{hostile}:segfault", "--examples", "4", "--workers", "2", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "error" not in err
    records = list(read_records(tmp_path / campaign.RESULTS_FILE))
    assert sorted(r.case_id for r in records) == [campaign.case_id(1, i) for i in range(4)]
    assert all(r.category == "crash" and "SIGSEGV" in r.message for r in records)


def test_the_worker_is_restarted_after_a_crash_and_the_next_call_answers(hostile: str) -> None:
    subject = load_subject(f"{hostile}:exits")
    assert call_subject(subject, CASE).failure is not None
    right = load_subject(f"{hostile}:chatty", timeout=30)
    assert right.gradients.supervisor.starts == 0  # type: ignore[attr-defined]
    for _ in range(2):
        call = call_subject(right, CASE)
        assert call.failure is None and call.grads is not None
    assert right.gradients.supervisor.starts == 1  # type: ignore[attr-defined]
    supervisor_ = subject.gradients.supervisor  # type: ignore[attr-defined]
    call_subject(subject, CASE)
    assert supervisor_.starts == 2  # one worker per crash, started when needed


def test_a_subject_flooding_stdout_is_captured_and_the_diagnosis_stays_first(
    hostile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["verify", f"{hostile}:chatty", "--examples", "2", "--losses", "mse", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0 and len(captured.out) < 5_000 and captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0].startswith("diagnosis: none needed")
    assert any(line.startswith("subject output: up to 20000") for line in lines)  # two calls per case
    record = next(read_records(out / verify_cli.RESULTS_FILE))
    kept = record.extra["subject_output"]
    assert kept["bytes"] >= 20_000_000 and kept["start"].startswith("xxxx")
    assert len(kept["start"]) <= supervisor.EXCERPT_BYTES


def test_a_wrong_loss_companion_fails_in_its_own_category(
    hostile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", f"{hostile}:wrong_loss", "--examples", "3", "--losses", "mse", "--out", str(tmp_path / "v")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].startswith("diagnosis: loss: the gradients agree with torch_autograd")
    assert any(line.startswith("loss [loss]: 3 case(s)") for line in lines)
    assert any(line.strip().startswith("W1") and "pass" in line for line in lines)
    summary = json.loads((tmp_path / "v" / "verify.json").read_text())
    assert len(summary["failing_cases"]) == 3
    code = main(["verify", f"{hostile}:right_loss_subject", "--examples", "3", "--losses", "mse"])
    assert code == 0 and "loss" in capsys.readouterr().out
    code = main(
        [*RUN, "--subject", f"{hostile}:wrong_loss", "--examples", "2", "--workers", "1", "--out", str(tmp_path / "r")]
    )
    assert code == 1
    records = list(read_records(tmp_path / "r" / campaign.RESULTS_FILE))
    failing = [r for r in records if r.failed]
    assert failing and all(r.check == "loss" and r.category == "loss" for r in failing)
    assert all(not r.failed for r in records if r.check != "loss")
