"""The REST API over requests: submit, list, see, cancel, approve and deny with an MFA code."""

import pytest

from accounts.models import FREE_MISSES, Authenticator
from audit.models import AuditEvent
from broker.models import AccessRequest, Approval, Grant
from tests.support.people import current_code, phone_of


def create(client, **body):
    payload = {"profile": "test-db", "duration": "1h", "reason": "INC-1 payouts", **body}
    return client.post("/api/v1/requests/create/", payload, format="json")


def test_alice_submits_through_the_api(api, people, catalog):
    response = create(api(people.alice), ticket="INC-42")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["profile"] == "test-db"
    assert body["duration"] == "1h" and body["requester"] == "alice"
    assert body["approvals_required"] == 1 and body["grant"] is None
    request = AccessRequest.objects.get(pk=body["id"])
    assert request.source == "api" and request.ticket == "INC-42"
    event = AuditEvent.objects.get(action="request.submitted")
    assert event.source == "api" and event.actor == "alice"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"duration": "3h"}, "duration", "at most 2h"),
        ({"duration": "soon"}, "duration", "not a duration"),
        ({"reason": ""}, "reason", "required"),
        ({"ticket": "JIRA-1"}, "ticket", "must match"),
        ({"profile": "no-such-profile"}, "profile", "no profile"),
        ({"profile": "../etc"}, "profile", "slug"),
        ({"ssh_public_key": "ssh-ed25519 AAAA"}, "ssh_public_key", "takes no SSH key"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    api, people, catalog, body, field, message
):
    response = create(api(people.alice), **body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert message in error["fields"][field]
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('"just a string"', "application/json", 400),
        ("profile=test-db", "application/x-www-form-urlencoded", 415),
    ],
)
def test_garbage_bodies_get_a_clear_error(api, people, catalog, content, content_type, status):
    client = api(people.alice)
    response = client.generic("POST", "/api/v1/requests/create/", content, content_type)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "fields"}
    assert not AccessRequest.objects.exists()


def test_a_profile_alice_may_not_request_is_forbidden(api, people, catalog):
    response = create(api(people.charlie))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_a_second_pending_request_for_the_same_profile_conflicts(api, people, catalog):
    client = api(people.alice)
    assert create(client).status_code == 201
    response = create(client)
    assert response.status_code == 409
    assert "already have a pending request" in response.json()["error"]["message"]


def test_lists_mine_and_awaiting_me(api, people, submit):
    mine = submit(people.alice)
    alice_list = api(people.alice).get("/api/v1/requests/").json()
    assert alice_list["count"] == 1 and alice_list["results"][0]["id"] == str(mine.id)
    bob = api(people.bob)
    assert bob.get("/api/v1/requests/").json()["count"] == 0
    awaiting = bob.get("/api/v1/requests/", {"scope": "awaiting"}).json()
    assert [row["id"] for row in awaiting["results"]] == [str(mine.id)]
    # erin approves another profile only: nothing awaits her.
    assert api(people.erin).get("/api/v1/requests/?scope=awaiting").json()["count"] == 0
    assert bob.get("/api/v1/requests/?scope=everyone").status_code == 400


def test_a_request_is_visible_to_its_requester_and_approvers_only(api, people, submit):
    request = submit(people.alice)
    url = f"/api/v1/requests/{request.id}/"
    assert api(people.alice).get(url).status_code == 200
    assert api(people.bob).get(url).status_code == 200
    assert api(people.dave).get(url).status_code == 200  # auditor
    for outsider in (people.charlie, people.erin):
        response = api(outsider).get(url)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_bob_approves_with_a_totp_code(api, people, submit):
    request = submit(people.alice)
    device = phone_of(people.bob)
    response = api(people.bob).post(
        f"/api/v1/requests/{request.id}/approve/",
        {"otp": current_code(device), "comment": "ok"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved"
    assert body["decisions"][0]["approver"] == "bob"
    assert body["decisions"][0]["mfa_method"] == "totp"
    assert body["grant"]["status"] == "scheduled"
    decision = Approval.objects.get(request=request)
    assert decision.source == "api" and decision.mfa_method == "totp"
    assert AuditEvent.objects.filter(action="mfa.verified", source="api").exists()


def test_a_wrong_code_changes_nothing_and_slows_the_next_try(api, people, submit):
    request = submit(people.alice)
    device = phone_of(people.bob)
    bob = api(people.bob)
    url = f"/api/v1/requests/{request.id}/approve/"
    wrong_code = f"{(int(current_code(device)) + 500_000) % 10**6:06d}"
    for _ in range(FREE_MISSES):
        wrong = bob.post(url, {"otp": wrong_code}, format="json")
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "mfa_failed"
    request.refresh_from_db()
    assert request.status == "pending" and not Approval.objects.exists()
    # The back-off: right after a few misses even the right code is refused.
    retry = bob.post(url, {"otp": current_code(device)}, format="json")
    assert retry.status_code == 403 and not Approval.objects.exists()
    failures = AuditEvent.objects.filter(action="mfa.failed", actor="bob").count()
    assert failures == FREE_MISSES + 1


def test_a_code_works_once(api, people, submit):
    request = submit(people.alice)
    device = phone_of(people.bob)
    bob = api(people.bob)
    code = current_code(device)
    url = f"/api/v1/requests/{request.id}/approve/"
    assert bob.post(url, {"otp": code}, format="json").status_code == 200
    second = submit(people.alice, slug="test-db-critical", ticket="INC-2")
    replay = bob.post(f"/api/v1/requests/{second.id}/approve/", {"otp": code}, format="json")
    assert replay.status_code == 403
    assert not Approval.objects.filter(request=second).exists()


def test_approve_needs_an_otp_field(api, people, submit):
    request = submit(people.alice)
    response = api(people.bob).post(f"/api/v1/requests/{request.id}/approve/", {}, format="json")
    assert response.status_code == 400
    assert "otp" in response.json()["error"]["fields"]


def test_an_approver_without_mfa_is_told_to_enrol(api, people, submit):
    request = submit(people.alice)
    Authenticator.objects.filter(user=people.bob).delete()
    response = api(people.bob).post(
        f"/api/v1/requests/{request.id}/approve/", {"otp": "123456"}, format="json"
    )
    assert response.status_code == 403
    assert "enrol" in response.json()["error"]["message"]


def test_self_approval_is_forbidden_even_with_a_good_code(api, people, catalog, settings):
    # alice becomes an approver of test-db too: she still cannot approve her own request.
    people.alice.groups.add(people.bob.groups.get(name="sre"))
    response = create(api(people.alice))
    request_id = response.json()["id"]
    reply = api(people.alice).post(
        f"/api/v1/requests/{request_id}/approve/",
        {"otp": current_code(phone_of(people.alice))},
        format="json",
    )
    assert reply.status_code == 403
    assert "your own request" in reply.json()["error"]["message"]
    assert AccessRequest.objects.get(pk=request_id).status == "pending"


def test_deciding_twice_is_a_409(api, people, submit):
    request = submit(people.alice)
    device = phone_of(people.bob)
    bob = api(people.bob)
    url = f"/api/v1/requests/{request.id}/deny/"
    first = bob.post(url, {"otp": current_code(device), "reason": "no"}, format="json")
    assert first.status_code == 200 and first.json()["status"] == "denied"
    carol = api(people.carol)
    late = carol.post(
        f"/api/v1/requests/{request.id}/approve/",
        {"otp": current_code(phone_of(people.carol))},
        format="json",
    )
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "conflict"
    assert AccessRequest.objects.get(pk=request.id).status == "denied"
    assert not Grant.objects.exists()


def test_deny_needs_a_reason(api, people, submit):
    request = submit(people.alice)
    response = api(people.bob).post(
        f"/api/v1/requests/{request.id}/deny/",
        {"otp": current_code(phone_of(people.bob))},
        format="json",
    )
    assert response.status_code == 400
    assert "reason" in response.json()["error"]["fields"]


def test_alice_cancels_and_others_cannot(api, people, submit):
    request = submit(people.alice)
    url = f"/api/v1/requests/{request.id}/cancel/"
    assert api(people.bob).post(url, {}, format="json").status_code == 403
    response = api(people.alice).post(url, {"reason": "fixed"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert api(people.alice).post(url, {}, format="json").status_code == 409
