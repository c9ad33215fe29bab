"""/insights/ in a real Chromium over a month of seeded activity: dave, the
auditor, sees every chart drawn from the same numbers as its table (and those
numbers are the database's), narrows to one profile, downloads a table as CSV,
and axe-core finds no serious accessibility violation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from broker import rollup
from broker.models import AccessRequest
from tests.support.activity import seed_month
from tests.support.browser import SHOTS, accessibility_problems, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROWS = "table => [...table.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))"
CHART_AND_TABLE = f"""canvas => {{
    const chart = Chart.getChart(canvas);
    const table = document.querySelector(`table[data-table="${{canvas.dataset.chart}}"]`);
    const rows = ({ROWS})(table);
    return {{
        drawn: chart !== undefined && canvas.width > 0 && canvas.height > 0,
        labels: chart.data.labels,
        series: chart.data.datasets.map(set => set.data.map(String)),
        columns: [...table.tHead.rows[0].cells].map(cell => cell.textContent.trim()),
        names: chart.data.datasets.map(set => set.label),
        rows,
    }};
}}"""


def test_dave_reads_a_month_of_insights_in_chromium(browser, live_server, people, catalog):
    now = timezone.now()
    seed_month(people, catalog, now)
    rollup.roll_up(now)  # as beat does: the page reads rolled days and today live
    base, page = live_server.url, browser.new_context(accept_downloads=True).new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    sign_in(page, base, "dave")
    page.get_by_role("link", name="Insights").click()
    page.wait_for_url(f"{base}/insights/")
    page.locator("canvas[data-chart]").first.wait_for()
    page.screenshot(path=SHOTS / "insights-month.png", full_page=True)

    canvases = page.locator("canvas[data-chart]")
    assert canvases.count() == 8
    for n in range(canvases.count()):
        shown = canvases.nth(n).evaluate(CHART_AND_TABLE)
        assert shown["drawn"]
        assert shown["labels"] == [row[0] for row in shown["rows"]]
        for name, values in zip(shown["names"], shown["series"], strict=True):
            column = shown["columns"].index(name)
            assert values == [_number(row[column]) for row in shown["rows"]]

    # The tables hold the database's numbers.
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=29)
    asked = AccessRequest.objects.filter(created_at__gte=start).count()
    outcomes = _table(page, "outcomes")
    assert sum(int(cell) for row in outcomes for cell in row[1:]) == asked
    assert _table(page, "top-requesters") == [["alice", str(asked)]]
    assert page.locator("#held-percent").inner_text().endswith("%")
    assert accessibility_problems(page) == []

    # Narrowed to one profile, from the form; its CSV is the table shown.
    page.get_by_label("Profile", exact=True).select_option("test-db-critical")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{base}/insights/?days=30&profile=test-db-critical&group=&channel=")
    profiles = _table(page, "top-profiles")
    critical = AccessRequest.objects.filter(created_at__gte=start, profile__slug="test-db-critical")
    assert profiles == [["test-db-critical", str(critical.count())]]
    with page.expect_download() as download:
        page.locator("#top-profiles").get_by_role("link", name="as CSV").click()
    lines = download.value.path().read_text(encoding="utf-8").splitlines()
    assert lines == ["profile,requests", f"test-db-critical,{critical.count()}"]
    page.screenshot(path=SHOTS / "insights-one-profile.png", full_page=True)
    assert accessibility_problems(page) == []
    assert errors == []


def _table(page, name: str) -> list[list[str]]:
    return page.locator(f'table[data-table="{name}"]').evaluate(ROWS)


def _number(text: str) -> str:
    """A table cell as Chart.js holds the number (5.0 is 5 in JavaScript; no figure is null)."""
    if text == "—":
        return "null"
    return str(int(float(text))) if float(text).is_integer() else text
