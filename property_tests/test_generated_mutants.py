"""The generated-mutant measurement: the corpus bases are right, the generator's operators and labels,
equivalence and kink detection, the judging rule, a small end-to-end run and the CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from oracles.diagnosis.diagnose import diagnose_subject
from oracles.diagnosis.family import Family, family_cases
from oracles.diagnosis.wording import Diagnosis
from oracles.subjects import Subject
from property_tests.check import case_records
from property_tests.mutation import generated
from property_tests.mutation.generator import BASES, ROLES, GeneratedMutant, Site, base_gradients, mutants_of
from property_tests.mutation.judge import verdict
from reports.cli.app import main

OPERATORS = {"binop", "sign", "transpose", "axis", "keepdims", "constant", "index", "drop_term", "swap_args"}


@pytest.mark.parametrize("base", BASES)
def test_each_base_is_right_and_has_no_diagnosis(base: str) -> None:
    subject = Subject(base, base_gradients(base))
    for case in family_cases(Family(), 3, 12):
        assert not any(r.failed for r in case_records(subject, case)), case
    assert diagnose_subject(subject) == []


@pytest.mark.parametrize("base", BASES)
def test_mutants_are_labelled_by_operator_and_location_and_differ_from_the_base(base: str) -> None:
    mutants = mutants_of(base)
    assert len({m.source for m in mutants}) == len(mutants)
    for mutant in mutants[:: max(1, len(mutants) // 25)]:
        site = mutant.site
        assert site.role in ROLES and site.base == base and site.line > 0
        assert site.label.startswith(f"{base}:{site.line}:{site.col} {site.operator} (")
        assert callable(mutant.load())
    assert mutants == mutants_of(base)  # a pure function of the base's source


def test_every_operator_of_the_issue_is_used_and_the_held_out_split_is_large_enough() -> None:
    held_out = [m for base in generated.HELD_OUT for m in mutants_of(base)]
    assert {m.site.operator for m in held_out} >= OPERATORS
    assert len(held_out) >= 400  # ≥ 300 must survive the equivalence filter
    assert set(generated.TUNE).isdisjoint(generated.HELD_OUT) and set(generated.TUNE) | set(generated.HELD_OUT) == set(
        BASES
    )


def _mutant(base: str, operator: str, detail: str, function: str) -> GeneratedMutant:
    found = [
        m for m in mutants_of(base) if (m.site.operator, m.site.detail, m.site.function) == (operator, detail, function)
    ]
    assert found, (operator, detail, function)
    return found[0]


@pytest.fixture(scope="module")
def context() -> generated.Context:
    return generated.Context.build(generated.Settings(examples=6, equivalence_cases=12))


def test_equivalence_kink_and_real_bugs_are_told_apart(context: generated.Context) -> None:
    # relu'(z) = [z >= 0] differs from [z > 0] only at an exact kink: a convention, set aside.
    kink = _mutant("g_loop", "compare", "> → >=", "slope")
    assert kink.site.role == "derivative"
    assert generated.equivalence(kink.load(), context) == "kink"
    # Clipping sigmoid's input at ±1000 instead of ±500 changes nothing in float64.
    same = _mutant("g_loop", "constant", "500.0 → 1000.0", "activate")
    assert generated.equivalence(same.load(), context) == "equivalent"
    bug = _mutant("g_loop", "transpose", "remove .T", "gradients")
    assert generated.equivalence(bug.load(), context) == "different"
    assert generated.failing_cases(Subject("bug", bug.load()), context)


def _finding(key: str, formula: str, kind: str = "defect") -> Diagnosis:
    return Diagnosis(key, 1, formula, "…", 0.9, ("mse",), kind=kind)


@pytest.mark.parametrize(
    ("role", "finding", "expected"),
    [
        ("bias", _finding("bias_axis", "∂L/∂b^[1] = Σ_i δ^[1]_(:,i)"), "right"),
        ("bias", _finding("scale", "∂L/∂W^[1] = δ^[1] (a^[0])ᵀ"), "wrong"),  # the wrong block
        ("weight", _finding("transpose", "∂L/∂W^[2] = δ^[2] (a^[1])ᵀ"), "right"),
        ("output", _finding("convention:half_mse", "mse: …", "convention"), "right"),
        ("output", _finding("sign", "∂L/∂b^[1] = …"), "wrong"),  # δ moves W and b together
        ("derivative", _finding("sign", "δ^[2] = (W^[3])ᵀ δ^[3] ⊙ g'(z^[2])"), "right"),
        ("forward", _finding("activation_derivative", "tanh'(z) = 1 − tanh(z)²"), "wrong"),
        ("recursion", _finding("target_handling", "δ^[L] = …"), "wrong"),
        ("recursion", _finding("protocol:exception", "…", "protocol"), "protocol"),
        ("recursion", _finding("unexplained", "…", "unexplained"), "unexplained"),
    ],
)
def test_the_judging_rule(role: str, finding: Diagnosis, expected: str) -> None:
    site = Site("g_loop", "binop", "+ → -", 1, 0, "f", role)
    assert verdict(site, [finding]) == expected
    assert verdict(site, []) == "none"


def test_a_small_run_summarises_every_mutant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gen"
    argv = ["mutants", "--generated", "--per-base", "3", "--bases", "g_functional,g_loop"]
    code = main([*argv, "--examples", "5", "--equivalence-cases", "6", "--out", str(out)])
    printed = capsys.readouterr().out
    data = json.loads((out / "generated.json").read_text(encoding="utf-8"))
    assert len(data["mutants"]) == 6
    held = data["summary"]["held_out"]
    assert held["generated"] == 3 and held["non_equivalent"] == held["killed"] + held["survived"]
    assert held["killed"] == held["right"] + held["wrong"] + held["protocol"] + held["unexplained"]
    assert "held-out split:" in printed and "diagnosis precision" in printed and "recall" in printed
    assert code == (0 if "targets met" in printed.splitlines()[-1] else 1)
    page = (out / "generated.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "held-out split" in page
    statuses = Counter(r["status"] for r in data["mutants"])
    assert set(statuses) <= {"equivalent", "kink", "killed", "survived", "invalid"}


@pytest.mark.parametrize("argv", [["--per-base", "0"], ["--bases", "g_nothing"], ["--workers", "0"]])
def test_bad_generated_options_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mutants", "--generated", *argv]) == 2
    assert capsys.readouterr().err.startswith("backprop-check: error[usage]:")
