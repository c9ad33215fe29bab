"""Request pages: the form, who sees a request, deciding and cancelling on the web."""

import pytest

from audit.models import AuditEvent
from broker.models import AccessRequest, Grant


def test_the_form_lists_only_profiles_alice_may_request(client, people, catalog):
    client.force_login(people.alice)
    page = client.get("/requests/new/").content.decode()
    assert 'value="test-db"' in page and 'value="other-db"' in page
    client.force_login(people.charlie)
    page = client.get("/requests/new/").content.decode()
    assert "no profile you may request" in page


def test_alice_submits_and_lands_on_the_request(client, people, catalog):
    client.force_login(people.alice)
    response = client.post(
        "/requests/new/",
        {"profile": "test-db", "duration": "45m", "reason": "INC-5 triage", "ticket": "INC-5"},
    )
    request = AccessRequest.objects.get()
    assert response.status_code == 302 and response.url == f"/requests/{request.id}/"
    assert request.duration.total_seconds() == 2700 and request.source == "web"
    event = AuditEvent.objects.get(action="request.submitted")
    assert event.ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"duration": "3h"}, "at most 2h for test-db"),
        ({"duration": "soon"}, "is not a duration"),
        ({"reason": ""}, "a reason is required"),
        ({"ticket": "JIRA-1"}, "must match"),
        ({"profile": "other-team-secret"}, "Select a valid choice"),
    ],
)
def test_bad_input_gets_field_errors_and_changes_nothing(client, people, catalog, data, message):
    client.force_login(people.alice)
    form = {"profile": "test-db", "duration": "1h", "reason": "why", **data}
    response = client.post("/requests/new/", form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AccessRequest.objects.exists()


def test_charlie_cannot_submit_for_a_profile_by_forging_the_form(client, people, catalog):
    client.force_login(people.charlie)
    response = client.post("/requests/new/", {"profile": "test-db", "reason": "x"})
    assert response.status_code == 400
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize(
    ("who", "status"),
    [("alice", 200), ("bob", 200), ("dave", 200), ("admin", 200), ("charlie", 404), ("erin", 404)],
)
def test_who_may_see_a_request(client, people, submit, who, status):
    request = submit(people.alice, reason="secret project <script>alert(1)</script>")
    client.force_login(getattr(people, who))
    response = client.get(f"/requests/{request.id}/")
    assert response.status_code == status
    if status == 200:
        assert b"<script>alert(1)</script>" not in response.content  # escaped
        assert b"&lt;script&gt;" in response.content


def test_bob_approves_on_the_web_after_step_up(client, people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    client.force_login(people.bob)
    page = client.get(f"/requests/{request.id}/").content.decode()
    assert "Your decision" in page
    response = client.post(
        f"/requests/{request.id}/decide/", {"decision": "approve", "comment": "ok"}, follow=True
    )
    assert b"Approved." in response.content
    request.refresh_from_db()
    assert request.status == "approved" and Grant.objects.filter(request=request).exists()
    event = AuditEvent.objects.get(action="request.decision.approve")
    assert event.source == "web" and "mfa_verified_at" in event.data
    page = client.get(f"/requests/{request.id}/").content.decode()
    assert "request.approved" in page and "MFA verified" in page  # the timeline


def test_a_deny_needs_a_reason(client, people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    client.force_login(people.bob)
    response = client.post(
        f"/requests/{request.id}/decide/", {"decision": "deny", "reason": ""}, follow=True
    )
    assert b"say why you deny it" in response.content
    response = client.post(
        f"/requests/{request.id}/decide/", {"decision": "deny", "reason": "no"}, follow=True
    )
    request.refresh_from_db()
    assert request.status == "denied"


@pytest.mark.parametrize("who", ["charlie", "erin", "alice"])
def test_others_cannot_decide(client, people, submit, step_up, who):
    request = submit(people.alice)
    user = getattr(people, who)
    step_up(user)
    client.force_login(user)
    response = client.post(f"/requests/{request.id}/decide/", {"decision": "approve"})
    # The requester may see it and is refused (403); others learn nothing of it (404).
    assert response.status_code == (403 if who == "alice" else 404)
    request.refresh_from_db()
    assert request.status == "pending"


def test_a_second_decision_after_the_first_gets_a_clear_message(client, people, submit, step_up):
    request = submit(people.alice)
    step_up(people.bob)
    step_up(people.carol)
    client.force_login(people.bob)
    client.post(f"/requests/{request.id}/decide/", {"decision": "approve"})
    client.force_login(people.carol)
    response = client.post(
        f"/requests/{request.id}/decide/", {"decision": "deny", "reason": "no"}, follow=True
    )
    assert b"the request is already approved" in response.content


def test_alice_cancels_but_bob_cannot(client, people, submit):
    request = submit(people.alice)
    client.force_login(people.bob)
    assert client.post(f"/requests/{request.id}/cancel/").status_code == 403
    client.force_login(people.alice)
    client.post(f"/requests/{request.id}/cancel/")
    request.refresh_from_db()
    assert request.status == "cancelled"


def test_unknown_ids_are_404(client, people):
    client.force_login(people.alice)
    assert client.get("/requests/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/requests/not-a-uuid/").status_code == 404
