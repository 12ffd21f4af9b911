"""The audit machinery: comparisons, verdict rules, condition search, shrinking, JSON/HTML and the CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

from reference_impl.spec import Spec
from reports.audit.core import (
    AMBIGUOUS,
    CONDITIONS,
    HOLDS,
    SCHEMA,
    SCHEMA_VERSION,
    WRONG,
    Claim,
    Instance,
    Outcome,
    Reading,
    ReadingResult,
    Setting,
    claim_verdict,
    compare,
    describe_conditions,
    evaluate_claim,
    run_audit,
    run_check,
    setting,
)
from reports.audit.instances import networks
from reports.audit.view import render_page, render_section
from reports.cli.app import main


def test_compare_needs_the_exact_shape_and_the_oracle_tolerance() -> None:
    oracle = np.array([[1.0], [2.0]])
    assert compare(oracle * (1 + 1e-14), oracle).holds
    assert not compare(oracle * (1 + 1e-9), oracle).holds
    shape = compare(oracle.ravel(), oracle)
    assert not shape.holds and "shape (2,)" in shape.note
    assert not compare(np.array([[np.nan], [2.0]]), oracle).holds


def test_an_encoding_that_raises_or_warns_has_failed_and_says_why() -> None:
    instance = _instance()

    def raises(_: Instance) -> Outcome:
        return compare(np.dot(np.ones((2, 3)), np.ones((2, 3))), 0.0)

    def warns(_: Instance) -> Outcome:
        warnings.warn("overflow somewhere", RuntimeWarning, stacklevel=1)
        return Outcome(True)

    failed = run_check(raises, instance)
    assert not failed.holds and failed.note.startswith("ValueError")
    assert "RuntimeWarning: overflow somewhere" in run_check(warns, instance).note


def _p(**dims: object) -> Setting:
    return setting(**dims)


def test_conditions_are_the_simplest_description_that_separates() -> None:
    grid = [_p(loss=loss, m=m) for loss in ("bce", "mse", "half_sse") for m in ("1", ">1")]
    bce = [p for p in grid if dict(p)["loss"] == "bce"]
    assert describe_conditions(bce, [p for p in grid if p not in bce]) == "loss ∈ {bce}"
    not_mse = [p for p in grid if dict(p)["loss"] != "mse"]
    assert describe_conditions(not_mse, [p for p in grid if p not in not_mse]) == "loss ∉ {mse}"
    corner = [_p(loss="bce", m="1")]
    assert describe_conditions(corner, [p for p in grid if p not in corner]) == "(loss, m) ∈ {(bce, 1)}"
    assert describe_conditions(grid, []) == "everywhere tried"
    assert describe_conditions([], grid) == "nowhere tried"
    steps = [_p(eta=eta, loss=loss) for eta in ("0.1", "1", "10") for loss in ("bce", "mse")]
    small = [p for p in steps if dict(p)["eta"] == "0.1" or p == _p(eta="1", loss="bce")]
    assert (
        describe_conditions(small, [p for p in steps if p not in small]) == "eta ∈ {0.1}, or (eta, loss) ∈ {(1, bce)}"
    )
    three = [_p(a=a, b=b, c=c) for a in "xy" for b in "xy" for c in "xy"]
    parity = [p for p in three if sum(v == "x" for _, v in p) % 2 == 0]
    assert describe_conditions(parity, [p for p in three if p not in parity]).startswith("only in: ")


def _result(verdict: str, literal: bool = True, name: str = "r") -> ReadingResult:
    return ReadingResult(name, "", literal, verdict, "loss ∈ {bce}" if verdict == CONDITIONS else "", [], [], 1)


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([HOLDS], HOLDS),
        ([WRONG], WRONG),
        ([CONDITIONS], CONDITIONS),
        ([HOLDS, HOLDS], HOLDS),
        ([WRONG, WRONG], WRONG),
        ([HOLDS, WRONG], AMBIGUOUS),
        ([HOLDS, CONDITIONS], AMBIGUOUS),
    ],
)
def test_literal_readings_decide_the_verdict(verdicts: list[str], expected: str) -> None:
    readings = [_result(v, name=f"r{k}") for k, v in enumerate(verdicts)]
    assert claim_verdict(readings)[0] == expected
    # A reading of what the text presumably means is reported but never changes the verdict.
    assert claim_verdict([*readings, _result(WRONG if expected == HOLDS else HOLDS, literal=False)])[0] == expected


def _instance() -> Instance:
    spec = Spec((1, 1), ("identity",), "mse")
    return Instance((), spec, {"W1": np.ones((1, 1)), "b1": np.zeros((1, 1))}, np.ones((1, 1)), np.ones((1, 1)))


def _threshold_claim(limit: float) -> Claim:
    """ "Every weight is at most ``limit``": it fails exactly where a weight above it can be drawn."""

    def instances(point: Setting) -> st.SearchStrategy[Instance]:
        return networks(point, activations=st.just(("tanh",)), loss="mse", shape=dict(point)["shape"])

    def check(instance: Instance) -> Outcome:
        biggest = float(instance.params["W1"].max())
        return Outcome(biggest <= limit, biggest, limit)

    return Claim(
        key="§test",
        title="weights are small",
        quote="w ≤ limit",
        gloss="",
        kind="formula",
        settings=(setting(shape="scalar"), setting(shape="square")),
        instances=instances,
        readings=(Reading("max(W) ≤ limit", "W.max() <= limit", check),),
        correction="weights can be large",
    )


def test_a_failing_claim_gets_a_shrunk_minimal_counterexample() -> None:
    result = evaluate_claim(_threshold_claim(0.5), examples=20)
    assert result.verdict == WRONG and result.correction == "weights can be large"
    example = result.readings[0].counterexample
    assert example is not None and example["shrunk"]
    # Minimal: the smallest network, the single weight exactly the first lattice value above the limit.
    assert example["spec"]["widths"] == [1, 1]
    assert example["params"]["W1"] == [[1.0]] and example["claimed"] == 1.0


def test_a_claim_that_holds_has_no_counterexample_and_no_correction() -> None:
    result = evaluate_claim(_threshold_claim(1.0), examples=5)
    assert result.verdict == HOLDS and result.correction == ""
    assert result.readings[0].counterexample is None
    assert result.readings[0].instances == 10


def test_json_document_and_html_escape_everything(tmp_path: Path) -> None:
    hostile = _threshold_claim(0.5)
    hostile = Claim(**{**hostile.__dict__, "quote": "<script>alert(1)</script>", "correction": "<b>&</b>"})
    data = run_audit([hostile, _threshold_claim(1.0)], examples=3)
    assert data["schema"] == SCHEMA and data["schema_version"] == SCHEMA_VERSION
    assert data["counts"] == {HOLDS: 1, CONDITIONS: 0, WRONG: 1, AMBIGUOUS: 0}
    json.dumps(data)  # plain JSON all the way down
    fragment = render_section(data)
    assert "<script>alert" not in fragment and "&lt;script&gt;alert(1)&lt;/script&gt;" in fragment
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in fragment
    assert fragment.count("<details>") == 1  # only the wrong claim expands
    assert 'class="badge wrong"' in fragment and 'class="badge holds"' in fragment
    page = render_page(data)
    assert page.lstrip().lower().startswith("<!doctype html") and fragment in page
    assert "http://" not in page and "https://" not in page


def test_cli_audit_prints_one_line_per_claim_and_writes_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "audit"
    assert main(["audit", "--out", str(out), "--only", "§5.2 d", "--examples", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    data = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert [c["key"] for c in data["claims"]] == ["§5.2 dz", "§5.2 dW", "§5.2 db"]
    assert len(lines) == 3 and all(line.startswith(c["key"]) for line, c in zip(lines, data["claims"], strict=True))
    assert all(c["verdict"] in line for line, c in zip(lines, data["claims"], strict=True))
    assert "<table>" in (out / "audit.html").read_text(encoding="utf-8")
    assert [u["key"] for u in data["unchecked"]] == ["§2.1", "§2.2", "§2.3"]


@pytest.mark.parametrize(
    ("argv", "category"),
    [
        (["audit", "--examples", "0"], "usage"),
        (["audit", "--only", "§9"], "usage"),
    ],
)
def test_cli_audit_bad_input_is_one_line_and_exit_2(
    argv: list[str], category: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"backprop-check: error[{category}]:")


def test_cli_audit_refuses_a_file_as_output_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("not a directory", encoding="utf-8")
    assert main(["audit", "--out", str(target), "--only", "§5.2 (run)"]) == 2
    assert "error[io]" in capsys.readouterr().err


def test_the_standalone_page_has_its_own_shell_when_the_report_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import reports.html

    data = run_audit([_threshold_claim(1.0)], examples=2)
    monkeypatch.delattr(reports.html, "page")
    page = render_page(data)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert render_section(data) in page


def test_non_finite_numbers_stay_visible_in_json() -> None:
    from reports.audit.core import counterexample_json

    example = counterexample_json(_instance(), Outcome(False, np.array([np.inf, 1.0]), np.nan, "overflow"))
    assert example["claimed"] == ["inf", 1.0] and example["oracle"] == "nan"
    json.dumps(example)
    ragged = counterexample_json(_instance(), Outcome(False, [np.ones((2, 1)), np.ones((1, 3))], None))
    assert ragged["claimed"] == [[[1.0], [1.0]], [[1.0, 1.0, 1.0]]]
