"""Golden fixtures round-trip through a program in another process that only knows numpy and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reports.cli.app import main
from reports.fixtures import SCHEMA_VERSION, check_results, export_fixtures, read_index

# Stands in for a C++/Rust/JS implementation: reads index.json and the .npz cases, computes its own
# backprop (column per example, as the index's layout says), writes RESULTS/<file>.
EXTERNAL_PROGRAM = r"""
import json
import sys
from pathlib import Path

import numpy as np

fixtures, results = Path(sys.argv[1]), Path(sys.argv[2])
results.mkdir(parents=True, exist_ok=True)
index = json.loads((fixtures / "index.json").read_text())
assert index["schema_version"] == 1
ACT = {"tanh": (np.tanh, lambda a: 1 - a * a), "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
       "identity": (lambda z: z, lambda a: np.ones_like(a))}
for entry in index["cases"]:
    data = np.load(fixtures / entry["file"])
    spec = entry["spec"]
    L = len(spec["activations"])
    a = [data["X"]]
    for l, name in enumerate(spec["activations"], start=1):
        a.append(ACT[name][0](data[f"W{l}"] @ a[-1] + data[f"b{l}"]))
    Y, m = data["Y"], data["Y"].shape[1]
    assert spec["loss"] == "mse"
    delta = 2 * (a[L] - Y) / m * ACT[spec["activations"][-1]][1](a[L])
    out = {"loss": np.sum((a[L] - Y) ** 2) / m}
    for l in range(L, 0, -1):
        out[f"grad_W{l}"] = delta @ a[l - 1].T
        out[f"grad_b{l}"] = delta.sum(axis=1, keepdims=True)
        if l > 1:
            delta = (data[f"W{l}"].T @ delta) * ACT[spec["activations"][l - 2]][1](a[l - 1])
    np.savez(results / entry["file"], **out)
"""


def _external(tmp_path: Path, fixtures: Path, results: Path) -> None:
    script = tmp_path / "external_backprop.py"
    script.write_text(EXTERNAL_PROGRAM, encoding="utf-8")
    # -I: isolated mode, so the program cannot reach this project through the working directory.
    subprocess.run([sys.executable, "-I", str(script), str(fixtures), str(results)], check=True, timeout=120)


@pytest.fixture
def exported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    fixtures = tmp_path / "fixtures"
    args = ["fixtures", "export", str(fixtures), "--count", "6", "--seed", "2", "--losses", "mse"]
    args += ["--activations", "tanh", "sigmoid", "identity", "--max-depth", "3"]
    assert main(args) == 0
    assert "wrote 6 cases" in capsys.readouterr().out
    return fixtures


def test_export_writes_versioned_npz_cases_and_an_index(exported: Path) -> None:
    index = read_index(exported)
    assert index["schema_version"] == SCHEMA_VERSION
    assert len(index["cases"]) == 6
    entry = index["cases"][0]
    with np.load(exported / entry["file"]) as data:
        names = set(data.files)
    assert {"X", "Y", "loss"} <= names
    assert {f"grad_{p}" for p in entry["parameters"]} <= names
    assert set(entry["parameters"]) <= names
    assert entry["confirmed_by"] == "torch_autograd"


def test_an_external_program_round_trips_and_passes(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    _external(tmp_path, exported, results)
    assert main(["fixtures", "check", str(exported), str(results)]) == 0
    assert capsys.readouterr().out.strip().endswith("6 of 6 cases right, 0 wrong block(s)")


def test_one_corrupted_value_fails_naming_the_case_and_parameter(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    _external(tmp_path, exported, results)
    entry = read_index(exported)["cases"][3]
    path = results / entry["file"]
    with np.load(path) as data:
        answer = {k: data[k].copy() for k in data.files}
    answer["grad_W1"][0, 0] *= 1.0 + 1e-6
    np.savez(path, **answer)
    assert main(["fixtures", "check", str(exported), str(results)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"FAIL {entry['id']} W1 [mismatch]: worst at [0,0]")
    assert out[-1].startswith("FAIL: 5 of 6 cases right, 1 wrong block(s)")


def test_missing_answers_and_keys_fail_per_case(exported: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    _external(tmp_path, exported, results)
    entries = read_index(exported)["cases"]
    (results / entries[0]["file"]).unlink()
    with np.load(results / entries[1]["file"]) as data:
        kept = {k: data[k] for k in data.files if k != "grad_b1"}
    np.savez(results / entries[1]["file"], **kept)
    failed = [f for f in check_results(exported, results) if not f.passed]
    assert [(f.case_id, f.parameter) for f in failed] == [(entries[0]["id"], None), (entries[1]["id"], "b1")]


def test_an_unknown_schema_version_or_a_changed_fixture_is_an_input_error(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    index_path = exported / "index.json"
    index = json.loads(index_path.read_text())
    index_path.write_text(json.dumps({**index, "schema_version": 99}))
    assert main(["fixtures", "check", str(exported), str(results)]) == 2
    assert "schema version 99" in capsys.readouterr().err
    index_path.write_text(json.dumps(index))
    export_fixtures(tmp_path / "other", 1, seed=9)
    first = exported / index["cases"][0]["file"]
    first.write_bytes((tmp_path / "other" / "fixture-9-0000.npz").read_bytes())
    assert main(["fixtures", "check", str(exported), str(results)]) == 2
    assert "changed since export" in capsys.readouterr().err


def test_fixture_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fixtures", "export", str(tmp_path), "--count", "0"]) == 2
    assert main(["fixtures", "check", str(tmp_path / "nowhere"), str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("backprop-check: error[usage]")
    assert err[1].startswith("backprop-check: error[io]")
