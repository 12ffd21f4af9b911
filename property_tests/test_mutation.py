"""The kill matrix, kink classification, false positives and the report section."""

from __future__ import annotations

import builtins
import json
from typing import Any

import numpy as np
import pytest

from oracles.registry import all_oracles
from oracles.subjects import Subject, reference_subject
from oracles.verdicts.compare import check_case
from property_tests.mutation import false_positives
from property_tests.mutation import killmatrix as mutation
from property_tests.mutation.catalogue import MUTANTS, Mutant
from property_tests.mutation.false_positives import false_positive_campaign
from property_tests.mutation.killmatrix import CURATED, compute_matrix, smallest_exposing_case
from property_tests.mutation.kinks import classify_kink, kink_sites, kink_variants
from property_tests.mutation.outcomes import KILLED, KINK, NOT_APPLICABLE, SURVIVED, CaseContext, run_case
from reference_impl import Case, Spec
from reports.mutation_view import render_section

KINK_CASE = Case(Spec((3, 4, 2), ("relu", "identity"), "mse"), batch=3, seed=5, kinks=True)
# Its name matches no mutation: the copy behaves exactly like the reference, so nothing can kill it.
NO_OP = Mutant("no_op_copy", "an unmutated copy, planted to prove that survivors are reported", "none")


@pytest.fixture(scope="module")
def matrix() -> dict[str, mutation.MutantResult]:
    results = compute_matrix([*MUTANTS.values(), NO_OP], CURATED, all_oracles())
    return {r.mutant.name: r for r in results}


def test_every_bug_mutant_is_killed_on_the_curated_cases(matrix: dict[str, mutation.MutantResult]) -> None:
    survivors = [name for name, r in matrix.items() if r.mutant.kind == "bug" and name != NO_OP.name and not r.ok]
    assert survivors == []


def test_the_relu_convention_is_classified_as_a_kink_and_killed_nowhere(
    matrix: dict[str, mutation.MutantResult],
) -> None:
    result = matrix["relu_prime_at_zero_one"]
    assert result.ok and not result.killers
    assert result.cells["torch_autograd"].state == KINK


def test_an_unmutated_copy_survives_every_column(matrix: dict[str, mutation.MutantResult]) -> None:
    result = matrix[NO_OP.name]
    assert not result.ok and result.killers == []
    # Numeric oracles bracket kink entries: the reference itself gets kink verdicts there.
    assert {cell.state for cell in result.cells.values()} <= {SURVIVED, KINK, NOT_APPLICABLE}
    assert result.cells["torch_autograd"].state == SURVIVED


def test_protocol_bugs_are_killed_by_their_own_checks(matrix: dict[str, mutation.MutantResult]) -> None:
    assert matrix["mutates_inputs"].cells["input_mutation"].state == KILLED
    assert matrix["accumulates_across_calls"].cells["repeatability"].state == KILLED
    assert matrix["bias_no_keepdims"].cells["protocol"].state == KILLED
    assert matrix["transposed_gradient_buffer"].killers == ["protocol"]
    # Only the warm-up call makes a memoised forward pass visible to the oracles.
    assert "torch_autograd" in matrix["stale_forward"].killers


def test_a_one_entry_scale_of_1e_minus_9_is_killed_by_the_precise_oracle_only(
    matrix: dict[str, mutation.MutantResult],
) -> None:
    cells = matrix["scale_one_entry"].cells
    assert cells["torch_autograd"].state == KILLED
    if "finite_diff" in cells:  # central differences cannot resolve 1e-9
        assert cells["finite_diff"].state != KILLED


def test_kink_classification_needs_the_mismatch_to_be_a_slope_choice_at_an_exact_kink() -> None:
    assert KINK_CASE.problem.kink_sites
    variants = kink_variants(KINK_CASE)
    assert len(variants) == 2 ** len(kink_sites(KINK_CASE))
    for name, expected in [("relu_prime_at_zero_one", "kink"), ("scale_layer1", "fail"), ("transpose_W", "fail")]:
        mutant = MUTANTS[name]
        records = [
            r
            for r in check_case(KINK_CASE, Subject(name, mutant.gradients), ["torch_autograd"])
            if r.check == "gradient"
        ]
        if expected == "fail" and not records:  # a protocol failure: nothing to classify
            continue
        assert records[0].failed, name
        grads, deltas = mutant.backward(KINK_CASE.spec, *KINK_CASE.arrays())
        assert classify_kink(records[0], grads, deltas, variants) == expected, name


def test_no_kink_sites_means_no_kink_verdict() -> None:
    case = Case(Spec((3, 4, 2), ("tanh", "identity"), "mse"), batch=3, seed=5, kinks=True)
    assert kink_variants(case) == []


def test_a_single_case_run_reports_every_column() -> None:
    oracles = all_oracles()
    outcomes = run_case(MUTANTS["output_delta_sign"], CaseContext.build(CURATED[0], oracles))
    assert set(outcomes) == set(mutation.columns_for(oracles))
    assert outcomes["torch_autograd"].state == KILLED
    assert outcomes["protocol"].state == SURVIVED


def test_shrinking_finds_the_smallest_non_square_network_for_the_transposed_buffer() -> None:
    smallest = smallest_exposing_case(MUTANTS["transposed_gradient_buffer"], "protocol", KILLED, {}, 60)
    assert smallest is not None
    assert smallest.spec.depth == 1 and smallest.spec.widths[0] != smallest.spec.widths[1]
    assert smallest.spec.n_parameters <= 4


def test_diagnosis_is_not_applicable_until_the_diagnoser_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_diagnoser(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "oracles.diagnosis.diagnose":
            raise ModuleNotFoundError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(mutation.importlib, "import_module", lambda name: no_diagnoser(name))
    assert mutation.diagnose(MUTANTS["output_delta_sign"], 0)["status"] == NOT_APPLICABLE


def test_the_reference_gives_no_false_positive_over_a_ci_sized_campaign() -> None:
    result = false_positive_campaign(200, seed=3)
    assert result.n_comparisons >= 200
    assert [r.summary() for r in result.failures] == []
    assert result.raw_failures >= 0 and result.kinks <= result.raw_failures + result.n_comparisons


def test_a_false_positive_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    def off_by_a_little(spec: dict, params: dict, X: np.ndarray, Y: np.ndarray) -> dict:
        grads = reference_subject().gradients(spec, params, X, Y)
        return {k: v * (1 + 1e-8) for k, v in grads.items()}

    monkeypatch.setattr(false_positives, "reference_subject", lambda: Subject("perturbed", off_by_a_little))
    result = false_positive_campaign(3, seed=3, oracle_names=["torch_autograd"])
    assert len(result.failures) == 3


def _data(name: str = "scale_layer1", description: str = "d") -> dict[str, Any]:
    return {
        "columns": ["torch_autograd", "protocol"],
        "seed": 0,
        "cases": [],
        "summary": {"bug_total": 1, "bug_killed": 1, "kink_total": 0, "kink_classified": 0, "ok": True},
        "coverage": {"n_cases": 8, "uncovered": []},
        "mutants": [
            {
                "name": name,
                "description": description,
                "expected": "scale",
                "kind": "bug",
                "ok": True,
                "cells": {
                    "torch_autograd": {"state": "killed", "case_id": "c<1>", "detail": 'a "quote" & <b>'},
                    "protocol": {"state": "survived", "case_id": None, "detail": ""},
                },
                "smallest": None,
                "diagnosis": {"status": "n/a"},
            }
        ],
    }


def test_the_report_section_is_escaped_and_self_contained() -> None:
    section = render_section(_data("<script>alert(1)</script>", "<img src=x onerror=alert(1)>"))
    assert "<script" not in section and "<img" not in section
    assert "&lt;script&gt;" in section and "&lt;img" in section
    assert 'title="c&lt;1&gt; a &quot;quote&quot; &amp; &lt;b&gt;"' in section
    assert "http" not in section and "src=" not in section.replace("src=x", "")
    assert "killed 1/1 bug mutants (100.0 %)" in section


def test_the_json_view_round_trips() -> None:
    run = mutation.MatrixRun(
        results=[], cases=list(CURATED[:1]), columns=["torch_autograd"], seed=0, examples=0, elapsed=0.0, coverage={}
    )
    data = json.loads(json.dumps(run.to_dict()))
    assert data["summary"]["ok"] and data["cases"][0]["case_id"] == CURATED[0].id


def test_the_protocol_checks_work_without_the_subjects_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    from oracles import subjects

    monkeypatch.delattr(subjects, "invoke", raising=False)
    context = CaseContext.build(CURATED[2], {})
    columns = ["input_mutation", "repeatability", "protocol"]
    assert run_case(MUTANTS["mutates_inputs"], context, columns)["input_mutation"].state == KILLED
    assert run_case(MUTANTS["accumulates_across_calls"], context, columns)["repeatability"].state == KILLED
    assert run_case(MUTANTS["bias_no_keepdims"], context, columns)["protocol"].state == KILLED
    clean = run_case(MUTANTS["scale_layer1"], context, columns)
    assert {o.state for o in clean.values()} == {SURVIVED}
