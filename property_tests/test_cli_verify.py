"""``backprop-check verify``: exit codes, diagnosis first, per-parameter verdicts, hostile subjects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from property_tests.mutation.catalogue import MUTANTS
from reports.cli.app import main

FOUNDATION = [
    "transpose_W",
    "missing_1_over_m",
    "bias_wrong_axis",
    "derivative_of_a",
    "missing_output_derivative",
    "scale_layer1",
    "bias_sign_flip",
    "float32_layer1",
]

SUBJECTS = '''
import sys
import time

import numpy as np

from property_tests.mutation.catalogue import MUTANTS
from reference_impl import gradients

for _name, _mutant in MUTANTS.items():
    globals()[_name] = _mutant


def half_for_mse(spec, params, X, Y):
    """Right, but differentiates half_sse whenever mse is asked."""
    return gradients({**spec, "loss": "half_sse"} if spec["loss"] == "mse" else spec, params, X, Y)


def half_and_scaled(spec, params, X, Y):
    """The half_sse convention *and* a real bug: ∂L/∂W^[1] off by 1e-6."""
    grads = half_for_mse(spec, params, X, Y)
    return {**grads, "W1": grads["W1"] * (1 + 1e-6)}


def raises(spec, params, X, Y):
    raise KeyError("W0")


def nan(spec, params, X, Y):
    return {k: v * np.nan for k, v in gradients(spec, params, X, Y).items()}


def wrong_keys(spec, params, X, Y):
    return {k.lower(): v for k, v in gradients(spec, params, X, Y).items()}


def wrong_shape(spec, params, X, Y):
    return {k: v.ravel() for k, v in gradients(spec, params, X, Y).items()}


def wrong_dtype(spec, params, X, Y):
    return {k: v.astype(complex) for k, v in gradients(spec, params, X, Y).items()}


def scalar(spec, params, X, Y):
    return {k: float(v.sum()) if k.startswith("b") else v for k, v in gradients(spec, params, X, Y).items()}


def mutates(spec, params, X, Y):
    grads = gradients(spec, params, X, Y)
    Y[...] = 0.0
    return grads


_calls = [0]


def nondeterministic(spec, params, X, Y):
    _calls[0] += 1
    return {k: v * (1 + 1e-3 * _calls[0]) for k, v in gradients(spec, params, X, Y).items()}


def hangs(spec, params, X, Y):
    while True:
        time.sleep(0.01)


def exits(spec, params, X, Y):
    sys.exit("bye")


SUPPORTS = {"activations": ["tanh", "sigmoid", "identity", "softmax"], "max_depth": 3}
'''

HOSTILE = [
    ("raises", "exception"),
    ("nan", "nonfinite"),
    ("wrong_keys", "missing"),
    ("wrong_shape", "shape"),
    ("wrong_dtype", "dtype"),
    ("scalar", "shape"),
    ("mutates", "mutation"),
    ("nondeterministic", "nondeterminism"),
    ("exits", "exception"),
]


@pytest.fixture
def subjects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "verify_demo_subjects.py").write_text(SUBJECTS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "verify_demo_subjects"


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["verify", *args])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_the_reference_passes_with_exit_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, lines, _ = _verify(capsys, "reference_impl:gradients", "--examples", "12", "--out", str(tmp_path / "o"))
    assert code == 0
    assert lines[0].startswith("diagnosis: none needed: all 12 cases agree")
    assert "verdict per parameter:" in lines
    assert any(line.split()[:2] == ["W1", "pass"] for line in lines)
    records = (tmp_path / "o" / "verify.jsonl").read_text().splitlines()
    assert len(records) >= 12
    summary = json.loads((tmp_path / "o" / "verify.json").read_text())
    assert summary["failing_cases"] == []


@pytest.mark.parametrize("name", FOUNDATION)
def test_each_planted_bug_exits_1_with_its_diagnosis_first(
    capsys: pytest.CaptureFixture[str], subjects: str, name: str
) -> None:
    code, lines, _ = _verify(capsys, f"{subjects}:{name}", "--examples", "8", "--seed", "1")
    assert code == 1
    assert lines[0].startswith(f"diagnosis: {MUTANTS[name].expected} "), lines[0]
    wrong_block = any(line.strip().startswith(("W", "b")) and "FAIL" in line for line in lines)
    assert wrong_block or any(line.startswith("protocol [") for line in lines)


def test_a_half_sse_subject_asked_for_mse_is_named_a_convention_and_passes_once_declared(
    capsys: pytest.CaptureFixture[str], subjects: str
) -> None:
    code, lines, _ = _verify(capsys, f"{subjects}:half_for_mse", "--examples", "10", "--losses", "mse")
    assert code == 1
    assert lines[0].startswith("diagnosis: convention:half_sse")
    assert "--convention half_sse" in lines[0]
    code, lines, _ = _verify(
        capsys, f"{subjects}:half_for_mse", "--examples", "10", "--losses", "mse", "--convention", "half_sse"
    )
    assert code == 0, lines


def test_a_declared_convention_leaves_the_real_bug_to_the_diagnosis(
    capsys: pytest.CaptureFixture[str], subjects: str, tmp_path: Path
) -> None:
    args = [f"{subjects}:half_and_scaled", "--examples", "6", "--losses", "mse", "--convention", "half_sse"]
    code, lines, _ = _verify(capsys, *args, "--out", str(tmp_path))
    assert code == 1
    assert lines[0].startswith("diagnosis: scale (layer 1)")
    records = [json.loads(line) for line in (tmp_path / "verify.jsonl").read_text().splitlines()]
    assert all(r["extra"]["convention"]["name"] == "half_sse" for r in records if r["check"] == "gradient")
    html = tmp_path / "verify.html"
    assert html.is_file()


@pytest.mark.parametrize(("name", "category"), HOSTILE)
def test_each_hostile_subject_gets_its_category_and_the_run_completes(
    capsys: pytest.CaptureFixture[str], subjects: str, name: str, category: str
) -> None:
    code, lines, err = _verify(capsys, f"{subjects}:{name}", "--examples", "3", "--losses", "mse")
    assert code == 1
    assert any(line.startswith(f"protocol [{category}]: 3 case(s)") for line in lines), lines
    assert lines[-2].startswith("FAIL: 3 of 3 cases wrong") or lines[-1].startswith("first failing case")
    assert err == ""


def test_a_hanging_subject_times_out_and_every_case_still_runs(
    capsys: pytest.CaptureFixture[str], subjects: str
) -> None:
    code, lines, _ = _verify(capsys, f"{subjects}:hangs", "--examples", "2", "--losses", "mse", "--timeout", "0.3")
    assert code == 1
    assert lines[0].startswith("diagnosis: protocol:timeout")
    assert "protocol [timeout]: 2 case(s), first verify-0-0000" in lines


@pytest.mark.parametrize(
    ("args", "category"),
    [
        (["no_such_module_q:f"], "import"),
        (["reference_impl:nothing_here"], "import"),
        (["reference_impl:gradients", "--examples", "0"], "usage"),
        (["reference_impl:gradients", "--timeout", "-1"], "usage"),
        (["reference_impl:gradients", "--convention", "cubic"], "usage"),
        (["reference_impl:gradients", "--losses", "bce", "--convention", "half_sse"], "usage"),
        (["reference_impl:gradients", "--activations", "swish"], "input"),
        (["reference_impl:gradients", "--oracle", "astrology"], "usage"),
    ],
)
def test_usage_errors_are_one_categorised_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], category: str
) -> None:
    code = main(["verify", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"backprop-check: error[{category}]:")
    assert len(err.strip().splitlines()) == 1


def test_supports_restricts_generation(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, lines, _ = _verify(capsys, "oracles.adapters.article:gradients", "--examples", "6", "--out", str(tmp_path))
    assert code == 1
    records = [json.loads(line) for line in (tmp_path / "verify.jsonl").read_text().splitlines()]
    assert {tuple(r["spec"]["activations"]) for r in records} == {("sigmoid",)}
    assert lines[0].startswith("diagnosis: bias_axis (layer 1)")
