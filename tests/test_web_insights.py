"""/insights/ on the web: who may look (the security role, auditors, admins;
everyone else gets 404), the page's sections and chart data, bad filters named
with a 400, CSV downloads safe for spreadsheets, and a flat number of queries."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.support.activity import past_alert, past_grant, past_request

SECTIONS = [
    "privilege",
    "outcomes",
    "approval-latency",
    "revocation-lag",
    "provider-errors",
    "anomalies",
    "top-requesters",
    "top-profiles",
    "open-reviews",
]


@pytest.fixture
def recent(people, catalog):
    now = timezone.now()
    granted = past_request(
        catalog["test-db"], people.alice, now - timedelta(hours=3), approver=people.bob
    )
    past_grant(granted, now - timedelta(hours=3), ended=now - timedelta(hours=2))
    past_alert("high_risk", now - timedelta(hours=1), user="alice", profile="test-db")
    return granted


@pytest.mark.parametrize("name", ["alice", "bob", "charlie"])
def test_requesters_approvers_and_outsiders_get_404(client, people, name):
    client.force_login(getattr(people, name))
    assert client.get("/insights/").status_code == 404
    assert client.get("/insights/outcomes.csv").status_code == 404
    assert b"Insights" not in client.get("/").content


def test_signed_out_is_sent_to_sign_in(client, db):
    assert client.get("/insights/").url.startswith("/login/")


@pytest.mark.parametrize("name", ["carol", "dave", "admin"])
def test_security_auditors_and_admins_see_every_section(client, people, recent, name):
    client.force_login(getattr(people, name))
    page = client.get("/insights/")
    assert page.status_code == 200
    html = page.content.decode()
    for section in SECTIONS:
        assert f'id="{section}"' in html
        assert f"/insights/{section}.csv?days=30" in html
    charts = page.context["charts"]
    assert set(charts) == set(SECTIONS) - {"open-reviews"}  # a list, not a chart
    assert charts["top-requesters"] == {
        "type": "bar",
        "labels": ["alice"],
        "series": [{"name": "requests", "values": [1]}],
    }
    assert 'id="insights-charts" type="application/json"' in html
    assert "vendor/chart.umd.min.js" in html and "insights.js" in html
    assert '<a href="/insights/">Insights</a>' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("days=365", "the period is 7, 30, 90 days; not &#x27;365&#x27;"),
        ("profile=%3Cscript%3E", "no profile is named &#x27;&lt;script&gt;&#x27;"),
        ("channel=system", "the channel is one of web, slack, api, cli"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(client, people, catalog, query, message):
    client.force_login(people.dave)
    page = client.get(f"/insights/?{query}")
    assert page.status_code == 400
    assert message in page.content.decode()
    assert "<script>" not in page.content.decode().split("<main")[1]
    assert client.get(f"/insights/outcomes.csv?{query}").status_code == 400


def test_each_table_downloads_as_csv_in_the_slice(client, people, recent):
    client.force_login(people.dave)
    response = client.get("/insights/top-profiles.csv?days=7&channel=web")
    assert response["Content-Type"] == "text/csv"
    assert 'filename="airlock-top-profiles-' in response["Content-Disposition"]
    assert b"".join(response.streaming_content).decode() == "profile,requests\r\ntest-db,1\r\n"
    empty = client.get("/insights/top-profiles.csv?channel=cli")
    assert b"".join(empty.streaming_content).decode() == "profile,requests\r\n"
    assert client.get("/insights/nothing.csv").status_code == 404


def test_a_username_a_spreadsheet_would_run_is_neutralised(client, people, catalog):
    hostile = get_user_model().objects.create_user("=HYPERLINK(1)")
    past_request(catalog["test-db"], hostile, timezone.now() - timedelta(hours=1))
    client.force_login(people.dave)
    lines = b"".join(client.get("/insights/top-requesters.csv").streaming_content).decode()
    assert lines.splitlines()[1] == "'=HYPERLINK(1),1"


def test_the_number_of_queries_does_not_grow_with_the_rows(client, people, catalog):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/insights/?days=90").status_code == 200
        return len(captured)

    client.force_login(people.dave)
    now = timezone.now()
    few = queries()
    for n in range(60):
        created = now - timedelta(days=n % 80, hours=n % 5)
        granted = past_request(catalog["test-db"], people.alice, created, approver=people.bob)
        past_grant(granted, created, ended=created + timedelta(hours=1, seconds=n))
        past_alert(f"kind{n % 4}", created, user="alice")
    assert queries() == few


def test_a_hostile_username_is_shown_as_text(client, people, catalog):
    hostile = get_user_model().objects.create_user('<img src=x onerror="alert(1)">')
    past_request(catalog["test-db"], hostile, timezone.now() - timedelta(hours=1))
    client.force_login(people.dave)
    html = client.get("/insights/").content.decode()
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "<img src=x" not in html
