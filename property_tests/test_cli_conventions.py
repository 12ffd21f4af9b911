"""The command line's conventions: --version, global options anywhere, one list syntax, help for every
option, --quiet on every command, foreseeable mistakes as one categorised line, and sane progress."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reports.cli.app import build_parser, main
from reports.cli.common import listed
from reports.cli.progress import Progress
from reports.records import Record


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found[f"{prefix}{name}"] = child
                found.update(_commands(child, f"{prefix}{name} "))
    return found


COMMANDS = _commands(build_parser())


def _one_error(capsys: pytest.CaptureFixture[str], category: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"backprop-check: error[{category}]: "), err[0]
    return err[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("backprop-check ") and out.split()[1][0].isdigit(), out


def test_every_command_and_option_has_help_and_takes_quiet_and_debug() -> None:
    assert {"run", "replay", "report", "verify", "fixtures export", "fixtures check", "audit", "mutants"} <= set(
        COMMANDS
    )
    for name, parser in COMMANDS.items():
        options = parser._option_string_actions
        assert "--quiet" in options and "--debug" in options, name
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help and action.help.strip(), f"{name}: {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("flag", ["--debug", "--quiet"])
def test_global_options_are_accepted_before_or_after_the_command(flag: str) -> None:
    parser = build_parser()
    dest = flag.lstrip("-")
    assert getattr(parser.parse_args(["report", "d"]), dest) is False
    assert getattr(parser.parse_args([flag, "report", "d"]), dest) is True
    assert getattr(parser.parse_args(["report", "d", flag]), dest) is True
    assert getattr(parser.parse_args(["fixtures", "check", "a", "b", flag]), dest) is True


@pytest.mark.parametrize(
    ("argv", "dest"),
    [
        (["run", "--oracles"], "oracles"),
        (["run", "--subsample"], "subsample"),
        (["replay", "1-000001", "--oracles"], "oracles"),
        (["mutants", "--mutants"], "mutants"),
        (["mutants", "--oracles"], "oracles"),
        (["verify", "m:f", "--activations"], "activations"),
        (["verify", "m:f", "--losses"], "losses"),
        (["fixtures", "export", "d", "--activations"], "activations"),
        (["fixtures", "export", "d", "--losses"], "losses"),
    ],
)
def test_every_list_option_takes_commas_or_spaces(argv: list[str], dest: str) -> None:
    parser = build_parser()
    commas = listed(getattr(parser.parse_args([*argv, "a,b"]), dest))
    spaces = listed(getattr(parser.parse_args([*argv, "a", "b"]), dest))
    mixed = listed(getattr(parser.parse_args([*argv, "a,", "b"]), dest))
    assert commas == spaces == mixed == ["a", "b"]


def test_quiet_leaves_only_the_verdict_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "q"
    assert main(["verify", "reference_impl:gradients", "--examples", "2", "--out", str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("diagnosis: none needed") and lines[1].startswith("PASS: 0 of 2")
    assert main(["replay", "1-000001", "--oracles", "torch_autograd", "--quiet"]) == 0
    replayed = capsys.readouterr().out.strip().splitlines()
    assert len(replayed) == 1 and replayed[0].startswith("all oracles agree ("), replayed


def test_run_examples_zero_is_an_error_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--examples", "0", "--out", str(tmp_path / "empty")]) == 2
    assert "--examples must be positive" in _one_error(capsys, "usage")
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "reference_impl:gradients", "--seed", "-1"],
        ["fixtures", "export", "never-written", "--seed", "-1"],
        ["run", "--seed", "-1", "--out", "never-written"],
        ["mutants", "--seed", "-1"],
    ],
)
def test_a_negative_seed_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "--seed must be non-negative" in _one_error(capsys, "usage")
    assert not Path("never-written").exists()


def test_verify_out_a_file_is_an_io_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert main(["verify", "reference_impl:gradients", "--examples", "1", "--out", str(target)]) == 2
    assert "not a directory" in _one_error(capsys, "io")
    assert target.read_text() == "keep me"


def test_fixtures_export_into_a_file_or_over_fixtures_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert main(["fixtures", "export", str(target), "--count", "1"]) == 2
    _one_error(capsys, "io")
    assert main(["fixtures", "export", str(tmp_path / "fx"), "--count", "1"]) == 0
    capsys.readouterr()
    before = (tmp_path / "fx" / "index.json").read_bytes()
    assert main(["fixtures", "export", str(tmp_path / "fx"), "--count", "1"]) == 2
    assert "already holds index.json" in _one_error(capsys, "usage")
    assert (tmp_path / "fx" / "index.json").read_bytes() == before


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"a": 1}\n{"b": 2}\n', "'case_id' is missing"),  # JSON, but not records
        ("[1, 2, 3]\n", "holds no records"),  # one line, unreadable as a record: dropped as torn
        ("[1, 2, 3]\n[4]\n", "not an object"),
        ("garbage\n", "holds no records"),
        ("garbage\nmore garbage\n", "corrupt line"),
        ("", "holds no records"),
    ],
)
def test_report_on_something_that_is_not_records_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str
) -> None:
    (tmp_path / "results.jsonl").write_text(content)
    assert main(["report", str(tmp_path)]) == 2
    assert fragment in _one_error(capsys, "input")
    assert not (tmp_path / "report.html").exists()


def test_report_needs_a_run_or_verify_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "neither results.jsonl" in _one_error(capsys, "io")


def test_ctrl_c_says_how_to_resume(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import reports.cli.run as run_module

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "run_command", interrupted)
    assert main(["run", "--out", "somewhere"]) == 130
    err = capsys.readouterr().err
    assert "backprop-check run --out somewhere --resume" in err


def test_the_first_progress_lines_show_no_rate_until_a_second_has_passed() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(1000, stream=stream, tty=False, interval=0.0, clock=lambda: now[0])
    now[0] = 0.002
    for _ in range(94):  # one batch arrives at once
        progress.update(1)
    assert "-- cases/s" in stream.getvalue().splitlines()[-1]
    assert "ETA --:--" in stream.getvalue().splitlines()[-1]
    now[0] = 4.0
    progress.update(1)
    assert "23.8 cases/s" in stream.getvalue().splitlines()[-1]  # 95 cases over 4 s, start-up included


def test_a_resumed_campaign_counts_only_the_fresh_cases() -> None:
    now = [0.0]
    progress = Progress(100, already_done=50, stream=io.StringIO(), tty=False, clock=lambda: now[0])
    now[0] = 2.0
    progress.update(10)
    assert progress.rate == pytest.approx(5.0)


# --- imports from where the user stands -------------------------------------------------------------

CWD_SUBJECT = """
from reference_impl import gradients
SUPPORTS = {"activations": ["tanh", "identity"], "losses": ["mse"], "max_depth": 2}
"""


@pytest.fixture
def in_user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A folder holding ``<name>.py``, as the working directory, and *not* on sys.path."""
    name = f"cwd_subject_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(CWD_SUBJECT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, name, raising=False)
    return name


def test_verify_run_and_replay_import_the_subject_from_the_current_directory(
    in_user_folder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = f"{in_user_folder}:gradients"
    assert main(["verify", target, "--examples", "2"]) == 0
    assert main(["run", "--subject", target, "--examples", "2", "--workers", "1", "--out", "r", "--quiet"]) == 0
    assert main(["replay", "1-000001", "--subject", target, "--oracles", "torch_autograd", "--quiet"]) == 0
    capsys.readouterr()


def _console_script(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(found).exists():
        pytest.skip(f"the {name} console script is not installed")
    return found


def test_the_console_scripts_import_from_the_current_directory(tmp_path: Path) -> None:
    """``backprop-check`` and ``pytest`` as installed scripts: sys.path[0] is their bin folder, not here."""
    name = "cwd_subject_script"
    (tmp_path / f"{name}.py").write_text(CWD_SUBJECT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != ".")
    verify = subprocess.run(
        [_console_script("backprop-check"), "verify", f"{name}:gradients", "--examples", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("diagnosis: none needed")
    plugin = subprocess.run(
        [
            *(_console_script("pytest"), "-p", "no:cacheprovider"),
            *("--backprop-subject", f"{name}:gradients", "--backprop-examples", "3", str(tmp_path)),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert plugin.returncode == 0, plugin.stdout[-3000:] + plugin.stderr[-2000:]
    # The plugin's items are counted like any others: "collected 1 item", then one test runs.
    assert "collected 1 item" in plugin.stdout and "1 passed" in plugin.stdout, plugin.stdout[-3000:]


# --- verify output glitches -----------------------------------------------------------------------------

FAULTY = """
import numpy as np
from reference_impl import gradients

def mutates(spec, params, X, Y):
    grads = gradients(spec, params, X, Y)
    params["W1"][...] = 0.0
    return grads

def nan(spec, params, X, Y):
    return {k: v * np.nan for k, v in gradients(spec, params, X, Y).items()}

SUPPORTS = {"activations": ["tanh", "identity"], "losses": ["mse"], "max_depth": 2}
"""


@pytest.mark.parametrize(("name", "category"), [("mutates", "mutation"), ("nan", "nonfinite")])
def test_a_protocol_fault_is_its_own_line_not_a_parameter_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, category: str
) -> None:
    (tmp_path / "faulty_subjects_q.py").write_text(FAULTY)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert main(["verify", f"faulty_subjects_q:{name}", "--examples", "3", "--out", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"protocol [{category}]: 3 case(s), first verify-0-0000" in lines
    assert "verdict per parameter: none (no call returned gradients to compare)" in lines
    assert not [line for line in lines if line.rstrip().endswith(" in") or "worst rel err 0 in" in line]
    assert not [line for line in lines if line.strip().startswith(("W1", "b1")) and "FAIL" in line]
    summary = json.loads((out / "verify.json").read_text())
    assert summary["verdicts"] == [] and summary["protocol"][category]


def test_records_of_protocol_faults_still_reach_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "faulty_subjects_r.py").write_text(FAULTY)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "out"
    assert main(["verify", "faulty_subjects_r:nan", "--examples", "2", "--out", str(out), "--quiet"]) == 1
    records = [Record.from_dict(json.loads(line)) for line in (out / "verify.jsonl").read_text().splitlines()]
    assert {r.category for r in records} == {"nonfinite"}
    page = (out / "verify.html").read_text()
    assert "Protocol faults" in page and "nonfinite" in page
