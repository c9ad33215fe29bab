"""Locks through the API: carol (security role) locks with her MFA code, the list
and the targets show it, lifting takes erin too; bad input and a wrong code are
refused and change nothing."""

import pytest

from audit.models import AuditEvent
from broker.models import Lock
from tests.support.people import current_code, phone_of

pytestmark = pytest.mark.usefixtures("catalog")


def lock(client, user, steps_ahead: int = 0, **body):
    payload = {"scope": "user", "subject": "alice", "reason": "laptop stolen", **body}
    payload.setdefault("otp", current_code(phone_of(user), steps_ahead))
    return client.post("/api/v1/locks/create/", payload, format="json")


def test_carol_locks_and_two_of_the_role_lift(api, people):
    carol, erin = api(people.carol), api(people.erin)
    created = lock(carol, people.carol, duration="2h")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["scope"], body["subject"], body["placed_by"]) == ("user", "alice", "carol")
    assert body["holding"] and body["ends_at"] and body["evidence"] == []
    assert AuditEvent.objects.get(action="lock.placed").source == "api"

    listed = carol.get("/api/v1/locks/").json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    targets = {row["target"]: row["profiles"] for row in carol.get("/api/v1/locks/targets/").json()}
    assert targets["vault:auth/token"] == ["vault-token"]
    assert targets["postgres:AIRLOCK_PG_DSN_TEST"] == [
        "broken-db", "other-db", "test-db", "test-db-critical",
    ]  # fmt: skip

    lift = f"/api/v1/locks/{body['id']}/lift/"
    otp = current_code(phone_of(people.carol), steps_ahead=1)
    proposed = carol.post(lift, {"reason": "found it", "otp": otp}, format="json")
    assert proposed.status_code == 200 and proposed.json()["lift_proposed_by"] == "carol"
    assert proposed.json()["ended_at"] is None
    otp = current_code(phone_of(people.erin))
    lifted = erin.post(lift, {"otp": otp}, format="json").json()
    assert lifted["ended_by"] == "erin" and not lifted["holding"]
    assert carol.get("/api/v1/locks/").json()["results"] == []
    assert len(carol.get("/api/v1/locks/", {"all": "true"}).json()["results"]) == 1


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"scope": "team"}, "scope", "not a valid choice"),
        ({"subject": "mallory"}, "subject", "no user 'mallory'"),
        ({"scope": "profile", "subject": "nope"}, "subject", "no profile 'nope'"),
        ({"scope": "target", "subject": "db:1"}, "subject", "known targets:"),
        ({"duration": "0s"}, "duration", "not a positive duration"),
        ({"duration": 5}, "duration", "Must be a string"),
        ({"reason": ""}, "reason", "may not be blank"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, people, body, field, message):
    response = lock(api(people.carol), people.carol, **body)
    assert response.status_code == 400
    assert message in response.json()["error"]["fields"][field]
    assert not Lock.objects.exists()


def test_a_wrong_code_locks_nothing(api, people):
    response = lock(api(people.carol), people.carol, otp="000000")
    assert response.status_code == 403 and response.json()["error"]["code"] == "mfa_failed"
    assert not Lock.objects.exists()


def test_garbage_json_is_a_400(api, people):
    response = api(people.carol).post(
        "/api/v1/locks/create/", "{nope", content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed"
