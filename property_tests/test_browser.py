"""The HTML report in a real headless Chromium: loads cleanly, fetches nothing, sorts, filters, expands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reports.campaign import CampaignConfig, run_campaign
from reports.html import write_report

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("browser-report")
    config = CampaignConfig.create(
        seed=1, examples=8, subject="property_tests.mutation.planted:scale_layer1", oracles=("torch_autograd",)
    )
    run_campaign(config, directory)
    return write_report(directory)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (extra: browser)")
    manager = sync_api.sync_playwright()
    playwright = manager.start()
    try:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # no chromium, missing libraries, sandbox trouble: say exactly what
            pytest.skip(f"headless Chromium could not be launched: {exc}")
        yield launched
        launched.close()
    finally:
        playwright.stop()


def test_report_in_headless_chromium(browser: Any, report: Path) -> None:
    context = browser.new_context()
    requests: list[str] = []
    problems: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            problems.append(f"external request: {url}")
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}") if message.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")

    assert "cases disagree" in page.text_content("#summary")
    entries = page.locator("#discrepancies tbody.entry")
    total = entries.count()
    assert total >= 8

    def column(key: str) -> list[str]:
        return page.eval_on_selector_all(
            "#discrepancies tbody.entry", f"bodies => bodies.filter(b => !b.hidden).map(b => b.dataset['{key}'])"
        )

    # sorting: numeric descending, then ascending; text ascending
    page.click("#discrepancies th[data-key=rel]")
    rel = [float(v) for v in column("rel")]
    assert rel == sorted(rel, reverse=True) and rel[0] > rel[-1]
    page.click("#discrepancies th[data-key=rel]")
    rel = [float(v) for v in column("rel")]
    assert rel == sorted(rel)
    page.click("#discrepancies th[data-key=case]")
    page.click("#discrepancies th[data-key=case]")
    assert column("case") == sorted(column("case"))

    # filtering: by verdict, by oracle, by text; the counter follows
    page.select_option("#filter-verdict", "pass")
    verdicts = column("verdict")
    assert verdicts and set(verdicts) == {"pass"}
    assert page.text_content("#shown-count") == str(len(verdicts))
    page.select_option("#filter-verdict", "")
    page.fill("#filter-text", "1-000003")
    assert set(column("case")) == {"1-000003"}
    page.fill("#filter-text", "")
    assert len(column("case")) == total

    # expanding a failing row shows its per-layer picture and the replay command
    page.select_option("#filter-verdict", "fail")
    first = page.locator("#discrepancies tbody.entry:not([hidden])").first
    detail = first.locator("tr.detail")
    assert not detail.is_visible()
    first.locator("tr.row").click()
    assert detail.is_visible()
    assert first.locator("tr.row").get_attribute("aria-expanded") == "true"
    assert detail.locator("svg.heat").first.is_visible()
    assert "backprop-check replay" in detail.locator("pre.replay").text_content()
    assert "first go wrong at layer 1" in detail.text_content()
    first.locator("tr.row").click()
    assert not detail.is_visible()

    assert requests and all(url.startswith("file://") for url in requests), requests
    assert not problems, problems
    context.close()


VERIFY_SUBJECT = """
from property_tests.mutation.catalogue import MUTANTS

bug = MUTANTS["scale_layer1"]
SUPPORTS = {"activations": ["tanh", "identity"], "losses": ["mse"], "max_depth": 2}
"""


@pytest.fixture(scope="module")
def verify_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``verify --out out`` run from a user's folder holding the subject module (not on sys.path)."""
    import os
    import shutil
    import subprocess

    folder = tmp_path_factory.mktemp("verify-page")
    (folder / "browser_verify_subject.py").write_text(VERIFY_SUBJECT, encoding="utf-8")
    script = shutil.which("backprop-check")
    if script is None:
        pytest.skip("the backprop-check console script is not on PATH")
    done = subprocess.run(
        [script, "verify", "browser_verify_subject:bug", "--examples", "4", "--out", "out"],
        cwd=folder,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr
    return folder / "out" / "verify.html"


def test_the_verify_page_leads_with_the_diagnosis_and_its_replay_commands_run(browser: Any, verify_page: Path) -> None:
    import subprocess

    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(verify_page.as_uri())
    page.wait_for_load_state("load")

    header = page.text_content("header") or ""
    assert "Subject browser_verify_subject:bug" in " ".join(header.split())
    assert "?" not in header
    first_section = page.eval_on_selector("main section", "section => section.id")
    assert first_section == "diagnosis"
    diagnosis = page.text_content("#diagnosis") or ""
    assert "FAIL: 4 of 4 cases wrong" in diagnosis and "scale" in diagnosis and "Right formula" in diagnosis
    verdicts = page.eval_on_selector_all(
        "#parameter-verdicts tbody tr", "rows => rows.map(r => r.innerText.split('\\t').slice(0, 2).join(' '))"
    )
    assert "W1 fail" in verdicts and any(v.startswith("W2") for v in verdicts), verdicts
    time_card = page.locator(".card", has_text="time").text_content() or ""
    assert "–" not in time_card and " s" in time_card

    page.select_option("#filter-verdict", "fail")
    first = page.locator("#discrepancies tbody.entry:not([hidden])").first
    case_id = first.get_attribute("data-case")
    first.locator("tr.row").click()
    command = (first.locator("pre.replay").text_content() or "").strip()
    assert command.startswith(f"backprop-check replay {case_id} --subject browser_verify_subject:bug --out out")
    assert not problems, problems
    page.close()

    # The command runs as shown, from where verify ran.
    done = subprocess.run(
        command, shell=True, cwd=verify_page.parent.parent, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 1, done.stderr
    assert f"case {case_id}:" in done.stdout and "DISCREPANCIES FOUND" in done.stdout
    assert "backprop-check: error[" not in done.stderr


def _widest_kill_matrix() -> dict[str, Any]:
    """Every catalogued mutant, every oracle and check, long cells: the widest table the page can get."""
    from oracles.registry import all_oracles
    from property_tests.mutation.catalogue import MUTANTS
    from property_tests.mutation.killmatrix import columns_for

    columns = columns_for(all_oracles())
    spec = {"widths": [8, 8, 8, 8, 8, 8], "activations": ["leaky_relu", "softplus"] * 2 + ["sigmoid"], "loss": "bce"}
    mutants = [
        {
            "name": name,
            "description": mutant.description,
            "expected": mutant.expected,
            "kind": mutant.kind,
            "ok": True,
            "killers": columns[:1],
            "kink_columns": [],
            "cells": {c: {"state": "killed", "case_id": "1-000001", "detail": "x" * 80} for c in columns},
            "smallest": {"spec": spec, "batch": 8},
            "diagnosis": {"status": "correct", "top": "batch_normalisation"},
        }
        for name, mutant in MUTANTS.items()
    ]
    summary = {"bug_total": 30, "bug_killed": 30, "kink_total": 1, "kink_classified": 1}
    summary |= {"diagnosed": 31, "diagnosed_correctly": 31, "ok": True}
    return {"columns": columns, "mutants": mutants, "summary": summary, "cases": [], "seed": 0, "coverage": {}}


def test_the_kill_matrix_and_the_audit_fit_a_1400_pixel_page(browser: Any, tmp_path: Path) -> None:
    """Wide tables scroll inside their section; the page itself never scrolls sideways. Formulas are typeset."""
    import json

    from reports.audit.view import render_page as audit_page
    from reports.html import render_report

    (tmp_path / "mutants.json").write_text(json.dumps(_widest_kill_matrix()))
    audit = {
        "claims": [
            {
                "key": "§3.2",
                "title": "the mean squared error",
                "kind": "formula",
                "quote": "例如，对于均方误差损失函数：\n$$L = \\frac{1}{2} \\sum_{i=1}^{n} (y_i - \\hat{y}_i)^2$$",
                "gloss": "For example, for the mean-squared-error loss.",
                "verdict": "holds under conditions",
                "condition": "n ∈ {2}",
                "oracle": "torch_autograd",
                "readings": [],
                "note": "",
                "correction": "",
            }
        ],
        "counts": {"holds under conditions": 1},
    }
    (tmp_path / "audit.json").write_text(json.dumps(audit, ensure_ascii=False))
    (tmp_path / "report.html").write_text(render_report([], None, tmp_path), encoding="utf-8")
    (tmp_path / "audit.html").write_text(audit_page(audit), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    for name in ("report.html", "audit.html"):
        page.goto((tmp_path / name).as_uri())
        page.wait_for_load_state("load")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1400, name
    assert "$$" not in (page.text_content("body") or "")
    box = page.locator("math").first.bounding_box()
    assert box is not None and box["width"] > 40 and box["height"] > 20  # typeset, not an empty element
    page.close()
