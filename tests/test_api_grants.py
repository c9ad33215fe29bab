"""The REST API over grants: list, see, reveal once with an MFA code, revoke."""

import pytest

from audit.models import AuditEvent
from broker.models import Grant
from tests.support.grants import active_grant, credential_works
from tests.support.people import current_code, phone_of

pytestmark = pytest.mark.usefixtures("pg_target")


def test_alice_lists_and_reads_her_grant(api, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    alice = api(people.alice)
    listed = alice.get("/api/v1/grants/").json()
    assert [row["id"] for row in listed["results"]] == [str(grant.id)]
    body = alice.get(f"/api/v1/grants/{grant.id}/").json()
    assert body["status"] == "active" and body["provider"] == "postgres.role"
    assert 0 < body["seconds_left"] <= 600 and body["credential_available"] is True
    assert alice.get("/api/v1/grants/", {"status": "revoked"}).json()["count"] == 0
    assert alice.get("/api/v1/grants/", {"status": "bogus"}).status_code == 400
    # Others see nothing of it in their lists; an outsider cannot even read it.
    assert api(people.bob).get("/api/v1/grants/").json()["count"] == 0
    assert api(people.charlie).get(f"/api/v1/grants/{grant.id}/").status_code == 404


def test_reveal_with_a_code_shows_the_credential_once(
    api, people, submit, step_up, pg_target, vault
):
    grant = active_grant(people, submit, step_up)
    alice = api(people.alice)
    device = phone_of(people.alice)
    url = f"/api/v1/grants/{grant.id}/reveal/"
    response = alice.post(url, {"otp": current_code(device)}, format="json")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["kind"] == "postgres"
    assert credential_works({"kind": body["kind"], **body["credential"]}, pg_target, vault)
    again = alice.post(url, {"otp": current_code(device, steps_ahead=1)}, format="json")
    assert again.status_code == 409
    assert "already shown" in again.json()["error"]["message"]
    assert Grant.objects.get(pk=grant.id).secret is None
    event = AuditEvent.objects.get(action="grant.credential_revealed")
    assert event.source == "api" and event.actor == "alice"


def test_nobody_else_can_reveal_not_even_the_approver(api, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    for user in (people.bob, people.admin, people.charlie):
        response = api(user).post(
            f"/api/v1/grants/{grant.id}/reveal/",
            {"otp": current_code(phone_of(user))},
            format="json",
        )
        assert response.status_code == 404
    assert Grant.objects.get(pk=grant.id).secret is not None


def test_reveal_with_a_wrong_code_keeps_the_secret(api, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    phone_of(people.alice)
    response = api(people.alice).post(
        f"/api/v1/grants/{grant.id}/reveal/", {"otp": "999999"}, format="json"
    )
    assert response.status_code == 403
    assert Grant.objects.get(pk=grant.id).secret is not None


def test_alice_revokes_through_the_api(api, people, submit, step_up):
    grant = active_grant(people, submit, step_up)
    assert api(people.charlie).post(f"/api/v1/grants/{grant.id}/revoke/").status_code == 404
    assert api(people.erin).post(f"/api/v1/grants/{grant.id}/revoke/").status_code == 404
    response = api(people.alice).post(
        f"/api/v1/grants/{grant.id}/revoke/", {"reason": "done"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "revoking"
    assert response.json()["end_reason"] == "done"
    again = api(people.alice).post(f"/api/v1/grants/{grant.id}/revoke/", {}, format="json")
    assert again.status_code == 409
