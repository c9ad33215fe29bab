"""Auditor pages: the log with filters, chain verification, CSV export."""

import csv
import io

import pytest

from audit.models import AuditEvent


@pytest.fixture
def events(people, submit):
    submit(people.alice, reason='=HYPERLINK("http://evil")')
    return AuditEvent.objects.all()


@pytest.mark.parametrize(
    ("who", "status"), [("dave", 200), ("admin", 200), ("bob", 403), ("charlie", 403)]
)
def test_only_auditors_see_the_log(client, people, events, who, status):
    client.force_login(getattr(people, who))
    assert client.get("/audit/").status_code == status
    assert client.get("/audit/export/?format=csv").status_code == status
    assert client.post("/audit/verify/").status_code in {status, 302}


def test_filters(client, people, events):
    client.force_login(people.dave)
    page = client.get("/audit/?actor=alice&action=request.").content.decode()
    assert "request.submitted" in page and "catalog.synced" not in page
    page = client.get("/audit/?profile=other-db").content.decode()
    assert "No events match" in page
    page = client.get("/audit/?source=web&since=2000-01-01&until=2999-12-31").content.decode()
    assert "request.submitted" in page
    response = client.get("/audit/?since=last-week")
    assert response.status_code == 400 and b"is not a date" in response.content
    assert client.get("/audit/?source=carrier-pigeon").status_code == 400


def test_verify_button_reports_the_chain(client, people, events):
    client.force_login(people.dave)
    response = client.post("/audit/verify/", follow=True)
    assert b"Audit chain intact" in response.content


def test_csv_export_is_complete_neutralised_and_audited(client, people, events):
    client.force_login(people.dave)
    count = AuditEvent.objects.count()
    response = client.get("/audit/export/?format=csv&actor=alice")
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["request.submitted"]
    submitted = next(r for r in rows if r["action"] == "request.submitted")
    assert submitted["reason"].startswith("'=HYPERLINK")  # no formula in a spreadsheet
    assert len(submitted["hash"]) == 64
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.actor == "dave" and exported.data["filters"] == {"actor": "alice"}
    assert AuditEvent.objects.count() == count + 1


def test_targets_link_to_their_request_and_long_reasons_wrap(client, people, events):
    client.force_login(people.dave)
    page = client.get("/audit/?action=request.").content.decode()
    request_id = AuditEvent.objects.filter(action="request.submitted").get().target_id
    assert f'<a href="/requests/{request_id}/" title="{request_id}">request ' in page
    assert '<td class="nowrap">' in page and '<td class="wrap">' in page
    assert '<main class="wide">' in page
