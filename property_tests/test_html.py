from __future__ import annotations

import json
import math
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from oracles.subjects import Subject, reference_subject
from oracles.verdicts.compare import check_case
from property_tests.mutation.catalogue import MUTANTS
from reference_impl.generate import case_from_index
from reports import html as report_html
from reports import plots
from reports.campaign import CampaignConfig, run_campaign
from reports.heatmap import heatmap_svg
from reports.records import Record, read_records

PLANTED = "property_tests.mutation.planted:scale_layer1"


class ResourceCollector(HTMLParser):
    """Every URL-bearing attribute and every tag, to prove the page fetches nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "poster", "data") and value is not None:
                self.urls.append(value)


def records_for(subject: Subject, indices: range, seed: int = 1) -> list[Record]:
    return [r for i in indices for r in check_case(case_from_index(seed, i), subject, ["torch_autograd"])]


def synthetic(case_id: str, oracle: str, verdict: str, rel_err: float, spec: dict[str, object] | None = None) -> Record:
    return Record(
        case_id=case_id,
        case="Case(...)",
        spec=spec or {"widths": [2, 3, 1], "activations": ["tanh", "identity"], "loss": "mse"},
        subject="s",
        oracle=oracle,
        check="gradient",
        verdict=verdict,
        category="mismatch" if verdict == "fail" else None,
        parameter="W1",
        index=[0, 0],
        subject_value=1.0,
        oracle_value=1.0,
        abs_err=rel_err,
        rel_err=rel_err,
        tolerance=1e-12,
    )


def test_report_is_self_contained_and_shows_the_failing_layer(tmp_path: Path) -> None:
    run_campaign(CampaignConfig.create(seed=1, examples=6, subject=PLANTED, oracles=("torch_autograd",)), tmp_path)
    page = report_html.write_report(tmp_path).read_text(encoding="utf-8")
    collector = ResourceCollector()
    collector.feed(page)
    assert all(url.startswith("#") for url in collector.urls), collector.urls
    assert not {"link", "img", "iframe", "object", "embed"} & collector.tags
    assert "http://" not in page.replace("http://www.w3.org/", "") and "https://" not in page
    assert "cases disagree" in page and "∂W/∂b layer 1" in page and "W1 (" in page
    assert "backprop-check replay 1-000000 --subject property_tests.mutation.planted:scale_layer1" in page
    assert page.count('<svg class="heat"') >= 6  # a heatmap per block of a failing record


def test_the_block_table_shows_each_tolerance_and_the_oracle_estimate_behind_it(tmp_path: Path) -> None:
    run_campaign(CampaignConfig.create(seed=1, examples=3, subject=PLANTED, oracles=("richardson",)), tmp_path)
    page = report_html.write_report(tmp_path).read_text(encoding="utf-8")
    record = next(r for r in read_records(tmp_path / "results.jsonl") if r.failed and r.blocks)
    block = record.blocks[record.parameter or ""]
    assert "oracle&#39;s estimate" in page or "oracle's estimate" in page
    assert report_html._fmt(block["estimate"]) in page and report_html._fmt(block["tolerance"]) in page


def test_user_text_is_escaped() -> None:
    case = case_from_index(1, 0)
    hostile = Subject("<script>alert('x')</script>", MUTANTS["bias_sign_flip"].gradients)
    page = report_html.render_report(check_case(case, hostile, ["torch_autograd"]))
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page


def test_only_the_worst_failures_are_embedded_worst_first() -> None:
    records = [synthetic(f"1-{i:06d}", "torch_autograd", "fail", 10.0 ** (-6 + i % 7) * (1 + i)) for i in range(1300)]
    records += [synthetic(f"2-{i:06d}", "torch_autograd", "pass", 1e-15 * (1 + i)) for i in range(40)]
    data = report_html.aggregate(records)
    rows = data.rows()
    failing = [r for r in rows if r.failed]
    assert len(failing) == report_html.MAX_ROWS and len(rows) == report_html.MAX_ROWS + report_html.CLOSEST_PASSES
    ratios = [report_html.ratio_of(r) for r in failing]
    assert ratios == sorted(ratios, reverse=True)
    assert (
        min(ratios)
        >= sorted((report_html.ratio_of(r) for r in records if r.failed), reverse=True)[report_html.MAX_ROWS - 1]
    )
    passing = [r for r in rows if not r.failed]
    assert [r.case_id for r in passing][:2] == ["2-000039", "2-000038"]  # the closest calls lead
    assert data.failed_cases == 1300 and data.failures == 1300


def test_agreement_matrix_counts_same_verdicts_over_shared_cases() -> None:
    records = [
        synthetic("c1", "a", "pass", 0.0),
        synthetic("c1", "b", "pass", 0.0),
        synthetic("c2", "a", "fail", 1.0),
        synthetic("c2", "b", "pass", 0.0),
        synthetic("c3", "a", "fail", 1.0),
    ]
    oracles, matrix = report_html.agreement_matrix(report_html.aggregate(records))
    assert oracles == ["a", "b"]
    assert matrix[0][0]["share"] == pytest.approx(1 / 3)  # a passes 1 of its 3 cases
    assert matrix[1][1]["share"] == 1.0
    assert matrix[0][1]["share"] == matrix[1][0]["share"] == 0.5  # c1 agree, c2 disagree; c3 not shared


def test_log10_relative_maps_exact_and_infinite_errors_to_the_plot_ends() -> None:
    values = plots.log10_relative([0.0, 1e-12, math.inf, math.nan, 1e-30])
    assert values.tolist() == [plots.EXACT_FLOOR, -12.0, plots.INF_CEILING, plots.INF_CEILING, plots.EXACT_FLOOR]


def test_plots_are_static_deterministic_svg() -> None:
    errors = {"torch_autograd": plots.log10_relative(np.geomspace(1e-16, 1e-9, 50))}
    first, second = plots.histogram_svg(errors), plots.histogram_svg(errors)
    assert first == second and first.startswith("<svg") and "<script" not in first and 'href="http' not in first


def test_heatmap_darkest_cell_is_the_largest_difference() -> None:
    svg = str(heatmap_svg("W1", [[1e-16, 1e-3], [0.0, 1e-10]], -16.0, -3.0))
    fills = [part.split('"')[0] for part in svg.split('fill="')[1:]]
    assert fills[1] == "#af2d00" and fills[2] == "#f4f6f8"  # largest |Δ| darkest; exact zero grey
    assert "largest 0.001 at [0,1]" in svg


def test_extra_sections_are_included_when_their_file_and_renderer_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = records_for(reference_subject(), range(2))
    (tmp_path / "audit.json").write_text(json.dumps({"claims": 3}))
    (tmp_path / "mutants.json").write_text(json.dumps({"mutants": 8}))
    audit = types.ModuleType("reports.audit.view")
    audit.render_section = lambda data: f"<p id='audit-fragment'>{data['claims']} claims</p>"  # type: ignore[attr-defined]
    mutation = types.ModuleType("reports.mutation_view")

    def broken(data: dict[str, object]) -> str:
        raise RuntimeError("renderer bug")

    mutation.render_section = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "reports.audit.view", audit)
    monkeypatch.setitem(sys.modules, "reports.mutation_view", mutation)
    page = report_html.render_report(records, None, tmp_path)
    assert "<p id='audit-fragment'>3 claims</p>" in page
    assert "could not render mutants.json: renderer bug" in page
    (tmp_path / "audit.json").unlink()
    (tmp_path / "mutants.json").unlink()
    plain = report_html.render_report(records, None, tmp_path)
    assert "audit-fragment" not in plain and "Mutation kill matrix" not in plain


def test_page_shell_wraps_a_fragment_with_the_shared_style() -> None:
    page = report_html.page("A & B", "<p>body</p>")
    assert page.startswith("<!DOCTYPE html>") and "<title>A &amp; B</title>" in page
    assert "<p>body</p>" in page and "--fail:" in page


def test_fast_file_reader_aggregates_exactly_like_full_records(tmp_path: Path) -> None:
    records = records_for(reference_subject(), range(6)) + records_for(
        Subject("bug", MUTANTS["transpose_W"].gradients), range(6)
    )
    records.append(synthetic("9-000001", "torch_autograd", "pass", math.inf))  # inf travels as the string 'inf'
    path = tmp_path / "results.jsonl"
    path.write_text("".join(r.to_json() + "\n" for r in records) + '{"abs_err": 1.0, "blo')  # torn last line
    fast, full = report_html.aggregate_file(path), report_html.aggregate(records)
    assert any(r.failed for r in records) and any(not r.failed for r in records)
    assert [r.to_json() for r in fast.rows()] == [r.to_json() for r in full.rows()]
    for name in ("records", "verdicts", "log_errors", "case_worst", "case_oracle_failed", "failing_blocks", "cases"):
        assert getattr(fast, name) == getattr(full, name), name
    path.write_text("not json\n" + records[0].to_json() + "\n")
    flagged = report_html.aggregate_file(path)  # a corrupt line is named and skipped, the rest counted
    assert flagged.records == 1 and flagged.corrupt == [f"{path}:1: corrupt line (not JSON)"]
