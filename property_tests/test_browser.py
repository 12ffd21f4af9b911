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
