"""Campaign processes and files under stress: kill -9, SIGTERM with workers (also while they boot), two
writers, corrupt lines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from reports import campaign
from reports.cli.app import main
from reports.records import read_records
from reports.resume import QUARANTINE_FILE

from .test_campaign import assert_every_case_once

ROOT = Path(__file__).resolve().parents[1]
SLOW_RIGHT = """
import time
from reference_impl import gradients as _gradients


def gradients(spec, params, X, Y):
    time.sleep(0.02)
    return _gradients(spec, params, X, Y)
"""


# Says which process called it: the campaign's main process calls it during the early phase (through the
# subject's supervised worker, whose parent is the main process), pool workers afterwards.
CALLER_LOGGING = """
import os
import time
from reference_impl import gradients as _gradients


def gradients(spec, params, X, Y):
    with open(os.environ["CALLER_LOG"], "a") as log:
        log.write(f"{os.getppid()}\\n")
    time.sleep(0.02)
    return _gradients(spec, params, X, Y)
"""


def start_run(out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "reports", "run", "--out", str(out), "--oracles", "torch_autograd", *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_cases(path: Path, count: int, process: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"run ended before {count} cases were written: {process.communicate()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no {count} cases in {path} within {timeout} s: {process.communicate()}")


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def slow_subject(tmp_path: Path) -> tuple[str, dict[str, str]]:
    directory = tmp_path / "subjects"
    directory.mkdir()
    (directory / "safety_slow_right.py").write_text(SLOW_RIGHT, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(directory), env.get("PYTHONPATH", "")])
    return "safety_slow_right:gradients", env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_kill_9_of_run_leaves_no_worker_behind(tmp_path: Path, slow_subject: tuple[str, dict[str, str]]) -> None:
    target, env = slow_subject
    out = tmp_path / "out"
    process = start_run(out, "--subject", target, "--examples", "2000", "--workers", "2", env=env)
    wait_for_cases(out / campaign.RESULTS_FILE, 6, process)
    below = descendants(process.pid)
    assert len(below) >= 4, below  # two pool workers, each with the subject's supervised worker
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in below):
        time.sleep(0.1)
    assert not [pid for pid in below if alive(pid)], "workers outlived a kill -9 of their parent"


def test_sigterm_with_workers_stops_within_seconds_keeping_whole_cases(
    tmp_path: Path, slow_subject: tuple[str, dict[str, str]]
) -> None:
    target, env = slow_subject
    results = tmp_path / campaign.RESULTS_FILE
    process = start_run(tmp_path, "--subject", target, "--examples", "2000", "--workers", "2", env=env)
    wait_for_cases(results, 8, process)
    below = descendants(process.pid) if sys.platform.startswith("linux") else set()
    before = results.read_bytes().count(b"\n")
    start = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    stopped_in = time.monotonic() - start
    assert process.returncode == 130, stderr
    assert stopped_in < 5.0, f"took {stopped_in:.1f} s to stop"
    assert "interrupted" in stderr and "Traceback" not in stderr
    kept = Counter(r.case_id for r in read_records(results))
    assert len(kept) >= before and all(count == 1 for count in kept.values())  # whole cases, each once
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in below):
        time.sleep(0.1)
    survivors = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in below if alive(pid)}
    assert not survivors


def test_sigterm_while_the_workers_boot_stops_cleanly_and_resume_completes(tmp_path: Path) -> None:
    directory = tmp_path / "subjects"
    directory.mkdir()
    (directory / "safety_caller_logging.py").write_text(CALLER_LOGGING, encoding="utf-8")
    log = tmp_path / "callers.txt"
    env = dict(os.environ, CALLER_LOG=str(log))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(directory), env.get("PYTHONPATH", "")])
    out = tmp_path / "out"
    # Every oracle (the light ones included), so the main process starts cases while the workers boot.
    command = [sys.executable, "-m", "reports", "run", "--out", str(out), "--examples", "40", "--workers", "2"]
    command += ["--subject", "safety_caller_logging:gradients"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not (log.exists() and str(process.pid) in log.read_text().split()):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)  # the main process is comparing its first cases
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    results = out / campaign.RESULTS_FILE
    written = Counter(r.case_id for r in read_records(results)) if results.exists() else Counter()
    assert all(count == 1 for count in written.values())  # whole cases only (none, most likely)
    resumed = subprocess.run(
        [*command, "--resume", "--quiet"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_every_case_once(results, 1, 40)


def test_a_second_writer_gets_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--examples", "2", "--oracles", "torch_autograd", "--workers", "1"]
    assert main(["run", "--out", str(tmp_path), *common]) == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom reports.dirlock import exclusive\n"
            f"with exclusive({str(tmp_path)!r}, 'run'):\n    print('held', flush=True)\n    time.sleep(60)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        for argv in (
            ["run", "--out", str(tmp_path), "--resume"],
            ["report", str(tmp_path)],
            ["verify", "reference_impl:gradients", "--examples", "1", "--out", str(tmp_path)],
        ):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("backprop-check: error[busy]:"), err
            assert f"pid {holder.pid}" in err[0]
    finally:
        holder.kill()
        holder.communicate()
    assert main(["run", "--out", str(tmp_path), "--resume"]) == 0  # the lock went with its holder


def test_corrupt_lines_are_named_in_the_report_and_quarantined_by_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / campaign.RESULTS_FILE
    assert (
        main(["run", "--out", str(tmp_path), "--examples", "6", "--oracles", "torch_autograd", "--workers", "1"]) == 0
    )
    lines = results.read_bytes().splitlines(keepends=True)
    assert len(lines) == 6  # one lean line per passing case
    typed = json.loads(lines[3])
    typed["subject"] = 42  # valid JSON, not a record
    damaged = {1: b"not json at all\n", 3: json.dumps(typed).encode() + b"\n", 4: b"\xff\xfe broken bytes\n"}
    results.write_bytes(b"".join(damaged.get(i, line) for i, line in enumerate(lines)))
    capsys.readouterr()

    assert main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    for number in (2, 4, 5):
        assert f"results.jsonl:{number}: corrupt line" in err
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "3 corrupt lines skipped" in page and "3 cases" in page

    assert main(["run", "--out", str(tmp_path), "--resume", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("moved to") == 3 and "Traceback" not in err
    assert (tmp_path / QUARANTINE_FILE).read_bytes() == b"".join(damaged.values())
    per_case = Counter(r.case_id for r in read_records(results))
    assert per_case == {campaign.case_id(1, i): 2 for i in range(6)}  # gradient and δ, each case once
    assert main(["report", str(tmp_path)]) == 0
    assert "corrupt" not in (tmp_path / "report.html").read_text(encoding="utf-8")
